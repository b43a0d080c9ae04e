"""The programs in examples/, run as a reader would run them: servers as processes on free
ports, driven by the example clients or by hybi's own client, and their output checked.

Every wait is for a line of output; the timeouts only keep a broken example from hanging
the suite.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hybi import ALL_VERSIONS
from hybi.sync import connect

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HANG_GUARD = 60.0  # seconds; never reached unless something is broken


class Program:
    """A running example: its output lines arrive in a queue, read by a thread per pipe."""

    def __init__(self, script: str, *args: str, stdin: str | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(pipe,), daemon=True)
            for pipe in (self.process.stdout, self.process.stderr)
        ]
        for reader in self.readers:
            reader.start()
        if stdin is not None:
            assert self.process.stdin is not None
            self.process.stdin.write(stdin)
            self.process.stdin.close()

    def _read(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first line (not yet looked at) that matches `pattern`."""
        while True:
            try:
                line = self.lines.get(timeout=HANG_GUARD)
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r}; output so far: {self.seen}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def finish(self) -> list[str]:
        """Wait for the program to exit by itself; return every line it printed."""
        self.process.wait(timeout=HANG_GUARD)
        for reader in self.readers:  # the pipes close when the program ends
            reader.join(timeout=HANG_GUARD)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def stop(self) -> None:
        """SIGTERM (the examples' clean shutdown), then SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=HANG_GUARD)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def server(script: str, *args: str) -> Iterator[tuple[str, Program]]:
    """Start an example server on a free port; yield its ws:// URL, stop it afterwards."""
    program = Program(script, "--port", "0", *args)
    try:
        url = program.wait_for(r"(ws://127\.0\.0\.1:\d+/)").group(1)
        yield url, program
    finally:
        program.stop()


def run_client(script: str, *args: str, stdin: str | None = None) -> list[str]:
    client = Program(script, *args, stdin=stdin)
    try:
        lines = client.finish()
    finally:
        client.stop()
    assert client.process.returncode == 0, lines
    return lines


def test_echo_client_and_server() -> None:
    with server("echo_server.py") as (url, program):
        lines = run_client("echo_client.py", url, "hello", "wörld")
        assert lines == ["connected with version 13", "< hello", "< wörld"]
        with connect(url) as ws:
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=HANG_GUARD) == b"\x00\xff"
        program.stop()
        program.wait_for("^stopped$")
        assert program.process.returncode == 0


def test_sync_client_and_server() -> None:
    with server("sync_server.py") as (url, program):
        lines = run_client("sync_client.py", url, "one", "two")
        assert lines == ["connected with version 8", "< one", "< two"]
        with connect(url, versions=(13,)) as ws:
            program.stop()  # the server shuts down while a client is connected
            assert list(ws) == []  # the iteration ends: a normal close
            assert ws.close_code == 1001
        program.wait_for("^stopped$")


def test_chat_broadcasts_to_everyone() -> None:
    with (
        server("chat_server.py") as (url, _),
        connect(url + "?name=alice") as alice,
        connect(url + "?name=bob") as bob,
    ):
        assert alice.recv(timeout=HANG_GUARD) == "* alice joined"
        assert alice.recv(timeout=HANG_GUARD) == "* bob joined"
        assert bob.recv(timeout=HANG_GUARD) == "* bob joined"
        alice.send("hello, room")
        assert alice.recv(timeout=HANG_GUARD) == "alice: hello, room"
        assert bob.recv(timeout=HANG_GUARD) == "alice: hello, room"

        lines = run_client("chat_client.py", url, "carol", stdin="hi all\nbye\n")
        assert "carol: hi all" in lines and lines[-1] == "carol: bye", lines
        said = [bob.recv(timeout=HANG_GUARD) for _ in range(4)]
        assert said == ["* carol joined", "carol: hi all", "carol: bye", "* carol left"]


def test_reconnecting_client_comes_back_after_a_restart() -> None:
    first = Program("echo_server.py", "--port", "0")
    try:
        url = first.wait_for(r"(ws://127\.0\.0\.1:(\d+)/)")
        client = Program("reconnecting_client.py", url.group(1), "--connections", "2")
        try:
            client.wait_for("^connection 1: version 13$")
            client.wait_for("^< hello #1$")
            first.stop()
            client.wait_for("^connection 1 closed by the server: 1001$")
            second = Program("echo_server.py", "--port", url.group(2))
            try:
                second.wait_for("^serving on ")
                client.wait_for("^connection 2: version 13$")
                client.wait_for("^< hello #2$")
            finally:
                second.stop()
            client.wait_for("^connection 2 closed by the server: 1001$")
            client.finish()
            assert client.process.returncode == 0
        finally:
            client.stop()
    finally:
        first.stop()


def test_sansio_by_hand() -> None:
    lines = run_client("sansio_by_hand.py")
    assert lines[0] == "request for /chat, state connecting"
    assert "  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
    assert "received ['Hello']" in lines
    assert lines.count("to send: 81 05 48 65 6c 6c 6f") == 1
    assert "to send: 88 02 03 e8" in lines
    assert lines[-1] == "closed normally: code 1000, sent 1000"


@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_old_clients_server_speaks_every_version(version: str) -> None:
    with server("old_clients_server.py") as (url, _), connect(url, versions=(version,)) as ws:
        assert str(ws.version) == version
        assert ws.recv(timeout=HANG_GUARD) == f"hello, you speak {version}"
        ws.send("ping?")
        assert ws.recv(timeout=HANG_GUARD) == "ping?"


def test_asgi_app_under_uvicorn() -> None:
    pytest.importorskip("uvicorn")
    pytest.importorskip("starlette")
    program = Program("asgi_app.py", "--port", "0", "--versions", "13,hixie-76")
    try:
        port = program.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1)
        for version in ("13", "hixie-76"):
            with connect(f"ws://127.0.0.1:{port}/echo", versions=(version,)) as ws:
                assert ws.recv(timeout=HANG_GUARD) == f"hello, you speak {version}"
                ws.send("through uvicorn")
                assert ws.recv(timeout=HANG_GUARD) == "through uvicorn"
    finally:
        program.stop()
