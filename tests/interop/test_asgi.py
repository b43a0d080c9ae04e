"""hybi.asgi under a real uvicorn process, serving the Starlette app in asgi_app.py.

uvicorn runs as `python -m uvicorn ... --ws hybi.asgi:UvicornWebSocketProtocol` on
127.0.0.1, on a port it picks (--port 0, read from its log), and is stopped by its PID
with SIGTERM (SIGKILL if it has not exited 30 s later). The main server runs twice: with
h11, which keeps the bytes after a head (a hixie-76 key3) where hybi.asgi finds them, and
with httptools behind `hybi.asgi:UvicornHTTPProtocol`, which passes them on.

Its clients: hybi's own (13, 8, 7, hixie-76, hixie-75), Ruby's websocket gem and Perl's
Protocol::WebSocket (hixie-76 and hixie-75; see test_draft_peers.py), and the Python
`websockets` package (13, with permessage-deflate); and plain HTTP on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.interop.peers import bytes_of, require, text_of

import hybi
from conftest import run
from hybi.sansio.connection import ClientConnection, Options
from hybi.sansio.dialects import DIALECTS
from hybi.sansio.events import Ping

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
INTEROP = ROOT / "interop"
PROTOCOL = "hybi.asgi:UvicornWebSocketProtocol"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SIZES = (0, 1, 125, 126, 127, 65535, 65536, 300_000)
HIXIE = ("hixie-76", "hixie-75")

try:
    import starlette  # noqa: F401
    import uvicorn
except ImportError:  # pragma: no cover - reported by require() below
    uvicorn = None  # type: ignore[assignment]


class Uvicorn:
    """A uvicorn process and its log (standard error, read as it comes)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "uvicorn", "tests.interop.asgi_app:app", "--host", "127.0.0.1"]
        command += ["--port", "0", "--ws", PROTOCOL, "--lifespan", "off", *args]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = self._wait_listening()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace")
            self._log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self) -> int:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.stop()
                raise AssertionError(f"uvicorn exited before it listened:\n{self.log}")
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                return int(found.group(1))
        self.stop()
        raise AssertionError(f"uvicorn did not listen within {STARTUP_TIMEOUT} s:\n{self.log}")

    @property
    def log(self) -> str:
        return "".join(self._log)

    def logged(self, text: str) -> bool:
        """Whether uvicorn has logged `text`, waiting (10 s at most) for the line to be read:
        it was written before the client saw its effect, but is read by another thread."""
        deadline = time.monotonic() + 10
        while text not in self.log:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self) -> int:
        """SIGTERM by PID, as a service manager stops uvicorn; SIGKILL if it lingers. Returns
        0 for a graceful stop: uvicorn shuts down, then raises the signal it caught again
        (so it ends killed by SIGTERM)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT)
        self._reader.join(timeout=STOP_TIMEOUT)
        returncode = self.process.returncode
        graceful = returncode in (0, -signal.SIGTERM) and "Finished server process" in self.log
        return 0 if graceful else returncode or -1

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def entry(self, tag: str) -> dict[str, Any]:
        """The app's log entry under `tag`, waiting (10 s at most) for the app to write it."""
        deadline = time.monotonic() + 10
        while True:
            status, body = self.get("/log")
            assert status == 200
            entries = [entry for entry in json.loads(body) if entry["tag"] == tag]
            if entries:
                assert len(entries) == 1, entries
                return dict(entries[0])
            assert time.monotonic() < deadline, f"the app logged nothing for {tag!r}"
            time.sleep(0.05)


@contextlib.contextmanager
def uvicorn_server(*args: str, versions: str | None = "all") -> Iterator[Uvicorn]:
    require(uvicorn is not None, "uvicorn and starlette (pip install -e '.[test]')")
    env = {key: value for key, value in os.environ.items() if key != "HYBI_ASGI_VERSIONS"}
    if versions is not None:
        env["HYBI_ASGI_VERSIONS"] = versions
    server = Uvicorn(list(args), env)
    try:
        yield server
    finally:
        returncode = server.stop()
        assert returncode == 0, f"uvicorn exited with {returncode}:\n{server.log}"


HTTP_SETUPS = {"h11": ["--http", "h11"], "httptools-wrapped": ["--http", "hybi.asgi:UvicornHTTPProtocol"]}


@pytest.fixture(scope="module", params=list(HTTP_SETUPS))
def server(request: pytest.FixtureRequest) -> Iterator[Uvicorn]:
    if request.param == "httptools-wrapped":
        require(_importable("httptools"), "httptools (pip install -e '.[test]')")
    with uvicorn_server(*HTTP_SETUPS[request.param]) as running:
        yield running
    log = running.log
    tracebacks = log.split("Traceback (most recent call last):")[1:]
    assert all(_EXPECTED_TRACEBACK in traceback for traceback in tracebacks), log  # only /crash's
    assert "may have been dropped" not in log, log


_EXPECTED_TRACEBACK = "RuntimeError: this endpoint fails on purpose"


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


# -- plain HTTP -------------------------------------------------------------------------------


def test_plain_http_on_the_same_server(server: Uvicorn) -> None:
    assert server.get("/") == (200, b"hello over plain HTTP\n")


# -- hybi's client ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["13", "8", "7", "hixie-76", "hixie-75"])
def test_hybi_client_echo(server: Uvicorn, version: str) -> None:
    tag = f"echo-{version}-{server.port}"

    async def main() -> hybi.ClientConnection:
        url = server.url(f"/echo?tag={tag}")
        async with hybi.connect(url, versions=[version], subprotocols=["chat"], max_size=None) as ws:
            assert str(ws.version) == version and ws.subprotocol == "chat"
            for size in SIZES:
                await ws.send(text_of(size))
                assert await ws.recv() == text_of(size)
                if version not in HIXIE:
                    await ws.send(bytes_of(size))
                    assert await ws.recv() == bytes_of(size)
            await ws.send("h\u00e9llo w\u00f6rld \U0001f600")
            assert await ws.recv() == "h\u00e9llo w\u00f6rld \U0001f600"
        return ws

    ws = run(main())
    # No status in hixie close frames (hixie-75 just closes TCP): 1005 on both sides.
    code = 1005 if version in HIXIE else 1000
    assert ws.close_code == code
    expected_version = int(version) if version.isdigit() else version
    expected = {"tag": tag, "version": expected_version, "type": "websocket.disconnect", "code": code, "reason": ""}
    assert server.entry(tag) == expected


@pytest.mark.parametrize("version", ["13", "hixie-76"])
def test_client_close_code_reaches_the_app(server: Uvicorn, version: str) -> None:
    tag = f"close-{version}-{server.port}"

    async def main() -> None:
        async with hybi.connect(server.url(f"/echo?tag={tag}"), versions=[version]) as ws:
            await ws.send("one")
            assert await ws.recv() == "one"
            if version == "13":
                await ws.close(4002, "client says bye")
            else:
                await ws.close()

    run(main())
    entry = server.entry(tag)
    assert (entry["code"], entry["reason"]) == ((4002, "client says bye") if version == "13" else (1005, ""))


def test_scope(server: Uvicorn) -> None:
    async def main(version: str, subprotocols: list[str]) -> dict[str, Any]:
        url = server.url("/scope/caf%C3%A9/x?a=1&b=%20")
        async with hybi.connect(url, versions=[version], subprotocols=subprotocols, origin="http://app.test") as ws:
            return dict(json.loads(await ws.recv()))

    scope = run(main("13", ["chat", "v2.chat"]))
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1" and scope["scheme"] == "ws"
    assert scope["path"] == "/scope/caf\u00e9/x" and scope["raw_path"] == "/scope/caf%C3%A9/x"
    assert scope["query_string"] == "a=1&b=%20" and scope["root_path"] == ""
    assert scope["server"] == ["127.0.0.1", server.port] and scope["client"][0] == "127.0.0.1"
    assert scope["subprotocols"] == ["chat", "v2.chat"]
    headers = scope["headers"]
    assert all(name == name.lower() for name, _ in headers)
    assert ["sec-websocket-version", "13"] in headers and ["origin", "http://app.test"] in headers
    assert scope["extensions"] == {"websocket.http.response": {}, "hybi": {"version": 13}}

    scope = run(main("hixie-76", ["chat"]))
    assert scope["subprotocols"] == ["chat"] and scope["extensions"]["hybi"] == {"version": "hixie-76"}
    assert "sec-websocket-key1" in [name for name, _ in scope["headers"]]


# -- refusing: the app's own answer, websocket.close before accepting -----------------------


@pytest.mark.parametrize("version", ["13", "8", "hixie-76", "hixie-75"])
def test_query_parameter_denial(server: Uvicorn, version: str) -> None:
    async def main() -> None:
        with pytest.raises(hybi.InvalidStatus) as caught:
            await hybi.connect(server.url("/guarded?token=wrong"), versions=[version])
        response = caught.value.response
        assert response.status == 401 and response.body == b"a token is required\n"
        assert response.headers.get("WWW-Authenticate") == "Token"

        with pytest.raises(hybi.InvalidStatus) as caught:
            await hybi.connect(server.url("/guarded?token=close"), versions=[version])
        assert caught.value.response.status == 403

        async with hybi.connect(server.url("/guarded?token=let-me-in"), versions=[version]) as ws:
            assert await ws.recv() == "welcome"
            with pytest.raises(hybi.ConnectionClosedOK):
                await ws.recv()

    run(main())
    assert server.logged('"WebSocket /guarded?token=wrong" 401')
    assert server.logged('"WebSocket /guarded?token=close" 403')


# -- what the app sends where the version lacks it ------------------------------------------


@pytest.mark.parametrize("version", ["13", "7", "hixie-76", "hixie-75"])
def test_close_code_from_the_app(server: Uvicorn, version: str) -> None:
    async def main() -> tuple[int | None, str | None]:
        async with hybi.connect(server.url("/closing"), versions=[version]) as ws:
            assert await ws.recv() == "bye"
            with contextlib.suppress(hybi.ConnectionClosed):
                await ws.recv()
        return ws.close_code, ws.close_reason

    # hixie close frames carry no code: the close goes out without one (hixie-75: TCP closes).
    assert run(main()) == ((1005, "") if version in HIXIE else (4001, "done here"))


@pytest.mark.parametrize("version", ["13", "hixie-76", "hixie-75"])
def test_binary_to_a_hixie_client_raises_in_the_app(server: Uvicorn, version: str) -> None:
    async def main() -> hybi.Data:
        async with hybi.connect(server.url("/binary"), versions=[version]) as ws:
            return await ws.recv()

    got = run(main())
    if version in HIXIE:
        assert got == f"UnsupportedFeature: {version} has no binary messages: it carries text only"
    else:
        assert got == b"\x00\x01\x02"


@pytest.mark.parametrize("version", ["13", "hixie-76"])
def test_app_that_raises(server: Uvicorn, version: str) -> None:
    async def main() -> int | None:
        async with hybi.connect(server.url("/crash"), versions=[version]) as ws:
            assert await ws.recv() == "about to fail"
            with contextlib.suppress(hybi.ConnectionClosed):
                await ws.recv()
        return ws.close_code

    assert run(main()) == (1011 if version == "13" else 1005)
    assert server.logged("Exception in ASGI application")


# -- the ASGI spec's error rules ---------------------------------------------------------------


def test_asgi_error_rules(server: Uvicorn) -> None:
    async def main() -> None:
        async with hybi.connect(server.url("/raw/after-close"), versions=["13"]) as ws:
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 4003
        async with hybi.connect(server.url("/raw/after-disconnect"), versions=["13"]) as ws:
            await ws.close(4000, "gone")
        async with hybi.connect(server.url("/raw/bad-accept"), versions=["13"], subprotocols=["chat"]) as ws:
            assert ws.subprotocol is None and ws.response_headers.get("x-hello") == "world"
            assert await ws.recv() == "accepted"
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert (caught.value.code, caught.value.reason) == (4004, "checked")
        with pytest.raises(hybi.InvalidStatus) as refused:
            await hybi.connect(server.url("/raw/no-decision"), versions=["13"])
        assert refused.value.response.status == 500

    run(main())
    assert server.logged("ASGI callable returned without completing handshake.")
    assert server.entry("/raw/after-close")["seen"] == [
        "websocket.accept: ok",
        "websocket.close: ok",
        "websocket.send: RuntimeError (RuntimeError)",  # sending after websocket.close
        "websocket.close: RuntimeError (RuntimeError)",
    ]
    assert server.entry("/raw/after-disconnect")["seen"] == [
        "websocket.accept: ok",
        "received websocket.disconnect 4000",
        "websocket.send: ClientDisconnected (OSError)",  # ASGI 2.4: an OSError subclass
    ]
    assert server.entry("/raw/bad-accept")["seen"] == [
        "websocket.accept: RuntimeError (RuntimeError)",  # a subprotocol the client did not offer
        "websocket.accept: RuntimeError (RuntimeError)",  # sec-websocket-protocol in headers
        "websocket.accept: RuntimeError (RuntimeError)",  # CR LF in a header value
        "websocket.send: RuntimeError (RuntimeError)",  # not accepted yet
        "websocket.accept: ok",
        "websocket.send: ok",
        "websocket.send: RuntimeError (RuntimeError)",  # neither text nor bytes
        "websocket.close: ValueError (ValueError)",  # 1006 is never sent (RFC 6455 section 7.4.1)
        "websocket.close: ok",
    ]


# -- clients nobody here wrote ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["76", "75"])
def test_ruby_websocket_gem_client(server: Uvicorn, version: str) -> None:
    require(shutil.which("ruby") is not None, "ruby")
    gem = subprocess.run(["ruby", "-rwebsocket", "-e1"], capture_output=True, check=False, timeout=60)
    require(gem.returncode == 0, "the websocket gem (ruby-websocket)")
    args = ["ruby", str(INTEROP / "ruby" / "websocket_client.rb"), server.url("/echo"), version]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    report = lines[-1]
    assert report["event"] == "done", report
    assert (report["echoed"], report["total"], report["mismatches"]) == (9, 9, [])


@pytest.mark.parametrize("version", ["draft-ietf-hybi-00", "draft-hixie-75"])
@pytest.mark.parametrize("server_close", [False, True], ids=["client-closes", "server-closes"])
def test_perl_protocol_websocket_client(server: Uvicorn, version: str, server_close: bool) -> None:
    require(shutil.which("perl") is not None, "perl")
    module = subprocess.run(["perl", "-MProtocol::WebSocket", "-e1"], capture_output=True, check=False, timeout=60)
    require(module.returncode == 0, "Protocol::WebSocket")
    args = ["perl", str(INTEROP / "perl" / "client.pl"), server.url("/echo"), version]
    args += ["server-close"] if server_close else []
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    assert lines[-1] == {"event": "done", "echoed": 9, "total": 9, "mismatches": []}


def test_websockets_package_client_with_compression(server: Uvicorn) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedOK
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    async def main() -> None:
        async with connect(server.url("/echo"), compression="deflate", max_size=None) as ws:
            agreed = ws.protocol.extensions
            assert len(agreed) == 1 and isinstance(agreed[0], PerMessageDeflate)
            assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
            text = json.dumps([{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(3000)])
            for message in (text, text.encode(), "small", b""):
                await ws.send(message)
                assert await ws.recv() == message
            await ws.send("close-me")
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            assert ws.close_code == 1000

    run(main())


# -- uvicorn's settings, and its shutdown ----------------------------------------------------


def test_uvicorn_settings_and_default_versions() -> None:
    """--ws-max-size, --ws-per-message-deflate false, --ws-ping-interval and --root-path are
    followed, and so are a trusted proxy's X-Forwarded-* (uvicorn trusts 127.0.0.1 by
    default); without HYBI_ASGI_VERSIONS the versions are 13, 8 and 7. On asyncio's own
    event loop."""
    settings = ["--http", "h11", "--ws-max-size", "1000", "--ws-per-message-deflate", "false"]
    settings += ["--ws-ping-interval", "0.2", "--ws-ping-timeout", "20", "--root-path", "/base"]
    settings += ["--loop", "asyncio"]  # the other servers run on uvloop, uvicorn's choice when installed

    async def main(server: Uvicorn) -> None:
        async with hybi.connect(server.url("/echo"), versions=["13"], max_size=None) as ws:
            assert ws.extensions == ()
            await ws.send("x" * 1000)
            assert await ws.recv() == "x" * 1000
            await ws.send("x" * 1001)
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
            assert caught.value.code == 1009
        for version in ("hixie-76", "6"):
            with pytest.raises(hybi.InvalidStatus) as refused:
                await hybi.connect(server.url("/echo"), versions=[version])
            assert refused.value.response.status == 426
            assert refused.value.response.headers.get("Sec-WebSocket-Version") == "13, 8, 7"
        assert await keepalive_ping(server) is True

        proxied = [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.9")]
        async with hybi.connect(server.url("/scope/x?y"), versions=["13"], extra_headers=proxied) as ws:
            scope = json.loads(await ws.recv())
        assert (scope["root_path"], scope["path"], scope["raw_path"]) == ("/base", "/base/scope/x", "/base/scope/x")
        assert scope["scheme"] == "wss" and scope["client"][0] == "203.0.113.9"

    with uvicorn_server(*settings, versions=None) as server:
        run(main(server))


def test_hixie_location_follows_a_trusted_proxy() -> None:
    """A hixie 101 names the URL (Sec-WebSocket-Location): wss:// when a trusted proxy's
    X-Forwarded-Proto says the client came over TLS."""

    async def answer(server: Uvicorn, headers: list[tuple[str, str]]) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        host = f"127.0.0.1:{server.port}"
        client = ClientConnection(DIALECTS["hixie-76"], "/echo?a=b", host, Options(), extra_headers=headers)
        writer.write(client.data_to_send())
        try:
            return await reader.readuntil(b"\r\n\r\n")
        finally:
            writer.close()

    async def main(server: Uvicorn) -> tuple[bytes, bytes]:
        plain = await answer(server, [])
        proxied = await answer(server, [("X-Forwarded-Proto", "https")])
        return plain, proxied

    with uvicorn_server("--http", "h11") as server:
        plain, proxied = run(main(server))
    location = f"Sec-WebSocket-Location: {{}}://127.0.0.1:{server.port}/echo?a=b\r\n"
    assert location.format("ws").encode() in plain
    assert location.format("wss").encode() in proxied


async def keepalive_ping(server: Uvicorn) -> bool:
    """Whether the server pings a client that says nothing (its interval is 0.2 s here; the
    wait is bounded by run()'s timeout)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    client = ClientConnection(DIALECTS["13"], "/echo", f"127.0.0.1:{server.port}", Options(ping_interval=None))
    writer.write(client.data_to_send())
    try:
        while True:
            data = await reader.read(65536)
            assert data, "the server closed the connection"
            if any(isinstance(event, Ping) for event in client.receive_data(data)):
                return True
            writer.write(client.data_to_send())
    finally:
        writer.close()


def test_shutdown_closes_with_1012() -> None:
    """uvicorn stopping (SIGTERM) closes open connections with 1012, without a code where
    the version has none, answers 503 to a request the app has not decided on, and exits."""

    async def main(server: Uvicorn) -> tuple[Any, ...]:
        modern = await hybi.connect(server.url("/echo"), versions=["13"])
        hixie = await hybi.connect(server.url("/echo"), versions=["hixie-76"])
        for ws in (modern, hixie):
            await ws.send("ready")
            assert await ws.recv() == "ready"
        undecided = asyncio.ensure_future(hybi.connect(server.url("/raw/undecided"), versions=["13"]))
        await asyncio.to_thread(server.entry, "/raw/undecided")  # the app has the request
        returncode = await asyncio.to_thread(server.stop)
        for ws in (modern, hixie):
            with contextlib.suppress(hybi.ConnectionClosed):
                await ws.recv()
        with pytest.raises(hybi.InvalidStatus) as refused:
            await undecided
        return returncode, modern.close_code, hixie.close_code, refused.value.response.status

    with uvicorn_server("--http", "h11") as server:
        assert run(main(server), timeout=60) == (0, 1012, 1005, 503)
