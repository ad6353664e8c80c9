"""Every Python example in README.md and docs/*.md runs, as written.

Each file's fenced ```python blocks run in order in one namespace, with the
working directory at the repository root. A block right after a line
``<!-- skip -->`` is not run. A failure names the file and the line of the
block (tracebacks point at the Markdown file's own line numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = "<!-- skip -->"
OPEN = re.compile(r"^```python\s*$")
CLOSE = re.compile(r"^```\s*$")


@dataclass
class Block:
    line: int  # the 1-based line of the first line of code
    code: str
    skipped: bool


def python_blocks(text: str) -> list[Block]:
    """The fenced ```python blocks of a Markdown text, with where they start."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if OPEN.match(lines[i]):
            before = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
            start = i + 1
            j = start
            while j < len(lines) and not CLOSE.match(lines[j]):
                j += 1
            if j == len(lines):
                raise ValueError(f"line {i + 1}: a ```python block is never closed")
            blocks.append(Block(start + 1, "\n".join(lines[start:j]) + "\n", before == SKIP))
            i = j + 1
        else:
            i += 1
    return blocks


class DocExampleError(AssertionError):
    pass


def run_markdown(path: Path, root: Path = ROOT) -> int:
    """Run every python block of ``path`` (one namespace); return how many ran."""
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    ran = 0
    for block in python_blocks(path.read_text(encoding="utf-8")):
        if block.skipped:
            continue
        # pad with blank lines so tracebacks show the Markdown file's line numbers
        code = compile("\n" * (block.line - 1) + block.code, rel, "exec")
        try:
            exec(code, namespace)
        except Exception as exc:
            raise DocExampleError(
                f"{rel}:{block.line}: the python block starting here failed: "
                f"{type(exc).__name__}: {exc}") from exc
        ran += 1
    return ran


def doc_files() -> list[str]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [f.relative_to(ROOT).as_posix() for f in files if f.exists()]


@pytest.mark.parametrize("name", doc_files())
def test_doc_examples_run(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    run_markdown(ROOT / name)


def test_docs_exist() -> None:
    names = doc_files()
    assert "README.md" in names
    for page in ("index", "statements", "integrators", "base-pay", "tiers", "rate-tables",
                 "quota", "scorecard", "modifiers", "floor-and-cap", "formulas", "composition",
                 "reference"):
        assert f"docs/{page}.md" in names


def test_harness_runs_in_order_skips_and_reports_the_line(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n```python\nx = 1\n```\n\ntext\n\n<!-- skip -->\n```python\n"
        "raise SystemError('never run')\n```\n\n```python\nassert x == 1\ny = x + 1\n"
        "assert y == 3, 'wrong'\n```\n", encoding="utf-8")
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    assert [(b.line, b.skipped) for b in blocks] == [(4, False), (11, True), (15, False)]
    with pytest.raises(DocExampleError, match=r"page.md:15: .*AssertionError: wrong") as info:
        run_markdown(page, tmp_path)
    tb = info.value.__cause__.__traceback__  # type: ignore[union-attr]
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    assert tb is not None
    assert tb.tb_lineno == 17  # the failing assert's own line in page.md
    page.write_text("```python\nassert True\n```\n", encoding="utf-8")
    assert run_markdown(page, tmp_path) == 1


def test_harness_refuses_an_unclosed_block() -> None:
    with pytest.raises(ValueError, match="line 1: a ```python block is never closed"):
        python_blocks("```python\nx = 1\n")


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("name", doc_files())
def test_relative_links_resolve(name: str) -> None:
    page = ROOT / name
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == [], f"{name}: links to missing files: {broken}"
