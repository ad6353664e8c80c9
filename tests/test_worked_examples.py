"""The worked examples of WORKED-EXAMPLES.md (E1, E2, E9), to the cent, via API and CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from incentives import load_plan, read_records_file

D = Decimal


def _run(example: Path, plan: str, records: str):  # type: ignore[no-untyped-def]
    return load_plan(example / plan).evaluate(read_records_file(example / records))


# ---------------------------------------------------------------------- E1

E1 = {
    "X": {"commission": D("1400.00"), "new_business": D("180.00"),
          "churn_penalty": D("-632.00"), "floor": D("0.00"), "total": D("948.00")},
    "Y": {"commission": D("200.00"), "new_business": D("0.00"),
          "churn_penalty": D("0.00"), "floor": D("500.00"), "total": D("700.00")},
    "Z": {"commission": D("3800.00"), "new_business": D("260.00"),
          "churn_penalty": D("0.00"), "floor": D("0.00"), "total": D("4060.00")},
}


@pytest.mark.parametrize("payee", sorted(E1))
def test_e1_telecom_api(examples: Path, payee: str) -> None:
    run = _run(examples / "telecom", "plan.yaml", "records.jsonl")
    result = run[payee]
    expected = E1[payee]
    for policy, amount in expected.items():
        if policy == "total":
            assert result.total == amount
        else:
            assert result.amount(policy) == amount, policy
    assert result.total == sum(line.amount for line in result.lines)


def test_e1_penalty_is_capped_at_40_percent_of_variable_pay(examples: Path) -> None:
    run = _run(examples / "telecom", "plan.yaml", "records.jsonl")
    line = run["X"].line("churn_penalty")
    assert line.details["uncapped"] == D("1500.0")
    assert line.details["cap"] == D("632.000")  # 40% of 1,580
    assert run["X"].values["variable_pay"] == D("1580.00")
    z = run["Z"].line("churn_penalty").details["customers"]
    assert z == [{"id": "c-12", "reason": "closure", "amount": D(0), "exempt": True}]


def test_e1_telecom_cli_json(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
              "--format", "json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    totals = {r["payee"]: r["total"] for r in data["results"]}
    assert totals == {"X": "948.00", "Y": "700.00", "Z": "4060.00"}
    x = next(r for r in data["results"] if r["payee"] == "X")
    assert [(li["id"], li["amount"]) for li in x["lines"]] == [
        ("commission", "1400.00"), ("new_business", "180.00"),
        ("churn_penalty", "-632.00"), ("floor", "0.00")]
    assert data["errors"] == []
    assert data["plan"] == {"name": "telecom-key-account", "version": "2026.1"}


# ---------------------------------------------------------------------- E2 and E9


def test_e2_scorecard_api(examples: Path) -> None:
    run = _run(examples / "bank", "plan.yaml", "records.json")
    p, q = run["P"], run["Q"]
    assert p.values["kpi_bonus_score"] == D("97.2")
    assert p.amount("kpi_bonus") == D("3888.00")
    assert q.line("kpi_bonus").details["score"] == D("54")
    assert q.amount("kpi_bonus") == D("0.00")
    assert "gate" in q.line("kpi_bonus").details["gate_failed"]


def test_e9_proration_api(examples: Path) -> None:
    run = _run(examples / "bank", "plan.yaml", "records.json")
    # Q: contract, grade C, 3,000 base, 20 of May's 31 days
    assert run["Q"].amount("base") == D("1935.48")
    assert run["Q"].total == D("1935.48")
    assert run["P"].amount("base") == D("5000.00")
    assert run["P"].total == D("8888.00")


def test_e2_e9_cli_csv(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run", examples / "bank/plan.yaml", examples / "bank/records.json",
              "--format", "csv")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0] == "payee,period,group,base,kpi_bonus,total,titles,flags"
    assert lines[1] == "P,2026-05,gulou-branch,5000.00,3888.00,8888.00,,"
    assert lines[2] == "Q,2026-05,gulou-branch,1935.48,0.00,1935.48,,"


def test_e9_proration_standalone() -> None:
    plan = load_plan(
        """
name: e9
inputs:
  attributes:
    days_worked: {type: number}
policies:
  - {type: base_pay, id: base, amount: 3000, prorate: days_worked / period_days}
"""
    )
    run = plan.evaluate([{"payee": "c", "period": "2026-05",
                          "attributes": {"days_worked": 20}}])
    assert run["c"].total == D("1935.48")
