"""The physical limit: a plain TCP echo (an asyncio Protocol on the same uvloop), no WebSocket."""

from __future__ import annotations

import asyncio
from typing import cast

from _serve import HOST, PORT, ready, run


class Echo(asyncio.Protocol):
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def main(stop: asyncio.Event) -> None:
    server = await asyncio.get_running_loop().create_server(Echo, HOST, PORT, backlog=1024)
    ready()
    await stop.wait()
    server.close()
    await server.wait_closed()


run(main)
