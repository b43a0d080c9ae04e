"""The asyncio server and client over loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

import hybi
from conftest import raw_frame, run, tls_contexts
from hybi.sansio.connection import Connection, ServerConnection
from hybi.sansio.dialects.keyaccept import accept_value
from hybi.sansio.events import State
from hybi.sansio.handshake import ServerHandshake
from hybi.sansio.http import Headers, Response, parse_request_head


async def echo(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def echo_server(
    handler: Callable[[hybi.ServerConnection], Awaitable[None]] = echo, **options: Any
) -> AsyncIterator[str]:
    options.setdefault("versions", (13, 8, 7))
    async with hybi.serve(handler, "127.0.0.1", 0, **options) as server:
        yield f"ws://127.0.0.1:{server.port}/"


def run_on(main: Callable[[], Coroutine[Any, Any, None]], use_uvloop: bool) -> None:
    """Run `main()` on uvloop (skipped where it is missing) or on asyncio's own loop."""
    if use_uvloop:
        uvloop = pytest.importorskip("uvloop")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(asyncio.wait_for(main(), 30))
    else:
        run(main())


# -- basics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [13, 8, 7])
def test_echo_text_and_binary_in_every_version(version: int) -> None:
    async def main() -> None:
        seen: list[int | str | None] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(ws.version)
            await echo(ws)

        async with echo_server(handler) as url, hybi.connect(url, versions=[version]) as ws:
            assert ws.version == version
            for size in (0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000):
                text = ("aé" * size)[:size]
                await ws.send(text)
                assert await ws.recv() == text
                data = bytes(i % 251 for i in range(size))
                await ws.send(data)
                assert await ws.recv() == data
        assert seen == [version]

    run(main())


def test_echo_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        async with echo_server() as url, hybi.connect(url, versions="8,13") as ws:
            await ws.send("on uvloop")
            assert await ws.recv() == "on uvloop"
            await ws.send(bytes(70000))
            assert await ws.recv() == bytes(70000)
            await (await ws.ping())

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(main(), 20))


def test_issue_example_negotiates_version_8() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0, versions=(13, 8, 7)) as server:  # noqa: SIM117 - needs server.port
            async with hybi.connect(f"ws://127.0.0.1:{server.port}/", versions=(8, 13)) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                assert ws.version == 8
                assert [a.version for a in ws.handshake_attempts] == ["8"]

    run(main())


def test_request_details_reach_the_handler() -> None:
    async def main() -> None:
        async def handler(ws: hybi.ServerConnection) -> None:
            origin = ws.request.origin if ws.request else ""
            await ws.send(f"{ws.path} {ws.request_headers.get('X-Token')} {ws.subprotocol} {origin}")

        options = {"subprotocols": ["chat", "superchat"]}
        async with echo_server(handler, **options) as url:
            for version, origin in ((13, "http://a"), (8, "http://b")):
                async with hybi.connect(
                    url + "room?x=1",
                    versions=[version],
                    subprotocols=["superchat", "chat"],
                    origin=origin,
                    extra_headers=[("X-Token", "secret")],
                ) as ws:
                    assert await ws.recv() == f"/room?x=1 secret chat {origin}"
                    assert ws.subprotocol == "chat"

    run(main())


def test_fragmented_send() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url) as ws:
            await ws.send(["Hel", "lo"])
            assert await ws.recv() == "Hello"

            async def parts() -> AsyncIterator[bytes]:
                for part in (b"a", b"b", b"c"):
                    yield part

            await ws.send(parts())
            assert await ws.recv() == b"abc"
            with pytest.raises(TypeError, match="mixes"):
                await ws.send(["a", b"b"])

    run(main())


def test_ping_resolves_with_the_pong() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url) as ws:
            latency = await (await ws.ping("marker"))
            assert 0 <= latency < 5
            first, second = await ws.ping(), await ws.ping()
            await second
            assert first.done()

    run(main())


def test_keepalive_pings_flow() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url, ping_interval=0.05, ping_timeout=1) as ws:
            latencies: list[float] = []
            original = ws._pong_received

            def counting_pong(data: bytes) -> None:  # every pong that arrives
                original(data)
                assert ws.latency is not None
                latencies.append(ws.latency)

            ws._pong_received = counting_pong  # type: ignore[method-assign]
            await asyncio.sleep(0.4)
            assert len(latencies) >= 3  # keepalive pings went out and their pongs came back
            await ws.send("still here")
            assert await ws.recv() == "still here"

    run(main())


def test_keepalive_closes_with_1011_when_pongs_stop() -> None:
    async def main() -> None:
        async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            handshake = ServerHandshake()
            request = handshake.receive_data(await reader.readuntil(b"\r\n\r\n"))
            assert request is not None
            reply, _ = handshake.accept(request, handshake.negotiate(request))
            writer.write(reply)
            await reader.read()  # never answers a ping, nor the close frame
            writer.close()

        server = await asyncio.start_server(deaf, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            ws = await hybi.connect(f"ws://127.0.0.1:{port}/", ping_interval=0.05, ping_timeout=0.1, close_timeout=0.2)
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.sent_code == 1011
            assert "no pong within 0.1 s" in str(caught.value)

    run(main())


# -- closing ----------------------------------------------------------------------------------


def test_close_codes_both_ways() -> None:
    async def main() -> None:
        closed: list[tuple[int | None, str | None]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            try:
                async for message in ws:
                    if message == "close-me":
                        await ws.close(4001, "server-bye")
            except hybi.ConnectionClosedError:  # 4000 is not a normal closure
                pass
            closed.append((ws.close_code, ws.close_reason))

        async with echo_server(handler) as url:
            async with hybi.connect(url) as ws:
                await ws.close(4000, "client-bye")
                assert ws.close_code == 4000  # the server echoes the code
            await asyncio.sleep(0.05)
            assert closed == [(4000, "client-bye")]

            async with hybi.connect(url) as ws:
                await ws.send("close-me")
                with pytest.raises(hybi.ConnectionClosedError) as caught:
                    await ws.recv()
                assert (caught.value.code, caught.value.reason) == (4001, "server-bye")

    run(main())


def test_normal_close_ends_iteration() -> None:
    async def main() -> None:
        async def handler(ws: hybi.ServerConnection) -> None:
            await ws.send("one")
            await ws.send("two")

        async with echo_server(handler) as url, hybi.connect(url) as ws:
            assert [m async for m in ws] == ["one", "two"]
            assert ws.close_code == 1000
            with pytest.raises(hybi.ConnectionClosedOK):
                await ws.send("late")

    run(main())


def test_handler_error_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async def handler(ws: hybi.ServerConnection) -> None:
            raise RuntimeError("boom")

        async with echo_server(handler) as url, hybi.connect(url) as ws:
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 1011

    with caplog.at_level(logging.ERROR, "hybi"):
        run(main())
    assert "connection handler failed" in caplog.text


def test_server_shutdown_closes_with_1001() -> None:
    async def main() -> None:
        server = await hybi.serve(echo, "127.0.0.1", 0)
        ws = await hybi.connect(f"ws://127.0.0.1:{server.port}/")
        server.close()
        await server.wait_closed()
        with pytest.raises(hybi.ConnectionClosedOK) as caught:
            await ws.recv()
        assert caught.value.code == 1001

    run(main())


def test_message_too_big_closes_with_1009() -> None:
    async def main() -> None:
        async with echo_server(max_size=1000) as url, hybi.connect(url) as ws:
            await ws.send(bytes(1000))
            assert await ws.recv() == bytes(1000)
            await ws.send(bytes(1001))
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 1009

    run(main())


async def raw_client(url_port: int, version: str = "13") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", url_port)
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: " + version.encode() + b"\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    return reader, writer


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (raw_frame(0x81, b"\xff\xfe"), 1007),
        (raw_frame(0x81, b"hi", mask=None), 1002),
        (raw_frame(0xC1, b"hi"), 1002),
        (raw_frame(0x88, b"\x03"), 1002),
    ],
)
def test_bad_frames_from_a_raw_client(frame: bytes, code: int) -> None:
    async def main() -> None:
        server = await hybi.serve(echo, "127.0.0.1", 0)
        async with server:
            reader, writer = await raw_client(server.port)
            writer.write(frame)
            reply = await reader.read()  # the server sends its close frame, then closes TCP
            assert reply[:1] == b"\x88"
            assert int.from_bytes(reply[2:4], "big") == code
            writer.close()

    run(main())


@pytest.mark.parametrize("use_uvloop", [False, True])
def test_echo_of_a_message_before_a_bad_frame_goes_out_before_the_close(use_uvloop: bool) -> None:
    """Autobahn 3.2, 4.1.3, 5.15: a message and a bad frame in one read; the handler's echo
    still reaches the client, then the close frame with 1002."""

    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0) as server:
            reader, writer = await raw_client(server.port)
            writer.write(raw_frame(0x81, b"Hello") + raw_frame(0xA1, b"bad") + raw_frame(0x89, b""))
            reply = await asyncio.wait_for(reader.read(), 10)
            assert reply[:7] == b"\x81\x05Hello"
            assert reply[7:8] == b"\x88" and int.from_bytes(reply[9:11], "big") == 1002
            writer.close()

    run_on(main, use_uvloop)


def test_half_handshake_times_out() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0, open_timeout=0.2) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            assert await reader.read() == b""  # dropped, not kept forever
            writer.close()

    run(main())


# -- the handshake hooks -------------------------------------------------------------------


def test_process_request_can_refuse_with_a_custom_response() -> None:
    async def main() -> None:
        async def auth(ws: hybi.ServerConnection, request: hybi.Request) -> hybi.Response | None:
            if request.headers.get("Authorization") != "Bearer ok":
                return hybi.Response(401, "Unauthorized", hybi.Headers([("WWW-Authenticate", "Bearer")]), b"no\n")
            return None

        async with echo_server(process_request=auth) as url:
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url)
            assert caught.value.response.status == 401
            assert caught.value.response.headers.get("WWW-Authenticate") == "Bearer"
            async with hybi.connect(url, extra_headers=[("Authorization", "Bearer ok")]) as ws:
                await ws.send("in")
                assert await ws.recv() == "in"

    run(main())


def test_origin_check() -> None:
    async def main() -> None:
        async with echo_server(origins=["https://good.example"]) as url:
            for version in (13, 8):
                async with hybi.connect(url, versions=[version], origin="https://good.example") as ws:
                    assert ws.version == version
                with pytest.raises(hybi.InvalidStatus) as caught:
                    await hybi.connect(url, versions=[version], origin="https://evil.example")
                assert caught.value.response.status == 403

    run(main())


def test_select_subprotocol_hook() -> None:
    async def main() -> None:
        def pick(ws: hybi.ServerConnection, offered: Sequence[str]) -> str | None:
            return offered[-1] if offered else None

        async with echo_server(select_subprotocol=pick) as url, hybi.connect(url, subprotocols=["a", "b"]) as ws:
            assert ws.subprotocol == "b"

    run(main())


# -- section 4.4: the client's retry ---------------------------------------------------------


class FakeServer:
    """Answers a refusal of a fixed form to every version it does not accept; completes
    the handshake (and echoes) for the ones it does."""

    def __init__(self, status: int, fields: Sequence[str], accepts: str | None, body: bytes = b"") -> None:
        self.status = status
        self.fields = fields
        self.accepts = accepts
        self.body = body
        self.requests: list[str | None] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        parsed = parse_request_head(head)
        assert parsed is not None
        request = parsed[0]
        version = request.headers.get("Sec-WebSocket-Version")
        self.requests.append(version)
        if self.accepts is not None and version in self.accepts.split(","):
            server = ServerConnection(self.accepts)
            server.receive_data(head)
            server.accept()
            writer.write(server.data_to_send())
            await self.echo(server, reader, writer)
        else:
            headers = Headers([("Sec-WebSocket-Version", value) for value in self.fields])
            headers.add("Content-Length", str(len(self.body)))
            writer.write(Response(self.status, "Refused", headers, self.body).serialize())
        writer.close()

    @staticmethod
    async def echo(session: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            for event in session.receive_data(data):
                if isinstance(event, str):
                    session.send_text(event)
                elif isinstance(event, bytes):
                    session.send_binary(event)
            writer.write(session.data_to_send())
            if session.state is State.CLOSED:
                return

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        async with server:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


# (who sends it, status, header fields, versions the server really accepts, client versions, expected)
RETRY_CASES = [
    ("Netty / WebSocket-Node", 426, ["13"], "13", "8,13", "13"),
    ("ascending order, as Tornado lists", 426, ["7, 8"], "7,8", "13,8,7", "8"),
    ("client preference beats server order", 426, ["8, 7"], "8,7", "13,7,8", "7"),
    ("autobahn, no space", 400, ["13,8"], "13,8", "7,8,13", "8"),
    ("ws", 400, ["13, 8"], "13,8", "7,13,8", "13"),
    ("gorilla / Jetty 9", 400, ["13"], "13", "7,13", "13"),
    ("Jetty 8, unknown versions listed", 400, ["13, 8, 6, 0"], "13,8", "7,8", "8"),
    ("Ratchet 0.3", 400, ["13, 6, 0"], "13", "8,13", "13"),
    ("repeated fields", 400, ["13", "8"], "13,8", "7,8,13", "8"),
    ("repeated fields with lists", 426, ["8, 13", "13"], "13,8", "7,13,8", "13"),
    ("extra spaces", 426, ["  8 ,  13 "], "8,13", "7,13,8", "13"),
]


@pytest.mark.parametrize(
    ("who", "status", "fields", "accepts", "client", "expected"), RETRY_CASES, ids=[c[0] for c in RETRY_CASES]
)
def test_retry_with_the_best_common_version(
    who: str, status: int, fields: list[str], accepts: str, client: str, expected: str
) -> None:
    async def main() -> None:
        fake = FakeServer(status, fields, accepts)
        async with fake.running() as url, hybi.connect(url, versions=client) as ws:
            assert str(ws.version) == expected
            first = client.split(",", maxsplit=1)[0]
            assert fake.requests == [first, expected]
            assert [(a.version, a.status) for a in ws.handshake_attempts] == [(first, status), (expected, 101)]
            await ws.send("after retry")
            assert await ws.recv() == "after retry"

    run(main())


def test_no_common_version_names_both_lists() -> None:
    async def main() -> None:
        fake = FakeServer(426, ["13"], "13")
        async with fake.running() as url:
            with pytest.raises(hybi.NoCommonVersion) as caught:
                await hybi.connect(url, versions="8,7")
        error = caught.value
        assert str(error) == "no WebSocket version in common: client offers 8, 7; server accepts 13"
        assert error.client_versions == ("8", "7")
        assert error.server_versions == (13,)
        assert fake.requests == ["8"]

    run(main())


def test_refusal_without_a_list_names_both_sides() -> None:
    async def main() -> None:
        fake = FakeServer(400, [], None, body=b"Unsupported version: 8\n")
        async with fake.running() as url:
            with pytest.raises(hybi.NoCommonVersion) as caught:
                await hybi.connect(url, versions="8,13")
        message = str(caught.value)
        assert "refused version 8 with 400 Refused (Unsupported version: 8)" in message
        assert "client offers 8, 13; server accepts (not listed)" in message
        assert fake.requests == ["8"]

    run(main())


def test_never_retries_twice() -> None:
    """A server that lists 13 yet refuses it too gets two requests, not a loop."""

    async def main() -> None:
        fake = FakeServer(426, ["13"], None)
        async with fake.running() as url:
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url, versions="8,13")
        assert fake.requests == ["8", "13"]
        assert caught.value.response.status == 426

    run(main())


def test_refusal_of_a_listed_version_is_not_a_version_problem() -> None:
    """A server that refuses version 8 while listing 8 refused something else: no retry."""

    async def main() -> None:
        fake = FakeServer(400, ["8, 13"], "13")
        async with fake.running() as url:
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url, versions="8,13")
        assert not isinstance(caught.value, hybi.NoCommonVersion)
        assert fake.requests == ["8"]

    run(main())


@pytest.mark.parametrize("status", [403, 404, 500, 302])
def test_other_refusals_are_not_retried(status: int) -> None:
    async def main() -> None:
        fake = FakeServer(status, ["13"], "13")
        async with fake.running() as url:
            with pytest.raises(hybi.InvalidStatus) as caught:
                await hybi.connect(url, versions="8,13")
        assert caught.value.response.status == status
        assert not isinstance(caught.value, hybi.NoCommonVersion)
        assert fake.requests == ["8"]

    run(main())


def test_against_a_real_hybi_server_with_fewer_versions() -> None:
    async def main() -> None:
        async with echo_server(versions=(7,)) as url, hybi.connect(url, versions="all") as ws:
            assert ws.version == 7
            assert [(a.version, a.status, a.server_versions) for a in ws.handshake_attempts] == [
                ("13", 426, (7,)),
                ("7", 101, ()),
            ]

    run(main())


def test_server_that_drops_the_connection() -> None:
    async def main() -> None:
        async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(drop, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(hybi.InvalidHandshake, match="connection closed during the opening handshake"):
                await hybi.connect(f"ws://127.0.0.1:{port}/")

    run(main())


def test_open_timeout() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(TimeoutError):
                await hybi.connect(f"ws://127.0.0.1:{port}/", open_timeout=0.2)

    run(main())


def test_bad_accept_from_a_server() -> None:
    async def main() -> None:
        async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept_value("AAAAAAAAAAAAAAAAAAAAAA==").encode() + b"\r\n\r\n"
            )
            await reader.read()

        server = await asyncio.start_server(liar, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(hybi.InvalidHandshake, match="Sec-WebSocket-Accept"):
                await hybi.connect(f"ws://127.0.0.1:{port}/")

    run(main())


# -- flow control and write coalescing ---------------------------------------------------------


def test_replies_to_one_read_leave_in_one_write() -> None:
    """Echoes of every message one read delivered are written together."""

    async def main() -> None:
        writes: list[int] = []

        async def counting_echo(ws: hybi.ServerConnection) -> None:
            assert ws.transport is not None
            original = ws.transport.write

            def write(data: bytes | bytearray | memoryview) -> None:
                writes.append(len(data))
                original(data)

            ws.transport.write = write  # type: ignore[method-assign]
            await echo(ws)

        async with echo_server(counting_echo) as url, hybi.connect(url) as ws:
            await asyncio.sleep(0.05)
            for index in range(50):
                await ws.send(f"message {index}")  # all queued in one turn: one client write
            for index in range(50):
                assert await ws.recv() == f"message {index}"
            assert 1 <= len(writes) <= 3, writes

    run(main())


def test_reading_pauses_when_the_queue_is_full() -> None:
    async def main() -> None:
        async def flood(ws: hybi.ServerConnection) -> None:
            for index in range(200):
                await ws.send(str(index))
            await ws.wait_closed()

        async with echo_server(flood) as url, hybi.connect(url, max_queue=8) as ws:
            await asyncio.sleep(0.2)
            assert ws.transport is not None and not ws.transport.is_reading()
            received = [await ws.recv() for _ in range(200)]
            assert received == [str(i) for i in range(200)]

    run(main())


@pytest.mark.parametrize("max_queue", [1, 2, 3])
def test_a_queue_of_one_or_two_resumes_reading_once_taken(max_queue: int) -> None:
    """Reading resumes once the queue is down to half of max_queue, rounded down: with
    max_queue=1, once it is empty (it never resumed there, and the connection hung)."""

    async def main() -> None:
        async def flood(ws: hybi.ServerConnection) -> None:
            for index in range(50):
                await ws.send(str(index))
            await ws.wait_closed()

        async with echo_server(flood) as url, hybi.connect(url, max_queue=max_queue) as ws:
            assert [await ws.recv() for _ in range(50)] == [str(i) for i in range(50)]
        messages = [os.urandom(70000), "small", "é" * 40000, b"x", os.urandom(300000)]
        async with echo_server(max_queue=max_queue, max_size=None) as url, hybi.connect(url, max_size=None) as ws:
            for message in messages:  # all of them before reading any
                await ws.send(message)
            assert [await ws.recv() for _ in messages] == messages

    run(main())


def test_large_sends_wait_for_the_peer() -> None:
    async def main() -> None:
        async with (
            echo_server(max_size=None, compression=None) as url,
            hybi.connect(url, max_size=None, compression=None) as ws,  # zeros would deflate to nothing
        ):
            pauses: list[bool] = []
            original = ws.pause_writing
            ws.pause_writing = lambda: (pauses.append(True), original())[1]  # type: ignore[method-assign]
            payload = bytes(8 << 20)
            sender = asyncio.create_task(ws.send(payload))
            await asyncio.sleep(0)
            assert pauses and not sender.done()  # the transport pushed back and send() is waiting
            assert await ws.recv() == payload
            await sender

    run(main())


def test_concurrent_recv_is_refused() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url) as ws:
            first = asyncio.create_task(ws.recv())
            await asyncio.sleep(0.01)
            with pytest.raises(RuntimeError, match="already waiting"):
                await ws.recv()
            await ws.send("x")
            assert await first == "x"

    run(main())


def test_bad_uris() -> None:
    for uri in ("http://x/", "ws://x/#frag", "ws:///path", "ws://user:pw@x/"):
        with pytest.raises(ValueError):
            hybi.connect(uri)


def test_tls() -> None:
    server_context, client_context = tls_contexts()

    async def main() -> None:
        async with echo_server(ssl=server_context) as url:
            secure = url.replace("ws://127.0.0.1", "wss://localhost")
            async with hybi.connect(secure, ssl=client_context, versions="8,13") as ws:
                await ws.send("over TLS")
                assert await ws.recv() == "over TLS"
                assert ws.transport is not None and ws.transport.get_extra_info("ssl_object") is not None
            with pytest.raises(ssl.SSLCertVerificationError):
                await hybi.connect(secure)  # the default context does not trust the test CA

    run(main())


# -- fixed in the core redesign ---------------------------------------------------------------


def test_fragmented_send_that_fails_closes_with_1011() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url) as ws:

            def fragments() -> Iterator[str]:
                yield "a"
                yield "b"
                raise RuntimeError("the source failed")

            with pytest.raises(RuntimeError, match="source failed"):
                await ws.send(fragments())
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.sent_code == 1011

    run(main())


def test_a_send_waits_for_a_fragmented_send() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url) as ws:
            go_on = asyncio.Event()

            async def fragments() -> AsyncIterator[str]:
                yield "a"
                await go_on.wait()
                yield "b"

            fragmented = asyncio.create_task(ws.send(fragments()))
            await asyncio.sleep(0)
            whole = asyncio.create_task(ws.send("whole"))
            await asyncio.sleep(0)
            assert not whole.done()  # it waits its turn rather than raising
            go_on.set()
            await asyncio.gather(fragmented, whole)
            assert [await ws.recv(), await ws.recv()] == ["ab", "whole"]

    run(main())


def test_server_connections_holds_only_open_connections() -> None:
    async def main() -> None:
        async with hybi.serve(echo, "127.0.0.1", 0) as server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a handshake that is not finished
            await writer.drain()
            async with hybi.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                assert len(server.connections) == 1
                assert all(c.state is State.OPEN for c in server.connections)
            writer.close()

    run(main())


def test_sending_a_dict_is_a_type_error() -> None:
    async def main() -> None:
        async with echo_server() as url, hybi.connect(url) as ws:
            with pytest.raises(TypeError, match="dict"):
                await ws.send({"a": 1})  # type: ignore[arg-type]

    run(main())


def test_two_peers_streaming_at_each_other_do_not_stall() -> None:
    """While its writes are backed up a side goes on reading: otherwise two peers that
    both stream would each wait for the other to read."""

    async def main() -> None:
        chunk = os.urandom(1 << 16)  # random: compression cannot shrink it
        async with echo_server() as url, hybi.connect(url) as ws:

            async def stream() -> None:
                for _ in range(400):
                    await ws.send(chunk)

            sender = asyncio.create_task(stream())
            for _ in range(400):
                assert await ws.recv() == chunk
            await sender

    run(main(), timeout=60)


@pytest.mark.parametrize("use_uvloop", [False, True])
@pytest.mark.parametrize("own_socket", [False, True], ids=["host and port", "sock"])
def test_accepted_connections_have_tcp_keepalive(use_uvloop: bool, own_socket: bool) -> None:
    """Set in the listening socket, which the accepted ones inherit, or else in each one; a
    socket the caller passes is left as it was (it may have queued connections already)."""
    import socket

    async def main() -> None:
        found: list[int] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            assert ws.transport is not None
            sock = ws.transport.get_extra_info("socket")
            found.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
            await echo(ws)

        listening = socket.create_server(("127.0.0.1", 0)) if own_socket else None
        where: dict[str, Any] = {"sock": listening} if listening else {"host": "127.0.0.1", "port": 0}
        async with hybi.serve(handler, **where) as server:
            for _ in range(3):
                async with hybi.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                    await ws.send("hi")
                    assert await ws.recv() == "hi"
            listener = server.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            assert server.keepalive_inherited is (not own_socket and sys.platform == "linux")
        assert len(found) == 3 and all(found)
        assert bool(listener) is server.keepalive_inherited

    run_on(main, use_uvloop)


@pytest.mark.parametrize("use_uvloop", [False, True])
@pytest.mark.parametrize("message", ["hi", bytes(300_000)], ids=["small", "large-in-place"])
def test_a_server_connection_is_freed_without_the_cycle_collector(use_uvloop: bool, message: str | bytes) -> None:
    """A handler that ends its `async for` at a normal close leaves no reference cycle
    behind: the connection is freed as soon as its handler's task and transport let go,
    also after a large message was received in place (through a stand-in protocol)."""
    import gc
    import weakref

    async def main() -> None:
        refs: list[weakref.ref[hybi.ServerConnection]] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            refs.append(weakref.ref(ws))
            await echo(ws)

        async with hybi.serve(handler, "127.0.0.1", 0) as server:
            gc.collect()
            gc.disable()
            try:
                async with hybi.connect(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
                    await ws.send(message)
                    assert await ws.recv() == message
                while server.tasks or server.connections:
                    await asyncio.sleep(0)
                for _ in range(3):
                    await asyncio.sleep(0)  # the transport lets go after connection_lost
                assert len(refs) == 1 and refs[0]() is None
            finally:
                gc.enable()

    run_on(main, use_uvloop)


def test_a_handler_that_fails_after_the_connection_is_gone_is_logged_and_nothing_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once the transport is gone, the close that follows a handler's end has nothing left
    to do; an error of the handler is still logged."""

    async def main() -> None:
        lost = asyncio.Event()
        seen: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(ws)
            await ws.wait_closed()
            lost.set()
            raise RuntimeError("late")

        async with echo_server(handler) as url:
            _reader, writer = await raw_client(int(url.rsplit(":", 1)[1].rstrip("/")))
            writer.close()
            await lost.wait()
            while seen[0].server.tasks:
                await asyncio.sleep(0)
            ws = seen[0]
            assert ws.state is State.CLOSED and ws.close_code == 1006
            ws.close_anyhow(1000, "")  # nothing to do, nothing raised
            assert ws.state is State.CLOSED and ws.close_code == 1006

    with caplog.at_level(logging.ERROR, "hybi"):
        run(main())
    assert "connection handler failed" in caplog.text
