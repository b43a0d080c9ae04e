"""The `hybi` command, run as a user would run it."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import termios
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

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


def hybi_run(
    *args: str, stdin: str = "", cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `hybi`. `connect` waits for as many replies as lines sent, bounded by --linger,
    which is here a hang guard (60 s) rather than the 2 s a person gets."""
    if args[:1] == ("connect",) and "--linger" not in args:
        args = (*args, "--linger", "60")
    return subprocess.run(
        [*HYBI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
    )


def test_serve_connect_echo() -> None:
    with hybi_serve() as (url, *_):
        result = hybi_run("connect", url, stdin="hello\nwörld\n\nlast line\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "wörld", "", "last line"]
    assert "connected with version 13" in result.stderr
    assert "closed with code 1000" in result.stderr
    assert "\x1b" not in result.stdout + result.stderr  # no colour, no prompt: no terminal here


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


# -- input from a file, a pipe, /dev/null; closes -------------------------------------------


def test_connect_with_stdin_from_a_file(tmp_path: Path) -> None:
    source = tmp_path / "lines.txt"
    source.write_text("first\nsecond\n", encoding="utf-8")
    with hybi_serve() as (url, *_), source.open() as stdin:
        result = subprocess.run(
            [*HYBI, "connect", url], stdin=stdin, capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["first", "second"]
    assert "closed with code 1000" in result.stderr


def write_app(directory: Path, source: str) -> None:
    (directory / "cli_app.py").write_text(textwrap.dedent(source), encoding="utf-8")


APP = """
    import json

    async def boom(ws):
        await ws.recv()
        raise RuntimeError("boom")

    async def hello(ws):
        headers = {name: ws.request_headers.get(name) for name in ("X-Test", "Origin", "Sec-WebSocket-Origin")}
        await ws.send(json.dumps({"path": ws.path, "headers": headers, "subprotocol": ws.subprotocol}))
        await ws.send(bytes([0, 1, 2, 255]))
        async for _ in ws:  # two messages sent, none echoed
            pass

    async def closer(ws):
        await ws.close(1001, "bye now")

    not_a_function = 3
"""


def test_an_error_close_is_said_once_and_exits_1(tmp_path: Path) -> None:
    write_app(tmp_path, APP)
    with hybi_serve("cli_app:boom", cwd=str(tmp_path)) as (url, _, log):
        result = hybi_run("connect", url, stdin="x\n")
        as_json = hybi_run("connect", url, "--json", stdin="x\n")
        log.expect("closed with 1011")
    assert result.returncode == 1
    assert result.stderr.count("1011") == 1, result.stderr
    assert "hybi: closed with code 1011 internal error" in result.stderr
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert events[-1] == {"event": "close", "code": 1011, "reason": "internal error", "clean": False}
    assert as_json.returncode == 1


def test_connect_notices_at_once_a_server_that_closes_first_with_stdin_open(tmp_path: Path) -> None:
    write_app(tmp_path, APP)
    with hybi_serve("cli_app:closer", cwd=str(tmp_path)) as (url, *_):
        process = subprocess.Popen(
            [*HYBI, "connect", url, "--json"],
            stdin=subprocess.PIPE,  # left open: no end of input ever comes
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            events = [json.loads(line) for line in process.stdout]  # ends when hybi exits
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert events[0]["event"] == "open"
    assert events[-1] == {"event": "close", "code": 1001, "reason": "bye now", "clean": True}


# -- hybi connect's options ------------------------------------------------------------------


def test_connect_headers_origin_and_subprotocols(tmp_path: Path) -> None:
    write_app(tmp_path, APP)
    with hybi_serve(
        "cli_app:hello", "-s", "chat", "--origin", "http://ok.example", "--origin", "none", cwd=str(tmp_path)
    ) as (url, _, log):
        result = hybi_run(
            "connect",
            url + "room?x=1",
            "--json",
            "-H",
            "X-Test: yes",
            "-s",
            "other",
            "--subprotocol",
            "chat",
            "--origin",
            "http://ok.example",
            stdin="a\nb\n",
        )
        refused = hybi_run("connect", url, "--origin", "http://evil.example", stdin="")
        forbidden = log.expect("403 to 127.0.0.1:")
        draft = hybi_run("connect", url, "--json", "--versions", "8", "--origin", "http://ok.example", stdin="a\nb\n")
        without_origin = hybi_run("connect", url, stdin="")  # admitted by --origin none
    assert forbidden.endswith(" /: origin 'http://evil.example' is not allowed"), forbidden
    assert result.returncode == 0, result.stderr
    opened, greeting, binary, closed = (json.loads(line) for line in result.stdout.splitlines())
    assert opened["event"] == "open" and opened["subprotocol"] == "chat" and opened["version"] == "13"
    assert json.loads(greeting["data"]) == {
        "path": "/room?x=1",
        "headers": {"X-Test": "yes", "Origin": "http://ok.example", "Sec-WebSocket-Origin": None},
        "subprotocol": "chat",
    }
    assert binary == {"event": "message", "type": "binary", "data": "000102ff", "encoding": "hex"}
    assert closed["code"] == 1000
    assert "subprotocol chat" in result.stderr
    assert refused.returncode == 1
    assert "403" in refused.stderr
    greeting = json.loads(json.loads(draft.stdout.splitlines()[1])["data"])
    assert greeting["headers"] == {"X-Test": None, "Origin": None, "Sec-WebSocket-Origin": "http://ok.example"}
    assert without_origin.returncode == 0, without_origin.stderr


def test_connect_json_shows_the_negotiation() -> None:
    with hybi_serve("--versions", "8") as (url, *_):
        result = hybi_run("connect", url, "--json", "--versions", "13,8", stdin="hi\n")
        failed = hybi_run("connect", url, "--json", "--versions", "7", stdin="hi\n")
    assert result.returncode == 0, result.stderr
    opened, message, closed = (json.loads(line) for line in result.stdout.splitlines())
    assert opened["version"] == "8"
    assert opened["extensions"] == ["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"]
    assert opened["attempts"] == [
        {"version": "13", "status": 426, "listed": [8]},
        {"version": "8", "status": 101, "listed": []},
    ]
    assert message == {"event": "message", "type": "text", "data": "hi"}
    assert closed == {"event": "close", "code": 1000, "reason": "", "clean": True}
    assert failed.returncode == 1
    [error] = (json.loads(line) for line in failed.stdout.splitlines())
    assert error["event"] == "error" and "no WebSocket version in common" in error["error"]
    assert error["attempts"] == [{"version": "7", "status": 426, "listed": [8]}]


@pytest.mark.parametrize(
    ("encoding", "lines", "echoed"),
    [("hex", "00ff10\n", "00ff10"), ("base64", "AAEC/w==\n", "AAEC/w==")],
)
def test_connect_binary_in_and_out(encoding: str, lines: str, echoed: str) -> None:
    with hybi_serve() as (url, *_):
        result = hybi_run("connect", url, "--binary", encoding, stdin=lines + "not valid!\n" + lines)
        as_json = hybi_run("connect", url, "--binary", encoding, "--json", stdin=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [echoed, echoed]  # the bad line was not sent
    assert f"line 2 is not {encoding}" in result.stderr
    message = json.loads(as_json.stdout.splitlines()[1])
    assert message == {"event": "message", "type": "binary", "data": echoed, "encoding": encoding}


def test_connect_without_binary_sends_text_and_shows_binary_in_hex(tmp_path: Path) -> None:
    write_app(tmp_path, APP)
    with hybi_serve("cli_app:hello", cwd=str(tmp_path)) as (url, *_):
        shown = hybi_run("connect", url, stdin="a\nb\n")
    with hybi_serve() as (url, *_):
        echoed = hybi_run("connect", url, "--json", stdin="00ff\n")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == ["000102ff"]
    assert json.loads(echoed.stdout.splitlines()[1]) == {"event": "message", "type": "text", "data": "00ff"}


def test_connect_ping_prints_round_trips() -> None:
    with hybi_serve() as (url, *_):
        for extra in ((), ("--json",)):
            process = subprocess.Popen(
                [*HYBI, "connect", url, "--ping", "0.05", *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert process.stdout is not None and process.stderr is not None and process.stdin is not None
                out, err = Lines(process.stdout), Lines(process.stderr)
                if extra:
                    pong = json.loads(out.expect('"pong"'))
                    assert pong["event"] == "pong" and 0 < pong["rtt"] < 30
                else:
                    assert re.search(r"hybi: pong after \d+\.\d\d ms", err.expect("pong after"))
                process.stdin.close()
                assert process.wait(timeout=30) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()


def test_max_size_on_both_sides() -> None:
    with hybi_serve("--max-size", "10") as (url, *_):
        too_big_for_server = hybi_run("connect", url, stdin="x" * 20 + "\n")
    with hybi_serve() as (url, *_):
        too_big_for_client = hybi_run("connect", url, "--max-size", "10", stdin="x" * 20 + "\n")
        fits = hybi_run("connect", url, "--max-size", "10", stdin="x" * 10 + "\n")
    assert too_big_for_server.returncode == 1
    assert "closed with code 1009" in too_big_for_server.stderr
    assert too_big_for_client.returncode == 1
    assert too_big_for_client.stdout == ""
    assert "(this side closed with 1009: " in too_big_for_client.stderr
    assert fits.returncode == 0 and fits.stdout == "x" * 10 + "\n"


def test_compression_off_on_either_side() -> None:
    with hybi_serve("--compression", "off") as (url, *_):
        server_off = hybi_run("connect", url, "--json", stdin="")
    with hybi_serve() as (url, *_):
        client_off = hybi_run("connect", url, "--json", "--compression", "off", stdin="")
        memory = hybi_run("connect", url, "--json", "--compression", "memory", stdin="")
    for result in (server_off, client_off):
        assert json.loads(result.stdout.splitlines()[0])["extensions"] == []
    assert "server_max_window_bits=10" in json.loads(memory.stdout.splitlines()[0])["extensions"][0]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    import trustme

    directory = tmp_path_factory.mktemp("tls")
    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1", "localhost")
    client = authority.issue_cert("client@example")
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "client": directory / "client.pem"}
    authority.cert_pem.write_to_path(str(paths["ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["cert"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return {name: str(path) for name, path in paths.items()}


def test_tls_serve_and_connect(certificates: dict[str, str]) -> None:
    with hybi_serve("--cert", certificates["cert"]) as (url, *_):
        assert url.startswith("wss://")
        trusted = hybi_run(
            "connect", url, "--cafile", certificates["ca"], "--cert", certificates["client"], stdin="s\n"
        )
        insecure = hybi_run("connect", url, "--insecure", stdin="i\n")
        untrusted = hybi_run("connect", url, stdin="u\n")
        probed = hybi_run("probe", url, "--insecure", "--versions", "13", "--json")
    assert trusted.returncode == 0 and trusted.stdout == "s\n", trusted.stderr
    assert insecure.returncode == 0 and insecure.stdout == "i\n", insecure.stderr
    assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert json.loads(probed.stdout)["accepted"] == ["13"]


def test_wss_to_a_plain_server_says_why_at_once() -> None:
    with hybi_serve() as (url, *_):
        result = hybi_run("connect", url.replace("ws://", "wss://"), "--open-timeout", "20", stdin="")
    assert result.returncode == 1
    assert re.search(r"hybi: handshake failed: TLS handshake with 127\.0\.0\.1:\d+ failed .+wss://", result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("connect", "ws://127.0.0.1:1/", "--insecure"), "are for wss:// URLs"),
        (("connect", "wss://127.0.0.1:1/", "--key", "k.pem"), "--key needs --cert"),
        (("connect", "http://127.0.0.1:1/"), "hybi connect: error:"),
        (("connect", "ws://127.0.0.1:1/", "-H", "no colon"), "write a header as 'Name: value'"),
        (("connect", "ws://127.0.0.1:1/", "--binary", "octal"), "invalid choice"),
        (("connect", "ws://127.0.0.1:1/", "--ping", "0"), "above 0"),
        (("connect",), "the following arguments are required: url"),
        (("serve", "no_such_module_here:app"), "cannot import 'no_such_module_here'"),
        (("serve", "cli_app:not_a_function"), "is not a function"),
        (("serve", "cli_app"), "give the handler as module:function"),
        (("serve", "--key", "k.pem"), "--key needs --cert"),
        (("probe", "ftp://x/"), "hybi probe: error:"),
        (("bogus",), "invalid choice"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    write_app(tmp_path, APP)
    result = hybi_run(*args, cwd=str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def _recording_proxy() -> tuple[int, list[bytes], threading.Thread, socket.socket]:
    """A listener that takes one connection, keeps the request head it gets and refuses it
    with 403, as an HTTP proxy that does not allow the target would."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    heads: list[bytes] = []

    def serve_one() -> None:
        connection, _ = listener.accept()
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                head += chunk
            heads.append(head)
            connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    return listener.getsockname()[1], heads, thread, listener


def test_proxy_option_sends_the_connection_through_the_proxy() -> None:
    """--proxy URL: the CLI asks the proxy for a tunnel to the server, and says why it failed
    when the proxy refuses (exit 1)."""
    port, heads, thread, listener = _recording_proxy()
    with listener:
        result = hybi_run("connect", "ws://example.invalid:9/chat", "--proxy", f"http://127.0.0.1:{port}", stdin="")
        thread.join(timeout=30)
    assert result.returncode == 1, result.stderr
    assert "403" in result.stderr and "Traceback" not in result.stderr
    assert heads and heads[0].startswith(b"CONNECT example.invalid:9 HTTP/1.1\r\n"), heads


def test_a_malformed_proxy_url_is_a_usage_error() -> None:
    result = hybi_run("connect", "ws://127.0.0.1:9/", "--proxy", "ftp://127.0.0.1:1", stdin="")
    assert result.returncode == 2, result.stderr
    assert "--proxy" in result.stderr and "Traceback" not in result.stderr


def test_proxy_none_connects_directly_despite_the_environment() -> None:
    """--proxy none overrides a proxy set in the environment: the echo arrives although the
    environment names a proxy that is not there."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{unused.getsockname()[1]}"
    env = {name: dead_proxy for name in ("WS_PROXY", "SOCKS_PROXY", "HTTP_PROXY", "ALL_PROXY")}
    env["NO_PROXY"] = ""
    with hybi_serve() as (url, *_):
        without = hybi_run("connect", url, stdin="through\n", env=env)
        assert without.returncode == 1, without.stderr  # the environment's proxy is used by default
        result = hybi_run("connect", url, "--proxy", "none", stdin="through\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "through" in result.stdout


def test_help_describes_every_option() -> None:
    for command, options in {
        "connect": [
            "--header",
            "--subprotocol",
            "--origin",
            "--insecure",
            "--cafile",
            "--cert",
            "--key",
            "--proxy",
            "--binary",
            "--ping",
            "--json",
            "--max-size",
            "--compression",
            "Exit status",
        ],
        "serve": [
            "MODULE:FUNCTION",
            "--max-size",
            "--compression",
            "--cert",
            "--key",
            "--subprotocol",
            "--origin",
            "--log-level",
            "--versions",
        ],
        "probe": ["--versions", "--json", "--insecure", "--timeout"],
    }.items():
        result = hybi_run(command, "--help")
        assert result.returncode == 0
        for option in options:
            assert option in result.stdout, (command, option)


# -- hybi serve's log and endpoints ----------------------------------------------------------


def test_serve_logs_one_line_per_connection_and_refusal() -> None:
    with hybi_serve("--versions", "8,7") as (url, _, log):
        hybi_run("connect", url, "--versions", "8", stdin="x\n")
        accepted = log.expect(" /: version 8,")
        hybi_run("connect", url, "--versions", "13", stdin="")
        refused = log.expect("426 to ")
        hybi_run("connect", url, "--versions", "hixie-76", stdin="")
        old = log.expect("asked hixie-76")
    assert re.search(
        r" INFO hybi\.server: \[\w{8}\] 127\.0\.0\.1:\d+ /: version 8, subprotocol none, "
        r"extensions permessage-deflate; server_max_window_bits=12; client_max_window_bits=12, "
        r"\d+\.\d{3} s, closed with 1000$",
        accepted,
    ), accepted
    assert re.search(r"426 to 127\.0\.0\.1:\d+ /: asked 13, accepts 8, 7$", refused), refused
    assert old.endswith("asked hixie-76, accepts 8, 7")
    assert "opening handshake failed" not in log.text()  # said once, by the line above


def test_serve_log_level_debug_shows_messages() -> None:
    with hybi_serve("--log-level", "debug") as (url, _, log):
        hybi_run("connect", url, stdin="traced\n")
        log.expect("< text [6] 'traced'")


def test_status_and_probe_endpoints() -> None:
    async def hold(url: str) -> dict[str, object]:
        async with hybi.connect(url, versions="hixie-76") as old:
            await old.send("old")
            assert await old.recv() == "old"
        async with hybi.connect(url + "?held", versions="8"):
            status = await asyncio.to_thread(fetch_json, url, "_hybi/status")
        return status

    with hybi_serve("--versions", "13,8,hixie-76", "-s", "chat") as (url, *_):
        status = run(hold(url))
        probe = fetch_json(url, "_hybi/probe")
    assert status["versions"] == ["13", "8", "hixie-76"]
    assert status["listed"] == [13, 8, 0]
    assert status["subprotocols"] == ["chat"]
    connections = status["connections"]
    assert isinstance(connections, list)
    held, old = connections[0], connections[1]
    assert held["state"] == "open" and held["version"] == "8" and held["path"] == "/?held"
    assert old["state"] == "closed" and old["version"] == "hixie-76" and old["asked"] == "hixie-76"
    assert old["extensions"] == [] and isinstance(old["close_code"], int)
    assert probe["report"]["accepted"] == ["13", "8", "hixie-76"]
    assert probe["text"][-2] == "accepted by a real 101: 13, 8, hixie-76"


def fetch_json(url: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(url.replace("ws://", "http://") + path, timeout=30) as response:
        assert response.headers["Content-Type"] == "application/json"
        data: dict[str, Any] = json.loads(response.read())
    return data


def test_probe_reports_extensions_and_asks_only_the_versions_given() -> None:
    with hybi_serve("--versions", "13,8,hixie-76") as (url, _, log):
        result = hybi_run("probe", url, "--json", "--versions", "13,hixie-76")
        text = hybi_run("probe", url, "--versions", "8")
        log.expect(" /: version 8, ")
    report = json.loads(result.stdout)
    assert list(report["versions"]) == ["13", "hixie-76"]
    assert report["versions"]["13"]["extensions"] == [
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
    ]
    assert report["versions"]["hixie-76"]["extensions"] == []  # the hixie drafts have none
    assert "asked 7" not in log.text() and "asked 5" not in log.text()
    assert (
        "         8: accepted (101 Switching Protocols); extensions: permessage-deflate; "
        "server_max_window_bits=12; client_max_window_bits=12" in text.stdout
    )


# -- interactive mode, in a real terminal ------------------------------------------------------


def _take_the_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty on its
    standard input, so that Ctrl-C typed there is a SIGINT to it, as in a shell."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`hybi connect` in a pseudo-terminal of its own, as a person at a terminal runs it."""

    def __init__(self, *args: str) -> None:
        self.master, slave = os.openpty()
        self.slave = slave
        env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
        self.process = subprocess.Popen(
            [*HYBI, "connect", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm"},
            preexec_fn=_take_the_terminal,  # noqa: PLW1509 - the child's own session, before it runs hybi
        )
        self.output = b""
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the terminal's last user went away
                chunk = b""
            with self.condition:
                self.output += chunk
                self.condition.notify_all()
            if not chunk:
                return

    def expect(self, text: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until the screen has shown `text` `count` times (a hang guard, not a delay)."""
        wanted = text.encode()
        with self.condition:
            shown = self.condition.wait_for(lambda: self.output.count(wanted) >= count, timeout=timeout)
            assert shown, f"{text!r} not shown {count} times; the terminal showed {self.output!r}"

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            os.close(self.slave)
            os.close(self.master)


def test_interactive_mode_in_a_terminal() -> None:
    with hybi_serve() as (url, *_):
        terminal = Terminal(url)
        try:
            terminal.expect("connected with version 13")
            terminal.expect("> ")
            terminal.type("hello there\r")
            terminal.expect("\x1b[32m< hello there\x1b[0m")  # received: marked and coloured on a terminal
            terminal.expect("> ", count=2)
            terminal.type("\x1b[A\r")  # up arrow: readline's history brings the line back
            terminal.expect("< hello there", count=2)
            terminal.expect("> ", count=3)
            terminal.type("\x04")  # Ctrl-D: end of input, a normal close
            terminal.expect("closed with code 1000")
            attributes = termios.tcgetattr(terminal.slave)
        finally:
            status = terminal.close()
    assert status == 0
    assert attributes[3] & termios.ECHO and attributes[3] & termios.ICANON  # the terminal was left as found
    assert b"> hello there" in terminal.output  # what was typed stays on screen after the prompt


def test_interactive_mode_notices_a_server_that_closes_first(tmp_path: Path) -> None:
    write_app(tmp_path, APP)
    with hybi_serve("cli_app:closer", cwd=str(tmp_path)) as (url, *_):
        terminal = Terminal(url)
        try:
            terminal.expect("closed with code 1001 bye now")  # with nothing typed at all
        finally:
            status = terminal.close()
    assert status == 0


def test_interactive_ctrl_c_closes_normally() -> None:
    with hybi_serve() as (url, _, log):
        terminal = Terminal(url)
        try:
            terminal.expect("> ")
            terminal.type("half a li")
            terminal.type("\x03")  # Ctrl-C: a SIGINT from the terminal
            terminal.expect("closed with code 1000")
        finally:
            status = terminal.close()
        log.expect("closed with 1000")
    assert status == 0
    assert b"Traceback" not in terminal.output


def test_serve_log_hides_only_the_refusal_record_it_repeats() -> None:
    """`hybi serve` leaves out the library's INFO record of a refused handshake (its own line
    says the same), but never an ERROR, such as a failing process_request hook."""
    import logging

    from hybi._logging import HANDSHAKE_FAILED
    from hybi.cli import _not_a_refusal_record

    def record(level: int, msg: str) -> logging.LogRecord:
        return logging.LogRecord("hybi.server", level, __file__, 1, msg, ("why",), None)

    assert not _not_a_refusal_record(record(logging.INFO, f"[abc123] {HANDSHAKE_FAILED}"))
    assert _not_a_refusal_record(record(logging.ERROR, "[abc123] opening handshake failed"))
    assert _not_a_refusal_record(record(logging.INFO, "[abc123] connection open"))
