"""incentives.testing.strategies: records the plan accepts, house-style arguments,
and `import incentives` never importing hypothesis (issue 7)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from incentives import load_plan
from incentives.periods import parse_period
from incentives.testing.strategies import (
    near_landmarks,
    parameters,
    periods,
    plan_numbers,
    populations,
    records,
)

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
TELECOM = load_plan(ROOT / "examples/telecom/plan.yaml")
BANK = load_plan(ROOT / "examples/bank/plan.yaml")

#: A plan that declares every kind of input: bounded and negative metrics, whole
#: numbers, text / number / bool attributes with and without allowed values, event
#: lists with every field type and optional fields, quarters, dated parameters.
EVERYTHING = load_plan("""
name: everything
period: quarter
inputs:
  metrics:
    revenue: {min: 0}
    margin: {min: -500, max: 500}
    visits: {integer: true, min: 3, max: 40}
    bonus_points: {default: 0, integer: true}
  attributes:
    grade: {type: text, allowed: [A, B, C]}
    region: {type: text}
    seniority: {type: number, min: 0, max: 40, integer: true}
    level: {type: number, allowed: [1, 2, 3]}
    manager: {type: bool}
  events:
    deals:
      fields: {id: text, amount: number, closed: date, renewal: bool}
      optional: [renewal]
parameters:
  rate:
    values: {2026-07-01: 0.03, 2027-01-01: 0.035}
policies:
  - {type: formula, id: commission, amount: "revenue * rate + margin + visits + deals_count"}
  - {type: floor, id: floor, amount: 0, when: manager}
""")


def test_import_incentives_does_not_import_hypothesis() -> None:
    code = (
        "import sys\n"
        "import incentives, incentives.testing, incentives.testing.invariants\n"
        "import incentives.testing.cases, incentives.testing.audit\n"
        "from incentives.cli import build_parser\n"
        "build_parser()\n"
        "plan = incentives.load_plan('examples/telecom/plan.yaml')\n"
        "assert plan.invariants\n"
        "records = incentives.read_records_file('examples/telecom/records.jsonl')\n"
        "from incentives.testing import floor_holds\n"
        "assert floor_holds(plan, records) == 3\n"
        "print('hypothesis' in sys.modules, 'pytest' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False False"


def _accepted(plan: Any, rows: list[dict[str, Any]]) -> None:
    compiled = plan.compile()
    for raw in rows:
        compiled.reader.read(raw)  # raises RecordError if the plan refuses it
    run = plan.evaluate(rows)  # errors="raise": every record evaluates
    assert len(run) == len(rows)
    for r in run:
        assert r.total == sum((line.amount for line in r.lines), D(0))


@settings(max_examples=200)
@given(records(TELECOM))
def test_telecom_records_are_accepted(record: dict[str, Any]) -> None:
    assert record["period"] >= "2026-01"
    assert all(isinstance(v, Decimal) for v in record["metrics"].values())
    for name in ("new_400", "new_fax", "new_ipvpn"):
        value = record["metrics"][name]
        assert value == value.to_integral_value()
        assert value >= 0
    _accepted(TELECOM, [record])


@settings(max_examples=200)
@given(records(BANK))
def test_bank_records_are_accepted(record: dict[str, Any]) -> None:
    assert record["attributes"]["grade"] in ("A", "B", "C")
    assert D(0) <= record["attributes"]["days_worked"] <= D(31)
    assert D(0) <= record["metrics"]["evaluation"] <= D(100)
    _accepted(BANK, [record])


@settings(max_examples=100)
@given(populations(EVERYTHING, max_size=5))
def test_every_kind_of_input_is_generated_within_its_declaration(
        population: list[dict[str, Any]]) -> None:
    for r in population:
        m, a = r["metrics"], r["attributes"]
        assert D(-500) <= m["margin"] <= D(500)
        assert D(3) <= m["visits"] <= D(40)
        assert m["visits"] == m["visits"].to_integral_value()
        assert a["level"] in (D(1), D(2), D(3))
        assert isinstance(a["manager"], bool)
        assert a["seniority"] == a["seniority"].to_integral_value()
        start, end = parse_period(r["period"])
        assert "Q" in r["period"]
        assert start >= parse_period("2026-Q3")[0]  # the dated parameter starts then
        for deal in r["events"]["deals"]:
            assert set(deal) <= {"id", "amount", "closed", "renewal"}
            assert deal["closed"] <= end.isoformat()
    _accepted(EVERYTHING, population)


@given(populations(TELECOM, min_size=2, max_size=4, groups=["north", "south", "east"]))
def test_populations_are_one_period_of_distinct_payees(population: list[dict[str, Any]]) -> None:
    assert 2 <= len(population) <= 4
    assert [r["payee"] for r in population] == [f"p{i:02d}" for i in range(1, len(population) + 1)]
    assert len({r["period"] for r in population}) == 1
    assert {r["group"] for r in population} <= {"north", "south", "east"}


@given(records(TELECOM, payees="m-017", periods="2026-05", groups="fuzhou",
               metrics={"traffic_revenue": st.just(D("48000.50"))},
               event_fields={"lost_customers": {"reason": st.sampled_from(["closure"])}}))
def test_what_users_vary_is_taken_as_strategies_or_values(record: dict[str, Any]) -> None:
    assert (record["payee"], record["period"], record["group"]) == ("m-017", "2026-05", "fuzhou")
    assert record["metrics"]["traffic_revenue"] == D("48000.50")
    assert all(c["reason"] == "closure" for c in record["events"]["lost_customers"])
    run = TELECOM.evaluate([record])
    assert run["m-017"].amount("churn_penalty") == D("0.00")  # closures are exempt


def test_metric_values_lean_towards_the_plans_thresholds() -> None:
    # 29999.99 and 30000 sit on each side of a tier threshold: records() draws them
    # from the plan's own numbers, not by luck
    marks = plan_numbers(TELECOM)
    assert {D(30000), D(80000), D(700)} <= set(marks)
    spec = TELECOM.inputs.metrics["traffic_revenue"]
    near = near_landmarks(spec, marks, 2, D(0), D(1_000_000))
    assert {D("29999.99"), D("30000.00"), D("30000.01"), D("79999.99"), D("80000.00")} <= set(near)
    assert all(v == v.quantize(D("0.01")) and D(0) <= v <= D(1_000_000) for v in near)
    # bounds and whole numbers are kept: new_fax is an integer metric with min 0
    fax = near_landmarks(TELECOM.inputs.metrics["new_fax"], [D(0), D("0.5"), D(60)], 2,
                         D(0), D(100))
    assert fax == [D(0), D(1), D(2), D(59), D(60), D(61)]


@given(periods(kind="quarter", min_value="2026-02", max_value="2027-01"))
def test_periods_cover_the_range(period: str) -> None:
    assert period in ("2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4", "2027-Q1")


@given(parameters(TELECOM, {"floor_amount": (D(500), D(900)),
                            "churn_cap_share": [D("0.3"), D("0.4")]}))
def test_parameters_within_ranges_make_plan_variants(values: dict[str, Decimal]) -> None:
    assert D(500) <= values["floor_amount"] <= D(900)
    assert values["churn_cap_share"] in (D("0.3"), D("0.4"))
    variant = TELECOM.with_parameters(**values)
    run = variant.evaluate([{"payee": "y", "period": "2026-05",
                             "metrics": {"traffic_revenue": 0}}])
    assert run["y"].total == variant.rounding.round(values["floor_amount"])


@pytest.mark.parametrize(("make", "message"), [
    (lambda: records(TELECOM, metrics={"trafic_revenue": st.just(D(1))}),
     "did you mean 'traffic_revenue'"),
    (lambda: records(TELECOM, metrics={"traffic_revenue": 1.5}), "floats are not accepted"),
    (lambda: records(TELECOM, min_value=10, max_value=5), "above max_value"),
    (lambda: records(TELECOM, min_value=0.5), "never a float"),
    (lambda: records(TELECOM, event_fields={"lost": {}}), "no event list 'lost'"),
    (lambda: records(TELECOM, event_fields={"lost_customers": {"reasn": st.just("x")}}),
     "did you mean 'reason'"),
    (lambda: records(TELECOM, groups=[]), "non-empty list"),
    (lambda: records("plan.yaml"), "must be an incentives.Plan"),
    (lambda: populations(TELECOM, min_size=5, max_size=2), "min_size=5 is above max_size=2"),
    (lambda: populations(TELECOM, max_size=-1), "max_size=-1"),
    (lambda: populations(TELECOM, payees=st.just("a")), "use records()"),
    (lambda: populations(TELECOM, metrics={"nope": st.just(D(1))}), "no metric 'nope'"),
    (lambda: periods(kind="week"), "kind='week'"),
    (lambda: periods(min_value="2026-13"), "month 13 does not exist"),
    (lambda: periods(min_value="2027-01", max_value="2026-01"), "is after"),
    (lambda: parameters(TELECOM, {"floor_amont": (1, 2)}), "did you mean 'floor_amount'"),
    (lambda: parameters(TELECOM, {"floor_amount": (9, 2)}), "9 is above 2"),
    (lambda: parameters(TELECOM, {"floor_amount": "high"}), "must be (min_value, max_value)"),
    (lambda: parameters(TELECOM, {}), "non-empty mapping"),
])
def test_arguments_are_checked_when_the_strategy_is_made(make: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        make()
    assert message in str(info.value)
