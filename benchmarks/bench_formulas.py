"""Formula-heavy plan: the library against hand-written Python and per-record re-parsing.

Run::

    python benchmarks/bench_formulas.py            # 20,000 payees
    BENCH_QUICK=1 python benchmarks/bench_formulas.py   # 4,000 payees, a few seconds

The plan has several ``formula`` and ``value`` policies, a marginal tiered
commission on a formula basis, a KPI scorecard with a payout table and a gate,
a negative formula line and a floor on the total. The same pay is computed
three ways over one seeded synthetic population:

- the library (``plan.evaluate(records)`` on raw record dicts, checks included);
- a hand-written Python program with Decimal (the pure-Python limit);
- the same formulas evaluated by simpleeval, re-parsed for every record.

The library and the hand-written program must agree to the cent on every line
of every payee (so must the re-parsing baseline); the script exits 1 if not.
The last two lines are ``ratio vs_handwritten <value>`` and ``ratio vs_reparse
<value>`` (the library's time divided by each baseline's, same run).
"""

from __future__ import annotations

import calendar
import decimal
import random
import sys
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ReparseEvaluator,
    amounts,
    best_time,
    compare,
    quick,
    round_cent,
)

from incentives import Plan, load_plan
from incentives.money import CONTEXT

PLAN_YAML = """\
name: formula-heavy
version: "1"
rounding: {quantum: 0.01, mode: half_up}
inputs:
  metrics:
    revenue: {min: 0}
    cost: {min: 0}
    target_revenue: {min: 1}
    new_accounts: {default: 0, integer: true, min: 0}
    visits: {default: 0, integer: true, min: 0}
    satisfaction: {min: 0, max: 100}
    complaints: {default: 0, integer: true, min: 0}
  attributes:
    grade: {allowed: [A, B, C]}
    days_worked: {type: number, min: 0, max: 31}
parameters:
  visit_rate: 15
  floor_amount: 2500
  bonus_target: 3000
policies:
  - {type: value, id: margin, value: revenue - cost}
  - {type: value, id: basis, value: "max(margin * 0.9 + new_accounts * 500, 0)"}
  - type: tiered
    id: commission
    basis: basis
    method: marginal
    tiers:
      - {from: 0, rate: 0.03}
      - {from: 20000, rate: 0.05}
      - {from: 60000, rate: 0.08}
  - type: formula
    id: visit_pay
    amount: min(visits * visit_rate, 1200) * days_worked / period_days
  - type: formula
    id: quality
    amount: "clamp((satisfaction - 80) * 25, 0, 500) if complaints == 0 else 0"
  - type: scorecard
    id: kpi
    target_bonus: "bonus_target * (1.2 if grade == 'A' else 1)"
    kpis:
      - {id: sales, actual: revenue, target: target_revenue, weight: 50, cap: 1.5, floor: 0}
      - {id: service, actual: satisfaction, target: 90, weight: 30, cap: 1.2}
      - {id: complaints, actual: complaints, target: 2, weight: 20, direction: lower, cap: 1.5}
    gates: [{min_score: 50}]
    payout:
      - {score: 0, percent: 0}
      - {score: 60, percent: 50}
      - {score: 100, percent: 100}
      - {score: 150, percent: 200}
  - {type: value, id: variable_pay, value: commission + visit_pay + quality + kpi}
  - type: formula
    id: cost_share
    amount: -min(cost * 0.01, max(variable_pay, 0) * 0.1)
  - {type: floor, id: floor, amount: floor_amount}
"""

D = Decimal
ZERO = D(0)
HUNDRED = D(100)


def make_plan() -> Plan:
    """The benchmark's plan."""
    return load_plan(PLAN_YAML)


def make_records(n: int, *, seed: int = 7, period: str = "2026-05") -> list[dict[str, Any]]:
    """``n`` seeded synthetic records, as JSON would give them (numbers as Decimal or int)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        revenue = D(rng.randrange(0, 12_000_000)).scaleb(-2)
        out.append({
            "payee": f"p{i:06d}",
            "period": period,
            "group": f"g{i % 50:03d}",
            "attributes": {"grade": rng.choice("ABC"), "days_worked": rng.choice((31, 31, 31, 20))},
            "metrics": {
                "revenue": revenue,
                "cost": D(rng.randrange(0, 3_000_000)).scaleb(-2),
                "target_revenue": D(rng.randrange(20_000, 90_000)),
                "new_accounts": rng.randrange(0, 6),
                "visits": rng.randrange(0, 120),
                "satisfaction": D(rng.randrange(600, 1000)).scaleb(-1),
                "complaints": rng.choice((0, 0, 0, 1, 2, 4)),
            },
        })
    return out


# ---------------------------------------------------------------------------
# the hand-written program


def _num(v: Any) -> Decimal:
    return v if type(v) is Decimal else Decimal(v)


_DAYS: dict[str, Decimal] = {}


def _period_days(period: str) -> Decimal:
    days = _DAYS.get(period)
    if days is None:
        y, m = int(period[:4]), int(period[5:7])
        days = _DAYS[period] = D(calendar.monthrange(y, m)[1])
    return days


P_0_9, P_500, P_1200, P_15 = D("0.9"), D(500), D(1200), D(15)
T1, T2, R1, R2, R3 = D(20000), D(60000), D("0.03"), D("0.05"), D("0.08")
P80, P25, P90, P2 = D(80), D(25), D(90), D(2)
W_SALES, W_SERV, W_COMP = D(50), D(30), D(20)
C1_5, C1_2, P1_2, D3000, D2500, P0_01, P0_1 = D("1.5"), D("1.2"), D("1.2"), D(3000), D(2500), D("0.01"), D("0.1")
PAYOUT = ((D(0), D(0)), (D(60), D(50)), (D(100), D(100)), (D(150), D(200)))


def _payout(score: Decimal) -> Decimal:
    if score < 0:
        return ZERO
    for k in range(len(PAYOUT) - 1, -1, -1):
        s0, p0 = PAYOUT[k]
        if score >= s0:
            if k + 1 == len(PAYOUT):
                return p0
            s1, p1 = PAYOUT[k + 1]
            return p0 + (p1 - p0) * (score - s0) / (s1 - s0)
    return ZERO  # pragma: no cover


def handwritten(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """The plan written out by hand: per (period, payee), each line's amount and the total."""
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    with decimal.localcontext(CONTEXT):
        for raw in records:
            m, a = raw["metrics"], raw["attributes"]
            revenue, cost = _num(m["revenue"]), _num(m["cost"])
            target = _num(m["target_revenue"])
            new_accounts = _num(m.get("new_accounts", 0))
            visits = _num(m.get("visits", 0))
            satisfaction = _num(m["satisfaction"])
            complaints = _num(m.get("complaints", 0))
            grade = a["grade"]
            days_worked = _num(a["days_worked"])
            if revenue < 0 or cost < 0 or target < 1 or grade not in ("A", "B", "C"):
                raise ValueError(f"bad record {raw['payee']}")
            period = raw["period"]
            margin = revenue - cost
            basis = max(margin * P_0_9 + new_accounts * P_500, ZERO)
            c = ZERO
            if basis > 0:
                c += (min(basis, T1) - 0) * R1
            if basis > T1:
                c += (min(basis, T2) - T1) * R2
            if basis > T2:
                c += (basis - T2) * R3
            commission = round_cent(c)
            visit_pay = round_cent(min(visits * P_15, P_1200) * days_worked / _period_days(period))
            quality = round_cent(
                min(max((satisfaction - P80) * P25, ZERO), P_500) if complaints == 0 else ZERO)
            att1 = min(max(revenue / target, ZERO), C1_5)
            att2 = min(satisfaction / P90, C1_2)
            att3 = C1_5 if complaints == 0 else min(P2 / complaints, C1_5)
            score = ZERO + W_SALES * att1 + W_SERV * att2 + W_COMP * att3
            percent = ZERO if score < 50 else _payout(score)
            bonus_target = D3000 * (P1_2 if grade == "A" else 1)
            kpi = round_cent(bonus_target * percent / HUNDRED)
            variable_pay = commission + visit_pay + quality + kpi
            cost_share = round_cent(-min(cost * P0_01, max(variable_pay, ZERO) * P0_1))
            total = commission + visit_pay + quality + kpi + cost_share
            floor = round_cent(D2500 - total if total < D2500 else ZERO)
            total += floor
            out[(period, raw["payee"])] = {
                "commission": commission, "visit_pay": visit_pay, "quality": quality,
                "kpi": kpi, "cost_share": cost_share, "floor": floor, "total": total,
            }
    return out


# ---------------------------------------------------------------------------
# the same formulas, re-parsed by simpleeval for every record

PARAMS = {"visit_rate": D(15), "floor_amount": D(2500), "bonus_target": D(3000)}


def reparse(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """The plan's formulas evaluated by simpleeval, parsed again for each record."""
    ev: Callable[[str, Mapping[str, Any]], Any] = ReparseEvaluator()
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    with decimal.localcontext(CONTEXT):
        for raw in records:
            env: dict[str, Any] = dict(PARAMS)
            m, a = raw["metrics"], raw["attributes"]
            for k in ("revenue", "cost", "target_revenue", "satisfaction"):
                env[k] = _num(m[k])
            for k in ("new_accounts", "visits", "complaints"):
                env[k] = _num(m.get(k, 0))
            env["grade"], env["days_worked"] = a["grade"], _num(a["days_worked"])
            env["period_days"] = _period_days(raw["period"])
            env["margin"] = ev("revenue - cost", env)
            env["basis"] = ev("max(margin * 0.9 + new_accounts * 500, 0)", env)
            basis = ev("basis", env)
            c = ZERO
            for lo, hi, rate in ((ZERO, T1, R1), (T1, T2, R2), (T2, None, R3)):
                if basis <= lo:
                    break
                c += ((basis if hi is None or basis < hi else hi) - lo) * rate
            lines = {"commission": round_cent(c)}
            env["commission"] = lines["commission"]
            env["visit_pay"] = lines["visit_pay"] = round_cent(
                ev("min(visits * visit_rate, 1200) * days_worked / period_days", env))
            env["quality"] = lines["quality"] = round_cent(
                ev("clamp((satisfaction - 80) * 25, 0, 500) if complaints == 0 else 0", env))
            score = ZERO
            for actual_f, target_f, weight, lower, cap, floor in (
                ("revenue", "target_revenue", W_SALES, False, C1_5, ZERO),
                ("satisfaction", "90", W_SERV, False, C1_2, None),
                ("complaints", "2", W_COMP, True, C1_5, None),
            ):
                actual, target = ev(actual_f, env), ev(target_f, env)
                att = (cap if actual == 0 else target / actual) if lower else actual / target
                att = min(att, cap)
                if floor is not None:
                    att = max(att, floor)
                score += weight * att
            percent = ZERO if score < 50 else _payout(score)
            tb = ev("bonus_target * (1.2 if grade == 'A' else 1)", env)
            env["kpi"] = lines["kpi"] = round_cent(tb * percent / HUNDRED)
            env["variable_pay"] = ev("commission + visit_pay + quality + kpi", env)
            lines["cost_share"] = round_cent(
                ev("-min(cost * 0.01, max(variable_pay, 0) * 0.1)", env))
            total = sum(lines.values(), ZERO)
            env["total"] = total
            fl, cur = ev("floor_amount", env), ev("total", env)
            lines["floor"] = round_cent(fl - cur if cur < fl else ZERO)
            lines["total"] = total + lines["floor"]
            out[(raw["period"], raw["payee"])] = lines
    return out


# ---------------------------------------------------------------------------


def main() -> int:
    n = 4_000 if quick() else 20_000
    repeat = 7
    plan = make_plan()
    compiled = plan.compile()
    records = make_records(n)
    print(f"formula-heavy plan: {len(plan.policies)} policies, {n} payees, "
          f"least CPU time of {repeat}")
    print("engine-only: records parsed beforehand, no output written")

    # interleaved, best of each: a busy machine slows both alike. Each side is timed
    # with nothing of the other alive (only the library's amounts are kept)
    t_lib = t_hand = float("inf")
    for _ in range(repeat):
        run = hand = None
        t, run = best_time(lambda: compiled.evaluate(records), 1)
        t_lib = min(t_lib, t)
        got, total = amounts(run.results), run.total
        run = None
        t, hand = best_time(lambda: handwritten(records), 1)
        t_hand = min(t_hand, t)
    problems = compare(got, hand)
    hand = None
    t_re, slow = best_time(lambda: reparse(records), 1)
    problems += [f"re-parse: {p}" for p in compare(got, slow)]
    print(f"library      {n / t_lib:12,.0f} payees/s")
    print(f"hand-written {n / t_hand:12,.0f} payees/s")
    print(f"re-parse     {n / t_re:12,.0f} payees/s")
    if problems:
        print(f"agreement: FAILED on {len(problems)} amounts; first: {problems[0]}")
    else:
        print(f"agreement: library = hand-written = re-parse to the cent on all {n} payees "
              f"(total {total})")
    print(f"ratio vs_handwritten {t_lib / t_hand:.2f}")
    print(f"ratio vs_reparse {t_lib / t_re:.3f}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
