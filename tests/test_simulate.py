"""Simulation: variants and their diffs, sweeps, comparison figures against hand-computed
values, DataFrames, synthetic populations."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives import Floor, PlanError, UsageError, load_plan
from incentives.populations import Grade, synthetic
from incentives.simulate import (
    REMOVE,
    Change,
    diff,
    percentile,
    simulate,
    summarize,
    sweep,
    variant,
)

D = Decimal

SMALL = """
name: small
inputs:
  metrics: {sales: {min: 0}}
parameters: {floor_amount: 300, rate: 0.1}
policies:
  - {type: formula, id: commission, amount: sales * rate}
  - {type: cap, id: ceiling, limit: 1200}
  - {type: floor, id: floor, amount: floor_amount}
"""

# payee, group, sales -> commission, cap, floor, total (worked by hand)
#   a g1  1000 ->  100,    0, 200,  300   on the floor
#   b g1  3000 ->  300,    0,   0,  300   exactly on the floor: no top-up, not "on the floor"
#   c g1  9000 ->  900,    0,   0,  900
#   d g1  9000 ->  900,    0,   0,  900
#   e g2  4000 ->  400,    0,   0,  400
#   f g2  4000 ->  400,    0,   0,  400
#   g g2 12000 -> 1200,    0,   0, 1200   exactly at the cap: no cut, not "at the cap"
#   h g2 14000 -> 1400, -200,   0, 1200   at the cap
PEOPLE = [("a", "g1", 1000), ("b", "g1", 3000), ("c", "g1", 9000), ("d", "g1", 9000),
          ("e", "g2", 4000), ("f", "g2", 4000), ("g", "g2", 12000), ("h", "g2", 14000)]


def records() -> list[dict[str, object]]:
    return [{"payee": p, "period": "2026-05", "group": g, "metrics": {"sales": s}}
            for p, g, s in PEOPLE]


@pytest.fixture
def small():  # type: ignore[no-untyped-def]
    return load_plan(SMALL)


# ---------------------------------------------------------------- comparison figures


def test_baseline_figures_match_hand_computed_values(small) -> None:  # type: ignore[no-untyped-def]
    sim = simulate(small, [], records(), progress=False)
    assert [r.total for r in sim.baseline.run] == [D(300), D(300), D(900), D(900), D(400),
                                                   D(400), D(1200), D(1200)]
    s = sim.compare(revenue="sales")["baseline"]
    assert s.payees == 8
    assert s.total_cost == D("5600.00")
    assert s.revenue == D(56000)
    assert s.cost_per_revenue == D("0.1")
    assert s.mean == D(700)
    # sorted: 300 300 400 400 900 900 1200 1200; median between 400 and 900
    assert s.median == D(650)
    # p10 at position 0.7 (between 300 and 300); p90 at 6.3 (between 1200 and 1200)
    assert s.p10 == D(300)
    assert s.p90 == D(1200)
    assert (s.on_floor, s.on_floor_share) == (1, D("0.125"))
    assert (s.at_cap, s.at_cap_share) == (1, D("0.125"))
    assert s.changes is None


def test_spread_per_group_matches_hand_computed_values(small) -> None:  # type: ignore[no-untyped-def]
    s = summarize(small.evaluate(records()))
    g1, g2 = s.groups["g1"], s.groups["g2"]
    # g1: 300 300 900 900; mean 600, every deviation 300 -> sd 300, cv 0.5
    assert (g1.payees, g1.total, g1.min, g1.max) == (4, D(2400), D(300), D(900))
    assert g1.max_min == D(3)
    assert g1.cv == D("0.5")
    # Gini: sum |xi - xj| over ordered pairs = 8 * 600 = 4800; / (2 * 16 * 600) = 0.25
    assert g1.gini == D("0.25")
    # g2: 400 400 1200 1200; mean 800, sd 400, cv 0.5; Gini 6400 / (2 * 16 * 800) = 0.25
    assert (g2.total, g2.max_min, g2.cv, g2.gini) == (D(3200), D(3), D("0.5"), D("0.25"))


def test_variant_winners_and_losers_match_hand_computed_values(small) -> None:  # type: ignore[no-untyped-def]
    # floor 450: a 300 -> 450, b 300 -> 450, e 400 -> 450, f 400 -> 450
    # cap 1100:  g 1200 -> 1100, h 1200 -> 1100; c and d unchanged
    v = variant(small, "floor up, cap down", parameters={"floor_amount": 450},
                changes={"policies.ceiling.limit": 1100})
    sim = simulate(small, [v], records(), progress=False)
    c = sim.compare(revenue="sales", top=3)
    s = c["floor up, cap down"]
    assert s.total_cost == D(5800)
    # 5800 / 56000 = 0.10357142857142857..., to the 34 significant digits of the arithmetic
    assert s.cost_per_revenue == D("0.1035714285714285714285714285714286")
    assert (s.on_floor, s.on_floor_share) == (4, D("0.5"))
    assert (s.at_cap, s.at_cap_share) == (2, D("0.25"))
    ch = s.changes
    assert ch is not None
    assert (ch.winners, ch.losers, ch.unchanged, ch.unmatched) == (4, 2, 2, 0)
    assert (ch.gained, ch.lost, ch.net) == (D(400), D(200), D(200))
    assert (ch.largest_gain, ch.largest_loss) == (D(150), D(100))
    assert [(b.payee, b.before, b.after, b.change) for b in ch.biggest] == [
        ("a", D(300), D(450), D(150)), ("b", D(300), D(450), D(150)),
        ("g", D(1200), D(1100), D(-100))]
    # every row of the table view carries the exact figures
    rows = {r["variant"]: r for r in c.rows()}
    assert rows["floor up, cap down"]["net_change"] == D(200)
    assert rows["baseline"]["winners"] is None


def test_percentile_is_linear_between_closest_ranks() -> None:
    xs = [D(v) for v in (15, 20, 35, 40, 50)]
    # h = 4 * 0.1 = 0.4: 15 + 0.4 * 5 = 17; h = 4 * 0.9 = 3.6: 40 + 0.6 * 10 = 46
    assert percentile(xs, "0.1") == D(17)
    assert percentile(xs, "0.9") == D(46)
    assert percentile(xs, "0.5") == D(35)
    assert percentile(xs, 0) == D(15)
    assert percentile(xs, 1) == D(50)
    assert percentile([D(7)], "0.9") == D(7)
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile(xs, "1.5")
    with pytest.raises(ValueError, match="no values"):
        percentile([], "0.5")


def test_payees_failing_in_one_run_are_counted_as_unmatched(small) -> None:  # type: ignore[no-untyped-def]
    # a variant whose formula divides by sales fails for a payee with zero sales
    v = variant(small, "per-sale", changes={"policies.commission.amount": "1000 / sales"})
    people = [*records(), {"payee": "z", "period": "2026-05", "group": "g1",
                           "metrics": {"sales": 0}}]
    sim = simulate(small, [v], people, progress=False)
    s = sim.compare()["per-sale"]
    assert s.errors == 1
    assert s.changes is not None
    assert s.changes.unmatched == 1
    assert s.payees == 8


# ---------------------------------------------------------------- variants and diffs


def test_variant_changes_a_tier_table_and_says_so() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    v = variant(plan, "steeper", changes={"policies.commission.tiers[1].rate": "0.05",
                                          "policies.commission.tiers[2].from": 90000})
    assert v.plan.policy("commission").tiers[1].rate == D("0.05")  # type: ignore[attr-defined]
    assert plan.policy("commission").tiers[1].rate == D("0.04")  # type: ignore[attr-defined]
    assert v.summary().splitlines() == [
        "steeper: 2 changes from telecom-key-account",
        "  policies.commission.tiers[1].rate: 0.04 -> 0.05",
        "  policies.commission.tiers[2].from: 80000 -> 90000",
    ]
    rec = {"payee": "x", "period": "2026-05", "metrics": {"traffic_revenue": 100000}}
    # 30000 * 0.02 + 60000 * 0.05 + 10000 * 0.06
    assert v.plan.evaluate([rec]).results[0].amount("commission") == D("4200.00")


def test_variant_removes_adds_and_reorders_policies() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    v = variant(plan, "no churn, capped", remove=["churn_penalty"],
                add=[{"type": "cap", "id": "ceiling", "limit": 6000, "after": "variable_pay"}])
    assert v.plan.policy_ids == ["commission", "new_business", "variable_pay", "ceiling", "floor"]
    text = [str(c) for c in v.changes()]
    assert text == ["policies.churn_penalty: removed (was churn_penalty policy 'churn_penalty')",
                    "policies.ceiling: added cap policy 'ceiling'"]
    bare = variant(plan, "bare floor", remove=["floor"],
                   add=[Floor(id="floor", amount="floor_amount")])
    assert [str(c) for c in bare.changes()] == [
        "policies.floor.label: removed (was 保底 (guaranteed floor))"]
    swapped = plan.replace_fields(policies=[plan.policies[1], plan.policies[0],
                                            *plan.policies[2:]])
    order = [c for c in diff(plan, swapped) if c.path == "policies (order)"]
    assert order == [Change("policies (order)", plan.policy_ids,
                            ["new_business", "commission", *plan.policy_ids[2:]])]


def test_variant_remove_sentinel_and_policy_by_index() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    v = variant(plan, "no fax", changes={"policies[1].items.new_fax": REMOVE,
                                         "policies.commission.tiers[2]": REMOVE})
    assert [str(c) for c in v.changes()] == [
        "policies.commission.tiers[2]: removed (was {from: 80000, rate: 0.06})",
        "policies.new_business.items.new_fax: removed (was {per_unit: 60, label: 网络传真})",
    ]


def test_variant_errors_are_clear() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    with pytest.raises(UsageError, match="no item with id 'comission'; did you mean 'commission'"):
        variant(plan, "x", changes={"policies.comission.tiers[1].rate": "0.05"})
    with pytest.raises(UsageError, match=r"has 3 items; \[5\] is out of range"):
        variant(plan, "x", changes={"policies.commission.tiers[5].rate": "0.05"})
    with pytest.raises(UsageError, match="unknown parameter 'floor_amout'; did you mean 'floor_amount'"):
        variant(plan, "x", parameters={"floor_amout": 900})
    with pytest.raises(UsageError, match="no policy 'flor' to remove; did you mean 'floor'"):
        variant(plan, "x", remove=["flor"])
    with pytest.raises(PlanError, match="variant 'x'") as err:
        variant(plan, "x", changes={"policies.commission.tiers[1].rate": "-0.05"})
    assert "negative" in str(err.value)
    with pytest.raises(PlanError, match="unknown name 'traffic_revenu'"):
        variant(plan, "x", changes={"policies.commission.basis": "traffic_revenu"})


def test_parameter_values_stay_numbers() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    for value in (900, "900", 900.0, D(900)):
        v = variant(plan, "f", parameters={"floor_amount": value})
        assert v.plan.parameters["floor_amount"] == D(900)
        assert isinstance(v.plan.parameters["floor_amount"], Decimal)


def test_sweep_makes_one_variant_per_value_on_the_same_population() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    vs = sweep(plan, "floor_amount", [500, "700", 900])
    assert [v.name for v in vs] == ["floor_amount=500", "floor_amount=700", "floor_amount=900"]
    assert [v.value for v in vs] == [D(500), D(700), D(900)]
    people = [{"payee": "y", "period": "2026-05", "metrics": {"traffic_revenue": 10000}}]
    sim = simulate(plan, vs, people, progress=False)
    assert [o.run.total for o in sim.outcomes] == [D(700), D(500), D(700), D(900)]
    tiers = sweep(plan, "policies.commission.tiers[1].rate", ["0.03", "0.05"])
    assert [v.plan.policy("commission").tiers[1].rate for v in tiers] == [  # type: ignore[attr-defined]
        D("0.03"), D("0.05")]
    with pytest.raises(UsageError, match="did you mean 'floor_amount'"):
        sweep(plan, "floor_amout", [1])


def test_simulate_refuses_two_outcomes_with_one_name(small) -> None:  # type: ignore[no-untyped-def]
    v = variant(small, "x", parameters={"rate": "0.2"})
    with pytest.raises(UsageError, match="two outcomes named 'x'"):
        simulate(small, [v, v], records(), progress=False)


def test_simulate_progress_bar_reaches_the_end(small, capsys) -> None:  # type: ignore[no-untyped-def]
    simulate(small, sweep(small, "rate", ["0.1", "0.2", "0.3"]), records(), progress=True)
    err = capsys.readouterr().err
    assert "simulate" in err
    assert "4/4" in err


# ---------------------------------------------------------------- DataFrames


def test_records_from_a_dataframe_nan_is_missing_and_numbers_are_exact(small) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    frame = pd.DataFrame({"payee": ["a", "b", "c"], "period": ["2026-05"] * 3,
                          "group": ["g1", "g1", None],
                          "sales": [1234.1, np.nan, 5000.0]})
    assert isinstance(frame["sales"].iloc[0], np.floating)
    run = small.evaluate(frame, errors="collect")
    # 1234.1 is read from its shortest repr: commission 123.41, not 123.40999...
    assert run["a"].amount("commission") == D("123.41")
    assert run["c"].total == D("500.00")
    assert len(run.errors) == 1
    err = run.errors[0]
    assert (err.payee, err.field) == ("b", "metrics.sales")  # type: ignore[attr-defined]
    ints = pd.DataFrame({"payee": ["a"], "period": ["2026-05"], "sales": np.array([7000],
                                                                                  dtype=np.int64)})
    assert small.evaluate(ints)["a"].total == D("700.0")


def test_run_to_dataframe_keeps_decimals_and_floats_on_request(small) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pandas")
    from incentives.dataframes import run_frame

    run = small.evaluate(records())
    df = run_frame(run)
    assert list(df.columns) == ["payee", "period", "group", "commission", "ceiling", "floor",
                                "total", "titles", "flags"]
    assert len(df) == 8
    assert df["total"].dtype == object
    assert df.loc[df.payee == "h", "ceiling"].iloc[0] == D("-200.00")
    assert isinstance(df["total"].iloc[0], Decimal)
    assert sum(df["total"], D(0)) == run.total
    f = run_frame(run, floats=True)
    assert str(f["total"].dtype) == "float64"
    assert f["total"].sum() == 5600.0
    assert run.to_dataframe().equals(df)
    assert run.to_dataframe(floats=True).equals(f)


def test_comparison_dataframes(small) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pandas")
    v = variant(small, "floor 450", parameters={"floor_amount": 450})
    c = simulate(small, [v], records(), progress=False).compare(revenue="sales")
    df = c.to_dataframe()
    assert list(df.index) == ["baseline", "floor 450"]
    assert df.loc["floor 450", "total_cost"] == D("6000")
    assert isinstance(df.loc["baseline", "median"], Decimal)
    assert c.to_dataframe(floats=True).loc["floor 450", "on_floor_share"] == 0.5
    groups = c.groups_dataframe()
    assert set(groups["group"]) == {"g1", "g2"}
    changes = c.changes_dataframe()
    assert list(changes["payee"]) == ["a", "b", "e", "f"]
    assert "floor 450" in c.to_text()


# ---------------------------------------------------------------- populations


def test_synthetic_population_is_reproducible_and_fits_the_plan() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    a = synthetic(plan, 200, seed=11)
    assert a == synthetic(plan, 200, seed=11)
    assert a != synthetic(plan, 200, seed=12)
    run = plan.evaluate(a, errors="collect")
    assert run.ok
    assert len(run) == 200
    groups = [r["group"] for r in a]
    assert {g: groups.count(g) for g in set(groups)} == {"g1": 50, "g2": 50, "g3": 50, "g4": 50}
    for r in a:
        for v in r["metrics"].values():
            assert isinstance(v, Decimal)
        assert r["metrics"]["traffic_revenue"] == r["metrics"]["traffic_revenue"].quantize(D("0.01"))
    lost = [e for r in a for e in r.get("events", {}).get("lost_customers", [])]
    assert lost
    assert all(e["lost"].startswith("2026-05") for e in lost)
    assert {e["reason"] for e in lost} <= {"competitor", "price", "service", "closure"}


def test_synthetic_revenue_follows_the_grades() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    grades = [Grade("low", D(1), D(10000), 0.2), Grade("high", D(1), D(100000), 0.2)]
    people = synthetic(plan, 400, seed=3, grades=grades, groups=["north", "south"])
    revenue = sorted(r["metrics"]["traffic_revenue"] for r in people)
    # two clusters a factor ten apart: the lower half sits near 10000, the upper near 100000
    assert D(5000) < revenue[100] < D(20000)
    assert D(50000) < revenue[300] < D(200000)
    assert {r["group"] for r in people} == {"north", "south"}


def test_synthetic_quota_attainment_and_grade_attribute() -> None:
    plan = load_plan("""
name: quota
inputs:
  metrics: {revenue: {min: 0}, quota: {min: 0}}
  attributes: {grade: {allowed: [junior, senior, principal]}}
policies:
  - {type: formula, id: bonus, amount: "revenue / quota * 1000"}
""")
    people = synthetic(plan, 300, seed=5, quota="quota", attainment=(1.0, 0.1))
    ratios = [float(r["metrics"]["revenue"] / r["metrics"]["quota"]) for r in people]
    mean = sum(ratios) / len(ratios)
    sd = math.sqrt(sum((x - mean) ** 2 for x in ratios) / len(ratios))
    assert 0.95 < mean < 1.05
    assert 0.07 < sd < 0.13
    assert {r["attributes"]["grade"] for r in people} == {"junior", "senior", "principal"}
    quotas = {r["attributes"]["grade"]: r["metrics"]["quota"] for r in people}
    assert quotas == {"junior": D(30000), "senior": D(60000), "principal": D(100000)}
    assert plan.evaluate(people, errors="collect").ok
    with pytest.raises(UsageError, match="did you mean 'quota'"):
        synthetic(plan, 1, quota="qouta")


def test_synthetic_events_rate_zero_means_none() -> None:
    plan = load_plan("examples/telecom/plan.yaml")
    people = synthetic(plan, 50, seed=1, events={"lost_customers": 0})
    assert all("events" not in r for r in people)
    with pytest.raises(UsageError, match="no event list 'lost'"):
        synthetic(plan, 1, events={"lost": 1})


def test_simulate_reads_a_dataframe_population(small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{"payee": p, "period": "2026-05", "group": g, "sales": s}
                          for p, g, s in PEOPLE])
    sim = simulate(small, [], frame, progress=False)
    assert sim.baseline.run.total == D(5600)
    assert sim.compare(revenue="sales")["baseline"].cost_per_revenue == D("0.1")


# ---------------------------------------------------------------- properties


@given(floor=st.integers(0, 500), rate=st.integers(0, 30), limit=st.integers(500, 3000),
       sales=st.lists(st.integers(0, 30000), min_size=1, max_size=12))
def test_changes_account_for_the_cost_difference_and_diffs_replay(
        floor: int, rate: int, limit: int, sales: list[int]) -> None:
    # the plan refuses a floor above the cap, so floors stay at or below the lowest cap
    plan = load_plan(SMALL)
    changes = {"policies.ceiling.limit": limit, "parameters.rate": D(rate) / 100}
    v = variant(plan, "v", parameters={"floor_amount": floor}, changes=changes)
    # the diff, replayed as changes on the baseline, gives the same plan back
    replay = variant(plan, "replay", changes={c.path: c.after for c in v.changes()})
    assert replay.plan == v.plan
    people = [{"payee": f"p{i}", "period": "2026-05", "group": f"g{i % 3}",
               "metrics": {"sales": x}} for i, x in enumerate(sales)]
    c = simulate(plan, [v], people, progress=False).compare(revenue="sales")
    base, s = c["baseline"], c["v"]
    ch = s.changes
    assert ch is not None
    assert ch.winners + ch.losers + ch.unchanged == len(sales)
    assert ch.net == s.total_cost - base.total_cost
    assert base.p10 is not None
    assert base.median is not None
    assert base.p90 is not None
    assert base.p10 <= base.median <= base.p90
    for g in s.groups.values():
        assert g.gini is None or D(0) <= g.gini < 1
        assert g.max_min is None or g.max_min >= 1
