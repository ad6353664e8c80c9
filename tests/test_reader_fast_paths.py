"""The reader written for a plan (records._fast_reader) reads numbers written as text,
whole numbers, dates, true/false and optional fields of events itself: it must give
what the full check gives, record or error, for every value."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import load_plan
from incentives.errors import RecordError
from incentives.records import RecordReader, iter_raw_records

PLAN = """
name: fast-paths
inputs:
  metrics:
    revenue: {min: 0}
    units: {default: 0, integer: true, min: 0, max: 500}
    delta: {}
  events:
    lost:
      fields:
        id: text
        value: {type: number, min: 0, max: 5000}
        seats: {type: number, integer: true}
        day: date
        since: date
        kept: bool
        note: text
      optional: [since, note, seats]
policies:
  - {type: formula, id: pay, amount: revenue * 0.01}
"""
READER = RecordReader(load_plan(PLAN).inputs)

NUMBERS = ["12.50", "-0", "0", "5.", ".5", "+5", "1e3", "1E+2", " 7 ", "7\n", "123456789012345678",
           "1234567890123456789", "0.0000000000000001", "0.00000000000000001",
           "12345678901234567.1234567890123456", "１２", "1_000", "NaN", "-Infinity", "",
           "  ", "x", "-12.5", "00012", "3.0", "3.5", "600", "-1", "4\u00a0"]
VALUES = st.one_of(st.sampled_from(NUMBERS), st.integers(-3, 600),
                   st.integers(10**17, 10**19), st.sampled_from([True, False, None, 1.5]),
                   st.decimals(allow_nan=True, allow_infinity=True, places=2),
                   st.sampled_from([D("1E+3"), D("1e-40"), D("0E-40"), D("2.50")]))
DATES = st.sampled_from(["2026-05-03", " 2026-05-03 ", "2026-5-3", "20260503", "2026-02-30",
                         "", "  ", None, 20260503, "2026-05-03T10:00", "2026-W18-1",
                         "2026-05-03\x00"])
TEXTS = st.sampled_from(["c1", " c2 ", "", "  ", None, 7, D("7.5"), True, "c\x1b3", "c\u2028",
                         "x" * 1001, "\u3000c"])


def _outcome(fn: Any, raw: Any) -> str:
    try:
        return "ok " + repr(fn(raw))
    except RecordError as exc:
        return f"error {exc}"


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"id": "c1", "value": "1200.50", "day": "2026-05-03",
                             "kept": True}
    for name, values in (("id", TEXTS), ("value", VALUES), ("seats", VALUES),
                         ("day", DATES), ("since", DATES), ("kept", st.sampled_from(
                             [True, False, None, "true", 1, ""])), ("note", TEXTS)):
        if draw(st.integers(0, 9)) == 0:
            event[name] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        event.pop(draw(st.sampled_from(sorted(event))))
    if draw(st.integers(0, 19)) == 0:
        event["extra"] = 1
    return event


@st.composite
def metrics(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly good metrics (as JSON gives them), one spoilt now and then."""
    found: dict[str, Any] = {"revenue": "48000.50", "units": 3, "delta": D("-2.5")}
    for name in found:
        if draw(st.integers(0, 3)) == 0:
            found[name] = draw(VALUES)
    return found


@settings(max_examples=500)
@given(metrics=metrics(), lost=st.one_of(st.none(), st.lists(events(), max_size=3)))
def test_fast_reader_agrees_with_the_full_check(metrics: Any, lost: Any) -> None:
    raw: dict[str, Any] = {"payee": "m-1", "period": "2026-05", "metrics": metrics}
    if lost is not None:
        raw["events"] = {"lost": lost}
    assert _outcome(READER.read, raw) == _outcome(READER._read, raw)


def test_numbers_as_text_and_events_are_read_exactly() -> None:
    raw = {"payee": "m-1", "period": "2026-05",
           "metrics": {"revenue": "48000.50", "units": 3, "delta": "-0.0000000000000001"},
           "events": {"lost": [
               {"id": "c1", "value": 1200, "day": "2026-05-03", "kept": False},
               {"id": " c2 ", "value": "12.5", "seats": "4", "day": " 2026-05-04 ",
                "since": "2026-01-02", "kept": True, "note": "moved"}]}}
    record = READER._quick(raw)  # the reader written for the plan, not the full check
    assert record.metrics == {"revenue": D("48000.50"), "units": D(3),
                              "delta": D("-0.0000000000000001")}
    assert str(record.metrics["revenue"]) == "48000.50"
    first, second = record.events["lost"]
    assert list(first) == ["id", "value", "day", "kept"]  # absent optional fields left out
    assert list(second) == ["id", "value", "seats", "day", "since", "kept", "note"]
    assert second["id"] == " c2 "
    assert str(second["value"]) == "12.5"
    assert str(second["day"]) == "2026-05-04"
    assert second["since"].year == 2026
    assert repr(record) == repr(READER._read(raw))


def test_jsonl_lines_read_whole_or_reported(tmp_path: Any) -> None:
    """The JSONL reader's short cut (one object per line) gives what the full decode
    gives: a key named twice, trailing text, a bare value, a blank line."""
    good = {"payee": "m-1", "period": "2026-05", "metrics": {"revenue": "1.50"}}
    lines = [json.dumps(good), '{"payee": "a", "payee": "b"}', json.dumps(good) + " x",
             "  " + json.dumps(good) + "  ", "", "[1]", '{"a": 1}{"b": 2}',
             '{"payee": "m", "metrics": {"revenue": 1' + "0" * 50 + '}}', '{"a": ' + "[" * 100000 + "]" * 100000 + "}"]
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = [r if not isinstance(r, RecordError) else f"error {r}"
           for r in iter_raw_records(path)]
    assert got[0] == good
    assert got[3] == good
    assert got[1] == "error record field 'payee': line 2: duplicate key 'payee'"
    assert got[2].startswith("error record field 'line 3': line 3 is not JSON: Extra data")
    assert got[4] == [1]
    assert got[5].startswith("error record field 'line 7': line 7 is not JSON: Extra data")
    assert got[6]["metrics"]["revenue"] == D("1" + "0" * 50)  # a long whole number: a Decimal
    assert "line 9: nested too deeply" in got[7]
    assert len(got) == 8
