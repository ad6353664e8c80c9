"""docs/adding-a-policy.md, done: a new policy is its module, its registration and its phrases.

The test copies the package, makes exactly the edits the page shows (writes the module,
adds the two registration lines, appends the phrases to the catalogues and compiles them
with Babel), then runs the page's plan in a fresh interpreter on the copy and compares
both statements with the page, byte for byte. Nothing else of the package is edited.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "adding-a-policy.md"
FENCE = re.compile(r"<!-- (?P<kind>[a-z]+)(?:: (?P<arg>[^>]*?))? -->\n(?:<!-- skip -->\n)?"
                   r"```(?P<lang>\w+)\n(?P<body>.*?)```\n", re.S)
RECORD = {"payee": "A-7", "period": "2026-05", "metrics": {"visits": 34}}


def page_blocks() -> list[tuple[str, str, str]]:
    """``(kind, argument, body)`` of each marked block of the page, in order."""
    return [(m["kind"], (m["arg"] or "").strip(), m["body"])
            for m in FENCE.finditer(PAGE.read_text(encoding="utf-8"))]


def apply_page(package: Path) -> list[str]:
    """Make the page's edits in ``package`` (a copy of ``src/incentives``); the files edited."""
    touched = []
    for kind, arg, body in page_blocks():
        if kind not in ("file", "register", "append"):
            continue
        target = package.parent.parent / arg
        touched.append(arg)
        if kind == "file":
            target.write_text(body, encoding="utf-8")
        elif kind == "append":
            with target.open("a", encoding="utf-8") as f:
                f.write("\n" + body)
        else:  # the type first in _CLASSES (its tag, its module, its class)
            (entry,) = body.splitlines()
            text = target.read_text(encoding="utf-8")
            marker = "_CLASSES: tuple[tuple[str, str, str], ...] = (\n"
            assert marker in text
            text = text.replace(marker, f"{marker}{entry}\n", 1)
            target.write_text(text, encoding="utf-8")
    return touched


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with the page's policy added, its catalogues compiled."""
    sys.path.insert(0, str(ROOT))
    try:
        from hatch_build import compile_catalogues
    finally:
        sys.path.pop(0)
    src = tmp_path_factory.mktemp("added") / "src"
    package = src / "incentives"
    shutil.copytree(ROOT / "src" / "incentives", package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    touched = apply_page(package)
    assert sorted(touched) == [
        "src/incentives/locale/en/LC_MESSAGES/incentives.po",
        "src/incentives/locale/zh/LC_MESSAGES/incentives.po",
        "src/incentives/policies/__init__.py",
        "src/incentives/policies/per_unit.py",
    ]
    compile_catalogues(package / "locale")
    return src


def run_on(src: Path, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=src, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_page_has_every_part() -> None:
    kinds = [kind for kind, _, _ in page_blocks()]
    assert kinds == ["file", "register", "append", "append", "plan", "statement", "statement"]


def test_the_added_policy_pays_and_explains_itself_in_both_languages(copy: Path) -> None:
    blocks = page_blocks()
    plan = next(body for kind, _, body in blocks if kind == "plan")
    wanted = {arg: body for kind, arg, body in blocks if kind == "statement"}
    code = f"""
import json, sys
import incentives
from incentives.explain import recompute
assert incentives.__file__.startswith({str(copy)!r}), incentives.__file__
plan = incentives.load_plan({plan!r}, file="plan.yaml")
run = plan.evaluate([json.loads({json.dumps(RECORD)!r})])
result = run.results[0]
line = result.line("visit_bonus")
assert str(line.amount) == "210.00" and line.type == "bonus", line
assert str(result.total) == "210.00"
out = {{}}
for lang in ("en", "zh"):
    text = result.explain(lang=lang)
    assert recompute(text, lang=lang) == result.total
    out[lang] = text
# the JSON details, and a statement from them without the plan (shape guessing)
details = run.to_dict()["results"][0]["lines"][0]["details"]
out["details"] = details
json.dump(out, sys.stdout, ensure_ascii=False)
"""
    out = json.loads(run_on(copy, code))
    assert out["details"] == {"units": "34", "threshold": "20", "above": "14",
                              "rate": "15.00", "amount": "210.00"}
    assert out["en"] == wanted["en"]
    assert out["zh"] == wanted["zh"]


def test_nothing_but_the_three_places_changed(copy: Path) -> None:
    # the copy differs from the package only in the files the page names (and compiled .mo)
    package = ROOT / "src" / "incentives"
    changed = []
    for path in sorted((copy / "incentives").rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".mo":
            continue
        rel = path.relative_to(copy / "incentives")
        original = package / rel
        if not original.is_file() or original.read_bytes() != path.read_bytes():
            changed.append(rel.as_posix())
    assert changed == ["locale/en/LC_MESSAGES/incentives.po",
                       "locale/zh/LC_MESSAGES/incentives.po",
                       "policies/__init__.py", "policies/per_unit.py"]
