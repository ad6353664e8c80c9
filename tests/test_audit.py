"""`incentives audit`: declared invariants checked with hypothesis; a broken one prints
a shrunk counterexample that reproduces by hand (issue 7)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from incentives import load_plan
from incentives.testing.audit import GENERIC, audit_plan

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
TELECOM = ROOT / "examples/telecom/plan.yaml"
CLIFF = ROOT / "examples/audit/cliff-plan.yaml"


def _records(text: str) -> list[dict[str, Any]]:
    """The JSON records printed under 'records:' in an audit report."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "records:")
    out = []
    for line in lines[start + 1:]:
        if not line.strip().startswith("{"):
            break
        out.append(json.loads(line))
    return out


def test_audit_of_a_plan_that_keeps_its_invariants_exits_0(cli: Any) -> None:
    res = cli("audit", TELECOM, "--examples", "15", "--seed", "3")
    assert res.code == 0, res.out + res.err
    lines = res.out.splitlines()
    assert lines[0] == (f"audit of {TELECOM}: plan 'telecom-key-account' version 2026.1, "
                        "seed 3")
    assert lines[1:-1] == [
        "ok      monotone(metric=traffic_revenue)  (15 examples)",
        "ok      monotone(metric=new_ipvpn)  (15 examples)",
        "ok      no_cliff(metric=traffic_revenue, max_jump=1, step=1)  (15 examples)",
        "ok      floor_holds  (15 examples)",
        "ok      total_is_sum_of_lines  (15 examples)",
        "ok      order_independent  (15 examples)",
        "ok      equal_treatment  (15 examples)",
        "ok      deterministic  (15 examples)",
    ]
    assert lines[-1] == "8 held, 0 broken"


def test_audit_finds_the_cliff_and_the_counterexample_reproduces_by_hand(cli: Any) -> None:
    res = cli("audit", CLIFF, "--examples", "60", "--seed", "0")
    assert res.code == 1, res.out + res.err
    assert "ok      monotone(metric=revenue)  (60 examples)" in res.out
    assert "BROKEN  no_cliff(metric=revenue, max_jump=50, step=1)" in res.out
    assert res.out.splitlines()[-1] == "1 held, 1 broken"
    # shrunk: one payee, one record
    records = _records(res.out)
    assert len(records) == 1
    (record,) = records
    revenue = D(record["metrics"]["revenue"])
    # re-run by hand: the record as printed, and one unit of revenue more
    plan = load_plan(CLIFF)
    before = plan.evaluate([record])[record["payee"]].total
    raised = {**record, "metrics": {"revenue": str(revenue + 1)}}
    after = plan.evaluate([raised])[record["payee"]].total
    assert after - before > D(50)
    # the cliff is a tier threshold (30,000 or 80,000)
    assert any(revenue < D(t) <= revenue + 1 for t in (30000, 80000))
    assert f"total {before} = commission {before}" in res.out
    assert f"total {after} = commission {after}" in res.out
    assert f"changes by {after - before} (more than 50)" in res.out


def test_the_same_seed_finds_the_same_counterexample() -> None:
    plan = load_plan(CLIFF)
    cliff = [plan.invariants[1]]
    first = audit_plan(plan, examples=20, seed=7, specs=cliff)
    second = audit_plan(plan, examples=20, seed=7, specs=cliff)
    assert not first[0].holds
    assert first[0].report() == second[0].report()


def test_a_plan_without_declared_invariants_is_audited_for_the_generic_ones(
        tmp_path: Path, cli: Any) -> None:
    plan = tmp_path / "plain.yaml"
    plan.write_text("""
name: plain
inputs: {metrics: {sales: {min: 0}}}
policies:
  - {type: formula, id: commission, amount: sales * 0.05}
  - {type: floor, id: floor, amount: 300}
""", encoding="utf-8")
    res = cli("audit", plan, "--examples", "10")
    assert res.code == 0, res.out + res.err
    assert "the plan declares no invariants" in res.out
    assert res.out.splitlines()[-1] == f"{len(GENERIC)} held, 0 broken"


def test_a_plan_that_fails_on_valid_records_is_a_finding(tmp_path: Path, cli: Any) -> None:
    plan = tmp_path / "divides.yaml"
    plan.write_text("""
name: divides
inputs: {metrics: {sales: {min: 0}, target: {min: 0}}}
policies:
  - {type: formula, id: commission, amount: sales / target * 100}
invariants:
  - {type: monotone, metric: sales}
""", encoding="utf-8")
    res = cli("audit", plan, "--examples", "30")
    assert res.code == 1
    assert "BROKEN  monotone(metric=sales)" in res.out
    assert "the plan fails on these records" in res.out
    records = _records(res.out)
    assert D(records[0]["metrics"]["target"]) == 0


def test_audit_usage_errors_exit_2(tmp_path: Path, cli: Any) -> None:
    assert cli("audit", CLIFF, "--examples", "0").code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("""
name: bad
inputs: {metrics: {sales: {}}}
policies: [{type: formula, id: c, amount: sales}]
invariants:
  - {type: no_cliff, metric: sale, max_jump: 5}
""", encoding="utf-8")
    res = cli("audit", bad)
    assert res.code == 2
    assert "bad.yaml:6 invariants[0].metric: unknown metric 'sale'; did you mean 'sales'?" \
        in res.err


def test_audit_plan_api() -> None:
    findings = audit_plan(load_plan(CLIFF), examples=30, seed=1)
    assert [f.holds for f in findings] == [True, False]
    broken = findings[1].violation
    assert broken is not None
    assert broken.invariant == "no_cliff"
    assert broken.facts["jump"] > D(50)
