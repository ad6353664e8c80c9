"""incentives.dask: the same results as one process, on dask's local schedulers.

No network: the synchronous, threaded and multiprocessing schedulers all run
on this machine (two worker processes for the last).
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
db = pytest.importorskip("dask.bag")
pd = pytest.importorskip("pandas")

from incentives import load_plan  # noqa: E402
from incentives.dask import evaluate_bag, evaluate_frame, result_columns, run_rows  # noqa: E402

PLAN = load_plan("""
name: dask-test
inputs:
  metrics:
    revenue: {min: 0}
    new_accounts: {default: 0, integer: true, min: 0}
  attributes:
    grade: {allowed: [A, B]}
policies:
  - {type: base_pay, id: base, by: [grade], table: {A: 3000, B: 2500}}
  - type: tiered
    id: commission
    basis: revenue
    method: marginal
    tiers: [{from: 0, rate: 0.02}, {from: 50000, rate: 0.04}]
  - {type: rate_table, id: new_business, items: {new_accounts: 150}}
  - {type: value, id: variable_pay, value: commission + new_business}
  - {type: contest, id: contest, score: revenue, prizes: [900, 400], ties: share}
  - {type: bonus_pool, id: pool, pool: 5000, weight: variable_pay + 1}
  - {type: floor, id: floor, amount: 3200}
""")

SCHEDULERS = ["synchronous", "threads", "processes"]


def _flat_records(n: int, groups: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"payee": f"p{i:04d}", "period": rng.choice(["2026-05", "2026-06"]),
                    "group": f"g{rng.randrange(groups):02d}", "grade": rng.choice("AB"),
                    "revenue": str(Decimal(rng.randrange(0, 9_000_000)).scaleb(-2)),
                    "new_accounts": str(rng.randrange(0, 4))})
    out[5]["revenue"] = "lots"  # one bad record: reported, the others evaluated
    return out


def _compute(collection: Any, scheduler: str) -> Any:
    if scheduler == "processes":
        return collection.compute(scheduler="processes", num_workers=2)
    return collection.compute(scheduler=scheduler)


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["period"], r["payee"], r.get("error", "")))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_frame_results_identical_to_one_process(scheduler: str) -> None:
    records = _flat_records(240, 6)
    frame = dd.from_pandas(pd.DataFrame(records, dtype=object), npartitions=4)
    got = _compute(evaluate_frame(PLAN, frame), scheduler)
    columns = result_columns(PLAN)
    assert list(got.columns) == columns
    expected = run_rows(PLAN.evaluate(records, errors="collect"), columns)
    assert _sorted(got.to_dict("records")) == _sorted(expected)
    assert sum(1 for r in expected if r["error"]) == 1
    # team policies really saw whole groups: the pool pays out exactly per group
    totals: dict[tuple[str, str], Decimal] = {}
    for r in expected:
        if not r["error"]:
            key = (r["period"], r["group"])
            totals[key] = totals.get(key, Decimal(0)) + Decimal(r["pool"])
    assert set(totals.values()) == {Decimal("5000.00")}


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_bag_results_identical_to_one_process(scheduler: str) -> None:
    flat = _flat_records(160, 5, seed=8)
    nested = [{"payee": r["payee"], "period": r["period"], "group": r["group"],
               "attributes": {"grade": r["grade"]},
               "metrics": {"revenue": r["revenue"], "new_accounts": r["new_accounts"]}}
              for r in flat]
    bag = db.from_sequence(nested, npartitions=5)
    got = _compute(evaluate_bag(PLAN, bag), scheduler)
    run = PLAN.evaluate(nested, errors="collect")
    results = sorted((x for x in got if "error" not in x), key=lambda r: (r["period"], r["payee"]))
    assert json.dumps(results, sort_keys=True) == \
        json.dumps([r.to_dict() for r in run.results], sort_keys=True)
    errors = [x["error"] for x in got if "error" in x]
    assert len(errors) == len(run.errors) == 1
    assert errors[0]["payee"] == "p0005"


def test_the_plan_travels_as_text() -> None:
    """Workers get the YAML text, not the pickled plan: what they compile is equal."""
    from incentives.dask import _compiled

    compiled = _compiled(PLAN.to_yaml())
    assert compiled.plan == PLAN
    assert compiled is _compiled(PLAN.to_yaml())  # compiled once per process
