"""Sources and sinks as the core tells them apart (incentives.sources), event tables
joined to records, the plan's ``reading: {floats}``, and the command line's
``--records`` / ``--events`` / ``--out`` rules. The database, Parquet and Excel
readers and writers have their own tests (test_sql, test_parquet, test_excel) and
the whole path from every source is in test_data_sources_e2e."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

import incentives
from incentives.cli import main
from incentives.errors import RecordError, UsageError
from incentives.sources import is_url, join_events, parse_source, sink_kind, source_label

ROOT = Path(__file__).resolve().parent.parent
TELECOM = ROOT / "examples" / "telecom" / "plan.yaml"
RECORDS = ROOT / "examples" / "telecom" / "records.jsonl"


def _telecom_tables(folder: Path) -> tuple[Path, Path]:
    rows = [json.loads(line) for line in RECORDS.read_text().splitlines()]
    with open(folder / "records.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["payee", "period", "group", "traffic_revenue", "new_fax", "new_ipvpn"])
        for r in rows:
            m = r["metrics"]
            out.writerow([r["payee"], r["period"], r["group"], m["traffic_revenue"],
                          m.get("new_fax", ""), m.get("new_ipvpn", "")])
    with open(folder / "lost.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["payee", "period", "id", "monthly_value", "reason", "acquired", "lost"])
        for r in rows:
            for e in r.get("events", {}).get("lost_customers", []):
                out.writerow([r["payee"], r["period"], e["id"], e["monthly_value"],
                              e["reason"], e.get("acquired", ""), e["lost"]])
    return folder / "records.csv", folder / "lost.csv"


# ---------------------------------------------------------------------- telling sources apart


@pytest.mark.parametrize(("spec", "kind", "location", "sheet"), [
    ("r.json", "file", "r.json", None),
    ("r.JSONL", "file", "r.JSONL", None),
    ("r.ndjson", "file", "r.ndjson", None),
    ("r.csv", "file", "r.csv", None),
    ("r.parquet", "parquet", "r.parquet", None),
    ("r.pq", "parquet", "r.pq", None),
    ("hr.xlsx", "excel", "hr.xlsx", None),
    ("hr.XLSM", "excel", "hr.XLSM", None),
    ("hr.xlsx#May records", "excel", "hr.xlsx", "May records"),
    ("hr.xlsx#a#b", "excel", "hr.xlsx", "a#b"),
    ("sqlite:///hr.db?table=records", "sql", "sqlite:///hr.db?table=records", None),
    ("duckdb:///hr.duckdb?table=r", "sql", "duckdb:///hr.duckdb?table=r", None),
    ("postgresql+psycopg://u@h/db?query=q.sql", "sql",
     "postgresql+psycopg://u@h/db?query=q.sql", None),
])
def test_a_source_is_told_by_its_suffix_or_its_scheme(spec: str, kind: str, location: str,
                                                     sheet: str | None) -> None:
    found = parse_source(spec)
    assert (found.kind, found.location, found.sheet) == (kind, location, sheet)


def test_a_folder_is_a_parquet_dataset(tmp_path: Path) -> None:
    assert parse_source(tmp_path).kind == "parquet"


@pytest.mark.parametrize(("spec", "fragment"), [
    ("records.txt", "cannot tell the format of 'records.txt'"),
    ("records", "cannot tell the format"),
    ("old.xls", "the old Excel format (.xls) is not read"),
    ("hr.xlsx#", "no sheet named after '#'"),
    ("https://example.com/r.csv", "not a web address"),
    ("", "not an empty text"),
])
def test_a_source_that_cannot_be_told_is_refused(spec: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        parse_source(spec)


def test_a_windows_drive_is_a_path_not_a_url() -> None:
    assert not is_url("C://data/records.csv")
    assert parse_source("C://data/records.csv").kind == "file"


def test_a_password_never_shows_in_a_label() -> None:
    label = source_label("postgresql://payroll:s3cret-pw@db.internal/hr?table=records")
    assert "s3cret-pw" not in label
    assert "***" in label
    assert "db.internal" in label


@pytest.mark.parametrize(("target", "kind"), [
    ("pay.xlsx", "excel"), ("pay.parquet", "parquet"), ("sqlite:///p.db?table=pay", "sql"),
    ("pay.json", None), ("pay.csv", None), ("pay.txt", None),
])
def test_a_sink_is_told_by_its_target(target: str, kind: str | None) -> None:
    assert sink_kind(target) == kind


# ---------------------------------------------------------------------- event tables


def test_event_rows_join_their_record_by_payee_and_period() -> None:
    rows = [{"payee": "X", "period": "2026-05", "s": "1"},
            {"payee": "Y", "period": "2026-05", "s": "2"},
            {"payee": "X", "period": "2026-06", "s": "3"}]
    lost = [{"payee": " X ", "period": "2026-05", "id": "a"},
            {"payee": "X", "period": "2026-06", "id": "b"},
            {"payee": "X", "period": "2026-05", "id": "c"}]
    out = list(join_events(rows, {"lost": lost}))
    assert [r.get("events") for r in out] == [
        {"lost": [{"id": "a"}, {"id": "c"}]}, None, {"lost": [{"id": "b"}]}]
    assert rows[0] == {"payee": "X", "period": "2026-05", "s": "1"}  # not changed in place


def test_an_event_row_without_its_record_is_an_error_of_that_payee() -> None:
    out = list(join_events([{"payee": "X", "period": "2026-05"}],
                           {"lost": [{"payee": "Q", "period": "2026-05", "id": "a"},
                                     {"payee": "Q", "period": "2026-05", "id": "b"},
                                     {"payee": None, "period": "2026-05", "id": "c"}]},
                           labels={"lost": "the event table 'lost.csv'"}))
    errors = [e for e in out if isinstance(e, RecordError)]
    assert [(e.payee, e.period, e.field) for e in errors] == [
        (None, "2026-05", "events.lost"), ("Q", "2026-05", "events.lost")]
    assert errors[0].message == ("the event table 'lost.csv', row 3: no payee (each event "
                                 "row names the payee and the period of its record)")
    assert errors[1].message == ("2 rows of the event table 'lost.csv' name this payee and "
                                 "period, which has no record")


def test_events_given_both_ways_are_refused_for_that_record() -> None:
    out = list(join_events(
        [{"payee": "X", "period": "2026-05", "events": {"lost": [{"id": "a"}]}}],
        {"lost": [{"payee": "X", "period": "2026-05", "id": "b"}]}))
    assert len(out) == 1
    assert isinstance(out[0], RecordError)
    assert (out[0].payee, out[0].field) == ("X", "events.lost")


def test_the_default_period_applies_to_event_rows_too() -> None:
    out = list(join_events([{"payee": "X"}], {"lost": [{"payee": "X", "id": "a"}]},
                           default_period="2026-05"))
    assert out == [{"payee": "X", "events": {"lost": [{"id": "a"}]}}]


def test_records_and_event_tables_pay_what_the_nested_records_pay(tmp_path: Path) -> None:
    records, lost = _telecom_tables(tmp_path)
    plan = incentives.load_plan(TELECOM)
    nested = plan.evaluate([json.loads(x) for x in RECORDS.read_text().splitlines()])
    tables = plan.evaluate(records, events={"lost_customers": lost})
    assert tables.to_json() == nested.to_json()
    assert [r.total for r in tables] == [Decimal("948.00"), Decimal("700.00"),
                                         Decimal("4060.00")]
    assert plan.evaluate(str(records), events={"lost_customers": str(lost)}).to_json() \
        == nested.to_json()


def test_an_unknown_event_list_is_refused(tmp_path: Path) -> None:
    records, lost = _telecom_tables(tmp_path)
    plan = incentives.load_plan(TELECOM)
    with pytest.raises(UsageError, match="events 'lost': the plan declares no such event "
                                         r"list \(its event lists: lost_customers\)"):
        plan.evaluate(records, events={"lost": lost})


def test_a_flat_row_may_carry_its_events() -> None:
    plan = incentives.load_plan(TELECOM)
    run = plan.evaluate([{"payee": "X", "period": "2026-05", "traffic_revenue": "50000",
                          "new_fax": 3, "events": {"lost_customers": [
                              {"id": "c-88", "monthly_value": "1000", "reason": "competitor",
                               "lost": "2026-05-03"}]}}])
    assert run["X"].total == Decimal("948.00")
    bad = plan.evaluate([{"payee": "X", "period": "2026-05", "traffic_revenue": "1",
                          "events": {"lost_customers": [{"id": "c", "zz": 1}]}}],
                        errors="collect")
    assert [e.field for e in bad.errors] == ["events.lost_customers[0].zz"]


# ---------------------------------------------------------------------- reading floats


def _plan(reading: str) -> incentives.Plan:
    return incentives.load_plan(f"""name: f
{reading}
inputs: {{metrics: {{s: {{}}}}}}
policies: [{{type: formula, id: c, amount: s}}]
""")


@pytest.mark.parametrize(("text", "value"), [
    ("", "refuse"), ("reading: {floats: refuse}", "refuse"),
    ("reading: {floats: shortest}", "shortest"),
    ("reading: {floats: 0.01}", Decimal("0.01")), ("reading: {floats: '0.05'}", Decimal("0.05")),
    ("reading: {floats: 1}", Decimal("1")),
])
def test_a_plan_says_how_floats_are_read(text: str, value: object) -> None:
    assert _plan(text).reading.floats == value


@pytest.mark.parametrize("bad", ["nearest", "0", "-0.01", "true", "NaN"])
def test_a_wrong_float_reading_is_refused_with_its_place(bad: str) -> None:
    with pytest.raises(incentives.PlanError) as caught:
        _plan(f"reading: {{floats: {bad}}}")
    assert "reading.floats" in str(caught.value)
    assert "give refuse, shortest, or a quantum such as 0.01" in str(caught.value)


# ---------------------------------------------------------------------- the command line


def test_run_takes_the_records_and_their_event_tables(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    records, lost = _telecom_tables(tmp_path)
    assert main(["run", str(TELECOM), str(RECORDS), "--format", "json"]) == 0
    nested = capsys.readouterr().out
    assert main(["run", str(TELECOM), "--records", str(records), "--events",
                 f"lost_customers={lost}", "--format", "json"]) == 0
    assert capsys.readouterr().out == nested
    assert main(["stream", str(TELECOM), str(records), "--events",
                 f"lost_customers={lost}", "--format", "csv"]) == 0
    streamed = capsys.readouterr().out
    assert main(["run", str(TELECOM), str(RECORDS), "--format", "csv"]) == 0
    assert capsys.readouterr().out == streamed


@pytest.mark.parametrize(("argv", "message"), [
    (["run", str(TELECOM)], "give the records: RECORDS or --records SOURCE"),
    (["run", str(TELECOM), str(RECORDS), "--records", str(RECORDS)],
     "give the records once: as RECORDS or as --records SOURCE"),
    (["run", str(TELECOM), str(RECORDS), "--events", "lost_customers"],
     "--events 'lost_customers': give NAME=SOURCE"),
    (["run", str(TELECOM), str(RECORDS), "--out", "pay.xlsx", "--format", "json"],
     "--format json does not go with --out"),
    (["run", str(TELECOM), str(RECORDS), "--format", "sql"], "--format sql is told by --out"),
    (["run", str(TELECOM), str(RECORDS), "--pay-with-errors"],
     "--pay-with-errors is for a database given with --out"),
    (["stream", str(TELECOM), str(RECORDS), "--format", "parquet"],
     "--format parquet is told by --out"),
])
def test_run_and_stream_refuse_a_wrong_command_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_out_with_a_json_or_csv_suffix_tells_the_format(tmp_path: Path) -> None:
    assert main(["run", str(TELECOM), str(RECORDS), "--out", str(tmp_path / "pay.json")]) == 0
    assert json.loads((tmp_path / "pay.json").read_text())["results"][0]["total"] == "948.00"
    assert main(["run", str(TELECOM), str(RECORDS), "--out", str(tmp_path / "pay.csv")]) == 0
    assert (tmp_path / "pay.csv").read_text().startswith("payee,period,group,commission")


def test_an_event_row_without_a_record_fails_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records, lost = _telecom_tables(tmp_path)
    with open(lost, "a", newline="") as f:
        f.write("Q,2026-05,c-9,10,competitor,,2026-05-01\n")
    assert main(["run", str(TELECOM), str(records), "--events", f"lost_customers={lost}",
                 "--format", "csv"]) == 1
    captured = capsys.readouterr()
    assert "payee 'Q' period 2026-05 field 'events.lost_customers': 1 row of the event " \
           "table" in captured.err
    assert captured.out.count("\n") == 4  # the header and the three payees, still paid


def test_record_errors_name_their_table_only_for_tables() -> None:
    e = RecordError("missing required metric", payee="Q", period="2026-05",
                    field="metrics.s")
    assert "source" not in e.to_dict()
    e.from_source("duckdb:///hr.duckdb?table=records")
    e.from_source("another")  # set once
    assert str(e) == ("duckdb:///hr.duckdb?table=records: payee 'Q' period 2026-05 field "
                      "'metrics.s': missing required metric")
    assert e.to_dict()["source"] == "duckdb:///hr.duckdb?table=records"


def test_a_run_written_to_the_wrong_kind_of_sink_is_refused(tmp_path: Path) -> None:
    run = incentives.load_plan(TELECOM).evaluate(RECORDS)
    with pytest.raises(UsageError, match="give a database URL"):
        run.to_sql(str(tmp_path / "pay.xlsx"))
    with pytest.raises(UsageError, match=r"give a \.parquet file"):
        run.to_parquet(tmp_path / "pay.xlsx")
    with pytest.raises(UsageError, match=r"give an \.xlsx file"):
        run.to_excel(tmp_path / "pay.parquet")
