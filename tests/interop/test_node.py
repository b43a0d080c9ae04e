"""Interoperability with Node's "ws" and "websocket" (WebSocket-Node), both roles."""

from __future__ import annotations

import asyncio

import pytest
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
