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

_PLAN_TEXT = """
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
"""
PLAN = load_plan(_PLAN_TEXT)


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


@pytest.mark.parametrize("spoil", ["none", "period back", "duplicates"])
def test_jsonl_goes_straight_into_a_file_cut_back_when_read_again(
        tmp_path: Path, spoil: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``direct=True``: the lines go into ``out`` as they are made; when the records
    come out of order (read again, spilled) what was written is cut back to where the
    file was, so it holds what the spill gives, after what it held before (even when
    that is shorter than what was written: duplicates are not evaluated)."""
    from incentives.records import iter_raw_records

    monkeypatch.setattr(streaming, "MAX_HELD", 4)  # buckets written as they come
    monkeypatch.setattr(streaming, "WRITE_LINES", 1)  # each bucket's lines at once
    records: list[Any] = _records()
    records.insert(3, "not json\n")
    if spoil == "period back":
        records.append(records.pop(10))  # 2026-01 again after 2026-03
    elif spoil == "duplicates":
        # 2026-03: g0 and g1 written when g2 (one payee) starts; then g0's payees again
        records = records[:-9]
        records.extend({**r, "group": "g9"} for r in records[-21:-11])
    expected = _stream(tmp_path, records, "jsonl", reopen=False)
    path = tmp_path / "r.jsonl"  # written by _stream
    target = tmp_path / "out.jsonl"
    again = [0]

    def read_again() -> Iterable[Any]:
        again[0] += 1
        return iter_raw_records(path)

    with target.open("w+", encoding="utf-8", newline="") as out:
        out.write("before\n")
        summary = evaluate_stream(PLAN, iter_raw_records(path), out, reopen=read_again,
                                  direct=True)
    assert again[0] == (0 if spoil == "none" else 1)
    assert target.read_text(encoding="utf-8") == "before\n" + expected[0]
    assert [str(e) for e in summary.errors] == expected[1]
    assert summary.results == expected[2].results == (71 if spoil == "duplicates" else 90)


@pytest.mark.parametrize("spoil", [False, True])
def test_jsonl_to_a_path_in_order_or_not_leaves_only_the_output(tmp_path: Path,
                                                                spoil: bool) -> None:
    """A path is written atomically as the lines are made; records out of order throw
    that file away (no temporary file is left) and the spill writes the output."""
    records: list[Any] = _records()
    if spoil:
        records.append(records.pop(10))
    expected = _stream(tmp_path, records, "jsonl", reopen=False)[0]
    folder = tmp_path / "out"
    folder.mkdir()
    summary = evaluate_stream(PLAN, tmp_path / "r.jsonl", folder / "out.jsonl")
    assert summary.results == 90
    assert [p.name for p in folder.iterdir()] == ["out.jsonl"]
    assert (folder / "out.jsonl").read_text(encoding="utf-8") == expected


def test_stream_command_out_of_order_to_a_file_is_its_output_to_stdout(
        tmp_path: Path, cli: Any) -> None:
    """``incentives stream --out``: the staged file is written as the stream goes and
    cut back when the records must be read again: the same bytes as on stdout."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(_PLAN_TEXT, encoding="utf-8")
    for spoil in (False, True):
        records: list[Any] = _records()
        records.insert(3, "not json\n")
        if spoil:
            records.append(records.pop(10))
        path = tmp_path / f"r{spoil}.jsonl"
        path.write_text(_lines(records), encoding="utf-8")
        shown = cli("stream", plan, path)
        assert shown.code == 1
        out = tmp_path / f"out{spoil}.jsonl"
        written = cli("stream", plan, path, "--out", out)
        assert (written.code, written.err, written.out) == (1, shown.err, "")
        assert out.read_text(encoding="utf-8") == shown.out
        assert shown.out == _stream(tmp_path, records, "jsonl", reopen=False)[0]
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_evaluate_bucket_gives_evaluate_parts_results_errors_and_ledgers() -> None:
    """A stream's bucket (records of one period, read once) evaluated by
    ``evaluate_bucket`` gives what ``evaluate_part`` gives: the same results, the same
    errors in the same order, the same ledgers carried in the book."""
    from incentives.engine import CheckedRecords

    plan = load_plan("""
name: bucket
inputs: {metrics: {sales: {}, days: {}}}
policies:
  - {type: formula, id: commission, amount: sales * 0.05}
  - {type: formula, id: per_day, amount: 30 / days}
  - {type: floor, id: draw, amount: 200, recoverable: true}
  - {type: contest, id: contest, score: sales, prizes: [90, 40], ties: share}
""")
    compiled = plan.compile()
    books = [compiled.opening_state(None), compiled.opening_state(None)]
    for month in ("2026-01", "2026-02"):
        raws = [{"payee": f"p{i}", "period": month, "group": "g",
                 "metrics": {"sales": (i * 1370 + len(month)) % 3000, "days": i % 3}}
                for i in (4, 0, 3, 1, 5, 2)]
        records = [compiled.reader.read(raw, i) for i, raw in enumerate(raws)]
        run = compiled.evaluate_part(CheckedRecords(records), books[0])
        results, errors = compiled.evaluate_bucket(records, books[1])
        assert [r.to_json() for r in results] == [r.to_json() for r in run.results]
        assert [str(e) for e in errors] == [str(e) for e in run.errors]
        assert len(errors) == 2
        assert "division by zero" in str(errors[0]).lower()
        assert books[1].to_data() == books[0].to_data()
    assert books[1].payees  # the draws owed back are carried
    from incentives.errors import StateError

    for book in books:  # a period the book closed already is refused, as by evaluate_part
        book.close("2026-02", plan)
    with pytest.raises(StateError) as part:
        compiled.evaluate_part(CheckedRecords(records), books[0])
    with pytest.raises(StateError) as bucket:
        compiled.evaluate_bucket(records, books[1])
    assert str(bucket.value) == str(part.value)
    assert "2026-02 is already closed" in str(bucket.value)


def test_a_default_period_is_the_streams_own_not_kept_by_the_compiled_plan(
        tmp_path: Path) -> None:
    """The plan's own reader reads a stream's records when it reads them as asked;
    a stream given a default period reads with one of its own, kept by nobody."""
    compiled = PLAN.compile()
    records = [{k: v for k, v in r.items() if k != "period"} for r in _records()[:30]]
    path = tmp_path / "r.jsonl"
    path.write_text(_lines(records), encoding="utf-8")
    for default in ("2026-07", None, "2026-Q3", None):
        out = io.StringIO()
        summary = evaluate_stream(compiled, path, out, default_period=default)
        if default is None:
            assert summary.results == 0
            assert {str(e).split(": ", 1)[-1] for e in summary.errors} == {"missing period"}
        else:
            assert summary.results == 30
            assert {json.loads(x)["period"] for x in out.getvalue().splitlines()} == {default}
    assert compiled.reader.default_period is None


def test_direct_is_ignored_for_a_path_or_a_stream_that_cannot_seek(tmp_path: Path) -> None:
    """``direct=True`` with a path (written atomically anyway) or a stream that cannot
    be cut back (a pipe) writes what it would without it."""
    records: list[Any] = _records()
    records.append(records.pop(10))  # read again: what was written would be cut back
    expected = _stream(tmp_path, records, "jsonl", reopen=False)[0]
    source = tmp_path / "r.jsonl"

    class Pipe(io.StringIO):
        def seekable(self) -> bool:
            return False

        def tell(self) -> int:
            raise OSError("not seekable")

    pipe = Pipe()
    evaluate_stream(PLAN, source, pipe, direct=True)
    assert pipe.getvalue() == expected
    evaluate_stream(PLAN, source, tmp_path / "o.jsonl", direct=True)
    assert (tmp_path / "o.jsonl").read_text(encoding="utf-8") == expected
