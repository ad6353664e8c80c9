"""State across periods (issue 4): E6 draws, E7 clawbacks, E1's penalty carried, via API and CLI."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import (
    Clawback,
    Deferral,
    Floor,
    FormulaLine,
    Plan,
    PlanError,
    State,
    StateError,
    VersionedPlan,
    load_plan,
    read_records_file,
)
from incentives.ledger import correct, load_state_file, save_state_file, shift_period

D = Decimal

# ---------------------------------------------------------------------- E6


def e6_plan(**floor: Any) -> Plan:
    return Plan(name="e6", inputs={"metrics": {"earned": {}}, "attributes": {
        "status": {"default": "active"}}},
        policies=[FormulaLine(id="earnings", amount="earned"),
                  Floor(id="draw", amount=2500, recoverable=True, **floor)])


def e6_records(amounts: list[str], start: int = 1) -> list[dict[str, Any]]:
    return [{"payee": "a", "period": f"2026-{start + i:02d}", "metrics": {"earned": amt}}
            for i, amt in enumerate(amounts)]


E6_EARNED = ["1500", "3000", "4200"]
E6_PAID = [D("2500.00"), D("2500.00"), D("3700.00")]
E6_OWED = [D("1000.00"), D("500.00"), D("0")]


def test_e6_draw_continuous_run() -> None:
    run = e6_plan().evaluate(e6_records(E6_EARNED))
    assert [r.total for r in run] == E6_PAID
    assert [r.amount("draw") for r in run] == [D("1000.00"), D("-500.00"), D("-500.00")]
    assert [r.values["draw_balance"] for r in run] == E6_OWED
    assert run.get("a", "2026-02").line("draw").type == "draw_recovery"
    assert run.get("a", "2026-01").line("draw").details["top_up"] == D("1000.00")
    assert run.state.payees == {}  # nothing owed after month 3


def test_e6_draw_period_by_period_from_saved_state() -> None:
    plan = e6_plan()
    state = State.empty(plan)
    for i, record in enumerate(e6_records(E6_EARNED)):
        run = plan.evaluate([record], state=State.from_json(state.to_json()))
        assert run["a"].total == E6_PAID[i]
        assert run.state.balance("a", "draw") == E6_OWED[i]
        state = run.state
    assert state.periods == ["2026-01", "2026-02", "2026-03"]


def test_e6_recovery_limit_and_forgiveness() -> None:
    run = e6_plan(recovery_limit=300).evaluate(e6_records(E6_EARNED))
    assert [r.total for r in run] == [D("2500.00"), D("2700.00"), D("3900.00")]
    assert run.state.balance("a", "draw") == D("400.00")
    run = e6_plan(forgive_on="2026-02-15").evaluate(e6_records(E6_EARNED))
    # month 2 ends after the date: 500 repaid, the other 500 forgiven
    feb = run.get("a", "2026-02").line("draw").details
    assert (feb["recovery"], feb["forgiven"], feb["closing_balance"]) == (
        D("500.00"), D("500.00"), D(0))
    assert run.get("a", "2026-03").total == D("4200.00")
    leaver = e6_plan(forgive_when='status == "left"')
    records = e6_records(E6_EARNED[:2])
    records[1]["attributes"] = {"status": "left"}
    records[1]["metrics"] = {"earned": "2000"}
    run = leaver.evaluate(records)
    assert run.get("a", "2026-02").line("draw").details["forgiven"] == D("1500.00")
    assert run.state.payees == {}


def test_non_recoverable_floor_has_no_ledger() -> None:
    plan = Plan(name="f", inputs={"metrics": {"earned": {}}},
                policies=[FormulaLine(id="earnings", amount="earned"),
                          Floor(id="floor", amount=2500)])
    run = plan.evaluate(e6_records(E6_EARNED))
    assert [r.total for r in run] == [D("2500.00"), D("3000.00"), D("4200.00")]
    assert run.state.payees == {}


def test_draw_options_need_recoverable() -> None:
    with pytest.raises(ValueError, match="recovery_limit needs recoverable"):
        Floor(id="f", amount=1, recovery_limit=5)


E6_YAML = """
name: e6
version: "1"
inputs:
  metrics: {earned: {}}
policies:
  - {type: formula, id: earnings, amount: earned}
  - {type: floor, id: draw, amount: 2500, recoverable: true}
"""


def _write_month(tmp_path: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_e6_cli_with_state(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "e6.yaml"
    plan.write_text(E6_YAML, encoding="utf-8")
    state = tmp_path / "state.json"
    for i, record in enumerate(e6_records(E6_EARNED)):
        records = _write_month(tmp_path, f"m{i}.jsonl", [record])
        res = cli("run", plan, records, "--state", state, "--format", "json")
        assert res.code == 0, res.err
        data = json.loads(res.out)
        assert data["results"][0]["total"] == str(E6_PAID[i])
        saved = json.loads(state.read_text(encoding="utf-8"))
        assert saved["format"] == "incentives.state"
        assert saved["plan"] == {"name": "e6", "version": "1"}
        owed = saved["payees"].get("a", {}).get("draw", {}).get("balance", "0")
        assert D(owed) == E6_OWED[i]
    # the month is closed now: running it again against the new state is refused
    before = state.read_bytes()
    res = cli("run", plan, tmp_path / "m2.jsonl", "--state", state)
    assert res.code == 2
    assert "already closed" in res.err
    assert state.read_bytes() == before


# ---------------------------------------------------------------------- E7

E7_EVENTS = {"lost_customers": {"fields": {
    "id": "text", "acquired": "date", "lost": "date", "commission": "number",
    "reason": "text"}, "optional": ["commission", "acquired", "reason"]},
    "new_customers": {"fields": {"id": "text", "acquired": "date", "commission": "number"}}}
SCHEDULE = [{"within_days": 90, "share": 1}, {"within_days": 180, "share": "0.5"}]


def e7_plan(**clawback: Any) -> Plan:
    spec: dict[str, Any] = {"commission_field": "commission", "schedule": SCHEDULE}
    spec.update(clawback)
    return Plan(name="e7", inputs={"events": E7_EVENTS},
                policies=[Clawback(id="clawback", **spec)])


@pytest.mark.parametrize(("lost", "days", "expected"), [
    ("2026-04-15", 73, D("-400.00")),
    ("2026-06-20", 139, D("-200.00")),
    ("2026-09-01", 212, D("0.00")),
])
def test_e7_clawback_window_from_the_event(lost: str, days: int, expected: Decimal) -> None:
    event = {"id": "c-1", "acquired": "2026-02-01", "lost": lost, "commission": 400}
    run = e7_plan().evaluate([{"payee": "a", "period": lost[:7],
                               "events": {"lost_customers": [event]}}])
    assert run["a"].total == expected
    row = run["a"].line("clawback").details["lost"][0]
    assert row["days"] == days
    assert row["amount"] == expected
    assert row["source"] == "event"


def _acquired(period: str = "2026-02") -> dict[str, Any]:
    return {"payee": "a", "period": period, "events": {"new_customers": [
        {"id": "c-1", "acquired": "2026-02-01", "commission": 400}]}}


def _lost(day: str, **extra: Any) -> dict[str, Any]:
    return {"payee": "a", "period": day[:7], "events": {"lost_customers": [
        {"id": "c-1", "lost": day, **extra}]}}


@pytest.mark.parametrize(("lost", "expected"), [
    ("2026-04-15", D("-400.00")), ("2026-06-20", D("-200.00")), ("2026-09-01", D("0.00"))])
def test_e7_clawback_from_the_ledger(lost: str, expected: Decimal) -> None:
    plan = e7_plan(commission_field=None, earned_events="new_customers",
                   earned_amount="commission")
    feb = plan.evaluate([_acquired()])
    assert feb["a"].total == D("0.00")  # the commission is recorded, not paid, here
    customers = feb.state.payees["a"]["clawback"]["customers"]
    assert customers == {"c-1": {"earned": "400.00", "acquired": "2026-02-01",
                                 "clawed": "0", "held": "0"}}
    later = plan.evaluate([_lost(lost)], state=feb.state)
    assert later["a"].total == expected
    if lost < "2026-08":  # settled: kept until its window passes, so it is clawed only once
        assert later.state.payees["a"]["clawback"]["customers"]["c-1"] == {
            "earned": "400.00", "acquired": "2026-02-01", "clawed": str(-expected),
            "held": "0", "lost": lost}
        again = plan.evaluate([_lost("2026-08-03")], state=later.state)
        assert again["a"].total == D("0.00")
        assert again["a"].line("clawback").details["lost"][0]["note"] == (
            f"already lost on {lost}")
    else:  # lost after the window: nothing clawed and nothing kept
        assert "a" not in later.state.payees


def test_e7_clawback_never_twice_and_exempt_reasons() -> None:
    plan = e7_plan(exempt_reasons=["closure"])
    lost = {"id": "c-1", "acquired": "2026-02-01", "lost": "2026-04-15", "commission": 400,
            "reason": "closure"}
    run = plan.evaluate([{"payee": "a", "period": "2026-04",
                          "events": {"lost_customers": [lost]}}])
    assert run["a"].total == D("0.00")
    assert run["a"].line("clawback").details["lost"][0]["exempt"] is True


def test_e7_holdback_alternative() -> None:
    plan = e7_plan(commission_field=None, earned_events="new_customers",
                   earned_amount="commission", pay=True, holdback="0.25")
    feb = plan.evaluate([_acquired()])
    assert feb["a"].total == D("300.00")  # 400 earned, 100 held
    # kept past the window (180 days after 2026-02-01): the 100 is released
    sept = plan.evaluate([{"payee": "a", "period": "2026-09"}], state=feb.state)
    assert sept["a"].total == D("100.00")
    # lost at 139 days: 200 clawed, 100 of it from what was held, 100 from pay
    june = plan.evaluate([_lost("2026-06-20")], state=feb.state)
    assert june["a"].total == D("-100.00")
    row = june["a"].line("clawback").details["lost"][0]
    assert (row["amount"], row["from_held"]) == (D("-200.00"), D("100.00"))


E7_YAML = """
name: e7
inputs:
  events:
    new_customers:
      fields: {id: text, acquired: date, commission: number}
    lost_customers:
      fields: {id: text, lost: date, acquired: date}
      optional: [acquired]
policies:
  - type: clawback
    id: clawback
    earned_events: new_customers
    earned_amount: commission
    schedule: [{within_days: 90, share: 1}, {within_days: 180, share: 0.5}]
"""


@pytest.mark.parametrize(("lost", "expected"), [
    ("2026-04-15", "-400.00"), ("2026-06-20", "-200.00"), ("2026-09-01", "0.00")])
def test_e7_cli_with_state(tmp_path: Path, cli, lost: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "e7.yaml"
    plan.write_text(E7_YAML, encoding="utf-8")
    state = tmp_path / "state.json"
    res = cli("run", plan, _write_month(tmp_path, "feb.jsonl", [_acquired()]),
              "--state", state, "--format", "json")
    assert res.code == 0, res.err
    # the months between had no records: the gap is meant, and said so
    res = cli("run", plan, _write_month(tmp_path, "lost.jsonl", [_lost(lost)]),
              "--state", state, "--format", "json", "--allow-gap")
    assert res.code == 0, res.err
    assert json.loads(res.out)["results"][0]["total"] == expected
    assert json.loads(state.read_text())["closed"][1] == {
        "period": lost[:7], "plan_version": "1", "gap_after": "2026-02"}


# ---------------------------------------------------------------------- E1 across periods

TELECOM_MONTHS = ["records.jsonl", "records-2026-06.jsonl", "records-2026-07.jsonl"]
TELECOM_TOTALS = {
    "2026-05": {"X": "948.00", "Y": "700.00", "Z": "4060.00"},
    "2026-06": {"X": "1236.00", "Y": "700.00", "Z": "3440.00"},
    "2026-07": {"X": "700.00", "Y": "800.00", "Z": "3800.00"},
}


def _telecom_records(examples: Path) -> list[Any]:
    rows: list[Any] = []
    for name in TELECOM_MONTHS:
        rows += read_records_file(examples / "telecom" / name)
    return rows


def test_e1_penalty_carried_forward_api(examples: Path) -> None:
    plan = load_plan(examples / "telecom/plan-ledger.yaml")
    run = plan.evaluate(_telecom_records(examples))
    for period, totals in TELECOM_TOTALS.items():
        for payee, total in totals.items():
            assert run.get(payee, period).total == D(total), (payee, period)
    may, june, july = (run.get("X", p) for p in TELECOM_TOTALS)
    # May is E1 exactly: 1,500 due, capped at 40% of 1,580 = 632.00, 868.00 carried
    assert may.amount("churn_penalty") == D("-632.00")
    assert may.line("churn_penalty").details["carried_forward"] == D("868.00")
    # June: the 868.00 carried in, capped at 40% of 2,060 = 824.00, 44.00 carried on
    assert june.amount("churn_penalty") == D("-824.00")
    assert june.line("churn_penalty").details["carried_in"] == D("868.00")
    # July: 1,200 new + 44 carried, capped at 400.00; the 260 IP-VPN commission on
    # c-201 (won 2026-06-08, lost 2026-07-20, 42 days) is clawed back in full
    assert july.amount("churn_penalty") == D("-400.00")
    assert july.amount("clawback") == D("-260.00")
    assert july.amount("floor") == D("360.00")
    assert run.state.payees["X"]["churn_penalty"] == {"carried": "844.00"}
    assert run.state.payees["X"]["clawback"]["customers"]["c-201"]["clawed"] == "260.00"
    assert set(run.state.payees) == {"X"}


def test_e1_penalty_carried_forward_cli(examples: Path, tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "state.json"
    plan = examples / "telecom/plan-ledger.yaml"
    for name, (period, totals) in zip(TELECOM_MONTHS, TELECOM_TOTALS.items(), strict=True):
        res = cli("run", plan, examples / "telecom" / name, "--state", state,
                  "--format", "json")
        assert res.code == 0, res.err
        got = {r["payee"]: r["total"] for r in json.loads(res.out)["results"]}
        assert got == totals, period
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["payees"]["X"]["churn_penalty"] == {"carried": "844.00"}
    assert saved["payees"]["X"]["clawback"] == {"customers": {"c-201": {
        "acquired": "2026-06-08", "clawed": "260.00", "earned": "260.00", "held": "0",
        "lost": "2026-07-20"}}}
    assert [c["period"] for c in saved["closed"]] == list(TELECOM_TOTALS)


def test_e1_plain_plan_still_forgives_above_cap(examples: Path) -> None:
    run = load_plan(examples / "telecom/plan.yaml").evaluate(
        read_records_file(examples / "telecom/records.jsonl"))
    assert run["X"].line("churn_penalty").details["forgiven"] == D("868.000")
    assert run.state.payees == {}


# ---------------------------------------------------------------------- deferral


def test_deferral_paid_later_on_condition() -> None:
    plan = Plan(name="d", inputs={"metrics": {"bonus_base": {}},
                                  "attributes": {"employed": {"type": "bool", "default": True}}},
                policies=[FormulaLine(id="bonus", amount="bonus_base"),
                          Deferral(id="deferred", of="bonus", share="0.4", after=3,
                                   condition="employed")])
    records = [{"payee": p, "period": f"2026-{m:02d}", "metrics": {"bonus_base": b},
                "attributes": {"employed": not (p == "b" and m == 4)}}
               for p in ("a", "b") for m, b in [(1, 1000), (2, 0), (3, 0), (4, 0)]]
    run = plan.evaluate(records)
    assert run.get("a", "2026-01").total == D("600.00")
    assert run.get("a", "2026-04").total == D("400.00")
    assert run.get("b", "2026-04").total == D("0.00")
    assert run.get("b", "2026-04").line("deferred").details["forfeited"][0]["amount"] == D(
        "400.00")
    assert run.state.payees == {}
    jan = plan.evaluate(records[:1])
    assert jan.state.payees["a"]["deferred"] == {
        "pending": [{"from": "2026-01", "due": "2026-04", "amount": "400.00"}]}


def test_shift_period() -> None:
    assert shift_period("2026-12", 1) == "2027-01"
    assert shift_period("2026-Q4", 5) == "2028-Q1"


# ---------------------------------------------------------------------- aggregation


ANNUAL = """
name: annual
inputs:
  metrics: {sales: {}}
policies:
  - {type: period_quota, id: quota, target: 120000, over: year,
     weights: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}
  - {type: accumulate, id: ytd_sales, of: sales, over: year}
  - {type: accumulate, id: ytd_quota, of: quota, over: year}
  - {type: formula, id: monthly, amount: sales * 0.01}
  - type: formula
    id: annual_bonus
    when: ytd_sales_closing
    amount: "2000 if ytd_sales >= ytd_quota else 0"
"""


def test_annual_bonus_on_yearly_attainment() -> None:
    plan = load_plan(ANNUAL)
    records = [{"payee": "a", "period": f"2026-{m:02d}", "metrics": {"sales": 10500}}
               for m in range(1, 13)]
    run = plan.evaluate(records)
    dec = run.get("a", "2026-12")
    assert dec.values["ytd_sales"] == D("126000")
    assert dec.values["ytd_quota"] == D("120000.00")
    assert dec.amount("annual_bonus") == D("2000.00")
    assert run.get("a", "2026-11").amount("annual_bonus") == D("0")
    # the year resets
    jan = plan.evaluate([{"payee": "a", "period": "2027-01", "metrics": {"sales": 1}}],
                        state=run.state)
    assert jan["a"].values["ytd_sales"] == D("1")


# ---------------------------------------------------------------------- versions, corrections


def test_each_period_under_the_version_in_force() -> None:
    v1 = e6_plan()
    v2 = v1.replace_fields(version="2", effective_from="2026-03-01", policies=[
        FormulaLine(id="earnings", amount="earned"),
        Floor(id="draw", amount=3000, recoverable=True)])
    run = VersionedPlan([v2, v1]).evaluate(e6_records(E6_EARNED))
    # months 1-2 as E6; month 3 under v2: 4,200 - 3,000 = 1,200 above the floor repays 500
    assert [r.total for r in run] == E6_PAID
    assert run.get("a", "2026-03").line("draw").details["floor"] == D("3000")
    assert [c["plan_version"] for c in run.state.closed] == ["1", "1", "2"]


def test_correction_posts_adjustment_lines() -> None:
    plan = e6_plan()
    opening = State.empty(plan)
    jan = plan.evaluate(e6_records(["3000"]), state=opening)
    feb = plan.evaluate(e6_records(["3000"], start=2), state=jan.state)
    # January's earnings were really 3,200: 200 more, paid in March, January untouched
    fixed = correct(plan, e6_records(["3200"]), paid=jan, opening=opening, state=feb.state)
    march = plan.evaluate(e6_records(["3000"], start=3), state=fixed)
    adj = march["a"].line("adjustment")
    assert adj.amount == D("200.00")
    assert adj.details == {"period": "2026-01", "policy": "earnings", "paid": "3000.00",
                           "corrected": "3200.00"}
    assert march["a"].total == D("3200.00")
    assert "a" not in march.state.payees
    with pytest.raises(StateError, match="not closed"):
        correct(plan, e6_records(["1"], start=4), paid=jan, opening=feb.state,
                state=feb.state)


# ---------------------------------------------------------------------- refusing bad states


def test_state_refused_when_foreign_or_malformed(tmp_path: Path) -> None:
    plan = e6_plan()
    path = tmp_path / "s.json"
    cases = {
        "not json {": "not valid JSON",
        "[]": "not a state document",
        '{"format": "other"}': "not an incentives state document",
        '{"format": "incentives.state", "format_version": 9}': "version 9",
        json.dumps({**State("other").to_data()}): "belongs to plan 'other'",
        json.dumps({**State("e6").to_data(), "payees": {"a": {"draw": {"balance": 5}}}}):
            "malformed",
        '{"format": "incentives.state", "format_version": 1, "plan": {"name": "e6", '
        '"version": "1"}, "closed": [], "payees": {"a": {"draw": {"balance": 1.5}}}}':
            "decimal strings",
        json.dumps({**State("e6").to_data(), "payees": {"a": {"draw": {"balance": "-1"}}}}):
            "negative",
        json.dumps({**State("e6").to_data(), "closed": [{"period": "2026-13",
                                                         "plan_version": "1"}]}):
            "month 13",
    }
    for text, message in cases.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(StateError, match=message):
            load_state_file(path, plan)
    assert load_state_file(tmp_path / "missing.json", plan) == State("e6")


def test_cli_refuses_bad_state_and_leaves_it(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "e6.yaml"
    plan.write_text(E6_YAML, encoding="utf-8")
    records = _write_month(tmp_path, "m.jsonl", e6_records(["1500"]))
    state = tmp_path / "state.json"
    for text in ["{broken", json.dumps(State("someone-else").to_data())]:
        state.write_text(text, encoding="utf-8")
        res = cli("run", plan, records, "--state", state)
        assert res.code == 2
        assert res.err.startswith("error: ")
        assert str(state) in res.err
        assert state.read_text(encoding="utf-8") == text
    # a failed record: exit 1, and the state file is not replaced
    save_state_file(State("e6"), state)
    before = state.read_bytes()
    bad = _write_month(tmp_path, "bad.jsonl",
                       [{"payee": "a", "period": "2026-01", "metrics": {"earned": "x"}}])
    res = cli("run", plan, bad, "--state", state)
    assert res.code == 1
    assert "state not written" in res.err
    assert state.read_bytes() == before


def test_evaluate_never_changes_the_given_state() -> None:
    plan = e6_plan()
    start = plan.evaluate(e6_records(["1500"])).state
    snapshot = start.to_json()
    first = plan.evaluate(e6_records(["1000"], start=2), state=start)
    again = plan.evaluate(e6_records(["1000"], start=2), state=start)
    assert start.to_json() == snapshot
    assert first.to_json() == again.to_json()
    assert first.state.to_json() == again.state.to_json()
    assert first.state.balance("a", "draw") == D("2500.00")


REVIEW = """
name: review
inputs:
  metrics: {sales: {}}
policies:
  - {type: period_quota, id: quota, target: 30000, over: quarter}
  - {type: accumulate, id: qtd_sales, of: sales, over: quarter}
  - {type: accumulate, id: qtd_quota, of: quota, over: quarter}
  - {type: value, id: attainment, value: qtd_sales / qtd_quota}
  - type: ranking_flag
    id: bottom
    when: qtd_sales_closing
    flag: bottom of the quarter
    side: bottom
    count: 1
    keys: [attainment]
    cutoff_ties: include
"""


def test_quarterly_review_ranks_the_quarter_to_date() -> None:
    plan = load_plan(REVIEW)
    sales = {"a": [9000, 9000, 13000], "b": [12000, 2000, 11000], "c": [10000, 10000, 10000]}
    records = [{"payee": p, "period": f"2026-0{4 + i}", "group": "g", "metrics": {"sales": s}}
               for p, months in sales.items() for i, s in enumerate(months)]
    run = plan.evaluate(records)
    # the quarter is what counts: b led April but finishes on 25,000 of 30,000
    june = {p: run.get(p, "2026-06") for p in sales}
    assert {p: r.values["attainment"].quantize(D("0.0001")) for p, r in june.items()} == {
        "a": D("1.0333"), "b": D("0.8333"), "c": D("1.0000")}
    assert [p for p, r in june.items() if r.flags] == ["b"]
    assert not any(r.flags for r in run if r.period != "2026-06")


def test_correct_command_posts_adjustments_paid_next_run(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    plan = tmp_path / "e6.yaml"
    plan.write_text(E6_YAML, encoding="utf-8")
    opening, state = tmp_path / "opening.json", tmp_path / "state.json"
    save_state_file(State("e6"), opening)
    save_state_file(State("e6"), state)
    jan = _write_month(tmp_path, "jan.jsonl", e6_records(["3000"]))
    res = cli("run", plan, jan, "--state", state, "--format", "json",
              "--out", tmp_path / "paid.json")
    assert res.code == 0, res.err
    fixed = _write_month(tmp_path, "fixed.jsonl", e6_records(["3200"]))
    res = cli("correct", plan, fixed, "--paid", tmp_path / "paid.json", "--opening", opening,
              "--state", state)
    assert res.code == 0, res.err
    assert res.out == "a 2026-01 earnings: paid 3000.00, corrected 3200.00, adjustment 200.00\n"
    feb = _write_month(tmp_path, "feb.jsonl", e6_records(["3000"], start=2))
    res = cli("run", plan, feb, "--state", state, "--format", "json")
    assert res.code == 0, res.err
    result = json.loads(res.out)["results"][0]
    assert result["total"] == "3200.00"
    assert result["lines"][-1]["id"] == "adjustment"
    assert result["lines"][-1]["amount"] == "200.00"
    # a paid file that is not a run is refused, and the state is left alone
    before = state.read_bytes()
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    res = cli("correct", plan, fixed, "--paid", tmp_path / "bad.json", "--opening", opening,
              "--state", state)
    assert res.code == 2
    assert "not the JSON output" in res.err
    assert state.read_bytes() == before


@pytest.mark.parametrize(("period", "policy", "says"), [
    ("2026-04\n\nTotal: 99999.00", "earnings", "is not a period"),
    ("w needs k >= 1, but " * 50 + "x", "earnings", "is not a period"),
    ("2026-13", "earnings", "is not a period (YYYY-MM, YYYY-Qn or YYYY)"),
    ("2026-04", "earnings\x1b[31mRED", "is not a policy id"),
    ("2026-04", "earnings\u202e", "is not a policy id"),
    ("2026-04", 7, "is not a policy id"),
])
def test_a_state_files_adjustment_is_a_period_a_policy_and_an_amount(
        tmp_path: Path, cli, period: Any, policy: Any, says: str) -> None:  # type: ignore[no-untyped-def]
    # an adjustment's text goes onto statements: a hand-edited state file cannot forge a
    # line, send terminal escapes or nest sentences without end
    plan = tmp_path / "e6.yaml"
    plan.write_text(E6_YAML, encoding="utf-8")
    state = tmp_path / "state.json"
    save_state_file(State("e6"), state)
    data = json.loads(state.read_text(encoding="utf-8"))
    data.setdefault("payees", {})["a"] = {"_adjustments": [
        {"period": period, "policy": policy, "amount": "10.00"}]}
    state.write_text(json.dumps(data), encoding="utf-8")
    feb = _write_month(tmp_path, "feb.jsonl", e6_records(["3000"], start=2))
    res = cli("run", plan, feb, "--state", state, "--format", "json")
    assert res.code == 2
    assert res.out == ""
    assert says in res.err
    assert "_adjustments" in res.err
    assert len(res.err.splitlines()) == 1, res.err


# ---------------------------------------------------------------------- edges and errors


def test_versions_must_share_a_name_and_be_in_force() -> None:
    v1 = e6_plan().replace_fields(effective_from="2026-02-01")
    with pytest.raises(ValueError, match="share one name"):
        VersionedPlan([v1, v1.replace_fields(name="other", version="2")])
    with pytest.raises(ValueError, match="same date"):
        VersionedPlan([v1, v1.replace_fields(version="2")])
    with pytest.raises(StateError, match="no version of plan 'e6' is in force in 2026-01"):
        VersionedPlan([v1]).evaluate(e6_records(["1"]))


def test_state_as_json_data_and_wrong_types() -> None:
    plan = e6_plan()
    jan = plan.evaluate(e6_records(["1500"]))
    feb = plan.evaluate(e6_records(["3000"], start=2), state=jan.state.to_data())
    assert feb["a"].total == D("2500.00")
    with pytest.raises(StateError, match=r"must be an incentives\.ledger\.State"):
        plan.evaluate(e6_records(["1"]), state="state.json")
    with pytest.raises(StateError, match="belongs to plan 'x'"):
        plan.evaluate(e6_records(["1"]), state=State("x"))


def test_deferral_can_wait_for_its_condition() -> None:
    plan = Plan(name="w", inputs={"metrics": {"b": {"default": 0}, "attainment": {"default": 0}}},
                policies=[FormulaLine(id="bonus", amount="b"),
                          Deferral(id="later", of="bonus", share=1, after=1,
                                   condition="attainment >= 1", on_fail="wait")])
    run = plan.evaluate([
        {"payee": "a", "period": "2026-01", "metrics": {"b": 100}},
        {"payee": "a", "period": "2026-02", "metrics": {"attainment": "0.9"}},
        {"payee": "a", "period": "2026-03", "metrics": {"attainment": "1.1"}}])
    assert [r.total for r in run] == [D("0.00"), D("0.00"), D("100.00")]
    assert run.get("a", "2026-02").line("later").details["waiting"][0]["amount"] == D("100.00")


def test_accumulate_skipped_and_period_quota_errors() -> None:
    plan = load_plan("""
name: acc
inputs:
  metrics: {sales: {}}
policies:
  - {type: accumulate, id: qtd, of: sales, over: quarter, when: sales > 0}
  - {type: period_quota, id: q, target: 100, weights: [1, 2]}
""")
    run = plan.evaluate([{"payee": "a", "period": "2026-01", "metrics": {"sales": 5}},
                         {"payee": "a", "period": "2026-02", "metrics": {"sales": 0}}],
                        errors="collect")
    assert [str(e) for e in run.errors] == [
        "payee 'a' period 2026-01 policy 'q': period_quota 'q': 2 weights given, "
        "but a year has 12 months",
        "payee 'a' period 2026-02 policy 'q': period_quota 'q': 2 weights given, "
        "but a year has 12 months"]
    # a failed payee keeps its opening ledger: nothing accumulated
    assert run.state.payees == {}
    ok = plan.replace_policy("q", plan.policy("q").model_copy(update={"weights": None}))
    run = ok.evaluate([{"payee": "a", "period": "2026-01", "metrics": {"sales": 5}},
                       {"payee": "a", "period": "2026-02", "metrics": {"sales": 0}}])
    assert run.get("a", "2026-02").values["qtd"] == D("5")  # skipped: the sum so far
    assert run.get("a", "2026-02").values["q"] == D("8.34")  # 100 = 4 x 8.34 + 8 x 8.33


@pytest.mark.parametrize(("spec", "message"), [
    ({"schedule": SCHEDULE}, "say where the commission"),
    ({"schedule": SCHEDULE[::-1], "commission_field": "commission"}, "increasing within_days"),
    ({"schedule": SCHEDULE, "commission_field": "commission", "holdback": "0.2"},
     "holdback needs pay: true"),
    ({"schedule": SCHEDULE, "earned_events": "new_customers"}, "together"),
])
def test_clawback_spec_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Clawback(id="c", **spec)


def test_clawback_plan_errors_are_located() -> None:
    with pytest.raises(PlanError, match=r"lost_customers' has no field 'gone'") as info:
        load_plan(E7_YAML.replace("earned_amount: commission",
                                  "earned_amount: commission\n    lost_field: gone"))
    assert info.value.path == ("policies", 0, "lost_field")
    assert info.value.line == 15  # the line of lost_field
