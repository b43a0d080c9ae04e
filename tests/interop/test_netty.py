"""Interoperability with Netty (Debian libnetty-java 4.1.48), both roles, versions 00
(hixie-76 and hixie-75), 07, 08 and 13.

Netty's hixie-00 frame decoder loses bytes of a text frame that spans several reads
(Netty against itself shows it: its own V00 client gets 65535-byte echoes back short, and
a 1000-byte frame fails once its adaptive read buffer has shrunk after small reads), so
hixie messages here stay short enough for one read.
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
from tests.interop.peers import SIZES, bytes_of, peer_process, require, text_of

import hybi
from conftest import run

pytestmark = pytest.mark.interop

CLASSPATH_FILE = Path(__file__).resolve().parents[2] / "interop" / "java" / "build" / "classpath"
HIXIE_SIZES = (0, 1, 125, 126, 127)


def classpath() -> str:
    require(shutil.which("java") is not None, "java")
    require(CLASSPATH_FILE.exists(), "the compiled Netty peer")
    return CLASSPATH_FILE.read_text().strip()


@contextmanager
def netty_server() -> Iterator[str]:
    with peer_process(["java", "-cp", classpath(), "NettyPeer", "server"]) as peer:
        yield f"ws://127.0.0.1:{peer.ready['port']}/chat"


@pytest.mark.parametrize("version", ["13", "8", "7", "hixie-76", "hixie-75"])
def test_hybi_client_to_netty_server(version: str) -> None:
    hixie = version.startswith("hixie")

    async def main(url: str) -> None:
        async with hybi.connect(url, versions=[version], origin="http://hybi.test", max_size=None) as ws:
            assert str(ws.version) == version
            for size in HIXIE_SIZES if hixie else SIZES:
                await ws.send(text_of(size))
                assert await ws.recv() == text_of(size)
                if not hixie:
                    await ws.send(bytes_of(size))
                    assert await ws.recv() == bytes_of(size)
        if not hixie:
            async with hybi.connect(url, versions=[version]) as ws:
                await ws.send("close:4001:server-bye")
                with pytest.raises(hybi.ConnectionClosedError) as caught:
                    await ws.recv()
                assert (caught.value.code, caught.value.reason) == (4001, "server-bye")

    with netty_server() as url:
        run(main(url))


def test_retry_against_nettys_refusal() -> None:
    """Netty answers an unsupported version with 426 and lists only 13, though it accepts
    7 and 8 as well: the client retries with 13, or says the lists share nothing."""

    async def main(url: str) -> None:
        async with hybi.connect(url, versions="6,8,13") as ws:
            assert ws.version == 13
            assert [(a.version, a.status, a.server_versions) for a in ws.handshake_attempts] == [
                ("6", 426, (13,)),
                ("13", 101, ()),
            ]
        with pytest.raises(hybi.NoCommonVersion, match="client offers 5, 8; server accepts 13"):
            await hybi.connect(url, versions="5,8")

    with netty_server() as url:
        run(main(url))


@pytest.mark.parametrize(("netty_version", "expected"), [("V13", 13), ("V08", 8), ("V07", 7), ("V00", "hixie-76")])
def test_netty_client_to_hybi_server(netty_version: str, expected: int | str) -> None:
    path = classpath()

    async def main() -> tuple[dict[str, Any], list[Any]]:
        seen: list[Any] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            seen.append(ws.version)
            try:
                async for message in ws:
                    if isinstance(message, str) and "é" in message:
                        seen.append(message)
                    await ws.send(message)
            except hybi.ConnectionClosedError:
                pass
            seen.append(ws.close_code)

        async with hybi.serve(handler, "127.0.0.1", 0, versions="all", max_size=None) as server:
            args = ["java", "-cp", path, "NettyPeer", "client", f"ws://127.0.0.1:{server.port}/chat", netty_version]
            result = await asyncio.to_thread(
                subprocess.run, args, capture_output=True, text=True, timeout=60, check=False
            )
        # Leaving `serve` waits for every handler to return, so `seen` is complete here.
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        assert lines, result.stderr
        return lines[-1], seen

    report, seen = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    assert report["echoed"] == report["total"] == (len(HIXIE_SIZES) if netty_version == "V00" else 2 * 8) + 1
    if netty_version == "V00":
        assert seen == [expected, "héllo wörld", 1005]
    else:
        assert seen == [expected, "héllo wörld", 4000]
        assert report["code"] == 4000
