"""The drafts before version 7 against implementations nobody here wrote:

- Ruby's em-websocket (Debian ruby-em-websocket) as the server for every draft, which
  also makes it the only packaged peer for hybi-02/03 and hybi-05/06 framing;
- faye's websocket-driver (npm) as a hixie-75 / hixie-76 server;
- Perl's Protocol::WebSocket (Debian libprotocol-websocket-perl) as a hixie-75 / hixie-76
  client (and 8 and 13), against hybi's server;
- Ruby's websocket gem (Debian ruby-websocket) as a client of hixie-75/76, hybi-03, 5, 6, 8
  and 13, against hybi's server.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.interop.peers import PeerServer, bytes_of, node_server, peer_process, require, text_of

import hybi
from conftest import run

pytestmark = pytest.mark.interop

INTEROP = Path(__file__).resolve().parents[2] / "interop"
TEXT_ONLY = {"hixie-75", "hixie-76"}
SIZES = (0, 1, 125, 126, 127, 65535, 65536, 300_000)


@contextmanager
def em_websocket_server() -> Iterator[tuple[str, PeerServer]]:
    require(shutil.which("ruby") is not None, "ruby")
    loaded = subprocess.run(["ruby", "-rem-websocket", "-e1"], capture_output=True, check=False)
    require(loaded.returncode == 0, "em-websocket")
    with peer_process(["ruby", str(INTEROP / "ruby" / "em_server.rb")]) as peer:
        yield f"ws://127.0.0.1:{peer.ready['port']}/chat", peer


async def exchange(url: str, version: str, *, binary: bool) -> hybi.ClientConnection:
    """Echo text (and binary) messages across the length boundaries, then close."""
    async with hybi.connect(url, versions=[version], origin="http://hybi.test", max_size=None) as ws:
        assert str(ws.version) == version
        for size in SIZES:
            text = text_of(size)
            await ws.send(text)
            assert await ws.recv() == text
            if binary:
                data = bytes_of(size)
                await ws.send(data)
                assert await ws.recv() == data
    return ws


@pytest.mark.parametrize("version", ["13", "8", "7", "6", "5", "hybi-02", "hixie-76", "hixie-75"])
def test_hybi_client_to_em_websocket(version: str) -> None:
    with em_websocket_server() as (url, peer):
        ws = run(exchange(url, version, binary=version not in TEXT_ONLY))
    closes = peer.events
    assert len(closes) == 1, closes
    assert closes[0]["event"] == "close"
    expected_version = {"hybi-02": 2, "hixie-76": 76, "hixie-75": 75}.get(version, version)
    assert str(closes[0]["version"]) == str(expected_version)
    if version in ("13", "8", "7", "6"):
        assert ws.close_code == 1000 and closes[0]["code"] == 1000
    else:
        assert ws.close_code == 1005  # these closes carry no status


@pytest.mark.parametrize("version", ["13", "8", "7", "6"])
def test_em_websocket_closes_with_a_code(version: str) -> None:
    async def main(url: str) -> tuple[int, str]:
        async with hybi.connect(url, versions=[version]) as ws:
            await ws.send("close:4001:server-bye")
            with pytest.raises(hybi.ConnectionClosedError) as caught:
                await ws.recv()
        return caught.value.code, caught.value.reason

    with em_websocket_server() as (url, _):
        assert run(main(url)) == (4001, "server-bye")


@pytest.mark.parametrize("version", ["hixie-76", "hixie-75", "13"])
def test_hybi_client_to_websocket_driver(version: str) -> None:
    with node_server("websocket-driver") as (url, peer):
        run(exchange(url + "chat", version, binary=version not in TEXT_ONLY))
    closes = peer.events
    if version == "hixie-75":  # the driver reports no event when a hixie-75 peer just closes TCP
        assert closes == []
    else:
        assert [event["version"] for event in closes] == [{"13": "hybi-13"}.get(version, version)]


def test_websocket_driver_refuses_8_without_a_list() -> None:
    async def main(url: str) -> str:
        with pytest.raises(hybi.NoCommonVersion) as caught:
            await hybi.connect(url, versions="8,hixie-76")
        return str(caught.value)

    with node_server("websocket-driver") as (url, _):
        message = run(main(url))
    assert "refused version 8 with 400" in message and "listed no versions" in message


PERL_VERSIONS = {
    "draft-hixie-75": "hixie-75",
    "draft-ietf-hybi-00": "hixie-76",
    "draft-ietf-hybi-10": 8,
    "draft-ietf-hybi-17": 13,
}


@pytest.mark.parametrize("perl_version", list(PERL_VERSIONS))
@pytest.mark.parametrize("server_close", [False, True], ids=["client-closes", "server-closes"])
def test_perl_client_to_hybi_server(perl_version: str, server_close: bool) -> None:
    require(shutil.which("perl") is not None, "perl")
    module = subprocess.run(["perl", "-MProtocol::WebSocket", "-e1"], capture_output=True, check=False)
    require(module.returncode == 0, "Protocol::WebSocket")

    async def main() -> tuple[dict[str, Any], list[Any]]:
        seen: list[Any] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(ws.version)
            async for message in ws:
                if message == "close-me":
                    await ws.close()
                    seen.append(ws.close_code)
                    return
                if "é" in message:
                    seen.append(message)
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, versions="all", max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/chat"
            args = ["perl", str(INTEROP / "perl" / "client.pl"), url, perl_version] + (
                ["server-close"] if server_close else []
            )
            result = await asyncio.to_thread(
                subprocess.run, args, capture_output=True, text=True, timeout=60, check=False
            )
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert lines, result.stderr
        return lines[-1], seen

    report, seen = run(main(), timeout=90)
    assert report == {"event": "done", "echoed": 9, "total": 9, "mismatches": []}, report
    # The client answers the server's close with a close of its own, without a status (1005);
    # a server left waiting for that answer drops the connection after its timeout (1006).
    # (hixie-75 has no close frame: closing TCP is its close, also 1005.)
    assert seen == [PERL_VERSIONS[perl_version], "héllo wörld"] + ([1005] if server_close else [])


RUBY_VERSIONS = {"75": "hixie-75", "76": "hixie-76", "3": "hybi-02", "8": 8, "13": 13}


def run_ruby_client(version: str) -> tuple[dict[str, Any], list[Any]]:
    require(shutil.which("ruby") is not None, "ruby")
    gem = subprocess.run(["ruby", "-rwebsocket", "-e1"], capture_output=True, check=False)
    require(gem.returncode == 0, "the websocket gem (ruby-websocket)")

    async def main() -> tuple[dict[str, Any], list[Any]]:
        seen: list[Any] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(ws.version)
            async for message in ws:
                if isinstance(message, str) and "é" in message:
                    seen.append(message)
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, versions="all", max_size=None) as server:
            url = f"ws://127.0.0.1:{server.port}/chat"
            args = ["ruby", str(INTEROP / "ruby" / "websocket_client.rb"), url, version]
            result = await asyncio.to_thread(
                subprocess.run, args, capture_output=True, text=True, timeout=60, check=False
            )
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert lines, result.stderr
        return lines[-1], seen

    return run(main(), timeout=90)


@pytest.mark.parametrize("version", list(RUBY_VERSIONS))
def test_ruby_client_to_hybi_server(version: str) -> None:
    report, seen = run_ruby_client(version)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == (9 if version in ("75", "76") else 17)
    assert seen == [RUBY_VERSIONS[version], "héllo wörld"]


@pytest.mark.parametrize(("version", "close_body"), [("6", [3, 234]), ("5", [])])
def test_ruby_client_masks_5_and_6_the_later_way(version: str, close_body: list[int]) -> None:
    """The gem sets a MASK bit (RSV4 in these drafts) and puts the key after the length, as
    versions 7+ do; hybi follows the drafts (and em-websocket and Jetty) and fails the
    connection: with 1002 in -06, with a close frame without status in -05."""
    report, seen = run_ruby_client(version)
    assert report["echoed"] == 0
    assert report["close_body"][:2] == close_body  # the status code; a -06 close also says why
    assert ("reserved bits" in bytes(report["close_body"][2:]).decode()) == bool(close_body)
    assert seen == [int(version)]
