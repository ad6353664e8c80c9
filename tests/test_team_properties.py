"""Property tests of the team-scoped policies: pools pay out exactly within bounds,
balancing keeps the total and the order and meets feasible bounds, awards and flags
do not depend on record order, tied payees are treated alike."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from incentives import (
    Balance,
    BonusPool,
    Contest,
    FormulaLine,
    Honour,
    InfeasibleError,
    Plan,
    RankingFlag,
)
from incentives.allocation import fill, round_to_total
from incentives.money import CONTEXT

D = Decimal
CENT = D("0.01")

cents = st.integers(min_value=0, max_value=10_000_000).map(lambda c: D(c) / 100)
positive_cents = st.integers(min_value=1, max_value=2_000_000).map(lambda c: D(c) / 100)
weights = st.integers(min_value=0, max_value=1000).map(D)
factors = st.integers(min_value=0, max_value=100).map(lambda x: D(x) / 100)  # 0.00 .. 1.00


def _records(amounts: list[Any], *, group: str = "g") -> list[dict[str, Any]]:
    return [{"payee": f"p{i:03d}", "period": "2026-05", "group": group,
             "metrics": {"x": a}} for i, a in enumerate(amounts)]


# ---------------------------------------------------------------------- pools


@given(pool=cents, ws=st.lists(weights, min_size=1, max_size=12),
       lo=st.none() | factors, hi=st.none() | factors.map(lambda f: 1 + 2 * f))
def test_pool_pays_out_exactly_and_within_bounds(pool: Decimal, ws: list[Decimal],
                                                 lo: Decimal | None, hi: Decimal | None) -> None:
    n = len(ws)
    with decimal.localcontext(CONTEXT):
        mean = pool / n
        floor = None if lo is None else lo * mean
        cap = None if hi is None else hi * mean
    floors, caps = [floor] * n, [cap] * n
    try:
        shares = fill(pool, ws, lower=floors, upper=caps)
        paid = round_to_total(shares.amounts, pool, CENT, lower=floors, upper=caps,
                              order=list(range(n)))
    except InfeasibleError:
        # infeasible only when no multiples of a cent fit: every weight zero, or the
        # rounded bounds leave no room
        assert sum(ws) == 0 or floor is not None or cap is not None
        return
    assert sum(paid) == pool
    for i, x in enumerate(paid):
        assert x == x.quantize(CENT)
        if floor is not None:
            assert x >= floor
        if cap is not None:
            assert x <= cap
        # proportional with the common factor unless held at a bound: within a cent, plus
        # the cents that rounding the held shares' bounds inwards moved onto the others
        if shares.held[i] is None and shares.factor is not None:
            held = sum(1 for h in shares.held if h is not None)
            with decimal.localcontext(CONTEXT):
                assert abs(x - shares.factor * ws[i]) < (2 + held) * CENT


@given(pool=cents, ws=st.lists(weights.filter(lambda w: w > 0), min_size=1, max_size=8),
       lo=factors, hi=factors.map(lambda f: 1 + f))
def test_pool_policy_exact_to_the_cent(pool: Decimal, ws: list[Decimal], lo: Decimal,
                                       hi: Decimal) -> None:
    plan = Plan(name="p", inputs={"metrics": {"x": {}}}, policies=[
        BonusPool(id="pool", pool=str(pool), weight="x", floor=f"{lo} * mean_share",
                  cap=f"{hi} * mean_share")])
    try:
        run = plan.evaluate(_records(ws))
    except InfeasibleError:
        # the mean share's floor/cap rounded to the cent can leave no room (a few cents)
        assume(False)
        return
    assert run.total == pool
    with decimal.localcontext(CONTEXT):
        mean = pool / len(ws)
    for r in run:
        assert lo * mean <= r.total <= hi * mean


def test_pool_floors_above_the_pool_are_infeasible() -> None:
    with pytest.raises(InfeasibleError, match="floors add up to 30"):
        fill(D(20), [D(1), D(1)], lower=[D(15), D(15)])


# ---------------------------------------------------------------------- balancing

ratios = st.integers(min_value=100, max_value=600).map(lambda x: D(x) / 100)


@st.composite
def balance_cases(draw: st.DrawFn) -> dict[str, Any]:
    amounts = draw(st.lists(positive_cents, min_size=2, max_size=10))
    kw: dict[str, Any] = {}
    if draw(st.booleans()):
        kw["mean"] = {"min": draw(factors), "max": 1 + draw(factors) * 2}
    if draw(st.booleans()) or not kw:
        r1, r2 = sorted([draw(ratios), draw(ratios)])
        kw["ratio"] = {"min": r1 if draw(st.booleans()) else None,
                       "max": r2 if draw(st.booleans()) else None}
        if kw["ratio"]["min"] is None and kw["ratio"]["max"] is None:
            kw["ratio"]["max"] = r2
    return {"amounts": amounts, "kw": kw}


def _feasible_on_a_grid(amounts: list[Decimal], kw: dict[str, Any]) -> bool:
    """An independent check: does some k on a grid meet every bound exactly (with room
    for whole cents inside the mean bounds)?"""
    with decimal.localcontext(CONTEXT):
        total, n = sum(amounts), len(amounts)
        m = total / n
        if "mean" in kw:
            lo_c = (kw["mean"]["min"] * m).quantize(CENT, rounding=decimal.ROUND_CEILING)
            hi_c = (kw["mean"]["max"] * m).quantize(CENT, rounding=decimal.ROUND_FLOOR)
            if lo_c * n > total or hi_c * n < total:
                return False
        for step in range(0, 2001):
            k = D(step) / 100  # 0.00 .. 20.00
            new = [m + k * (b - m) for b in amounts]
            lo, hi = min(new), max(new)
            ok = True
            if "mean" in kw:
                ok = lo >= kw["mean"]["min"] * m and hi <= kw["mean"]["max"] * m
            if ok and "ratio" in kw:
                if lo <= 0:
                    ok = False
                else:
                    r = hi / lo
                    rmin, rmax = kw["ratio"]["min"], kw["ratio"]["max"]
                    ok = (rmin is None or r >= rmin) and (rmax is None or r <= rmax)
            if ok:
                return True
    return False


@given(case=balance_cases())
def test_balancing_keeps_total_order_and_bounds(case: dict[str, Any]) -> None:
    amounts, kw = case["amounts"], case["kw"]
    plan = Plan(name="b", inputs={"metrics": {"x": {}}}, policies=[
        FormulaLine(id="bonus", amount="x"),
        Balance(id="balance", of="bonus", method="scale_about_mean", **kw)])
    try:
        run = plan.evaluate(_records(amounts))
    except InfeasibleError:
        assert not _feasible_on_a_grid(amounts, kw)
        return
    after = [run[f"p{i:03d}"].total for i in range(len(amounts))]
    assert sum(after) == sum(amounts)  # the total, to the cent
    for i in range(len(amounts)):
        for j in range(len(amounts)):
            if amounts[i] < amounts[j]:
                assert after[i] <= after[j]  # never swapped
    details = run["p000"].line("balance").details
    k = details["k"]
    with decimal.localcontext(CONTEXT):
        m = sum(amounts) / len(amounts)
        exact = [m + k * (b - m) for b in amounts]
        if "mean" in kw:  # mean bounds hold exactly, after rounding too
            assert min(after) >= kw["mean"]["min"] * m
            assert max(after) <= kw["mean"]["max"] * m
        if "ratio" in kw and k != 1:
            # ratio bounds hold on the exact amounts (up to the 34th digit) ...
            r = max(exact) / min(exact)
            tiny = D("1e-25")
            if kw["ratio"]["min"] is not None:
                assert r >= kw["ratio"]["min"] - tiny
            if kw["ratio"]["max"] is not None:
                assert r <= kw["ratio"]["max"] + tiny
        # ... and each rounded amount is within a cent of its exact value, plus the cents
        # that rounding a mean bound inwards (a floor up, a cap down) moved
        bounded = 0
        if "mean" in kw:
            lo_c = (kw["mean"]["min"] * m).quantize(CENT, rounding=decimal.ROUND_CEILING)
            hi_c = (kw["mean"]["max"] * m).quantize(CENT, rounding=decimal.ROUND_FLOOR)
            bounded = sum(1 for a in after if a in (lo_c, hi_c))
        for a, e in zip(after, exact, strict=True):
            assert abs(a - e) < (1 + bounded) * CENT


@given(amounts=st.lists(positive_cents, min_size=2, max_size=10), lo=factors,
       hi=factors.map(lambda f: 1 + f))
def test_clamp_keeps_total_order_and_mean_bounds(amounts: list[Decimal], lo: Decimal,
                                                 hi: Decimal) -> None:
    plan = Plan(name="b", inputs={"metrics": {"x": {}}}, policies=[
        FormulaLine(id="bonus", amount="x"),
        Balance(id="balance", of="bonus", method="clamp", mean={"min": lo, "max": hi})])
    try:
        run = plan.evaluate(_records(amounts))
    except InfeasibleError:
        # only when the bounds, rounded inwards to the cent, leave no room
        with decimal.localcontext(CONTEXT):
            m = sum(amounts) / len(amounts)
        assert (lo * m).quantize(CENT, rounding=decimal.ROUND_CEILING) * len(amounts) > sum(
            amounts) or (hi * m).quantize(CENT, rounding=decimal.ROUND_FLOOR) * len(
            amounts) < sum(amounts)
        return
    after = [run[f"p{i:03d}"].total for i in range(len(amounts))]
    assert sum(after) == sum(amounts)
    with decimal.localcontext(CONTEXT):
        m = sum(amounts) / len(amounts)
    for i, a in enumerate(after):
        assert lo * m <= a <= hi * m
        for j in range(len(amounts)):
            if amounts[i] < amounts[j]:
                assert a <= after[j]


# ---------------------------------------------------------------------- order independence

scores = st.integers(min_value=0, max_value=20).map(D)  # small range: many ties


def _awards_plan(tie_rule: str, cutoff: str) -> Plan:
    return Plan(name="a", inputs={"metrics": {"x": {}}}, policies=[
        Contest(id="contest", score="x", prizes=[700, 300, 101], threshold=3, ties=tie_rule,
                **({"tie_keys": ["x * 0"]} if tie_rule == "keys" else {})),
        Honour(id="star", title="Star", criteria="x >= 5", keys=["x"], max=2,
               cutoff_ties=cutoff, cash=50),
        RankingFlag(id="bottom", flag="bottom", side="bottom", share=D("0.3"),
                    keys=["x"], cutoff_ties=cutoff),
    ])


@given(data=st.data(), xs=st.lists(scores, min_size=1, max_size=12),
       tie_rule=st.sampled_from(["share", "best", "keys"]),
       cutoff=st.sampled_from(["include", "exclude", "keys"]))
def test_awards_and_flags_do_not_depend_on_record_order(data: st.DataObject, xs: list[Decimal],
                                                        tie_rule: str, cutoff: str) -> None:
    plan = _awards_plan(tie_rule, cutoff)
    records = _records(xs)
    shuffled = data.draw(st.permutations(records))
    assert plan.evaluate(shuffled).to_json() == plan.evaluate(records).to_json()


@given(xs=st.lists(scores, min_size=1, max_size=12),
       tie_rule=st.sampled_from(["share", "best"]),
       cutoff=st.sampled_from(["include", "exclude"]))
def test_tied_payees_are_treated_alike(xs: list[Decimal], tie_rule: str, cutoff: str) -> None:
    run = _awards_plan(tie_rule, cutoff).evaluate(_records(xs))
    by_score: dict[Decimal, list[Any]] = {}
    for i, x in enumerate(xs):
        by_score.setdefault(x, []).append(run[f"p{i:03d}"])
    for tied in by_score.values():
        prizes = {r.amount("contest") for r in tied}
        if tie_rule == "best":
            assert len(prizes) == 1
        else:  # shared evenly: at most a cent apart (the split's indivisible cents)
            assert max(prizes) - min(prizes) <= CENT
        assert len({tuple(r.titles) for r in tied}) == 1
        assert len({tuple(r.flags) for r in tied}) == 1
        assert len({r.amount("star") for r in tied}) == 1
    # under share, the tied positions' prizes are paid out exactly
    if tie_rule == "share":
        qualified = sum(1 for x in xs if x >= 3)
        assert sum(r.amount("contest") for r in run) == sum(
            [D(700), D(300), D(101)][:qualified], D(0))


@given(values=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=15),
       quantum=st.sampled_from([D("0.01"), D("0.05"), D("1"), D("10")]),
       scale=st.sampled_from([D("0.001"), D("0.0001"), D("1")]),
       data=st.data())
def test_rounding_to_a_total_gives_the_largest_remainders_their_units(
        values: list[int], quantum: Decimal, scale: Decimal, data: st.DataObject) -> None:
    """Exact outcome, against the rule written out plainly: each value rounded down to the
    quantum, then one quantum more to each of the largest remainders (ties: smaller key)."""
    exact = [D(v) * scale for v in values]
    with decimal.localcontext(CONTEXT):
        units = [int((x / quantum).to_integral_value(rounding=decimal.ROUND_FLOOR))
                 for x in exact]
        whole = (sum(exact, D(0)) / quantum).to_integral_value(rounding=decimal.ROUND_HALF_UP)
        left = int(whole) - sum(units)
        keys = data.draw(st.permutations(list(range(len(values)))))
        by_remainder = sorted(range(len(values)),
                              key=lambda i: (-(exact[i] / quantum - units[i]), keys[i]))
        for i in by_remainder[:left]:
            units[i] += 1
        want = [D(u) * quantum for u in units]
        paid = round_to_total(exact, whole * quantum, quantum, order=keys)
    assert paid == want
    assert [x.as_tuple().exponent for x in paid] == [
        min(quantum.as_tuple().exponent, 0)] * len(paid)  # type: ignore[operator]


def _rounded_to_total_plainly(exact: list[Decimal], total: Decimal, quantum: Decimal,
                              lower: list[Decimal | None], upper: list[Decimal | None],
                              keys: list[int]) -> list[Decimal]:
    """The rule of round_to_total written out plainly, one value at a time."""
    def whole(x: Decimal, mode: str) -> int:
        return int((x / quantum).to_integral_value(rounding=mode))

    lo = [None if b is None else whole(b, decimal.ROUND_CEILING) for b in lower]
    hi = [None if b is None else whole(b, decimal.ROUND_FLOOR) for b in upper]
    units = []
    for x, a, b in zip(exact, lo, hi, strict=True):
        if a is not None and b is not None and a > b:
            raise InfeasibleError("no multiple of the quantum between a floor and its cap")
        u = whole(x, decimal.ROUND_FLOOR)
        if a is not None and u < a:
            u = a
        if b is not None and u > b:
            u = b
        units.append(u)
    rem = [x / quantum - u for x, u in zip(exact, units, strict=True)]
    while sum(units) < whole(total, decimal.ROUND_HALF_UP):
        room = [i for i in range(len(units)) if hi[i] is None or units[i] < hi[i]]  # type: ignore[operator]
        if not room:
            raise InfeasibleError("caps")
        for i in sorted(room, key=lambda i: (-rem[i], keys[i]))[:whole(total, "ROUND_HALF_UP")
                                                                 - sum(units)]:
            units[i] += 1
            rem[i] -= 1
    while sum(units) > whole(total, decimal.ROUND_HALF_UP):
        room = [i for i in range(len(units)) if lo[i] is None or units[i] > lo[i]]  # type: ignore[operator]
        if not room:
            raise InfeasibleError("floors")
        for i in sorted(room, key=lambda i: (rem[i], -keys[i]))[:sum(units)
                                                                - whole(total, "ROUND_HALF_UP")]:
            units[i] -= 1
            rem[i] += 1
    return [D(u) * quantum for u in units]


bound_cents = st.none() | st.integers(min_value=0, max_value=5_000).map(lambda c: D(c) / 1000)


@given(values=st.lists(st.integers(min_value=0, max_value=5_000).map(lambda v: D(v) / 1000),
                       min_size=1, max_size=12),
       spare=st.integers(min_value=-300, max_value=300),
       uniform=st.booleans(), lower=st.lists(bound_cents, min_size=12, max_size=12),
       upper=st.lists(bound_cents, min_size=12, max_size=12), data=st.data())
def test_rounding_to_a_total_within_bounds_follows_the_rule(
        values: list[Decimal], spare: int, uniform: bool, lower: list[Decimal | None],
        upper: list[Decimal | None], data: st.DataObject) -> None:
    """round_to_total against the rule written out plainly, with floors and caps: one for
    all (its fast path) or one each, some missing; totals above and below the values."""
    n = len(values)
    lows, highs = ([lower[0]] * n, [upper[0]] * n) if uniform else (lower[:n], upper[:n])
    keys = data.draw(st.permutations(list(range(n))))
    with decimal.localcontext(CONTEXT):
        total = (sum(values, D(0)) / CENT).to_integral_value() * CENT + spare * CENT
        try:
            want: list[Decimal] | type[InfeasibleError] = _rounded_to_total_plainly(
                values, total, CENT, lows, highs, keys)
        except InfeasibleError:
            want = InfeasibleError
        try:
            got: list[Decimal] | type[InfeasibleError] = round_to_total(
                values, total, CENT, lower=lows, upper=highs, order=keys)
        except InfeasibleError:
            got = InfeasibleError
    assert got == want


def test_rounding_to_a_total_keeps_the_quantum_as_written() -> None:
    """0.01 and 0.010 are equal numbers written differently: each result is written with
    its own quantum's exponent (a cache keyed on the number would mix them up)."""
    values = [D("1.005"), D("2.0049"), D("3.0001")]
    thousandths = round_to_total(values, D("6.010"), D("0.010"))
    cents = round_to_total(values, D("6.01"), D("0.01"))
    assert [str(x) for x in cents] == ["1.01", "2.00", "3.00"]
    assert [str(x) for x in thousandths] == ["1.010", "2.000", "3.000"]
