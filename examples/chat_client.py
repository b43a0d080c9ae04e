"""A chat client: each line typed is sent to the room, and what the room says is printed.

Usage: python examples/chat_client.py [ws://127.0.0.1:8765/] [name]

At the end of input (Ctrl-D) it waits until its own last line has come back from the
room, so that you know everyone got it, then leaves.
"""

import asyncio
import sys
from urllib.parse import quote

import hybi


async def main(uri: str, name: str) -> None:
    async with hybi.connect(f"{uri}?name={quote(name)}") as ws:
        last_line = ""
        echoed = asyncio.Event()  # set when the room has said our last line
        echoed.set()

        async def print_messages() -> None:
            async for message in ws:
                print(message, flush=True)
                if message == f"{name}: {last_line}":
                    echoed.set()

        printer = asyncio.create_task(print_messages())
        # Standard input is read in a thread, so that the event loop goes on printing.
        while line := await asyncio.to_thread(sys.stdin.readline):
            last_line = line.rstrip("\n")
            echoed.clear()
            await ws.send(last_line)
        # End of input: wait for our last line to come back (or for the room to close).
        waiter = asyncio.create_task(echoed.wait())
        await asyncio.wait([printer, waiter], return_when=asyncio.FIRST_COMPLETED)
        printer.cancel()
        waiter.cancel()


if __name__ == "__main__":
    uri = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/"
    name = sys.argv[2] if len(sys.argv) > 2 else "guest"
    asyncio.run(main(uri, name))
