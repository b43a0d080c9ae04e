"""hybi's echo server: the asyncio API as an application uses it, keepalive off.

HYBI_BENCH_COMPRESSION names the compression preset (hybi's default, "balanced", when unset);
HYBI_PURE_PYTHON=1 selects the pure-Python code where an accelerated one exists.
"""

from __future__ import annotations

import asyncio
import os

from _serve import HOST, MAX_SIZE, PORT, ready, run

import hybi

PRESET = os.environ.get("HYBI_BENCH_COMPRESSION", "balanced")


async def echo(ws: hybi.ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(stop: asyncio.Event) -> None:
    compression = None if PRESET == "off" else PRESET
    async with hybi.serve(echo, HOST, PORT, max_size=MAX_SIZE, ping_interval=None, compression=compression):  # type: ignore[arg-type]
        ready()
        await stop.wait()


run(main)
