"""Finding and running the peers that scripts/install-peers.sh installs.

When HYBI_REQUIRE_INTEROP is set (as `make test` and CI set it), a missing peer fails the
test instead of skipping it, so interoperability is never silently left unproven.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[2] / "interop" / "node"
PEER_JS = NODE_DIR / "peer.js"

# The lengths on both sides of the 7-bit / 16-bit / 64-bit boundaries of RFC 6455 section 5.2.
SIZES = (0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000)


def require(found: bool, what: str) -> None:
    if found:
        return
    message = f"{what} is not installed: run scripts/install-peers.sh"
    if os.environ.get("HYBI_REQUIRE_INTEROP"):
        pytest.fail(message)
    pytest.skip(message)


def node_library(name: str) -> None:
    require(shutil.which("node") is not None, "node")
    require((NODE_DIR / "node_modules" / name / "package.json").exists(), f"the npm package {name}")


def text_of(size: int) -> str:
    """`size` bytes of UTF-8: mostly ASCII, with a two-byte character every 50 positions."""
    characters = []
    length = 0
    index = 0
    while length < size:
        wide = index % 50 == 49 and length + 2 <= size
        characters.append("é" if wide else chr(97 + index % 26))
        length += 2 if wide else 1
        index += 1
    return "".join(characters)


def bytes_of(size: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(size))


@contextmanager
def peer_process(args: list[str]) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    """Run a peer server that prints a JSON line when it listens and stops when its input
    ends; yield that line and the process, and make sure the process is gone afterwards."""
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "no output"
        yield json.loads(line), process
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def node_server(library: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run peer.js as an echo server; yield its URL. Closing its input stops it."""
    node_library(library)
    with peer_process(["node", str(PEER_JS), "server", library]) as (ready, process):
        yield f"ws://127.0.0.1:{ready['port']}/", process


def server_events(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    """The JSON lines a node server printed after its first one (call after it stopped)."""
    assert process.stdout is not None
    return [json.loads(line) for line in process.stdout.read().splitlines() if line.strip()]


def run_node_client(library: str, url: str, version: int, server_close: bool = False) -> dict[str, Any]:
    node_library(library)
    args = ["node", str(PEER_JS), "client", library, url, str(version)] + (["server-close"] if server_close else [])
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"node client printed nothing; stderr: {result.stderr}"
    return lines[-1]
