"""aiohttp's echo server: web.WebSocketResponse, access log off, its default compression."""

from __future__ import annotations

import asyncio

from _serve import HOST, MAX_SIZE, PORT, ready, run
from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_SIZE)
    await ws.prepare(request)
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def main(stop: asyncio.Event) -> None:
    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, HOST, PORT, backlog=1024).start()
    ready()
    await stop.wait()
    await runner.cleanup()


run(main)
