"""Synthetic populations fit every bundled plan: ``incentives simulate --synthetic`` pays
every record, and ``synthetic`` keeps to everything a plan declares."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import UsageError, load_plan
from incentives.plan import Plan
from incentives.populations import synthetic

ROOT = Path(__file__).resolve().parent.parent
D = Decimal


def _bundled_plans() -> list[Path]:
    """Every plan under examples/: a YAML file whose top level has ``policies``."""
    found = []
    for path in sorted((ROOT / "examples").glob("**/*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "policies" in data and "transactions" not in data:
            found.append(path)  # plans paid from transactions: tests/test_transactions_e2e.py
    return found


def test_simulate_refuses_a_plan_paid_from_transactions(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("simulate", ROOT / "examples/transactions/plan.yaml", "--synthetic", "10",
              "--out", tmp_path / "report")
    assert res.code == 2
    assert "simulate does not read transactions yet" in res.err
    assert "Traceback" not in res.err


PLANS = _bundled_plans()
IDS = [str(p.relative_to(ROOT / "examples")) for p in PLANS]


def test_every_bundled_plan_is_found() -> None:
    assert {"telecom/plan.yaml", "bank/plan.yaml", "tobacco/plan.yaml",
            "telecom/plan-ledger.yaml", "audit/cliff-plan.yaml"} <= set(IDS)


@pytest.mark.parametrize("path", PLANS, ids=IDS)
@pytest.mark.parametrize("seed", [0, 3, 7])
def test_simulate_synthetic_pays_every_record_of_every_bundled_plan(
        path: Path, seed: int, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    res = cli("simulate", path, "--synthetic", "120", "--seed", seed, "--out", out,
              "--no-progress")
    assert res.code == 0, res.out + res.err
    assert "could not be evaluated" not in res.out
    assert "error" not in res.err
    assert "Records not evaluated" not in (out / "report.md").read_text(encoding="utf-8")
    rows = (out / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].split(",")[:2] == ["baseline", "120"]


@pytest.mark.parametrize("path", PLANS, ids=IDS)
@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=0, max_value=40), seed=st.integers(min_value=0, max_value=2**32),
       groups=st.integers(min_value=1, max_value=6))
def test_synthetic_records_are_all_accepted(path: Path, n: int, seed: int, groups: int) -> None:
    plan = _load(path)
    people = synthetic(plan, n, seed=seed, groups=groups)
    assert people == synthetic(plan, n, seed=seed, groups=groups)  # the seed decides it all
    run = plan.evaluate(people, errors="raise")
    assert len(run) == n
    _fits_declarations(plan, people)


_CACHE: dict[Path, Plan] = {}


def _load(path: Path) -> Plan:
    if path not in _CACHE:
        _CACHE[path] = load_plan(path)
    return _CACHE[path]


def _fits_declarations(plan: Plan, people: list[dict[str, object]]) -> None:
    inputs = plan.inputs
    for r in people:
        metrics = r["metrics"]
        assert isinstance(metrics, dict)
        assert set(metrics) == set(inputs.metrics)
        for name, spec in inputs.metrics.items():
            v = metrics[name]
            assert isinstance(v, Decimal)
            if spec.integer:
                assert v == v.to_integral_value(), (name, v)
            assert spec.min is None or v >= spec.min, (name, v)
            assert spec.max is None or v <= spec.max, (name, v)
        attributes = r.get("attributes", {})
        assert isinstance(attributes, dict)
        for name, aspec in inputs.attributes.items():
            if aspec.allowed is not None:
                assert attributes[name] in aspec.allowed
        if inputs.groups is not None:
            assert r["group"] in inputs.groups


# ---------------------------------------------------------------- what was failing


def test_tobacco_has_one_head_per_branch_and_every_record_is_paid() -> None:
    plan = load_plan(ROOT / "examples/tobacco/plan.yaml")
    people = synthetic(plan, 200, seed=3)
    heads = Counter(r["group"] for r in people if r["attributes"]["role"] == "head")
    assert heads == {"g1": 1, "g2": 1, "g3": 1, "g4": 1}
    # the head of each branch is its first payee; everyone else is a manager
    assert [r["payee"] for r in people if r["attributes"]["role"] == "head"] == [
        "p001", "p002", "p003", "p004"]
    run = plan.evaluate(people, errors="raise")
    assert all(run[f"p00{i}"].amount("head_bonus") > 0 for i in range(1, 5))
    # a branch of one has no head (a head alone has no team to be paid on)
    alone = synthetic(plan, 3, seed=3, groups=4)
    assert [r["attributes"]["role"] for r in alone] == ["manager"] * 3
    assert plan.evaluate(alone, errors="raise").ok


def test_telecom_counts_are_whole_in_the_report_too(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    # seed 3 gave a median of 0.5 fax sales for the pay curve: "must be a whole number"
    pytest.importorskip("matplotlib")
    res = cli("simulate", ROOT / "examples/telecom/plan.yaml", "--synthetic", "200",
              "--seed", "3", "--out", tmp_path / "r", "--no-progress")
    assert res.code == 0, res.err
    # nothing on stderr but, on a machine with no CJK font, one note for the Chinese labels
    assert [line for line in res.err.splitlines()
            if not line.startswith("note: ") or "CJK font" not in line] == []
    assert len(res.err.splitlines()) <= 1
    assert (tmp_path / "r/pay_curve.png").is_file()


def test_the_cliff_plan_revenue_stays_under_its_maximum() -> None:
    plan = load_plan(ROOT / "examples/audit/cliff-plan.yaml")
    people = synthetic(plan, 2000, seed=0)
    revenue = [r["metrics"]["revenue"] for r in people]
    assert max(revenue) == D(200000)  # the log-normal tail is held at the declared max
    assert min(revenue) >= 0
    assert plan.evaluate(people, errors="raise").ok


# ---------------------------------------------------------------- declarations


DECLARED = """
name: declared
inputs:
  groups: [north, south, east]
  metrics:
    revenue: {min: 1000, max: 90000, integer: true}
    visits: {integer: true, min: 2.5, max: 4.5}
    score: {min: 0.5, max: 0.75}
  attributes:
    level: {type: number, integer: true, min: 1.5, max: 3.5}
    ratio: {type: number, min: 0.25, max: 0.5}
    lead: {type: bool}
    title: {type: text}
  events:
    deals:
      fields: {id: text, amount: number, closed: date, big: bool, note: text}
      optional: [note]
policies:
  - {type: formula, id: commission, amount: "revenue * 0.01 + visits / score"}
  - type: leader_bonus
    id: chief
    leader: "title in ('chief', 'boss') and lead"
    aggregates: {team_revenue: {sum: revenue}}
    amount: team_revenue * 0.001
  - type: leader_bonus
    id: regional
    across: population
    leader: "level == 3"
    aggregates: {all_revenue: {mean: revenue}}
    amount: all_revenue * 0.01
"""


def test_synthetic_keeps_to_every_declaration() -> None:
    plan = load_plan(DECLARED)
    people = synthetic(plan, 90, seed=5, events={"deals": 2})
    _fits_declarations(plan, people)
    assert Counter(r["group"] for r in people) == {"north": 30, "south": 30, "east": 30}
    assert {r["metrics"]["visits"] for r in people} <= {D(3), D(4)}
    assert {r["attributes"]["level"] for r in people} <= {D(2), D(3)}
    assert all(D("0.25") <= r["attributes"]["ratio"] <= D("0.5") for r in people)
    # one chief per group, one regional leader in the whole population
    chiefs = Counter(r["group"] for r in people
                     if r["attributes"]["title"] in ("chief", "boss") and r["attributes"]["lead"])
    assert chiefs == {"north": 1, "south": 1, "east": 1}
    assert sum(r["attributes"]["level"] == 3 for r in people) == 1
    deals = [d for r in people for d in r.get("events", {}).get("deals", [])]
    assert deals
    for d in deals:
        assert isinstance(d["amount"], Decimal)
        assert isinstance(d["big"], bool)
        assert d["closed"].startswith("2026-05")
    assert any("note" not in d for d in deals)
    run = plan.evaluate(people, errors="raise")
    assert len(run) == 90
    assert sum(1 for r in run.results if r.amount("regional") > 0) == 1


def test_declared_groups_are_the_default_and_the_only_ones() -> None:
    plan = load_plan(DECLARED)
    assert [r["group"] for r in synthetic(plan, 4, groups=2)] == ["north", "south"] * 2
    with pytest.raises(UsageError, match="no group 'west'"):
        synthetic(plan, 4, groups=["north", "west"])
    with pytest.raises(UsageError, match="declares 3 group"):
        synthetic(plan, 4, groups=5)


def test_no_whole_number_between_the_bounds_is_a_usage_error() -> None:
    plan = load_plan("""
name: impossible
inputs:
  metrics: {sales: {min: 0}, count: {integer: true, min: 1.2, max: 1.8}}
policies:
  - {type: formula, id: pay, amount: sales * 0.1}
""")
    with pytest.raises(UsageError, match=r"no whole number lies between the declared min 1\.2 "
                                         r"and max 1\.8"):
        synthetic(plan, 1)


def test_two_leader_bonuses_on_one_attribute_each_get_their_own_leader() -> None:
    plan = load_plan("""
name: two-leaders
inputs:
  metrics: {sales: {min: 0}}
  attributes: {role: {allowed: [member, head, deputy]}}
policies:
  - {type: formula, id: commission, amount: sales * 0.01}
  - type: leader_bonus
    id: head_bonus
    leader: role == 'head'
    aggregates: {team_sales: {sum: sales}}
    amount: team_sales * 0.002
  - type: leader_bonus
    id: deputy_bonus
    leader: role == 'deputy'
    aggregates: {team_sales: {sum: sales}}
    amount: team_sales * 0.001
""")
    for seed in range(5):
        people = synthetic(plan, 40, seed=seed, groups=4)
        roles = Counter((r["group"], r["attributes"]["role"]) for r in people)
        for g in ("g1", "g2", "g3", "g4"):
            assert roles[(g, "head")] == 1
            assert roles[(g, "deputy")] == 1
            assert roles[(g, "member")] == 8
        run = plan.evaluate(people, errors="raise")
        assert sum(r.amount("head_bonus") > 0 for r in run.results) == 4
        assert sum(r.amount("deputy_bonus") > 0 for r in run.results) == 4


@pytest.mark.parametrize(("bounds", "low", "high"), [
    ("{min: 0, max: 100}", D(0), D(100)),
    ("{min: 10, max: 20, integer: true}", D(10), D(20)),
    ("{min: 100000000}", D(100000000), None),
])
def test_a_revenue_range_off_the_money_scale_is_spread_over_not_cut_to_one_value(
        bounds: str, low: Decimal, high: Decimal | None) -> None:
    """A revenue declared 0..100 (a score, say) was drawn around 25,000-110,000 and cut
    to its max: every payee had 100, and a simulation said nothing. The draws are
    moved into the declared range instead."""
    plan = load_plan(f"""
name: scaled
inputs:
  metrics:
    revenue: {bounds}
policies:
  - {{type: formula, id: bonus, amount: revenue}}
""")
    people = synthetic(plan, 500, seed=1)
    revenue = [r["metrics"]["revenue"] for r in people]
    assert min(revenue) >= low
    assert high is None or max(revenue) <= high
    assert len(set(revenue)) >= (10 if high == D(20) else 400)
    assert Counter(revenue).most_common(1)[0][1] <= (250 if high == D(20) else 25)
    assert plan.evaluate(people, errors="raise").ok
