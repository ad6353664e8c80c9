"""Property tests for the core invariants (issue 2)."""

from __future__ import annotations

import decimal
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from incentives import Floor, FormulaLine, Plan, Tiered, load_plan
from incentives.errors import CONTROL_CHARACTERS
from incentives.money import CONTEXT

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
TELECOM = load_plan(ROOT / "examples/telecom/plan.yaml")
BANK = load_plan(ROOT / "examples/bank/plan.yaml")

amounts = st.decimals(min_value=0, max_value=500_000, places=2, allow_nan=False,
                      allow_infinity=False)
counts = st.integers(min_value=0, max_value=20)
reasons = st.sampled_from(["competitor", "closure", "price", "moved"])
lost = st.lists(
    st.fixed_dictionaries({
        "id": st.text("abcdef0123456789", min_size=1, max_size=6),
        "monthly_value": amounts.map(lambda d: d / 10),
        "reason": reasons,
        "lost": st.just("2026-05-10"),
    }),
    max_size=4,
)


@st.composite
def telecom_records(draw: st.DrawFn, payee: str) -> dict[str, object]:
    return {
        "payee": payee,
        "period": "2026-05",
        "group": draw(st.sampled_from(["north", "south"])),
        "metrics": {"traffic_revenue": draw(amounts), "new_400": draw(counts),
                    "new_fax": draw(counts), "new_ipvpn": draw(counts)},
        "events": {"lost_customers": draw(lost)},
    }


@st.composite
def telecom_populations(draw: st.DrawFn) -> list[dict[str, object]]:
    n = draw(st.integers(min_value=1, max_value=8))
    return [draw(telecom_records(f"p{i:02d}")) for i in range(n)]


@given(telecom_populations())
def test_lines_sum_to_total_and_floor_holds(population: list[dict[str, object]]) -> None:
    run = TELECOM.evaluate(population)
    assert len(run) == len(population)
    for r in run:
        assert r.total == sum((line.amount for line in r.lines), D(0))
        assert r.total >= D("700.00")  # the floor
        for line in r.lines:
            assert line.amount == line.amount.quantize(D("0.01"))
        # the churn penalty never exceeds 40% of variable pay
        assert -r.amount("churn_penalty") <= D("0.4") * r.values["variable_pay"] + D("0.005")
    assert run.total == sum((r.total for r in run), D(0))


@given(telecom_populations(), st.randoms(use_true_random=False))
def test_record_order_does_not_matter(population: list[dict[str, object]], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(population)
    rnd.shuffle(shuffled)
    assert TELECOM.evaluate(population).to_json() == TELECOM.evaluate(shuffled).to_json()


# ---------------------------------------------------------------- tiers

rates = st.decimals(min_value=0, max_value=1, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tier_tables(draw: st.DrawFn) -> list[dict[str, Decimal]]:
    gaps = draw(st.lists(st.integers(min_value=1, max_value=50_000), min_size=0, max_size=5))
    starts = [D(0)]
    for g in gaps:
        starts.append(starts[-1] + g)
    return [{"from": s, "rate": draw(rates)} for s in starts]


def _marginal(tiers: list[dict[str, Decimal]]) -> Plan:
    return Plan(name="t", inputs={"metrics": {"basis": {}}},
                policies=[Tiered(id="c", basis="basis", method="marginal", tiers=tiers)])


def _exact(plan: Plan, basis: Decimal) -> Decimal:
    run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"basis": basis}}])
    amount: Decimal = run["a"].line("c").details["amount"]
    return amount


@given(tier_tables(), amounts, amounts)
def test_marginal_tiers_are_monotone(tiers: list[dict[str, Decimal]], x: D, y: D) -> None:
    plan = _marginal(tiers)
    lo, hi = sorted((x, y))
    assert _exact(plan, lo) <= _exact(plan, hi)
    run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"basis": lo}},
                         {"payee": "b", "period": "2026-05", "metrics": {"basis": hi}}])
    assert run["a"].total <= run["b"].total


@given(tier_tables(), st.data())
def test_marginal_tiers_are_continuous_at_thresholds(tiers: list[dict[str, Decimal]],
                                                     data: st.DataObject) -> None:
    plan = _marginal(tiers)
    i = data.draw(st.integers(min_value=0, max_value=len(tiers) - 1))
    t = tiers[i]["from"]
    eps = data.draw(st.sampled_from([D("0.01"), D("0.0001"), D("1")]))
    below_rate = tiers[i - 1]["rate"] if i > 0 else D(0)
    with decimal.localcontext(CONTEXT):
        # just below a threshold, the amount differs by exactly the lower rate x eps
        assert _exact(plan, t) - _exact(plan, t - eps) == below_rate * eps if t - eps >= 0 \
            else True
        # and just above, by the tier's own rate x eps: no jump at the threshold
        assert _exact(plan, t + eps) - _exact(plan, t) == tiers[i]["rate"] * eps


# ---------------------------------------------------------------- floors

@given(st.decimals(min_value=-100_000, max_value=100_000, places=2, allow_nan=False,
                   allow_infinity=False),
       st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False,
                   allow_infinity=False))
def test_floor_always_holds(earned: D, floor: D) -> None:
    plan = Plan(name="f", inputs={"metrics": {"earned": {}}},
                policies=[FormulaLine(id="pay", amount="earned"), Floor(id="floor", amount=floor)])
    r = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"earned": earned}}])["a"]
    assert r.total >= floor
    assert r.total == max(earned, floor)


# ---------------------------------------------------------------- YAML round trip

def test_example_plans_survive_a_yaml_round_trip() -> None:
    for plan in (TELECOM, BANK):
        again = load_plan(plan.to_yaml())
        assert again == plan
        assert again.to_yaml() == plan.to_yaml()


@given(tier_tables(), st.sampled_from(["marginal", "retroactive"]),
       st.sampled_from(["above", "below"]),
       # a label is one line of printable text: control characters are refused (hostile corpus)
       st.text(min_size=1, max_size=12).map(lambda t: CONTROL_CHARACTERS.sub("", t)).filter(bool))
def test_generated_plans_survive_a_yaml_round_trip(tiers: list[dict[str, Decimal]], method: str,
                                                   boundary: str, label: str) -> None:
    plan = Plan(
        name="generated", version="3",
        inputs={"metrics": {"basis": {}}},
        parameters={"floor_amount": D("700.5")},
        policies=[Tiered(id="c", label=label, basis="basis", method=method,
                         on_threshold=boundary, tiers=tiers),
                  Floor(id="floor", amount="floor_amount")],
    )
    again = load_plan(plan.to_yaml())
    assert again == plan
