"""``--details none|lines|full`` (and ``details=`` in the Python API): what each level
holds in each format, exactly; ``full`` is the output as it always was."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from incentives import load_plan
from incentives.errors import UsageError
from incentives.results import DETAILS_LEVELS, Run, result_json
from incentives.streaming import evaluate_stream
from incentives.tabular import result_tables

ROOT = Path(__file__).resolve().parent.parent

PLAN = """\
name: demo
version: "1"
inputs: {metrics: {sales: {}}}
policies:
  - {type: formula, id: commission, amount: sales * 0.05}
  - {type: floor, id: floor, amount: 100}
"""
RECORDS = [
    {"payee": "b", "period": "2026-05", "group": "g", "metrics": {"sales": 3000}},
    {"payee": "a", "period": "2026-05", "group": "g", "metrics": {"sales": 1000}},
    {"payee": "c", "period": "2026-05", "group": "g", "metrics": {"sales": "x"}},
]

ERROR = ('{"kind": "record", "payee": "c", "period": "2026-05", "field": "metrics.sales", '
         '"message": "value is not a number: \'x\'"}')
RESULTS = {
    "full": [
        '{"payee": "a", "period": "2026-05", "group": "g", "total": "100.00", "lines": '
        '[{"id": "commission", "label": "commission", "amount": "50.00", "type": "pay", '
        '"details": {"formula": "sales * 0.05", "substituted": "1000 * 0.05"}}, '
        '{"id": "floor", "label": "floor", "amount": "50.00", "type": "floor_top_up", '
        '"details": {"floor": "100.00", "floor_formula": "100", "of": "total", '
        '"before": "50.00"}}], "titles": [], "flags": [], "values": {}}',
        '{"payee": "b", "period": "2026-05", "group": "g", "total": "150.00", "lines": '
        '[{"id": "commission", "label": "commission", "amount": "150.00", "type": "pay", '
        '"details": {"formula": "sales * 0.05", "substituted": "3000 * 0.05"}}, '
        '{"id": "floor", "label": "floor", "amount": "0.00", "type": "floor_top_up", '
        '"details": {"floor": "100.00", "floor_formula": "100", "of": "total", '
        '"before": "150.00"}}], "titles": [], "flags": [], "values": {}}',
    ],
    "lines": [
        '{"payee": "a", "period": "2026-05", "group": "g", "total": "100.00", "lines": '
        '[{"id": "commission", "label": "commission", "amount": "50.00", "type": "pay"}, '
        '{"id": "floor", "label": "floor", "amount": "50.00", "type": "floor_top_up"}], '
        '"titles": [], "flags": [], "values": {}}',
        '{"payee": "b", "period": "2026-05", "group": "g", "total": "150.00", "lines": '
        '[{"id": "commission", "label": "commission", "amount": "150.00", "type": "pay"}, '
        '{"id": "floor", "label": "floor", "amount": "0.00", "type": "floor_top_up"}], '
        '"titles": [], "flags": [], "values": {}}',
    ],
    "none": [
        '{"payee": "a", "period": "2026-05", "group": "g", "total": "100.00", "titles": [], '
        '"flags": [], "values": {}}',
        '{"payee": "b", "period": "2026-05", "group": "g", "total": "150.00", "titles": [], '
        '"flags": [], "values": {}}',
    ],
}


def document(level: str) -> str:
    a, b = RESULTS[level]
    return ('{\n  "plan": {"name": "demo", "version": "1"},\n  "results": [\n'
            f"    {a},\n    {b}\n  ],\n"
            f'  "errors": [\n    {ERROR}\n  ]\n}}\n')


CSV_FULL = ("payee,period,group,commission,floor,total,titles,flags\n"
            "a,2026-05,g,50.00,50.00,100.00,,\n"
            "b,2026-05,g,150.00,0.00,150.00,,\n")
CSV = {"full": CSV_FULL, "lines": CSV_FULL,
       "none": ("payee,period,group,total,titles,flags\n"
                "a,2026-05,g,100.00,,\n"
                "b,2026-05,g,150.00,,\n")}
ERRORS_NOTE = ("\n1 record(s) not evaluated:\n"
               "  payee 'c' period 2026-05 field 'metrics.sales': value is not a number: 'x'\n")
TABLE_FULL = ("payee  period   group  commission  floor   total\n"
              "-----  -------  -----  ----------  -----  ------\n"
              "a      2026-05  g           50.00  50.00  100.00\n"
              "b      2026-05  g          150.00   0.00  150.00\n"
              "                total      200.00  50.00  250.00\n" + ERRORS_NOTE)
TABLE = {"full": TABLE_FULL, "lines": TABLE_FULL,
         "none": ("payee  period   group   total\n"
                  "-----  -------  -----  ------\n"
                  "a      2026-05  g      100.00\n"
                  "b      2026-05  g      150.00\n"
                  "                total  250.00\n" + ERRORS_NOTE)}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return plan, records


def demo_run() -> Run:
    return load_plan(PLAN).evaluate(RECORDS, errors="collect")


# ------------------------------------------------------------------ Python API


@pytest.mark.parametrize("level", DETAILS_LEVELS)
def test_each_level_of_json_from_python(level: str) -> None:
    run = demo_run()
    assert run.to_json(details=level) == document(level)
    assert [r.to_json(details=level) for r in run] == RESULTS[level]
    assert [result_json(r, level) for r in run] == RESULTS[level]
    assert json.loads(run.to_json(details=level, indent=None)) == run.to_dict(details=level)
    assert run.to_dict(details=level) == json.loads(document(level))
    assert [r.to_dict(details=level) for r in run] == [json.loads(x) for x in RESULTS[level]]


def test_full_is_the_default_in_every_format() -> None:
    run = demo_run()
    assert run.to_json() == run.to_json(details="full") == document("full")
    assert run.to_csv() == run.to_csv(details="full") == CSV["full"]
    assert run.to_table(width=200) == run.to_table(width=200, details="full")
    assert result_tables(run) == result_tables(run, details="full")
    for r in run:
        assert r.to_json() == r.to_json(details="full")


@pytest.mark.parametrize("level", DETAILS_LEVELS)
def test_each_level_of_csv_and_table_from_python(level: str) -> None:
    run = demo_run()
    assert run.to_csv(details=level) == CSV[level]
    assert run.to_table(width=200, details=level) == TABLE[level]


def test_the_table_without_policies_refuses_a_policy_column() -> None:
    run = demo_run()
    assert run.to_table(columns="payee,total", details="none").splitlines()[0] == \
        "payee   total"
    with pytest.raises(UsageError, match="--details none leaves out"):
        run.to_table(columns="payee,commission", details="none")


@pytest.mark.parametrize("call", [
    lambda run: run.to_json(details="some"),
    lambda run: run.to_csv(details="Full"),
    lambda run: run.to_table(details=""),
    lambda run: run.to_dict(details="line"),
    lambda run: run.results[0].to_json(details="all"),
    lambda run: run.write("never-written.xlsx", details="x"),
])
def test_an_unknown_level_is_a_usage_error_naming_the_three(
        call: Callable[[Run], Any]) -> None:
    with pytest.raises(UsageError, match="give none, lines or full"):
        call(demo_run())


def test_tables_of_each_level() -> None:
    run = demo_run()
    full = result_tables(run, details="full")
    assert [row[10] for row in full.lines] == [
        '{"formula":"sales * 0.05","substituted":"1000 * 0.05"}',
        '{"floor":"100.00","floor_formula":"100","of":"total","before":"50.00"}',
        '{"formula":"sales * 0.05","substituted":"3000 * 0.05"}',
        '{"floor":"100.00","floor_formula":"100","of":"total","before":"150.00"}']
    lines = result_tables(run, details="lines")
    assert lines.lines == [(*row[:10], "") for row in full.lines]
    none = result_tables(run, details="none")
    assert none.lines == []
    for tables in (lines, none):
        assert tables.totals == full.totals
        assert tables.errors == full.errors
        assert tables.periods == full.periods == ["2026-05"]


def _sink_targets(tmp_path: Path) -> list[tuple[str, str]]:
    targets = []
    for module, kind, target in (("sqlalchemy", "sql", f"sqlite:///{tmp_path}/pay.db?table=pay"),
                                 ("pyarrow", "parquet", str(tmp_path / "pay.parquet")),
                                 ("openpyxl", "excel", str(tmp_path / "pay.xlsx"))):
        try:
            __import__(module)
        except ImportError:
            continue
        targets.append((kind, target))
    return targets


@pytest.mark.parametrize("level", DETAILS_LEVELS)
def test_each_level_in_each_sink_read_back(tmp_path: Path, level: str) -> None:
    from incentives import read_results

    targets = _sink_targets(tmp_path)
    if not targets:
        pytest.skip("no sink extra installed")
    run = demo_run()
    expected = result_tables(run, details=level)
    for _, target in targets:
        # the sql sink writes the errors only unless told to write pay with them
        run.write(target, details=level, pay_with_errors=True)
        assert read_results(target) == expected, target
    assert len(expected.lines) == {"full": 4, "lines": 4, "none": 0}[level]


# ------------------------------------------------------------------ command line


@pytest.mark.parametrize("level", DETAILS_LEVELS)
def test_run_writes_each_level_in_each_format(
        cli: Callable[..., Any], files: tuple[Path, Path], tmp_path: Path, level: str) -> None:
    plan, records = files
    for fmt, expected in (("json", document(level)), ("csv", CSV[level])):
        out = tmp_path / f"out.{fmt}"
        r = cli("run", plan, records, "--format", fmt, "--details", level, "--out", out)
        assert r.code == 1, r.err  # the bad record
        assert out.read_text(encoding="utf-8") == expected
        assert r.err.count("error: ") == 1
    r = cli("run", plan, records, "--details", level, "--columns", "all")
    assert r.out == TABLE[level]


@pytest.mark.parametrize("level", DETAILS_LEVELS)
def test_stream_writes_each_level_in_each_format(
        cli: Callable[..., Any], files: tuple[Path, Path], tmp_path: Path, level: str) -> None:
    plan, records = files
    out = tmp_path / "out.jsonl"
    r = cli("stream", plan, records, "--details", level, "--out", out)
    assert r.code == 1, r.err
    # one result a line: the same text as the entries of run's "results"
    assert out.read_text(encoding="utf-8") == "".join(x + "\n" for x in RESULTS[level])
    out = tmp_path / "out.csv"
    r = cli("stream", plan, records, "--format", "csv", "--details", level, "--out", out)
    assert r.code == 1, r.err
    assert out.read_text(encoding="utf-8") == CSV[level]


@pytest.mark.parametrize("level", DETAILS_LEVELS)
def test_run_and_stream_write_each_level_to_a_sink(
        cli: Callable[..., Any], files: tuple[Path, Path], tmp_path: Path, level: str) -> None:
    from incentives import read_results

    plan, records = files
    expected = result_tables(demo_run(), details=level)
    for kind, target in _sink_targets(tmp_path):
        for command in ("run", "stream"):
            extra = ["--pay-with-errors"] if kind == "sql" else []
            r = cli(command, plan, records, "--details", level, "--out", target, *extra)
            assert r.code == 1, r.err
            assert read_results(target) == expected, (command, target)


def test_stream_from_python_at_each_level() -> None:
    import io

    plan = load_plan(PLAN)
    for level in DETAILS_LEVELS:
        out = io.StringIO()
        summary = evaluate_stream(plan, RECORDS, out, details=level, on_error=lambda e: None)
        assert out.getvalue() == "".join(x + "\n" for x in RESULTS[level])
        assert summary.results == 2
    with pytest.raises(UsageError, match="give none, lines or full"):
        evaluate_stream(plan, RECORDS, io.StringIO(), details="everything")


@pytest.mark.parametrize("command", ["run", "stream"])
def test_an_unknown_level_on_the_command_line_exits_2_listing_the_three(
        cli: Callable[..., Any], files: tuple[Path, Path], command: str) -> None:
    plan, records = files
    r = cli(command, plan, records, "--details", "some")
    assert r.code == 2
    assert "--details: invalid choice: 'some' (choose from 'none', 'lines', 'full')" in r.err
    assert r.out == ""


@pytest.mark.parametrize("command", ["run", "stream"])
def test_the_help_says_what_each_level_holds(cli: Callable[..., Any], command: str) -> None:
    r = cli(command, "--help")
    assert r.code == 0
    text = " ".join(r.out.split())
    assert "--details {none,lines,full}" in text
    assert "full (every line with its details, the default)" in text
    assert "lines (every line's id, label, amount and type; no details)" in text


def test_full_is_todays_output_on_the_examples(cli: Callable[..., Any], tmp_path: Path) -> None:
    plan = ROOT / "examples" / "telecom" / "plan.yaml"
    records = ROOT / "examples" / "telecom" / "records.jsonl"
    for fmt in ("json", "csv"):
        given, default = tmp_path / f"full.{fmt}", tmp_path / f"default.{fmt}"
        assert cli("run", plan, records, "--format", fmt, "--out", default).code == 0
        assert cli("run", plan, records, "--format", fmt, "--details", "full",
                   "--out", given).code == 0
        assert given.read_bytes() == default.read_bytes()
        assert b'"details": {' in given.read_bytes() or fmt == "csv"


def test_measures_keep_their_values_at_lines_and_go_at_none(cli: Callable[..., Any]) -> None:
    folder = ROOT / "examples" / "transactions"
    args = ["run", folder / "plan.yaml", folder / "roster.jsonl", "--transactions",
            folder / "transactions.jsonl", "--hierarchy", folder / "hierarchy.csv",
            "--format", "json", "--details"]
    full = json.loads(cli(*args, "full").out)["results"]
    lines = json.loads(cli(*args, "lines").out)["results"]
    none = json.loads(cli(*args, "none").out)["results"]
    assert any(r["measures"]["revenue"].get("transactions") for r in full)
    for f, x, n in zip(full, lines, none, strict=True):
        assert x["measures"] == {k: {"value": m["value"]} for k, m in f["measures"].items()}
        assert x["lines"] == [{k: v for k, v in line.items() if k != "details"}
                              for line in f["lines"]]
        assert set(n) == {"payee", "period", "group", "total", "titles", "flags", "values"}
        assert {k: f[k] for k in n} == n
