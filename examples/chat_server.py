"""A chat room: each message a client sends goes to every client connected, sender included.

Usage: python examples/chat_server.py [--host 127.0.0.1] [--port 8765]

Clients name themselves in the URL (`ws://127.0.0.1:8765/?name=alice`).
"""

import argparse
import asyncio
import signal
from urllib.parse import parse_qs, urlsplit

import hybi

# The room: the open connections, and the name each chose.
members: dict[hybi.ServerConnection, str] = {}


def say(text: str) -> None:
    # broadcast() frames the message once per version in use and writes it to every
    # connection without waiting; a client too slow to keep up is skipped, not waited for.
    skipped = hybi.broadcast(members, text)
    if skipped:
        print(f"{skipped} slow or closed member(s) skipped", flush=True)


async def chat(ws: hybi.ServerConnection) -> None:
    query = parse_qs(urlsplit(ws.path).query)
    name = query.get("name", [f"guest-{len(members) + 1}"])[0]
    members[ws] = name
    say(f"* {name} joined")
    try:
        async for message in ws:
            if isinstance(message, str):  # text only: binary messages are ignored
                say(f"{name}: {message}")
    finally:
        # However the connection ended (closed, dropped, failed), leave the room.
        del members[ws]
        say(f"* {name} left")


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with hybi.serve(chat, host, port) as server:
        print(f"serving on ws://{host}:{server.port}/", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
