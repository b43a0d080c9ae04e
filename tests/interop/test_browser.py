"""Headless Chromium, a browser nobody here wrote, uses the page `hybi serve` returns.

Chromium offers `permessage-deflate; client_max_window_bits` and compresses every message
it sends, cutting large ones into several frames; the page's WebSocket object says in
`extensions` what it agreed to.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
from tests.interop.compressed import assert_all_compressed, frames_of, install_probe
from tests.interop.peers import NODE_DIR, node_library, require
from tests.interop.png import read_png
from tests.test_cli import hybi_serve

import hybi
from conftest import run
from hybi._serve_page import ServeSite
from hybi.sansio.dialects import resolve_versions

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

        site = ServeSite(resolve_versions("13,8,7"))

        async with hybi.serve(echo, "127.0.0.1", 0, process_request=site.process_request) as server:
            report = await asyncio.to_thread(run_browser, f"http://127.0.0.1:{server.port}/")
        return report, connections

    report, connections = run(main(), timeout=120)
    [ws] = [ws for ws in connections if "page=" in ws.path]
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


# -- what the page shows -------------------------------------------------------------------


def look_at_page(http_url: str, screenshot: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Chromium opens the page, waits and clicks as `plan` says (see interop/node/page.js),
    and reports the text and box of each element asked for, with a screenshot."""
    node_library("playwright-core")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    require(chromium is not None, "chromium")
    result = subprocess.run(
        ["node", str(NODE_DIR / "page.js"), http_url, screenshot, json.dumps(plan)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "CHROMIUM": str(chromium)},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser; stderr: {result.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    assert report["event"] == "done", report
    return report


def background_of(css: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"rgba?\((\d+), (\d+), (\d+)(?:, [\d.]+)?\)", css)
    assert match, css
    red, green, blue = (int(part) for part in match.groups())
    return red, green, blue


def assert_shown(report: dict[str, Any], screenshot: str) -> None:
    """Each element reported is inside the viewport, and the screenshot has ink inside its
    box: pixels that are not the page's background, enough for its text to be drawn there."""
    image = read_png(screenshot)
    viewport = report["viewport"]
    assert (image.width, image.height) == (viewport["width"], viewport["height"])
    background = background_of(report["background"])
    for selector, element in report["elements"].items():
        box = element["box"]
        assert element["visible"] and element["text"].strip(), selector
        assert box["width"] > 0 and box["height"] > 0, (selector, box)
        assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= viewport["width"], (selector, box)
        assert box["y"] + box["height"] <= viewport["height"], (selector, box)
        left, top = int(box["x"]), int(box["y"])
        right, bottom = int(box["x"] + box["width"]), int(box["y"] + box["height"])
        ink = sum(1 for y in range(top, bottom, 2) for x in range(left, right, 2) if image.pixel(x, y) != background)
        assert ink >= 20 * len(element["text"].split()), (selector, ink)


def test_page_shows_the_negotiation_and_every_connection(tmp_path: os.PathLike[str]) -> None:
    """The browser's own connection, a hixie-76 client that came and went and a version 8
    one still open, then the probe of the server, as a person sees them."""
    screenshot = os.path.join(tmp_path, "page.png")
    with hybi_serve("--versions", "13,8,hixie-76") as (url, *_):

        async def clients() -> dict[str, Any]:
            async with hybi.connect(url + "?old", versions="hixie-76") as old:
                await old.send("from 2010")
                assert await old.recv() == "from 2010"
            async with hybi.connect(url + "?held", versions="8"):
                plan = {
                    "waits": [
                        ["#status", "connected to"],
                        ["#version", "13"],
                        ["#connections", "/?old"],
                        ["#connections", "(this page)"],
                    ],
                    "click": "#probe-button",
                    "after": [["#probe-report", "accepted by a real 101"], ["#connections", "hybi-02"]],
                    "report": ["h1", "#status", "#negotiated", "#connections", "#probe-report"],
                }
                return await asyncio.to_thread(look_at_page, url.replace("ws://", "http://"), screenshot, plan)

        report = run(clients(), timeout=150)
    shown = {selector: element["text"] for selector, element in report["elements"].items()}
    assert shown["#status"] == f"connected to {url}"
    negotiated = shown["#negotiated"].splitlines()
    assert negotiated[:4] == [
        "server accepts",
        "13, 8, hixie-76 (most preferred first)",
        "your browser asked",
        "13",
    ]
    assert negotiated[4:6] == ["negotiated version", "13"]
    assert negotiated[7].startswith("permessage-deflate; ")
    # id, from, path, asked, version, state, close, extensions, client
    rows = [line.split("\t") for line in shown["#connections"].splitlines()[1:]]
    [old] = [row for row in rows if row[2] == "/?old"]
    assert old[3:6] == ["hixie-76", "hixie-76", "closed"] and old[6].isdigit() and old[7:] == ["-", "hybi/0.1.0"]
    [held] = [row for row in rows if row[2] == "/?held"]
    assert held[3:7] == ["8", "8", "open", "-"] and held[7].startswith("permessage-deflate; ")
    [page] = [row for row in rows if row[0].endswith("(this page)")]
    assert page[2:6] == ["/", "13", "13", "open"] and page[8] == "Mozilla/5.0"
    assert sum(row[5] == "refused 426" for row in rows) == 5  # the probe's 7, 6, 5, hybi-02 and hixie-75
    probe = shown["#probe-report"].splitlines()
    assert probe[-2] == "accepted by a real 101: 13, 8, hixie-76"
    assert "  hixie-76: accepted (101 WebSocket Protocol Handshake)" in probe
    assert_shown(report, screenshot)


def test_page_explains_why_the_browser_was_refused(tmp_path: os.PathLike[str]) -> None:
    """With versions 8 and 7 only, the browser itself reports nothing but 1006; the page
    says what the server answered and why."""
    screenshot = os.path.join(tmp_path, "refused.png")
    with hybi_serve("--versions", "8,7") as (url, _, log):
        plan = {
            "waits": [["#explain", "426"], ["#version", "refused"]],
            "report": ["#status", "#explain", "#negotiated", "#connections"],
        }
        report = look_at_page(url.replace("ws://", "http://"), screenshot, plan)
        log.expect("/?page=")
    shown = {selector: element["text"] for selector, element in report["elements"].items()}
    assert shown["#status"] == "closed (code 1006)"
    assert shown["#explain"].startswith(
        "This server accepts 8, 7; your browser speaks 13 only, so the server answered 426 Upgrade Required"
    )
    assert "server accepts\n8, 7 (most preferred first)" in shown["#negotiated"]
    assert "negotiated version\nnone: refused with 426" in shown["#negotiated"]
    assert re.search(r"426 to 127\.0\.0\.1:\d+ /\?page=\w+: asked 13, accepts 8, 7", log.text())
    assert_shown(report, screenshot)
