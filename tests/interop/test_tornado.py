"""Interoperability with tornado's WebSocket server and client (version 13), compression on.

tornado compresses only when `get_compression_options()` returns a dict (the server) or
`compression_options` is given (the client); every message is then compressed. Its server
answers a plain `permessage-deflate` (with a `server_max_window_bits` if offered one): it
drops every parameter that has no value when it parses the offer, `server_no_context_takeover`
among them, so a client that asks for that gets an answer without it and must fail
(test_tornado_server_ignores_server_no_context_takeover). Its client offers
`permessage-deflate; client_max_window_bits` and parses the answer the same way: it never
sees a `client_no_context_takeover` and keeps its window, which a server that agreed to it and
inflates each message afresh cannot follow (test_tornado_client_ignores_client_no_context_takeover).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.interop.compressed import (
    assert_all_compressed,
    assert_crossed_boundaries,
    fragments,
    frames_of,
    install_probe,
    messages,
)
from tests.interop.peers import require

import hybi
from conftest import run

pytestmark = pytest.mark.interop

try:
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket
except ImportError:  # pragma: no cover - reported by require() below
    tornado = None  # type: ignore[assignment]

LIMIT = 64 * 1024 * 1024


@pytest.fixture(autouse=True)
def tornado_installed() -> None:
    require(tornado is not None, "the Python package tornado")


def compression_state(connection: Any) -> tuple[bool, bool]:
    """Whether tornado's side of a connection has a compressor and a decompressor (its own
    view of what was agreed; tornado keeps them private)."""
    return (connection._compressor is not None, connection._decompressor is not None)


@asynccontextmanager
async def tornado_server(seen: list[Any]) -> AsyncIterator[str]:
    """tornado's echo server with compression on; `seen` gets, per connection, the
    Sec-WebSocket-Extensions it answered and its compression state."""

    class Echo(tornado.websocket.WebSocketHandler):
        def get_compression_options(self) -> dict[str, Any]:
            return {}

        def open(self) -> None:
            assert self.ws_connection is not None
            seen.append((self._headers.get("Sec-WebSocket-Extensions"), compression_state(self.ws_connection)))

        async def on_message(self, message: str | bytes) -> None:
            await self.write_message(message, binary=isinstance(message, bytes))

    application = tornado.web.Application([("/", Echo)], websocket_max_message_size=LIMIT)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(application, max_buffer_size=LIMIT)
    server.add_sockets(sockets)
    try:
        yield f"ws://127.0.0.1:{sockets[0].getsockname()[1]}/"
    finally:
        server.stop()
        await server.close_all_connections()


@pytest.mark.parametrize(
    ("compression", "answer"),
    [
        ("balanced", "permessage-deflate"),  # the bare client_max_window_bits dropped
        (
            hybi.Compression(no_context_takeover=True, peer_window_bits=None, deflate_frame=False),
            "permessage-deflate",  # the client_no_context_takeover dropped: a hint anyway
        ),
        ("memory", "permessage-deflate; server_max_window_bits=10"),
    ],
    ids=["takeover", "hybi-without-takeover", "memory"],
)
def test_hybi_client_compresses_with_tornado_server(
    monkeypatch: pytest.MonkeyPatch, compression: Any, answer: str
) -> None:
    install_probe(monkeypatch)
    plan = messages()
    seen: list[Any] = []

    async def main() -> hybi.ClientConnection:
        async with tornado_server(seen) as url, hybi.connect(url, max_size=None, compression=compression) as ws:
            assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
            assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
            for message in plan:
                await ws.send(message)
                assert await ws.recv() == message
            for message in plan:
                await ws.send(fragments(message))
                assert await ws.recv() == message
        return ws

    ws = run(main())
    assert seen == [(answer, (True, True))]
    frames = frames_of(ws)
    assert_all_compressed(frames, received=2 * len(plan), sent=2 * len(plan))
    assert_crossed_boundaries(frames)


def test_tornado_server_ignores_server_no_context_takeover() -> None:
    """tornado's bug, pinned: asked for server_no_context_takeover, it answers without it (and
    keeps its window), so hybi's client fails the handshake as RFC 7692 section 7.1 says."""
    compression = hybi.Compression(no_context_takeover=True, peer_no_context_takeover=True)

    async def main() -> str:
        async with tornado_server([]) as url:
            with pytest.raises(hybi.InvalidHandshake) as caught:
                await hybi.connect(url, compression=compression)
        return str(caught.value)

    assert "permessage-deflate answer lacks the server_no_context_takeover asked for" in run(main())


@pytest.mark.parametrize(
    ("compression", "answer"),
    [
        ("balanced", "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        (
            hybi.Compression(no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12",
        ),
    ],
    ids=["takeover", "hybi-without-takeover"],
)
def test_tornado_client_compresses_to_hybi_server(
    monkeypatch: pytest.MonkeyPatch, compression: Any, answer: str
) -> None:
    """tornado's client sends every message compressed; hybi's server echoes each compressed,
    in three frames."""
    install_probe(monkeypatch)
    plan = messages()

    async def main() -> tuple[list[hybi.ServerConnection], Any]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            async for message in ws:
                await ws.send(fragments(message))

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None, compression=compression) as server:
            client = await tornado.websocket.websocket_connect(
                f"ws://127.0.0.1:{server.port}/", compression_options={}, max_message_size=LIMIT
            )
            try:
                for message in plan:
                    await client.write_message(message, binary=isinstance(message, bytes))
                    assert await client.read_message() == message
                view = (client.headers.get("Sec-WebSocket-Extensions"), compression_state(client.protocol))
            finally:
                client.close(1000)
        return connections, view

    [ws], view = run(main())
    assert view == (answer, (True, True))
    assert ws.request_headers.get("Sec-WebSocket-Extensions") == "permessage-deflate; client_max_window_bits"
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
    frames = frames_of(ws)
    assert_all_compressed(frames, received=len(plan), sent=len(plan))
    assert_crossed_boundaries(frames)
    assert len(frames.sent) == 3 * len(plan)


def test_tornado_client_ignores_client_no_context_takeover() -> None:
    """tornado's bug, pinned: told client_no_context_takeover, its client keeps its window, so
    its second message refers back into the first, which a server inflating each message
    afresh (as the parameter lets it) cannot follow: hybi's server closes with 1007."""
    compression = hybi.Compression(peer_no_context_takeover=True)
    message = "tornado " * 1000

    async def main() -> tuple[list[BaseException], int | None]:
        failures: list[BaseException] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            try:
                async for received in ws:
                    await ws.send(received)
            except hybi.ConnectionClosedError as error:
                failures.append(error)

        async with hybi.serve(handler, "127.0.0.1", 0, compression=compression) as server:
            client = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/", compression_options={})
            assert "client_no_context_takeover" in client.headers.get("Sec-WebSocket-Extensions")
            await client.write_message(message)
            assert await client.read_message() == message
            await client.write_message(message)
            assert await client.read_message() is None  # closed
        return failures, client.close_code

    [failure], close_code = run(main())
    assert close_code == 1007
    assert "invalid distance too far back" in str(failure)
