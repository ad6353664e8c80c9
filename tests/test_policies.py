"""Each payee-scoped mechanism, with exact amounts."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from incentives import (
    BasePay,
    Cap,
    EvaluationError,
    Floor,
    FormulaLine,
    LargerOf,
    Modifier,
    Plan,
    PlanError,
    Quota,
    RateTable,
    Scorecard,
    SmallerOf,
    SumOf,
    Tiered,
    Value,
    load_plan,
)

D = Decimal


def _one(plan: Plan, **fields: object):  # type: ignore[no-untyped-def]
    record = {"payee": "a", "period": "2026-05", **fields}
    return plan.evaluate([record])["a"]


def _tiered(**kw: object) -> Plan:
    return Plan(name="t", inputs={"metrics": {"x": {}}},
                policies=[Tiered(id="c", basis="x", **kw)])  # type: ignore[arg-type]


TIERS = [{"from": 0, "rate": "0.02"}, {"from": 100, "rate": "0.04"}, {"from": 200, "rate": "0.06"}]
STEPS = [{"from": 0, "amount": 0}, {"from": 100, "amount": 50}, {"from": 200, "amount": 120}]


@pytest.mark.parametrize(
    ("method", "boundary", "x", "expected"),
    [
        ("marginal", None, "250", "9.00"),  # 100*.02 + 100*.04 + 50*.06
        ("marginal", None, "100", "2.00"),
        ("retroactive", "above", "100", "4.00"),  # on the threshold: the tier above
        ("retroactive", "below", "100", "2.00"),  # on the threshold: the tier below
        ("retroactive", "above", "99.99", "2.00"),
        ("retroactive", "below", "250", "15.00"),
    ],
)
def test_rate_methods_and_boundary(method: str, boundary: str | None, x: str,
                                   expected: str) -> None:
    plan = _tiered(method=method, on_threshold=boundary, tiers=TIERS)
    assert _one(plan, metrics={"x": x}).total == D(expected)


@pytest.mark.parametrize(
    ("boundary", "x", "expected"),
    [("above", "100", "50.00"), ("below", "100", "0.00"), ("above", "199", "50.00"),
     ("below", "200.01", "120.00"), ("above", "-5", "0.00")],
)
def test_step_amounts(boundary: str, x: str, expected: str) -> None:
    plan = _tiered(method="step", on_threshold=boundary, tiers=STEPS)
    assert _one(plan, metrics={"x": x}).total == D(expected)


def test_interpolated() -> None:
    plan = _tiered(method="interpolated", tiers=STEPS)
    assert _one(plan, metrics={"x": "150"}).total == D("85.00")  # 50 + 70 * 50/100
    assert _one(plan, metrics={"x": "300"}).total == D("120.00")


def test_accelerator_on_quota_attainment() -> None:
    plan = Plan(
        name="acc", inputs={"metrics": {"revenue": {}, "quota": {}}},
        policies=[Tiered(id="c", basis="revenue", scale="quota", method="marginal",
                         tiers=[{"from": 0, "rate": "0.05"}, {"from": 1, "rate": "0.08"},
                                {"from": "1.5", "rate": "0.10"}])],
    )
    # quota 10,000: 10,000 at 5% + 5,000 at 8% + 1,000 at 10%
    r = _one(plan, metrics={"revenue": 16000, "quota": 10000})
    assert r.total == D("1000.00")
    assert r.line("c").details["scale"] == D(10000)


def test_tier_cap_and_hints() -> None:
    plan = _tiered(method="marginal", tiers=TIERS, cap="3")
    r = _one(plan, metrics={"x": "150"})
    assert r.total == D("3.00")
    details = r.line("c").details
    assert details["capped"]["limit"] == D(3)
    assert details["capped"]["uncapped"] == D("4.00")
    assert details["to_next_tier"] == D(50)


def test_tier_method_and_boundary_must_be_stated() -> None:
    with pytest.raises(PlanError, match="method"):
        load_plan("name: t\ninputs: {metrics: {x: {}}}\npolicies:\n"
                  "  - {type: tiered, id: c, basis: x, tiers: [{from: 0, rate: 0.1}]}\n")
    with pytest.raises(ValueError, match="on_threshold"):
        _tiered(method="retroactive", tiers=TIERS)
    with pytest.raises(ValueError, match="increasing order"):
        _tiered(method="marginal", tiers=[{"from": 10, "rate": 1}, {"from": 5, "rate": 1}])
    with pytest.raises(ValueError, match="negative"):
        _tiered(method="marginal", tiers=[{"from": 0, "rate": "-0.1"}])


def test_base_pay_lookup_and_missing_key() -> None:
    plan = Plan(
        name="b", inputs={"attributes": {"grade": {}, "employment": {}}},
        policies=[BasePay(id="base", by=["grade", "employment"],
                          table={"A": {"staff": 5000, "contract": 4000}})],
    )
    assert _one(plan, attributes={"grade": "A", "employment": "contract"}).total == D("4000.00")
    with pytest.raises(EvaluationError, match="no base pay for grade='B'"):
        _one(plan, attributes={"grade": "B", "employment": "staff"})


def test_rate_table_with_formula_quantity() -> None:
    plan = Plan(
        name="r", inputs={"metrics": {"units": {}, "bonus_units": {"default": 0}}},
        policies=[RateTable(id="nb", items={
            "units": 10,
            "extra": {"quantity": "bonus_units * 2", "per_unit": "2.5", "label": "Extra"}})],
    )
    r = _one(plan, metrics={"units": 3, "bonus_units": 1})
    assert r.total == D("35.00")
    assert [i["item"] for i in r.line("nb").details["items"]] == ["units", "extra"]


def test_quota_input_and_group_split() -> None:
    plan = Plan(
        name="q", inputs={"metrics": {"revenue": {}, "target": {}, "weight": {"default": 1}}},
        policies=[Quota(id="q", actual="revenue", split={"target": "target", "weight": "weight"}),
                  FormulaLine(id="bonus", amount="1000 * min(q_attainment, 1.2)")],
    )
    recs = [{"payee": p, "period": "2026-05", "group": "g",
             "metrics": {"revenue": rev, "target": 1000, "weight": w}}
            for p, rev, w in (("a", 400, 1), ("b", 300, 1), ("c", 100, 1))]
    run = plan.evaluate(recs)
    quotas = [run[p].values["q"] for p in "abc"]
    assert quotas == [D("333.34"), D("333.33"), D("333.33")]
    assert sum(quotas) == D(1000)
    assert run["a"].total == D("1199.98")  # 1000 x 400 / 333.34
    assert run["c"].total == D("300.00")


def test_scorecard_payout_table_lower_is_better_and_kpi_gate() -> None:
    plan = Plan(
        name="s", inputs={"metrics": {"sales": {}, "complaints": {}}},
        policies=[Scorecard(
            id="sc", target_bonus=1000,
            kpis=[{"id": "sales", "actual": "sales", "target": 100, "weight": 70, "cap": "1.5"},
                  {"id": "complaints", "actual": "complaints", "target": 2, "weight": 30,
                   "direction": "lower", "cap": "1.2"}],
            gates=[{"kpi": "sales", "min_attainment": "0.5"}],
            payout=[{"score": 50, "percent": 0}, {"score": 100, "percent": 100},
                    {"score": 130, "percent": 150}],
        )],
    )
    r = _one(plan, metrics={"sales": 110, "complaints": 4})
    # 70 * 1.1 + 30 * 0.5 = 92 -> 0 + 100 * (92 - 50) / 50 = 84%
    assert r.values["sc_score"] == D("92.0")
    assert r.total == D("840.00")
    r = _one(plan, metrics={"sales": 200, "complaints": 0})  # 70*1.5 + 30*1.2 = 141
    assert r.total == D("1500.00")
    r = _one(plan, metrics={"sales": 40, "complaints": 0})
    assert r.total == D("0.00")
    assert "KPI sales" in r.line("sc").details["gate_failed"]


def test_scorecard_weights_must_add_up() -> None:
    with pytest.raises(ValueError, match="add up to 90"):
        Scorecard(id="s", target_bonus=1, kpis=[{"id": "k", "actual": 1, "target": 1,
                                                 "weight": 90}])


def test_modifier_bands() -> None:
    plan = Plan(
        name="m", inputs={"metrics": {"sales": {}, "evaluation": {}}},
        policies=[FormulaLine(id="commission", amount="sales * 0.1"),
                  Modifier(id="eval_band", of=["commission"], measure="evaluation",
                           on_threshold="above",
                           bands=[{"from": 0, "factor": "0.8"}, {"from": 80, "factor": 1},
                                  {"from": 95, "factor": "1.1", "add": 50}])],
    )
    assert _one(plan, metrics={"sales": 1000, "evaluation": 70}).total == D("80.00")
    assert _one(plan, metrics={"sales": 1000, "evaluation": 80}).total == D("100.00")
    assert _one(plan, metrics={"sales": 1000, "evaluation": 95}).total == D("160.00")


def test_cap_on_a_policy_and_floor_on_a_named_result() -> None:
    plan = Plan(
        name="c", inputs={"metrics": {"sales": {}}},
        policies=[FormulaLine(id="commission", amount="sales * 0.1"),
                  Cap(id="commission_cap", of="commission", limit=500),
                  Value(id="capped", value="commission + commission_cap"),
                  Floor(id="guarantee", of="capped", amount=200)],
    )
    assert _one(plan, metrics={"sales": 9000}).total == D("500.00")
    assert _one(plan, metrics={"sales": 1000}).total == D("200.00")


def test_composition_larger_smaller_sum_and_when() -> None:
    children = [FormulaLine(id="commission", amount="sales * 0.05"),
                FormulaLine(id="guarantee", amount=1000)]
    inputs = {"metrics": {"sales": {}}, "attributes": {"employment": {"default": "staff"}}}
    for cls, expected in ((LargerOf, "1500.00"), (SmallerOf, "1000.00"), (SumOf, "2500.00")):
        plan = Plan(name="c", inputs=inputs, policies=[cls(id="pay", policies=children)])
        r = _one(plan, metrics={"sales": 30000})
        assert r.total == D(expected)
        assert r.line("pay").details["children"] == {"commission": D("1500.00"),
                                                     "guarantee": D("1000.00")}
    plan = Plan(name="w", inputs=inputs, policies=[
        FormulaLine(id="commission", amount="sales * 0.05"),
        FormulaLine(id="contract_bonus", amount=100, when="employment == 'contract'"),
        FormulaLine(id="after", amount="contract_bonus * 2")])
    assert _one(plan, metrics={"sales": 1000}).total == D("50.00")
    assert _one(plan, metrics={"sales": 1000},
                attributes={"employment": "contract"}).total == D("350.00")


def test_plans_in_code_variants_and_yaml(tmp_path: Path) -> None:
    plan = Plan(name="v", inputs={"metrics": {"sales": {}}}, parameters={"rate": D("0.05")},
                policies=[FormulaLine(id="commission", amount="sales * rate")])
    higher = plan.with_parameters(rate=D("0.06"))
    assert _one(higher, metrics={"sales": 1000}).total == D("60.00")
    assert _one(plan, metrics={"sales": 1000}).total == D("50.00")
    floored = plan.with_policy(Floor(id="floor", amount=80))
    assert floored.policy_ids == ["commission", "floor"]
    assert _one(floored, metrics={"sales": 1000}).total == D("80.00")
    assert floored.without_policy("floor") == plan
    replaced = floored.replace_policy("floor", Floor(id="floor", amount=40))
    assert _one(replaced, metrics={"sales": 1000}).total == D("50.00")
    path = tmp_path / "plan.yaml"
    path.write_text(floored.to_yaml(), encoding="utf-8")
    assert load_plan(path) == floored
    with pytest.raises(KeyError, match="did you mean 'rate'"):
        plan.with_parameters(rat=1)


def test_dated_parameters_take_the_value_in_force() -> None:
    plan = load_plan("""
name: dated
inputs: {metrics: {sales: {}}}
parameters:
  rate:
    values: {2026-01-01: 0.02, 2026-07-01: 0.03}
policies:
  - {type: formula, id: commission, amount: sales * rate}
""")
    run = plan.evaluate([{"payee": "a", "period": "2026-06", "metrics": {"sales": 1000}},
                         {"payee": "a", "period": "2026-07", "metrics": {"sales": 1000}}])
    assert run.get("a", "2026-06").total == D("20.00")
    assert run.get("a", "2026-07").total == D("30.00")
    with pytest.raises(EvaluationError, match="no value before 2026-01-01"):
        plan.evaluate([{"payee": "a", "period": "2025-12", "metrics": {"sales": 1}}])


def test_division_by_zero_is_an_error_for_that_payee_only() -> None:
    plan = Plan(name="z", inputs={"metrics": {"sales": {}, "quota": {}}},
                policies=[FormulaLine(id="bonus", amount="100 * sales / quota")])
    run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": 1, "quota": 0}},
                         {"payee": "b", "period": "2026-05", "metrics": {"sales": 1, "quota": 2}}],
                        errors="collect")
    assert [r.payee for r in run] == ["b"]
    assert run.errors[0].payee == "a"
    assert "division by zero" in str(run.errors[0])
    assert "policy 'bonus'" in str(run.errors[0])


def test_rounding_modes() -> None:
    for mode, expected in (("half_up", "0.13"), ("half_even", "0.12")):
        plan = Plan(name="r", rounding={"mode": mode}, inputs={"metrics": {"x": {}}},
                    policies=[FormulaLine(id="f", amount="x")])
        assert _one(plan, metrics={"x": "0.125"}).total == D(expected)
    plan = Plan(name="r", rounding={"quantum": 1}, inputs={"metrics": {"x": {}}},
                policies=[FormulaLine(id="f", amount="x")])
    assert _one(plan, metrics={"x": "10.5"}).total == D("11")


def test_csv_records(tmp_path: Path, examples: Path) -> None:
    from incentives import read_records_file

    path = tmp_path / "records.csv"
    path.write_text("payee,period,group,traffic_revenue,new_fax\r\n"
                    "X,2026-05,g,50000,3\nY,2026-05,g,10000,\n", encoding="utf-8-sig")
    plan = load_plan(examples / "telecom/plan.yaml")
    run = plan.evaluate(read_records_file(path))
    assert run["X"].total == D("1580.00")
    assert run["Y"].total == D("700.00")


def test_plans_and_policies_built_in_python_refuse_bad_values_with_a_plan_error() -> None:
    from incentives import FormulaLine, Plan, PlanError, Tiered

    with pytest.raises(PlanError) as caught:
        FormulaLine(id="bonus", amont="sales * 0.1")
    assert caught.value.path == ("amont",)
    assert caught.value.suggestion == "did you mean 'amount'?"
    assert isinstance(caught.value, ValueError)  # as pydantic's errors were
    with pytest.raises(PlanError) as caught:
        Tiered(id="c", basis="sales", method="step", tiers=[{"from": 0, "rate": "0.02"}])
    assert str(caught.value) == "<plan>: tier 0: method 'step' needs 'amount' on every tier"
    with pytest.raises(PlanError) as caught:
        Plan(name="p", inputs={"metrics": {"sales": {}}},
             policies=[FormulaLine(id="bonus", amount="sales * 0.1")],
             invariants=[{"type": "no_cliff", "metric": "sale", "max_jump": 5}])
    assert caught.value.path == ("invariants", 0, "metric")
    assert str(caught.value) == ("<plan> invariants[0].metric: unknown metric 'sale'; "
                                 "did you mean 'sales'?")
