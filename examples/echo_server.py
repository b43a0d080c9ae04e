"""An echo server: every message comes back to its sender, text as text, binary as binary.

Usage: python examples/echo_server.py [--host 127.0.0.1] [--port 8765]

`--port 0` picks a free port; the address served is printed either way. Ctrl-C (or
SIGTERM) closes every connection with 1001 ("going away") and exits.
"""

import argparse
import asyncio
import signal

import hybi


async def echo(ws: hybi.ServerConnection) -> None:
    # One call of this handler per connection. Iteration ends when the client closes
    # normally; the connection is closed with 1000 when the handler returns.
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async with hybi.serve(echo, host, port) as server:  # versions 13, 8 and 7 by default
        print(f"serving on ws://{host}:{server.port}/", flush=True)
        await stop.wait()
    # Leaving `async with` closed the server and waited for every connection to end.
    print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
