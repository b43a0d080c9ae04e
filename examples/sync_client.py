"""A client with the threaded API: sends each argument and prints the answers.

Usage: python examples/sync_client.py [ws://127.0.0.1:8765/] [message ...]
"""

import sys

from hybi.sync import connect


def main(uri: str, messages: list[str]) -> None:
    # Prefer version 8 here, to show negotiation: a server that does not take 8 answers
    # 426 with its own list, and the client tries again with 13.
    with connect(uri, versions=(8, 13)) as ws:
        print(f"connected with version {ws.version}")
        for message in messages:
            ws.send(message)
            print("<", ws.recv(timeout=10))  # TimeoutError if nothing comes in 10 s


if __name__ == "__main__":
    uri = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/"
    main(uri, sys.argv[2:] or ["Hello, world!"])
