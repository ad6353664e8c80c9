"""Records that come bucket after bucket in order are evaluated as they are read (no
spill, each read once); any others are read again and spilled. Either way the output,
the errors and the summary are what the spill gives."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from incentives import load_plan, streaming
from incentives.errors import IncentivesError
from incentives.streaming import evaluate_stream

PLAN = load_plan("""
name: in-order
inputs:
  metrics:
    revenue: {min: 0}
  events:
    lost: {fields: {id: text, value: number, day: date}}
policies:
  - {type: formula, id: commission, amount: revenue * 0.05}
  - {type: value, id: doubled, value: commission * 2}
  - {type: contest, id: contest, score: revenue, prizes: [900, 400], ties: share}
  - type: formula
    id: bonus
    when: revenue > 1000000
    amount: 5
""")


def _records() -> list[dict[str, Any]]:
    out = []
    for m in (1, 2, 3):
        for i in range(30):
            rec: dict[str, Any] = {"payee": f"p{i:03d}", "period": f"2026-{m:02d}",
                                   "group": f"g{i // 10}",
                                   "metrics": {"revenue": f"{(i * 7919 + m * 104729) % 90000}.50"}}
            if i % 4 == 0:
                rec["events"] = {"lost": [{"id": f"c{i}", "value": i * 10,
                                           "day": f"2026-{m:02d}-03"}]}
            out.append(rec)
    return out


def _lines(records: list[Any]) -> str:
    return "".join(r if isinstance(r, str) else json.dumps(r) + "\n" for r in records)


def _stream(tmp_path: Path, records: list[Any], fmt: str, *, reopen: bool = True,
            details: str = "full") -> tuple[str, list[str], Any, int]:
    """The output, the errors reported, the summary and how often the records were
    read again, for ``records`` streamed from a JSONL file."""
    path = tmp_path / "r.jsonl"
    path.write_text(_lines(records), encoding="utf-8")
    from incentives.records import iter_raw_records

    again = [0]

    def read_again() -> Iterable[Any]:
        again[0] += 1
        return iter_raw_records(path)

    reported: list[str] = []
    out = io.StringIO()

    def seen(exc: IncentivesError) -> None:
        reported.append(str(exc))

    summary = evaluate_stream(PLAN, iter_raw_records(path), out, format=fmt,
                              on_error=seen, reopen=read_again if reopen else None,
                              details=details)
    assert [str(e) for e in summary.errors] == reported
    return out.getvalue(), reported, summary, again[0]


def _same(a: tuple[str, list[str], Any, int], b: tuple[str, list[str], Any, int]) -> None:
    assert a[0] == b[0]
    assert a[1] == b[1]
    for name in ("results", "total", "buckets", "largest_bucket"):
        assert getattr(a[2], name) == getattr(b[2], name), name


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_records_in_order_are_read_once_and_give_the_spills_output(tmp_path: Path,
                                                                   fmt: str) -> None:
    records = _records()
    records.insert(5, "not json\n")
    records.insert(40, {"payee": "bad", "period": "2026-01", "metrics": {"revenue": "x"}})
    fast = _stream(tmp_path, records, fmt)
    spilled = _stream(tmp_path, records, fmt, reopen=False)
    assert fast[3] == 0  # not read again
    _same(fast, spilled)
    assert len(fast[1]) == 2
    assert fast[2].results == 90
    if fmt == "csv":
        # no line of 'doubled' (a value) and none of 'bonus' (nobody reaches it): no column
        assert fast[0].splitlines()[0] == "payee,period,group,commission,contest,total,titles,flags"
        run = PLAN.evaluate([r for r in records if isinstance(r, dict)], errors="collect")
        assert fast[0] == run.to_csv()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("held", [50_000, 4])
def test_groups_mixed_within_a_period_are_held_then_evaluated(
        tmp_path: Path, fmt: str, held: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records by period, their groups mixed (sorted by payee, say): a period is held
    (up to MAX_HELD records), then evaluated bucket by bucket; past MAX_HELD, buckets
    must come one after another, else the stream reads again and spills."""
    monkeypatch.setattr(streaming, "MAX_HELD", held)
    records: list[Any] = _records()
    records.insert(25, records.pop(2))  # g0 again after g1, g2
    fast = _stream(tmp_path, records, fmt)
    spilled = _stream(tmp_path, records, fmt, reopen=False)
    assert fast[3] == (0 if held > 100 else 1)
    _same(fast, spilled)
    in_order = _stream(tmp_path, _records(), fmt)
    assert in_order[3] == 0  # in order: held a bucket at a time, whatever MAX_HELD


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("spoil", ["period back", "calendar", "duplicate"])
def test_records_out_of_order_are_read_again_and_spilled(tmp_path: Path, fmt: str,
                                                         spoil: str) -> None:
    records: list[Any] = _records()
    records.insert(3, "not json\n")  # a reading error before the stream starts again
    if spoil == "period back":
        records.append(records.pop(10))  # 2026-01 again after 2026-03
    elif spoil == "calendar":
        for r in records[:31]:
            if isinstance(r, dict):
                r["period"] = "2026-Q1"  # a quarter, then months: calendar order differs
    else:
        records.append({**records[50], "group": "g9"})  # the same payee and period twice
    fast = _stream(tmp_path, records, fmt)
    spilled = _stream(tmp_path, records, fmt, reopen=False)
    if spoil != "calendar":
        assert fast[3] == 1  # read again, from the start
    _same(fast, spilled)
    assert fast[1].count(spilled[1][0]) == 1  # the reading error reported once
    if spoil == "duplicate":
        assert any("2 records for the same payee and period" in e for e in fast[1])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("details", ["none", "lines", "full"])
def test_each_detail_level_in_order_is_the_spills(tmp_path: Path, fmt: str,
                                                  details: str) -> None:
    records = _records()
    fast = _stream(tmp_path, records, fmt, details=details)
    spilled = _stream(tmp_path, records, fmt, reopen=False, details=details)
    assert fast[3] == 0
    _same(fast, spilled)
