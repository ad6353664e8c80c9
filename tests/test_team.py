"""Team-scoped policies: the worked examples E3, E4, E5, E8 to the cent (API and CLI),
and the rules around them (tie rules, cut-offs, bands, pools, balancing, leaders, spread)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import (
    Balance,
    BonusPool,
    Contest,
    EvaluationError,
    FormulaLine,
    Honour,
    InfeasibleError,
    Plan,
    PlanError,
    RankingFlag,
    SpreadFigures,
    load_plan,
    read_records_file,
)

D = Decimal
CASES = Path(__file__).resolve().parent / "cases" / "team"


def _run(plan: str, records: str):  # type: ignore[no-untyped-def]
    return load_plan(CASES / plan).evaluate(read_records_file(CASES / records))


def _cli_totals(cli: Any, plan: str, records: str) -> dict[str, Any]:
    res = cli("run", CASES / plan, CASES / records, "--format", "json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["errors"] == []
    return data  # type: ignore[no-any-return]


def _totals(data: dict[str, Any]) -> dict[str, str]:
    return {r["payee"]: r["total"] for r in data["results"]}


# ---------------------------------------------------------------------- E3


def test_e3_share_api() -> None:
    run = _run("e3_share.yaml", "e3.json")
    assert {r.payee: r.total for r in run} == {
        "A": D("800.00"), "B": D("350.00"), "C": D("350.00"), "D": D("0.00"), "E": D("0.00")}
    b = run["B"].line("contest").details
    assert b["rank"] == 2
    assert b["tie"] == {"rule": "share", "with": ["C"], "positions": [2, 3],
                        "prizes": [D("500.00"), D("200.00")], "pooled": D("700.00")}
    assert run["C"].values["contest_rank"] == D(2)
    assert run["D"].line("contest").details["rank"] == 4
    e = run["E"].line("contest").details
    assert e["qualified"] is False
    assert e["rank"] is None
    assert e["gap_to_qualify"] == D(6)
    # the score gap to the next prize: D (72) would need 85 to draw level with B and C
    assert run["D"].line("contest").details["gap_to_next_prize"] == D(13)
    assert run["A"].line("contest").details["gap_to_next_prize"] is None
    # tied B and C would draw level with A at 91; E (64) must first qualify, and then
    # reach B and C's 85
    assert run["B"].line("contest").details["gap_to_next_prize"] == D(6)
    assert run["C"].line("contest").details["gap_to_next_prize"] == D(6)
    assert e["gap_to_next_prize"] == D(21)


def test_e3_best_api() -> None:
    run = _run("e3_best.yaml", "e3.json")
    assert {r.payee: r.total for r in run} == {
        "A": D("800.00"), "B": D("500.00"), "C": D("500.00"), "D": D("0.00"), "E": D("0.00")}
    assert run["D"].line("contest").details["rank"] == 4
    assert run["C"].line("contest").details["tie"]["rule"] == "best"


def test_e3_cli(cli: Any) -> None:
    share = _cli_totals(cli, "e3_share.yaml", "e3.json")
    assert _totals(share) == {"A": "800.00", "B": "350.00", "C": "350.00", "D": "0.00",
                              "E": "0.00"}
    best = _cli_totals(cli, "e3_best.yaml", "e3.json")
    assert _totals(best) == {"A": "800.00", "B": "500.00", "C": "500.00", "D": "0.00",
                             "E": "0.00"}
    b = next(r for r in share["results"] if r["payee"] == "B")
    assert b["lines"][0]["details"]["tie"]["pooled"] == "700.00"
    assert b["lines"][0]["details"]["rank"] == 2


# ---------------------------------------------------------------------- E4


def test_e4_pool_api() -> None:
    run = _run("e4.yaml", "e4.json")
    assert {r.payee: r.total for r in run} == {
        "A": D("4500.00"), "B": D("3000.00"), "C": D("1500.00")}
    a = run["A"].line("pool").details
    assert a["held_at"] == "upper"
    assert a["cap"] == D("4500.0")
    assert run["B"].line("pool").details["factor"] == D(150)
    assert run["B"].line("pool").details["held_at"] is None


def test_e4_pool_cli(cli: Any) -> None:
    data = _cli_totals(cli, "e4.yaml", "e4.json")
    assert _totals(data) == {"A": "4500.00", "B": "3000.00", "C": "1500.00"}
    assert data["groups"] == [{"period": "2026-05", "group": "branch-1", "size": 3,
                               "values": {"pool_pool": "9000.00"}}]


# ---------------------------------------------------------------------- E5


def test_e5_both_directions_api() -> None:
    run = _run("e5.yaml", "e5.jsonl")
    totals = {r.payee: r.total for r in run}
    assert totals == {"W1": D("1666.67"), "W2": D("2333.33"), "W3": D("5000.00"),
                      "N1": D("2400.00"), "N2": D("3000.00"), "N3": D("3600.00")}
    assert sum(totals[p] for p in ("W1", "W2", "W3")) == D("9000.00")
    assert run["W1"].line("balance").details["k"] == D("0.6666666666666666666666666666666667")
    assert run["N1"].line("balance").details["k"] == D(6)
    assert run["W1"].amount("balance") == D("666.67")
    assert run["N1"].amount("balance") == D("-500.00")
    before = run["W1"].line("balance").details["spread_before"]
    after = run["W1"].line("balance").details["spread_after"]
    assert before["ratio"] == D(6)
    assert after["ratio"] == D("2.999994000011999976000047999904000")
    assert after["total"] == before["total"] == D("9000.00")


def test_e5_cli(cli: Any) -> None:
    data = _cli_totals(cli, "e5.yaml", "e5.jsonl")
    assert _totals(data) == {"N1": "2400.00", "N2": "3000.00", "N3": "3600.00",
                             "W1": "1666.67", "W2": "2333.33", "W3": "5000.00"}
    w3 = next(r for r in data["results"] if r["payee"] == "W3")
    assert [(li["id"], li["amount"]) for li in w3["lines"]] == [
        ("bonus", "6000.00"), ("balance", "-1000.00")]


# ---------------------------------------------------------------------- E8


def test_e8_honour_api() -> None:
    run = _run("e8.yaml", "e8.json")
    assert {r.payee: (r.total, r.titles) for r in run} == {
        "A": (D("300.00"), ["Service Star"]), "B": (D("0.00"), []),
        "C": (D("300.00"), ["Service Star"]), "D": (D("0.00"), [])}
    assert run["D"].line("service_star").details["reason"] == "does not meet the criteria"
    assert run["B"].line("service_star").details["reason"] == "ranked below the cut-off"
    assert run["B"].line("service_star").details["rank"] == 3
    assert run["C"].line("service_star").details["rank"] == 2


def test_e8_cli(cli: Any) -> None:
    data = _cli_totals(cli, "e8.yaml", "e8.json")
    assert {r["payee"]: (r["total"], r["titles"]) for r in data["results"]} == {
        "A": ("300.00", ["Service Star"]), "B": ("0.00", []),
        "C": ("300.00", ["Service Star"]), "D": ("0.00", [])}
    res = cli("run", CASES / "e8.yaml", CASES / "e8.json")
    assert "A 2026-05: titles Service Star" in res.out
    assert "C 2026-05: titles Service Star" in res.out


# ---------------------------------------------------------------------- contests


def _records(scores: dict[str, Any], group: str = "g", **extra: dict[str, Any]
             ) -> list[dict[str, Any]]:
    out = []
    for p, s in scores.items():
        metrics = {"score": s, **{k: v[p] for k, v in extra.items()}}
        out.append({"payee": p, "period": "2026-05", "group": group, "metrics": metrics})
    return out


def _contest_plan(**kw: Any) -> Plan:
    return Plan(name="c", inputs={"metrics": {"score": {}, "revenue": {"default": 0}}},
                policies=[Contest(id="contest", score="score", **kw)])


def test_contest_tie_keys_then_payee_id() -> None:
    plan = _contest_plan(prizes=[800, 500, 200], ties="keys", tie_keys=["revenue"])
    run = plan.evaluate(_records({"A": 91, "B": 85, "C": 85, "D": 85},
                                 revenue={"A": 1, "B": 10, "C": 20, "D": 10}))
    assert {r.payee: r.total for r in run} == {
        "A": D("800.00"), "C": D("500.00"), "B": D("200.00"), "D": D("0.00")}
    assert run["B"].values["contest_rank"] == D(3)  # B and D tie on revenue: B's id first
    assert run["D"].values["contest_rank"] == D(4)


def test_contest_share_splits_cents_exactly() -> None:
    plan = _contest_plan(prizes=[100], ties="share")
    run = plan.evaluate(_records({"C": 5, "A": 5, "B": 5}))
    assert [r.total for r in run] == [D("33.34"), D("33.33"), D("33.33")]
    assert run.total == D("100.00")


def test_contest_percentile_bands_and_ascending_order() -> None:
    plan = _contest_plan(bands=[{"top": "0.2", "prize": 1000}, {"top": "0.5", "prize": 300}],
                         ties="best", order="asc")
    scores = {f"p{i:02d}": i for i in range(1, 11)}  # lower is better
    run = plan.evaluate(_records(scores))
    paid = {r.payee: r.total for r in run}
    assert [paid[f"p{i:02d}"] for i in range(1, 11)] == [
        D("1000.00")] * 2 + [D("300.00")] * 3 + [D("0.00")] * 5


def test_contest_minimum_participants() -> None:
    plan = _contest_plan(prizes=[800], ties="share", threshold=70, min_participants=3)
    run = plan.evaluate(_records({"A": 91, "B": 85, "C": 60}))
    assert run.total == D("0.00")
    assert "fewer than the minimum of 3" in run["A"].line("contest").details["not_paid"]


def test_contest_across_the_population() -> None:
    plan = _contest_plan(prizes=[800, 500], ties="share", across="population")
    run = plan.evaluate(_records({"A": 91, "B": 85}, group="north")
                        + _records({"C": 95, "D": 10}, group="south"))
    assert {r.payee: r.total for r in run} == {
        "C": D("800.00"), "A": D("500.00"), "B": D("0.00"), "D": D("0.00")}
    by_group = _contest_plan(prizes=[800, 500], ties="share").evaluate(
        _records({"A": 91, "B": 85}, group="north") + _records({"C": 95, "D": 10}, group="south"))
    assert by_group["B"].total == D("500.00")
    assert load_plan(plan.to_yaml()) == plan


def test_contest_needs_a_stated_tie_rule() -> None:
    with pytest.raises(PlanError, match="ties"):
        load_plan("""
name: c
inputs: {metrics: {score: {}}}
policies:
  - {type: contest, id: c, score: score, prizes: [1]}
""")


def test_contest_when_excludes_entrants() -> None:
    plan = Plan(name="c", inputs={"metrics": {"score": {}},
                                  "attributes": {"role": {"type": "text"}}},
                policies=[Contest(id="contest", score="score", prizes=[100],
                                  ties="share", when="role == 'member'")])
    recs = _records({"A": 99, "B": 50})
    recs[0]["attributes"] = {"role": "head"}
    recs[1]["attributes"] = {"role": "member"}
    run = plan.evaluate(recs)
    assert run["B"].total == D("100.00")
    assert run["A"].lines == []


# ---------------------------------------------------------------------- honour, flags


def _honour(rule: str, **kw: Any) -> Plan:
    return Plan(name="h", inputs={"metrics": {"score": {}}},
                policies=[Honour(id="star", title="Star", keys=["score"], cutoff_ties=rule,
                                 **kw)])


@pytest.mark.parametrize(("rule", "winners"), [
    ("include", {"A", "B", "C"}), ("exclude", {"A"}), ("keys", {"A", "B"})])
def test_honour_cutoff_tie_rules(rule: str, winners: set[str]) -> None:
    run = _honour(rule, max=2).evaluate(_records({"A": 9, "B": 7, "C": 7, "D": 1}))
    assert {r.payee for r in run if r.titles == ["Star"]} == winners
    assert run["B"].values.get("star") is None  # no cash, no line
    assert run["B"].lines == []


def test_honour_max_share() -> None:
    run = _honour("keys", max_share=D("0.25"), share_rounding="up").evaluate(
        _records({"A": 9, "B": 8, "C": 7, "D": 1, "E": 0}))
    assert [r.payee for r in run if r.titles] == ["A", "B"]  # 25% of 5, rounded up: 2


@pytest.mark.parametrize(("side", "rule", "flagged"), [
    ("bottom", "include", {"C", "D"}), ("bottom", "exclude", set()),
    ("bottom", "keys", {"D"}), ("top", "keys", {"A"})])
def test_ranking_flags(side: str, rule: str, flagged: set[str]) -> None:
    plan = Plan(name="f", inputs={"metrics": {"score": {}}},
                policies=[RankingFlag(id="review", flag="F", side=side, count=1,
                                      keys=["score"], cutoff_ties=rule)])
    run = plan.evaluate(_records({"A": 9, "B": 5, "C": 1, "D": 1}))
    assert {r.payee for r in run if r.flags == ["F"]} == flagged
    assert run["C"].values["review_rank"] == D(3)


# ---------------------------------------------------------------------- pools


def test_pool_from_group_aggregates() -> None:
    plan = Plan(name="p", inputs={"metrics": {"revenue": {}}}, policies=[
        BonusPool(id="pool", aggregates={"branch_revenue": {"sum": "revenue"}},
                  pool="branch_revenue * 0.05", weight="revenue")])
    recs = [{"payee": p, "period": "2026-05", "group": g, "metrics": {"revenue": v}}
            for p, g, v in [("A", "x", 10000), ("B", "x", 30000), ("C", "y", 7)]]
    run = plan.evaluate(recs)
    assert run["A"].total == D("500.00")
    assert run["B"].total == D("1500.00")
    assert run["C"].total == D("0.35")
    assert run["A"].line("pool").details["aggregates"] == {"branch_revenue": D(40000)}


def test_pool_infeasible_floors_name_the_numbers() -> None:
    plan = Plan(name="p", inputs={"metrics": {"score": {}}}, policies=[
        BonusPool(id="pool", pool=1000, weight="score", floor=600)])
    with pytest.raises(InfeasibleError, match=r"floors add up to 1200, more than the 1000\.00"):
        plan.evaluate(_records({"A": 1, "B": 2}))
    run = plan.evaluate(_records({"A": 1, "B": 2}), errors="collect")
    assert len(run.errors) == 2
    assert "whole group 'g' not evaluated" in str(run.errors[0])


def test_pool_infeasible_caps() -> None:
    plan = Plan(name="p", inputs={"metrics": {"score": {}}}, policies=[
        BonusPool(id="pool", pool=1000, weight="score", cap=400)])
    with pytest.raises(InfeasibleError, match=r"caps add up to 800, less than the 1000\.00"):
        plan.evaluate(_records({"A": 1, "B": 2}))



@pytest.mark.parametrize("floor", [None, "10"])
def test_pool_negative_weight_names_the_first_payee(floor: str | None) -> None:
    plan = Plan(name="p", inputs={"metrics": {"score": {}}}, policies=[
        BonusPool(id="pool", pool=1000, weight="score - 5", floor=floor)])
    with pytest.raises(InfeasibleError,
                       match=r"pool 'pool': payee 'B' has a negative weight \(-2\)"):
        plan.evaluate(_records({"A": 9, "B": 3, "C": 1}))


# ---------------------------------------------------------------------- balancing


def _balance_plan(**kw: Any) -> Plan:
    return Plan(name="b", inputs={"metrics": {"score": {}}}, policies=[
        FormulaLine(id="bonus", amount="score"), Balance(id="balance", of="bonus", **kw)])


def test_balance_mean_bounds_scale() -> None:
    run = _balance_plan(mean={"min": "0.5", "max": "1.5"}, method="scale_about_mean").evaluate(
        _records({"A": 1000, "B": 2000, "C": 6000}))
    # mean 3000: k = min(3000*0.5/2000, 3000*0.5/3000) = 0.5
    assert [r.total for r in run] == [D("2000.00"), D("2500.00"), D("4500.00")]


def test_balance_clamp_with_proportional_redistribution() -> None:
    run = _balance_plan(mean={"min": "0.5", "max": "1.5"}, method="clamp").evaluate(
        _records({"A": 500, "B": 2500, "C": 6000}))
    # mean 3000: C held at 4500, A raised to 1500; B takes the rest: 3000
    assert [r.total for r in run] == [D("1500.00"), D("3000.00"), D("4500.00")]
    assert run["C"].line("balance").details["held_at"] == "upper"


def test_balance_infeasible_and_closest() -> None:
    kw: dict[str, Any] = {"mean": {"max": "1.1"}, "ratio": {"min": 3},
                          "method": "scale_about_mean"}
    recs = _records({"A": 1000, "B": 2000, "C": 3000})
    with pytest.raises(InfeasibleError, match="max/min at least 3 needs k >="):
        _balance_plan(**kw).evaluate(recs)
    run = _balance_plan(**kw, on_infeasible="closest").evaluate(recs)
    # k = 0.2 keeps each at most 1.1 x mean (2200)
    assert [r.total for r in run] == [D("1800.00"), D("2000.00"), D("2200.00")]
    assert "not met" in run["A"].line("balance").details["unmet"][0]


def test_balance_equal_amounts_cannot_stretch() -> None:
    recs = _records({"A": 100, "B": 100})
    with pytest.raises(InfeasibleError, match="cannot be stretched"):
        _balance_plan(ratio={"min": 2}, method="scale_about_mean").evaluate(recs)
    run = _balance_plan(ratio={"min": 2}, method="scale_about_mean",
                        on_infeasible="closest").evaluate(recs)
    assert [r.total for r in run] == [D("100.00"), D("100.00")]


@pytest.mark.parametrize("method", ["scale_about_mean", "clamp"])
def test_balance_leaves_equal_amounts_alone(method: str) -> None:
    run = _balance_plan(mean={"min": "0.5", "max": "1.5"}, method=method).evaluate(
        _records({"A": 0, "B": 0}))
    assert [r.amount("balance") for r in run] == [D("0.00"), D("0.00")]
    assert run.errors == []


def test_balance_clamp_refuses_a_ratio() -> None:
    with pytest.raises(ValueError, match="clamp keeps 'mean' bounds only"):
        Balance(id="b", of="x", ratio={"max": 3}, method="clamp")


# ---------------------------------------------------------------------- leaders, spread


def test_leader_paid_on_team_attainment() -> None:
    plan = load_plan("""
name: leader
inputs:
  metrics: {revenue: {}, quota: {}}
  attributes: {role: {type: text}}
policies:
  - type: leader_bonus
    id: head_bonus
    leader: role == 'head'
    aggregates:
      team_revenue: {sum: revenue}
      team_quota: {sum: quota}
    amount: 2000 * min(team_revenue / team_quota, 1.5)
""")
    recs = [{"payee": p, "period": "2026-05", "group": "b1", "attributes": {"role": r},
             "metrics": {"revenue": v, "quota": q}}
            for p, r, v, q in [("H", "head", 0, 0), ("M1", "member", 60000, 50000),
                               ("M2", "member", 30000, 50000)]]
    run = plan.evaluate(recs)
    assert run["H"].total == D("1800.00")  # 90,000 / 100,000 = 0.9
    assert run["M1"].total == D("0.00")
    assert run["H"].line("head_bonus").details["team"] == ["M1", "M2"]
    recs[1]["attributes"] = {"role": "head"}
    with pytest.raises(EvaluationError, match="2 leaders in one group"):
        plan.evaluate(recs)


def test_spread_figures_per_group_in_json_and_formulas() -> None:
    plan = Plan(name="s", inputs={"metrics": {"score": {}}}, policies=[
        FormulaLine(id="bonus", amount="score"),
        SpreadFigures(id="spread", of="bonus"),
        FormulaLine(id="equity", amount="100 * spread_gini")])
    recs = _records({"A": 1000, "B": 2000, "C": 6000}) + _records({"Z": 0}, group="h")
    run = plan.evaluate(recs)
    assert run["A"].values["spread_ratio"] == D(6)
    assert run["A"].amount("equity") == D("37.04")
    groups = {g["group"]: g for g in run.groups()}
    assert groups["g"]["values"]["spread_gini"] == D("0.3703703703703703703703703703703704")
    assert groups["h"]["values"]["spread_ratio"] is None  # undefined: the smallest is 0
    data = json.loads(run.to_json())
    assert data["groups"][0]["values"]["spread_ratio"] == "6"
    assert data["groups"][1]["values"]["spread_cv"] is None
    assert set(data) == {"plan", "results", "errors", "groups"}
    assert "group g 2026-05: spread 3000" in run.to_table()


def test_team_plan_round_trips_through_yaml() -> None:
    for name in ("e3_share.yaml", "e4.yaml", "e5.yaml", "e8.yaml"):
        plan = load_plan(CASES / name)
        again = load_plan(plan.to_yaml())
        assert again == plan, name


def test_plan_errors_are_located() -> None:
    with pytest.raises(PlanError) as info:
        load_plan("""
name: x
inputs: {metrics: {score: {}}}
policies:
  - type: honour
    id: star
    title: Star
    keys: [scroe]
    max: 1
    cutoff_ties: keys
""")
    assert info.value.line == 8
    assert "did you mean 'score'" in str(info.value)


def test_group_values_publish_exact_group_figures_to_every_member() -> None:
    from incentives import load_plan

    plan = load_plan("""
name: group-values
inputs: {metrics: {revenue: {}}}
policies:
  - type: group_values
    id: branch
    values:
      branch_revenue: {sum: revenue}
      branch_mean: {mean: revenue}
      branch_best: {max: revenue}
      branch_worst: {min: revenue}
      big_sellers: {count: revenue >= 5000}
  - {type: formula, id: share_bonus, amount: "1000 * revenue / branch_revenue"}
""")
    records = [{"payee": p, "period": "2026-05", "group": g, "metrics": {"revenue": v}}
               for p, g, v in (("a", "n", 6000), ("b", "n", 3000), ("c", "n", 1000),
                               ("d", "s", 4000))]
    run = plan.evaluate(records)
    a = run["a"].values
    assert (a["branch"], a["branch_revenue"], a["branch_best"], a["branch_worst"],
            a["big_sellers"]) == (Decimal(3), Decimal(10000), Decimal(6000), Decimal(1000),
                                  Decimal(1))
    assert a["branch_mean"] == Decimal("3333.333333333333333333333333333333")  # 34 digits
    assert run["b"].values["branch_revenue"] == Decimal(10000)
    assert [run[p].total for p in "abcd"] == [Decimal("600.00"), Decimal("300.00"),
                                              Decimal("100.00"), Decimal("1000.00")]
    assert run["d"].values["big_sellers"] == Decimal(0)
