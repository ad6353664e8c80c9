"""A line's details built straight as JSON data (``Line.json_details``, what the JSON
writers use) are what converting the details gives: ``jsonable(line.details)``,
on the examples, the benchmarks' plans and generated plans of every policy with a
shortcut; and the telecom plan's results need no encoder callback at all."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import load_plan
from incentives.results import _json_data, result_json
from incentives.runtime import Explained, json_default, jsonable

ROOT = Path(__file__).resolve().parent.parent


def _json_then_details(run: Any) -> tuple[list[Any], list[Any], int]:
    """Each line's JSON details (made first, from the capture), then its details
    converted; and how many lines had a shortcut."""
    fast = 0
    made, converted = [], []
    for r in run.results:
        for line in r.lines:
            if line._details is None and isinstance(line._explain, Explained):
                fast += 1
            # what the writers do: the details of lines with no shortcut are Decimals
            made.append(json.dumps(line.json_details(), ensure_ascii=False,
                                   default=json_default))
    for r in run.results:
        for line in r.lines:
            converted.append(json.dumps(jsonable(line.details), ensure_ascii=False))
    return made, converted, fast


def test_json_details_are_the_details_converted_on_the_examples(
        load_bench: Any, tmp_path: Path) -> None:
    from incentives.records import read_records_file

    cases = []
    for plan_file, records_file in (("telecom/plan.yaml", "telecom/records.jsonl"),
                                    ("bank/plan.yaml", "bank/records.json"),
                                    ("tobacco/plan.yaml", "tobacco/records.jsonl")):
        cases.append((load_plan(ROOT / "examples" / plan_file),
                      list(read_records_file(ROOT / "examples" / records_file))))
    formulas, realistic = load_bench("bench_formulas"), load_bench("bench_plan")
    cases.append((formulas.make_plan(), formulas.make_records(300, seed=5)))
    cases.append((realistic.make_plan(), realistic.make_records(150, "2026-05", seed=5)))
    bench = load_bench("bench_cli")
    records = tmp_path / "records.jsonl"
    bench.make_records(records, 300, 2, seed=3)
    cases.append((load_plan(bench.PLAN), list(read_records_file(records))))
    fast = 0
    for plan, rows in cases:
        made, converted, n = _json_then_details(plan.evaluate(rows, errors="collect"))
        assert made == converted, plan.name
        fast += n
    assert fast > 2000  # the shortcuts were taken


def test_the_telecom_plan_needs_no_encoder_callback(load_bench: Any, tmp_path: Path) -> None:
    from incentives.records import read_records_file

    bench = load_bench("bench_cli")
    records = tmp_path / "records.jsonl"
    bench.make_records(records, 200, 2, seed=7)
    run = load_plan(bench.PLAN).evaluate(list(read_records_file(records)))
    for r in run.results:
        for level in ("full", "lines", "none"):
            # no default=: a Decimal or a date left in would be a TypeError
            text = json.dumps(_json_data(r, level), ensure_ascii=False)
            assert text == result_json(r, level)
    assert any('"slices": [{' in result_json(r) for r in run.results)
    assert any('"exempt": true' in result_json(r) for r in run.results)
    assert any('"forgiven": "' in result_json(r) for r in run.results)


# ------------------------------------------------------------------ generated plans

numbers = st.decimals(min_value=Decimal("-50"), max_value=Decimal("200000"), places=2,
                      allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.2"), places=3)


@st.composite
def plans(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    starts = sorted(draw(st.sets(st.integers(0, 150000), min_size=1, max_size=4)))
    tiers = []
    for k, start in enumerate(starts):
        tier: dict[str, Any] = {"from": start, "rate": str(draw(rates))}
        if draw(st.booleans()):
            tier["label"] = f"tier-{k}"
        tiers.append(tier)
    tiered: dict[str, Any] = {"type": "tiered", "id": "t", "basis": draw(st.sampled_from(
        ["x", "x + y", "x * 2 - y"])), "method": "marginal", "tiers": tiers}
    if draw(st.booleans()):
        tiered["scale"] = draw(st.sampled_from(["2", "0.5", "y / 1000 + 1"]))
    if draw(st.booleans()):
        tiered["cap"] = draw(st.sampled_from(["x * 0.03", "1000", "y"]))
    quantum = draw(st.sampled_from(["0.01", "1", "0.001"]))
    churn: dict[str, Any] = {"type": "churn_penalty", "id": "c", "events": "lost",
                             "per_customer": draw(st.sampled_from(
                                 ["value * 1.5", "value", "value * share + 0.005"])),
                             "exempt_reasons": ["closure"]}
    if draw(st.booleans()):
        churn["cap"] = "share * t"
    plan = {
        "name": "generated", "rounding": {"quantum": quantum, "mode": "half_up"},
        "inputs": {"metrics": {"x": {}, "y": {"default": 0}, "q1": {"default": 0},
                               "q2": {"default": 0}},
                   "events": {"lost": {"fields": {"id": "text", "value": "number",
                                                  "reason": "text"}}}},
        "parameters": {"share": "SHARE"},
        "policies": [
            tiered,
            {"type": "rate_table", "id": "r",
             "items": {"q1": {"per_unit": str(draw(rates) * 1000), "label": "one"},
                       "q2": str(draw(rates) * 100)}},
            churn,
            {"type": "formula", "id": "g", "amount": draw(st.sampled_from(
                ["x * 0.001 + q1", "q2 * 3", "(x - y) / 7"]))},
            {"type": "cap", "id": "k", "limit": draw(st.sampled_from(
                ["x * 0.05 + 100", "2000", "y"]))},
            {"type": "floor", "id": "f", "amount": draw(st.sampled_from(
                ["500", "x * 0.01 + 5", "y"]))},
        ],
    }
    records = []
    for i in range(draw(st.integers(1, 4))):
        x = draw(st.one_of(numbers, st.sampled_from([Decimal(s) for s in starts])))
        record: dict[str, Any] = {
            "payee": f"p{i}", "period": "2026-05",
            "metrics": {"x": str(x), "y": str(draw(numbers)),
                        "q1": draw(st.integers(0, 3)), "q2": str(draw(st.sampled_from(
                            [Decimal(0), Decimal("1.5"), Decimal(2)])))}}
        lost = draw(st.lists(st.tuples(st.integers(0, 5000),
                                       st.sampled_from(["closure", "price", "rival"])),
                             max_size=3))
        if lost:
            record["events"] = {"lost": [{"id": f"c{i}-{k}", "value": v, "reason": why}
                                         for k, (v, why) in enumerate(lost)]}
        records.append(record)
    # a parameter is a number in the plan (a quoted one is text)
    return json.dumps(plan).replace('"SHARE"', str(draw(rates))), records


@settings(max_examples=150, deadline=None)
@given(plans())
def test_json_details_are_the_details_converted_on_generated_plans(
        case: tuple[str, list[dict[str, Any]]]) -> None:
    text, records = case
    run = load_plan(text).evaluate(records, errors="collect")
    made, converted, _ = _json_then_details(run)
    assert made == converted
    # and the whole result's text is what converting everything gives
    again = load_plan(text).evaluate(records, errors="collect")
    for r, s in zip(run.results, again.results, strict=True):
        assert result_json(s) == json.dumps(r.to_dict(), ensure_ascii=False)
