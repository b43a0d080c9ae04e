"""The threaded API (`hybi.sync`) over loopback: with itself and with the asyncio one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

import conftest
import hybi
import hybi.sync
from conftest import raw_frame, run
from hybi.sansio.deflate import CompressionSetting
from hybi.sansio.events import State
from hybi.sansio.handshake import ServerHandshake
from hybi.sansio.reconnect import Backoff
from hybi.sync.connection import _HIGH_WATER
from test_api import mypy
from test_asyncio import RETRY_CASES, FakeServer
from test_drafts import HIXIE76_ANSWER, HIXIE76_KEY3, HIXIE76_REQUEST

T = TypeVar("T")

EVERY_VERSION = ["13", "8", "7", "6", "5", "hybi-02", "hixie-76", "hixie-75"]
TEXT_ONLY = {"hixie-76", "hixie-75"}
NO_CLOSE_CODES = {"5", "hybi-02", "hixie-76", "hixie-75"}
SIZES = (0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000)
WAIT = 10.0  # the generous bound on anything that should take milliseconds


@pytest.fixture(autouse=True)
def threads_end() -> Iterator[None]:
    """Every thread a test starts (pumps, handlers, peers) has ended when it is over."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + WAIT
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [thread.name for thread in set(threading.enumerate()) - before if thread.is_alive()]
    assert not left, f"threads still running: {left}"


def echo(ws: hybi.sync.ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@contextmanager
def sync_server(
    handler: Callable[[hybi.sync.ServerConnection], object] = echo, **options: Any
) -> Iterator[hybi.sync.Server]:
    options.setdefault("versions", "all")
    server = hybi.sync.serve(handler, "127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever, name="test-serve-forever")
    thread.start()
    try:
        yield server
    finally:
        assert server.shutdown(timeout=WAIT)
        thread.join(WAIT)
        assert not thread.is_alive()


def url_of(server: hybi.sync.Server, path: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


@contextmanager
def in_loop(factory: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """Enter an async context manager on an event loop of its own, in a thread."""
    handoff: queue.Queue[tuple[T, asyncio.Event] | BaseException] = queue.Queue()
    loop = asyncio.new_event_loop()

    async def main() -> None:
        stop = asyncio.Event()
        async with factory() as value:
            handoff.put((value, stop))
            await stop.wait()

    def thread_main() -> None:
        try:
            loop.run_until_complete(asyncio.wait_for(main(), 60))
        except BaseException as error:
            handoff.put(error)
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    thread = threading.Thread(target=thread_main, name="test-asyncio-peer")
    thread.start()
    item = handoff.get(timeout=WAIT)
    if isinstance(item, BaseException):
        thread.join(WAIT)
        raise item
    value, stop = item
    try:
        yield value
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(WAIT)
        assert not thread.is_alive()


async def aio_echo(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def aio_server(**options: Any) -> AsyncIterator[str]:
    options.setdefault("versions", "all")
    async with hybi.serve(aio_echo, "127.0.0.1", 0, **options) as server:
        yield f"ws://127.0.0.1:{server.port}/"


def read_head(sock: socket.socket) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        assert byte, f"connection closed after {head!r}"
        head += byte
    return head


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def dropped(sock: socket.socket) -> bool:
    """Whether the peer closed the connection without sending anything: a FIN, or a reset
    when it closed before reading what was sent (an abort)."""
    try:
        return read_to_end(sock) == b""
    except ConnectionResetError:
        return True


def raw_client(port: int) -> socket.socket:
    """A hand-made version 13 client, past its handshake."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert read_head(sock).startswith(b"HTTP/1.1 101 ")
    return sock


def exchange(ws: hybi.sync.Connection, version: str) -> None:
    """Text of every size, binary and a ping where the dialect has them."""
    for size in SIZES:
        text = ("aé" * size)[:size]
        ws.send(text)
        assert ws.recv(timeout=WAIT) == text
    if version in TEXT_ONLY:
        with pytest.raises(hybi.UnsupportedFeature, match=f"{version} has no binary"):
            ws.send(b"bytes")
        with pytest.raises(hybi.UnsupportedFeature, match="no ping"):
            ws.ping()
    else:
        for size in (0, 70_000):
            data = bytes(i % 251 for i in range(size))
            ws.send(data)
            assert ws.recv(timeout=WAIT) == data
        assert 0 <= ws.ping().wait(WAIT) < WAIT


def expected_close_code(version: str) -> int:
    """Closes of hixie, hybi-02 and 5 carry no status: 1005."""
    return 1005 if version in NO_CLOSE_CODES else 1000


# -- every version, both ways, with itself and with asyncio ------------------------------------


@pytest.mark.parametrize("version", EVERY_VERSION)
def test_echo_in_every_version(version: str) -> None:
    seen: list[object] = []

    def handler(ws: hybi.sync.ServerConnection) -> None:
        seen.append(ws.version)
        echo(ws)

    with sync_server(handler) as server:
        with hybi.sync.connect(url_of(server, "/room?q=1"), versions=[version], origin="http://hybi.test") as ws:
            assert str(ws.version) == version
            assert [a.version for a in ws.handshake_attempts] == [version]
            exchange(ws, version)
        assert ws.close_code == expected_close_code(version)
    assert [str(v) for v in seen] == [version]


@pytest.mark.parametrize("version", EVERY_VERSION)
def test_sync_client_with_asyncio_server(version: str) -> None:
    with in_loop(aio_server) as url:
        with hybi.sync.connect(url, versions=[version], origin="http://hybi.test") as ws:
            assert str(ws.version) == version
            exchange(ws, version)
        assert ws.close_code == expected_close_code(version)


@pytest.mark.parametrize("version", EVERY_VERSION)
def test_asyncio_client_with_sync_server(version: str) -> None:
    async def main(url: str) -> None:
        async with hybi.connect(url, versions=[version], origin="http://hybi.test") as ws:
            assert str(ws.version) == version
            for size in SIZES:
                text = ("aé" * size)[:size]
                await ws.send(text)
                assert await ws.recv() == text
            if version not in TEXT_ONLY:
                await ws.send(bytes(70_000))
                assert await ws.recv() == bytes(70_000)
                await (await ws.ping())
        assert ws.close_code == expected_close_code(version)

    with sync_server() as server:
        run(main(url_of(server)))


def test_hixie76_server_answers_when_key3_comes_late() -> None:
    """Behind HAProxy, key3 reaches the server only after the 101 head went out."""
    with sync_server(versions="hixie-76") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        with sock:
            sock.sendall(HIXIE76_REQUEST.replace(b"example.com", b"127.0.0.1"))
            assert read_head(sock).startswith(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n")
            sock.sendall(HIXIE76_KEY3 + b"\x00hello\xff")
            answer = b""
            while len(answer) < 16 + 7:
                answer += sock.recv(64)
            assert answer == HIXIE76_ANSWER + b"\x00hello\xff"
            sock.sendall(b"\xff\x00")
            assert read_to_end(sock) == b"\xff\x00"


def test_hixie75_server_shutdown_just_closes() -> None:
    with sync_server(versions="hixie-75") as server:
        ws = hybi.sync.connect(url_of(server), versions="hixie-75").open()
        assert server.shutdown(timeout=WAIT)
        with pytest.raises(hybi.ConnectionClosedOK) as caught:
            ws.recv(timeout=WAIT)
        assert caught.value.code == 1005


# -- section 4.4: the client's retry ---------------------------------------------------------------


def test_retry_with_a_version_the_server_lists() -> None:
    with sync_server(versions=(8, 7)) as server, hybi.sync.connect(url_of(server), versions="13,7,8") as ws:
        assert ws.version == 7
        assert [(a.version, a.status, a.server_versions) for a in ws.handshake_attempts] == [
            ("13", 426, (8, 7)),
            ("7", 101, ()),
        ]
        ws.send("after retry")
        assert ws.recv(timeout=WAIT) == "after retry"


def test_all_falls_back_to_the_drafts() -> None:
    with sync_server(versions="6,5") as server, hybi.sync.connect(url_of(server), versions="all") as ws:
        assert ws.version == 6
    with sync_server(versions="hixie-76") as server, hybi.sync.connect(url_of(server), versions="all") as ws:
        assert ws.version == "hixie-76"
        assert ws.handshake_attempts[0].server_versions == (0,)  # 0 is hybi-00, that is hixie-76
        ws.send("via 0")
        assert ws.recv(timeout=WAIT) == "via 0"


def test_no_common_version_names_both_lists() -> None:
    with sync_server(versions="13") as server, pytest.raises(hybi.NoCommonVersion) as caught:
        hybi.sync.connect(url_of(server), versions="8,7").open()
    error = caught.value
    assert str(error) == "no WebSocket version in common: client offers 8, 7; server accepts 13"
    assert error.client_versions == ("8", "7")
    assert error.server_versions == (13,)
    assert [(a.version, a.status) for a in error.attempts] == [("8", 426)]


@pytest.mark.parametrize(
    ("who", "status", "fields", "accepts", "client", "expected"), RETRY_CASES, ids=[c[0] for c in RETRY_CASES]
)
def test_retry_as_the_asyncio_client_does(
    who: str, status: int, fields: list[str], accepts: str, client: str, expected: str
) -> None:
    fake = FakeServer(status, fields, accepts)
    with in_loop(fake.running) as url, hybi.sync.connect(url, versions=client) as ws:
        assert str(ws.version) == expected
        first = client.split(",", maxsplit=1)[0]
        assert fake.requests == [first, expected]
        assert [(a.version, a.status) for a in ws.handshake_attempts] == [(first, status), (expected, 101)]
        ws.send("after retry")
        assert ws.recv(timeout=WAIT) == "after retry"


def test_never_retries_twice() -> None:
    fake = FakeServer(426, ["8"], None)  # lists 8, then refuses it too
    with in_loop(fake.running) as url, pytest.raises(hybi.InvalidStatus):
        hybi.sync.connect(url, versions="13,8").open()
    assert fake.requests == ["13", "8"]


# -- compression ------------------------------------------------------------------------------------


@contextmanager
def counting_relay(port: int) -> Iterator[tuple[int, dict[str, int]]]:
    """A TCP relay to `port` that counts the bytes each way, for one connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    counts = {"up": 0, "down": 0}

    def pipe(source: socket.socket, sink: socket.socket, key: str) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                counts[key] += len(data)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def relay() -> None:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        client.settimeout(WAIT)
        pipes = [
            threading.Thread(target=pipe, args=(client, upstream, "up")),
            threading.Thread(target=pipe, args=(upstream, client, "down")),
        ]
        for thread in pipes:
            thread.start()
        for thread in pipes:
            thread.join(WAIT)
        client.close()
        upstream.close()

    thread = threading.Thread(target=relay, name="test-relay")
    thread.start()
    try:
        yield listener.getsockname()[1], counts
    finally:
        thread.join(WAIT)
        listener.close()


@pytest.mark.parametrize("compression", ["balanced", None])
def test_compression_is_negotiated_and_used(compression: CompressionSetting) -> None:
    text = "hybi compresses this line; " * 8000  # 216,000 bytes
    names: list[tuple[str, ...]] = []

    def handler(ws: hybi.sync.ServerConnection) -> None:
        names.append(tuple(extension.name for extension in ws.extensions))
        echo(ws)

    with sync_server(handler, compression=compression) as server:
        with (
            counting_relay(server.port) as (port, counts),
            hybi.sync.connect(f"ws://127.0.0.1:{port}/", compression=compression) as ws,
        ):
            ws.send(text)
            assert ws.recv(timeout=WAIT) == text
            assert tuple(extension.name for extension in ws.extensions) == names[0]  # echoed: the handler ran
            if compression is not None:
                ws.send(text, compress=False)  # as it is, RFC 7692 section 8
                assert ws.recv(timeout=WAIT) == text
        if compression is None:
            assert names == [()]
            assert counts["up"] > len(text) and counts["down"] > len(text)
        else:
            assert names == [("permessage-deflate",)]
            # Up: one message compressed, one sent as it is; down: both echoes compressed.
            assert len(text) < counts["up"] < len(text) + 10_000
            assert counts["down"] < 10_000


# -- threads ----------------------------------------------------------------------------------------


def test_sends_from_several_threads_are_never_interleaved() -> None:
    senders, per_sender = 8, 100
    with sync_server(versions=(13,)) as server, hybi.sync.connect(url_of(server)) as ws:
        start = threading.Barrier(senders, timeout=WAIT)
        failures: list[BaseException] = []

        def sender(number: int) -> None:
            try:
                start.wait()
                for index in range(per_sender):
                    size = 70_000 if index % 10 == 3 else index
                    if number % 2:
                        ws.send(f"{number}:{index}:" + chr(97 + number) * size)
                    else:
                        ws.send(bytes([number, index]) + bytes([number]) * size)
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
        for thread in threads:
            thread.start()
        received = [ws.recv(timeout=WAIT) for _ in range(senders * per_sender)]
        for thread in threads:
            thread.join(WAIT)
        assert not failures
        order: dict[int, list[int]] = {n: [] for n in range(senders)}
        for message in received:
            if isinstance(message, str):
                number_text, index_text, filler = message.split(":", 2)
                number, index = int(number_text), int(index_text)
                assert filler == chr(97 + number) * len(filler)
            else:
                number, index, filler_bytes = message[0], message[1], message[2:]
                assert filler_bytes == bytes([number]) * len(filler_bytes)
                filler = filler_bytes.decode()
            assert len(filler) == (70_000 if index % 10 == 3 else index)
            order[number].append(index)
        assert order == {n: list(range(per_sender)) for n in range(senders)}


def test_a_second_concurrent_recv_is_refused() -> None:
    with sync_server() as server, hybi.sync.connect(url_of(server)) as ws:
        got: queue.Queue[object] = queue.Queue()
        first = threading.Thread(target=lambda: got.put(ws.recv(timeout=WAIT)))
        first.start()
        deadline = time.monotonic() + WAIT
        while not ws._receiving and time.monotonic() < deadline:
            time.sleep(0.001)
        with pytest.raises(RuntimeError, match="another thread is already waiting in recv"):
            ws.recv()
        ws.send("x")
        assert got.get(timeout=WAIT) == "x"
        first.join(WAIT)


def test_recv_timeout() -> None:
    with sync_server() as server, hybi.sync.connect(url_of(server)) as ws:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
        assert 0.05 <= time.monotonic() - started < WAIT
        ws.send("still fine")
        assert ws.recv(timeout=WAIT) == "still fine"


def test_fragmented_send() -> None:
    with sync_server() as server, hybi.sync.connect(url_of(server)) as ws:
        ws.send(["Hel", "lo"])
        assert ws.recv(timeout=WAIT) == "Hello"
        ws.send(iter([b"a", b"b", b"c"]))
        assert ws.recv(timeout=WAIT) == b"abc"
        with pytest.raises(TypeError, match="mixes"):
            ws.send(["a", b"b"])
        with pytest.raises(TypeError, match="dict"):
            ws.send({"a": 1})  # a dict is iterable: refused by name rather than sent as its keys


def test_fragmented_send_that_fails_closes_with_1011() -> None:
    with sync_server() as server, hybi.sync.connect(url_of(server)) as ws:

        def fragments() -> Iterator[str]:
            yield "a"
            yield "b"
            raise RuntimeError("the source failed")

        with pytest.raises(RuntimeError, match="source failed"):
            ws.send(fragments())
        with pytest.raises(hybi.ConnectionClosedError) as caught:
            ws.recv(timeout=WAIT)
        assert caught.value.sent_code == 1011


def test_ping_resolves_with_the_pong() -> None:
    with sync_server() as server, hybi.sync.connect(url_of(server)) as ws:
        assert 0 <= ws.ping("marker").wait(WAIT) < WAIT
        first, second = ws.ping(), ws.ping()
        second.wait(WAIT)
        assert first.done()  # a pong answers every earlier ping too


def test_keepalive_pings_measure_latency() -> None:
    with (
        sync_server() as server,
        hybi.sync.connect(url_of(server), ping_interval=0.05, ping_timeout=WAIT) as ws,
    ):
        deadline = time.monotonic() + WAIT
        while ws.latency is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws.latency is not None and 0 <= ws.latency < WAIT
        ws.send("still here")
        assert ws.recv(timeout=WAIT) == "still here"


@contextmanager
def deaf_server(*, read: bool = True) -> Iterator[str]:
    """Completes a version 13 handshake, then never answers anything; with `read=False` it
    does not even read, so that what the client writes piles up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)
    done = threading.Event()

    def serve() -> None:
        sock, _ = listener.accept()
        with sock:
            sock.settimeout(WAIT)
            handshake = ServerHandshake()
            request = handshake.receive_data(read_head(sock))
            assert request is not None
            reply, _ = handshake.accept(request, handshake.negotiate(request))
            sock.sendall(reply)
            if read:
                read_to_end(sock)  # never answers a ping, nor the close frame
            else:
                done.wait(WAIT)

    thread = threading.Thread(target=serve, name="test-deaf-server")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        done.set()
        thread.join(WAIT)
        listener.close()


def test_keepalive_closes_with_1011_when_pongs_stop() -> None:
    with deaf_server() as url:
        ws = hybi.sync.connect(url, ping_interval=0.05, ping_timeout=0.1, close_timeout=0.2).open()
        with pytest.raises(hybi.ConnectionClosedError) as caught:
            ws.recv(timeout=WAIT)
        assert caught.value.sent_code == 1011
        assert "no pong within 0.1 s" in str(caught.value)


# -- closing ----------------------------------------------------------------------------------------


def test_close_is_bounded_when_the_peer_never_answers() -> None:
    with deaf_server() as url:
        ws = hybi.sync.connect(url, close_timeout=0.2).open()
        started = time.monotonic()
        ws.close()
        assert time.monotonic() - started < WAIT
        assert ws.close_code == 1006
        with pytest.raises(hybi.ConnectionClosedError, match=r"no close frame within 0\.2 s"):
            ws.recv(timeout=WAIT)


def test_a_send_held_back_by_a_peer_that_never_reads_ends_with_the_connection() -> None:
    with deaf_server(read=False) as url:
        ws = hybi.sync.connect(url, close_timeout=0.2, compression=None).open()
        ended: queue.Queue[BaseException] = queue.Queue()

        def stream() -> None:
            try:
                while True:
                    ws.send(bytes(65536))
            except BaseException as error:
                ended.put(error)

        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.monotonic() + WAIT
        while ws._outbuf_size <= _HIGH_WATER and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws._outbuf_size > _HIGH_WATER and ended.empty()  # the sender waits: the kernel's buffers are full
        ws.close()  # the close frame cannot go out either: the core drops TCP after close_timeout
        # Its next send finds the connection closing (InvalidState, as in hybi.aio) or closed.
        assert isinstance(ended.get(timeout=WAIT), (hybi.InvalidState, hybi.ConnectionClosedError))
        assert ws.close_code == 1006
        sender.join(WAIT)


def test_close_codes_both_ways() -> None:
    closed: queue.Queue[tuple[int | None, str | None]] = queue.Queue()

    def handler(ws: hybi.sync.ServerConnection) -> None:
        try:
            for message in ws:
                if message == "close-me":
                    ws.close(4001, "server-bye")
        except hybi.ConnectionClosedError:  # 4000 and 4001 are not normal closures
            pass
        closed.put((ws.close_code, ws.close_reason))

    with sync_server(handler) as server:
        with hybi.sync.connect(url_of(server)) as ws:
            ws.close(4000, "client-bye")
            assert ws.close_code == 4000  # the server echoes the code
        assert closed.get(timeout=WAIT) == (4000, "client-bye")

        with hybi.sync.connect(url_of(server)) as ws:
            ws.send("close-me")
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                ws.recv(timeout=WAIT)
            assert (caught.value.code, caught.value.reason) == (4001, "server-bye")
        assert closed.get(timeout=WAIT) == (4001, "")  # the client echoed the code alone


def test_normal_close_ends_iteration() -> None:
    def handler(ws: hybi.sync.ServerConnection) -> None:
        ws.send("one")
        ws.send("two")

    with sync_server(handler) as server, hybi.sync.connect(url_of(server)) as ws:
        assert list(ws) == ["one", "two"]
        assert ws.close_code == 1000
        with pytest.raises(hybi.ConnectionClosedOK):
            ws.send("late")


def test_handler_error_closes_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    def handler(ws: hybi.sync.ServerConnection) -> None:
        raise RuntimeError("boom")

    with (
        caplog.at_level(logging.ERROR, "hybi"),
        sync_server(handler) as server,
        hybi.sync.connect(url_of(server)) as ws,
    ):
        with pytest.raises(hybi.ConnectionClosedError) as caught:
            ws.recv(timeout=WAIT)
        assert caught.value.code == 1011
    records = [record for record in caplog.records if record.getMessage().endswith("] connection handler failed")]
    assert len(records) == 1 and records[0].exc_info is not None
    assert records[0].name == "hybi.server" and records[0].levelno == logging.ERROR
    assert records[0].getMessage().startswith(f"[{records[0].connection_id}] ")
    assert "boom" in str(records[0].exc_info[1])


def test_shutdown_closes_every_connection_with_1001() -> None:
    server = hybi.sync.serve(echo, "127.0.0.1", 0, versions="all", close_timeout=2)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    clients = [hybi.sync.connect(url_of(server), versions=[v]).open() for v in ("13", "8", "7", "6")]
    half = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a handshake under way
    try:
        for ws in clients:
            ws.send("hello")
            assert ws.recv(timeout=WAIT) == "hello"
        deadline = time.monotonic() + WAIT
        while len(server._live) < len(clients) + 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the half handshake is accepted, not left in the listening backlog
        assert len(server._live) == len(clients) + 1 and len(server.connections) == len(clients)
        started = time.monotonic()
        assert server.shutdown(timeout=WAIT)
        assert time.monotonic() - started < 2 * 2 + 1  # what the core allows, at most
        for ws in clients:
            with pytest.raises(hybi.ConnectionClosedOK) as caught:
                ws.recv(timeout=WAIT)
            assert (caught.value.code, caught.value.reason) == (1001, "server shutting down")
        assert dropped(half)
        thread.join(WAIT)
        assert not thread.is_alive()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=WAIT).close()
    finally:
        half.close()
        for ws in clients:
            ws.close()


def test_server_connections_holds_only_open_connections() -> None:
    with sync_server() as server:
        half = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        with half:
            half.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a handshake that is not finished
            with hybi.sync.connect(url_of(server)) as ws:
                ws.send("hi")
                assert ws.recv(timeout=WAIT) == "hi"
                assert len(server.connections) == 1
                assert all(c.state is State.OPEN for c in server.connections)
            deadline = time.monotonic() + WAIT
            while server.connections and time.monotonic() < deadline:
                time.sleep(0.01)
            assert not server.connections


def test_message_too_big_closes_with_1009() -> None:
    with sync_server(max_size=1000) as server, hybi.sync.connect(url_of(server)) as ws:
        ws.send(bytes(1000))
        assert ws.recv(timeout=WAIT) == bytes(1000)
        ws.send(bytes(1001))
        with pytest.raises(hybi.ConnectionClosedError) as caught:
            ws.recv(timeout=WAIT)
        assert caught.value.code == 1009


def test_echo_of_a_message_before_a_bad_frame_goes_out_before_the_close() -> None:
    """A message and a bad frame in one read: the handler's echo still reaches the client,
    then the close frame with 1002 (section 7.1.7, with the answers first)."""
    with sync_server() as server, raw_client(server.port) as sock:
        sock.sendall(raw_frame(0x81, b"Hello") + raw_frame(0xA1, b"bad") + raw_frame(0x89, b""))
        reply = read_to_end(sock)
        assert reply[:7] == b"\x81\x05Hello"
        assert reply[7:8] == b"\x88" and int.from_bytes(reply[9:11], "big") == 1002


def test_the_close_frame_of_a_failure_waits_for_a_busy_handler_without_a_clock() -> None:
    """The handler is still working on the last good message when the bad frame comes: the
    close frame waits for its answer, however long it takes (within close_timeout), rather
    than for a guessed grace."""
    go = threading.Event()

    def slow_echo(ws: hybi.sync.ServerConnection) -> None:
        for message in ws:
            assert go.wait(WAIT)
            ws.send(message)

    with sync_server(slow_echo, close_timeout=WAIT) as server, raw_client(server.port) as sock:
        sock.sendall(raw_frame(0x81, b"one") + raw_frame(0x81, b"two") + raw_frame(0xA1, b"bad"))
        sock.settimeout(1.5)  # longer than any grace a pump might guess
        with pytest.raises(TimeoutError):
            sock.recv(1)  # neither the close frame nor anything else went out meanwhile
        go.set()
        sock.settimeout(WAIT)
        reply = read_to_end(sock)
        assert reply[:10] == b"\x81\x03one\x81\x03two"  # both answers, then the close frame
        assert reply[10:11] == b"\x88" and int.from_bytes(reply[12:14], "big") == 1002


def test_the_close_frame_of_a_failure_goes_when_the_handler_returns() -> None:
    def answer_then_return(ws: hybi.sync.ServerConnection) -> None:
        ws.send(f"got {ws.recv(timeout=WAIT)!r}")
        ws.send("and more")  # a message is still waiting: the close frame is still held

    with sync_server(answer_then_return) as server, raw_client(server.port) as sock:
        sock.sendall(raw_frame(0x81, b"a") + raw_frame(0x81, b"b") + raw_frame(0xA1, b"bad"))
        reply = read_to_end(sock)
        assert reply.startswith(b"\x81\x07got 'a'\x81\x08and more\x88")
        assert int.from_bytes(reply[21:23], "big") == 1002


def test_the_close_frame_of_a_failure_is_bounded_by_close_timeout() -> None:
    """A handler that never comes back: the core's deadline (close_timeout) lets the close
    frame go, and ends the connection."""
    release = threading.Event()

    def stuck(ws: hybi.sync.ServerConnection) -> None:
        ws.recv(timeout=WAIT)
        release.wait(WAIT)

    with sync_server(stuck, close_timeout=0.3) as server, raw_client(server.port) as sock:
        sock.sendall(raw_frame(0x81, b"a") + raw_frame(0x81, b"b") + raw_frame(0xA1, b"bad"))
        started = time.monotonic()
        try:
            reply = read_to_end(sock)
        finally:
            release.set()
        assert reply[:1] == b"\x88" and int.from_bytes(reply[2:4], "big") == 1002
        assert time.monotonic() - started < WAIT


def test_half_handshake_times_out() -> None:
    with (
        sync_server(open_timeout=0.2) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert read_to_end(sock) == b""  # dropped, not kept forever


def test_open_timeout_bounds_the_opening() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts TCP (backlog), never answers
    with listener:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            hybi.sync.connect(f"ws://127.0.0.1:{listener.getsockname()[1]}/", open_timeout=0.2).open()
        assert time.monotonic() - started < WAIT


def test_a_refused_connection_raises_oserror() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(ConnectionRefusedError):
        hybi.sync.connect(f"ws://127.0.0.1:{port}/").open()


# -- the options of the asyncio API, the same names, defaults and meaning ---------------------------

PEERS = ["sync", "asyncio"]
"""Which kind of peer a sync client or server meets."""


@contextmanager
def a_server(
    kind: str, handler: Callable[[hybi.sync.ServerConnection], object] = echo, **options: Any
) -> Iterator[str]:
    """A sync server running `handler`, or an asyncio echo server; its URL."""
    if kind == "sync":
        with sync_server(handler, **options) as server:
            yield url_of(server)
    else:
        with in_loop(lambda: aio_server(**options)) as url:
            yield url


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize(
    "fields",
    [{"X-Token": "abc"}, [("X-Token", "abc")], hybi.Headers([("X-Token", "abc")])],
    ids=["dict", "pairs", "Headers"],
)
def test_additional_headers_take_a_dict_pairs_or_headers(fields: hybi.sansio.http.HeadersLike, peer: str) -> None:
    seen: queue.Queue[hybi.Headers] = queue.Queue()

    def handler(ws: hybi.sync.ServerConnection) -> None:
        seen.put(ws.request_headers)
        echo(ws)

    with (
        a_server(peer, handler, additional_headers={"X-Server": "yes"}) as url,
        hybi.sync.connect(url, additional_headers=fields) as ws,
    ):
        assert ws.request_headers["X-Token"] == "abc"
        assert ws.request_headers["User-Agent"] == hybi.aio.client.USER_AGENT
        assert ws.response_headers["X-Server"] == "yes"
        assert ws.response_headers["Server"] == hybi.aio.server.SERVER_HEADER
        if peer == "sync":
            assert seen.get(timeout=WAIT)["X-Token"] == "abc"


def test_a_sync_server_sends_its_headers_to_an_asyncio_client() -> None:
    async def main(url: str) -> None:
        async with hybi.connect(url, extra_headers={"X-Old": "1"}) as ws:
            assert ws.response_headers["X-Server"] == "yes" and "Server" not in ws.response_headers
            await ws.send("hi")
            assert await ws.recv() == "hi"

    def handler(ws: hybi.sync.ServerConnection) -> None:
        assert ws.request_headers["X-Old"] == "1" and ws.request_headers["User-Agent"].startswith("hybi/")
        echo(ws)

    with sync_server(handler, extra_headers=[("X-Server", "yes")], server_header=None) as server:
        run(main(url_of(server)))


def test_old_name_extra_headers_and_no_user_agent() -> None:
    with (
        sync_server(server_header=None) as server,
        hybi.sync.connect(url_of(server), extra_headers=[("X-Old", "1")], user_agent_header=None) as ws,
    ):
        assert ws.request_headers["X-Old"] == "1" and "User-Agent" not in ws.request_headers
        assert "Server" not in ws.response_headers
    with (
        sync_server(server_header="mine/1") as server,
        hybi.sync.connect(url_of(server), additional_headers={"User-Agent": "me/2"}) as ws,
    ):
        assert ws.request_headers.get_all("User-Agent") == ["me/2"]  # given: not added again
        assert ws.response_headers["Server"] == "mine/1"


def test_both_header_options_at_once_are_refused() -> None:
    with pytest.raises(TypeError, match="not both"):
        hybi.sync.connect("ws://127.0.0.1:1/", additional_headers={"A": "1"}, extra_headers={"B": "2"})
    with pytest.raises(TypeError, match="not both"):
        hybi.sync.serve(echo, "127.0.0.1", 0, additional_headers={"A": "1"}, extra_headers={"B": "2"})


def stamp(ws: hybi.sync.ServerConnection, request: hybi.Request, response: hybi.Response) -> hybi.Response | None:
    if request.target == "/deny":
        return hybi.Response(451, "Unavailable For Legal Reasons", body=b"no\n")
    response.headers.add("X-Stamp", ws.path)
    return None


def test_process_response_changes_or_replaces_the_101() -> None:
    with sync_server(process_response=stamp) as server:
        with hybi.sync.connect(url_of(server, "/chat")) as ws:
            assert ws.response_headers["X-Stamp"] == "/chat"
            ws.send("stamped")
            assert ws.recv(timeout=WAIT) == "stamped"
        with pytest.raises(hybi.InvalidStatus) as caught:
            hybi.sync.connect(url_of(server, "/deny")).open()
        assert caught.value.response.status == 451 and caught.value.response.body == b"no\n"

        async def main() -> None:
            async with hybi.connect(url_of(server, "/aio")) as ws:
                assert ws.response_headers["X-Stamp"] == "/aio"

        run(main())


def test_process_response_that_raises_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    def broken(ws: hybi.sync.ServerConnection, request: hybi.Request, response: hybi.Response) -> None:
        raise ValueError("hook bug")

    with caplog.at_level(logging.ERROR, "hybi"), sync_server(process_response=broken) as server:
        with pytest.raises(hybi.InvalidStatus) as caught:
            hybi.sync.connect(url_of(server)).open()
        assert caught.value.response.status == 500
    records = [r for r in caplog.records if r.getMessage().endswith("opening handshake failed")]
    assert len(records) == 1 and records[0].name == "hybi.server" and records[0].exc_info is not None


def test_require_subprotocol_refuses_with_400() -> None:
    with sync_server(subprotocols=["chat.v2"], require_subprotocol=True) as server:
        with hybi.sync.connect(url_of(server), subprotocols=["chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
        for offered in (["other"], []):
            with pytest.raises(hybi.InvalidStatus) as caught:
                hybi.sync.connect(url_of(server), subprotocols=offered).open()
            assert caught.value.response.status == 400

        async def main() -> None:
            with pytest.raises(hybi.InvalidStatus, match="400"):
                await hybi.connect(url_of(server))

        run(main())


@pytest.mark.parametrize("peer", PEERS)
def test_a_server_closes_an_idle_connection_with_1001(peer: str) -> None:
    """idle_timeout, for the drafts without ping: nothing received for that long."""
    if peer == "sync":
        with (
            sync_server(idle_timeout=0.2, versions="hixie-76") as server,
            hybi.sync.connect(url_of(server), versions="hixie-76") as ws,
        ):
            ws.send("one")
            assert ws.recv(timeout=WAIT) == "one"
            with pytest.raises(hybi.ConnectionClosedOK):  # hixie close frames carry no code
                ws.recv(timeout=WAIT)
        return

    async def main(url: str) -> None:
        async with hybi.connect(url, ping_interval=None) as ws:
            with pytest.raises(hybi.ConnectionClosedOK) as caught:
                await ws.recv()
            assert (caught.value.code, caught.value.reason) == (1001, "idle timeout")

    with sync_server(idle_timeout=0.2) as server:
        run(main(url_of(server)))


@pytest.mark.parametrize("peer", PEERS)
def test_a_client_closes_an_idle_connection_with_1001(peer: str) -> None:
    with (
        a_server(peer, ping_interval=None) as url,
        hybi.sync.connect(url, ping_interval=None, idle_timeout=0.2) as ws,
    ):
        with pytest.raises(hybi.ConnectionClosedOK) as caught:
            ws.recv(timeout=WAIT)
        assert caught.value.sent_code == 1001


def test_max_fragments_bounds_the_frames_of_a_message() -> None:
    with sync_server(max_fragments=3) as server:
        with hybi.sync.connect(url_of(server)) as ws:
            ws.send(["a", "b", "c"])
            assert ws.recv(timeout=WAIT) == "abc"
            ws.send(["a", "b", "c", "d"])
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                ws.recv(timeout=WAIT)
            assert caught.value.code == 1009

        async def main() -> None:
            async with hybi.connect(url_of(server)) as ws:
                await ws.send(["a", "b", "c", "d"])
                with pytest.raises(hybi.ConnectionClosedError) as caught:
                    await ws.recv()
                assert caught.value.code == 1009

        run(main())

    def four_fragments(ws: hybi.sync.ServerConnection) -> None:
        ws.send(["w", "x", "y", "z"])
        ws.wait_closed(WAIT)

    with (
        sync_server(four_fragments) as server,
        hybi.sync.connect(url_of(server), max_fragments=3) as ws,
        pytest.raises(hybi.ConnectionClosedError) as caught,
    ):
        ws.recv(timeout=WAIT)
    assert caught.value.sent_code == 1009


@pytest.mark.parametrize("peer", PEERS)
def test_connection_attributes(peer: str) -> None:
    server_side: queue.Queue[hybi.sync.ServerConnection] = queue.Queue()

    def handler(ws: hybi.sync.ServerConnection) -> None:
        server_side.put(ws)
        echo(ws)

    with (
        a_server(peer, handler) as url,
        hybi.sync.connect(url, ping_interval=0.05, ping_timeout=WAIT) as ws,
    ):
        assert isinstance(ws.id, uuid.UUID) and ws.id == ws.id
        assert ws.local_address[0] == "127.0.0.1"  # type: ignore[index]
        assert ws.remote_address == ("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))
        assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
        deadline = time.monotonic() + WAIT
        while ws.latency is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ws.latency is not None and 0 <= ws.latency < WAIT
        ws.send("x" * 1000, compress=False)
        assert ws.recv(timeout=WAIT) == "x" * 1000
        if peer == "sync":
            other = server_side.get(timeout=WAIT)
            assert isinstance(other.id, uuid.UUID) and other.id != ws.id
            assert other.remote_address == ws.local_address and other.local_address == ws.remote_address
            assert [extension.name for extension in other.extensions] == ["permessage-deflate"]


@pytest.mark.parametrize("peer", PEERS)
def test_wss_to_a_plain_server_fails_at_once_and_says_why(peer: str) -> None:
    with a_server(peer) as url:
        started = time.monotonic()
        with pytest.raises(hybi.InvalidHandshake, match=r"TLS handshake .* failed .*is it a wss:// server\?"):
            hybi.sync.connect(url.replace("ws://", "wss://"), ssl=ssl.create_default_context(), open_timeout=30).open()
        assert time.monotonic() - started < 5  # the server says so at once, no open timeout


# -- broadcast --------------------------------------------------------------------------------------


def hold(ws: hybi.sync.ServerConnection) -> None:
    ws.wait_closed(2 * WAIT)


def test_broadcast_to_every_version_once() -> None:
    with sync_server(hold) as server:
        url = url_of(server)
        clients = [
            hybi.sync.connect(url, versions=[version], compression=compression).open()
            for version, compression in [
                (13, None),
                (13, "balanced"),
                (8, None),
                ("hixie-76", None),
                ("hybi-02", None),
            ]
        ]
        with in_loop(lambda: hybi.connect(url, versions=[7])) as aio_client:

            def aio_recv() -> hybi.Data:
                return asyncio.run_coroutine_threadsafe(aio_client.recv(), aio_client.loop).result(WAIT)

            deadline = time.monotonic() + WAIT
            while len(server.connections) < len(clients) + 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            connections = list(server.connections)
            assert len(connections) == len(clients) + 1
            assert hybi.sync.broadcast(connections, "to all") == 0
            assert [client.recv(timeout=WAIT) for client in clients] == ["to all"] * len(clients)
            assert aio_recv() == "to all"
            assert hybi.sync.broadcast(connections, b"bytes") == 1  # hixie-76 has no binary messages
            assert [client.recv(timeout=WAIT) for client in clients if client.version != "hixie-76"] == [b"bytes"] * 4
            assert aio_recv() == b"bytes"
        for client in clients:
            client.close()
        for connection in connections:
            assert connection.wait_closed(WAIT)
        assert hybi.sync.broadcast(connections, "after") == len(connections)


def test_broadcast_skips_a_slow_reader() -> None:
    with sync_server(hold, compression=None) as server, raw_client(server.port) as deaf:
        deadline = time.monotonic() + WAIT
        while not server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        with hybi.sync.connect(url_of(server), compression=None, max_size=None) as reader:
            deadline = time.monotonic() + WAIT
            while len(server.connections) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            connections = list(server.connections)
            big = bytes(16 << 20)  # more than the kernel's buffers take from a peer that does not read
            assert hybi.sync.broadcast(connections, big) == 0  # queued for both, without waiting
            assert reader.recv(timeout=WAIT) == big
            deadline = time.monotonic() + WAIT  # the reader's side unblocks once its pump has seen the last write
            while sum(connection.writing_paused for connection in connections) > 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            slow = [connection for connection in connections if connection.writing_paused]
            assert len(slow) == 1 and slow[0].remote_address == deaf.getsockname()
            assert hybi.sync.broadcast(connections, "next") == 1
            assert reader.recv(timeout=WAIT) == "next"


# -- reconnecting -----------------------------------------------------------------------------------


class RecordingBackoff(Backoff):
    """Short delays, and a record of what the client asked of them."""

    def __init__(self) -> None:
        super().__init__(initial=0.01, maximum=0.05)
        self.calls: list[str] = []

    def next_delay(self) -> float:
        self.calls.append("delay")
        return super().next_delay()

    def reset(self) -> None:
        self.calls.append("reset")
        super().reset()


def test_for_reconnects_after_the_server_goes_away() -> None:
    goodbye = threading.Event()

    def first_then_gone(ws: hybi.sync.ServerConnection) -> None:
        ws.send("hello")
        goodbye.wait(WAIT)  # held until the client has seen the first connection

    backoff = RecordingBackoff()
    try:
        with sync_server(first_then_gone) as server:
            seen, codes = [], []
            for ws in hybi.sync.connect(url_of(server), backoff=backoff):
                seen.append(ws.recv(timeout=WAIT))
                if len(seen) == 1:
                    for connection in server.connections:
                        connection.close_anyhow(1012, "restarting")
                    with pytest.raises(hybi.ConnectionClosed) as caught:
                        ws.recv(timeout=WAIT)
                    codes.append(caught.value.code)
                    continue
                break
            goodbye.set()
    finally:
        goodbye.set()
    assert seen == ["hello", "hello"] and codes == [1012]
    assert backoff.calls == ["reset", "reset"]  # after each success; no attempt failed
    assert ws.state is State.CLOSED  # leaving the loop closed the last connection


@contextmanager
def refusing_server(answers: list[bytes]) -> Iterator[int]:
    """Answers each connection's request with the next of `answers`, then closes it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(WAIT)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while answers:
                sock, _ = listener.accept()
                with sock:
                    sock.settimeout(WAIT)
                    read_head(sock)
                    sock.sendall(answers.pop(0))

    thread = threading.Thread(target=serve, name="test-refusing-server")
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(WAIT)


def test_for_retries_a_refused_connection_then_stops_on_a_fatal_answer() -> None:
    answers = [
        b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
    ]
    backoff = RecordingBackoff()
    with refusing_server(answers) as port, pytest.raises(hybi.InvalidStatus, match="403"):
        for _ws in hybi.sync.connect(f"ws://127.0.0.1:{port}/", backoff=backoff):
            raise AssertionError("no connection is ever accepted")
    assert answers == []  # the 503 was retried, the 403 was not
    assert backoff.calls == ["delay"]


def test_for_retries_until_the_server_is_there(caplog: pytest.LogCaptureFixture) -> None:
    """Refused TCP connections (OSError) are retried, and the retry is logged at INFO."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    starting: list[hybi.sync.Server] = []

    class StartingBackoff(RecordingBackoff):
        def next_delay(self) -> float:
            if not starting:  # the first attempt was refused: start the server on that port
                sock = socket.create_server(("127.0.0.1", port))
                server = hybi.sync.serve(echo, sock=sock)
                threading.Thread(target=server.serve_forever, name="test-serve-forever").start()
                starting.append(server)
            return super().next_delay()

    backoff = StartingBackoff()
    try:
        with caplog.at_level(logging.INFO, logger="hybi.client"):
            for ws in hybi.sync.connect(f"ws://127.0.0.1:{port}/", backoff=backoff):
                ws.send("there")
                assert ws.recv(timeout=WAIT) == "there"
                break
    finally:
        for server in starting:
            assert server.shutdown(timeout=WAIT)
    assert backoff.calls == ["delay", "reset"]
    assert any("failed" in r.getMessage() and "retrying in" in r.getMessage() for r in caplog.records)


def test_connect_is_not_a_connection() -> None:
    """connect() opens when used: with `with`, `for` or `.open()`; used as a connection
    it says so."""
    pending = hybi.sync.connect("ws://127.0.0.1:1/")
    with pytest.raises(AttributeError, match=r"connect\(\) is not a connection .*open\(\)"):
        pending.send("hi")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        pending.nonsense  # type: ignore[attr-defined]  # noqa: B018


# -- logging -----------------------------------------------------------------------------------------


def test_debug_logs_the_exchange_with_the_connection_id(caplog: pytest.LogCaptureFixture) -> None:
    """As asyncio's: heads and every message in and out, elided, each record carrying the
    connection's id, on hybi.server and hybi.client."""
    server_ids: list[str] = []

    def handler(ws: hybi.sync.ServerConnection) -> None:
        server_ids.append(str(ws.id)[:8])
        echo(ws)

    with caplog.at_level(logging.DEBUG, logger="hybi"):
        with sync_server(handler) as server, hybi.sync.connect(url_of(server)) as ws:
            ws.send("x" * 200)
            assert ws.recv(timeout=WAIT) == "x" * 200
            ws.send(bytes(range(100)))
            assert ws.recv(timeout=WAIT) == bytes(range(100))
        client_id = str(ws.id)[:8]
    server_records = [r for r in caplog.records if r.name == "hybi.server"]
    client_records = [r for r in caplog.records if r.name == "hybi.client"]
    assert server_records and client_records
    assert {r.connection_id for r in client_records} == {client_id}  # type: ignore[attr-defined]
    assert {r.connection_id for r in server_records} == set(server_ids)  # type: ignore[attr-defined]
    assert all(r.getMessage().startswith(f"[{client_id}] ") for r in client_records)
    text = "\n".join(r.getMessage() for r in client_records)
    assert "request: GET / HTTP/1.1" in text and "response: HTTP/1.1 101" in text
    assert "open, version 13" in text
    assert "> text [200] 'xxx" in text and "…" in text  # elided past 60 characters
    assert "< text [200] 'xxx" in text
    assert f"> binary [100] {bytes(range(30)).hex()}…" in text
    server_text = "\n".join(r.getMessage() for r in server_records)
    assert "< text [200] 'xxx" in server_text and "> text [200] 'xxx" in server_text
    assert "connection lost" in server_text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_port_scanner_is_logged_at_info_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hybi"), sync_server() as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
            sock.sendall(b"\x16\x03\x01garbage\r\n\r\n")
            assert read_to_end(sock).startswith(b"HTTP/1.1 400 ")
        deadline = time.monotonic() + WAIT
        while not any("opening handshake failed" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    failures = [r for r in caplog.records if "opening handshake failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].name == "hybi.server"
    assert failures[0].levelno == logging.INFO and not failures[0].exc_info
    assert hasattr(failures[0], "connection_id")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- the handshake hooks ---------------------------------------------------------------------------


def test_process_request_can_refuse_with_a_custom_response() -> None:
    def auth(ws: hybi.sync.ServerConnection, request: hybi.Request) -> hybi.Response | None:
        if request.headers.get("Authorization") != "Bearer ok":
            return hybi.Response(401, "Unauthorized", hybi.Headers([("WWW-Authenticate", "Bearer")]), b"no\n")
        return None

    with sync_server(process_request=auth) as server:
        with pytest.raises(hybi.InvalidStatus) as caught:
            hybi.sync.connect(url_of(server)).open()
        assert caught.value.response.status == 401
        assert caught.value.response.headers.get("WWW-Authenticate") == "Bearer"
        with hybi.sync.connect(url_of(server), extra_headers=[("Authorization", "Bearer ok")]) as ws:
            ws.send("in")
            assert ws.recv(timeout=WAIT) == "in"


def test_process_request_that_raises_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    def broken(ws: hybi.sync.ServerConnection, request: hybi.Request) -> hybi.Response | None:
        raise ValueError("hook bug")

    with caplog.at_level(logging.ERROR, "hybi"), sync_server(process_request=broken) as server:
        with pytest.raises(hybi.InvalidStatus) as caught:
            hybi.sync.connect(url_of(server)).open()
        assert caught.value.response.status == 500
    assert "process_request failed" in caplog.text


def test_request_details_origin_and_subprotocols() -> None:
    def handler(ws: hybi.sync.ServerConnection) -> None:
        origin = ws.request.origin if ws.request else ""
        ws.send(f"{ws.path} {ws.request_headers.get('X-Token')} {ws.subprotocol} {origin}")

    def pick(ws: hybi.sync.ServerConnection, offered: object) -> str | None:
        return "chat"

    with sync_server(
        handler, subprotocols=["superchat", "chat"], select_subprotocol=pick, origins=["http://a", "http://b"]
    ) as server:
        for version, origin in ((13, "http://a"), (8, "http://b")):
            with hybi.sync.connect(
                url_of(server, "/room?x=1"),
                versions=[version],
                subprotocols=["superchat", "chat"],
                origin=origin,
                extra_headers=[("X-Token", "secret")],
            ) as ws:
                assert ws.recv(timeout=WAIT) == f"/room?x=1 secret chat {origin}"
                assert ws.subprotocol == "chat"
                assert ws.response_headers.get("Sec-WebSocket-Protocol") == "chat"
                assert ws.remote_address == ("127.0.0.1", server.port)
        with pytest.raises(hybi.InvalidStatus) as caught:
            hybi.sync.connect(url_of(server), origin="https://evil.example").open()
        assert caught.value.response.status == 403


# -- flow control ----------------------------------------------------------------------------------


def test_a_client_that_does_not_read_holds_the_server_back() -> None:
    """The server's unwritten bytes stay near the high-water mark and the client's queue
    at max_queue: the sending handler waits instead of filling memory, and all it got to
    send fits in the two kernel buffers between them."""
    total, size, max_queue = 1000, 65536, 4
    frame = size + 4 + 10  # the index, and a version 13 header
    sent = [0]
    connections: queue.Queue[hybi.sync.ServerConnection] = queue.Queue()

    def flood(ws: hybi.sync.ServerConnection) -> None:
        connections.put(ws)
        for index in range(total):
            ws.send(index.to_bytes(4, "big") + bytes(size))
            sent[0] = index + 1
        ws.wait_closed(WAIT)

    with (
        sync_server(flood, compression=None) as server,
        hybi.sync.connect(url_of(server), compression=None, max_queue=max_queue) as ws,
    ):
        server_ws = connections.get(timeout=WAIT)
        most_unwritten = most_queued = 0

        def sample() -> None:
            nonlocal most_unwritten, most_queued
            most_unwritten = max(most_unwritten, server_ws._outbuf_size)
            most_queued = max(most_queued, len(ws._messages))
            time.sleep(0.01)

        deadline = time.monotonic() + WAIT
        while not ws._reading_paused and time.monotonic() < deadline:
            sample()
        assert ws._reading_paused  # max_queue messages wait: the client stopped reading
        watch_until = time.monotonic() + 1.0
        while time.monotonic() < watch_until:
            sample()
        kernel = server_ws._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) + ws._sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF
        )
        # What left the handler: the kernel buffers, the server's unwritten bytes, and the
        # client's queue, its message being read and the one its last read cut.
        assert sent[0] * frame <= kernel + _HIGH_WATER + (max_queue + 4) * frame
        assert most_unwritten <= _HIGH_WATER + 2 * frame
        assert most_queued <= max_queue + 2  # one read holds at most two of these messages
        for index in range(total):
            message = ws.recv(timeout=WAIT)
            assert isinstance(message, bytes) and int.from_bytes(message[:4], "big") == index
        assert sent[0] == total


def test_two_peers_that_both_stream_do_not_wait_for_each_other() -> None:
    """A sender thread streams while the main thread reads the echoes: neither side stops
    reading because its own writes wait."""
    count, size = 400, 65536
    with (
        sync_server(compression=None, max_size=None) as server,
        hybi.sync.connect(url_of(server), compression=None, max_size=None) as ws,
    ):
        errors: list[BaseException] = []

        def stream() -> None:
            try:
                for index in range(count):
                    ws.send(index.to_bytes(4, "big") + bytes(size))
            except BaseException as error:
                errors.append(error)

        sender = threading.Thread(target=stream)
        sender.start()
        for index in range(count):
            message = ws.recv(timeout=WAIT)
            assert isinstance(message, bytes) and int.from_bytes(message[:4], "big") == index
        sender.join(WAIT)
        assert not errors


@pytest.mark.parametrize("server_kind", ["sync", "asyncio"])
def test_two_peers_streaming_at_each_other_do_not_stall(server_kind: str) -> None:
    """The asyncio test of that name, with a sync client (its sender in a thread of its
    own) against either server: while its writes are backed up a side goes on reading."""
    chunk = os.urandom(1 << 16)  # random: compression cannot shrink it
    with contextlib.ExitStack() as stack:
        if server_kind == "sync":
            url = url_of(stack.enter_context(sync_server()))
        else:
            url = stack.enter_context(in_loop(aio_server))
        ws = stack.enter_context(hybi.sync.connect(url))
        errors: list[BaseException] = []

        def stream() -> None:
            try:
                for _ in range(400):
                    ws.send(chunk)
            except BaseException as error:
                errors.append(error)

        sender = threading.Thread(target=stream)
        sender.start()
        for _ in range(400):
            assert ws.recv(timeout=WAIT) == chunk
        sender.join(WAIT)
        assert not errors


def test_an_asyncio_peer_streaming_at_a_sync_server_does_not_stall() -> None:
    chunk = os.urandom(1 << 16)

    async def main(url: str) -> None:
        async with hybi.connect(url) as ws:

            async def stream() -> None:
                for _ in range(400):
                    await ws.send(chunk)

            sender = asyncio.create_task(stream())
            for _ in range(400):
                assert await ws.recv() == chunk
            await sender

    with sync_server() as server:
        run(main(url_of(server)), timeout=60)


def test_a_ping_flood_from_a_peer_that_never_reads_owes_one_pong() -> None:
    """While its writes are backed up the server goes on reading (the flood is read whole)
    and owes the peer one pong, for the latest ping, instead of one per ping; it sends it
    once the peer reads again."""
    with sync_server(ping_interval=None) as server, raw_client(server.port) as sock:
        (connection,) = server.connections
        # Small kernel buffers (not grown by autotuning), so that what they hold is known:
        # the pongs sent before the server's writing blocked, and the pings it has not read
        # yet when the peer starts reading (it answers those as it reads them, rightly).
        buffers = [(s, option) for s in (connection._sock, sock) for option in (socket.SO_SNDBUF, socket.SO_RCVBUF)]
        for owner, option in buffers:
            owner.setsockopt(socket.SOL_SOCKET, option, 1 << 16)
        ping = raw_frame(0x89, b"p" * 100)
        for _ in range(320):  # 17 MB of pings, none of whose pongs is read meanwhile
            sock.sendall(ping * 500)  # times out (WAIT) if the server stopped reading
        sock.sendall(raw_frame(0x89, b"last"))
        deadline = time.monotonic() + WAIT
        while not connection.writing_paused and time.monotonic() < deadline:
            time.sleep(0.01)
        assert connection.writing_paused and connection._outbuf_size < 1 << 20  # not 17 MB of pongs
        received = b""
        while not received.endswith(b"\x8a\x04last"):
            chunk = sock.recv(1 << 16)
            assert chunk, "closed before the pong of the last ping"
            received += chunk
        kernel = sum(owner.getsockopt(socket.SOL_SOCKET, option) for owner, option in buffers)
        assert len(received) <= kernel + 2 * _HIGH_WATER  # not one pong for each of the 160,000 pings


# -- TLS --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_queue", [1, 2, 3])
def test_a_queue_of_one_or_two_resumes_reading_once_taken(max_queue: int) -> None:
    """With max_queue=1, reading resumes once the queue is empty (it never did: a hang)."""

    def flood(ws: hybi.sync.ServerConnection) -> None:
        for index in range(50):
            ws.send(str(index))
        ws.wait_closed(timeout=WAIT)

    with sync_server(flood) as server, hybi.sync.connect(url_of(server), max_queue=max_queue) as ws:
        assert [ws.recv(timeout=WAIT) for _ in range(50)] == [str(i) for i in range(50)]


@pytest.fixture(scope="module", name="tls_contexts")
def tls_contexts_fixture() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return conftest.tls_contexts()


def test_tls(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls_contexts
    with sync_server(ssl=server_context) as server:
        secure = f"wss://localhost:{server.port}/"
        with hybi.sync.connect(secure, host="127.0.0.1", ssl=client_context, versions="8,13") as ws:
            assert isinstance(ws._sock, ssl.SSLSocket)
            exchange(ws, "8")
            ws.send(bytes(1_000_000))  # many TLS records each way
            assert ws.recv(timeout=WAIT) == bytes(1_000_000)
        assert ws.close_code == 1000
        with pytest.raises(ssl.SSLCertVerificationError):
            hybi.sync.connect(secure, host="127.0.0.1").open()  # the default context does not trust the test CA


def test_tls_with_asyncio_peers(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls_contexts
    with in_loop(lambda: aio_server(ssl=server_context)) as url:
        secure = url.replace("ws://127.0.0.1", "wss://localhost")
        with hybi.sync.connect(secure, host="127.0.0.1", ssl=client_context) as ws:
            exchange(ws, "13")
        assert ws.close_code == 1000

    async def main(url: str) -> None:
        async with hybi.connect(url, host="127.0.0.1", ssl=client_context) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "over TLS"
        assert ws.close_code == 1000

    with sync_server(ssl=server_context) as server:
        run(main(f"wss://localhost:{server.port}/"))


@pytest.mark.parametrize("peer", PEERS)
def test_server_hostname_names_the_certificate(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext], peer: str) -> None:
    server_context, client_context = tls_contexts
    with a_server(peer, ssl=server_context) as url:
        secure = url.replace("ws://", "wss://")  # 127.0.0.1: the certificate names localhost
        with pytest.raises(ssl.SSLCertVerificationError):
            hybi.sync.connect(secure, ssl=client_context).open()
        with hybi.sync.connect(secure, ssl=client_context, server_hostname="localhost") as ws:
            ws.send("named")
            assert ws.recv(timeout=WAIT) == "named"


# -- a typed API ------------------------------------------------------------------------------------

USER_PROGRAM = """
import hybi
import hybi.sync
from hybi.sansio.reconnect import Backoff

def handler(ws: hybi.sync.ServerConnection) -> None:
    for message in ws:
        ws.send(message, compress=False)

def stamp(ws: hybi.sync.ServerConnection, request: hybi.Request, response: hybi.Response) -> hybi.Response | None:
    response.headers.add("X-Path", ws.path)
    return None

def main() -> None:
    with hybi.sync.serve(
        handler, "127.0.0.1", 0, versions=(13, 8), subprotocols=["chat"], require_subprotocol=True,
        process_response=stamp, additional_headers={"X-A": "1"}, server_header=None,
        idle_timeout=30.0, max_fragments=100, max_size=1 << 16,
    ) as server:
        url = f"ws://127.0.0.1:{server.port}/"
        with hybi.sync.connect(
            url, versions=[8, 13], compression="memory", extra_headers=[("X-B", "2")],
            user_agent_header=None, server_hostname=None, idle_timeout=None, max_fragments=None, proxy=None,
        ) as ws:
            ws.send("hi")
            reply: str | bytes = ws.recv(timeout=5)
            print(reply, ws.version, ws.latency, ws.id.hex, ws.local_address, ws.remote_address, ws.extensions)
        for again in hybi.sync.connect(url, backoff=Backoff(initial=1.0), proxy="socks5h://u:p@127.0.0.1:1080"):
            again.send("once more")
            break
        opened: hybi.sync.ClientConnection = hybi.sync.connect(url).open()
        opened.close()
        skipped: int = hybi.sync.broadcast(server.connections, "to all")
        print(skipped)
"""


def test_a_user_program_type_checks(tmp_path: Path) -> None:
    result = mypy(USER_PROGRAM, tmp_path)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("right", "wrong"),
    [("subprotocols=", "subprotocol="), ("user_agent_header=", "user_agent="), ("server_header=", "server_headers=")],
)
def test_a_misspelt_option_fails_type_checking_and_at_run_time(tmp_path: Path, right: str, wrong: str) -> None:
    result = mypy(USER_PROGRAM.replace(right, wrong), tmp_path)
    assert result.returncode == 1 and f'Unexpected keyword argument "{wrong[:-1]}"' in result.stdout, result.stdout
    with pytest.raises(TypeError, match=wrong[:-1]):
        if wrong == "user_agent=":
            hybi.sync.connect("ws://127.0.0.1:1/", user_agent="me")  # type: ignore[call-arg]
        else:
            hybi.sync.serve(echo, "127.0.0.1", 0, **{wrong[:-1]: None})


def test_using_connect_as_a_connection_fails_type_checking(tmp_path: Path) -> None:
    program = USER_PROGRAM.replace(
        "opened: hybi.sync.ClientConnection = hybi.sync.connect(url).open()", "opened = hybi.sync.connect(url)"
    )
    result = mypy(program, tmp_path)
    assert result.returncode == 1 and '"connect" has no attribute "close"' in result.stdout, result.stdout
