"""Headless Chromium, a browser nobody here wrote, uses the page `hybi serve` returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from tests.interop.peers import NODE_DIR, node_library, require
from tests.test_cli import hybi_serve

pytestmark = pytest.mark.interop


def test_browser_page_echoes(tmp_path: os.PathLike[str]) -> None:
    node_library("playwright-core")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    require(chromium is not None, "chromium")
    screenshot = os.path.join(tmp_path, "page.png")
    with hybi_serve() as (url, _):
        http_url = url.replace("ws://", "http://")
        result = subprocess.run(
            ["node", str(NODE_DIR / "browser.js"), http_url, screenshot],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
            env={**os.environ, "CHROMIUM": str(chromium)},
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result from the browser; stderr: {result.stderr[-2000:]}"
    report = json.loads(lines[-1])
    assert report["event"] == "done", report
    assert report["echoed"] == [19, 9, 70000]
    assert report["status"] == f"connected to {url}"
    assert "Chrome" in report["userAgent"]
    assert os.path.getsize(screenshot) > 1000
