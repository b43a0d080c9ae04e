"""The echo server again, with the threaded API (`hybi.sync`): no asyncio anywhere.

Usage: python examples/sync_server.py [--host 127.0.0.1] [--port 8765]

Each connection's handler runs in a thread of its own. Ctrl-C (or SIGTERM) closes every
connection with 1001 and exits.
"""

import argparse
import signal
import threading

from hybi.sync import ServerConnection, serve


def echo(ws: ServerConnection) -> None:
    for message in ws:  # ends when the client closes normally
        ws.send(message)


def main(host: str, port: int) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    with serve(echo, host, port) as server:
        # serve_forever() blocks, so it runs in a thread while this one waits for a signal.
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"serving on ws://{host}:{server.port}/", flush=True)
        stop.wait()
    # Leaving `with` called server.shutdown(): every connection closed with 1001.
    print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    main(args.host, args.port)
