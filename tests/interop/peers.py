"""Finding and running the peers that scripts/install-peers.sh installs.

When HYBI_REQUIRE_INTEROP is set (as `make test` and CI set it), a missing peer fails the
test instead of skipping it, so interoperability is never silently left unproven.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
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


STARTUP_TIMEOUT = 60.0
"""Seconds a peer server has to print its first line (a JVM on a loaded machine is slow)."""

STOP_TIMEOUT = 15.0
"""Seconds a peer server has, once its input has ended, to see its last connections end,
report them and exit."""


class PeerServer:
    """A peer server process and what it printed.

    Threads read its standard output and error as they come, so that neither pipe fills
    and blocks the peer, and nothing it wrote is lost. `ready` is its first JSON line;
    `events` are the later ones, which are complete only once it has stopped (after the
    `with peer_process(...)` block), so reading them earlier is an error.
    """

    def __init__(self, args: list[str]) -> None:
        self.name = shlex.join(args)[:200]
        self.process = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.ready: dict[str, Any] = {}
        self._events: list[dict[str, Any]] | None = None  # set once it has stopped
        self._exited = True
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)  # the end of the output

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self._stderr.append(self.process.stderr.read())

    @property
    def stderr(self) -> str:
        """What the peer wrote to standard error (all of it once it has stopped)."""
        return "".join(self._stderr)

    def wait_ready(self) -> dict[str, Any]:
        """Wait for the first line, which the peer prints once it listens."""
        try:
            line = self._lines.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"{self.name} printed nothing within {STARTUP_TIMEOUT} s") from None
        if line is None:
            self.stop()
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode} before it listened; stderr: {self.stderr}"
            )
        self.ready = json.loads(line)
        return self.ready

    def stop(self) -> bool:
        """End the peer's input, which tells it to stop, and wait until it has exited and
        all it wrote has been read. A peer still running after STOP_TIMEOUT is killed.
        Returns whether it exited by itself."""
        if self._events is not None:
            return self._exited
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # it is gone already
                self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._exited = False
        for reader in self._readers:
            reader.join(timeout=STOP_TIMEOUT)  # its output ends with it, unless a child holds it
            assert not reader.is_alive(), f"the output of {self.name} did not end when it exited"
        lines = []
        while (line := self._lines.get_nowait()) is not None:
            lines.append(line)
        self._events = [json.loads(line) for line in lines if line.strip()]
        return self._exited

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON lines the peer printed after its first one."""
        assert self._events is not None, "a peer's events are complete only once it has stopped"
        return self._events


@contextmanager
def peer_process(args: list[str]) -> Iterator[PeerServer]:
    """Run a peer server that prints a JSON line when it listens and stops when its input
    ends; yield it once it listens. On leaving, end its input and wait for it to exit: a
    peer that does not exit by itself, or exits with an error, fails the test."""
    peer = PeerServer(args)
    try:
        peer.wait_ready()
        yield peer
    except BaseException:
        peer.stop()
        raise
    exited = peer.stop()
    assert exited, f"{peer.name} still ran {STOP_TIMEOUT} s after its input ended; stderr: {peer.stderr}"
    assert peer.process.returncode == 0, f"{peer.name} exited with {peer.process.returncode}; stderr: {peer.stderr}"


@contextmanager
def node_server(library: str, *options: str) -> Iterator[tuple[str, PeerServer]]:
    """Run peer.js as an echo server (with peer.js's `--options`); yield its URL. Closing
    its input stops it."""
    node_library(library)
    with peer_process(["node", str(PEER_JS), "server", library, *options]) as peer:
        yield f"ws://127.0.0.1:{peer.ready['port']}/", peer


def run_node_client(
    library: str, url: str, version: int, server_close: bool = False, options: Sequence[str] = ()
) -> dict[str, Any]:
    node_library(library)
    args = ["node", str(PEER_JS), "client", library, url, str(version)] + (["server-close"] if server_close else [])
    args += options
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"node client printed nothing; stderr: {result.stderr}"
    return lines[-1]
