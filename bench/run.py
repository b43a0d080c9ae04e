"""`make bench`: hybi against picows, websockets, aiohttp and a raw TCP echo, in one sitting.

Builds bench/loadgen.c, installs the `bench` extra when a peer is missing, runs every echo
server of bench/servers/ against the workloads below (the median of RUNS short runs each), and
writes docs/performance-results.md and docs/img/bench.svg. Raw figures go to
bench/build/results.json (results-partial.json for a quick or filtered run).

Environment: BENCH_QUICK=1 for a smoke run of about a minute; BENCH_ONLY=a,b keeps the
workloads and servers named (e.g. BENCH_ONLY=b32_c1_w1,hybi,picows); those two write the page
and chart under bench/build/ rather than docs/; BENCH_OUT=DIR writes them under DIR.
`python bench/run.py --report` writes the page again from the last full run's figures.
BENCH_PIN=0 leaves the scheduler to place both processes (on a machine busy with other work,
a pinned process cannot move to the idle core).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BUILD = BENCH / "build"
LOADGEN = BUILD / "loadgen"
LOGS = BUILD / "logs"

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
ONLY = {token.strip() for token in os.environ.get("BENCH_ONLY", "").split(",") if token.strip()}
RUNS = 1 if QUICK else 3
DURATION = 0.25 if QUICK else 1.5
WARMUP = 0.1 if QUICK else 0.5
IDLE_CONNS = 300 if QUICK else 5000
PRESET_CONNS = 100 if QUICK else 1000
SETTLE = 0.3 if QUICK else 1.0  # seconds a server is left alone before its RSS is read

Result = dict[str, Any]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    mode: str = "echo"  # echo, hs or idle
    size: int = 32
    conns: int = 1
    inflight: int = 1
    text: bool = False
    deflate: bool = False

    def loadgen_args(self) -> list[str]:
        args = ["--mode", self.mode, "--conns", str(self.conns)]
        if self.mode == "echo":
            args += ["--inflight", str(self.inflight), "--size", str(self.size)]
            if self.conns == 1 and self.inflight == 1:
                args.append("--spin")  # a sleeping CPU takes tens of µs to wake: ping-pong would measure that
        if self.text:
            args.append("--text")
        if self.deflate:
            args.append("--deflate")
        return args


WORKLOADS = [
    Workload("b32_c1_w1", "32 B binary, 1 connection, 1 in flight (ping-pong)", conns=1, inflight=1),
    Workload("b32_c1_w64", "32 B binary, 1 connection, 64 in flight", conns=1, inflight=64),
    Workload("b32_c100_w16", "32 B binary, 100 connections, 16 in flight each", conns=100, inflight=16),
    Workload("b1k_c1_w64", "1 KiB binary, 1 connection, 64 in flight", size=1024, inflight=64),
    Workload("b1k_c100_w16", "1 KiB binary, 100 connections, 16 in flight", size=1024, conns=100, inflight=16),
    Workload("t1k_c100_w16", "1 KiB text, 100 connections, 16 in flight", size=1024, conns=100, inflight=16, text=True),
    Workload("b1m_c1_w4", "1 MiB binary, 1 connection, 4 in flight", size=2**20, inflight=4),
    Workload("t64k_c1_w4", "64 KiB text, 1 connection, 4 in flight", size=2**16, inflight=4, text=True),
    Workload("hs_c8", "handshakes (connect, upgrade, close) per second, 8 at a time", mode="hs", conns=8),
    Workload("idle5k", f"server memory per idle connection, {IDLE_CONNS} connections", mode="idle", conns=IDLE_CONNS),
    Workload(
        "z64k_c1_w4",
        "64 KiB compressible text, permessage-deflate, 1 connection, 4 in flight",
        size=2**16,
        inflight=4,
        text=True,
        deflate=True,
    ),
]
ECHO = [w.name for w in WORKLOADS if w.mode == "echo" and not w.deflate]


@dataclass(frozen=True)
class Server:
    key: str
    label: str
    script: str
    workloads: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    raw: bool = False


SERVERS = [
    Server("hybi", "hybi", "hybi_echo.py", (*ECHO, "hs_c8", "idle5k", "z64k_c1_w4")),
    Server("hybi_pure", "hybi (pure Python)", "hybi_echo.py", (*ECHO, "hs_c8", "idle5k"), {"HYBI_PURE_PYTHON": "1"}),
    Server("picows", "picows", "picows_echo.py", (*ECHO, "hs_c8", "idle5k")),
    Server("websockets", "websockets", "websockets_echo.py", (*ECHO, "hs_c8", "idle5k", "z64k_c1_w4")),
    Server(
        "hybi_speed",
        'hybi, "speed" preset (ISA-L)',
        "hybi_echo.py",
        ("z64k_c1_w4",),
        {"HYBI_BENCH_COMPRESSION": "speed"},
    ),
    Server(
        "hybi_speed_zlib",
        'hybi, "speed" preset, zlib',
        "hybi_echo.py",
        ("z64k_c1_w4",),
        {"HYBI_BENCH_COMPRESSION": "speed", "HYBI_DEFLATE": "zlib"},
    ),
    Server("aiohttp", "aiohttp", "aiohttp_echo.py", ("z64k_c1_w4",)),
    Server("raw", "raw TCP echo", "raw_echo.py", (*ECHO, "idle5k"), raw=True),
]
PRESETS = ("off", "memory", "balanced", "speed", "ratio")
PEERS = ("picows", "websockets", "aiohttp", "uvloop")


def selected(*names: str) -> bool:
    """BENCH_ONLY keeps a run when each kind it names (workloads, servers) includes this one."""
    if not ONLY:
        return True
    workloads = {w.name for w in WORKLOADS} | {"presets"}
    servers = {s.key for s in SERVERS}
    for kind in (workloads, servers):
        wanted = ONLY & kind
        mine = set(names) & kind
        if wanted and mine and not (wanted & mine):
            return False
    return True


def say(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------- setting up


def install_peers() -> None:
    missing = [name for name in PEERS if importlib.util.find_spec(name) is None]
    if missing:
        say(f"bench: installing the bench extra ({', '.join(missing)} missing)")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[bench]"], check=True)
        importlib.invalidate_caches()


def apt_install(*packages: str) -> None:
    """Install Debian packages when this is root on a machine with apt-get; otherwise leave it to cc to fail."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    say(f"bench: apt-get install {' '.join(packages)}")
    apt = ["apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(apt, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(apt, stdout=subprocess.DEVNULL, check=True)


def build_loadgen() -> None:
    source = BENCH / "loadgen.c"
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= source.stat().st_mtime:
        return
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        apt_install("gcc", "libc6-dev")
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        raise SystemExit("bench: no C compiler (cc, gcc or clang) found: install one (apt-get install gcc)")
    if not Path("/usr/include/zlib.h").exists():
        apt_install("zlib1g-dev")
    BUILD.mkdir(parents=True, exist_ok=True)
    command = [compiler, "-O2", "-Wall", "-o", str(LOADGEN), str(source), "-lz"]
    say("bench: " + " ".join(command))
    subprocess.run(command, check=True)


def pinning() -> tuple[list[str], list[str]]:
    """taskset prefixes that put the server on the first core and the load generator on another."""
    cores = sorted(os.sched_getaffinity(0))
    if os.environ.get("BENCH_PIN") == "0" or shutil.which("taskset") is None or len(cores) < 2:
        return [], []
    return ["taskset", "-c", str(cores[0])], ["taskset", "-c", str(cores[1])]


SERVER_PIN, LOADGEN_PIN = pinning()


# ------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def server(spec: Server, log_name: str, extra_env: dict[str, str] | None = None) -> Iterator[Running]:
    port = free_port()
    env = {**os.environ, **spec.env, **(extra_env or {}), "BENCH_PORT": str(port)}
    env.setdefault("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH / "servers"), env["PYTHONPATH"]]))
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{log_name}.log", "wb") as log:
        process = subprocess.Popen(
            [*SERVER_PIN, sys.executable, str(BENCH / "servers" / spec.script)],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if ready else b""
        if not line.startswith(b"listening"):
            raise RuntimeError(f"{spec.label} did not start: see {LOGS / (log_name + '.log')}")
        yield Running(process, port)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def loadgen(running: Running, workload: Workload, raw: bool, duration: float = DURATION) -> Result:
    command = [*LOADGEN_PIN, str(LOADGEN), "--port", str(running.port), "--server-pid", str(running.pid)]
    command += [*workload.loadgen_args(), "--duration", str(duration), "--warmup", str(WARMUP)]
    if raw:
        command.append("--raw")
    done = subprocess.run(command, capture_output=True, timeout=duration + WARMUP + 60, check=False)
    try:
        result: Result = json.loads(done.stdout)
    except json.JSONDecodeError:
        result = {"errors": 1, "error": done.stderr.decode(errors="replace").strip() or "no output", "msgs_per_s": 0}
    return result


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_memory(running: Running, conns: int, deflate: bool, raw: bool) -> Result:
    """Server RSS growth per connection while the load generator holds `conns` connections."""
    time.sleep(SETTLE / 2)
    before = rss_kib(running.pid)
    command = [*LOADGEN_PIN, str(LOADGEN), "--port", str(running.port), "--mode", "idle", "--conns", str(conns)]
    command += ["--deflate"] if deflate else []
    command += ["--raw"] if raw else []
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 120)
        line = holder.stdout.readline() if ready else b"{}"
        report: Result = json.loads(line or b"{}")
        time.sleep(SETTLE)  # let the server finish with the last handshakes
        after = rss_kib(running.pid)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        try:
            holder.wait(30)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    opened = int(report.get("open", 0))
    ok = opened == conns and not report.get("errors", 1)
    return {
        "kib_per_conn": (after - before) / conns if ok else None,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "open": opened,
        "compressed_echoes": report.get("compressed_echoes", 0),
        "errors": report.get("errors", 1),
        "error": report.get("error", "no report"),
    }


def median_run(runs: list[Result]) -> Result:
    """The run with the median messages/s, with every run's rate kept."""
    ordered = sorted(runs, key=lambda r: float(r.get("msgs_per_s", 0)))
    chosen = dict(ordered[len(ordered) // 2])
    chosen["runs"] = [r.get("msgs_per_s", 0) for r in runs]
    chosen["errors"] = sum(int(r.get("errors", 1)) for r in runs)
    chosen["error"] = next((r["error"] for r in runs if r.get("error")), "")
    return chosen


# ------------------------------------------------------------------------------- measuring


def measure() -> dict[str, Any]:
    results: dict[str, dict[str, Result]] = {}
    by_name = {w.name: w for w in WORKLOADS}
    for spec in SERVERS:
        wanted = [by_name[n] for n in spec.workloads if selected(n, spec.key)]
        busy = [w for w in wanted if w.mode != "idle"]
        if busy:
            # one process for the message workloads: a crash ends only the ones after it
            with server(spec, spec.key) as running:
                for workload in busy:
                    if running.process.poll() is not None:
                        results.setdefault(workload.name, {})[spec.key] = {"errors": 1, "error": "server died"}
                        continue
                    runs = [loadgen(running, workload, spec.raw) for _ in range(RUNS)]
                    result = median_run(runs)
                    results.setdefault(workload.name, {})[spec.key] = result
                    say(f"  {workload.name:<13} {spec.label:<20} {describe(result)}")
        for workload in (w for w in wanted if w.mode == "idle"):
            result = held(spec, f"{spec.key}-idle", {}, workload.conns, deflate=False)
            results.setdefault(workload.name, {})[spec.key] = result
            say(f"  {workload.name:<13} {spec.label:<20} {memory(result)}")
    presets: dict[str, Result] = {}
    hybi = SERVERS[0]
    if selected("presets", "hybi"):
        for preset in PRESETS:
            env = {"HYBI_BENCH_COMPRESSION": preset}
            presets[preset] = held(hybi, f"hybi-preset-{preset}", env, PRESET_CONNS, deflate=preset != "off")
            say(f"  preset {preset:<10} {memory(presets[preset])}")
    return {"results": results, "presets": presets}


def held(spec: Server, log_name: str, env: dict[str, str], conns: int, deflate: bool) -> Result:
    """idle_memory on a fresh server process, tried twice: a busy machine can fail a handshake."""
    result: Result = {}
    for _ in range(2):
        with server(spec, log_name, env) as running:
            result = idle_memory(running, conns, deflate=deflate, raw=spec.raw)
        if result["kib_per_conn"] is not None:
            break
    return result


def memory(result: Result) -> str:
    if result["kib_per_conn"] is None:
        return f"FAILED: {result.get('error')} ({result.get('open')} open)"
    return f"{result['kib_per_conn']:.1f} KiB per connection"


def describe(result: Result) -> str:
    if result.get("errors"):
        return f"FAILED: {result.get('error')}"
    return (
        f"{result['msgs_per_s']:>10.0f}/s  server {result['server_us_per_msg']:.1f} µs/msg  "
        f"loadgen CPU {100 * result['loadgen_cpu']:.0f} %"
    )


def machine(zlib_version: str, load: tuple[float, float, float], start: datetime.datetime) -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("hybi", *PEERS):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    compiler = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False).stdout
    return {
        "cpu": f"{model}, {os.cpu_count()} logical cores",
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "hybi": f"{versions['hybi']}" + (f" (git {revision})" if revision else ""),
        **{name: versions[name] for name in PEERS},
        "zlib": zlib_version,
        "compiler": compiler.splitlines()[0] if compiler else "unknown",
        "pinning": f"server on CPU {SERVER_PIN[-1]}, load generator on CPU {LOADGEN_PIN[-1]} (taskset)"
        if SERVER_PIN
        else "none (BENCH_PIN=0, no taskset, or one core)",
        "load": "load average {:.2f} {:.2f} {:.2f} at the start".format(*load),
        "date": start.strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick (BENCH_QUICK=1: one short run each)" if QUICK else f"{RUNS} runs of {DURATION:g} s each, median",
    }


def main() -> int:
    started = time.monotonic()
    load_at_start = os.getloadavg()  # before this run adds its own load
    start = datetime.datetime.now(datetime.UTC)
    full = not (QUICK or ONLY)
    results_file = BUILD / ("results.json" if full else "results-partial.json")
    # only a full run replaces the published page; a quick or filtered one goes to bench/build/
    out = Path(os.environ.get("BENCH_OUT", str(ROOT / "docs" if full else BUILD)))
    if sys.argv[1:] == ["--report"]:
        # write the page again from the last full run's figures, without measuring
        from report import write_report  # noqa: PLC0415

        write_report(json.loads((BUILD / "results.json").read_text()), out)
        return 0
    install_peers()
    build_loadgen()
    from report import write_report  # noqa: PLC0415 (bench/ is on sys.path when run as a script)

    say(f"bench: {'quick, ' if QUICK else ''}{RUNS} run(s) of {DURATION:g} s per workload and server")
    data = measure()
    zlib_version = next(
        (r.get("zlib", "") for rs in data["results"].values() for r in rs.values() if r.get("zlib")), "unknown"
    )
    data["machine"] = machine(zlib_version, load_at_start, start)
    data["machine"]["run time"] = f"{time.monotonic() - started:.0f} s for the whole of `make bench`"
    data["workloads"] = [w.__dict__ for w in WORKLOADS]
    data["servers"] = [{"key": s.key, "label": s.label} for s in SERVERS]
    BUILD.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(data, indent=1))
    write_report(data, out)
    failed = [
        f"{workload}/{key}: {result.get('error')}"
        for workload, results in data["results"].items()
        for key, result in results.items()
        if result.get("errors")
    ]
    elapsed = time.monotonic() - started
    say(f"bench: wrote {out / 'performance-results.md'} and {out / 'img' / 'bench.svg'} in {elapsed:.0f} s")
    for line in failed:
        say(f"bench: FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
