"""The `hybi` command, run as a user would run it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, NamedTuple

import pytest

import hybi
from conftest import run

HYBI = [sys.executable, "-m", "hybi"]


class Lines:
    """The lines a process writes to one of its pipes, read by a thread as they come, so that
    a test waits for a line rather than for some time (and the pipe never fills up)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.condition = threading.Condition()
        self.ended = False
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self.condition:
                self.lines.append(line.rstrip("\n"))
                self.condition.notify_all()
        with self.condition:
            self.ended = True
            self.condition.notify_all()

    def expect(self, text: str, timeout: float = 30.0) -> str:
        """The first line containing `text`, once it has come (a hang guard, not a delay)."""
        with self.condition:
            found = self.condition.wait_for(
                lambda: any(text in line for line in self.lines) or self.ended, timeout=timeout
            )
            match = next((line for line in self.lines if text in line), None)
        assert found and match is not None, f"no line with {text!r} among {self.lines}"
        return match

    def text(self) -> str:
        with self.condition:
            return "\n".join(self.lines)


class Served(NamedTuple):
    url: str
    process: subprocess.Popen[str]
    log: Lines
    """Standard error of `hybi serve`: its notes and its log, one line per connection."""


@contextmanager
def hybi_serve(*args: str, cwd: str | None = None) -> Iterator[Served]:
    """Start `hybi serve` on a free port; yield its ws:// URL; stop it with SIGINT."""
    process = subprocess.Popen(
        [*HYBI, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        log = Lines(process.stderr)
        first = process.stdout.readline()
        match = re.search(r"wss?://127\.0\.0\.1:\d+/", first)
        assert match, f"unexpected first line {first!r}; stderr: {log.text()}"
        yield Served(match.group(0), process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def hybi_run(*args: str, stdin: str = "", cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HYBI, *args], input=stdin, capture_output=True, text=True, timeout=30, check=False, cwd=cwd)


def test_serve_connect_echo() -> None:
    with hybi_serve() as (url, *_):
        result = hybi_run("connect", url, stdin="hello\nwörld\n\nlast line\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "wörld", "", "last line"]
    assert "connected with version 13" in result.stderr
    assert "closed with code 1000" in result.stderr


def test_connect_reports_the_retry() -> None:
    with hybi_serve("--versions", "13") as (url, *_):
        result = hybi_run("connect", url, "--versions", "8,13", stdin="x\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "x\n"
    assert "connected with version 13 (after version 8 was refused with 426; server listed 13)" in result.stderr


def test_connect_without_a_common_version_fails_clearly() -> None:
    with hybi_serve("--versions", "13,8") as (url, *_):
        result = hybi_run("connect", url, "--versions", "7", stdin="x\n")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no WebSocket version in common: client offers 7; server accepts 13, 8" in result.stderr


def test_connect_to_a_silent_server_says_it_timed_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        result = hybi_run("connect", f"ws://127.0.0.1:{silent.getsockname()[1]}/", "--open-timeout", "0.3")
    assert result.returncode == 1
    assert "handshake failed: no answer within 0.3 s" in result.stderr


def test_connect_to_nothing_fails_clearly() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = hybi_run("connect", f"ws://127.0.0.1:{port}/")
    assert result.returncode == 1
    assert "handshake failed" in result.stderr


def test_bad_versions_argument() -> None:
    result = hybi_run("connect", "ws://127.0.0.1:1/", "--versions", "13,99")
    assert result.returncode == 2
    assert "unknown WebSocket version '99'" in result.stderr


def test_probe_reports_accepted_and_listed_versions() -> None:
    with hybi_serve("--versions", "8,7") as (url, *_):
        result = hybi_run("probe", url, "--json")
        text = hybi_run("probe", url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["accepted"] == ["8", "7"]
    assert report["listed"] == ["8", "7"]  # version names, as "accepted" has them and --versions takes them
    assert report["versions"]["13"] == {
        "result": "refused",
        "status": 426,
        "listed": ["8", "7"],
        "reason": "Upgrade Required",
    }
    assert report["versions"]["8"]["result"] == "accepted"
    assert "        13: refused with 426 Upgrade Required; listed 8, 7" in text.stdout
    assert "         8: accepted (101 Switching Protocols)" in text.stdout
    assert "  hixie-76: refused with 426 Upgrade Required; listed 8, 7" in text.stdout
    assert "accepted by a real 101: 8, 7" in text.stdout


def test_probe_of_nothing_exits_non_zero() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = hybi_run("probe", f"ws://127.0.0.1:{port}/", "--json")
    assert result.returncode == 1
    assert all(v["result"] == "error" for v in json.loads(result.stdout)["versions"].values())


def test_browser_page() -> None:
    with hybi_serve() as (url, *_):
        http_url = url.replace("ws://", "http://")
        with urllib.request.urlopen(http_url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/html")
            page = response.read().decode()
        assert "new WebSocket(" in page
        assert "location.host" in page


def test_ctrl_c_closes_connections_with_1001() -> None:
    async def client(url: str, process: subprocess.Popen[str]) -> int:
        async with hybi.connect(url) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            process.send_signal(signal.SIGINT)
            with pytest.raises(hybi.ConnectionClosedOK) as caught:
                await ws.recv()
            return caught.value.code

    with hybi_serve() as (url, process, log):
        assert run(client(url, process)) == 1001
        assert process.wait(timeout=15) == 0
        log.expect("closing 1 connection(s) with 1001")


def test_version_option() -> None:
    for flag in ("-V", "--version"):
        result = hybi_run(flag)
        assert result.returncode == 0 and result.stdout.strip() == f"hybi {hybi.__version__}"


def test_serve_on_a_busy_port_says_so_without_a_traceback() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = hybi_run("serve", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1 port" in result.stderr and "Traceback" not in result.stderr


def test_connect_with_stdin_from_dev_null() -> None:
    with hybi_serve() as (url, *_):
        result = subprocess.run(
            [*HYBI, "connect", url], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 0, result.stderr
    assert "closed with code 1000" in result.stderr


def test_connect_notices_a_server_that_closes_first() -> None:
    async def main() -> None:
        async def closing(ws: hybi.ServerConnection) -> None:
            await ws.close(1001, "bye now")

        async with hybi.serve(closing, "127.0.0.1", 0) as server:
            process = await asyncio.create_subprocess_exec(
                *HYBI,
                "connect",
                f"ws://127.0.0.1:{server.port}/",
                stdin=asyncio.subprocess.PIPE,  # left open: no end of input ever comes
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                assert process.stderr is not None
                stderr = await asyncio.wait_for(process.stderr.read(), 20)  # stdin stays open meanwhile
                await asyncio.wait_for(process.wait(), 20)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            assert process.returncode == 0
            assert "closed with code 1001 bye now" in stderr.decode()

    run(main())
