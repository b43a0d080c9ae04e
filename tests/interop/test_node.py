"""Interoperability with Node's "ws" and "websocket" (WebSocket-Node), both roles.

Compression: ws speaks permessage-deflate (its client offers it by default, its server only
with `perMessageDeflate`), which peer.js's `--deflate` turns on with a threshold of 0 so that
every message is compressed. WebSocket-Node 1.0.35 implements no extension: it offers none
and answers none, so hybi falls back to plain messages with it.
"""

from __future__ import annotations

import asyncio
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
from tests.interop.peers import SIZES, bytes_of, node_server, run_node_client, text_of

import hybi
from conftest import run

pytestmark = pytest.mark.interop

LIBRARIES = ["ws", "websocket"]

# The code each library puts in the close frame it answers a close with. RFC 6455 section
# 5.5.1 says an endpoint "typically echos" the code; WebSocket-Node always answers 1000.
ANSWERED_CLOSE = {"ws": lambda code: code, "websocket": lambda code: 1000}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("version", [13, 8])
def test_hybi_client_to_node_server(library: str, version: int) -> None:
    async def main(url: str) -> None:
        async with hybi.connect(url, versions=[version], origin="http://hybi.test", max_size=None) as ws:
            assert ws.version == version
            for size in SIZES:
                await ws.send(text_of(size))
                assert await ws.recv() == text_of(size)
                await ws.send(bytes_of(size))
                assert await ws.recv() == bytes_of(size)
            await ws.close(4000, "client-bye")
            assert ws.close_code == ANSWERED_CLOSE[library](4000)

        async with hybi.connect(url, versions=[version]) as ws:
            await ws.send("close:4001:server-bye")
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert (caught.value.code, caught.value.reason) == (4001, "server-bye")

    with node_server(library) as (url, peer):
        run(main(url))
    # The server reports each connection once it has seen it end, which for the second one
    # may come before the first: match them by code, not by order.
    assert sorted(event["code"] for event in peer.events) == [4000, 4001], peer.events
    closes = {event["code"]: event for event in peer.events}
    assert {key: closes[4000][key] for key in ("event", "code", "reason", "version", "origin")} == {
        "event": "close",
        "code": 4000,
        "reason": "client-bye",
        "version": version,
        "origin": "http://hybi.test",  # read from Sec-WebSocket-Origin for 8, Origin for 13
    }
    assert closes[4001]["version"] == version


@pytest.mark.parametrize(
    ("library", "versions", "status", "listed", "chosen"),
    [
        ("ws", "7,8", 400, (13, 8), 8),  # ws: 400 + "13, 8"
        ("ws", "7,13,8", 400, (13, 8), 13),
        ("websocket", "7,8,13", 426, (13,), 13),  # WebSocket-Node: 426 + "13" although it accepts 8
    ],
)
def test_retry_against_a_real_refusal(
    library: str, versions: str, status: int, listed: tuple[int, ...], chosen: int
) -> None:
    """Section 4.4 with answers these servers really give to a version they do not speak."""

    async def main(url: str) -> None:
        async with hybi.connect(url, versions=versions) as ws:
            assert ws.version == chosen
            first = ws.handshake_attempts[0]
            assert (first.version, first.status, first.server_versions) == ("7", status, listed)
            await ws.send("after retry")
            assert await ws.recv() == "after retry"

    with node_server(library) as (url, _):
        run(main(url))


@pytest.mark.parametrize("library", LIBRARIES)
def test_no_common_version_with_a_real_server(library: str) -> None:
    async def main(url: str) -> str:
        with pytest.raises(hybi.NoCommonVersion) as caught:
            await hybi.connect(url, versions="7")
        return str(caught.value)

    with node_server(library) as (url, _):
        message = run(main(url))
    assert message.startswith("no WebSocket version in common: client offers 7; server accepts 13")


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("version", [13, 8])
@pytest.mark.parametrize("server_close", [False, True], ids=["client-closes", "server-closes"])
def test_node_client_to_hybi_server(library: str, version: int, server_close: bool) -> None:
    async def main() -> None:
        seen: list[tuple[int | str | None, int | None, str | None, str | None]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            try:
                async for message in ws:
                    if message == "close-me":
                        await ws.close(4001, "server-bye")
                    else:
                        await ws.send(message)
            except hybi.ConnectionClosedError:
                pass
            seen.append((ws.version, ws.close_code, ws.close_reason, ws.request.origin if ws.request else None))

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            result = await asyncio.to_thread(run_node_client, library, url, version, server_close)
        # Leaving `serve` waits for every handler to return, so `seen` is complete here.
        assert result["event"] == "done", result
        assert result["mismatches"] == []
        assert result["echoed"] == result["total"] == 2 * len(SIZES)
        if server_close:
            assert (result["code"], result["reason"]) == (4001, "server-bye")
            assert seen[0][:2] == (version, ANSWERED_CLOSE[library](4001))
        else:
            assert result["code"] == 4000
            assert seen[0][:3] == (version, 4000, "client-bye")
        assert seen[0][3] == "http://peer.test"

    run(main(), timeout=90)


# -- compression --------------------------------------------------------------------------

NO_TAKEOVER = hybi.Compression(no_context_takeover=True, peer_no_context_takeover=True)
"""Asks for no context takeover both ways; its offer also limits the server's window to 2**12
and names the deflate-frame extensions, which ws leaves out of its answer."""


@pytest.mark.parametrize("version", [13, 8])
@pytest.mark.parametrize(
    ("compression", "server_options", "answer"),
    [
        ("balanced", ["--deflate"], "permessage-deflate"),  # ws drops the bare client_max_window_bits
        ("balanced", ["--deflate", "--fragment"], "permessage-deflate"),
        (
            NO_TAKEOVER,
            ["--deflate"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
        ),
        (
            "balanced",
            ["--deflate=no-context", "--fragment"],
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("speed", ["--deflate", "--fragment"], "permessage-deflate"),  # deflated by ISA-L where installed
    ],
    ids=["takeover", "takeover-fragmented-echoes", "hybi-asks-no-takeover", "ws-asks-no-takeover", "speed"],
)
def test_hybi_client_compresses_with_ws_server(
    monkeypatch: pytest.MonkeyPatch, version: int, compression: Any, server_options: list[str], answer: str
) -> None:
    """Every message, whole and then in three frames, compressed both ways; the echoes of
    `--fragment` come back in three frames."""
    install_probe(monkeypatch)
    plan = messages()

    async def main(url: str) -> None:
        async with hybi.connect(url, versions=[version], max_size=None, compression=compression) as ws:
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
        if "--fragment" in server_options:
            assert len(frames.received) == 3 * len(frames.received_messages)

    with node_server("ws", *server_options) as (url, peer):
        run(main(url))
    [report] = peer.events
    assert report["answer"] == answer
    assert (report["extensions"], report["messages"], report["code"]) == ("permessage-deflate", 2 * len(plan), 1000)


@pytest.mark.parametrize("version", [13, 8])
@pytest.mark.parametrize(
    ("compression", "client_options", "fragment", "answer"),
    [
        ("balanced", ["--deflate"], False, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        (
            "balanced",
            ["--deflate", "--fragment"],
            True,
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        ),
        (
            "balanced",
            ["--deflate=no-context", "--fragment"],
            False,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12",
        ),
        (
            NO_TAKEOVER,
            ["--deflate"],
            True,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; "
            "client_max_window_bits=12",
        ),
        ("speed", ["--deflate", "--fragment"], True, "permessage-deflate"),  # deflated by ISA-L where installed
    ],
    ids=["takeover", "takeover-fragmented", "ws-asks-no-takeover", "hybi-asks-no-takeover", "speed"],
)
def test_ws_client_compresses_to_hybi_server(
    monkeypatch: pytest.MonkeyPatch,
    version: int,
    compression: Any,
    client_options: list[str],
    fragment: bool,
    answer: str,
) -> None:
    """ws's client sends every message compressed (in three frames with `--fragment`), hybi's
    server echoes it compressed (in three frames when `fragment`)."""
    install_probe(monkeypatch)
    options = [*client_options, "--noise"]

    async def main() -> tuple[dict[str, Any], list[hybi.ServerConnection]]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            try:
                async for message in ws:
                    await ws.send(fragments(message) if fragment else message)
            except hybi.ConnectionClosedError:
                pass

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None, compression=compression) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            result = await asyncio.to_thread(run_node_client, "ws", url, version, False, options)
        return result, connections

    result, [ws] = run(main(), timeout=90)
    assert result["event"] == "done", result
    assert result["mismatches"] == []
    total = result["total"]
    assert result["echoed"] == total == 2 * len(SIZES) + 8
    assert (result["answer"], result["extensions"]) == (answer, "permessage-deflate")
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
    assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
    frames = frames_of(ws)
    assert_all_compressed(frames, received=total, sent=total)
    assert_crossed_boundaries(frames)
    if "--fragment" in client_options:
        assert len(frames.received) == 3 * total


def test_ws_client_default_offer_is_answered() -> None:
    """ws's client offers permessage-deflate by default (no option given): what hybi's server
    answers with its default compression."""

    async def main() -> dict[str, Any]:
        async def handler(ws: hybi.ServerConnection) -> None:
            assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            return await asyncio.to_thread(run_node_client, "ws", url, 13)

    result = run(main(), timeout=90)
    assert result["event"] == "done" and result["mismatches"] == [], result
    assert result["offer"] == "permessage-deflate; client_max_window_bits"
    assert result["answer"] == "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"


def test_websocket_node_has_no_compression() -> None:
    """WebSocket-Node neither answers hybi's offer nor makes one: both sides send plain messages."""

    async def client(url: str) -> None:
        async with hybi.connect(url, max_size=None) as ws:
            assert ws.request_headers.get("Sec-WebSocket-Extensions") == "permessage-deflate; client_max_window_bits"
            assert ws.response_headers.get("Sec-WebSocket-Extensions") is None
            assert ws.extensions == ()
            for message in messages():
                await ws.send(message)
                assert await ws.recv() == message

    with node_server("websocket") as (url, peer):
        run(client(url))
    assert peer.events[0]["offer"] == "permessage-deflate; client_max_window_bits"

    async def server() -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
        seen: list[tuple[Any, ...]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append((ws.request_headers.get("Sec-WebSocket-Extensions"), ws.extensions))
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            return await asyncio.to_thread(run_node_client, "websocket", url, 13), seen

    result, seen = run(server(), timeout=90)
    assert result["event"] == "done" and result["mismatches"] == [], result
    assert (result["offer"], result["answer"]) == (None, None)
    assert seen == [(None, ())]


def test_takeover_stream_hybi_client_to_ws_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """3000 messages each way, every one compressed against the window of the ones before it."""
    install_probe(monkeypatch)

    async def main(url: str) -> None:
        async with hybi.connect(url, max_size=None) as ws:
            for index in range(STREAM_LENGTH):
                await ws.send(stream_message(index))
                assert await ws.recv() == stream_message(index)
        frames = frames_of(ws)
        assert_all_compressed(frames, received=STREAM_LENGTH, sent=STREAM_LENGTH)
        assert_taken_over([length for _, _, length in frames.sent])
        assert_taken_over([length for _, _, length in frames.received])

    with node_server("ws", "--deflate") as (url, peer):
        run(main(url), timeout=90)
    assert peer.events[0]["messages"] == STREAM_LENGTH


def test_takeover_stream_ws_client_to_hybi_server(monkeypatch: pytest.MonkeyPatch) -> None:
    install_probe(monkeypatch)

    async def main() -> tuple[dict[str, Any], list[hybi.ServerConnection]]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            options = ["--deflate", f"--stream={STREAM_LENGTH}"]
            return await asyncio.to_thread(run_node_client, "ws", url, 13, False, options), connections

    result, [ws] = run(main(), timeout=90)
    assert result["event"] == "done" and result["mismatches"] == [], result
    assert result["echoed"] == STREAM_LENGTH
    frames = frames_of(ws)
    assert_all_compressed(frames, received=STREAM_LENGTH, sent=STREAM_LENGTH)
    assert_taken_over([length for _, _, length in frames.received])
    assert_taken_over([length for _, _, length in frames.sent])


def test_uncompressed_messages_between_compressed_ones_with_ws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under context takeover, a message sent with compress=False must leave the window as it
    was (ws#983's pattern): compressed, plain, compressed, ... in both roles."""
    install_probe(monkeypatch)
    plan = [stream_message(index) for index in range(300)]

    def compress(index: int) -> bool:
        return index % 3 != 1

    async def client(url: str) -> None:
        async with hybi.connect(url, max_size=None) as ws:
            for index, message in enumerate(plan):
                await ws.send(message, compress=compress(index))
                assert await ws.recv() == message
        frames = frames_of(ws)
        assert frames.sent_messages == [compress(index) for index in range(len(plan))]
        assert all(frames.received_messages)

    with node_server("ws", "--deflate") as (url, _):
        run(client(url))

    async def server() -> tuple[dict[str, Any], list[hybi.ServerConnection]]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            index = 0
            async for message in ws:
                await ws.send(message, compress=compress(index))
                index += 1

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            options = ["--deflate", f"--stream={len(plan)}"]
            return await asyncio.to_thread(run_node_client, "ws", url, 13, False, options), connections

    result, [ws] = run(server(), timeout=90)
    assert result["event"] == "done" and result["mismatches"] == [], result
    assert result["echoed"] == len(plan)
    assert frames_of(ws).sent_messages == [compress(index) for index in range(len(plan))]


def test_window_bits_8_with_ws(monkeypatch: pytest.MonkeyPatch) -> None:
    """ws asking for 2**8 windows both ways, as server and as client. zlib cannot deflate
    within 2**8: both sides deflate with 2**9, which never refers back more than 250 bytes,
    and inflate with 2**8. Every message and a 3000-message stream come back intact."""
    install_probe(monkeypatch)
    plan = messages() + [stream_message(index) for index in range(STREAM_LENGTH)]

    async def client(url: str) -> hybi.ClientConnection:
        async with hybi.connect(url, max_size=None) as ws:
            assert ws.response_headers.get("Sec-WebSocket-Extensions") == (
                "permessage-deflate; client_max_window_bits=8; server_max_window_bits=8"
            )
            for message in plan:
                await ws.send(message)
                assert await ws.recv() == message
        return ws

    with node_server("ws", "--deflate=window-8") as (url, peer):
        ws = run(client(url), timeout=90)
    assert_all_compressed(frames_of(ws), received=len(plan), sent=len(plan))
    assert peer.events[0]["messages"] == len(plan)

    async def server() -> tuple[list[dict[str, Any]], list[hybi.ServerConnection]]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            results = [
                await asyncio.to_thread(run_node_client, "ws", url, 13, False, ["--deflate=window-8", *options])
                for options in (["--noise"], [f"--stream={STREAM_LENGTH}"])
            ]
        return results, connections

    results, connections = run(server(), timeout=90)
    for result, ws in zip(results, connections, strict=True):
        assert result["event"] == "done" and result["mismatches"] == [], result
        assert result["offer"] == "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"
        assert result["answer"] == "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"
        assert_all_compressed(frames_of(ws), received=result["total"], sent=result["total"])
