"""websockets' echo server: its asyncio API (C speedups when built), keepalive off, its default
permessage-deflate when a client offers it."""

from __future__ import annotations

import asyncio

from _serve import HOST, MAX_SIZE, PORT, ready, run
from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(stop: asyncio.Event) -> None:
    async with serve(echo, HOST, PORT, max_size=MAX_SIZE, ping_interval=None):
        ready()
        await stop.wait()


run(main)
