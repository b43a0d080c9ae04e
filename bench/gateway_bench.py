"""What `hybi gateway` costs: memory per connection pair, messages per second and added
latency, against a direct connection and against a plain TCP relay on the same kind of
event loop (the most any proxy could do: it copies bytes and understands nothing).

    python bench/gateway_bench.py [--pairs 1000] [--messages 20000] [--round-trips 2000]

The upstream (`hybi serve`, an echo server speaking 13), the gateway (`hybi gateway`) and
the relay (this script's `relay` mode) each run in a process of their own; the client runs
here. Clients speak 13 directly and hixie-76 through the gateway and the relay as well
(the relay passes hixie-76 on untouched, so the upstream must speak it: it is told to).
Prints a table in Markdown. Loopback only; every process started is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import hybi

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@contextmanager
def process(args: list[str], ready: str) -> Iterator[subprocess.Popen[str]]:
    """Start `args`, wait for a line of output matching `ready`, stop it by its PID after."""
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert child.stdout is not None
        while True:
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"{args[:4]} ended before it was ready")
            if re.search(ready, line):
                break
        threading.Thread(target=child.stdout.read, daemon=True).start()  # keep the pipe from filling
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# -- the relay: bytes in, bytes out, with backpressure both ways -----------------------------


class Relay(asyncio.Protocol):
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.transport: asyncio.Transport | None = None
        self.peer: Relay | None = None
        self.pending: list[bytes] = []
        self.opening: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        if self.peer is None:  # the accepted side: open the other, holding what comes first
            self.opening = asyncio.ensure_future(self._open())

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        other = Relay(self.target)
        other.peer = self
        await loop.create_connection(lambda: other, *self.target)
        assert other.transport is not None
        other.transport.write(b"".join(self.pending))
        self.pending.clear()
        self.peer = other

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self.pending.append(data)
        else:
            self.peer.transport.write(data)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def eof_received(self) -> bool | None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def relay(port: int, target_port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(lambda: Relay(("127.0.0.1", target_port)), "127.0.0.1", port)
    print(f"relay on {port}", flush=True)
    await stop.wait()
    server.close()


def loop_factory() -> object:
    try:
        import uvloop  # noqa: PLC0415 - optional, as in the command line
    except ImportError:
        return None
    return uvloop.new_event_loop


# -- measurements ----------------------------------------------------------------------------


async def throughput(url: str, version: str, count: int, size: int = 32) -> float:
    """Messages per second, echoed: the client sends `count` messages as fast as the
    connection takes them while another task reads the echoes."""
    message = "x" * size
    async with hybi.connect(url, versions=version, compression=None, max_queue=1024) as ws:

        async def read() -> None:
            for _ in range(count):
                await ws.recv()

        reader = asyncio.ensure_future(read())
        started = time.perf_counter()
        for _ in range(count):
            await ws.send(message)
        await reader
        return count / (time.perf_counter() - started)


async def round_trips(url: str, version: str, count: int) -> float:
    """The median of `count` round trips of a 32-byte message, in microseconds."""
    times = []
    async with hybi.connect(url, versions=version, compression=None) as ws:
        for _ in range(count):
            started = time.perf_counter()
            await ws.send("x" * 32)
            await ws.recv()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def pair_memory(url: str, gateway_pid: int, pairs: int, version: str) -> float:
    """KiB of the gateway's resident memory per open connection pair."""
    await asyncio.sleep(0)
    before = rss_kib(gateway_pid)
    connections = []
    for _ in range(pairs):
        ws = await hybi.connect(url, versions=version, compression=None)
        await ws.send("x")
        await ws.recv()
        connections.append(ws)
    after = rss_kib(gateway_pid)
    await asyncio.gather(*(ws.close() for ws in connections))
    return (after - before) / pairs


async def measure(args: argparse.Namespace) -> None:
    up_port, gw_port, relay_port = free_port(), free_port(), free_port()
    upstream = [PYTHON, "-m", "hybi", "serve", "--port", str(up_port), "--versions", "13,hixie-76"]
    upstream += ["--compression", "off"]
    gateway = [PYTHON, "-m", "hybi", "gateway", "--listen", f"127.0.0.1:{gw_port}"]
    gateway += ["--upstream", f"ws://127.0.0.1:{up_port}/", "--upstream-versions", "13", "--versions", "all"]
    gateway += ["--compression", "off", "--upstream-compression", "off", "--ping-interval", "0"]
    gateway += ["--max-queue", "32"]
    relay_args = [PYTHON, __file__, "relay", str(relay_port), str(up_port)]
    with (
        process(upstream, "serving"),
        process(gateway, "gateway on"),
        process(relay_args, "relay on"),
    ):
        rows = []
        for label, port, version in [
            ("direct, 13", up_port, "13"),
            ("TCP relay, 13", relay_port, "13"),
            ("gateway, 13 → 13", gw_port, "13"),
            ("direct, hixie-76", up_port, "hixie-76"),
            ("TCP relay, hixie-76", relay_port, "hixie-76"),
            ("gateway, hixie-76 → 13", gw_port, "hixie-76"),
        ]:
            url = f"ws://127.0.0.1:{port}/"
            await round_trips(url, version, 200)  # warm up
            rate = statistics.median([await throughput(url, version, args.messages) for _ in range(3)])
            latency = await round_trips(url, version, args.round_trips)
            rows.append((label, rate, latency))
        memory = {}
        for version in ("13", "hixie-76"):  # each in a fresh gateway, whose memory nothing used before
            port = free_port()
            fresh = [*gateway[:5], f"127.0.0.1:{port}", *gateway[6:]]
            with process(fresh, "gateway on") as measured:
                memory[version] = await pair_memory(f"ws://127.0.0.1:{port}/", measured.pid, args.pairs, version)
    print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs; 32-byte messages, no compression\n")
    print("| path | messages/s (echoed) | median round trip (µs) |")
    print("|---|---:|---:|")
    for label, rate, latency in rows:
        print(f"| {label} | {rate:,.0f} | {latency:,.0f} |")
    print()
    for version, kib in memory.items():
        print(f"gateway memory per open pair ({version} client, 13 upstream, {args.pairs} pairs): {kib:.1f} KiB")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "relay":
        factory = loop_factory()
        with asyncio.Runner(loop_factory=factory) as runner:  # type: ignore[arg-type]
            runner.run(relay(int(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--round-trips", type=int, default=2000)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
