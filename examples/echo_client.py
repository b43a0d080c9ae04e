"""A client for the echo server: sends each argument as a message and prints the answers.

Usage: python examples/echo_client.py [ws://127.0.0.1:8765/] [message ...]
"""

import asyncio
import sys

import hybi


async def main(uri: str, messages: list[str]) -> None:
    # The client opens with version 13; if the server refuses it with a list of the
    # versions it accepts (RFC 6455 section 4.4), it tries once more with one of those.
    async with hybi.connect(uri, versions=(13, 8, 7)) as ws:
        print(f"connected with version {ws.version}")
        for message in messages:
            await ws.send(message)
            print("<", await ws.recv())
    # Leaving `async with` closed the connection with 1000.


if __name__ == "__main__":
    uri = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/"
    asyncio.run(main(uri, sys.argv[2:] or ["Hello, world!"]))
