"""picows' echo server: its frame-level listener, each data frame sent back as it came."""

from __future__ import annotations

import asyncio

from _serve import HOST, MAX_SIZE, PORT, ready, run
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif kind not in (WSMsgType.PING, WSMsgType.PONG):  # pings are answered by picows
            # a frame's memoryview lives only during this call: a large one may still wait in
            # the transport afterwards, so it leaves as bytes of its own
            payload = frame.get_payload_as_memoryview() if frame.payload_size <= 8192 else frame.get_payload_as_bytes()
            transport.send(kind, payload, frame.fin)


def listener(request: WSUpgradeRequest) -> Echo:
    return Echo()


async def main(stop: asyncio.Event) -> None:
    server = await ws_create_server(listener, HOST, PORT, max_frame_size=MAX_SIZE, backlog=1024)
    ready()
    await stop.wait()
    server.close()
    await server.wait_closed()


run(main)
