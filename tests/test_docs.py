"""The documentation's Python code: every block in docs/ and README.md at least compiles, and
every file of examples/ a page includes exists and is shown whole.

Top-level `await` is allowed, since the pages show fragments of coroutines. The examples
themselves run in tests/test_examples.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$', re.M)


def python_blocks() -> list[tuple[str, str]]:
    """(where, code) for each fenced block marked python, snippets resolved."""
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            language = match.group("info").strip().split(" ")[0]
            if language not in ("python", "py"):
                continue
            line = text.count("\n", 0, match.start()) + 1
            body = SNIPPET.sub(lambda m: (ROOT / m.group("path")).read_text(encoding="utf-8"), match.group("body"))
            lines = body.splitlines()
            indent = len(match.group("indent"))
            blocks.append((f"{page.relative_to(ROOT)}:{line}", "\n".join(line[indent:] for line in lines)))
    return blocks


BLOCKS = python_blocks()


def test_there_is_code_to_check() -> None:
    assert len(BLOCKS) > 20
    assert any("examples/" in where or "async def" in code for where, code in BLOCKS)


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_python_block_compiles(where: str, code: str) -> None:
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def test_included_examples_exist_and_every_example_is_shown() -> None:
    included = set()
    for page in PAGES:
        for match in SNIPPET.finditer(page.read_text(encoding="utf-8")):
            path = ROOT / match.group("path")
            assert path.is_file(), f"{page.name} includes {match.group('path')}, which does not exist"
            included.add(path.name)
    examples = {path.name for path in (ROOT / "examples").glob("*.py")}
    assert examples <= included, f"examples not shown in any page: {sorted(examples - included)}"
