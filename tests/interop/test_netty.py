"""Interoperability with Netty (Debian libnetty-java 4.1.48), both roles, versions 00
(hixie-76 and hixie-75), 07, 08 and 13.

Netty's hixie-00 frame decoder loses bytes of a text frame that spans several reads
(Netty against itself shows it: its own V00 client gets 65535-byte echoes back short, and
a 1000-byte frame fails once its adaptive read buffer has shrunk after small reads), so
hixie messages here stay short enough for one read.

Compression, with Netty's WebSocketServerCompressionHandler and WebSocketClientCompressionHandler
(permessage-deflate, deflate-frame and x-webkit-deflate-frame). What Netty 4.1.48 gets wrong,
and how these tests stay clear of it:

- Its client fails the handshake on an answer whose `server_max_window_bits` differs from
  what it asked for (it asks for none, so any value fails, although RFC 7692 lets a server
  add one), on an unasked `server_no_context_takeover`, and, by default, on
  `client_no_context_takeover`. hybi's default server answers `server_max_window_bits=12`,
  so Netty's client meets a hybi server with a 2**15 window here ("speed"), and
  test_nettys_client_refuses_these_answers pins the failures.
- It compresses with JZlib for windows below 2**15, sizing the output of each message at
  ceil(1.001 n) + 12 bytes; incompressible messages take more (a stored block every few
  KiB), and it sends what fit minus 4 bytes as if they were the flush tail: the peer gets a
  truncated message, silently (test_nettys_small_window_compressor_truncates_large_messages).
  So hybi asks Netty for no window limit (hybi's client presets do not, but for "memory"), and
  its server gives Netty's client none.
- Its server declines permessage-deflate offers with `server_no_context_takeover` unless
  configured to allow them (the peer's `no-context` option); then it picks the
  deflate-frame name offered next, which is how hybi's client, whose offer always starts
  with permessage-deflate, gets deflate-frame from it.
- Empty fragments of a compressed message fail in its encoder and decoder (see
  NettyPeer.java), so messages go to it in three non-empty frames, or whole when shorter.
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
from tests.interop.compressed import (
    assert_all_compressed,
    assert_crossed_boundaries,
    frames_of,
    install_probe,
    messages,
    noise_of,
    nonempty_fragments,
)
from tests.interop.peers import SIZES, PeerServer, bytes_of, peer_process, require, text_of

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


# -- compression --------------------------------------------------------------------------

PMD_CODECS = ["PerMessageDeflateEncoder", "PerMessageDeflateDecoder"]
FRAME_CODECS = ["PerFrameDeflateEncoder", "PerFrameDeflateDecoder"]


def compressing_classpath() -> str:
    path = classpath()
    require("jzlib" in path, "JZlib on the Netty peer's classpath")
    return path


@contextmanager
def compressing_server(*flags: str) -> Iterator[tuple[str, PeerServer]]:
    """NettyPeer's server with `compress` and `flags`; its events are one close report per
    connection (with the Sec-WebSocket-Extensions fields and the extension codecs it had)."""
    with peer_process(["java", "-cp", compressing_classpath(), "NettyPeer", "server", "compress", *flags]) as peer:
        yield f"ws://127.0.0.1:{peer.ready['port']}/chat", peer


async def exchange(url: str, version: int, compression: Any) -> hybi.ClientConnection:
    """Every message whole, then in three non-empty frames; each echo checked."""
    async with hybi.connect(url, versions=[version], max_size=None, compression=compression) as ws:
        for message in messages():
            await ws.send(message)
            assert await ws.recv() == message
        for message in messages():
            await ws.send(nonempty_fragments(message))
            assert await ws.recv() == message
    return ws


@pytest.mark.parametrize(("version", "fragment"), [(13, False), (13, True), (8, False), (7, True)])
def test_hybi_client_compresses_with_netty_server(
    monkeypatch: pytest.MonkeyPatch, version: int, fragment: bool
) -> None:
    install_probe(monkeypatch)
    with compressing_server(*(["fragment"] if fragment else [])) as (url, peer):
        ws = run(exchange(url, version, "balanced"))
    assert ws.request_headers.get("Sec-WebSocket-Extensions") == "permessage-deflate; client_max_window_bits"
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == "permessage-deflate"
    assert [extension.name for extension in ws.extensions] == ["permessage-deflate"]
    total = 2 * len(messages())
    frames = frames_of(ws)
    assert_all_compressed(frames, received=total, sent=total)
    assert_crossed_boundaries(frames)
    assert (len(frames.received) > total) == fragment
    [report] = peer.events
    assert (report["answer"], report["codecs"], report["messages"]) == ("permessage-deflate", PMD_CODECS, total)


def test_hybi_client_without_context_takeover_with_netty_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Netty's server set to agree to server_no_context_takeover (and to ask for
    client_no_context_takeover); hybi's client asks for both."""
    install_probe(monkeypatch)
    compression = hybi.Compression(
        no_context_takeover=True, peer_no_context_takeover=True, peer_window_bits=None, deflate_frame=False
    )
    answer = "permessage-deflate;client_no_context_takeover;server_no_context_takeover"  # a HashMap's order
    with compressing_server("no-context", "fragment") as (url, peer):
        ws = run(exchange(url, 13, compression))
    assert ws.request_headers.get("Sec-WebSocket-Extensions") == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
    )
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
    total = 2 * len(messages())
    assert_all_compressed(frames_of(ws), received=total, sent=total)
    [report] = peer.events
    assert (report["answer"], report["codecs"], report["messages"]) == (answer, PMD_CODECS, total)


@pytest.mark.parametrize(("version", "fragment"), [(13, True), (7, False)])
def test_hybi_client_deflate_frame_with_netty_server(
    monkeypatch: pytest.MonkeyPatch, version: int, fragment: bool
) -> None:
    """hybi's client cannot offer deflate-frame alone: it offers it after permessage-deflate.
    Asking for server_no_context_takeover makes Netty's (default) server decline that, and
    take x-webkit-deflate-frame, the next name offered: every frame is then compressed on its
    own, continuations included, but for empty ones, which both sides send as they are."""
    install_probe(monkeypatch)
    compression = hybi.Compression(deflate_frame=True, peer_no_context_takeover=True, peer_window_bits=None)
    with compressing_server(*(["fragment"] if fragment else [])) as (url, peer):
        ws = run(exchange(url, version, compression))
    assert ws.request_headers.get("Sec-WebSocket-Extensions") == (
        "permessage-deflate; server_no_context_takeover; client_max_window_bits, x-webkit-deflate-frame, deflate-frame"
    )
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == "x-webkit-deflate-frame"
    assert [extension.name for extension in ws.extensions] == ["x-webkit-deflate-frame"]
    total = 2 * len(messages())
    frames = frames_of(ws)
    assert_all_compressed(frames, received=total, sent=total, per_frame=True)
    assert_crossed_boundaries(frames)
    assert any(rsv1 for opcode, rsv1, _ in frames.sent if opcode == 0)  # continuations compressed too
    assert any(rsv1 for opcode, rsv1, _ in frames.received if opcode == 0) == fragment
    [report] = peer.events
    assert (report["answer"], report["codecs"], report["messages"]) == ("x-webkit-deflate-frame", FRAME_CODECS, total)


def test_nettys_small_window_compressor_truncates_large_messages() -> None:
    """Netty's bug, pinned: asked for server_max_window_bits=12 (as
    hybi.Compression(deflate_frame=True) does, permessage-deflate coming first in its offer),
    Netty compresses with JZlib, whose output it sizes too small for an incompressible
    message: a 65,500-byte one comes back 65,435 bytes long, with no error on either side.
    Compressible messages pass."""
    compression = hybi.Compression(deflate_frame=True)

    async def main(url: str) -> hybi.Data:
        async with hybi.connect(url, max_size=None, compression=compression) as ws:
            assert ws.response_headers.get("Sec-WebSocket-Extensions") == "permessage-deflate;server_max_window_bits=12"
            for size in SIZES:
                await ws.send(bytes_of(size))
                assert await ws.recv() == bytes_of(size)
            await ws.send(noise_of(65500))
            return await ws.recv()

    with compressing_server() as (url, _):
        echoed = run(main(url))
    assert echoed != noise_of(65500)
    assert len(echoed) < 65500


def run_netty_client(url: str, version: str, *args: str) -> dict[str, Any]:
    command = ["java", "-cp", compressing_classpath(), "NettyPeer", "client", url, version, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stderr
    report: dict[str, Any] = lines[-1]
    return report


SPEED = "speed"
"""A 2**15 window both ways, so no window parameter in the answer: what Netty's client takes."""

NO_TAKEOVER = hybi.Compression(
    window_bits=15, peer_window_bits=None, no_context_takeover=True, peer_no_context_takeover=True
)


@pytest.mark.parametrize(
    ("extensions", "version", "compression", "fragment", "answer"),
    [
        ("permessage-deflate", "V13", SPEED, False, "permessage-deflate"),
        ("permessage-deflate", "V13", SPEED, True, "permessage-deflate"),
        ("permessage-deflate", "V08", SPEED, True, "permessage-deflate"),
        (
            "permessage-deflate-no-context",
            "V13",
            NO_TAKEOVER,
            True,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("deflate-frame", "V13", "balanced", True, "deflate-frame"),
        ("x-webkit-deflate-frame", "V07", "balanced", False, "x-webkit-deflate-frame"),
    ],
    ids=["pmd", "pmd-fragmented", "pmd-v8-fragmented", "pmd-no-takeover", "deflate-frame", "x-webkit-v7"],
)
def test_netty_client_compresses_to_hybi_server(
    monkeypatch: pytest.MonkeyPatch, extensions: str, version: str, compression: Any, fragment: bool, answer: str
) -> None:
    """Netty's client sends every message compressed (in three frames when `fragment`), hybi's
    server echoes it compressed (in three frames when `fragment`)."""
    install_probe(monkeypatch)
    per_frame = "deflate-frame" in extensions

    async def main() -> tuple[dict[str, Any], list[hybi.ServerConnection]]:
        connections: list[hybi.ServerConnection] = []

        async def handler(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            try:
                async for message in ws:
                    await ws.send(nonempty_fragments(message) if fragment else message)
            except hybi.ConnectionClosedError:
                pass

        async with hybi.serve(
            handler, "127.0.0.1", 0, versions="all", max_size=None, compression=compression
        ) as server:
            url = f"ws://127.0.0.1:{server.port}/chat"
            args = [extensions, *(["fragment"] if fragment else [])]
            report = await asyncio.to_thread(run_netty_client, url, version, *args)
        return report, connections

    report, [ws] = run(main(), timeout=90)
    assert report["event"] == "done", report
    assert report["mismatches"] == []
    total = report["total"]
    assert report["echoed"] == total == 2 * 8 + 8 + 1
    assert (report["answer"], report["codecs"]) == (answer, FRAME_CODECS if per_frame else PMD_CODECS)
    assert ws.response_headers.get("Sec-WebSocket-Extensions") == answer
    assert [extension.name for extension in ws.extensions] == [answer.partition(";")[0]]
    frames = frames_of(ws)
    assert_all_compressed(frames, received=total, sent=total, per_frame=per_frame)
    assert_crossed_boundaries(frames)
    assert (len(frames.received) > total) == fragment


@pytest.mark.parametrize(
    ("compression", "answer"),
    [
        ("balanced", "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        (
            hybi.Compression(window_bits=15, peer_window_bits=None, peer_no_context_takeover=True),
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            hybi.Compression(window_bits=15, peer_window_bits=None, no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover",
        ),
    ],
    ids=["default", "client-no-context-takeover", "server-no-context-takeover"],
)
def test_nettys_client_refuses_these_answers(compression: Any, answer: str) -> None:
    """Netty's bugs, pinned: its default client (WebSocketClientCompressionHandler) fails the
    handshake on answers RFC 7692 allows: a server_max_window_bits it did not ask for (hybi's
    default), a client_no_context_takeover and an unasked server_no_context_takeover. Later
    Netty takes the first and the last (it fails on a server_max_window_bits larger than asked
    for only); client_no_context_takeover still needs allowClientNoContext."""

    async def main() -> dict[str, Any]:
        async def handler(ws: hybi.ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(handler, "127.0.0.1", 0, compression=compression) as server:
            url = f"ws://127.0.0.1:{server.port}/chat"
            return await asyncio.to_thread(run_netty_client, url, "V13", "permessage-deflate")

    report = run(main(), timeout=90)
    assert report["event"] == "error"
    assert report["offer"] == "permessage-deflate;client_max_window_bits,deflate-frame,x-webkit-deflate-frame"
    assert report["answer"] == answer
    assert (
        report["error"]
        == f'io.netty.handler.codec.CodecException: invalid WebSocket Extension handshake for "{answer}"'
    )
