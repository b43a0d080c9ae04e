"""Run Autobahn|Testsuite against hybi in either role and summarise its reports.

    python interop/autobahn/run.py server|client|both [--timeout SECONDS] [--install]

- server: `hybi serve` (the CLI's echo server) is tested by wstest's fuzzingclient;
- client: hybi's client (client.py beside this file) is tested by wstest's fuzzingserver.

`both` runs the two roles at the same time: each keeps one core busy (wstest and hybi take
turns within a role), so on two cores both take about as long as the slower one.

wstest comes from scripts/install-autobahn.sh (--install runs it first). Everything listens
on 127.0.0.1 only, on ports free at run time. The specs are fuzzingclient.json and
fuzzingserver.json beside this file, to which the run adds the port, the cases and the
reports folder: reports/server/ or reports/client/ here, which also get the spec actually
used and each program's output.

HYBI_AUTOBAHN_CASES chooses the cases: comma-separated patterns of wstest's spec ("*",
"5.*", "9.1.1"), a leading "-" excluding. Its default is every case, the permessage-deflate
ones (12.* and 13.*, RFC 7692) included: those 216 take nearly all of the time.

The exit status is 1 when a case breaks the rule that tests/interop/test_autobahn.py checks
(see `problems`), 2 when a run could not finish.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REPORTS = HERE / "reports"
INSTALL_SCRIPT = REPO / "scripts" / "install-autobahn.sh"

ROLES = ("server", "client")
SUBJECTS = {"server": "hybi serve tested by the fuzzingclient", "client": "hybi's client tested by the fuzzingserver"}
AGENT = "hybi"
DEFAULT_CASES = "*"
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED")
# Cases whose behavior may be INFORMATIONAL: they only record what the implementation
# did (7.1.6: which frames it sent after a close it started while sending; 7.13.1 and
# 7.13.2: how it answered close codes the RFC leaves undefined).
MAY_BE_INFORMATIONAL = frozenset({"7.1.6", "7.13.1", "7.13.2"})
CLOSE_BEHAVIORS_ALLOWED = frozenset({"OK", "INFORMATIONAL"})
# The largest message of the suite is 16 MiB (9.1.6, 9.2.6); hybi serve's default 1 MiB
# would close those with 1009.
SERVER_MAX_SIZE = 32 * 1024 * 1024
DEFAULT_TIMEOUT = 1800.0
STOP_TIMEOUT = 10.0
START_TIMEOUT = 60.0
POLL_INTERVAL = 0.2
PR_SET_PDEATHSIG = 1


class RunError(Exception):
    """A run could not finish: a program did not start, exited early or took too long."""


@dataclass(frozen=True)
class CaseResult:
    case: str
    behavior: str
    behavior_close: str
    duration_ms: int | None
    remote_close_code: int | None


@dataclass
class RoleRun:
    role: str
    results: dict[str, CaseResult] = field(default_factory=dict)
    expected: int | None = None
    seconds: float = 0.0
    # How wstest masks frames and validates UTF-8, as it says when it starts: "wsaccel"
    # or "pure Python" (no wsaccel: masking is slower), None if it did not say.
    speedups: str | None = None

    @property
    def folder(self) -> Path:
        return REPORTS / self.role


def autobahn_home() -> Path:
    """Where scripts/install-autobahn.sh installs (the same rule as the script's)."""
    if home := os.environ.get("HYBI_AUTOBAHN_HOME"):
        return Path(home)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hybi" / "autobahn"


def python27() -> Path:
    return autobahn_home() / "bin" / "python2.7"


def installed() -> bool:
    home = autobahn_home()
    return (home / ".installed").is_file() and os.access(home / "bin" / "wstest", os.X_OK)


def install() -> None:
    subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=1800)


def cases_setting() -> str:
    return os.environ.get("HYBI_AUTOBAHN_CASES") or DEFAULT_CASES


def case_selection(text: str | None = None) -> tuple[list[str], list[str]]:
    """The spec's "cases" and "exclude-cases" from HYBI_AUTOBAHN_CASES (or `text`)."""
    if text is None:
        text = cases_setting()
    patterns = [item.strip() for item in text.split(",") if item.strip()]
    cases = [item for item in patterns if not item.startswith("-")]
    excluded = [item[1:].strip() for item in patterns if item.startswith("-")]
    return cases or ["*"], excluded


def case_key(case: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in case.split("."))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(role: str, port: int, folder: Path) -> Path:
    """Fill in the role's spec template (port, reports folder, cases); return the spec
    file, written to the reports folder."""
    template = HERE / ("fuzzingclient.json" if role == "server" else "fuzzingserver.json")
    spec: dict[str, Any] = json.loads(template.read_text())
    if role == "server":
        for server in spec["servers"]:
            server["url"] = server["url"].format(port=port)
    else:
        spec["url"] = spec["url"].format(port=port)
    spec["outdir"] = str(folder)
    spec["cases"], spec["exclude-cases"] = case_selection()
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=3) + "\n")
    return path


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def parent_death_signal() -> Callable[[], None] | None:
    """Something for the child to run before the program: on Linux, ask for SIGTERM if the
    process that started it dies first (even by SIGKILL), so that no program outlives a
    killed run. The C function is looked up here, in the parent."""
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def request() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return request


@contextmanager
def started(args: Sequence[str], log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a program with its output in `log`; whatever happens, it is ended afterwards
    (SIGTERM, then SIGKILL), by its own PID only."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            # Only a call of prctl(2) runs in the child; no threads are started by this module.
            preexec_fn=parent_death_signal(),  # noqa: PLW1509
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_line(process: subprocess.Popen[bytes], log: Path, pattern: str, what: str) -> re.Match[str]:
    """Wait until the program has written a line matching `pattern` to its log."""
    deadline = Deadline(START_TIMEOUT)
    while deadline.left() > 0:
        if match := re.search(pattern, log.read_text(errors="replace"), re.MULTILINE):
            return match
        if process.poll() is not None:
            raise RunError(f"{what} exited with status {process.returncode}; see {relative(log)}")
        time.sleep(0.05)
    raise RunError(f"{what} did not start within {START_TIMEOUT:.0f} s; see {relative(log)}")


def wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, what: str) -> None:
    deadline = Deadline(START_TIMEOUT)
    while deadline.left() > 0:
        if process.poll() is not None:
            raise RunError(f"{what} exited with status {process.returncode}; see {relative(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.1)
    raise RunError(f"{what} did not listen on port {port} within {START_TIMEOUT:.0f} s; see {relative(log)}")


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def wstest(mode: str, spec: Path) -> list[str]:
    if not installed():
        raise RunError(f"Autobahn|Testsuite is not installed in {autobahn_home()}: run {relative(INSTALL_SCRIPT)}")
    return [str(python27()), str(HERE / "wstest_loopback.py"), "--mode", mode, "--spec", str(spec), "--webport", "0"]


def hybi_command() -> list[str]:
    script = Path(sys.executable).parent / "hybi"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hybi"]


def expected_count(log: Path) -> int | None:
    match = re.search(r"will run (\d+) test cases", log.read_text(errors="replace"))
    return int(match.group(1)) if match else None


# What starting a role gives: the program whose exit ends the run, its name and log, and a
# check of the run, given that program's exit status, that raises RunError.
Started = tuple[subprocess.Popen[bytes], str, Path, Callable[[int], None]]


@dataclass
class Running:
    """A role whose programs run: `main` (wstest's fuzzingclient, or client.py) exits when
    the cases are done; `check` then raises RunError if the run went wrong."""

    run: RoleRun
    deadline: Deadline
    started_at: float
    programs: ExitStack
    main: subprocess.Popen[bytes]
    name: str
    log: Path
    check: Callable[[int], None]


def start_server_role(folder: Path, programs: ExitStack) -> Started:
    """hybi serve, tested by the fuzzingclient."""
    server_log, wstest_log = folder / "hybi-serve.log", folder / "wstest.log"
    serve = [*hybi_command(), "serve", "--host", "127.0.0.1", "--port", "0", "--max-size", str(SERVER_MAX_SIZE)]
    server = programs.enter_context(started(serve, server_log, folder))
    found = wait_for_line(server, server_log, r"on ws://127\.0\.0\.1:(\d+)/", "hybi serve")
    spec = write_spec("server", int(found.group(1)), folder)
    fuzzer = programs.enter_context(started(wstest("fuzzingclient", spec), wstest_log, folder))

    def check(status: int) -> None:
        if status != 0:
            raise RunError(f"wstest's fuzzingclient exited with status {status}; see {relative(wstest_log)}")
        if server.poll() is not None:
            raise RunError(f"hybi serve exited during the run; see {relative(server_log)}")

    return fuzzer, "wstest's fuzzingclient", wstest_log, check


def start_client_role(folder: Path, programs: ExitStack) -> Started:
    """hybi's client (client.py), tested by the fuzzingserver."""
    wstest_log, client_log = folder / "wstest.log", folder / "client.log"
    port = free_port()
    spec = write_spec("client", port, folder)
    fuzzer = programs.enter_context(started(wstest("fuzzingserver", spec), wstest_log, folder))
    wait_listening(fuzzer, port, wstest_log, "wstest's fuzzingserver")
    driver = [sys.executable, str(HERE / "client.py"), f"ws://127.0.0.1:{port}", "--agent", AGENT]
    client = programs.enter_context(started(driver, client_log, folder))

    def check(status: int) -> None:
        if status != 0:
            raise RunError(f"client.py exited with status {status}; see {relative(client_log)}")

    return client, "client.py", client_log, check


def start_role(role: str, timeout: float) -> Running:
    """Start a role from scratch (its reports folder is emptied first)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    run = RoleRun(role)
    shutil.rmtree(run.folder, ignore_errors=True)
    run.folder.mkdir(parents=True)
    started_at = time.monotonic()
    deadline = Deadline(timeout)
    starter = start_server_role if role == "server" else start_client_role
    with ExitStack() as programs:
        main, name, log, check = starter(run.folder, programs)
        return Running(run, deadline, started_at, programs.pop_all(), main, name, log, check)


def finish_role(running: Running) -> RoleRun:
    """Once `main` has exited (or the deadline passed): end the role's programs, read its
    reports."""
    run = running.run
    with running.programs:
        status = running.main.poll()
        if status is None:
            raise RunError(
                f"{running.name} still running after {running.deadline.seconds:.0f} s; see {relative(running.log)}"
            )
        running.check(status)
    run.seconds = time.monotonic() - running.started_at
    run.expected = expected_count(run.folder / "wstest.log")
    run.speedups = wstest_speedups(run.folder / "wstest.log")
    run.results = read_results(run.folder)
    return run


def run_roles(roles: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> dict[str, RoleRun | RunError]:
    """Run the roles at the same time, each from scratch and within `timeout` s of its
    start; return each one's run, or the error that stopped it. Every program started is
    ended before this returns."""
    outcomes: dict[str, RoleRun | RunError] = {}
    with ExitStack() as stack:
        running: dict[str, Running] = {}
        for role in roles:
            try:
                running[role] = start_role(role, timeout)
            except RunError as error:
                outcomes[role] = error
                continue
            stack.enter_context(running[role].programs)
        while running:
            for role, current in list(running.items()):
                if current.main.poll() is None and current.deadline.left() > 0:
                    continue
                del running[role]
                try:
                    outcomes[role] = finish_role(current)
                except RunError as error:
                    outcomes[role] = error
            if running:
                time.sleep(POLL_INTERVAL)
    return {role: outcomes[role] for role in roles}


def wstest_speedups(log: Path) -> str | None:
    """How wstest masks and validates UTF-8, from the classes it names when it starts:
    "wsaccel" or "pure Python"."""
    text = log.read_text(errors="replace")
    classes = re.findall(r"^Using (?:UTF8 Validator|XOR Masker) class(?:es)? (.*)$", text, re.MULTILINE)
    if len(classes) != 2:
        return None
    return "wsaccel" if all("wsaccel." in name for name in classes) else "pure Python"


def read_results(folder: Path) -> dict[str, CaseResult]:
    index = folder / "index.json"
    if not index.exists():
        raise RunError(f"wstest wrote no report ({relative(index)})")
    cases: dict[str, dict[str, Any]] = json.loads(index.read_text()).get(AGENT, {})
    return {
        case: CaseResult(
            case=case,
            behavior=str(entry.get("behavior")),
            behavior_close=str(entry.get("behaviorClose")),
            duration_ms=entry.get("duration"),
            remote_close_code=entry.get("remoteCloseCode"),
        )
        for case, entry in sorted(cases.items(), key=lambda item: case_key(item[0]))
    }


def problems(run: RoleRun) -> list[str]:
    """Every case that is not OK: a behavior other than OK (INFORMATIONAL allowed for
    MAY_BE_INFORMATIONAL), or a closing behavior other than OK or INFORMATIONAL; and a
    report that lacks cases."""
    found = []
    for result in run.results.values():
        behavior_ok = result.behavior == "OK" or (
            result.behavior == "INFORMATIONAL" and result.case in MAY_BE_INFORMATIONAL
        )
        if not behavior_ok or result.behavior_close not in CLOSE_BEHAVIORS_ALLOWED:
            found.append(describe(result))
    if run.expected is not None and len(run.results) != run.expected:
        found.append(f"the report has {len(run.results)} cases, wstest announced {run.expected}")
    return found


def describe(result: CaseResult) -> str:
    return f"{result.case:<8} behavior {result.behavior:<13} behaviorClose {result.behavior_close}"


def headline(run: RoleRun) -> str:
    """The role, the case count and time, and the count of each behavior."""
    counts = Counter(result.behavior for result in run.results.values())
    names = list(BEHAVIORS) + sorted(set(counts) - set(BEHAVIORS))
    title = f"Autobahn|Testsuite, role {run.role} ({SUBJECTS[run.role]})"
    return "\n".join(
        [
            f"{title}: {len(run.results)} cases in {run.seconds:.1f} s (wstest: {run.speedups or 'unknown'})",
            "  " + ", ".join(f"{name} {counts.get(name, 0)}" for name in names),
        ]
    )


def summary(run: RoleRun) -> str:
    """The headline, every case not OK in either behavior, and the verdict of `problems`."""
    lines = [headline(run)]
    not_ok = [r for r in run.results.values() if r.behavior != "OK" or r.behavior_close != "OK"]
    if not_ok:
        lines.append(f"  not OK ({len(not_ok)}):")
        lines += [f"    {describe(result)}" for result in not_ok]
    failing = problems(run)
    lines.append(f"  {len(failing)} case(s) fail the test's rule" if failing else "  every case passes the test's rule")
    lines.append(f"  reports: {relative(run.folder / 'index.html')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=[*ROLES, "both"])
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds allowed per role")
    parser.add_argument("--install", action="store_true", help="run scripts/install-autobahn.sh first")
    args = parser.parse_args(argv)
    if args.install:
        install()
    roles = ROLES if args.role == "both" else (args.role,)
    print(f"autobahn: running role {' and '.join(roles)} (cases {cases_setting()})", file=out)
    out.flush()
    started_at = time.monotonic()
    outcomes = run_roles(roles, args.timeout)
    status = 0
    for role, outcome in outcomes.items():
        if isinstance(outcome, RunError):
            print(f"autobahn: role {role} did not finish: {outcome}", file=out)
            status = 2
            continue
        print(summary(outcome), file=out)
        if problems(outcome) and status == 0:
            status = 1
    if len(roles) > 1:
        print(f"autobahn: both roles in {time.monotonic() - started_at:.1f} s", file=out)
    return status


if __name__ == "__main__":
    sys.exit(main())
