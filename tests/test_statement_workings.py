"""Each policy words its own lines: its statement working lives in its module, registered
on its class with :func:`incentives.policies.explains`, beside a predicate that knows its
details when a statement has no plan.

The lines checked are every line of the golden statements' sources (the examples, the
worked-example cases, the docs' examples and seeded synthetic payees of their plans), which
hold lines of every policy type that makes lines.
"""

from __future__ import annotations

import functools
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest

import incentives.explain
import incentives.plan
from incentives import policies
from incentives.explain import build_statement, recompute
from incentives.policies import POLICY_TYPES, PolicyBase, explains, flatten_policies, working_for
from incentives.results import PayeeResult
from incentives.runtime import Line
from incentives.wording import Step, Wording, generic_working

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "incentives"
sys.path.insert(0, str(ROOT / "tests" / "golden"))

#: the policy types that publish names and make no line of pay
NO_LINE = {"quota", "value", "accumulate", "period_quota", "group_values", "ranking_flag",
           "spread"}


@functools.cache
def results() -> list[PayeeResult]:
    from statements import sources

    return [r for rs in sources().values() for r in rs]


@functools.cache
def typed_lines() -> list[tuple[PolicyBase, Line]]:
    """Every line of the sources with its policy (a ledger's adjustments have none)."""
    out = []
    for r in results():
        if r.plan is None:
            continue
        specs = {s.id: s for s in flatten_policies(r.plan.policies)}
        for line in r.lines:
            spec = specs.get(line.policy)
            if spec is not None:
                out.append((spec, line))
    return out


def test_every_policy_type_with_lines_has_its_own_working() -> None:
    for name, cls in POLICY_TYPES.items():
        if name in NO_LINE:
            assert cls.statement is generic_working, name
            assert cls.looks_like is None, name
        else:
            assert cls.statement is not generic_working, name
            assert cls.looks_like is not None, name
            # the working is a function of the policy's own module
            assert cls.statement.__module__ == cls.__module__, name


def test_the_types_without_a_working_make_no_line() -> None:
    made = {spec.type for spec, _ in typed_lines()}
    assert made == set(POLICY_TYPES) - NO_LINE


def test_shape_guessing_picks_each_types_working() -> None:
    checked: dict[str, int] = {}
    for spec, line in typed_lines():
        guessed = working_for(None, line.details)
        assert guessed is type(spec).statement, (spec.type, sorted(line.details))
        checked[spec.type] = checked.get(spec.type, 0) + 1
    assert set(checked) == set(POLICY_TYPES) - NO_LINE
    # details of no known shape get the generic working
    assert working_for(None, {"rank": 2, "tied_with": ["B"]}) is generic_working
    assert working_for(None, {}) is generic_working


def test_a_line_with_its_policy_gets_that_policys_working() -> None:
    for spec, line in typed_lines()[:400]:
        assert working_for(spec, line.details) is type(spec).statement


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_statements_without_a_plan_use_each_policys_working(lang: str) -> None:
    """Without the plan, each line is still worked out by its own policy's working: no
    line falls back to the generic listing, and every figure adds up by hand."""
    seen: set[str] = set()
    checked = 0
    for r in results():
        if r.plan is None or r.record is None:
            continue
        specs = {s.id: s for s in flatten_policies(r.plan.policies)}
        types = {specs[line.policy].type for line in r.lines if line.policy in specs}
        if not types - seen:
            continue
        seen |= types
        bare = PayeeResult(r.payee, r.period, r.group, r.lines, r.total, values=r.values,
                           titles=r.titles, flags=r.flags, record=r.record)
        st = build_statement(bare, lang=lang)
        assert st.fallbacks == [], (r.payee, types)
        assert recompute(bare.explain(lang=lang), lang=lang) == r.total
        checked += 1
    assert seen >= set(POLICY_TYPES) - NO_LINE
    assert checked > 5


def test_a_tiered_line_without_its_plan_is_worked_as_tiers() -> None:
    line = Line("commission", "commission", Decimal("1400.00"), "pay", {
        "basis": Decimal(50000), "basis_formula": "revenue", "method": "marginal",
        "amount": Decimal("1400.00"),
        "slices": [{"from": Decimal(0), "to": Decimal(30000), "rate": Decimal("0.02"),
                    "amount": Decimal("600.00")},
                   {"from": Decimal(30000), "to": Decimal(50000), "rate": Decimal("0.04"),
                    "amount": Decimal("800.00")}]})
    st = build_statement(PayeeResult("a", "2026-05", None, [line], Decimal("1400.00")))
    assert [s.text() for s in st.lines[0].steps] == [
        "basis: revenue = 50,000",
        "method: marginal (each slice earns its own tier's rate)",
        "slice 0 to 30,000: 30,000 x 0.02 = 600.00",
        "slice 30,000 to 50,000: 20,000 x 0.04 = 800.00",
        "sum: 600.00 + 800.00 = 1,400.00",
    ]
    zh = build_statement(PayeeResult("a", "2026-05", None, [line], Decimal("1400.00")),
                         lang="zh")
    assert [s.text() for s in zh.lines[0].steps][2] == "分段 0 至 30,000: 30,000 x 0.02 = 600.00"


def test_explains_registers_a_working_on_the_class() -> None:
    class Flat(PolicyBase):
        type: Literal["flat"] = "flat"

    def looks_flat(d: Any) -> bool:
        return set(d) == {"flat"}

    @explains(Flat, looks_like=looks_flat)
    def worded(c: Wording, line: Line, spec: Flat | None) -> list[Step]:
        return [Step(c.t("amount"), None, c.fmt.money(line.amount))]

    spec = Flat(id="bonus")
    assert Flat.statement is worded
    assert spec.statement is worded  # a plain function, not bound to the spec
    assert Flat.looks_like is looks_flat
    assert working_for(spec, {"flat": 1}) is worded
    assert PolicyBase.statement is generic_working  # the base keeps the generic working


def test_step_is_public_in_explain_and_flatten_policies_in_plan() -> None:
    assert incentives.explain.Step is Step
    assert incentives.plan.flatten_policies is policies.flatten_policies
