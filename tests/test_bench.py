"""`make bench` must not rot: its load generator builds, and checks real echoes from hybi's server."""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("HYBI_REQUIRE_INTEROP"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def loadgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        unavailable("no C compiler to build bench/loadgen.c")
    out = tmp_path_factory.mktemp("bench") / "loadgen"
    command = [compiler, "-O2", "-Wall", "-o", str(out), str(BENCH / "loadgen.c"), "-lz"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode and "zlib.h" in done.stderr:
        unavailable("zlib's headers are missing (apt-get install zlib1g-dev)")
    assert done.returncode == 0, done.stderr
    return out


def start(script: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    pytest.importorskip("uvloop")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {**os.environ, **(env or {}), "BENCH_PORT": str(port)}
    environment["PYTHONPATH"] = os.pathsep.join([str(BENCH / "servers"), str(ROOT / "src")])
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "servers" / script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else b""
    if not line.startswith(b"listening"):
        stop(process)
        pytest.fail(f"{script} did not start")
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def hybi_server() -> Iterator[tuple[int, int]]:
    process, port = start("hybi_echo.py")
    yield process.pid, port
    stop(process)


def run(loadgen: Path, port: int, pid: int, *args: str) -> dict[str, Any]:
    command = [str(loadgen), "--port", str(port), "--server-pid", str(pid), "--duration", "1", "--warmup", "0.2", *args]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    result: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == 0, result
    return result


def test_echo_is_verified(loadgen: Path, hybi_server: tuple[int, int]) -> None:
    pid, port = hybi_server
    result = run(loadgen, port, pid, "--conns", "3", "--inflight", "4", "--size", "1500")
    assert result["errors"] == 0, result["error"]
    assert result["messages"] > 0
    assert result["verified"] == result["messages"]
    assert result["wire_in_per_msg"] == 1500 + 4  # unmasked frames with a 16-bit length
    assert result["server_cpu_s"] > 0


def test_text_and_large_messages(loadgen: Path, hybi_server: tuple[int, int]) -> None:
    pid, port = hybi_server
    result = run(loadgen, port, pid, "--text", "--size", str(2**20), "--inflight", "2")
    assert result["errors"] == 0, result["error"]
    assert result["messages"] > 0


def test_deflate_really_compresses(loadgen: Path, hybi_server: tuple[int, int]) -> None:
    pid, port = hybi_server
    result = run(loadgen, port, pid, "--deflate", "--size", str(2**16), "--inflight", "2")
    assert result["errors"] == 0, result["error"]
    assert result["messages"] > 0
    assert result["compressed_echoes"] == result["messages"]
    assert result["wire_in_per_msg"] < 2**16 / 2


def test_handshakes(loadgen: Path, hybi_server: tuple[int, int]) -> None:
    pid, port = hybi_server
    result = run(loadgen, port, pid, "--mode", "hs", "--conns", "2")
    assert result["errors"] == 0, result["error"]
    assert result["messages"] > 0


def test_idle_connections_with_compression(loadgen: Path, hybi_server: tuple[int, int]) -> None:
    port = hybi_server[1]
    holder = subprocess.Popen(
        [str(loadgen), "--port", str(port), "--mode", "idle", "--conns", "20", "--deflate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 60)
        assert ready
        report = json.loads(holder.stdout.readline())
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    assert report["errors"] == 0, report["error"]
    assert report["open"] == 20
    assert report["compressed_echoes"] == 20


def test_raw_tcp_echo(loadgen: Path) -> None:
    process, port = start("raw_echo.py")
    try:
        result = run(loadgen, port, process.pid, "--raw", "--conns", "2", "--inflight", "8", "--size", "100")
    finally:
        stop(process)
    assert result["errors"] == 0, result["error"]
    assert result["messages"] > 0


CORRUPTING_ECHO = """
import socket, sys, threading
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
def serve(conn):
    while data := conn.recv(65536):
        conn.sendall(bytes(b ^ 1 for b in data))  # every byte altered
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def test_altered_echo_is_caught(loadgen: Path) -> None:
    server = subprocess.Popen([sys.executable, "-c", CORRUPTING_ECHO], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = server.stdout.readline().decode().strip()
        command = [str(loadgen), "--raw", "--port", port, "--size", "64", "--duration", "1", "--warmup", "0.1"]
        done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    finally:
        stop(server)
    result = json.loads(done.stdout)
    assert done.returncode == 1
    assert result["errors"] == 1
    assert "sequence number" in result["error"]
    assert result["messages"] == 0


def test_report(tmp_path: Path) -> None:
    from bench.report import write_report

    def echo(rate: float) -> dict[str, Any]:
        return {
            "msgs_per_s": rate,
            "server_us_per_msg": 2.5,
            "p50_us": 10,
            "p99_us": 20,
            "loadgen_cpu": 0.3,
            "errors": 0,
        }

    data = {
        "machine": {"cpu": "test"},
        "servers": [{"key": k, "label": k} for k in ("hybi", "hybi_pure", "picows", "websockets", "aiohttp", "raw")],
        "workloads": [{"name": "b32_c1_w64", "mode": "echo", "deflate": False, "conns": 1}],
        "results": {"b32_c1_w64": {"hybi": echo(500), "picows": echo(250), "raw": echo(1000)}},
        "presets": {"off": {"kib_per_conn": 7.0}, "balanced": {"kib_per_conn": 50.0}},
    }
    write_report(data, tmp_path)
    page = (tmp_path / "performance-results.md").read_text()
    assert "| `b32_c1_w64` | 500 | — | 250 | — | 1,000 | 2.00 | 0.50 |" in page
    assert "| `balanced` |" in page and "| 43.0 |" in page
    svg = ET.parse(tmp_path / "img" / "bench.svg").getroot()
    assert svg.tag.endswith("svg")
    assert any("50 %" in (t.text or "") for t in svg.iter("{http://www.w3.org/2000/svg}text"))
