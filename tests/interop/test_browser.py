"""Headless Chromium, a browser nobody here wrote, uses the page `hybi serve` returns.

Chromium offers `permessage-deflate; client_max_window_bits` and compresses every message
it sends, cutting large ones into several frames; the page's WebSocket object says in
`extensions` what it agreed to.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from typing import Any

import pytest
from tests.interop.compressed import assert_all_compressed, frames_of, install_probe
from tests.interop.peers import NODE_DIR, node_library, require
from tests.test_cli import hybi_serve

import hybi
from conftest import run
from hybi.cli import _serve_page

pytestmark = pytest.mark.interop

ECHOED = [19, 9, 70000, 120000]
"""The lengths of the messages browser.js types: two short ones, 70 KB and 120 KB."""


def run_browser(http_url: str, screenshot: str = "") -> dict[str, Any]:
    node_library("playwright-core")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    require(chromium is not None, "chromium")
    result = subprocess.run(
        ["node", str(NODE_DIR / "browser.js"), http_url, *([screenshot] if screenshot else [])],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, "CHROMIUM": str(chromium)},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser; stderr: {result.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


@pytest.mark.parametrize(
    ("args", "extensions"),
    [
        ((), "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"),
        (("--compression", "memory"), "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"),
        (("--compression", "off"), ""),
    ],
    ids=["default", "memory", "off"],
)
def test_browser_page_echoes(tmp_path: os.PathLike[str], args: tuple[str, ...], extensions: str) -> None:
    screenshot = os.path.join(tmp_path, "page.png")
    with hybi_serve(*args) as (url, *_):
        report = run_browser(url.replace("ws://", "http://"), screenshot)
    assert report["event"] == "done", report
    assert report["extensions"] == extensions
    assert report["echoed"] == ECHOED
    assert report["status"] == f"connected to {url}"
    assert "Chrome" in report["userAgent"]
    assert os.path.getsize(screenshot) > 1000


def test_browser_compresses_every_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same page served in this process, where a probe sees that every message Chromium
    sent was compressed, and every echo too."""
    install_probe(monkeypatch)

    async def main() -> tuple[dict[str, Any], list[hybi.ServerConnection]]:
        connections: list[hybi.ServerConnection] = []

        async def echo(ws: hybi.ServerConnection) -> None:
            connections.append(ws)
            async for message in ws:
                await ws.send(message)

        async with hybi.serve(echo, "127.0.0.1", 0, process_request=_serve_page) as server:
            report = await asyncio.to_thread(run_browser, f"http://127.0.0.1:{server.port}/")
        return report, connections

    report, [ws] = run(main(), timeout=120)
    assert report["event"] == "done", report
    assert report["echoed"] == ECHOED
    assert ws.request_headers.get("Sec-WebSocket-Extensions") == "permessage-deflate; client_max_window_bits"
    assert report["extensions"] == ws.response_headers.get("Sec-WebSocket-Extensions")
    frames = frames_of(ws)
    assert_all_compressed(frames, received=len(ECHOED), sent=len(ECHOED))
    # The 120 KB of noise compressed to more than 65535 bytes; Chromium may send it in several
    # frames (it did in two, 41 KB and 58 KB), a compressed message with continuations.
    last = max(index for index, (opcode, _, _) in enumerate(frames.received) if opcode)
    assert sum(length for _, _, length in frames.received[last:]) > 65535, frames.received
