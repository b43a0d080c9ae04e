"""Hostile peers over real sockets, on 127.0.0.1: every attack bounded in count and time.

Each test sends the bytes of one finding of the hardening report and checks that the
server's memory stays bounded and its connections are released.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import hybi
from conftest import raw_frame, run

REQUEST = (
    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def echo(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def server(**options: Any) -> AsyncIterator[hybi.Server]:
    async with hybi.serve(echo, "127.0.0.1", 0, **options) as running:
        yield running


async def opened(port: int, request: bytes = REQUEST) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


async def flood(writer: asyncio.StreamWriter, frame: bytes, total: int, batch: int = 2000) -> int:
    """Write `frame` up to `total` times without reading; stop once the peer stops reading
    (a write that cannot drain within 0.5 s) or drops the connection. Returns how many went out."""
    sent = 0
    while sent < total:
        writer.write(frame * batch)
        sent += batch
        try:
            await asyncio.wait_for(writer.drain(), 0.5)
        except TimeoutError:
            break
        except ConnectionError:
            break  # the server already dropped the connection: what the tests want in the end
    return sent


def server_side(running: hybi.Server) -> hybi.ServerConnection:
    assert len(running.connections) == 1
    return next(iter(running.connections))


async def released(running: hybi.Server, within: float = 10.0) -> None:
    """Wait until the server holds no connection (bounded)."""
    async with asyncio.timeout(within):
        while running.connections or running.handshaking:
            await asyncio.sleep(0.02)


def test_ping_flood_from_a_peer_that_never_reads() -> None:
    """Finding 4: pongs must not pile up: while the peer does not read, only the latest
    ping is answered (RFC 6455 section 5.5.3), once it reads again."""

    async def main() -> None:
        async with server(ping_interval=None) as running:
            _reader, writer = await opened(running.port)
            sent = await flood(writer, raw_frame(0x89, b"p" * 100), 160_000, batch=500)  # 17 MB
            connection = server_side(running)
            assert connection.transport is not None
            # While it cannot write, the server owes one pong (the latest), not one per ping.
            assert connection.transport.get_write_buffer_size() < 1 << 20
            assert sent > 0
            writer.close()

    run(main())


def test_close_then_never_read_is_released() -> None:
    """Finding 6: a flood of pings, a close frame, then silence: aborted, not held."""

    async def main() -> None:
        async with server(ping_interval=0.2, ping_timeout=0.2, close_timeout=0.3) as running:
            _reader, writer = await opened(running.port)
            await flood(writer, raw_frame(0x89, b"x" * 100), 200_000, batch=500)
            writer.write(raw_frame(0x88, b"\x03\xe8"))
            await released(running)
            writer.close()

    run(main())


def test_bad_frame_then_never_read_is_released() -> None:
    """Whether the server sees the bad frame (and closes) or not (its handler is stuck
    sending an echo nobody reads, so it stops reading past max_queue), keepalive's
    unanswered ping and the close timeout release such a peer."""

    async def main() -> None:
        async with server(ping_interval=0.2, ping_timeout=0.2, close_timeout=0.3) as running:
            _reader, writer = await opened(running.port)
            await flood(writer, raw_frame(0x81, b"y" * 1000), 20_000, batch=200)
            writer.write(raw_frame(0x83, b"reserved opcode"))
            await released(running)
            writer.close()

    run(main())


def test_empty_fragments_are_cut_off() -> None:
    """Finding 1: an endless message of empty continuation frames fails with 1009."""

    async def main() -> None:
        async with server() as running:
            reader, writer = await opened(running.port)
            writer.write(raw_frame(0x02, b"") + raw_frame(0x00, b"") * 140_000)
            data = await asyncio.wait_for(reader.read(), 10)
            assert data[:4] == b"\x88" + bytes([len(data) - 2]) + (1009).to_bytes(2, "big")
            writer.close()

    run(main())


@pytest.mark.parametrize("version", ["hixie-76", "hixie-75"])
def test_hixie_message_just_over_the_limit(version: str) -> None:
    """Finding 5: the 0xFF that ends a too-long message arrives in the read that crosses the limit."""

    async def main() -> None:
        async with (
            hybi.serve(echo, "127.0.0.1", 0, versions=[version], max_size=1000) as running,
            hybi.connect(f"ws://127.0.0.1:{running.port}/", versions=[version]) as ws,
        ):
            await ws.send("a" * 1001)
            with pytest.raises(hybi.ConnectionClosed):
                await ws.recv()

    run(main())


def test_non_ascii_http_version_gets_400_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Finding 8."""

    async def main() -> None:
        async with server() as running:
            reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
            writer.write(b"GET / HTTP/1.\xff\r\nHost: x\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            assert answer.startswith(b"HTTP/1.1 400 ")
            writer.close()

    with caplog.at_level(logging.DEBUG):
        run(main())
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (b"HTTP/1.\xff 101 Switching Protocols\r\n\r\n", "malformed status line"),  # finding 9
        (b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: \xb2\r\n\r\n", "listed no versions"),  # 10
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: \xb9\r\n\r\n", "403"),  # 10
    ],
)
def test_client_meets_bytes_that_are_not_digits(answer: bytes, words: str) -> None:
    async def main() -> None:
        async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            writer.close()

        listening = await asyncio.start_server(answering, "127.0.0.1", 0)
        async with listening:
            port = listening.sockets[0].getsockname()[1]
            with pytest.raises(hybi.InvalidHandshake, match=words):
                await hybi.connect(f"ws://127.0.0.1:{port}/", open_timeout=None)

    run(main(), timeout=10)


# -- scale ------------------------------------------------------------------------------------

SCALE_SERVER = """
import asyncio, ctypes, gc, sys
import hybi

def rss_kib():
    # Freed memory goes back to the system first, so that what is measured is what is held.
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with hybi.serve(echo, "127.0.0.1", 0, ping_interval=None, backlog=1024) as server:
        print(server.port, flush=True)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, sys.stdin.readline):
            print(rss_kib(), len(server.connections), flush=True)

asyncio.run(main())
"""


def test_ten_thousand_idle_connections() -> None:
    """10,000 idle connections: memory per connection under 8 KiB, and a new client is
    still served at once."""
    count = 10_000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 200:
        pytest.skip(f"the file descriptor limit ({hard}) is too low for {count} connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 200), hard))
    process = subprocess.Popen(
        [sys.executable, "-c", SCALE_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())

        async def main() -> tuple[float, float]:
            held: list[asyncio.StreamWriter] = []

            async def one() -> None:
                _reader, writer = await opened(port)
                held.append(writer)

            def measure(expected: int) -> int:
                """The server's memory once it holds `expected` open connections."""
                assert process.stdin is not None and process.stdout is not None
                while True:
                    process.stdin.write("rss\n")
                    process.stdin.flush()
                    rss, held_now = map(int, process.stdout.readline().split())
                    if held_now >= expected:
                        return rss

            for _ in range(10):
                await one()
            before = await asyncio.to_thread(measure, 10)
            for _ in range(0, count, 200):
                await asyncio.gather(*(one() for _ in range(200)))
            per_connection = (await asyncio.to_thread(measure, count + 10) - before) * 1024 / count
            started = time.monotonic()
            async with hybi.connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.send("still served")
                assert await ws.recv() == "still served"
            latency = time.monotonic() - started
            for writer in held:
                writer.close()
            return per_connection, latency

        per_connection, latency = run(main(), timeout=120)
        print(f"{per_connection:.0f} bytes per idle connection; a new client served in {latency * 1000:.1f} ms")
        assert per_connection < 8 * 1024
        assert latency < 2.0  # served, not stuck behind the idle ones (the bound is loose on purpose)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
