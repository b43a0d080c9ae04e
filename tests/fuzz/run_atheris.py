"""Coverage-guided fuzzing of the core with atheris: `make fuzz` (see harness.py).

    HYBI_FUZZ_TARGET=13/server python tests/fuzz/run_atheris.py -runs=1000000 WORK tests/fuzz/corpus

HYBI_FUZZ_TARGET fixes the target (a dialect and role from harness.TARGETS); without it the
first byte of each input chooses.

New interesting inputs go to the first folder; crashes are written as crash-* files, which
are then to be copied into tests/fuzz/corpus/ so that tests/test_fuzz.py replays them.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with atheris.instrument_imports():
    from fuzz.harness import drive, split_input


ONLY = os.environ.get("HYBI_FUZZ_TARGET") or None


def one_input(raw: bytes) -> None:
    target, data, cuts = split_input(raw, ONLY)
    drive(target, data, cuts)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
