"""Autobahn|Testsuite (wstest 25.10.1, installed by scripts/install-autobahn.sh) against
hybi in both roles at the same time: `hybi serve` under its fuzzingclient, hybi's client
under its fuzzingserver. interop/autobahn/run.py does the running; `make autobahn` runs the
same.

The test fails listing, for each role, every case whose behavior is not OK (7.1.6, 7.13.1
and 7.13.2 may be INFORMATIONAL: they only record a choice the RFC leaves open) or whose
closing behavior is neither OK nor INFORMATIONAL, or the reason the role could not finish.
The cases run are those of HYBI_AUTOBAHN_CASES, by default all 517, the 216
permessage-deflate cases (12.* and 13.*) included. Those take nearly all of the time:
about 8.5 minutes for both roles on an otherwise idle two-core machine, both cores busy
(wstest two thirds of it, hybi one third). Each role is cut off after ROLE_TIMEOUT seconds,
and every program the run started is ended.
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
ROLE_TIMEOUT = 1800.0


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


def test_autobahn_testsuite() -> None:
    require(autobahn.installed(), "Autobahn|Testsuite")
    outcomes = autobahn.run_roles(autobahn.ROLES, timeout=ROLE_TIMEOUT)
    reports = []
    for role, outcome in outcomes.items():
        if isinstance(outcome, autobahn.RunError):
            reports.append(f"role {role}: {outcome}")
            continue
        failing: list[str] = autobahn.problems(outcome)
        if failing:
            lines = "\n".join(f"  {line}" for line in failing)
            headline = autobahn.headline(outcome)
            where = outcome.folder / "index.html"
            reports.append(f"role {role}: {len(failing)} case(s) not OK:\n{lines}\n{headline}\n  reports: {where}")
    if reports:
        pytest.fail("\n".join(reports), pytrace=False)
