"""A client that stays connected: when the server goes away, it connects again.

Usage: python examples/reconnecting_client.py [ws://127.0.0.1:8765/] [--connections N]

On each connection it sends one message and prints whatever comes back until the
connection ends. `--connections N` stops after N connections (0, the default: never).
"""

import argparse
import asyncio

import hybi
from hybi.sansio.reconnect import Backoff


async def main(uri: str, connections: int) -> None:
    count = 0
    # `async for` over connect() yields a new connection each time the last one ended in
    # a way worth retrying (the network, a 5xx answer, a close with 1001 or 1006, ...).
    # Between attempts it waits: a random first delay, then longer ones (RFC 6455 section
    # 7.2.3). Here the first delay is at most a second and the longest 10 seconds.
    async for ws in hybi.connect(uri, backoff=Backoff(initial=1.0, maximum=10.0)):
        count += 1
        print(f"connection {count}: version {ws.version}", flush=True)
        try:
            await ws.send(f"hello #{count}")
            async for message in ws:  # ends when the server closes normally (1000, 1001)
                print("<", message, flush=True)
        except hybi.ConnectionClosedError as closed:
            print(f"connection {count} lost: {closed.code}", flush=True)
        else:
            print(f"connection {count} closed by the server: {ws.close_code}", flush=True)
        if count == connections:
            break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri", nargs="?", default="ws://127.0.0.1:8765/")
    parser.add_argument("--connections", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.uri, args.connections))
