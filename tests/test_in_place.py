"""Large payloads received in place: the transport writes into the payload's own buffer.

`Connection.receive_buffer()` lends the part of a large frame's payload still to come;
`receive_in_place(n)` says how much landed there. Whatever the cuts, the events must be the
ones `receive_data` gives for the same bytes, on both accelerator paths (`PayloadBuilder`
twins), in every length-prefixed dialect, in both roles; and the pumps (asyncio, uvloop, TLS,
threads) must use it and give every message back intact.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import random
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybi
from conftest import tls_contexts
from hybi.exceptions import InvalidState
from hybi.sansio import DIALECTS, Options, open_connection
from hybi.sansio import connection as sansio_connection
from hybi.sansio._accel import COMPILED
from hybi.sansio._pure import PayloadBuilder as PurePayloadBuilder
from hybi.sansio._pure import mask as pure_mask
from hybi.sansio.events import ConnectionFailed, Event, Role

try:
    from hybi import _speedups
except ImportError:  # not built here
    _speedups = None  # type: ignore[assignment]

KEY = b"\x37\xfa\x21\x3d"
BUILDERS = [
    pytest.param(PurePayloadBuilder, id="pure"),
    pytest.param(None if _speedups is None else _speedups.PayloadBuilder, id="compiled"),
]
LENGTH_PREFIXED = ["13", "8", "7", "6", "5", "hybi-02"]


@pytest.fixture(params=BUILDERS)
def builder_type(request: pytest.FixtureRequest) -> Any:
    if request.param is None:
        pytest.skip("hybi._speedups was not built")
    return request.param


# -- the builders' window and filled --------------------------------------------------------


@given(
    st.binary(min_size=1, max_size=3000),
    st.lists(st.tuples(st.integers(1, 3000), st.booleans()), max_size=8),
    st.integers(0, 7),
    st.booleans(),
)
def test_a_payload_received_into_its_window_is_the_whole_unmasked(
    data: bytes, steps: list[tuple[int, bool]], offset: int, masked: bool
) -> None:
    """Pieces written into the window (or added, in any mix) give the same payload."""
    key = KEY if masked else None
    wire = pure_mask(data, KEY, offset) if masked else data
    for builder_type in (PurePayloadBuilder, None if _speedups is None else _speedups.PayloadBuilder):
        if builder_type is None:
            continue
        builder = builder_type(len(data))
        pos = 0
        for size, in_place in itertools.chain(steps, itertools.repeat((3000, True))):
            if pos == len(data):
                break
            count = min(size, len(data) - pos)
            if in_place:
                window = builder.window()
                assert len(window) == len(data) - pos
                window[:count] = wire[pos : pos + count]
                assert builder.filled(count, key, offset + pos)
            else:
                assert builder.add(wire[pos : pos + count], key, offset + pos)
            pos += count
            assert builder.missing == len(data) - pos
        assert builder.take() == data


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
@settings(max_examples=200)
def test_text_received_in_place_is_checked_as_it_lands(data: bytes, cuts: list[int]) -> None:
    """filled() answers as add() does for the same pieces: False from the first bad one."""
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    masked = pure_mask(data, KEY)
    for builder_type in (PurePayloadBuilder, None if _speedups is None else _speedups.PayloadBuilder):
        if builder_type is None:
            continue
        by_add = builder_type(len(data), True)
        by_window = builder_type(len(data), True)
        for start, stop in itertools.pairwise(bounds):
            expected = by_add.add(masked[start:stop], KEY, start)
            if stop > start:
                by_window.window()[: stop - start] = masked[start:stop]
            assert by_window.filled(stop - start, KEY, start) == expected
        assert by_window.take() == by_add.take() == data


def test_a_window_refuses_misuse(builder_type: Any) -> None:
    builder = builder_type(4)
    with pytest.raises(ValueError, match="more bytes"):
        builder.filled(5)
    with pytest.raises(ValueError, match="more bytes"):
        builder.filled(-1)
    builder.window()[:4] = b"abcd"
    assert builder.filled(4)
    with pytest.raises(BufferError):
        builder.window()  # nothing is missing
    assert builder.take() == b"abcd"
    with pytest.raises(ValueError, match="taken"):
        builder.filled(0)
    with pytest.raises(BufferError):
        builder.window()
    with pytest.raises(ValueError, match="4 bytes"):
        builder_type(1).filled(1, b"abc")


def test_a_window_lent_across_take_stays_valid(builder_type: Any) -> None:
    """A transport may still hold the view while the payload is handed on (uvloop releases
    it after buffer_updated): the memory behind it must live as long as the view."""
    builder = builder_type(1 << 16)
    window = builder.window()
    window[:] = b"x" * (1 << 16)
    builder.filled(1 << 16)
    payload = builder.take()
    del builder
    gc.collect()
    assert bytes(window[:3]) == b"xxx"
    assert payload == b"x" * (1 << 16)
    window.release()


# -- the compiled builder's recycled buffers ---------------------------------------------------


@pytest.fixture
def speedups() -> ModuleType:
    if _speedups is None:
        pytest.skip("hybi._speedups was not built")
    _speedups.release_pool()
    yield _speedups
    _speedups.release_pool()


def build(module: ModuleType, data: bytes) -> bytes:
    builder = module.PayloadBuilder(len(data))
    builder.window()[:] = data
    builder.filled(len(data))
    payload: bytes = builder.take()
    return payload


def test_a_payload_still_referenced_is_never_refilled(speedups: ModuleType) -> None:
    first = build(speedups, b"a" * (1 << 20))
    held_by_a_view = memoryview(build(speedups, b"b" * (1 << 20)))
    others = [build(speedups, bytes([n]) * (1 << 20)) for n in range(20)]
    assert first == b"a" * (1 << 20)
    assert held_by_a_view == b"b" * (1 << 20)
    assert [other[:1] for other in others] == [bytes([n]) for n in range(20)]
    assert all(other == bytes([n]) * (1 << 20) for n, other in enumerate(others))


def test_a_refilled_payload_forgets_its_old_hash(speedups: ModuleType) -> None:
    payload = build(speedups, b"a" * (1 << 16))
    old_hash = hash(payload)
    old_id = id(payload)
    del payload
    again = build(speedups, b"c" * (1 << 16))
    assert id(again) == old_id  # the same object came back, filled anew
    assert again == b"c" * (1 << 16)
    assert hash(again) == hash(b"c" * (1 << 16)) != old_hash
    smaller = build(speedups, b"d" * 40000)  # a smaller payload may take a larger idle one
    assert smaller == b"d" * 40000 and len(smaller) == 40000


def test_what_the_pool_keeps_idle_is_bounded_and_can_be_released(speedups: ModuleType) -> None:
    tracemalloc.start()
    try:
        for size in (1 << 20, 3 << 20, 5 << 20, 1 << 16, 2 << 20) * 4:
            build(speedups, bytes(size))
        gc.collect()
        idle, _ = tracemalloc.get_traced_memory()
        assert idle <= (8 << 20) + (1 << 20)  # the budget, with room for the test's own objects
        speedups.release_pool()
        released, _ = tracemalloc.get_traced_memory()
        assert released < 1 << 20
    finally:
        tracemalloc.stop()


# -- the core ---------------------------------------------------------------------------------


def wire_for(version: str, role: Role, messages: list[str | bytes], options: Options) -> bytes:
    """What the peer of a `role` endpoint sends for `messages`."""
    peer = open_connection(DIALECTS[version], Role.CLIENT if role is Role.SERVER else Role.SERVER, options)
    for message in messages:
        if isinstance(message, str):
            peer.send_text(message)
        else:
            peer.send_binary(message)
    return peer.data_to_send()


def feed_whole(version: str, role: Role, wire: bytes, options: Options) -> tuple[list[Event], bytes]:
    connection = open_connection(DIALECTS[version], role, options)
    events = connection.receive_data(wire)
    return events, connection.data_to_send()


def feed_in_place(
    version: str, role: Role, wire: bytes, options: Options, sizes: Iterator[int]
) -> tuple[list[Event], bytes, int]:
    """Feed `wire` in reads of the given sizes, into the window whenever there is one."""
    connection = open_connection(DIALECTS[version], role, options)
    events: list[Event] = []
    pos = 0
    in_place = 0
    while pos < len(wire):
        size = next(sizes)
        window = connection.receive_buffer()
        if window is None:
            count = min(size, len(wire) - pos)
            events += connection.receive_data(wire[pos : pos + count])
        else:
            count = min(size, len(window), len(wire) - pos)
            window[:count] = wire[pos : pos + count]
            window.release()
            events += connection.receive_in_place(count)
            in_place += count
        pos += count
    return events, connection.data_to_send(), in_place


def messages_for(seed: int) -> list[str | bytes]:
    rng = random.Random(seed)
    return [
        rng.randbytes(70000),
        "small",
        "é" * 40000,  # 80,000 bytes of text
        rng.randbytes(3),
        rng.randbytes((1 << 20) + 3),
        "z" * 65536,
    ]


def read_sizes(kind: str, seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        if kind == "whole":
            yield 1 << 30
        elif kind == "odd":
            yield rng.choice((1, 2, 3, 7, 1000, 65536, 100003, 1 << 20))
        else:
            yield 65536


@pytest.mark.parametrize("version", LENGTH_PREFIXED)
@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT], ids=["server", "client"])
@pytest.mark.parametrize("reads", ["whole", "odd", "64k"])
def test_in_place_gives_the_events_receive_data_gives(version: str, role: Role, reads: str) -> None:
    options = Options(max_size=None)
    messages = messages_for(6455)
    if not DIALECTS[version].new_codec(Role.SERVER, max_size=None).binary:
        messages = [m for m in messages if isinstance(m, str)]
    wire = wire_for(version, role, messages, options)
    expected = feed_whole(version, role, wire, options)
    assert expected[0] == messages
    events, sent, in_place = feed_in_place(version, role, wire, options, read_sizes(reads, 7))
    assert (events, sent) == expected
    if reads == "64k":
        assert in_place > 900_000  # most of the large payloads came in place
    elif reads == "odd":
        assert in_place > 0


def test_byte_by_byte_into_the_window_then_trailing_frames() -> None:
    options = Options(max_size=None)
    payload = os.urandom(65536 + 9)
    wire = wire_for("13", Role.SERVER, [payload, "after", b"\x00"], options)
    events, _, in_place = feed_in_place("13", Role.SERVER, wire, options, itertools.repeat(1))
    assert events == [payload, "after", b"\x00"]
    assert in_place > 65000


def test_invalid_text_received_in_place_fails_with_1007_at_the_bad_piece() -> None:
    if not COMPILED:
        pytest.skip("text is checked piece by piece on the pure path, never in place")
    good = "a" * 70000
    wire = wire_for("13", Role.SERVER, [good], Options())
    bad_at = 30000
    tainted = bytearray(wire)
    header = len(wire) - 70000
    tainted[header + bad_at] ^= ord("a") ^ 0xFF  # 0xFF is never in UTF-8
    connection = open_connection(DIALECTS["13"], Role.SERVER, Options())
    assert connection.receive_data(bytes(tainted[: header + 100])) == []
    window = connection.receive_buffer()
    assert window is not None
    window[:bad_at] = tainted[header + 100 : header + 100 + bad_at]
    events = connection.receive_in_place(bad_at)
    assert [type(event) for event in events] == [ConnectionFailed]
    assert events[0].code == 1007  # type: ignore[attr-defined]
    assert connection.receive_buffer() is None
    close = connection.data_to_send()
    assert close[:1] == b"\x88" and close[2:4] == b"\x03\xef"  # the close frame, 1007


def test_too_large_a_frame_is_refused_from_its_header_with_no_window() -> None:
    wire = wire_for("13", Role.SERVER, [bytes(200000)], Options(max_size=None))
    connection = open_connection(DIALECTS["13"], Role.SERVER, Options(max_size=100000))
    events = connection.receive_data(wire[:20])
    assert [getattr(event, "code", None) for event in events] == [1009]
    assert connection.receive_buffer() is None


@pytest.mark.parametrize("version", ["hixie-76", "hixie-75"])
def test_sentinel_frames_never_lend_a_window(version: str) -> None:
    connection = open_connection(DIALECTS[version], Role.SERVER, Options(max_size=None))
    wire = wire_for(version, Role.SERVER, ["x" * 100000], Options(max_size=None))
    assert connection.receive_data(wire[:50000]) == []
    assert connection.receive_buffer() is None
    assert connection.receive_data(wire[50000:]) == ["x" * 100000]


def test_in_place_bytes_with_no_window_are_refused() -> None:
    connection = open_connection(DIALECTS["13"], Role.SERVER)
    with pytest.raises(InvalidState):
        connection.receive_in_place(10)
    hixie = open_connection(DIALECTS["hixie-76"], Role.SERVER)
    with pytest.raises(InvalidState):
        hixie.receive_in_place(1)


# -- the pumps ----------------------------------------------------------------------------------


@pytest.fixture
def in_place_counter(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every count handed to receive_in_place, by any connection in this process."""
    counts: list[int] = []
    original = sansio_connection.Connection.receive_in_place

    def counting(self: sansio_connection.Connection, count: int, *, now: float | None = None) -> list[Event]:
        counts.append(count)
        return original(self, count, now=now)

    monkeypatch.setattr(sansio_connection.Connection, "receive_in_place", counting)
    return counts


LOOPS: list[Any] = [pytest.param(asyncio.new_event_loop, id="asyncio")]
try:
    import uvloop

    LOOPS.append(pytest.param(uvloop.new_event_loop, id="uvloop"))
except ImportError:  # pragma: no cover - uvloop is a test dependency
    pass


@pytest.mark.parametrize("new_loop", LOOPS)
@pytest.mark.parametrize("secure", [False, True], ids=["tcp", "tls"])
def test_asyncio_echoes_large_messages_received_in_place(
    new_loop: Callable[[], asyncio.AbstractEventLoop], secure: bool, in_place_counter: list[int]
) -> None:
    messages = messages_for(13)

    async def main() -> list[Any]:
        async def echo(ws: hybi.ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        server_ssl = client_ssl = None
        if secure:
            server_ssl, client_ssl = tls_contexts()
        async with hybi.serve(echo, "127.0.0.1", 0, max_size=None, ssl=server_ssl, max_queue=1) as server:
            url = f"wss://localhost:{server.port}/" if secure else f"ws://127.0.0.1:{server.port}/"
            async with hybi.connect(url, host="127.0.0.1", max_size=None, ssl=client_ssl) as ws:
                for message in messages:  # all sent before any is read: the queues fill up
                    await ws.send(message)
                received = [await ws.recv() for _ in messages]
                # after the large payloads, the connection reads through data_received again
                assert ws.transport is not None and ws.transport.get_protocol() is ws
                await ws.send("last")
                received.append(await ws.recv())
                return received

    loop = new_loop()
    try:
        received = loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        loop.close()
    assert received == [*messages, "last"]
    # A first read takes at most 256 KiB of the megabyte; at each end the rest lands in place.
    assert sum(in_place_counter) > 2 * ((1 << 20) - (256 << 10))


def test_a_peer_that_vanishes_mid_payload_closes_with_1006(in_place_counter: list[int]) -> None:
    async def main() -> tuple[int | None, int]:
        closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        async def handler(ws: hybi.ServerConnection) -> None:
            try:
                await ws.recv()
            except hybi.ConnectionClosed:
                closed.set_result(ws.close_code)

        async with hybi.serve(handler, "127.0.0.1", 0, max_size=None) as server:
            client = open_connection(DIALECTS["13"], Role.CLIENT)
            client.send_binary(os.urandom(1 << 20))
            frame = client.data_to_send()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            request = (
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")
            writer.write(frame[: len(frame) // 2])
            await writer.drain()
            while sum(in_place_counter) == 0:  # until the server reads into the payload itself
                await asyncio.sleep(0.01)
            writer.transport.abort()
            return await closed, sum(in_place_counter)

    code, landed = asyncio.run(asyncio.wait_for(main(), 30))
    assert code == 1006
    assert 0 < landed < 1 << 20


def test_threads_receive_large_messages_in_place(in_place_counter: list[int]) -> None:
    from hybi.sync import connect, serve

    messages = messages_for(8)

    def echo(ws: Any) -> None:
        for message in ws:
            ws.send(message)

    with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
                received = []
                for message in messages:
                    ws.send(message)
                    received.append(ws.recv(timeout=30))
        finally:
            server.shutdown()
            thread.join(30)
    assert received == messages
    assert sum(in_place_counter) > 2 * ((1 << 20) - (256 << 10))
