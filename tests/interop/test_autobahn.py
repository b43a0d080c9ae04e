"""Autobahn|Testsuite (wstest 25.10.1, installed by scripts/install-autobahn.sh) against
hybi in both roles: `hybi serve` under its fuzzingclient, hybi's client under its
fuzzingserver. interop/autobahn/run.py does the running; `make autobahn` runs the same.

A role fails listing every case whose behavior is not OK (7.1.6, 7.13.1 and 7.13.2 may be
INFORMATIONAL: they only record a choice the RFC leaves open) or whose closing behavior is
neither OK nor INFORMATIONAL. The cases run are those of HYBI_AUTOBAHN_CASES, by default
all but 12.* and 13.* (permessage-deflate). Each role runs in well under a minute here; the
run is cut off after ROLE_TIMEOUT seconds, and every program it started is ended.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tests.interop.peers import require

pytestmark = pytest.mark.interop

RUN_PY = Path(__file__).resolve().parents[2] / "interop" / "autobahn" / "run.py"
ROLE_TIMEOUT = 300.0


def load_runner() -> ModuleType:
    """interop/autobahn/run.py, loaded from its path: under pytest, the name `interop` is
    this folder's package, not the repository's interop folder."""
    spec = importlib.util.spec_from_file_location("hybi_autobahn_run", RUN_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


autobahn = load_runner()


@pytest.mark.parametrize("role", autobahn.ROLES)
def test_autobahn_testsuite(role: str) -> None:
    require(autobahn.installed(), "Autobahn|Testsuite")
    try:
        run = autobahn.run_role(role, timeout=ROLE_TIMEOUT)
    except autobahn.RunError as error:
        pytest.fail(f"role {role}: {error}", pytrace=False)
    failing: list[str] = autobahn.problems(run)
    if failing:
        lines = "\n".join(f"  {line}" for line in failing)
        reports = run.folder / "index.html"
        pytest.fail(
            f"role {role}: {len(failing)} case(s) not OK:\n{lines}\n{autobahn.headline(run)}\n  reports: {reports}",
            pytrace=False,
        )
