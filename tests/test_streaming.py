"""Streaming evaluation: same results as plan.evaluate, memory bounded by a group."""

from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import UsageError, load_plan
from incentives.streaming import evaluate_stream, iter_buckets

PLAN = load_plan("""
name: stream-test
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
  - {type: contest, id: contest, score: revenue, prizes: [900, 400], ties: share}
  - {type: floor, id: floor, amount: 3200}
""")


def _records(n: int, groups: int, *, seed: int = 1, period: str = "2026-05") -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"payee": f"p{i:05d}", "period": period, "group": f"g{i % groups:03d}",
             "attributes": {"grade": rng.choice("AB")},
             "metrics": {"revenue": str(Decimal(rng.randrange(0, 9_000_000)).scaleb(-2)),
                         "new_accounts": rng.randrange(0, 4)}}
            for i in range(n)]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def _by_key(lines: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["period"], r["payee"]): r for r in lines}


@pytest.mark.parametrize("grouped", [False, True])
def test_stream_matches_plan_evaluate(tmp_path: Path, grouped: bool) -> None:
    records = _records(600, 12) + _records(300, 7, seed=2, period="2026-06")
    if grouped:
        records.sort(key=lambda r: (r["period"], r["group"]))
    else:
        random.Random(5).shuffle(records)  # groups interleaved: incentives sorts them out
    path = _write_jsonl(tmp_path / "records.jsonl", records)
    out = tmp_path / "out.jsonl"
    summary = evaluate_stream(PLAN, path, out, grouped=grouped, spill_dir=tmp_path)
    assert summary.ok
    assert summary.results == 900
    assert summary.buckets == 19
    expected = PLAN.evaluate(records)
    assert summary.total == expected.total
    got = _by_key([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()])
    want = _by_key([r.to_dict() for r in expected.results])
    assert got == want
    # contest prizes were given within each group: two winners per group and period
    assert sum(1 for r in got.values() for ln in r["lines"]
               if ln["id"] == "contest" and ln["amount"] != "0.00") == 2 * 19
    # the spill files are gone
    assert [p.name for p in tmp_path.iterdir()] == sorted(["records.jsonl", "out.jsonl"]) or \
        sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "records.jsonl"]


def test_results_come_out_by_period_group_and_payee() -> None:
    records = _records(50, 5)
    random.Random(3).shuffle(records)
    runs = list(iter_buckets(PLAN, records))
    assert [(r.results[0].period, r.results[0].group) for r in runs] == \
        [("2026-05", f"g{i:03d}") for i in range(5)]
    for run in runs:
        payees = [r.payee for r in run.results]
        assert payees == sorted(payees)
        assert len(payees) == 10


def test_csv_stream_has_the_columns_and_rows_of_run_csv(tmp_path: Path) -> None:
    records = _records(200, 4)
    random.Random(9).shuffle(records)
    path = tmp_path / "records.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("payee,period,group,grade,revenue,new_accounts\n")
        for r in records:
            f.write(f"{r['payee']},{r['period']},{r['group']},{r['attributes']['grade']},"
                    f"{r['metrics']['revenue']},{r['metrics']['new_accounts']}\n")
    out = tmp_path / "out.csv"
    evaluate_stream(PLAN, path, out, format="csv")
    got = out.read_text(encoding="utf-8").splitlines()
    want = PLAN.evaluate(records).to_csv().splitlines()
    assert got[0] == want[0]
    assert got == want  # the same rows in the same order: one writer


def test_grouped_input_that_is_not_grouped_is_refused() -> None:
    records = _records(20, 2)  # g000, g001, g000, ... interleaved
    with pytest.raises(UsageError, match="not grouped"):
        list(iter_buckets(PLAN, records, grouped=True))


def test_bad_and_duplicate_records_are_reported_and_the_rest_evaluated() -> None:
    records = _records(30, 3)
    records[4]["metrics"]["revenue"] = "lots"
    dup = json.loads(json.dumps(records[7]))
    dup["group"] = "g002"  # the same payee and period, in another group
    records.append(dup)
    errors: list[Exception] = []
    summary = evaluate_stream(PLAN, records, _Sink(), on_error=errors.append)
    assert summary.results == 28  # 30 - the bad one - p00007 (both copies)
    assert [str(e) for e in summary.errors] == [str(e) for e in errors]
    expected = PLAN.evaluate(records, errors="collect")
    assert sorted(str(e) for e in summary.errors) == sorted(str(e) for e in expected.errors)
    assert summary.total == expected.total


class _Sink:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)


LIGHT = load_plan("""
name: stream-memory
inputs:
  metrics: {revenue: {min: 0}}
  attributes: {note: {}}
policies:
  - {type: formula, id: commission, amount: revenue * 0.03}
  - {type: contest, id: contest, score: revenue, prizes: [500, 200], ties: best}
""")


def test_stream_memory_is_bounded_by_a_group_not_the_file(tmp_path: Path) -> None:
    """4,000 records (3.6 MB of JSON Lines) in 200 interleaved groups: the peak of
    Python memory while they are grouped, evaluated and written is a small
    fraction of the file (a run held in memory would be many times the file)."""
    path = tmp_path / "big.jsonl"
    rng = random.Random(4)
    note = "customer visits and notes " * 32
    with path.open("w", encoding="utf-8") as f:
        for i in range(4_000):
            f.write(json.dumps({
                "payee": f"p{i:06d}", "period": "2026-05", "group": f"g{rng.randrange(200):03d}",
                "attributes": {"note": note},
                "metrics": {"revenue": str(Decimal(rng.randrange(0, 9_000_000)).scaleb(-2))}})
                + "\n")
    size = path.stat().st_size
    out = tmp_path / "out.jsonl"
    evaluate_stream(LIGHT, LIGHT_SAMPLE, _Sink())  # warm up: lazy imports are not the data

    tracemalloc.start()
    try:
        summary = evaluate_stream(LIGHT, path, out, spill_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.results == 4_000
    assert summary.buckets == 200
    assert summary.largest_bucket < 45
    assert size > 3_000_000
    print(f"streamed {size:,} bytes of records with a peak of {peak:,} bytes")
    assert peak < size / 5, f"peak {peak:,} bytes for a file of {size:,} bytes"
    assert out.stat().st_size > size / 2  # every result was written


LIGHT_SAMPLE = [{"payee": "a", "period": "2026-05", "group": "g", "attributes": {"note": "n"},
                 "metrics": {"revenue": 1}}]


def test_stream_command(cli: Callable[..., Any], tmp_path: Path, examples: Path) -> None:
    plan = examples / "telecom" / "plan.yaml"
    records = examples / "telecom" / "records.jsonl"
    r = cli("stream", plan, records)
    assert r.code == 0, r.err
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert {x["payee"]: x["total"] for x in lines} == {"X": "948.00", "Y": "700.00",
                                                        "Z": "4060.00"}
    r = cli("stream", plan, records, "--format", "csv", "--out", tmp_path / "o.csv")
    assert r.code == 0
    run = cli("run", plan, records, "--format", "csv")
    assert (tmp_path / "o.csv").read_text(encoding="utf-8") == run.out

    bad = tmp_path / "bad.jsonl"
    bad.write_text(records.read_text(encoding="utf-8")
                   + '{"payee": "W", "period": "2026-05", "metrics": {"traffic_revenue": "x"}}\n',
                   encoding="utf-8")
    r = cli("stream", plan, bad, "--errors", tmp_path / "errors.jsonl")
    assert r.code == 1
    assert "payee 'W'" in r.err
    assert len(r.out.splitlines()) == 3
    errs = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert len(errs) == 1
    assert errs[0]["payee"] == "W"


def test_stream_command_default_period(cli: Callable[..., Any], tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.to_yaml(), encoding="utf-8")
    records = _records(40, 2)
    for r in records:
        del r["period"]
    path = _write_jsonl(tmp_path / "r.jsonl", records)
    r = cli("stream", plan, path, "--period", "2026-07")
    assert r.code == 0, r.err
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert {x["period"] for x in lines} == {"2026-07"}
    assert len(lines) == 40
    r = cli("stream", plan, path)
    assert r.code == 1
    assert "missing period" in r.err
    assert cli("stream", plan, path, "--period", "July").code == 2


# --------------------------------------------------------------------------
# state carried between periods while streaming: the same ledger as `run`


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("grouped", [False, True])
def test_stream_with_state_carries_the_same_ledger_as_evaluate(tmp_path: Path,
                                                                examples: Path,
                                                                grouped: bool) -> None:
    from incentives.ledger import State
    from incentives.records import read_records_file

    plan = load_plan(examples / "telecom/plan-ledger.yaml")
    june = list(read_records_file(examples / "telecom/records-2026-06.jsonl"))
    july = list(read_records_file(examples / "telecom/records-2026-07.jsonl"))
    by_run = plan.evaluate(june, state=State.empty(plan))
    summary = evaluate_stream(plan, june, tmp_path / "june.jsonl", grouped=grouped,
                              state=State.empty(plan))
    assert summary.ok
    assert summary.state.to_json() == by_run.state.to_json()
    assert summary.state.last_period == "2026-06"
    assert any(summary.state.payees.values())  # a ledger is carried, not an empty state
    assert _jsonl(tmp_path / "june.jsonl") == [r.to_dict() for r in by_run.results]
    # July opens from June's closing state, both ways, with the same pay
    july_run = plan.evaluate(july, state=by_run.state)
    streamed = evaluate_stream(plan, july, tmp_path / "july.jsonl", grouped=grouped,
                               state=summary.state.to_data())
    assert streamed.state.to_json() == july_run.state.to_json()
    assert _jsonl(tmp_path / "july.jsonl") == [r.to_dict() for r in july_run.results]
    # both months in one stream: June closes when July starts
    both = evaluate_stream(plan, june + july, tmp_path / "both.jsonl", state=State.empty(plan))
    assert both.state.to_json() == july_run.state.to_json()
    assert [c["period"] for c in both.state.closed] == ["2026-06", "2026-07"]


def test_stream_command_with_state(cli: Callable[..., Any], tmp_path: Path,
                                   examples: Path) -> None:
    plan = examples / "telecom/plan-ledger.yaml"
    ran, streamed = tmp_path / "ran.json", tmp_path / "streamed.json"
    for month in ("2026-06", "2026-07"):
        records = examples / f"telecom/records-{month}.jsonl"
        assert cli("run", plan, records, "--state", ran, "--format", "json").code == 0
        res = cli("stream", plan, records, "--state", streamed, "--out", tmp_path / "o.jsonl")
        assert res.code == 0, res.err
        assert streamed.read_text(encoding="utf-8") == ran.read_text(encoding="utf-8")
    # a period already closed in the state is refused, and the state file is untouched
    before = streamed.read_bytes()
    res = cli("stream", plan, examples / "telecom/records-2026-07.jsonl", "--state", streamed)
    assert res.code == 2
    assert "already closed" in res.err
    assert streamed.read_bytes() == before


def test_stream_with_state_writes_no_state_when_a_record_failed(
        cli: Callable[..., Any], tmp_path: Path, examples: Path) -> None:
    records = tmp_path / "records.jsonl"
    good = (examples / "telecom/records-2026-06.jsonl").read_text(encoding="utf-8")
    records.write_text(good + '{"payee": "bad", "period": "2026-06"}\n', encoding="utf-8")
    state = tmp_path / "state.json"
    res = cli("stream", examples / "telecom/plan-ledger.yaml", records, "--state", state,
              "--out", tmp_path / "out.jsonl")
    assert res.code == 1
    assert "state not written: 1 record(s) failed" in res.err
    assert not state.exists()
