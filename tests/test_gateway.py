"""`hybi.gateway` over loopback, with hybi on both sides: every pair of dialects, the
deferred handshake, what crosses, what a dialect lacks, closing, and backpressure."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest

import hybi
from conftest import run
from hybi.gateway import Gateway, Route, parse_route, serve
from hybi.sansio.bridge import BinaryRule, CloseOrder, Side, carry_message, close_for_other_side
from hybi.sansio.connection import CloseInfo
from hybi.sansio.dialects.hybi08 import hybi07_08_close_code
from hybi.sansio.events import ConnectionFailed
from hybi.sansio.uri import parse_uri
from test_drafts import HIXIE76_ANSWER, HIXIE76_KEY3, HIXIE76_REQUEST

ALL = ["13", "8", "7", "6", "5", "hybi-02", "hixie-76", "hixie-75"]

Handler = Callable[[hybi.ServerConnection], Awaitable[None]]


async def echo(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def upstream_server(handler: Handler = echo, **options: Any) -> AsyncIterator[hybi.Server]:
    options.setdefault("versions", "13")
    async with hybi.serve(handler, "127.0.0.1", 0, **options) as server:
        yield server


@asynccontextmanager
async def through(upstream: hybi.Server, **options: Any) -> AsyncIterator[tuple[Gateway, str]]:
    """A gateway in front of `upstream`, and the ws:// URL of the gateway."""
    options.setdefault("versions", "all")
    async with serve(f"ws://127.0.0.1:{upstream.port}/", "127.0.0.1", 0, **options) as gw:
        yield gw, f"ws://127.0.0.1:{gw.port}"


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` to hold (the test's overall timeout guards against a hang)."""
    while not condition():
        await asyncio.sleep(0.005)


# -- every pair of dialects --------------------------------------------------------------


@pytest.mark.parametrize("upstream_version", ALL)
@pytest.mark.parametrize("client_version", ALL)
def test_every_pair_of_dialects(client_version: str, upstream_version: str) -> None:
    async def main() -> None:
        seen: list[str] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(str(ws.version))
            await echo(ws)

        async with (
            upstream_server(handler, versions="all") as up,
            through(up, upstream_versions=upstream_version) as (
                _,
                url,
            ),
            hybi.connect(url + "/", versions=client_version) as ws,
        ):
            assert str(ws.version) == client_version
            for size in (0, 1, 125, 126, 65535, 65536):
                text = ("é" + "x" * 9) * (size // 10) + "z" * (size % 10)
                await ws.send(text)
                assert await ws.recv() == text
            both_binary = client_version not in ("hixie-76", "hixie-75") and upstream_version not in (
                "hixie-76",
                "hixie-75",
            )
            if both_binary:
                data = bytes(range(256)) * 300
                await ws.send(data)
                assert await ws.recv() == data
        assert seen == [upstream_version]

    run(main())


def test_negotiation_finds_the_upstreams_version() -> None:
    async def main() -> None:
        async with (
            upstream_server(versions="hixie-76") as up,
            through(up) as (gw, url),
            hybi.connect(url + "/", versions="13") as ws,
        ):
            await ws.send("hi")
            assert await ws.recv() == "hi"
            (pair,) = gw.pairs
            assert pair.upstream.version == "hixie-76"
            assert [a.version for a in pair.upstream.handshake_attempts] == ["13", "hixie-76"]

    run(main())


# -- the deferred handshake --------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404])
def test_an_upstream_refusal_reaches_the_client(status: int) -> None:
    async def refuse(ws: hybi.ServerConnection, request: hybi.Request) -> hybi.Response:
        headers = hybi.Headers([("WWW-Authenticate", "Bearer"), ("Content-Type", "text/plain")])
        return hybi.Response(status, "Nope", headers, b"not you\n")

    async def main() -> None:
        async with upstream_server(process_request=refuse) as up, through(up) as (gw, url):
            for version in ("13", "8", "hixie-76", "hixie-75"):
                with pytest.raises(hybi.InvalidStatus) as caught:
                    await hybi.connect(url + "/", versions=version)
                response = caught.value.response
                assert (response.status, response.reason, response.body) == (status, "Nope", b"not you\n")
                assert response.headers.get("WWW-Authenticate") == "Bearer"
            assert not gw.pairs

    run(main())


def test_no_version_in_common_with_the_upstream_is_502() -> None:
    async def main() -> None:
        async with upstream_server(versions="13") as up, through(up, upstream_versions="hixie-76,8") as (_, url):
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url + "/", versions="13")
            assert caught.value.response.status == 502
            assert b"it lists 13" in caught.value.response.body

    run(main())


def test_an_unreachable_upstream_is_502() -> None:
    async def main() -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        async with serve(f"ws://127.0.0.1:{port}/", "127.0.0.1", 0, versions="all") as gw:
            for version in ("13", "hixie-76"):
                with pytest.raises(hybi.InvalidStatus) as caught:
                    await hybi.connect(f"ws://127.0.0.1:{gw.port}/", versions=version)
                assert caught.value.response.status == 502
                assert b"cannot be reached" in caught.value.response.body

    run(main())


def test_a_silent_upstream_is_504() -> None:
    async def main() -> None:
        held: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # reads nothing, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with serve(f"ws://127.0.0.1:{port}/", "127.0.0.1", 0, open_timeout=0.2) as gw:
                with pytest.raises(hybi.InvalidStatus) as caught:
                    await hybi.connect(f"ws://127.0.0.1:{gw.port}/", versions="13")
                assert caught.value.response.status == 504
        finally:
            for writer in held:
                writer.close()
            server.close()
            await server.wait_closed()

    run(main())


def test_hixie76_key3_held_back_by_a_proxy() -> None:
    """The 101 head leaves once the upstream accepted, before key3 arrives."""

    async def main() -> None:
        async with upstream_server() as up, through(up) as (gw, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(HIXIE76_REQUEST.replace(b"example.com", b"127.0.0.1"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n")
            assert b"Sec-WebSocket-Location: ws://127.0.0.1/demo\r\n" in head
            writer.write(HIXIE76_KEY3 + b"\x00hello\xff")
            assert await reader.readexactly(16) == HIXIE76_ANSWER
            assert await reader.readuntil(b"\xff") == b"\x00hello\xff"
            writer.write(b"\xff\x00")
            assert await reader.read() == b"\xff\x00"
            writer.close()

    run(main())


def test_public_scheme_names_wss_in_the_hixie_location() -> None:
    async def main() -> None:
        async with upstream_server() as up, through(up, public_scheme="wss") as (gw, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(HIXIE76_REQUEST.replace(b"example.com", b"127.0.0.1"))
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"Sec-WebSocket-Location: wss://127.0.0.1/demo\r\n" in head
            writer.close()

    run(main())


# -- what crosses --------------------------------------------------------------------------


def test_path_query_headers_subprotocol_and_cookies_cross() -> None:
    async def main() -> None:
        requests: list[hybi.Request] = []

        async def record(ws: hybi.ServerConnection, request: hybi.Request) -> None:
            requests.append(request)

        def stamp(ws: hybi.ServerConnection, request: hybi.Request, response: hybi.Response) -> None:
            response.headers.add("Set-Cookie", "session=abc")

        async with (
            upstream_server(
                versions="13", process_request=record, process_response=stamp, subprotocols=["chat.v2", "chat"]
            ) as up,
            through(up) as (gw, url),
        ):
            ports = (up.port, gw.port)
            headers = {
                "Cookie": "a=1",
                "Authorization": "Bearer t",
                "X-Forwarded-For": "192.0.2.1",
                "X-Secret": "stays",
            }
            async with hybi.connect(
                url + "/room/7?user=x",
                versions="8",
                subprotocols=["chat", "chat.v2"],
                origin="http://app.example",
                additional_headers=headers,
                user_agent_header="OldBrowser/1.0",
            ) as ws:
                assert ws.subprotocol == "chat.v2"  # the upstream's choice
                assert ws.response_headers.get_all("Set-Cookie") == ["session=abc"]
        (request,) = requests
        assert request.target == "/room/7?user=x"
        assert request.headers.get("Host") == f"127.0.0.1:{ports[0]}"
        assert request.origin == "http://app.example"
        assert request.headers.get("Cookie") == "a=1"
        assert request.headers.get("Authorization") == "Bearer t"
        assert request.headers.get("User-Agent") == "OldBrowser/1.0"
        assert request.headers.get("X-Forwarded-For") == "192.0.2.1, 127.0.0.1"
        assert request.headers.get("Forwarded") == f'for=127.0.0.1;proto=http;host="127.0.0.1:{ports[1]}"'
        assert "X-Secret" not in request.headers
        assert request.headers.get("Sec-WebSocket-Protocol") == "chat, chat.v2"

    run(main())


def test_a_hixie_upstream_is_offered_the_clients_first_subprotocol() -> None:
    async def main() -> None:
        offers: list[str | None] = []

        async def record(ws: hybi.ServerConnection, request: hybi.Request) -> None:
            offers.append(request.headers.get("Sec-WebSocket-Protocol"))

        async with (
            upstream_server(versions="hixie-76", process_request=record, subprotocols=["first"]) as up,
            through(up) as (_, url),
            hybi.connect(url + "/", versions="13", subprotocols=["first", "second"]) as ws,
        ):
            assert ws.subprotocol == "first"
        # The offer as it came (refused: 426); negotiation again with the first alone.
        assert offers == ["first, second", "first", "first"]

    run(main())


@pytest.mark.parametrize(("rule", "expected"), [("keep", "http://app.example"), ("upstream", None), (None, None)])
def test_origin_kept_or_rewritten(rule: str | None, expected: str | None) -> None:
    async def main() -> None:
        origins: list[str | None] = []

        async def record(ws: hybi.ServerConnection, request: hybi.Request) -> None:
            origins.append(request.origin)

        async with upstream_server(process_request=record) as up, through(up, origin=rule) as (_, url):
            port = up.port
            async with hybi.connect(url + "/", versions="hixie-76", origin="http://app.example"):
                pass
        wanted = f"http://127.0.0.1:{port}" if rule == "upstream" else expected
        assert origins == [wanted]

    run(main())


def test_routes_by_path() -> None:
    async def main() -> None:
        async def tag(name: str) -> Handler:
            async def handler(ws: hybi.ServerConnection) -> None:
                await ws.send(f"{name} {ws.path}")

            return handler

        async with upstream_server(await tag("chat")) as chat, upstream_server(await tag("cam")) as cam:
            routes = [f"/chat=ws://127.0.0.1:{chat.port}/", f"/cam=ws://127.0.0.1:{cam.port}/base/"]
            async with serve(None, "127.0.0.1", 0, routes=routes, versions="all") as gw:
                url = f"ws://127.0.0.1:{gw.port}"
                for path, answer in [
                    ("/chat", "chat /"),
                    ("/chat/room?x=1", "chat /room?x=1"),
                    ("/cam", "cam /base/"),
                    ("/cam/7", "cam /base/7"),
                ]:
                    async with hybi.connect(url + path, versions="hixie-76") as ws:
                        assert await ws.recv() == answer
                with pytest.raises(hybi.InvalidStatus) as caught:
                    await hybi.connect(url + "/chatter", versions="13")
                assert caught.value.response.status == 404

    run(main())


def test_route_resources() -> None:
    route = parse_route("/a=ws://h:1/base?k=v")
    assert route.resource("/a") == route.resource("/a/") == "/base?k=v"
    assert route.resource("/a/b?c=d") == "/base/b?k=v&c=d"
    assert Route("/", parse_uri("ws://h/")).resource("/x/y?z") == "/x/y?z"
    with pytest.raises(ValueError, match="a route is"):
        parse_route("chat=ws://h/")


# -- what a dialect lacks ------------------------------------------------------------------


def test_binary_rules_are_data() -> None:
    assert carry_message(b"\x00", binary_supported=True, rule=BinaryRule.REFUSE) == b"\x00"
    assert carry_message("t", binary_supported=False, rule=BinaryRule.REFUSE) == "t"
    assert carry_message(b"\xff", binary_supported=False, rule=BinaryRule.BASE64) == "/w=="
    assert carry_message(b"\xff", binary_supported=False, rule=BinaryRule.DROP) is BinaryRule.DROP


@pytest.mark.parametrize("rule", ["refuse", "drop", "base64"])
def test_binary_towards_a_hixie_client(rule: str) -> None:
    data = bytes(range(256))

    async def main() -> None:
        upstream_close: list[int | None] = []

        async def sender(ws: hybi.ServerConnection) -> None:
            await ws.send(data)
            await ws.send("after")
            with suppress(hybi.ConnectionClosed):
                await ws.recv()
            upstream_close.append(ws.close_code)

        async with (
            upstream_server(sender) as up,
            through(up, binary=rule) as (_, url),
            hybi.connect(url + "/", versions="hixie-76") as ws,
        ):
            if rule == "refuse":
                with pytest.raises(hybi.ConnectionClosed):
                    await ws.recv()
            elif rule == "drop":
                assert await ws.recv() == "after"
            else:
                assert base64.b64decode(await ws.recv()) == data
                assert await ws.recv() == "after"
        if rule == "refuse":
            assert upstream_close == [1003]

    run(main())


def test_close_rules() -> None:
    def info(code: int, reason: str = "", failure: ConnectionFailed | None = None) -> CloseInfo:
        return CloseInfo(code, reason, None, "", False, failure, "")

    rfc = hybi07_08_close_code
    assert close_for_other_side(info(4001, "bye"), Side.CLIENT, rfc) == CloseOrder(4001, "bye")
    assert close_for_other_side(info(4001, "bye"), Side.CLIENT, None) == CloseOrder(None, "")
    assert close_for_other_side(info(1005), Side.UPSTREAM, rfc) == CloseOrder(None, "")
    assert close_for_other_side(info(1006), Side.CLIENT, rfc) == CloseOrder(1001, "client went away")
    assert close_for_other_side(info(1006), Side.UPSTREAM, rfc) == CloseOrder(1011, "upstream connection lost")
    failed = info(1006, failure=ConnectionFailed(1009, "too big"))
    assert close_for_other_side(failed, Side.UPSTREAM, rfc) == CloseOrder(1011, "upstream connection failed: 1009")
    assert close_for_other_side(info(1004, "old"), Side.UPSTREAM, lambda c: c != 1004) == CloseOrder(1011, "1004 old")
    assert close_for_other_side(info(1000, "x" * 200), Side.CLIENT, rfc).reason == "x" * 123


@pytest.mark.parametrize("client_version", ["13", "8", "hybi-02", "hixie-76", "hixie-75"])
def test_closes_cross_both_ways(client_version: str) -> None:
    has_status = client_version in ("13", "8")

    async def main() -> None:
        closes: list[int | None] = []

        async def wait_for_close(ws: hybi.ServerConnection) -> None:
            with pytest.raises(hybi.ConnectionClosed):
                while True:
                    await ws.recv()
            closes.append(ws.close_code)

        async def close_first(ws: hybi.ServerConnection) -> None:
            await ws.close(4002, "upstream says bye")

        async with upstream_server(wait_for_close) as up, through(up) as (_, url):
            ws = await hybi.connect(url + "/", versions=client_version)
            if has_status:
                await ws.close(4001, "client says bye")
            else:
                await ws.close()
            await until(lambda: bool(closes))
        assert closes == [4001 if has_status else 1005]

        async with upstream_server(close_first) as up, through(up) as (_, url):
            ws = await hybi.connect(url + "/", versions=client_version)
            with pytest.raises(hybi.ConnectionClosed):
                await ws.recv()
            if has_status:
                assert (ws.close_code, ws.close_reason) == (4002, "upstream says bye")
            else:
                assert ws.close_code == 1005

    run(main())


def test_abrupt_drops() -> None:
    async def main() -> None:
        closes: list[tuple[int | None, str | None]] = []

        async def wait_for_close(ws: hybi.ServerConnection) -> None:
            try:
                async for _ in ws:
                    pass
            except hybi.ConnectionClosed:
                pass
            closes.append((ws.close_code, ws.close_reason))

        async with upstream_server(wait_for_close) as up, through(up) as (_, url):
            ws = await hybi.connect(url + "/", versions="13")
            assert ws.transport is not None
            ws.transport.abort()
            await until(lambda: bool(closes))
        assert closes == [(1001, "client went away")]

        async def drop(ws: hybi.ServerConnection) -> None:
            assert ws.transport is not None
            ws.transport.abort()

        async with upstream_server(drop) as up, through(up) as (_, url):
            ws = await hybi.connect(url + "/", versions="8")
            with pytest.raises(hybi.ConnectionClosedError):
                await ws.recv()
            assert (ws.close_code, ws.close_reason) == (1011, "upstream connection lost")

    run(main())


def test_shutdown_closes_both_sides_with_1001() -> None:
    async def main() -> None:
        closes: list[int | None] = []

        async def wait_for_close(ws: hybi.ServerConnection) -> None:
            async for _ in ws:
                pass
            closes.append(ws.close_code)

        async with upstream_server(wait_for_close) as up:
            gw = await serve(f"ws://127.0.0.1:{up.port}/", "127.0.0.1", 0)
            ws = await hybi.connect(f"ws://127.0.0.1:{gw.port}/", versions="13")
            await ws.send("x")
            gw.close()
            await gw.wait_closed(timeout=10)
            with pytest.raises(hybi.ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1001
            await until(lambda: bool(closes))
        assert closes == [1001]

    run(main())


def test_the_drain_drops_what_did_not_close_by_its_deadline() -> None:
    """An upstream that stopped reading never answers the close: the drain's deadline (far
    below the close timeout of 60 s, past the test's 30 s guard) ends it."""

    async def main() -> None:
        stalled: list[hybi.ServerConnection] = []

        async def never_reads(ws: hybi.ServerConnection) -> None:
            stalled.append(ws)
            await ws.wait_closed()

        async with upstream_server(never_reads, max_queue=1, close_timeout=1) as up:
            gw = await serve(f"ws://127.0.0.1:{up.port}/", "127.0.0.1", 0, close_timeout=60, max_queue=1)
            ws = await hybi.connect(f"ws://127.0.0.1:{gw.port}/", versions="13")
            await until(lambda: bool(stalled) and bool(gw.pairs))
            (pair,) = gw.pairs
            await ws.send("x")
            await until(lambda: stalled[0]._reading_paused)  # the close frame will stay unread
            gw.close()
            await gw.wait_closed(timeout=0.5)
            assert not gw.pairs
            assert pair.upstream.protocol.state is hybi.sansio.State.CLOSED
            with pytest.raises(hybi.ConnectionClosed):
                await ws.recv()

    run(main())


# -- extensions, security ------------------------------------------------------------------


def test_each_side_negotiates_its_own_compression() -> None:
    async def main() -> None:
        extensions: list[tuple[str, ...]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            extensions.append(tuple(extension.name for extension in ws.extensions))
            await echo(ws)

        async with (
            upstream_server(handler, versions="hixie-76") as up,
            through(up) as (_, url),
            hybi.connect(url + "/", versions="13") as ws,
        ):
            assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
            await ws.send("a" * 10000)
            assert await ws.recv() == "a" * 10000
        async with (
            upstream_server(handler, versions="13") as up,
            through(up) as (_, url),
            hybi.connect(url + "/", versions="hixie-76") as ws,
        ):
            await ws.send("b" * 10000)
            assert await ws.recv() == "b" * 10000
        assert extensions == [(), ("permessage-deflate",)]

    run(main())


def test_unmasked_drafts_are_opt_in_and_origins_checked_before_the_upstream() -> None:
    async def main() -> None:
        opened: list[str] = []

        async def record(ws: hybi.ServerConnection, request: hybi.Request) -> None:
            opened.append(request.target)

        async with (
            upstream_server(process_request=record) as up,
            through(up, versions=(13, 8, 7), origins=["http://good"]) as (_, url),
        ):
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url + "/", versions="hixie-76", origin="http://good")
            assert caught.value.response.status in (400, 426)
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url + "/", versions="13", origin="http://evil")
            assert caught.value.response.status == 403
            async with hybi.connect(url + "/ok", versions="13", origin="http://good"):
                pass
        assert opened == ["/ok"]

    run(main())


def test_connections_per_address_are_limited() -> None:
    async def main() -> None:
        async with upstream_server() as up, through(up, max_per_address=2) as (_, url):
            first = await hybi.connect(url + "/", versions="13")
            second = await hybi.connect(url + "/", versions="hixie-76")
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url + "/", versions="13")
            assert caught.value.response.status == 429
            await first.close()
            async with hybi.connect(url + "/", versions="13") as third:
                await third.send("x")
                assert await third.recv() == "x"
            await second.close()

    run(main())


# -- backpressure ----------------------------------------------------------------------------


@pytest.mark.parametrize("slow", ["client", "upstream"])
def test_a_reader_that_stops_stops_the_other_side(slow: str) -> None:
    """A reader that stops makes the gateway stop reading from the sender, and the memory
    the gateway holds for the pair stays within the size limits."""
    size, count, max_queue = 64 * 1024, 1024, 4  # 64 MiB: more than every socket buffer
    payload = "x" * size

    async def main() -> None:
        stop_reading = asyncio.Event()
        received: list[int] = []
        upstream_ws: list[hybi.ServerConnection] = []

        async def upstream_side(ws: hybi.ServerConnection) -> None:
            upstream_ws.append(ws)
            if slow == "upstream":
                await stop_reading.wait()
                for _ in range(count):
                    received.append(len(await ws.recv()))
            else:
                for _ in range(count):
                    await ws.send(payload)
            await ws.wait_closed()

        async with (
            upstream_server(upstream_side, max_queue=max_queue, max_size=size, compression=None) as up,
            through(up, max_queue=max_queue, max_size=size, compression=None, upstream_compression=None) as (gw, url),
        ):
            ws = await hybi.connect(url + "/", versions="8", max_queue=max_queue, max_size=size, compression=None)
            await until(lambda: bool(gw.pairs) and bool(upstream_ws))
            (pair,) = gw.pairs
            sender_ws = ws if slow == "upstream" else upstream_ws[0]
            source = pair.client if slow == "upstream" else pair.upstream
            sent = 0

            async def send_all() -> None:
                nonlocal sent
                for _ in range(count):
                    if slow == "upstream":
                        await ws.send(payload)
                    sent += 1

            sending = asyncio.ensure_future(send_all()) if slow == "upstream" else None
            # The chain stops: the gateway stops reading from the sender, which cannot write.
            await until(lambda: source._reading_paused and sender_ws.writing_paused)
            bound = (max_queue + 2) * size + 2 * 64 * 1024
            assert pair.buffered() <= bound
            if slow == "upstream":
                assert sending is not None and not sending.done()
                assert sent < count
                stop_reading.set()
                await sending
                await until(lambda: len(received) == count)
            else:
                for _ in range(count):
                    assert len(await ws.recv()) == size
            assert pair.buffered() <= bound
            await ws.close()

    run(main(), timeout=120)


# -- the command line ------------------------------------------------------------------------


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    """`hybi gateway ARGS` in a process of its own, and the port it listens on."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hybi", "gateway", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"gateway on ws://[^ ]*:(\d+)/", line)
    assert found, line + process.communicate(timeout=10)[1]
    return process, int(found.group(1))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _established(pid: int, port: int) -> int:
    """TCP connections to local `port` that process `pid` holds (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    count = 0
    with open("/proc/net/tcp") as table:
        for row in table.readlines()[1:]:
            fields = row.split()
            if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port and fields[9] in inodes:
                count += 1
    return count


def test_cli_serves_and_drains_on_sigterm() -> None:
    async def main() -> None:
        async with upstream_server() as up:
            process, port = await asyncio.to_thread(
                _start_cli, "--listen", "127.0.0.1:0", "--upstream", f"ws://127.0.0.1:{up.port}/", "--versions", "all"
            )
            try:
                ws = await hybi.connect(f"ws://127.0.0.1:{port}/", versions="hixie-76")
                await ws.send("through the command")
                assert await ws.recv() == "through the command"
                modern = await hybi.connect(f"ws://127.0.0.1:{port}/", versions="13")
                process.send_signal(signal.SIGTERM)
                with pytest.raises(hybi.ConnectionClosed):
                    await modern.recv()
                assert modern.close_code == 1001
                with pytest.raises(hybi.ConnectionClosed):
                    await ws.recv()
                assert await asyncio.to_thread(process.wait, 20) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()

    run(main())


def test_cli_workers_share_the_port() -> None:
    async def main() -> None:
        async with upstream_server() as up:
            port = _free_port()
            process, _ = await asyncio.to_thread(
                _start_cli,
                "--listen",
                f"127.0.0.1:{port}",
                "--upstream",
                f"ws://127.0.0.1:{up.port}/",
                "--workers",
                "2",
            )
            try:
                assert process.stdout is not None
                await asyncio.to_thread(process.stdout.readline)  # the second worker listens too
                with open(f"/proc/{process.pid}/task/{process.pid}/children") as children:
                    workers = [int(pid) for pid in children.read().split()]
                assert len(workers) == 2
                connections = [await hybi.connect(f"ws://127.0.0.1:{port}/", versions="8") for _ in range(16)]
                for index, ws in enumerate(connections):
                    await ws.send(str(index))
                    assert await ws.recv() == str(index)
                counts = [_established(pid, port) for pid in workers]
                assert sum(counts) == 16 and all(counts), counts
                process.send_signal(signal.SIGTERM)
                for ws in connections:
                    with pytest.raises(hybi.ConnectionClosed):
                        await ws.recv()
                    assert ws.close_code == 1001
                assert await asyncio.to_thread(process.wait, 20) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()

    run(main(), timeout=60)
