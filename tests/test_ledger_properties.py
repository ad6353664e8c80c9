"""Property tests of state across periods: draws balance, clawbacks are bounded,
period-by-period runs equal a continuous run, and a re-run is identical."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from incentives import Clawback, Floor, FormulaLine, Plan, State, load_plan

D = Decimal
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]

cents = st.integers(min_value=0, max_value=900_000).map(lambda c: D(c) / 100)


def draw_plan(limit: Decimal | None, forgive_on: dt.date | None) -> Plan:
    floor: dict[str, Any] = {"recoverable": True}
    if limit is not None:
        floor["recovery_limit"] = str(limit)
    if forgive_on is not None:
        floor["forgive_on"] = forgive_on
    return Plan(name="draw", inputs={"metrics": {"earned": {}},
                                     "attributes": {"left": {"type": "bool", "default": False}}},
                policies=[FormulaLine(id="earnings", amount="earned"),
                          Floor(id="draw", amount=2500, forgive_when="left", **floor)])


@given(
    earned=st.lists(cents, min_size=1, max_size=8),
    limit=st.none() | cents,
    forgive_on=st.none() | st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
    leaves=st.none() | st.integers(min_value=0, max_value=7),
)
def test_draw_paid_minus_earned_is_change_in_balance_plus_forgiven(
        earned: list[Decimal], limit: Decimal | None, forgive_on: dt.date | None,
        leaves: int | None) -> None:
    plan = draw_plan(limit, forgive_on)
    state = State.empty(plan)
    for i, amount in enumerate(earned):
        record = {"payee": "a", "period": MONTHS[i], "metrics": {"earned": str(amount)},
                  "attributes": {"left": i == leaves}}
        run = plan.evaluate([record], state=state)
        result = run["a"]
        opening, closing = state.balance("a", "draw"), run.state.balance("a", "draw")
        forgiven = result.line("draw").details["forgiven"]
        paid_minus_earned = result.total - result.amount("earnings")
        assert paid_minus_earned == (closing - opening) + forgiven
        assert closing >= 0
        assert forgiven >= 0
        assert result.total >= min(D(2500), amount)  # the floor holds
        if amount < 2500:
            assert result.total == D(2500)
        if limit is not None:
            assert -result.amount("draw") <= limit
        if i == leaves:
            assert closing == 0
        state = run.state


customer_ids = st.sampled_from(["c1", "c2", "c3"])
loss_days = st.integers(min_value=0, max_value=300)


@st.composite
def clawback_histories(draw: st.DrawFn) -> tuple[dict[str, Decimal], list[list[Any]]]:
    """Customers won on 2026-01-01 with a commission each; loss events over the months."""
    commissions = {c: draw(cents) for c in ("c1", "c2", "c3")}
    losses: list[list[Any]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=10))):
        losses.append([draw(customer_ids), draw(loss_days), draw(st.booleans())])
    return commissions, losses


@given(
    history=clawback_histories(),
    shares=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=3),
    holdback=st.none() | st.integers(min_value=0, max_value=100),
    from_ledger=st.booleans(),
)
def test_a_clawback_never_exceeds_what_was_earned_on_the_customer(
        history: tuple[dict[str, Decimal], list[list[Any]]], shares: list[int],
        holdback: int | None, from_ledger: bool) -> None:
    commissions, losses = history
    schedule = [{"within_days": 60 * (i + 1), "share": D(s) / 100}
                for i, s in enumerate(sorted(shares, reverse=True))]
    spec: dict[str, Any] = {"schedule": schedule}
    if from_ledger:
        spec.update(earned_events="won", earned_amount="commission", pay=holdback is not None,
                    holdback=None if holdback is None else D(holdback) / 100)
    else:
        spec.update(commission_field="commission")
    plan = Plan(name="cb", inputs={"events": {
        "won": {"fields": {"id": "text", "acquired": "date", "commission": "number"}},
        "lost": {"fields": {"id": "text", "acquired": "date", "lost": "date",
                            "commission": "number"}}}},
        policies=[Clawback(id="clawback", events="lost", **spec)])
    start = dt.date(2026, 1, 1)
    by_month: dict[str, list[dict[str, Any]]] = {}
    for cid, days, _ in losses:
        day = start + dt.timedelta(days=days)
        by_month.setdefault(f"{day.year}-{day.month:02d}", []).append(
            {"id": cid, "acquired": start.isoformat(), "lost": day.isoformat(),
             "commission": str(commissions[cid])})
    months = sorted({"2026-01", *by_month})
    records = []
    for m in months:
        events: dict[str, Any] = {"lost": by_month.get(m, [])}
        if m == "2026-01" and from_ledger:
            events["won"] = [{"id": c, "acquired": start.isoformat(), "commission": str(v)}
                             for c, v in commissions.items()]
        records.append({"payee": "a", "period": m, "events": events})
    run = plan.evaluate(records)
    clawed: dict[str, Decimal] = {}
    for result in run:
        for row in result.line("clawback").details["lost"]:
            assert row["amount"] <= 0
            clawed[row["id"]] = clawed.get(row["id"], D(0)) - row["amount"]
    for cid, amount in clawed.items():
        assert amount <= commissions[cid], (cid, amount)
    if from_ledger and holdback is not None:
        # what is paid on a customer, net of clawbacks, is never negative in total
        assert run.total >= 0
        assert run.total == sum(commissions.values()) - sum(clawed.values()) - sum(
            D(c["held"]) for c in run.state.payees.get("a", {}).get("clawback", {}).get(
                "customers", {}).values())


COMBINED = load_plan("""
name: combined
inputs:
  metrics:
    sales: {min: 0}
    bonus_base: {default: 0, min: 0}
  attributes:
    employed: {type: bool, default: true}
  events:
    won:
      fields: {id: text, acquired: date, commission: number}
    lost:
      fields: {id: text, value: number, reason: text, acquired: date, lost: date}
      optional: [acquired]
policies:
  - type: tiered
    id: commission
    basis: sales
    method: marginal
    tiers: [{from: 0, rate: 0.02}, {from: 30000, rate: 0.04}]
  - {type: formula, id: bonus, amount: bonus_base}
  - {type: deferral, id: deferred, of: bonus, share: 0.3, after: 2, condition: employed}
  - {type: accumulate, id: ytd_sales, of: sales, over: quarter}
  - {type: value, id: variable_pay, value: commission + bonus}
  - type: churn_penalty
    id: penalty
    events: lost
    per_customer: 1.5 * value
    exempt_reasons: [closure]
    cap: 0.4 * variable_pay
    above_cap: carry_forward
  - type: clawback
    id: clawback
    events: lost
    earned_events: won
    earned_amount: commission
    pay: true
    holdback: 0.2
    schedule: [{within_days: 60, share: 1}, {within_days: 120, share: 0.5}]
  - {type: floor, id: draw, amount: 1500, recoverable: true, recovery_limit: 400}
""")


@st.composite
def populations(draw: st.DrawFn) -> list[dict[str, Any]]:
    n_months = draw(st.integers(min_value=2, max_value=4))
    records = []
    serial = 0
    for payee in ("p1", "p2"):
        won: list[str] = []
        for m in range(n_months):
            if draw(st.integers(0, 4)) == 0:
                continue  # no record this month
            period = MONTHS[m]
            events: dict[str, Any] = {"won": [], "lost": []}
            for _ in range(draw(st.integers(0, 2))):
                serial += 1
                cid = f"c{serial}"
                won.append(cid)
                events["won"].append({"id": cid, "acquired": f"{period}-0{draw(st.integers(1, 9))}",
                                      "commission": str(draw(cents))})
            if won and draw(st.booleans()):
                cid = draw(st.sampled_from(won))
                events["lost"].append({"id": cid, "value": str(draw(cents)),
                                       "reason": draw(st.sampled_from(["competitor", "closure"])),
                                       "lost": f"{period}-2{draw(st.integers(0, 8))}"})
            records.append({"payee": payee, "period": period,
                            "metrics": {"sales": str(draw(cents) * 10),
                                        "bonus_base": str(draw(cents))},
                            "attributes": {"employed": draw(st.integers(0, 5)) > 0},
                            "events": events})
    return records


@given(populations())
def test_period_by_period_from_saved_state_equals_a_continuous_run(
        records: list[dict[str, Any]]) -> None:
    continuous = COMBINED.evaluate(records)
    state = State.empty(COMBINED)
    stepped: list[Any] = []
    for period in sorted({r["period"] for r in records}):
        month = [r for r in records if r["period"] == period]
        opening = State.from_json(state.to_json())  # through the file format
        run = COMBINED.evaluate(month, state=opening)
        rerun = COMBINED.evaluate(month, state=State.from_json(state.to_json()))
        assert rerun.to_json() == run.to_json()  # a re-run is identical
        assert rerun.state.to_json() == run.state.to_json()
        stepped += run.to_dict()["results"]
        state = run.state
    assert stepped == continuous.to_dict()["results"]
    assert state.to_json() == continuous.state.to_json()
    for result in continuous:
        assert result.total == sum(line.amount for line in result.lines)
