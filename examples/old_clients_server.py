"""A server for every client there ever was: RFC 6455 and every draft down to hixie-75.

Usage: python examples/old_clients_server.py [--host 127.0.0.1] [--port 8765]

It greets each client with the version it speaks, then echoes. The drafts before 7 are
not on by default (their client frames are not masked, see "Serving old clients" in the
documentation); `versions="all"` turns them all on.
"""

import argparse
import asyncio
import signal

import hybi


async def greet_and_echo(ws: hybi.ServerConnection) -> None:
    # ws.version is a number (13, 8, 7, 6, 5) or a draft's name ("hybi-02", "hixie-76",
    # "hixie-75"). The hixie drafts carry text only: sending them bytes would raise
    # hybi.UnsupportedFeature, so this server answers every message as text.
    await ws.send(f"hello, you speak {ws.version}")
    async for message in ws:
        await ws.send(message if isinstance(message, str) else message.hex())


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with hybi.serve(
        greet_and_echo,
        host,
        port,
        versions="all",  # 13, 8, 7, 6, 5, hybi-02, hixie-76, hixie-75
        idle_timeout=300,  # the hixie drafts have no ping: drop peers silent for 5 minutes
    ) as server:
        print(f"serving on ws://{host}:{server.port}/", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
