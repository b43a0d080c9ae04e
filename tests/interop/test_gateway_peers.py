"""`hybi.gateway` between implementations nobody here wrote.

Old clients through the gateway to modern servers that speak 13 only: the Ruby websocket
gem (hixie-75, hixie-76, 8; it has no 7), Perl's Protocol::WebSocket (hixie-75, hixie-76)
and Netty's client (00, 07, 08), each to Node's ws server and the websockets package's
server. Modern
clients through the gateway to old servers: headless Chromium and Node's ws client (13) to
em-websocket and websocket-driver made to speak hixie-76 or hixie-75, and to Netty as a 00
and an 08 server. Then HAProxy (Debian's package) in front of two gateway processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.interop.peers import node_server, require, run_node_client
from tests.interop.test_draft_peers import em_websocket_server
from tests.interop.test_netty import classpath, netty_server

import hybi
from conftest import run
from hybi.gateway import Gateway, serve

pytestmark = pytest.mark.interop

INTEROP = Path(__file__).resolve().parents[2] / "interop"
NODE_DIR = INTEROP / "node"

try:
    from websockets.asyncio.server import ServerConnection as WsServerConnection
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed as WsConnectionClosed
    from websockets.http11 import Request as WsRequest
    from websockets.http11 import Response as WsResponse
except ImportError:  # pragma: no cover - reported by require() below
    ws_serve = None  # type: ignore[assignment]


@asynccontextmanager
async def through(upstream: str, **options: Any) -> AsyncIterator[tuple[Gateway, str]]:
    options.setdefault("versions", "all")
    options.setdefault("max_size", None)
    async with serve(upstream, "127.0.0.1", 0, **options) as gw:
        yield gw, f"ws://127.0.0.1:{gw.port}"


async def peer_report(args: list[str], timeout: float = 60) -> dict[str, Any]:
    """Run a peer client to its end; its last JSON line."""
    result = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{args[0]} printed nothing; stderr: {result.stderr}"
    report: dict[str, Any] = lines[-1]
    return report


# -- upstreams that speak 13 only ------------------------------------------------------------


@asynccontextmanager
async def websockets_server(refuse: bool = False) -> AsyncIterator[tuple[str, list[Any]]]:
    """The websockets package's echo server (13 only); "close-me" closes with 1000 and
    "close:CODE:REASON" with that code; `refuse` answers every handshake 403."""
    require(ws_serve is not None, "the Python package websockets")
    closes: list[Any] = []

    async def echo(connection: WsServerConnection) -> None:
        try:
            async for message in connection:
                if message == "close-me":
                    await connection.close(1000, "server-bye")
                elif isinstance(message, str) and message.startswith("close:"):
                    _, code, reason = message.split(":", 2)
                    await connection.close(int(code), reason)
                else:
                    await connection.send(message)
        except WsConnectionClosed:
            pass
        closes.append(connection.close_code)

    def forbid(connection: WsServerConnection, request: WsRequest) -> WsResponse | None:
        return connection.respond(403, "upstream says no\n") if refuse else None

    async with ws_serve(echo, "127.0.0.1", 0, process_request=forbid, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/chat", closes


@contextmanager
def modern_server(kind: str) -> Iterator[tuple[str, Any]]:
    """ "ws": Node's ws echo server; its close events come once it has stopped."""
    with node_server(kind) as (url, peer):
        yield url + "chat", peer


RUBY = {"75": "hixie-75", "76": "hixie-76", "8": "8"}


def ruby_client(url: str, version: str) -> list[str]:
    require(shutil.which("ruby") is not None, "ruby")
    gem = subprocess.run(["ruby", "-rwebsocket", "-e1"], capture_output=True, check=False)
    require(gem.returncode == 0, "the websocket gem (ruby-websocket)")
    return ["ruby", str(INTEROP / "ruby" / "websocket_client.rb"), url, version]


def perl_client(url: str, version: str, *extra: str) -> list[str]:
    require(shutil.which("perl") is not None, "perl")
    module = subprocess.run(["perl", "-MProtocol::WebSocket", "-e1"], capture_output=True, check=False)
    require(module.returncode == 0, "Protocol::WebSocket")
    return ["perl", str(INTEROP / "perl" / "client.pl"), url, version, *extra]


@pytest.mark.parametrize("version", list(RUBY))
def test_ruby_client_through_gateway_to_node_ws(version: str) -> None:
    async def main() -> dict[str, Any]:
        with modern_server("ws") as (upstream, peer):
            async with through(upstream) as (gw, url):
                report = await peer_report(ruby_client(url + "/chat", version))
                assert {str(pair.upstream.version) for pair in gw.pairs} <= {"13"}
        assert [event["version"] for event in peer.events] == [13]
        return report

    report = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == (9 if version in ("75", "76") else 17)


@pytest.mark.parametrize("version", list(RUBY))
def test_ruby_client_through_gateway_to_websockets(version: str) -> None:
    async def main() -> tuple[dict[str, Any], list[Any]]:
        async with websockets_server() as (upstream, closes), through(upstream) as (_, url):
            report = await peer_report(ruby_client(url + "/chat", version))
        return report, closes

    report, closes = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == (9 if version in ("75", "76") else 17)
    assert len(closes) == 1


PERL = {"draft-hixie-75": "hixie-75", "draft-ietf-hybi-00": "hixie-76"}


@pytest.mark.parametrize("perl_version", list(PERL))
@pytest.mark.parametrize("server_close", [False, True], ids=["client-closes", "server-closes"])
def test_perl_client_through_gateway_to_websockets(perl_version: str, server_close: bool) -> None:
    async def main() -> tuple[dict[str, Any], list[Any], list[Any]]:
        async with websockets_server() as (upstream, closes), through(upstream) as (gw, url):
            versions: list[Any] = []
            args = perl_client(url + "/chat", perl_version, *(["server-close"] if server_close else []))
            task = asyncio.ensure_future(peer_report(args))
            while not gw.pairs and not task.done():
                await asyncio.sleep(0.01)
            versions += [(str(pair.client.version), pair.upstream.version) for pair in gw.pairs]
            report = await task
        return report, closes, versions

    report, closes, versions = run(main(), timeout=90)
    assert report == {"event": "done", "echoed": 9, "total": 9, "mismatches": []}, report
    assert versions == [(PERL[perl_version], 13)]
    # The client's close carries no status: the upstream gets a close frame without one
    # (1005); the upstream's 1000 reaches the hixie client as its close frame.
    assert closes == [1000 if server_close else 1005]


NETTY = {"V00": "hixie-76", "V07": "7", "V08": "8"}


@pytest.mark.parametrize("netty_version", list(NETTY))
def test_netty_client_through_gateway_to_node_ws(netty_version: str) -> None:
    path = classpath()

    async def main() -> tuple[dict[str, Any], list[Any]]:
        with modern_server("ws") as (upstream, peer):
            async with through(upstream) as (_, url):
                report = await peer_report(["java", "-cp", path, "NettyPeer", "client", url + "/chat", netty_version])
        return report, peer.events

    report, events = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"]
    assert [event["version"] for event in events] == [13]


@pytest.mark.parametrize("netty_version", list(NETTY))
def test_netty_client_through_gateway_to_websockets(netty_version: str) -> None:
    path = classpath()

    async def main() -> tuple[dict[str, Any], list[Any]]:
        async with websockets_server() as (upstream, closes), through(upstream) as (_, url):
            report = await peer_report(["java", "-cp", path, "NettyPeer", "client", url + "/", netty_version])
        return report, closes

    report, closes = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"]
    assert len(closes) == 1


@pytest.mark.parametrize("perl_version", list(PERL))
def test_perl_client_through_gateway_to_node_ws(perl_version: str) -> None:
    async def main() -> tuple[dict[str, Any], list[Any]]:
        with modern_server("ws") as (upstream, peer):
            async with through(upstream) as (_, url):
                report = await peer_report(perl_client(url + "/", perl_version))
        return report, peer.events

    report, events = run(main(), timeout=90)
    assert report == {"event": "done", "echoed": 9, "total": 9, "mismatches": []}, report
    assert [(event["version"], event["code"]) for event in events] == [(13, 1005)]


def test_an_upstream_refusal_reaches_old_clients() -> None:
    async def main() -> list[dict[str, Any]]:
        async with websockets_server(refuse=True) as (upstream, _), through(upstream) as (_, url):
            return [
                await peer_report(ruby_client(url + "/chat", "76")),
                await peer_report(ruby_client(url + "/chat", "8")),
                await peer_report(["java", "-cp", classpath(), "NettyPeer", "client", url + "/chat", "V00"]),
            ]

    ruby_76, ruby_8, netty = run(main(), timeout=90)
    # The gem says only that the status was not 101; Netty names it.
    assert ruby_76 == ruby_8 == {"event": "error", "error": "invalid_status_code"}
    assert netty["event"] == "error" and "403 Forbidden" in netty["error"], netty


def test_closes_cross_from_a_modern_server_to_an_old_client() -> None:
    """Node's ws client closes with 4000 through the gateway: the hixie upstream gets a close
    without status; a version 8 client gets the upstream's 4001 as it was sent."""

    async def main() -> dict[str, Any]:
        async with websockets_server() as (upstream, closes), through(upstream) as (_, url):
            ws = await hybi.connect(url + "/chat", versions="8")
            await ws.send("close:4001:upstream-bye")
            with pytest.raises(hybi.ConnectionClosedError):
                await ws.recv()
            return {"code": ws.close_code, "reason": ws.close_reason, "upstream": closes}

    assert run(main()) == {"code": 4001, "reason": "upstream-bye", "upstream": [4001]}


# -- modern clients to old servers -----------------------------------------------------------


@pytest.mark.parametrize("upstream_version", ["hixie-76", "hixie-75"])
def test_node_ws_client_through_gateway_to_em_websocket(upstream_version: str) -> None:
    async def main() -> tuple[dict[str, Any], list[Any]]:
        with em_websocket_server() as (upstream, peer):
            async with through(upstream, upstream_versions=upstream_version) as (_, url):
                report = await asyncio.to_thread(run_node_client, "ws", url + "/chat", 13, False, ["--text-only"])
        return report, peer.events

    report, events = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == 9
    assert report["code"] == 4000  # the gateway answered the close; the hixie side has no codes
    assert [str(event["version"]) for event in events] == [upstream_version.removeprefix("hixie-")]


@pytest.mark.parametrize("upstream_version", ["hixie-76", "hixie-75"])
def test_node_ws_client_through_gateway_to_websocket_driver(upstream_version: str) -> None:
    async def main() -> dict[str, Any]:
        with node_server("websocket-driver") as (upstream, _):
            async with through(upstream + "chat", upstream_versions=upstream_version) as (_, url):
                report = await asyncio.to_thread(run_node_client, "ws", url + "/chat", 13, False, ["--text-only"])
        return report

    report = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == 9


def test_node_ws_binary_to_a_hixie_server_is_refused_with_1003() -> None:
    async def main() -> dict[str, Any]:
        with node_server("websocket-driver") as (upstream, _):
            async with through(upstream + "chat", upstream_versions="hixie-76") as (_, url):
                return await asyncio.to_thread(run_node_client, "ws", url + "/chat", 13)

    report = run(main(), timeout=90)
    assert report["echoed"] == 1  # the empty text came back; the first binary message closed it
    assert report["code"] == 1003 and "binary" in report["reason"], report


def test_node_ws_client_through_gateway_to_netty_08() -> None:
    async def main() -> dict[str, Any]:
        with netty_server() as upstream:
            async with through(upstream, upstream_versions="8") as (_, url):
                return await asyncio.to_thread(run_node_client, "ws", url + "/", 13)  # to /chat

    report = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == 18


def test_modern_client_through_gateway_to_netty_00() -> None:
    """Netty's 00 decoder loses bytes of a frame spanning reads (see test_netty), so the
    messages stay short here."""

    async def main() -> list[str]:
        with netty_server() as upstream:
            async with through(upstream, upstream_versions="hixie-76") as (gw, url):
                echoed = []
                # Netty's 00 server drops a request without Origin (a browser always sends one).
                async with hybi.connect(url + "/", versions="13", origin="http://hybi.test") as ws:  # to /chat
                    (pair,) = gw.pairs
                    assert pair.upstream.version == "hixie-76"
                    for text in ("", "a", "é" * 60, "x" * 127):
                        await ws.send(text)
                        echoed.append(await ws.recv())
                return echoed

    assert run(main(), timeout=90) == ["", "a", "é" * 60, "x" * 127]


NETTY_00_MAX = 127
"""The largest message sent to Netty as a 00 server: its 00 decoder loses bytes of a frame
that spans reads (see test_netty). Hixie frames have no length field, so there is no
length boundary beyond this to cross."""


@pytest.mark.parametrize("server_close", [False, True], ids=["client-closes", "server-closes"])
def test_node_ws_client_through_gateway_to_netty_00(server_close: bool) -> None:
    options = ["--text-only", f"--max-size={NETTY_00_MAX}", "--close-with=close:4001:server-bye"]

    async def main() -> dict[str, Any]:
        with netty_server() as upstream:  # the gateway offers it hixie-76 only
            async with through(upstream, upstream_versions="hixie-76") as (_, url):
                return await asyncio.to_thread(run_node_client, "ws", url + "/", 13, server_close, options)

    report = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == 5  # 0, 1, 125, 126 and 127 bytes
    # Hixie closes carry no status: the gateway answers the client's 4000 with its code;
    # Netty's close reaches the client as 1005 (no status).
    assert report["code"] == (1005 if server_close else 4000)


def chromium_client(url: str, *options: str) -> list[str]:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    require(chromium is not None, "chromium")
    require((NODE_DIR / "node_modules" / "playwright-core").exists(), "playwright-core")
    return ["node", str(NODE_DIR / "browser_client.js"), url, *options]


@pytest.mark.parametrize("server_close", [False, True], ids=["client-closes", "server-closes"])
@pytest.mark.parametrize("upstream_version", ["hixie-76", "8"])
def test_chromium_through_gateway_to_netty(upstream_version: str, server_close: bool) -> None:
    hixie = upstream_version.startswith("hixie")
    options = ([f"--max-size={NETTY_00_MAX}"] if hixie else []) + (
        ["--close-with=close:4001:server-bye"] if server_close else []
    )

    async def main() -> dict[str, Any]:
        with netty_server() as upstream:
            async with through(upstream, upstream_versions=upstream_version) as (_, url):
                return await peer_report(chromium_client(url + "/", *options), timeout=90)  # to /chat

    report = run(main(), timeout=120)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == (5 if hixie else 9)
    if server_close:  # a hixie close has no status: 1005; Netty 08's crosses as it was sent
        assert (report["code"], report["reason"]) == ((1005, "") if hixie else (4001, "server-bye"))
    else:  # the gateway answers the browser's close itself, echoing its code (section 5.5.1)
        assert report["code"] == 4000
    assert "permessage-deflate" in report["extensions"]


@pytest.mark.parametrize("upstream_version", ["hixie-76", "hixie-75"])
def test_chromium_through_gateway_to_em_websocket(upstream_version: str) -> None:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    require(chromium is not None, "chromium")
    require((NODE_DIR / "node_modules" / "playwright-core").exists(), "playwright-core")

    async def main() -> tuple[dict[str, Any], list[Any]]:
        with em_websocket_server() as (upstream, peer):
            async with through(upstream, upstream_versions=upstream_version) as (_, url):
                report = await peer_report(["node", str(NODE_DIR / "browser_client.js"), url + "/chat"], timeout=90)
        return report, peer.events

    report, events = run(main(), timeout=120)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == 9
    assert report["code"] == 4000
    assert "permessage-deflate" in report["extensions"]  # towards the browser, over a hixie upstream
    assert [str(event["version"]) for event in events] == [upstream_version.removeprefix("hixie-")]


# -- HAProxy in front of two gateway processes -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


GATEWAY_ARGS = ("--versions", "all", "--drain-timeout", "5")


def _start_gateway(upstream: str) -> tuple[subprocess.Popen[str], int]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybi",
            "gateway",
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            upstream,
            *GATEWAY_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert re.search(r"gateway on ws://", line), line + process.communicate(timeout=10)[1]
    return process, port


HAPROXY_CONFIG = """
global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend gateways
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    balance roundrobin
    server a 127.0.0.1:{a} check inter 300ms fall 1 rise 1
    server b 127.0.0.1:{b} check inter 300ms fall 1 rise 1
"""


@contextmanager
def haproxy(a: int, b: int, folder: Path) -> Iterator[int]:
    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    require(binary is not None, "haproxy")
    assert binary is not None
    port = _free_port()
    config = folder / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, a=a, b=b))
    process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        while True:  # until it listens (the test's timeout guards against a hang)
            assert process.poll() is None, process.communicate()[0]
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_haproxy_spreads_old_clients_over_two_gateways_and_survives_one_stopping(tmp_path: Path) -> None:
    async def main() -> None:
        async def tell_path(ws: hybi.ServerConnection) -> None:
            await ws.send(ws.path)  # /a or /b: which gateway the client came through
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(tell_path, "127.0.0.1", 0, versions="13") as up:
            first, port_a = await asyncio.to_thread(_start_gateway, f"ws://127.0.0.1:{up.port}/a")
            second, port_b = await asyncio.to_thread(_start_gateway, f"ws://127.0.0.1:{up.port}/b")
            try:
                with haproxy(port_a, port_b, tmp_path) as port:
                    url = f"ws://127.0.0.1:{port}/"
                    clients = []
                    for index in range(8):
                        ws = await hybi.connect(url, versions="hixie-76" if index % 2 else "hixie-75")
                        clients.append((await ws.recv(), ws))
                    via = [path for path, _ in clients]
                    assert via.count("/a") >= 2 and via.count("/b") >= 2, via
                    first.send_signal(signal.SIGTERM)  # a graceful stop of gateway a
                    assert await asyncio.to_thread(first.wait, 20) == 0
                    for path, ws in clients:
                        if path == "/a":
                            with pytest.raises(hybi.ConnectionClosed):
                                await ws.recv()  # closed by the drain (hixie: no status)
                        else:
                            await ws.send("still here")
                            assert await ws.recv() == "still here"
                    for _ in range(4):  # reconnecting: all through the gateway left
                        async with hybi.connect(url, versions="hixie-76") as ws:
                            assert await ws.recv() == "/b"
                            await ws.send("again")
                            assert await ws.recv() == "again"
                    for _, ws in clients:
                        await ws.close()
            finally:
                for process in (first, second):
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()

    run(main(), timeout=120)
