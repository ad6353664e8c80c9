"""Differential tests for batch evaluation (issue 7): a fast path against a reference.

- For payee-scoped plans, evaluating a population in one call gives exactly what
  evaluating each record alone gives.
- Tiered commission through the engine agrees with a plain, independent
  re-implementation of each tier method and boundary rule, to the cent.
"""

from __future__ import annotations

import decimal
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from incentives import Plan, Tiered, load_plan
from incentives.money import CONTEXT
from incentives.testing.strategies import populations

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
TELECOM = load_plan(ROOT / "examples/telecom/plan.yaml")
BANK = load_plan(ROOT / "examples/bank/plan.yaml")


def _payee_scoped(plan: Plan) -> bool:
    return all(p.scope == "payee" for p in plan.compile().policies)


def _one_by_one(plan: Plan, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        (result,) = plan.evaluate([r]).results
        out.append(result.to_dict())
    return sorted(out, key=lambda d: (d["period"], d["payee"]))


def test_the_examples_are_payee_scoped() -> None:
    assert _payee_scoped(TELECOM)
    assert _payee_scoped(BANK)


@given(populations(TELECOM, max_size=6))
def test_telecom_batch_equals_each_record_alone(records: list[dict[str, Any]]) -> None:
    batch = [r.to_dict() for r in TELECOM.evaluate(records).results]
    assert batch == _one_by_one(TELECOM, records)


@given(populations(BANK, max_size=6))
def test_bank_batch_equals_each_record_alone(records: list[dict[str, Any]]) -> None:
    batch = [r.to_dict() for r in BANK.evaluate(records).results]
    assert batch == _one_by_one(BANK, records)


# ---------------------------------------------------------------- tiers

CENT = D("0.01")


def reference_tiers(method: str, above: bool, tiers: list[dict[str, Decimal]],
                    basis: Decimal) -> Decimal:
    """Tiered commission, written out plainly from DESIGN.md (no bisect, no shared code)."""
    starts = [t["from"] for t in tiers]
    reached = -1
    for i, start in enumerate(starts):
        if basis > start or (above and basis == start):
            reached = i
    if method == "marginal":
        amount = D(0)
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else None
            top = basis if end is None else min(basis, end)
            if top > start:
                amount += (top - start) * tiers[i]["rate"]
    elif method == "retroactive":
        amount = basis * tiers[reached]["rate"] if reached >= 0 else D(0)
    elif method == "step":
        amount = tiers[reached]["amount"] if reached >= 0 else D(0)
    else:  # interpolated
        if reached < 0:
            amount = D(0)
        elif reached + 1 < len(tiers):
            lo, hi = starts[reached], starts[reached + 1]
            a0, a1 = tiers[reached]["amount"], tiers[reached + 1]["amount"]
            amount = a0 + (a1 - a0) * (basis - lo) / (hi - lo)
        else:
            amount = tiers[reached]["amount"]
            if "rate" in tiers[reached]:
                amount += (basis - starts[reached]) * tiers[reached]["rate"]
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@st.composite
def tier_specs(draw: st.DrawFn) -> tuple[str, bool, list[dict[str, Decimal]]]:
    method = draw(st.sampled_from(["marginal", "retroactive", "step", "interpolated"]))
    above = draw(st.booleans())
    first = draw(st.sampled_from([D(0), D(1000)]))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=40_000), max_size=4))
    starts = [first]
    for g in gaps:
        starts.append(starts[-1] + g)
    tiers = []
    for _ in starts:
        tier: dict[str, Decimal] = {}
        if method in ("marginal", "retroactive") or draw(st.booleans()):
            tier["rate"] = D(draw(st.integers(min_value=0, max_value=200))) / 1000
        if method in ("step", "interpolated"):
            tier["amount"] = D(draw(st.integers(min_value=0, max_value=500_000))) / 100
        tiers.append(tier)
    for tier, start in zip(tiers, starts, strict=True):
        tier["from"] = start
    return method, above, tiers


@given(tier_specs(), st.data())
def test_tiered_engine_agrees_with_a_plain_reimplementation(
        spec: tuple[str, bool, list[dict[str, Decimal]]], data: st.DataObject) -> None:
    method, above, tiers = spec
    plan = Plan(name="t", inputs={"metrics": {"basis": {"min": 0, "max": 300_000}}},
                policies=[Tiered(id="c", basis="basis", method=method,
                                 on_threshold="above" if above else "below", tiers=tiers)])
    # drawn by the toolkit: values lean towards the thresholds, where methods differ
    records = data.draw(populations(plan, max_size=5, groups=None))
    # and every threshold exactly, with a cent either side: where boundary rules bite
    period = records[0]["period"]
    edges = sorted({e for t in tiers for e in (t["from"] - CENT, t["from"], t["from"] + CENT)
                    if e >= 0})
    records += [{"payee": f"edge{i:02d}", "period": period, "metrics": {"basis": e}}
                for i, e in enumerate(edges)]
    run = plan.evaluate(records)
    with decimal.localcontext(CONTEXT):
        for r in records:
            basis = r["metrics"]["basis"]
            expected = reference_tiers(method, above, tiers, basis)
            assert run[r["payee"]].amount("c") == expected, (method, above, basis)
