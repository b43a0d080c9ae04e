"""What every echo server of `make bench` shares: the port, uvloop, a clean stop.

Each server listens on 127.0.0.1:$BENCH_PORT, echoes every message with its type, prints one
line ("listening <pid>") on standard output once it accepts connections, and ends on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
from collections.abc import Awaitable, Callable

import uvloop

HOST = "127.0.0.1"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
MAX_SIZE = 2**21  # room for the 1 MiB messages


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` on uvloop; `main` calls `ready()` once listening and returns after `stop`."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # idle5k holds 5,000 connections

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await main(stop)

    uvloop.run(wrapper())


def ready() -> None:
    print(f"listening {os.getpid()}", flush=True)


def log(message: str) -> None:
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr, flush=True)
