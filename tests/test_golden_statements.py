"""Statements keep their bytes: every statement of the examples, the worked-example cases,
the docs' examples and seeded synthetic payees of their plans, in both languages and every
format, is compared with the golden files in ``tests/golden/files``.

The golden files were written before the statement code moved beside the policies (one
mechanism, one module), so text and Markdown must stay byte-identical through any such
restructuring. After a deliberate change to a statement, rewrite them with ``python
tests/golden/statements.py`` and review the diff.
"""

from __future__ import annotations

import difflib
import functools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "golden"))
from statements import HERE, render_all


@functools.cache
def rendered() -> dict[str, str]:
    return render_all()


def golden_names() -> list[str]:
    return sorted(p.name for p in HERE.iterdir())


def test_golden_files_cover_every_source() -> None:
    assert sorted(rendered()) == golden_names()
    assert len(golden_names()) > 600


@pytest.mark.parametrize("name", golden_names())
def test_statement_bytes(name: str) -> None:
    want = (HERE / name).read_text(encoding="utf-8")
    got = rendered()[name]
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            f"golden/{name}", "now", n=2))
        pytest.fail(f"{name} differs from its golden file:\n{diff[:4000]}")
