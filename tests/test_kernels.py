"""Kernels (payee policies written out as one function per plan) do exactly what the
policies' own ``apply`` methods do: same amounts, details, values, errors, state.

Each plan is evaluated twice, with kernels (what ``Plan.evaluate`` uses) and
policy by policy (``CompiledPlan(..., kernels=False)``, the reference), and the
two runs' JSON, errors and closing state must be identical.
"""

from __future__ import annotations

import json
from decimal import Decimal
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives import Plan, load_plan
from incentives.engine import CompiledPlan
from incentives.records import read_records_file
from incentives.testing import strategies as ist

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"


def reference(plan: Plan) -> CompiledPlan:
    return CompiledPlan(plan, plan._compile_policies(), kernels=False)


def both(plan: Plan, records: list[Any], state: Any = None) -> tuple[Any, Any]:
    """The two runs' observable outcome: JSON, errors (as text) and closing state, and
    what every line captured to explain itself (read before its details are built:
    the kernel captures the same values, by the same record's fields, as ``apply``)."""
    out = []
    for compiled in (plan.compile(), reference(plan)):
        run = compiled.evaluate(records, errors="collect", state=state)
        captured = [(r.payee, line.policy, line.captured) for r in run.results
                    for line in r.lines]
        out.append((run.to_json(), [str(e) for e in run.errors], run.state.to_json(),
                    captured))
    return out[0], out[1]


def test_the_plans_evaluate_through_kernels() -> None:
    plan = load_plan(EX / "telecom/plan.yaml")
    kinds = [kernel is not None for kernel, _ in plan.compile().steps]
    assert any(kinds)
    assert all(kernel is None for kernel, _ in reference(plan).steps)
    kernel = next(k for k, _ in plan.compile().steps if k is not None)
    assert (kernel.__doc__ or "").startswith("def kernel(s):")


@pytest.mark.parametrize(("plan_file", "records_file"), [
    ("telecom/plan.yaml", "telecom/records.jsonl"),
    ("bank/plan.yaml", "bank/records.json"),
    ("tobacco/plan.yaml", "tobacco/records.jsonl"),
    ("telecom/plan-ledger.yaml", "telecom/records-2026-06.jsonl"),
])
def test_examples_are_identical_both_ways(plan_file: str, records_file: str) -> None:
    plan = load_plan(EX / plan_file)
    records = list(read_records_file(EX / records_file))
    fast, slow = both(plan, records)
    assert fast == slow
    assert json.loads(fast[0])["results"]
    # most lines were explained lazily, from what they captured
    assert sum(c is not None for _, _, c in fast[3]) > len(fast[3]) // 2


def test_state_carried_between_periods_is_identical_both_ways() -> None:
    plan = load_plan(EX / "telecom/plan-ledger.yaml")
    june = list(read_records_file(EX / "telecom/records-2026-06.jsonl"))
    july = list(read_records_file(EX / "telecom/records-2026-07.jsonl"))
    opened = plan.evaluate(june).state
    assert both(plan, july, state=opened)[0] == both(plan, july, state=opened)[1]


def test_failures_are_located_the_same_way() -> None:
    plan = load_plan("""
name: failing
inputs:
  metrics: {sales: {}, target: {}}
policies:
  - {type: formula, id: ok, amount: sales * 0.01}
  - {type: formula, id: ratio, amount: sales / target}
  - type: scorecard
    id: kpi
    target_bonus: 100
    kpis: [{id: s, actual: sales, target: target, weight: 100}]
  - {type: floor, id: floor, amount: 10}
""")
    records = [{"payee": "a", "period": "2026-05", "metrics": {"sales": 5, "target": 0}},
               {"payee": "b", "period": "2026-05", "metrics": {"sales": 5, "target": 2}}]
    fast, slow = both(plan, records)
    assert fast == slow
    assert fast[1] == ["2026-05 payee 'a', policy 'ratio': division by zero in formula "
                       "'sales / target'"] or "division by zero" in fast[1][0]
    assert '"payee": "b"' in fast[0]


@pytest.mark.parametrize("name", ["bench_formulas", "bench_plan"])
def test_benchmark_plans_are_identical_both_ways(name: str, load_bench: Any) -> None:
    bench = load_bench(name)
    records = (bench.make_records(120, "2026-05", seed=3) if name == "bench_plan"
               else bench.make_records(120, seed=3))
    fast, slow = both(bench.make_plan(), records)
    assert fast == slow


PLANS = [EX / "telecom/plan.yaml", EX / "bank/plan.yaml", EX / "tobacco/plan.yaml",
         EX / "audit/cliff-plan.yaml"]


@pytest.mark.parametrize("path", PLANS, ids=lambda p: p.parent.name + "/" + p.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_populations_are_identical_both_ways(path: Path, data: st.DataObject) -> None:
    plan = load_plan(path)
    records = data.draw(ist.populations(plan, max_size=6))
    fast, slow = both(plan, records)
    assert fast == slow


@settings(max_examples=60, deadline=None)
@given(rate=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(2), places=3),
       start=st.integers(min_value=0, max_value=5000),
       method=st.sampled_from(["marginal", "retroactive", "step", "interpolated"]),
       cap=st.one_of(st.none(), st.integers(min_value=0, max_value=300)),
       basis=st.decimals(min_value=Decimal(-100), max_value=Decimal(20000), places=2),
       gate=st.integers(min_value=0, max_value=120),
       when=st.booleans())
def test_generated_tiers_and_scorecards_are_identical_both_ways(
        rate: Decimal, start: int, method: str, cap: int | None, basis: Decimal, gate: int,
        when: bool) -> None:
    bounds = (0, start + 1, start * 2 + 2)
    if method in ("marginal", "retroactive"):
        tiers = [f"{{from: {b}, rate: {rate * (i + 1)}}}" for i, b in enumerate(bounds)]
    else:
        tiers = [f"{{from: {b}, amount: {10 + 40 * i}}}" for i, b in enumerate(bounds)]
    plan = load_plan(f"""
name: generated
rounding: {{quantum: 0.05, mode: half_even}}
inputs:
  metrics: {{x: {{}}, y: {{default: 1}}}}
  attributes: {{grade: {{allowed: [A, B]}}}}
policies:
  - {{type: value, id: v, value: "x * 2 - y", round: true}}
  - type: tiered
    id: t
    basis: v + 1
    method: {method}
    {"on_threshold: above" if method in ("retroactive", "step") else ""}
    {"cap: " + str(cap) if cap is not None else ""}
    tiers: [{", ".join(tiers)}]
  - type: scorecard
    id: k
    {"when: grade == 'A'" if when else ""}
    target_bonus: 1000
    kpis:
      - {{id: a, actual: x, target: 5000, weight: 70, cap: 1.5, floor: 0}}
      - {{id: b, actual: y, target: 2, weight: 30, direction: lower, cap: 2}}
    gates: [{{min_score: {gate}}}, {{kpi: a, min_attainment: 0.1}}]
    payout: [{{score: 0, percent: 0}}, {{score: 100, percent: 100}}, {{score: 200, percent: 150}}]
  - type: base_pay
    id: base
    by: [grade]
    table: {{A: 3000, B: 2000}}
    prorate: y / 3
  - {{type: rate_table, id: nb, items: {{x: 0.5, y: {{per_unit: 7}}}}}}
  - {{type: floor, id: f, amount: "max(100, y)"}}
""")
    records = [{"payee": p, "period": "2026-05",
                "metrics": {"x": basis + i, "y": Decimal(i)}, "attributes": {"grade": g}}
               for i, (p, g) in enumerate([("a", "A"), ("b", "B"), ("c", "A")])]
    fast, slow = both(plan, records)
    assert fast == slow


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.tuples(st.integers(min_value=0, max_value=5000),
                                 st.sampled_from(["closure", "price", "service"])),
                       max_size=4),
       sales=st.integers(min_value=-100, max_value=20000),
       capped=st.booleans())
def test_generated_churn_penalties_are_identical_both_ways(
        values: list[tuple[int, str]], sales: int, capped: bool) -> None:
    plan = load_plan(f"""
name: churn
inputs:
  metrics: {{sales: {{}}}}
  events:
    lost_customers: {{fields: {{id: text, monthly_value: number, reason: text}}}}
policies:
  - {{type: formula, id: commission, amount: sales * 0.1}}
  - type: churn_penalty
    id: churn
    events: lost_customers
    per_customer: 1.5 * monthly_value
    exempt_reasons: [closure]
    {"cap: 0.4 * commission" if capped else ""}
""")
    events = [{"id": f"c{i}", "monthly_value": D(v), "reason": r}
              for i, (v, r) in enumerate(values)]
    records = [{"payee": "a", "period": "2026-05", "metrics": {"sales": D(sales)},
                "events": {"lost_customers": events}},
               {"payee": "b", "period": "2026-05", "metrics": {"sales": D(0)}}]
    fast, slow = both(plan, records)
    assert fast == slow


def test_long_tier_tables_and_long_plans_compile_and_agree() -> None:
    from incentives.engine import KERNEL_POLICIES

    tiers = ", ".join(f"{{from: {i * 100}, rate: 0.0{i % 9 + 1}}}" for i in range(150))
    many = "\n".join(f"  - {{type: formula, id: f{i}, amount: x * 0.01 + {i}}}"
                     for i in range(KERNEL_POLICIES * 2 + 5))
    plan = load_plan(f"""
name: long
inputs: {{metrics: {{x: {{}}}}}}
policies:
  - {{type: tiered, id: t, basis: x, method: marginal, tiers: [{tiers}]}}
{many}
""")
    kernels = [k for k, _ in plan.compile().steps if k is not None]
    assert len(kernels) == 3  # cut at KERNEL_POLICIES policies each
    records = [{"payee": p, "period": "2026-05", "metrics": {"x": D(x)}}
               for p, x in (("a", 12345), ("b", 0), ("c", 14999), ("d", 15001))]
    fast, slow = both(plan, records)
    assert fast == slow
    assert plan.evaluate(records)["a"].amount("t") == D("609.15")


def _cases() -> list[Any]:
    from incentives.testing.cases import find_case_files, load_cases

    return [case for path in find_case_files([ROOT / "tests/cases"])
            for case in load_cases(path)]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.name)
def test_every_worked_example_case_is_identical_both_ways(case: Any) -> None:
    plan = load_plan(case.plan)
    if case.parameters:
        plan = plan.with_parameters(**case.parameters)
    fast, slow = both(plan, case.input, state=case.state)
    assert fast == slow


@settings(max_examples=60, deadline=None)
@given(sales=st.integers(min_value=-500, max_value=90000),
       target=st.integers(min_value=0, max_value=60000),
       limit=st.integers(min_value=0, max_value=4000),
       rating=st.integers(min_value=0, max_value=5),
       grade=st.sampled_from(["A", "B"]))
def test_caps_modifiers_quotas_and_combinations_are_identical_both_ways(
        sales: int, target: int, limit: int, rating: int, grade: str) -> None:
    plan = load_plan(f"""
name: mixed
inputs:
  metrics: {{sales: {{}}, target: {{}}, rating: {{integer: true}}}}
  attributes: {{grade: {{allowed: [A, B]}}}}
policies:
  - {{type: quota, id: q, actual: sales, quota: target}}
  - type: tiered
    id: accel
    basis: q_attainment
    method: retroactive
    on_threshold: above
    applies_to: sales
    tiers: [{{from: 0, rate: 0.02}}, {{from: 1, rate: 0.03}}, {{from: 1.2, rate: 0.05}}]
  - type: larger_of
    id: best
    policies:
      - {{type: formula, id: plain, amount: sales * 0.025}}
      - {{type: formula, id: guarantee, amount: 300, when: "grade == 'A'"}}
  - type: sum_of
    id: extras
    policies:
      - {{type: formula, id: e1, amount: rating * 10}}
      - {{type: formula, id: e2, amount: "min(rating, 2) * 5"}}
  - type: modifier
    id: rated
    of: [accel, best]
    measure: rating
    on_threshold: above
    bands: [{{from: 0, factor: 0.9}}, {{from: 3, factor: 1}}, {{from: 5, factor: 1.1, add: 50}}]
  - {{type: cap, id: cap_best, limit: 2000, of: best}}
  - {{type: cap, id: ceiling, limit: "{limit} + sales * 0"}}
""")
    records = [{"payee": "a", "period": "2026-05", "attributes": {"grade": grade},
                "metrics": {"sales": D(sales), "target": D(target), "rating": rating}},
               {"payee": "b", "period": "2026-05", "attributes": {"grade": "B"},
                "metrics": {"sales": D(1000), "target": D(800), "rating": 3}}]
    fast, slow = both(plan, records)
    assert fast == slow


@pytest.mark.parametrize("default", [None, "1000"])
def test_base_pay_lookups_are_identical_both_ways(default: str | None) -> None:
    """The table lookup a kernel writes out: two keys, a number as a key, a key the
    table lacks (its default, or the error naming the key), a missing attribute."""
    plan = load_plan(f"""
name: base
inputs:
  attributes:
    grade: {{allowed: [A, B, C]}}
    level: {{type: number}}
    site: {{default: hq}}
policies:
  - type: base_pay
    id: base
    by: [grade, level]
    table: {{A: {{"1": 3000, "2": 3500}}, B: {{"1": 2000}}}}
    {"default: " + default if default else ""}
  - type: base_pay
    id: allowance
    by: [site]
    table: {{hq: 100, branch: 80}}
""")
    records = [{"payee": p, "period": "2026-05", "attributes": a} for p, a in [
        ("a", {"grade": "A", "level": 2}), ("b", {"grade": "B", "level": D("1")}),
        ("c", {"grade": "C", "level": 1, "site": "branch"}), ("d", {"grade": "A", "level": 3}),
        ("e", {"grade": "B", "level": D("1.0")})]]
    fast, slow = both(plan, records)
    assert fast == slow
    assert ("no base pay" in " ".join(fast[1])) == (default is None)


def test_an_amount_that_rounds_to_zero_is_never_minus_zero() -> None:
    """A payee line (kernel or not) and a team line that round to zero from below."""
    plan = load_plan("""
name: zeros
inputs: {metrics: {x: {}}}
policies:
  - {type: formula, id: tiny, amount: "-x / 1000"}
  - {type: contest, id: c, score: x, prizes: [0], ties: share}
  - {type: floor, id: f, amount: "-1"}
""")
    records = [{"payee": p, "period": "2026-05", "group": "g", "metrics": {"x": D(v)}}
               for p, v in [("a", "4"), ("b", "2")]]
    fast, slow = both(plan, records)
    assert fast == slow
    assert '"amount": "-0' not in fast[0]
    assert '"total": "-0' not in fast[0]
    run = plan.evaluate(records)
    assert [str(line.amount) for line in run["a"].lines] == ["0.00", "0.00", "0.00"]
