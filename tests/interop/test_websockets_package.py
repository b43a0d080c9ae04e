"""Interoperability with the Python `websockets` package (version 13 only), both roles.

Compression: websockets' client offers `permessage-deflate; client_max_window_bits` and its
server, on by default, answers a bare `client_max_window_bits` with
`server_max_window_bits=12; client_max_window_bits=12`; both compress every message. Sending
an iterable, websockets sends each item in a non-final frame and ends with an empty final
frame (compressed: the single byte 00), so its three fragments make four frames.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.interop.compressed import (
    STREAM_LENGTH,
    assert_all_compressed,
    assert_crossed_boundaries,
    assert_taken_over,
    fragments,
    frames_of,
    install_probe,
    messages,
    stream_message,
)
from tests.interop.peers import SIZES, bytes_of, require, text_of

import hybi
from conftest import run

pytestmark = pytest.mark.interop

try:
    from websockets.asyncio.client import connect as ws_connect
    from websockets.asyncio.server import ServerConnection as WsServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed as WsConnectionClosed
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
except ImportError:  # pragma: no cover - reported by require() below
    ws_connect = ws_serve = None  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def websockets_installed() -> None:
    require(ws_connect is not None, "the Python package websockets")


async def ws_echo(connection: WsServerConnection) -> None:
    try:
        async for message in connection:
            if message == "close-me":
                await connection.close(4001, "server-bye")
            else:
                await connection.send(message)
    except WsConnectionClosed:
        pass


def test_hybi_client_to_websockets_server() -> None:
    async def main() -> None:
        async with ws_serve(ws_echo, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}/"
            async with hybi.connect(url, max_size=None) as ws:
                assert ws.version == 13
                for size in SIZES:
                    await ws.send(text_of(size))
                    assert await ws.recv() == text_of(size)
                    await ws.send(bytes_of(size))
                    assert await ws.recv() == bytes_of(size)
                await ws.close(4000, "client-bye")
                assert ws.close_code == 4000
            async with hybi.connect(url) as ws:
                await ws.send("close-me")
                with pytest.raises(hybi.ConnectionClosedError) as caught:
                    await ws.recv()
                assert (caught.value.code, caught.value.reason) == (4001, "server-bye")

    run(main())


def test_websockets_client_to_hybi_server() -> None:
    async def main() -> None:
        seen: list[tuple[int | None, str | None]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            try:
                async for message in ws:
                    if message == "close-me":
                        await ws.close(4001, "server-bye")
                    else:
                        await ws.send(message)
            except hybi.ConnectionClosedError:
                pass
            seen.append((ws.close_code, ws.close_reason))

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with ws_connect(url, max_size=None) as client:
                for size in SIZES:
                    await client.send(text_of(size))
                    assert await client.recv() == text_of(size)
                    await client.send(bytes_of(size))
                    assert await client.recv() == bytes_of(size)
                await client.close(4000, "client-bye")
            async with ws_connect(url) as client:
                await client.send("close-me")
                with pytest.raises(WsConnectionClosed) as caught:
                    await client.recv()
                assert caught.value.rcvd is not None
                assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (4001, "server-bye")
        assert seen[0] == (4000, "client-bye")

    run(main())


def test_refusal_without_a_version_list() -> None:
    """websockets answers an unsupported version with 400 and no Sec-WebSocket-Version."""

    async def main() -> None:
        async with ws_serve(ws_echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(hybi.NoCommonVersion) as caught:
                await hybi.connect(f"ws://127.0.0.1:{port}/", versions="8,13")
        error = caught.value
        assert error.response.status == 400
        assert error.server_versions == ()
        assert "refused version 8 with 400 Bad Request" in str(error)
        assert "client offers 8, 13; server accepts (not listed)" in str(error)

    run(main())


# -- compression --------------------------------------------------------------------------

NO_TAKEOVER = hybi.Compression(no_context_takeover=True, peer_no_context_takeover=True)
"""Asks for no context takeover both ways (and, by Compression's defaults, for a server
window of 2**12; the deflate-frame names it offers too are left out of the answers)."""

ANSWER = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
NO_TAKEOVER_ANSWER = (
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
    "server_max_window_bits=12; client_max_window_bits=12"
)


def echo_server(fragment: bool, seen: list[Any]) -> Any:
    """websockets' echo handler: each message back whole or in three frames; `seen` gets its
    answer header and its own view of the extensions once the connection ends."""

    async def handler(connection: WsServerConnection) -> None:
        try:
            async for message in connection:
                await connection.send(fragments(message) if fragment else message)
        except WsConnectionClosed:
            pass
        assert connection.response is not None
        seen.append((connection.response.headers.get("Sec-WebSocket-Extensions"), connection.protocol.extensions))

    return handler


@pytest.mark.parametrize(
    ("compression", "fragment", "answer", "no_takeover"),
    [
        ("balanced", False, ANSWER, False),
        ("balanced", True, ANSWER, False),
        (NO_TAKEOVER, True, NO_TAKEOVER_ANSWER, True),
    ],
    ids=["takeover", "takeover-fragmented-echoes", "no-takeover"],
)
def test_hybi_client_compresses_with_websockets_server(
    monkeypatch: pytest.MonkeyPatch, compression: Any, fragment: bool, answer: str, no_takeover: bool
) -> None:
    install_probe(monkeypatch)
    plan = messages()
    seen: list[Any] = []

    async def main() -> None:
        async with ws_serve(echo_server(fragment, seen), "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with hybi.connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=compression) as ws:
                assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
                assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
                for message in plan:
                    await ws.send(message)
                    assert await ws.recv() == message
                for message in plan:
                    await ws.send(fragments(message))
                    assert await ws.recv() == message
        frames = frames_of(ws)
        assert_all_compressed(frames, received=2 * len(plan), sent=2 * len(plan))
        assert_crossed_boundaries(frames)
        assert len(frames.received) == (4 if fragment else 1) * 2 * len(plan)

    run(main())
    [(header, [extension])] = seen
    assert header == answer
    assert extension.name == "permessage-deflate"
    assert (extension.local_no_context_takeover, extension.remote_no_context_takeover) == (no_takeover, no_takeover)
    assert (extension.local_max_window_bits, extension.remote_max_window_bits) == (12, 12)


@pytest.mark.parametrize(
    ("compression", "client_no_takeover", "fragment", "answer"),
    [
        ("balanced", False, False, ANSWER),
        ("balanced", False, True, ANSWER),
        (
            "balanced",
            True,
            True,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12",
        ),
        (NO_TAKEOVER, False, False, NO_TAKEOVER_ANSWER),
    ],
    ids=["takeover", "takeover-fragmented", "websockets-asks-no-takeover", "hybi-asks-no-takeover"],
)
def test_websockets_client_compresses_to_hybi_server(
    monkeypatch: pytest.MonkeyPatch, compression: Any, client_no_takeover: bool, fragment: bool, answer: str
) -> None:
    """websockets' client sends every message compressed (in three frames when `fragment`),
    hybi's server echoes it compressed (in three frames when `fragment`)."""
    install_probe(monkeypatch)
    plan = messages()
    # Without takeover asked for, websockets' default offer: permessage-deflate; client_max_window_bits.
    options: dict[str, Any] = {}
    if client_no_takeover:
        factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)
        options = {"compression": None, "extensions": [factory]}

    async def main() -> tuple[list[hybi.ServerConnection], Any]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            async for message in ws:
                await ws.send(fragments(message) if fragment else message)

        async with (
            hybi.serve(handler, "127.0.0.1", 0, max_size=None, compression=compression) as server,
            ws_connect(f"ws://127.0.0.1:{server.port}/", max_size=None, **options) as client,
        ):
            for message in plan:
                await client.send(fragments(message) if fragment else message)
                assert await client.recv() == message
            assert client.response is not None
            header = client.response.headers.get("Sec-WebSocket-Extensions")
        return connections, (header, client.protocol.extensions)

    [ws], (header, [extension]) = run(main())
    assert header == answer
    assert extension.name == "permessage-deflate"
    no_takeover = client_no_takeover or compression is NO_TAKEOVER
    assert (extension.local_no_context_takeover, extension.remote_no_context_takeover) == (no_takeover, no_takeover)
    assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
    frames = frames_of(ws)
    assert_all_compressed(frames, received=len(plan), sent=len(plan))
    assert_crossed_boundaries(frames)
    assert (len(frames.received), len(frames.sent)) == (
        (4 if fragment else 1) * len(plan),
        (3 if fragment else 1) * len(plan),
    )


def test_takeover_streams_with_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """3000 messages each way in each role, every one compressed against the window of the
    ones before it; hybi's wire lengths (sent) and websockets' (received) both show it."""
    install_probe(monkeypatch)
    seen: list[Any] = []

    async def client_role() -> hybi.ClientConnection:
        async with ws_serve(echo_server(False, seen), "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with hybi.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
                for index in range(STREAM_LENGTH):
                    await ws.send(stream_message(index))
                    assert await ws.recv() == stream_message(index)
        return ws

    async def server_role() -> list[hybi.ServerConnection]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            async for message in ws:
                await ws.send(message)

        async with (
            hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server,
            ws_connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as client,
        ):
            for index in range(STREAM_LENGTH):
                await client.send(stream_message(index))
                assert await client.recv() == stream_message(index)
        return connections

    client = run(client_role(), timeout=60)
    [server] = run(server_role(), timeout=60)
    assert seen[0][0] == ANSWER
    for ws in (client, server):
        frames = frames_of(ws)
        assert_all_compressed(frames, received=STREAM_LENGTH, sent=STREAM_LENGTH)
        assert_taken_over([length for _, _, length in frames.sent])
        assert_taken_over([length for _, _, length in frames.received])


def test_uncompressed_messages_between_compressed_ones_with_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """compress=False under context takeover leaves the window as it was: compressed, plain,
    compressed, ... from hybi's client and from hybi's server."""
    install_probe(monkeypatch)
    plan = [stream_message(index) for index in range(300)] + messages()

    def compress(index: int) -> bool:
        return index % 3 != 1

    async def client_role() -> hybi.ClientConnection:
        async with ws_serve(echo_server(False, []), "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with hybi.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
                for index, message in enumerate(plan):
                    await ws.send(message, compress=compress(index))
                    assert await ws.recv() == message
        return ws

    async def server_role() -> list[hybi.ServerConnection]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            index = 0
            async for message in ws:
                await ws.send(message, compress=compress(index))
                index += 1

        async with (
            hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server,
            ws_connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as client,
        ):
            for message in plan:
                await client.send(message)
                assert await client.recv() == message
        return connections

    client = run(client_role())
    [server] = run(server_role())
    for ws in (client, server):
        frames = frames_of(ws)
        assert frames.sent_messages == [compress(index) for index in range(len(plan))]
        assert all(frames.received_messages)


def test_the_speed_preset_deflates_with_isa_l_for_websockets_both_ways() -> None:
    """With python-isal installed, the speed preset deflates with ISA-L: websockets' zlib
    inflates every message, large and small, with the context taken over, as client and as
    server, and hybi inflates what websockets sends back."""
    from hybi.sansio import deflate

    pytest.importorskip("isal")
    assert deflate.FAST_DEFLATE
    plan = [text_of(size) for size in (0, 1, 200, 70000, 1 << 20)] + [bytes_of(size) for size in (5, 100000)]

    async def main() -> None:
        async def ws_echo(ws: WsServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        async with ws_serve(ws_echo, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with hybi.connect(f"ws://127.0.0.1:{port}/", max_size=None, compression="speed") as ws:
                assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
                for message in plan * 2:
                    await ws.send(message)
                    assert await ws.recv() == message

        async def hybi_echo(ws: hybi.ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        async with (
            hybi.serve(hybi_echo, "127.0.0.1", 0, max_size=None, compression="speed") as hybi_server,
            ws_connect(f"ws://127.0.0.1:{hybi_server.port}/", max_size=None) as client,
        ):
            assert client.protocol.extensions[0].name == "permessage-deflate"
            for message in plan * 2:
                await client.send(message)
                assert await client.recv() == message

    run(main())
