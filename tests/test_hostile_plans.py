"""The hostile plan corpus: every file in ``tests/hostile_plans`` is refused at load.

Each file opens with its manifest, in comment lines::

    # expect: FormulaLimitError        the library's own error class (exactly)
    # message: exponent                a key part of the message
    # path: policies[0].amount         the path inside the plan the error names
    # line: none                       (only for errors about the whole file)

and each is refused within one second of CPU time (process time, so a busy
machine cannot make the test flaky), with an error naming the file, its line
and the path inside the plan.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

import incentives.errors as errors
from incentives import load_plan
from incentives.errors import EvaluationError, IncentivesError, format_path

CORPUS = Path(__file__).parent / "hostile_plans"
FILES = sorted(CORPUS.glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import and build what loading a plan needs once, so the timings measure the refusal."""
    load_plan(Path(__file__).parent.parent / "examples" / "telecom" / "plan.yaml")


def manifest(path: Path) -> dict[str, str]:
    facts: dict[str, str] = {}
    for raw in path.read_bytes().decode("latin-1").splitlines():
        if not raw.startswith("# "):
            break
        key, _, value = raw[2:].partition(": ")
        facts[key.strip()] = value.strip()
    return facts


def test_the_corpus_is_large_enough() -> None:
    assert len(FILES) >= 40
    kinds = {manifest(f)["expect"] for f in FILES}
    assert kinds == {"PlanError", "PlanLimitError", "FormulaError", "FormulaLimitError"}


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_hostile_plan_is_refused(path: Path) -> None:
    facts = manifest(path)
    expected = getattr(errors, facts["expect"])
    start = time.process_time()
    with pytest.raises(IncentivesError) as info:
        load_plan(path)
    elapsed = time.process_time() - start
    err = info.value
    assert type(err) is expected, f"{type(err).__name__}: {err}"
    assert facts["message"] in str(err)
    assert elapsed < 1.0, f"took {elapsed:.2f}s"
    # the error names the file, the line and the path inside the plan
    assert err.file == str(path)
    assert str(err).startswith(str(path))
    if facts.get("line") == "none":
        assert err.line is None
    else:
        assert isinstance(err.line, int)
        assert 1 <= err.line <= path.read_bytes().count(b"\n") + 1
        assert f"{path}:{err.line}" in str(err)
    if "path" in facts:
        assert format_path(err.path) == facts["path"]
        assert facts["path"] in str(err)


def test_the_error_line_points_at_the_formula() -> None:
    path = CORPUS / "dos_huge_power.yaml"
    with pytest.raises(errors.FormulaLimitError) as info:
        load_plan(path)
    text = path.read_text(encoding="utf-8").splitlines()
    assert text[info.value.line - 1].strip() == "amount: 4000000 ** 4000000"


def test_four_million_to_the_four_millionth_is_refused_in_under_a_second() -> None:
    from incentives import FormulaLimitError, compile_formula

    start = time.process_time()
    with pytest.raises(FormulaLimitError, match="exponent 4000000 too large"):
        compile_formula("4000000 ** 4000000", {})
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize(
    ("amount", "fragment", "zero_is_fine"),
    [
        ("sales * 99999999999999999 * 99999999999999999 * 99999999999999999", "too large", True),
        ("(sales * 99999999999999999) ** 64", "too large", True),
        ("((sales * 99999999999999999) ** 64) ** 64", "too large", True),
        ("0 ** -1", "0 raised to a negative power", False),
        ("sales / (sales - sales)", "division by zero", False),
    ],
)
def test_huge_arithmetic_at_run_time_is_a_quick_evaluation_error(
        amount: str, fragment: str, zero_is_fine: bool) -> None:
    plan = load_plan("name: p\ninputs: {metrics: {sales: {}}}\npolicies:\n"
                     f"  - {{type: formula, id: pay, amount: '{amount}'}}\n")
    records = [{"payee": "big", "period": "2026-05", "metrics": {"sales": "99999999999"}},
               {"payee": "zero", "period": "2026-05", "metrics": {"sales": "0"}}]
    start = time.process_time()
    run = plan.evaluate(records, errors="collect")
    assert time.process_time() - start < 1.0
    big = [e for e in run.errors if e.payee == "big"]
    assert [type(e) for e in big] == [EvaluationError]
    assert fragment in str(big[0])
    assert big[0].policy == "pay"
    if zero_is_fine:
        assert run["zero"].total == Decimal("0.00")
        assert len(run.errors) == 1
    else:
        assert len(run.errors) == 2


def test_long_text_may_break_lines_but_a_label_may_not() -> None:
    plan = load_plan('name: ok\ndescription: "two\\nlines\\tand a tab"\n'
                     'inputs: {metrics: {sales: {label: "销售额 (sales)"}}}\n'
                     'policies: [{type: formula, id: pay, label: 提成, amount: sales * 0.1}]\n')
    assert plan.description == "two\nlines\tand a tab"
    with pytest.raises(errors.PlanError, match=r"U\+0009 in 'a\\tb': a label, a name or an id"):
        load_plan('name: "a\\tb"\ninputs: {metrics: {sales: {}}}\n'
                  'policies: [{type: formula, id: pay, amount: sales}]\n')


@pytest.mark.parametrize("label", ["a\x1b[2Jb", "two\nlines", "sales\u202elatot", "tab\there"])
def test_a_plan_built_in_python_refuses_a_control_character_in_a_label(label: str) -> None:
    from incentives import Floor, Plan

    with pytest.raises(errors.PlanError, match=r"label: control character U\+"):
        Plan(name="p", inputs={"metrics": {"sales": {}}},
             policies=[Floor(id="floor", label=label, amount=700)])
    with pytest.raises(errors.PlanError, match="control character U"):
        Plan(name="p\x00", inputs={"metrics": {"sales": {}}}, policies=[])
