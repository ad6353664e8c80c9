"""A realistic plan over 1,000, 10,000 and 100,000 payees x 12 periods.

Run::

    python benchmarks/bench_plan.py                 # the full sizes (several minutes)
    BENCH_QUICK=1 python benchmarks/bench_plan.py   # reduced sizes, within a minute

The plan: base pay by grade prorated by days worked, a marginal tiered
commission, a new-business rate table, a KPI scorecard (gate, payout table),
a churn penalty (per lost customer, an exemption, a cap on a share of
variable pay), a contest within each team (prizes by rank, ties shared), a
team bonus pool (a share of the team's revenue, by scorecard score) balanced
within 0.5x-1.5x of the team mean, and a floor on the total.

For each size the same seeded population is paid three ways, period by
period (a month is what a payroll run evaluates):

- the library (``plan.evaluate(records)``, from raw record dicts, checks included);
- a hand-written Python program with Decimal (the pure-Python limit);
- on the smallest size only, the same formulas evaluated by simpleeval,
  re-parsed for every record (the naive baseline; too slow for the others).

The library and the hand-written program must agree to the cent on every
line of every payee in every period (and so must the re-parsing baseline);
the script exits 1 otherwise. It prints throughput (payee-periods per
second), the time per period (growth should be linear in payees), the peak
memory, the speed-up of ``incentives.dask`` with two worker processes (when
dask is installed; on 40,000 records, 500 in quick mode, both once the workers
are started and counting their start; for a frame in any order, which
``evaluate_frame`` shuffles, and for one cut by period, given as
``partitioned_by=("period",)``, which is not shuffled: see ``bench_dask.py`` for
the scale-out path), and, as its last lines, ``ratio vs_handwritten <value>``
(library time / hand-written time, on the largest size) and ``ratio
vs_reparse <value>`` (library time / re-parsing time, on the smallest size).
"""

from __future__ import annotations

import calendar
import decimal
import gc
import random
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ReparseEvaluator, amounts, clock, compare, quick, round_cent

from incentives import Plan, load_plan
from incentives.money import CONTEXT

PLAN_YAML = """\
name: bench-realistic
version: "1"
rounding: {quantum: 0.01, mode: half_up}
inputs:
  metrics:
    revenue: {min: 0}
    target_revenue: {min: 1}
    new_400: {default: 0, integer: true, min: 0}
    new_fax: {default: 0, integer: true, min: 0}
    new_ipvpn: {default: 0, integer: true, min: 0}
    satisfaction: {min: 0, max: 100}
  attributes:
    grade: {allowed: [A, B, C]}
    days_worked: {type: number, min: 0, max: 31}
  events:
    lost_customers:
      fields: {id: text, monthly_value: number, reason: text}
parameters:
  churn_multiple: 1.5
  churn_cap_share: 0.4
  floor_amount: 2000
policies:
  - type: base_pay
    id: base
    by: [grade]
    table: {A: 4000, B: 3200, C: 2600}
    prorate: days_worked / period_days
  - type: tiered
    id: commission
    basis: revenue
    method: marginal
    tiers:
      - {from: 0, rate: 0.02}
      - {from: 30000, rate: 0.04}
      - {from: 80000, rate: 0.06}
  - type: rate_table
    id: new_business
    items: {new_400: 120, new_fax: 60, new_ipvpn: 260}
  - type: scorecard
    id: kpi
    target_bonus: 1500
    kpis:
      - {id: sales, actual: revenue, target: target_revenue, weight: 60, cap: 1.5, floor: 0}
      - {id: service, actual: satisfaction, target: 90, weight: 40, cap: 1.2}
    gates: [{min_score: 50}]
    payout:
      - {score: 0, percent: 0}
      - {score: 60, percent: 50}
      - {score: 100, percent: 100}
      - {score: 150, percent: 180}
  - {type: value, id: variable_pay, value: commission + new_business + kpi}
  - type: churn_penalty
    id: churn
    events: lost_customers
    per_customer: churn_multiple * monthly_value
    exempt_reasons: [closure]
    cap: churn_cap_share * variable_pay
  - type: contest
    id: contest
    score: revenue
    threshold: 60000
    prizes: [800, 500, 200]
    ties: share
  - type: bonus_pool
    id: team_pool
    aggregates: {team_revenue: {sum: revenue}}
    pool: team_revenue * 0.005
    weight: kpi_score
  - type: balance
    id: balance
    of: team_pool
    mean: {min: 0.5, max: 1.5}
    method: scale_about_mean
  - {type: floor, id: floor, amount: floor_amount}
"""

D = Decimal
ZERO = D(0)
ONE = D(1)
HUNDRED = D(100)
TEAM = 25  # payees per team


def make_plan() -> Plan:
    """The benchmark's plan."""
    return load_plan(PLAN_YAML)


def periods(n: int = 12) -> list[str]:
    """The benchmark's periods: the months of 2026."""
    return [f"2026-{m:02d}" for m in range(1, n + 1)]


def make_records(payees: int, period: str, *, seed: int = 1) -> list[dict[str, Any]]:
    """One period's seeded records, as JSON would give them (numbers as Decimal or int)."""
    rng = random.Random(f"{seed}-{payees}-{period}")
    days = calendar.monthrange(int(period[:4]), int(period[5:]))[1]
    out = []
    for i in range(payees):
        rec: dict[str, Any] = {
            "payee": f"p{i:06d}",
            "period": period,
            "group": f"t{i // TEAM:05d}",
            "attributes": {"grade": "ABC"[i % 3],
                           "days_worked": days if rng.random() < 0.9 else rng.randrange(5, days)},
            "metrics": {
                "revenue": D(rng.randrange(0, 15_000) * 10),  # ties happen in contests
                "target_revenue": D(rng.randrange(40_000, 90_000)),
                "new_400": rng.randrange(0, 3),
                "new_fax": rng.randrange(0, 4),
                "new_ipvpn": rng.choice((0, 0, 0, 1)),
                "satisfaction": D(rng.randrange(600, 1000)).scaleb(-1),
            },
        }
        if rng.random() < 0.2:
            rec["events"] = {"lost_customers": [
                {"id": f"c{i}-{k}", "monthly_value": D(rng.randrange(200, 4000)),
                 "reason": rng.choice(("competitor", "price", "closure"))}
                for k in range(rng.randrange(1, 3))]}
        out.append(rec)
    return out


# ---------------------------------------------------------------------------
# the hand-written program

Result = dict[tuple[str, str], dict[str, Decimal]]

BASE = {"A": D(4000), "B": D(3200), "C": D(2600)}
T1, T2, R1, R2, R3 = D(30000), D(80000), D("0.02"), D("0.04"), D("0.06")
U400, UFAX, UIPVPN = D(120), D(60), D(260)
W1, W2, CAP1, CAP2, P90 = D(60), D(40), D("1.5"), D("1.2"), D(90)
PAYOUT = ((D(0), D(0)), (D(60), D(50)), (D(100), D(100)), (D(150), D(180)))
TARGET_BONUS, GATE = D(1500), D(50)
CHURN_MULT, CHURN_CAP = D("1.5"), D("0.4")
THRESHOLD, PRIZES = D(60000), (D("800.00"), D("500.00"), D("200.00"))
POOL_RATE, MEAN_LO, MEAN_HI = D("0.005"), D("0.5"), D("1.5")
FLOOR = D(2000)
CENT = D("0.01")


def _num(v: Any) -> Decimal:
    return v if type(v) is Decimal else Decimal(v)


def _payout(score: Decimal) -> Decimal:
    for k in range(len(PAYOUT) - 1, -1, -1):
        s0, p0 = PAYOUT[k]
        if score >= s0:
            if k + 1 == len(PAYOUT):
                return p0
            s1, p1 = PAYOUT[k + 1]
            return p0 + (p1 - p0) * (score - s0) / (s1 - s0)
    return ZERO


class _Rev:
    """A sort key in reverse (cents are taken back from the last key first)."""

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Rev) -> bool:
        return bool(other.key < self.key)


def _to_cents(exact: list[Decimal], total: Decimal, keys: list[Any],
              lo: Decimal | None = None, hi: Decimal | None = None) -> list[Decimal]:
    """Round to cents adding up to ``total``: floors, then the largest remainders
    (ties by ``keys``), within [lo, hi] rounded inwards; the allocation rule."""
    n = len(exact)
    target = int(total / CENT)
    lo_u = None if lo is None else int((lo / CENT).to_integral_value(decimal.ROUND_CEILING))
    hi_u = None if hi is None else int((hi / CENT).to_integral_value(decimal.ROUND_FLOOR))
    units, rems = [], []
    for x in exact:
        s = x / CENT
        u = int(s.to_integral_value(decimal.ROUND_FLOOR))
        if lo_u is not None and u < lo_u:
            u = lo_u
        if hi_u is not None and u > hi_u:
            u = hi_u
        units.append(u)
        rems.append(s - u)
    left = target - sum(units)
    while left > 0:
        can = sorted((i for i in range(n) if hi_u is None or units[i] < hi_u),
                     key=lambda i: (-rems[i], keys[i]))
        for i in can[:left]:
            units[i] += 1
            rems[i] -= 1
        left = target - sum(units)
    while left < 0:
        can = sorted((i for i in range(n) if lo_u is None or units[i] > lo_u),
                     key=lambda i: (rems[i], _Rev(keys[i])))
        for i in can[:-left]:
            units[i] -= 1
            rems[i] += 1
        left = target - sum(units)
    return [(D(u) * CENT).quantize(CENT) for u in units]


def _payee_lines(raw: Mapping[str, Any], period_days: Decimal) -> tuple[dict[str, Decimal],
                                                                       Decimal, Decimal]:
    """The payee-scoped lines of one record; also its revenue and scorecard score."""
    m, a = raw["metrics"], raw["attributes"]
    revenue, target = _num(m["revenue"]), _num(m["target_revenue"])
    satisfaction = _num(m["satisfaction"])
    grade = a["grade"]
    days = _num(a["days_worked"])
    if revenue < 0 or target < 1 or grade not in BASE or not 0 <= days <= 31:
        raise ValueError(f"bad record {raw['payee']}")
    base = round_cent(BASE[grade] * (days / period_days))
    c = ZERO
    if revenue > 0:
        c += (min(revenue, T1) - 0) * R1
    if revenue > T1:
        c += (min(revenue, T2) - T1) * R2
    if revenue > T2:
        c += (revenue - T2) * R3
    commission = round_cent(c)
    nb = round_cent(ZERO + _num(m.get("new_400", 0)) * U400 + _num(m.get("new_fax", 0)) * UFAX
                    + _num(m.get("new_ipvpn", 0)) * UIPVPN)
    att1 = min(max(revenue / target, ZERO), CAP1)
    att2 = min(satisfaction / P90, CAP2)
    score = ZERO + W1 * att1 + W2 * att2
    kpi = round_cent(TARGET_BONUS * (ZERO if score < GATE else _payout(score)) / HUNDRED)
    variable = commission + nb + kpi
    lost = ZERO
    for e in (raw.get("events") or {}).get("lost_customers", ()):
        if e["reason"] != "closure":
            lost += CHURN_MULT * _num(e["monthly_value"])
    limit = max(CHURN_CAP * variable, ZERO)
    churn = round_cent(-(limit if lost > limit else lost))
    lines = {"base": base, "commission": commission, "new_business": nb, "kpi": kpi,
             "churn": churn}
    return lines, revenue, score


def _team(members: list[tuple[str, dict[str, Decimal], Decimal, Decimal]], *,
          threshold: Decimal = THRESHOLD, prizes: tuple[Decimal, ...] = PRIZES,
          pool_amount: Decimal | None = None, floor: Decimal = FLOOR) -> None:
    """Contest, pool and balance for one team (members sorted by payee), in place.

    Each member is (payee, lines, revenue, kpi score). The re-parsing baseline
    gives the values of the team-level formulas it evaluated; the hand-written
    program uses the plan's numbers as they are.
    """
    # contest: ranked by revenue (then payee), prizes to the first three, ties share
    qualified = sorted((m for m in members if m[2] >= threshold), key=lambda m: (-m[2], m[0]))
    prize = {m[0]: ZERO for m in members}
    pos = 0
    while pos < len(qualified):
        end = pos
        while end + 1 < len(qualified) and qualified[end + 1][2] == qualified[pos][2]:
            end += 1
        block = qualified[pos:end + 1]
        pooled = sum((prizes[p] if p < 3 else ZERO for p in range(pos, end + 1)), ZERO)
        if len(block) == 1:
            prize[block[0][0]] = pooled
        else:  # an even split; odd cents to the payees that sort first
            units = int(pooled / CENT)
            each, extra = divmod(units, len(block))
            for k, m in enumerate(sorted(block, key=lambda m: m[0])):
                prize[m[0]] = (D(each + (1 if k < extra else 0)) * CENT).quantize(CENT)
        pos = end + 1
    # pool: a share of the team's revenue, by score, exact to the cent
    pool = round_cent(sum((m[2] for m in members), ZERO) * POOL_RATE if pool_amount is None
                      else pool_amount)
    weights = [m[3] for m in members]
    factor = pool / sum(weights, ZERO)
    shares = _to_cents([factor * w for w in weights], pool, [m[0] for m in members])
    # balance: scale the shares about their mean into [0.5, 1.5] x mean
    total = sum(shares, ZERO)
    n = len(shares)
    mean = total / n
    k = ONE
    dmin, dmax = min(shares) - mean, max(shares) - mean
    hi_k = None
    if dmin < 0:
        hi_k = mean * (ONE - MEAN_LO) / -dmin
    if dmax > 0:
        cand = mean * (MEAN_HI - ONE) / dmax
        hi_k = cand if hi_k is None or cand < hi_k else hi_k
    if hi_k is not None and k > hi_k:
        k = hi_k
    if k == ONE:
        after = shares
    else:
        exact = [mean + k * (b - mean) for b in shares]
        rank = sorted(range(n), key=lambda i: (-shares[i], members[i][0]))
        order = [0] * n
        for r, i in enumerate(rank):
            order[i] = r
        after = _to_cents(exact, total, order, MEAN_LO * mean, MEAN_HI * mean)
    for i, (payee, lines, _, _) in enumerate(members):
        lines["contest"] = prize[payee]
        lines["team_pool"] = shares[i]
        lines["balance"] = after[i] - shares[i]
        total_pay = sum(lines.values(), ZERO)
        lines["floor"] = round_cent(floor - total_pay if total_pay < floor else ZERO)
        lines["total"] = total_pay + lines["floor"]


def handwritten(records: Iterable[Mapping[str, Any]]) -> Result:
    """The plan written out by hand, for one period's records."""
    out: Result = {}
    teams: dict[str, list[tuple[str, dict[str, Decimal], Decimal, Decimal]]] = defaultdict(list)
    with decimal.localcontext(CONTEXT):
        days_cache: dict[str, Decimal] = {}
        for raw in records:
            period = raw["period"]
            pd = days_cache.get(period)
            if pd is None:
                pd = days_cache[period] = D(calendar.monthrange(int(period[:4]),
                                                                int(period[5:7]))[1])
            lines, revenue, score = _payee_lines(raw, pd)
            teams[raw["group"]].append((raw["payee"], lines, revenue, score))
            out[(period, raw["payee"])] = lines
        for members in teams.values():
            members.sort(key=lambda m: m[0])
            _team(members)
    return out


# ---------------------------------------------------------------------------
# the same formulas, re-parsed by simpleeval for every record


def reparse(records: Iterable[Mapping[str, Any]]) -> Result:
    """Every formula of the plan evaluated by simpleeval, parsed again for every record
    (and, for the pool and the prizes, every team); the mechanics (tiers, tables,
    ranking, sharing) as in the hand-written program."""
    ev: Callable[[str, Mapping[str, Any]], Any] = ReparseEvaluator()
    params = {"churn_multiple": CHURN_MULT, "churn_cap_share": CHURN_CAP, "floor_amount": FLOOR}
    out: Result = {}
    teams: dict[str, list[tuple[str, dict[str, Decimal], dict[str, Any]]]] = defaultdict(list)
    with decimal.localcontext(CONTEXT):
        for raw in records:
            m, a = raw["metrics"], raw["attributes"]
            env: dict[str, Any] = dict(params)
            for k in ("revenue", "target_revenue", "satisfaction"):
                env[k] = _num(m[k])
            for k in ("new_400", "new_fax", "new_ipvpn"):
                env[k] = _num(m.get(k, 0))
            env["grade"], env["days_worked"] = a["grade"], _num(a["days_worked"])
            period = raw["period"]
            env["period_days"] = D(calendar.monthrange(int(period[:4]), int(period[5:7]))[1])
            base = round_cent(BASE[env["grade"]] * ev("days_worked / period_days", env))
            revenue = ev("revenue", env)
            c = ZERO
            for lo, hi, rate in ((ZERO, T1, R1), (T1, T2, R2), (T2, None, R3)):
                if revenue <= lo:
                    break
                c += ((revenue if hi is None or revenue < hi else hi) - lo) * rate
            env["commission"] = commission = round_cent(c)
            nb = ZERO
            for qty, unit in (("new_400", "120"), ("new_fax", "60"), ("new_ipvpn", "260")):
                nb += ev(qty, env) * ev(unit, env)
            env["new_business"] = nb = round_cent(nb)
            att1 = min(max(ev("revenue", env) / ev("target_revenue", env), ZERO), CAP1)
            att2 = min(ev("satisfaction", env) / ev("90", env), CAP2)
            score = ZERO + W1 * att1 + W2 * att2
            tb = ev("1500", env)
            env["kpi"] = kpi = round_cent(tb * (ZERO if score < GATE else _payout(score))
                                          / HUNDRED)
            env["variable_pay"] = ev("commission + new_business + kpi", env)
            lost = ZERO
            for e in (raw.get("events") or {}).get("lost_customers", ()):
                if e["reason"] != "closure":
                    lost += ev("churn_multiple * monthly_value",
                               {**env, "monthly_value": _num(e["monthly_value"])})
            limit = max(ev("churn_cap_share * variable_pay", env), ZERO)
            churn = round_cent(-(limit if lost > limit else lost))
            lines = {"base": base, "commission": commission, "new_business": nb, "kpi": kpi,
                     "churn": churn}
            env["kpi_score"] = score
            teams[raw["group"]].append((raw["payee"], lines, env))
            out[(period, raw["payee"])] = lines
        for group in teams.values():
            group.sort(key=lambda m: m[0])
            # the team-level formulas, parsed again for every member (contest score and
            # threshold, the pool's aggregate and weight, the floor) and every group
            # (the prizes, the pool)
            members = [(payee, lines, ev("revenue", env), ev("kpi_score", env))
                       for payee, lines, env in group]
            thresholds = {ev("60000", env) for _, _, env in group}
            floors = {ev("floor_amount", env) for _, _, env in group}
            team_revenue = sum((ev("revenue", env) for _, _, env in group), ZERO)
            pool = ev("team_revenue * 0.005", {"team_revenue": team_revenue})
            prizes = tuple(round_cent(ev(p, params)) for p in ("800", "500", "200"))
            (threshold,), (floor,) = thresholds, floors
            _team(members, threshold=threshold, prizes=prizes, pool_amount=pool, floor=floor)
    return out


# ---------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dask_speedup(plan: Plan, records: list[dict[str, Any]]) -> str:
    try:
        import dask
        import dask.dataframe as dd
        import pandas as pd
    except ImportError:
        return "dask not installed (pip install 'incentives[dask]')"

    flat = []
    for r in records:
        row = {"payee": r["payee"], "period": r["period"], "group": r["group"],
               **r["attributes"], **{k: str(v) for k, v in r["metrics"].items()}}
        flat.append(row)  # events are not in the flat form: churn sees none here
    whole = pd.DataFrame(flat, dtype=object)
    # shuffled (rows in any partition), and cut by period (each partition one period's
    # rows, as a dataset partitioned by period is read: partitioned_by, no shuffle)
    shuffled = dd.from_pandas(whole, npartitions=8)
    by_period = dd.concat([dd.from_pandas(part.reset_index(drop=True), npartitions=1)
                           for _, part in whole.groupby("period", sort=True)])
    return "; ".join(_dask_timing(plan, dask, frame, name, given)
                     for name, frame, given in (
                         ("shuffled", shuffled, None),
                         ("cut by period, partitioned_by", by_period, ("period",))))


def _dask_timing(plan: Plan, dask: Any, frame: Any, name: str, partitioned_by: Any) -> str:
    from concurrent.futures import ProcessPoolExecutor

    from incentives.dask import evaluate_frame

    graph = evaluate_frame(plan, frame, partitioned_by=partitioned_by)
    # wall time here: the work of two worker processes is not this process's CPU time
    t0 = time.perf_counter()
    one = graph.compute(scheduler="synchronous")
    t1 = time.perf_counter()
    two = graph.compute(scheduler="processes", num_workers=2)  # starting the workers too
    t2 = time.perf_counter()
    with ProcessPoolExecutor(2) as pool, dask.config.set(pool=pool):
        graph.compute(scheduler="processes")  # the workers started, the plan compiled
        t3 = time.perf_counter()
        warm = graph.compute(scheduler="processes")
        t4 = time.perf_counter()
    rows = sorted(map(tuple, one.values.tolist()))
    same = rows == sorted(map(tuple, two.values.tolist())) == sorted(
        map(tuple, warm.values.tolist()))
    return (f"{name}: {(t1 - t0) / (t4 - t3):.2f}x once the workers are started, "
            f"{(t1 - t0) / (t2 - t1):.2f}x counting their start ({len(one)} records: one "
            f"process {t1 - t0:.1f} s, two worker processes {t4 - t3:.1f} s, or "
            f"{t2 - t1:.1f} s with their start; same results: {same})")


def main() -> int:
    sizes = [500, 2_000] if quick() else [1_000, 10_000, 100_000]
    n_periods = 3 if quick() else 12
    plan = make_plan()
    compiled = plan.compile()
    print(f"plan {plan.name!r}: {len(plan.policies)} policies "
          f"({', '.join(p.type for p in plan.policies)})")
    print(f"sizes {sizes} payees x {n_periods} periods, teams of {TEAM}")
    print("engine-only: records parsed beforehand, no output written (the whole command, "
          "reading and writing included, is benchmarks/bench_cli.py)")
    problems: list[str] = []
    lib_t: dict[int, float] = {}
    hand_t: dict[int, float] = {}
    reparse_t = lib_small = 0.0
    for n in sizes:
        # the least of several runs of each side (a run of the quick sizes takes a
        # few hundredths of a second, where the machine's noise is largest), but one
        # of the largest full size, long enough to time once
        repeat = 7 if quick() else 3 if n <= 10_000 else 1
        t_lib = t_hand = t_re = 0.0
        for period in periods(n_periods):
            records = make_records(n, period)
            # interleaved, so that a busy machine slows both alike
            # Each side is timed with nothing of the other alive: the library's run
            # is reduced to its amounts before the hand-written program runs.
            best_lib = best_hand = float("inf")
            for _ in range(repeat):
                run = hand = None
                gc.collect()
                t0 = clock()
                run = compiled.evaluate(records)
                t1 = clock()
                got = amounts(run.results)
                run = None
                gc.collect()
                t2 = clock()
                hand = handwritten(records)
                t3 = clock()
                best_lib, best_hand = min(best_lib, t1 - t0), min(best_hand, t3 - t2)
            t_lib += best_lib
            t_hand += best_hand
            problems += compare(got, hand)
            hand = None
            if n == sizes[0]:
                gc.collect()
                t4 = clock()
                slow = reparse(records)
                t_re += clock() - t4
                problems += [f"re-parse: {p}" for p in compare(got, slow)]
                del slow
            del got, records
        lib_t[n], hand_t[n] = t_lib, t_hand
        if n == sizes[0]:
            reparse_t, lib_small = t_re, t_lib
        pp = n * n_periods
        line = (f"{n:>7,} payees x {n_periods}: library {pp / t_lib:9,.0f} payee-periods/s "
                f"({t_lib / n_periods:7.3f} s per period), hand-written {pp / t_hand:9,.0f}/s "
                f"({t_lib / t_hand:.2f}x)")
        if t_re:
            line += f", re-parse {pp / t_re:7,.0f}/s"
        print(line + f"; peak RSS so far {_peak_rss_mb():,.0f} MB")
    if len(sizes) > 1:
        a, b = sizes[-2], sizes[-1]
        print(f"growth: {b:,} payees cost {lib_t[b] / lib_t[a]:.1f}x the time of {a:,} "
              f"({b / a:.0f}x the payees)")
    small = make_records(sizes[0] if quick() else 40_000, periods(1)[0])
    print("dask speed-up with 2 worker processes:", _dask_speedup(plan, small))
    if problems:
        print(f"agreement: FAILED on {len(problems)} amounts; first: {problems[0]}")
    else:
        print("agreement: library = hand-written to the cent on every line of every payee "
              f"in every period ({sum(sizes) * n_periods:,} payee-periods); re-parse too")
    big = sizes[-1]
    print(f"ratio vs_handwritten {lib_t[big] / hand_t[big]:.2f}")
    print(f"ratio vs_reparse {lib_small / reparse_t:.3f}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
