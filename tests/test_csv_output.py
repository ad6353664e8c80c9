"""CSV output: one writer for `run` and `stream` (issue 14.5), safe to open in a
spreadsheet (issue 15.6), and `--period` checked on every command (issue 14.6)."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives.results import FORMULA_STARTS, csv_text

PLAN_YAML = """\
name: csv-test
inputs:
  metrics:
    revenue: {min: 0}
    lost: {default: 0}
policies:
  - {type: formula, id: commission, amount: revenue * 0.02}
  - {type: formula, id: penalty, amount: -lost, when: lost > 0}
  - type: contest
    id: contest
    score: revenue
    prizes: [900, 400]
    ties: share
    ACROSS
  - {type: honour, id: star, title: "TITLE", keys: [revenue], max: 1, cutoff_ties: keys,
     cash: 100}
  - {type: ranking_flag, id: bottom, flag: "FLAG", side: bottom, count: 1, keys: [revenue],
     cutoff_ties: keys}
"""

HOSTILE = ["=1+1", "+SUM(A1:A9)", "-2+3", "@SUM(A1)", "=HYPERLINK(\"http://x\",\"y\")",
           "\uff1dcmd", "=cmd|' /C calc'!A0", "plain"]


def _plan(tmp_path: Path, *, across: str = "group", title: str = "Star",
          flag: str = "bottom") -> Path:
    text = PLAN_YAML.replace("ACROSS", f"across: {across}") \
        .replace('"TITLE"', json.dumps(title)).replace('"FLAG"', json.dumps(flag))
    path = tmp_path / f"plan-{across}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _records(n: int, groups: list[str], payees: list[str] | None = None,
             seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = payees or [f"p{i:04d}" for i in range(n)]
    rows = []
    for period in ("2026-05", "2026-06"):
        for i, payee in enumerate(names):
            rows.append({"payee": payee, "period": period, "group": groups[i % len(groups)],
                         "metrics": {"revenue": str(rng.randrange(0, 900000) / 100),
                                     "lost": str(rng.choice([0, 0, 632, 1500]))}})
    rng.shuffle(rows)
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("across", ["group", "population"])
@pytest.mark.parametrize("grouped", [False, True])
def test_run_and_stream_print_the_same_csv_bytes(cli: Callable[..., Any], tmp_path: Path,
                                                 across: str, grouped: bool) -> None:
    plan = _plan(tmp_path, across=across)
    rows = _records(60, ["north", "=south", "east", "-west", "\u6c5f\u5317"])
    stream_args: list[Any] = []
    if grouped:  # grouped, but the groups not in sorted order: the CSV order is the same
        rank = {"east": 2, "north": 0, "=south": 3, "-west": 1, "\u6c5f\u5317": 4}
        rows.sort(key=lambda r: (r["period"], rank[r["group"]]))
        stream_args = ["--grouped"]
    records = _write(tmp_path / "records.jsonl", rows)
    run = cli("run", plan, records, "--format", "csv")
    stream = cli("stream", plan, records, "--format", "csv", *stream_args)
    assert run.code == 0, run.err
    assert stream.code == 0, stream.err
    assert run.out.encode("utf-8") == stream.out.encode("utf-8")
    # and through --out files
    cli("run", plan, records, "--format", "csv", "--out", tmp_path / "run.csv")
    cli("stream", plan, records, "--format", "csv", "--out", tmp_path / "stream.csv",
        *stream_args)
    assert (tmp_path / "run.csv").read_bytes() == (tmp_path / "stream.csv").read_bytes()
    table = list(csv.reader(io.StringIO(run.out)))
    assert table[0] == ["payee", "period", "group", "commission", "penalty", "contest", "star",
                        "total", "titles", "flags"]
    assert len(table) == 1 + 120
    # rows by period, group, payee; a policy that made no line shows 0.00, not 0
    keys = [(r[1], r[2].removeprefix("'"), r[0]) for r in table[1:]]  # groups as given
    assert keys == sorted(keys)
    assert {r[2] for r in table[1:]} == {"north", "'=south", "east", "'-west", "\u6c5f\u5317"}
    assert all(cell != "0" for r in table[1:] for cell in r[3:8])


def test_csv_neutralises_formula_cells_but_not_amounts(cli: Callable[..., Any],
                                                       tmp_path: Path) -> None:
    """Payee ids, groups, titles and flags that start like a formula get a leading quote
    (OWASP); negative amounts stay numbers; the JSON says exactly what was given."""
    plan = _plan(tmp_path, title="=HYPERLINK(\"http://evil\",\"Star\")", flag="@bottom")
    payees = HOSTILE
    groups = ["+g1", "-g2", "=g3", "@g4"]
    rows = [{"payee": p, "period": "2026-05", "group": groups[i % 4],
             "metrics": {"revenue": str(1000 * (i + 1)), "lost": "632" if i % 2 else "0"}}
            for i, p in enumerate(payees)]
    records = _write(tmp_path / "records.jsonl", rows)
    res = cli("run", plan, records, "--format", "csv")
    assert res.code == 0, res.err
    table = list(csv.reader(io.StringIO(res.out)))
    header, body = table[0], table[1:]
    by_payee = {r[0]: dict(zip(header, r, strict=True)) for r in body}
    assert sorted(by_payee) == sorted(
        p if p == "plain" else f"'{p}" for p in payees)
    for row in body:
        for col in ("payee", "period", "group", "titles", "flags"):
            cell = row[header.index(col)]
            assert not cell.startswith(FORMULA_STARTS), (col, cell)
        for col in ("commission", "penalty", "contest", "star", "total"):
            cell = row[header.index(col)]
            assert cell == str(Decimal(cell))  # a plain number
    minus = by_payee["'+SUM(A1:A9)"]
    assert minus["group"] == "'-g2"
    assert minus["penalty"] == "-632.00"  # negative amounts stay numbers
    assert by_payee["'=1+1"]["group"] == "'+g1"
    titled = [r for r in by_payee.values() if r["titles"]]
    assert titled
    assert all(r["titles"] == "'=HYPERLINK(\"http://evil\",\"Star\")" for r in titled)
    flagged = [r for r in by_payee.values() if r["flags"]]
    assert flagged
    assert all(r["flags"] == "'@bottom" for r in flagged)
    # the stream writes the very same bytes
    assert cli("stream", plan, records, "--format", "csv").out == res.out
    # JSON is not changed: ids, groups and titles as given
    data = json.loads(cli("run", plan, records, "--format", "json").out)
    assert sorted(r["payee"] for r in data["results"]) == sorted(payees)
    assert {r["group"] for r in data["results"]} == set(groups)
    assert {t for r in data["results"] for t in r["titles"]} == {
        "=HYPERLINK(\"http://evil\",\"Star\")"}


@given(st.text(max_size=12))
def test_csv_text_never_starts_like_a_formula(value: str) -> None:
    cell = csv_text(value)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell in (value, "'" + value)
    assert (cell == value) == (not value.startswith(FORMULA_STARTS))


@pytest.mark.parametrize("value", ["=1", "+1", "-1", "@a", "\t=1", "\r=1", "\uff1d1"])
def test_csv_text_quotes_each_formula_start(value: str) -> None:
    assert csv_text(value) == "'" + value


# ---------------------------------------------------------------------- --period


@pytest.mark.parametrize("period", ["2026-13", "26-05", "May", "2026-5", "2026-00", ""])
@pytest.mark.parametrize("command", ["run", "stream", "explain", "simulate"])
def test_a_mistyped_period_is_a_usage_error(cli: Callable[..., Any], examples: Path,
                                            command: str, period: str) -> None:
    plan = examples / "telecom" / "plan.yaml"
    records = examples / "telecom" / "records.jsonl"
    args: list[Any] = {
        "run": ["run", plan, records],
        "stream": ["stream", plan, records],
        "explain": ["explain", plan, records, "--payee", "X"],
        "simulate": ["simulate", plan, "--population", records],
    }[command]
    res = cli(*args, "--period", period)
    assert res.code == 2
    assert res.out == ""
    assert f"incentives {command}: error: argument --period: period {period!r}" in res.err
    assert "Traceback" not in res.err


# ---------------------------------------------------------------------------
# csv_rows (the rows of a period at once) gives csv_cells(csv_record(r)) exactly

_TEXTS = st.one_of(st.sampled_from([*HOSTILE, "", "g1", "p-1"]),
                   st.text(alphabet="=+-@ab\uff0d1", max_size=4))
_AMOUNTS = st.sampled_from([Decimal("0.00"), Decimal("-0.00"), Decimal("0"), Decimal("1.50"),
                            Decimal("-632.00"), Decimal("1E+2"), Decimal("0.005"),
                            Decimal("12345678901234567890.12")])


@st.composite
def _results(draw: Any) -> list[Any]:
    from incentives.results import PayeeResult
    from incentives.runtime import Line

    out = []
    for _ in range(draw(st.integers(0, 6))):
        lines = [Line(draw(st.sampled_from(["a", "b", "c", "=d"])), "label", draw(_AMOUNTS),
                      "commission") for _ in range(draw(st.integers(0, 4)))]
        out.append(PayeeResult(
            draw(_TEXTS.filter(bool)), draw(st.sampled_from(["2026-05", "2026-06", "-1"])),
            draw(st.one_of(st.none(), _TEXTS)), lines, draw(_AMOUNTS),
            draw(st.lists(_TEXTS, max_size=2)), draw(st.lists(_TEXTS, max_size=2))))
    return out


@given(_results(), st.lists(st.sampled_from(["a", "b", "c", "=d", "e"]), unique=True),
       st.sampled_from(["0.00", "0"]))
def test_csv_rows_are_the_rows_of_csv_record(results: list[Any], columns: list[str],
                                             zero: str) -> None:
    from incentives.results import (
        csv_cells,
        csv_order,
        csv_record,
        csv_row,
        csv_rows,
        csv_sorted,
    )

    expected = [csv_cells(csv_record(r), columns, zero) for r in results]
    assert csv_rows(results, columns, zero) == expected
    assert [csv_row(r, columns, zero) for r in results] == expected
    assert csv_sorted(results) == sorted(results, key=csv_order)
    # the negative zero of a policy's lines is written as the zero ZERO + it gives
    for r, row in zip(results, expected, strict=True):
        for c, cell in zip(columns, row[3:3 + len(columns)], strict=True):
            assert not cell.startswith("-0") or not Decimal(cell).is_zero() or \
                not any(line.policy == c for line in r.lines)
