"""Acceptance tests of issue 18 (data where HR keeps it: SQL databases, Parquet,
Excel; results written back in one transaction), written from the issue and the
spec, through the public interfaces only: the CLI (``incentives run``) and the
Python API (``plan.evaluate(source)``, ``run.to_sql/to_parquet/to_excel``,
``incentives.read_results``).

Real components only: SQLite and DuckDB in-process, a real PostgreSQL server (the
``postgres_url`` fixture of conftest.py), real Parquet and xlsx files.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import load_plan, read_records_file
from incentives.cli import main
from incentives.tabular import result_tables

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from sources_data import (
    Flat,
    Table,
    flatten,
    pg_connect,
    read_jsonl,
    telecom_population,
    with_query,
    write_csv,
    write_duckdb,
    write_jsonl,
    write_parquet,
    write_parquet_dataset,
    write_postgres,
    write_sqlite,
    write_xlsx,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE = {
    "telecom": (EXAMPLES / "telecom" / "plan.yaml", EXAMPLES / "telecom" / "records.jsonl"),
    "tobacco": (EXAMPLES / "tobacco" / "plan.yaml", EXAMPLES / "tobacco" / "records.jsonl"),
}
SECRET = "s3cret-Pw-4711"


# ---------------------------------------------------------------------- helpers


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out[:2000]!r}, err={self.err[:2000]!r})"


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``incentives ARGS...`` in-process: exit code, stdout, stderr."""

    def run(*args: Any) -> Result:
        out = io.StringIO()
        code = main([str(a) for a in args], out=out)
        captured = capsys.readouterr()
        return Result(code, out.getvalue() + captured.out, captured.err)

    return run


def run_process(*args: Any, timeout: float = 300) -> Result:
    """``python -m incentives ARGS...`` as a child process (what a user sees)."""
    proc = subprocess.run([sys.executable, "-m", "incentives", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=ROOT)
    return Result(proc.returncode, proc.stdout, proc.stderr)


_BASELINE: dict[str, tuple[str, str]] = {}


def baseline(example: str) -> tuple[str, str]:
    """The example's JSON from its JSON Lines file: (CLI ``--format json`` output,
    ``plan.evaluate(...).to_json()``)."""
    if example not in _BASELINE:
        plan_path, records = EXAMPLE[example]
        out = io.StringIO()
        assert main(["run", str(plan_path), str(records), "--format", "json"], out=out) == 0
        plan = load_plan(plan_path)
        _BASELINE[example] = (out.getvalue(), plan.evaluate(read_records_file(records)).to_json())
    return _BASELINE[example]


def sqlite_url(path: Path, **params: str) -> str:
    return with_query(f"sqlite:///{path}", **params)


def duckdb_url(path: Path, **params: str) -> str:
    return with_query(f"duckdb:///{path}", **params)


def pg_with(url: str, **params: str) -> str:
    return with_query(url, **params)


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


# ---------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_server(postgres: str) -> str:
    """The URL of the real PostgreSQL server of the test session (a superuser)."""
    return postgres


@pytest.fixture
def pg(pg_server: str) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards: its URL (no table=)."""
    import sqlalchemy as sa

    name = f"acc_{uuid.uuid4().hex[:12]}"
    with pg_connect(pg_server) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(pg_server).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with pg_connect(pg_server) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------- reading databases


def db_kind(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def db_query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` run directly with the driver (never through incentives)."""
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    kind = db_kind(url)
    if kind == "sqlite":
        con = sqlite3.connect(u.database or "")
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()
    if kind == "duckdb":
        import duckdb

        dcon = duckdb.connect(u.database or "", read_only=True)
        try:
            return [tuple(r) for r in dcon.execute(sql).fetchall()]
        finally:
            dcon.close()
    with pg_connect(url) as pcon:
        return [tuple(r) for r in pcon.execute(sql).fetchall()]


def db_tables(url: str) -> list[str]:
    kind = db_kind(url)
    if kind == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    elif kind == "duckdb":
        sql = "SELECT table_name FROM information_schema.tables ORDER BY table_name"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = "
               "'public' ORDER BY table_name")
    return [r[0] for r in db_query(url, sql)]


def db_dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted (as text, so mixed types compare)."""
    return {t: sorted(db_query(url, f'SELECT * FROM "{t}"'), key=repr) for t in db_tables(url)}


def pay_rows(url: str, table: str = "pay") -> list[tuple[Any, ...]]:
    return db_query(url, f'SELECT plan, period, payee, total FROM "{table}" '
                         "ORDER BY plan, period, payee")


def base_url(kind: str, tmp_path: Path, pg: Callable[[], str], name: str = "db") -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.db')}"
    if kind == "duckdb":
        return f"duckdb:///{tmp_path / (name + '.duckdb')}"
    return pg()


def write_db(url: str, table: Table, *, name: str | None = None,
             numbers: str = "native") -> None:
    import sqlalchemy as sa

    kind = db_kind(url)
    path = Path(sa.engine.make_url(url).database or "")
    if kind == "sqlite":
        write_sqlite(path, table, numbers=numbers, name=name)  # type: ignore[arg-type]
    elif kind == "duckdb":
        write_duckdb(path, table, name=name)
    else:
        write_postgres(url, table, name=name)


# ---------------------------------------------------------------------- building sources

SOURCE_KINDS = ["jsonl-flat", "csv", "parquet", "parquet-dataset", "xlsx", "xlsx-sheets",
                "sqlite", "sqlite-text", "sqlite-query", "duckdb", "duckdb-query",
                "postgresql", "postgresql-query"]


def build_source(kind: str, flat: Flat, folder: Path, pg: Callable[[], str]
                 ) -> tuple[str, dict[str, str]]:
    """The records source spec and the event sources (``--events NAME=SOURCE``) of
    ``flat`` written as ``kind``."""
    events: dict[str, str] = {}
    lists = [t for t in flat.events.values() if t.rows]
    if kind == "jsonl-flat":
        records = write_jsonl(folder / "records.jsonl",
                              [{k: (str(v) if v is not None and not isinstance(v, str) else v)
                                for k, v in row.items() if v is not None}
                               for row in flat.records.rows])
        for t in lists:
            events[t.name] = str(write_jsonl(folder / f"{t.name}.jsonl", [
                {k: (v if isinstance(v, str) or v is None else str(v)) for k, v in row.items()
                 if v is not None} for row in t.rows]))
        return str(records), events
    if kind == "csv":
        for t in lists:
            events[t.name] = str(write_csv(folder / f"{t.name}.csv", t))
        return str(write_csv(folder / "records.csv", flat.records)), events
    if kind == "parquet":
        for t in lists:
            events[t.name] = str(write_parquet(folder / f"{t.name}.parquet", t))
        return str(write_parquet(folder / "records.parquet", flat.records)), events
    if kind == "parquet-dataset":
        for t in lists:
            events[t.name] = str(write_parquet(folder / f"{t.name}.parquet", t))
        return str(write_parquet_dataset(folder / "records", flat.records, "period")), events
    if kind in ("xlsx", "xlsx-sheets"):
        book = write_xlsx(folder / "book.xlsx", [flat.records, *lists])
        if kind == "xlsx":
            for t in lists:
                events[t.name] = f"{book}#{t.name}"
            return f"{book}#records", events
        return str(book), {}  # the sheets named like the event lists are read as them
    database = kind.split("-")[0]
    url = base_url(database, folder, pg)
    write_db(url, flat.records, numbers="text" if kind == "sqlite-text" else "native")
    for t in lists:
        write_db(url, t)
        events[t.name] = with_query(url, table=t.name)
    if kind.endswith("-query"):
        # HR's own table, with its own column names, read through a query file
        write_db(url, flat.records, name="hr_export")
        query = folder / "records.sql"
        columns = ", ".join(f'"{c}"' for c in flat.records.names())
        query.write_text(f"-- the month's records\nSELECT {columns}\n  FROM hr_export\n"
                         " WHERE payee <> 'nobody;really'\n;\n", encoding="utf-8")
        return with_query(url, query=str(query)), events
    return with_query(url, table="records"), events


def events_args(events: dict[str, str]) -> list[str]:
    out: list[str] = []
    for name, spec in events.items():
        out += ["--events", f"{name}={spec}"]
    return out


@pytest.fixture
def pg_lazy(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A fresh PostgreSQL database, created only when asked for."""
    made: list[str] = []

    def get() -> str:
        if not made:
            made.append(str(request.getfixturevalue("pg")))
        return made[0]

    return get


# ====================================================================== 1. must show


@pytest.mark.parametrize("kind", SOURCE_KINDS)
@pytest.mark.parametrize("example", ["telecom", "tobacco"])
def test_examples_give_identical_json_from_every_source(
        example: str, kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
        run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE[example]
    plan = load_plan(plan_path)
    flat = flatten(plan, read_jsonl(records_path))
    records, events = build_source(kind, flat, tmp_path, pg_lazy)
    if example == "telecom":
        assert kind == "xlsx-sheets" or set(events) == {"lost_customers"}
    cli_json, py_json = baseline(example)

    got = run_cli("run", plan_path, "--records", records, *events_args(events),
                  "--format", "json")
    assert got.code == 0, got
    assert got.out == cli_json

    # the positional RECORDS is the same as --records
    got = run_cli("run", plan_path, records, *events_args(events), "--format", "json")
    assert got.code == 0, got
    assert got.out == cli_json

    run = plan.evaluate(records, events=events or None)
    assert run.to_json() == py_json


def test_baseline_is_what_the_examples_pay() -> None:
    """The JSON compared above is the examples' real pay (so the comparison means something)."""
    data = json.loads(baseline("telecom")[0])
    assert [(r["payee"], r["total"]) for r in data["results"]] == [
        ("X", "948.00"), ("Y", "700.00"), ("Z", "4060.00")]
    data = json.loads(baseline("tobacco")[0])
    assert len(data["results"]) == 11
    assert data["errors"] == []


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
def test_numeric_with_more_places_pays_the_same(
        kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
        run_cli: Callable[..., Result]) -> None:
    """Amounts in DECIMAL(18,2) / NUMERIC(18,2) columns (50000.00) pay exactly what
    the JSON Lines file (50000) pays: every total and line amount equal."""
    plan_path, records_path = EXAMPLE["telecom"]
    plan = load_plan(plan_path)
    flat = flatten(plan, read_jsonl(records_path))
    for row in flat.records.rows:
        if row["traffic_revenue"] is not None:
            row["traffic_revenue"] = row["traffic_revenue"].quantize(Decimal("0.01"))
    for row in flat.events["lost_customers"].rows:
        row["monthly_value"] = row["monthly_value"].quantize(Decimal("0.01"))
    url = base_url(kind, tmp_path, pg_lazy)
    if kind == "postgresql":
        with pg_connect(url) as con:
            con.execute('CREATE TABLE records (payee TEXT, period TEXT, "group" TEXT, '
                        "traffic_revenue NUMERIC(18,2), new_400 INTEGER, new_fax INTEGER, "
                        "new_ipvpn INTEGER)")
            con.execute("CREATE TABLE lost_customers (payee TEXT, period TEXT, id TEXT, "
                        "monthly_value NUMERIC(18,2), reason TEXT, acquired DATE, lost DATE)")
            with con.cursor() as cur:
                cur.executemany("INSERT INTO records VALUES (%s,%s,%s,%s,%s,%s,%s)",
                                [[r.get(c) for c in flat.records.names()]
                                 for r in flat.records.rows])
                t = flat.events["lost_customers"]
                cur.executemany("INSERT INTO lost_customers VALUES (%s,%s,%s,%s,%s,%s,%s)",
                                [[r.get(c) for c in t.names()] for r in t.rows])
    else:
        write_db(url, flat.records, numbers="text")
        write_db(url, flat.events["lost_customers"], numbers="text")
    got = run_cli("run", plan_path, "--records", with_query(url, table="records"),
                  "--events", f"lost_customers={with_query(url, table='lost_customers')}",
                  "--format", "json")
    assert got.code == 0, got
    want = json.loads(baseline("telecom")[0])
    data = json.loads(got.out)
    assert [(r["payee"], r["total"], [(ln["id"], ln["amount"]) for ln in r["lines"]])
            for r in data["results"]] == [
        (r["payee"], r["total"], [(ln["id"], ln["amount"]) for ln in r["lines"]])
        for r in want["results"]]


def test_events_without_a_record_are_reported(tmp_path: Path,
                                              run_cli: Callable[..., Result]) -> None:
    """An event row whose payee-period has no record is that payee's error, never
    dropped silently; the records are still paid."""
    plan_path, records_path = EXAMPLE["telecom"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    flat.events["lost_customers"].rows.append(
        {"payee": "GHOST", "period": "2026-05", "id": "c-1", "monthly_value": Decimal(10),
         "reason": "moved", "acquired": None, "lost": __import__("datetime").date(2026, 5, 1)})
    db = tmp_path / "hr.db"
    write_sqlite(db, flat.records)
    write_sqlite(db, flat.events["lost_customers"])
    got = run_cli("run", plan_path, "--records", sqlite_url(db, table="records"),
                  "--events", f"lost_customers={sqlite_url(db, table='lost_customers')}",
                  "--format", "json")
    assert got.code == 1, got
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [
        ("X", "948.00"), ("Y", "700.00"), ("Z", "4060.00")]
    assert [(e["payee"], e.get("field")) for e in data["errors"]] == [
        ("GHOST", "events.lost_customers")]


def test_xlsx_title_rows_above_the_header(tmp_path: Path,
                                          run_cli: Callable[..., Result]) -> None:
    """A sheet as HR makes it: a title row or two above the header row."""
    plan_path, records_path = EXAMPLE["tobacco"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    book = write_xlsx(tmp_path / "hr.xlsx", [flat.records],
                      titles=["Customer managers, May 2026", "Provincial branch"])
    got = run_cli("run", plan_path, "--records", f"{book}#records", "--format", "json")
    assert got.code == 0, got
    assert got.out == baseline("tobacco")[0]


# ====================================================================== 2. sinks round trip

SINKS = ["xlsx", "parquet", "sqlite", "duckdb", "postgresql"]


def sink_target(kind: str, tmp_path: Path, pg: Callable[[], str], name: str = "pay") -> str:
    if kind == "xlsx":
        return str(tmp_path / f"{name}.xlsx")
    if kind == "parquet":
        return str(tmp_path / f"{name}.parquet")
    return with_query(base_url(kind, tmp_path, pg, "out"), table=name)


def assert_amounts_match_json(tables: Any, json_text: str) -> None:
    data = json.loads(json_text)
    totals = {(r["period"], r["payee"]): Decimal(r["total"]) for r in data["results"]}
    assert {(row[2], row[4]): row[5] for row in tables.totals} == totals
    for row in tables.totals:
        assert isinstance(row[5], Decimal)
    lines = {(r["period"], r["payee"], i): (ln["id"], Decimal(ln["amount"]))
             for r in data["results"] for i, ln in enumerate(r["lines"], 1)}
    assert {(row[2], row[4], row[5]): (row[6], row[9]) for row in tables.lines} == lines
    for row in tables.lines:
        assert isinstance(row[9], Decimal)
        assert row[9] == row[9].quantize(Decimal("0.01"))
        assert str(row[9]) == str(row[9].quantize(Decimal("0.01")))


@pytest.mark.parametrize("sink", SINKS)
@pytest.mark.parametrize("example", ["telecom", "tobacco"])
def test_round_trip_to_each_sink(example: str, sink: str, tmp_path: Path,
                                 pg_lazy: Callable[[], str],
                                 run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path, records_path = EXAMPLE[example]
    plan = load_plan(plan_path)
    run = plan.evaluate(read_records_file(records_path))
    want = result_tables(run)
    assert want.totals
    assert want.lines

    target = sink_target(sink, tmp_path, pg_lazy)
    got = run_cli("run", plan_path, records_path, "--out", target)
    assert got.code == 0, got
    back = incentives.read_results(target)
    assert back == want
    assert_amounts_match_json(back, baseline(example)[0])

    # the Python API writes the same
    target2 = sink_target(sink, tmp_path, pg_lazy, "pay2")
    if sink == "xlsx":
        run.to_excel(target2)
    elif sink == "parquet":
        run.to_parquet(target2)
    else:
        run.to_sql(target2)
    assert incentives.read_results(target2) == want


@pytest.mark.parametrize("sink", ["sqlite", "duckdb", "postgresql"])
def test_round_trip_with_errors_and_pay_with_errors(
        sink: str, tmp_path: Path, pg_lazy: Callable[[], str],
        run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    raws = read_jsonl(records_path)
    raws.append({"payee": "Q", "period": "2026-05", "group": "fuzhou-key-accounts",
                 "metrics": {"traffic_revenue": "abc"}})
    records = write_jsonl(tmp_path / "records.jsonl", raws)
    run = load_plan(plan_path).evaluate(read_records_file(records), errors="collect")
    want = result_tables(run)
    assert len(want.errors) == 1
    target = sink_target(sink, tmp_path, pg_lazy)
    got = run_cli("run", plan_path, records, "--out", target, "--pay-with-errors")
    assert got.code == 1, got
    back = incentives.read_results(target)
    assert back == want
    assert back.errors[0][4:6] == ("Q", "metrics.traffic_revenue")


@pytest.mark.parametrize("sink", ["xlsx", "parquet"])
def test_round_trip_of_errors_to_files(sink: str, tmp_path: Path,
                                       run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    raws = read_jsonl(records_path)
    raws.append({"payee": "Q", "period": "2026-05", "metrics": {"traffic_revenue": None}})
    records = write_jsonl(tmp_path / "records.jsonl", raws)
    run = load_plan(plan_path).evaluate(read_records_file(records), errors="collect")
    target = sink_target(sink, tmp_path, lambda: "")
    got = run_cli("run", plan_path, records, "--out", target)
    assert got.code == 1, got
    back = incentives.read_results(target)
    assert back == result_tables(run)
    assert [(e[4], e[5]) for e in back.errors] == [("Q", "metrics.traffic_revenue")]
    assert back.totals == result_tables(run).totals


def test_parquet_sink_writes_three_files_with_decimal128(
        tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    plan_path, records_path = EXAMPLE["telecom"]
    target = tmp_path / "pay.parquet"
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "pay.errors.parquet", "pay.lines.parquet", "pay.parquet"]
    assert not [p for p in tmp_path.iterdir() if "incentives-tmp" in p.name]
    totals = pq.read_table(target)
    assert totals.schema.field("total").type == pa.decimal128(38, 2)
    assert totals.column("total").to_pylist() == [
        Decimal("948.00"), Decimal("700.00"), Decimal("4060.00")]
    lines = pq.read_table(tmp_path / "pay.lines.parquet")
    assert lines.schema.field("amount").type == pa.decimal128(38, 2)


@pytest.mark.parametrize("sink", ["duckdb", "postgresql"])
def test_sql_sink_money_is_an_exact_decimal_column(
        sink: str, tmp_path: Path, pg_lazy: Callable[[], str],
        run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    target = sink_target(sink, tmp_path, pg_lazy)
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    rows = db_query(target.split("?")[0] if sink == "duckdb" else pg_lazy(),
                    "SELECT payee, total FROM pay ORDER BY payee")
    assert rows == [("X", Decimal("948.00")), ("Y", Decimal("700.00")),
                    ("Z", Decimal("4060.00"))]


def test_sqlite_sink_money_is_exact_text(tmp_path: Path,
                                        run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    db = tmp_path / "out.db"
    assert run_cli("run", plan_path, records_path, "--out",
                   sqlite_url(db, table="pay")).code == 0
    rows = db_query(f"sqlite:///{db}", "SELECT payee, total, typeof(total) FROM pay "
                                       "ORDER BY payee")
    assert rows == [("X", "948.00", "text"), ("Y", "700.00", "text"),
                    ("Z", "4060.00", "text")]


# ====================================================================== 3. re-run replaces


def shifted(raws: list[dict[str, Any]], period: str) -> list[dict[str, Any]]:
    return [{**r, "period": period} for r in raws]


@pytest.mark.parametrize("sink", ["sqlite", "duckdb", "postgresql"])
def test_rerun_of_a_period_replaces_its_rows(sink: str, tmp_path: Path,
                                            pg_lazy: Callable[[], str],
                                            run_cli: Callable[..., Result]) -> None:
    telecom, telecom_records = EXAMPLE["telecom"]
    tobacco, tobacco_records = EXAMPLE["tobacco"]
    target = sink_target(sink, tmp_path, pg_lazy)
    url = target.split("?")[0] if sink != "postgresql" else pg_lazy()
    may = read_jsonl(telecom_records)
    june = write_jsonl(tmp_path / "june.jsonl", shifted(
        [{**r, "metrics": {**r["metrics"], "traffic_revenue": 20000}} for r in may],
        "2026-06"))
    assert run_cli("run", telecom, telecom_records, "--out", target).code == 0
    assert run_cli("run", telecom, june, "--out", target).code == 0
    assert run_cli("run", tobacco, tobacco_records, "--out", target).code == 0
    before = pay_rows(url)
    assert len(before) == 3 + 3 + 11
    lines_before = db_query(url, "SELECT plan, period, payee, line, amount FROM pay_lines "
                                 "ORDER BY plan, period, payee, line")

    # Y's revenue corrected from 10000 to 60000: run May again
    changed = [{**r, "metrics": {**r["metrics"], "traffic_revenue": 60000}}
               if r["payee"] == "Y" else r for r in may]
    changed_file = write_jsonl(tmp_path / "may.jsonl", changed)
    for _ in range(2):  # idempotent
        got = run_cli("run", telecom, changed_file, "--out", target)
        assert got.code == 0, got
        after = pay_rows(url)
        telecom_may = [r for r in after if r[0] == "telecom-key-account" and r[1] == "2026-05"]
        assert [(r[2], Decimal(r[3])) for r in telecom_may] == [
            ("X", Decimal("948.00")), ("Y", Decimal("1800.00")), ("Z", Decimal("4060.00"))]
        assert [r for r in after if r not in telecom_may] == [
            r for r in before if not (r[0] == "telecom-key-account" and r[1] == "2026-05")]
        lines_after = db_query(url, "SELECT plan, period, payee, line, amount FROM pay_lines "
                                    "ORDER BY plan, period, payee, line")
        kept = [r for r in lines_before
                if not (r[0] == "telecom-key-account" and r[1] == "2026-05")]
        assert [r for r in lines_after
                if not (r[0] == "telecom-key-account" and r[1] == "2026-05")] == kept
        may_lines = [r for r in lines_after
                     if r[0] == "telecom-key-account" and r[1] == "2026-05"]
        assert len(may_lines) == 12
        assert [Decimal(r[4]) for r in may_lines if r[2] == "Y"] == [
            Decimal("1800.00"), Decimal("0.00"), Decimal("0.00"), Decimal("0.00")]


# ====================================================================== 4. killed mid-write


def _wait_until(pred: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
                timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before it was seen {what}: "
                        f"{err.decode(errors='replace')[-2000:]}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"the run was not seen {what} within {timeout}s")


def _has_open(pid: int, path: Path) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


@pytest.fixture(scope="module")
def big_population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    return write_jsonl(folder / "big.jsonl", telecom_population(50_000))


@pytest.fixture(scope="module")
def mid_population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mid")
    return write_jsonl(folder / "mid.jsonl", telecom_population(15_000))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.parametrize("sink", ["sqlite", "duckdb", "postgresql", "xlsx", "parquet"])
def test_run_killed_mid_write_leaves_the_previous_rows(
        sink: str, tmp_path: Path, pg_lazy: Callable[[], str], big_population: Path,
        run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    target = sink_target(sink, tmp_path, pg_lazy)
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    previous = incentives.read_results(target)
    assert len(previous.totals) == 3
    files_before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    proc = subprocess.Popen([sys.executable, "-m", "incentives", "run", str(plan_path),
                             str(big_population), "--out", target],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        if sink == "sqlite":
            db = tmp_path / "out.db"
            _wait_until(lambda: Path(f"{db}-journal").exists() or Path(f"{db}-wal").exists(),
                        proc, "writing the database (its journal)")
        elif sink == "duckdb":
            db = tmp_path / "out.duckdb"
            _wait_until(lambda: _has_open(proc.pid, db), proc, "opening the database")
            time.sleep(0.3)  # DuckDB keeps the open transaction in memory: well into it
        elif sink == "postgresql":
            url = pg_lazy()

            def writing() -> bool:
                return bool(db_query(url, "SELECT count(*) FROM pg_stat_activity WHERE "
                                          "datname = current_database() AND backend_xid IS "
                                          "NOT NULL AND pid <> pg_backend_pid()")[0][0])
            _wait_until(writing, proc, "writing (a transaction holding an xid)")
        else:
            _wait_until(lambda: any("incentives-tmp" in p.name and p.stat().st_size > 0
                                    for p in tmp_path.iterdir()), proc,
                        "writing its temporary file")
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    if sink == "postgresql":  # the server notices the client is gone and rolls back
        url = pg_lazy()
        end = time.monotonic() + 30
        while time.monotonic() < end and db_query(
                url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                     "current_database() AND pid <> pg_backend_pid()")[0][0]:
            time.sleep(0.05)
    assert incentives.read_results(target) == previous
    if sink in ("xlsx", "parquet"):
        for name, data in files_before.items():
            assert (tmp_path / name).read_bytes() == data, name
    else:
        assert len(pay_rows(target.split("?")[0] if sink != "postgresql" else pg_lazy())) == 3


# ====================================================================== 5. errors


def bad_records_table() -> Table:
    plan = load_plan(EXAMPLE["telecom"][0])
    flat = flatten(plan, read_jsonl(EXAMPLE["telecom"][1]))
    t = flat.records
    t.rows.append({"payee": "W", "period": "2026-05", "group": "fuzhou-key-accounts",
                   "traffic_revenue": Decimal(40000), "new_400": None, "new_fax": None,
                   "new_ipvpn": None})
    for row in t.rows:
        if row["payee"] == "Y":
            row["traffic_revenue"] = None
    return t


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql", "parquet", "xlsx", "csv"])
def test_null_where_a_number_is_required(kind: str, tmp_path: Path,
                                         pg_lazy: Callable[[], str],
                                         run_cli: Callable[..., Result]) -> None:
    plan_path = EXAMPLE["telecom"][0]
    t = bad_records_table()
    if kind == "parquet":
        source = str(write_parquet(tmp_path / "records.parquet", t))
    elif kind == "xlsx":
        source = str(write_xlsx(tmp_path / "records.xlsx", [t]))
    elif kind == "csv":
        source = str(write_csv(tmp_path / "records.csv", t))
    else:
        url = base_url(kind, tmp_path, pg_lazy)
        write_db(url, t)
        source = with_query(url, table="records")
    got = run_cli("run", plan_path, "--records", source, "--format", "json")
    assert got.code == 1, got
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [
        ("W", "1000.00"), ("X", "1580.00"), ("Z", "4060.00")]
    assert [(e["payee"], e["period"], e["field"]) for e in data["errors"]] == [
        ("Y", "2026-05", "metrics.traffic_revenue")]
    assert "required metric" in data["errors"][0]["message"]
    assert "Y" in got.err
    assert "Traceback" not in got.err


def test_text_in_a_numeric_column_of_sqlite(tmp_path: Path,
                                            run_cli: Callable[..., Result]) -> None:
    plan_path = EXAMPLE["telecom"][0]
    t = bad_records_table()
    db = tmp_path / "hr.db"
    write_sqlite(db, t)
    con = sqlite3.connect(db)
    con.execute("UPDATE records SET traffic_revenue = 'lots' WHERE payee = 'Y'")
    con.execute("UPDATE records SET new_fax = 'three' WHERE payee = 'X'")
    con.commit()
    con.close()
    assert db_query(f"sqlite:///{db}", "SELECT typeof(traffic_revenue) FROM records "
                                       "WHERE payee = 'Y'") == [("text",)]
    got = run_cli("run", plan_path, "--records", sqlite_url(db, table="records"),
                  "--format", "json")
    assert got.code == 1, got
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [
        ("W", "1000.00"), ("Z", "4060.00")]
    assert sorted((e["payee"], e["period"], e["field"]) for e in data["errors"]) == [
        ("X", "2026-05", "metrics.new_fax"), ("Y", "2026-05", "metrics.traffic_revenue")]
    messages = {e["payee"]: e["message"] for e in data["errors"]}
    assert "lots" in messages["Y"]
    assert "three" in messages["X"]


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql", "parquet", "xlsx"])
def test_missing_column(kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
                        run_cli: Callable[..., Result]) -> None:
    """A records table without the required ``traffic_revenue`` column: every row is
    an error naming its payee, period and the field; a table without an optional
    column (``new_400``, default 0) pays as before."""
    plan_path, records_path = EXAMPLE["telecom"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    without = Table("records", [c for c in flat.records.columns if c[0] != "traffic_revenue"],
                    flat.records.rows)
    optional = Table("optional", [c for c in flat.records.columns if c[0] != "new_400"],
                     flat.records.rows)
    if kind == "parquet":
        source = str(write_parquet(tmp_path / "records.parquet", without))
        good = str(write_parquet(tmp_path / "optional.parquet", optional))
    elif kind == "xlsx":
        book = write_xlsx(tmp_path / "records.xlsx", [without, optional])
        source, good = f"{book}#records", f"{book}#optional"
    else:
        url = base_url(kind, tmp_path, pg_lazy)
        write_db(url, without)
        write_db(url, optional)
        source, good = with_query(url, table="records"), with_query(url, table="optional")
    events = str(write_csv(tmp_path / "lost.csv", flat.events["lost_customers"]))
    got = run_cli("run", plan_path, "--records", source, "--events",
                  f"lost_customers={events}", "--format", "json")
    assert got.code == 1, got
    data = json.loads(got.out)
    assert data["results"] == []
    assert [(e["payee"], e["period"], e["field"]) for e in data["errors"]] == [
        ("X", "2026-05", "metrics.traffic_revenue"), ("Y", "2026-05", "metrics.traffic_revenue"),
        ("Z", "2026-05", "metrics.traffic_revenue")]
    got = run_cli("run", plan_path, "--records", good, "--events",
                  f"lost_customers={events}", "--format", "json")
    assert got.code == 0, got
    assert got.out == baseline("telecom")[0]


def test_row_errors_name_the_table(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    """The issue: "Row-level problems name the table and the row key"."""
    plan_path = EXAMPLE["telecom"][0]
    t = bad_records_table()
    db = tmp_path / "hr.db"
    write_sqlite(db, t, name="may_sales_export")
    got = run_cli("run", plan_path, "--records", sqlite_url(db, table="may_sales_export"))
    assert got.code == 1, got
    line = next(ln for ln in got.err.splitlines() if "'Y'" in ln)
    assert "may_sales_export" in line
    assert "traffic_revenue" in line


@pytest.mark.parametrize("sink", ["sqlite", "duckdb", "postgresql"])
def test_errors_to_a_sql_sink_keep_the_previous_pay(
        sink: str, tmp_path: Path, pg_lazy: Callable[[], str],
        run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    target = sink_target(sink, tmp_path, pg_lazy)
    url = target.split("?")[0] if sink != "postgresql" else pg_lazy()
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    pay_before = pay_rows(url)
    lines_before = db_query(url, "SELECT payee, line, amount FROM pay_lines "
                                 "ORDER BY payee, line")
    assert len(pay_before) == 3

    bad = tmp_path / "bad.db"
    write_sqlite(bad, bad_records_table())
    got = run_cli("run", plan_path, "--records", sqlite_url(bad, table="records"),
                  "--out", target)
    assert got.code == 1, got
    assert got.err.strip(), "a note on stderr says the pay was not written"
    assert pay_rows(url) == pay_before
    assert db_query(url, "SELECT payee, line, amount FROM pay_lines "
                         "ORDER BY payee, line") == lines_before
    errors = db_query(url, 'SELECT plan, period, kind, payee, field FROM pay_errors')
    assert errors == [("telecom-key-account", "2026-05", "record", "Y",
                       "metrics.traffic_revenue")]

    # told to: the good rows are paid (the period's rows replaced), the errors kept
    got = run_cli("run", plan_path, "--records", sqlite_url(bad, table="records"),
                  "--out", target, "--pay-with-errors")
    assert got.code == 1, got
    assert [(r[2], Decimal(r[3])) for r in pay_rows(url)] == [
        ("W", Decimal("1000.00")), ("X", Decimal("1580.00")), ("Z", Decimal("4060.00"))]
    assert db_query(url, 'SELECT payee, field FROM pay_errors') == [
        ("Y", "metrics.traffic_revenue")]

    # a clean re-run clears the period's errors
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    assert pay_rows(url) == pay_before
    assert db_query(url, "SELECT payee FROM pay_errors") == []


@pytest.mark.parametrize("form", ["plain", "escaped", "param"])
def test_connection_failure_wrong_port(form: str, tmp_path: Path) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    secrets = [SECRET]
    if form == "plain":
        url = f"postgresql://hr:{SECRET}@127.0.0.1:1/hr"
    elif form == "escaped":  # 'S3cr@t/pw:x' written as the URL must
        url = "postgresql://hr:S3cr%40t%2Fpw%3Ax@127.0.0.1:1/hr"
        secrets = ["S3cr%40t%2Fpw%3Ax", "S3cr@t/pw:x", "S3cr"]
    else:
        url = f"postgresql://hr@127.0.0.1:1/hr?password={SECRET}"
    for command, args in (("run", ["--records", with_query(url, table="records")]),
                          ("run", [str(records_path), "--out", with_query(url, table="pay")]),
                          ("stream", ["--records", with_query(url, table="records")]),
                          ("stream", [str(records_path), "--out", with_query(url, table="pay")])):
        got = run_process(command, plan_path, *args)
        assert got.code == 2, got
        assert one_line(got.err), got
        assert "Traceback" not in got.err
        for secret in secrets:
            assert secret not in got.err + got.out, (secret, got)
        assert "127.0.0.1" in got.err


def test_connection_failure_wrong_password(pg_server: str, pg: str) -> None:
    """Wrong password on the real server (a role with a password, over TCP when the
    server asks for one): exit 2, one line, the password nowhere."""
    import sqlalchemy as sa

    role = f"acc_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg) as con:
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'right-{SECRET}'")
        con.execute("CREATE TABLE records (payee TEXT)")
        con.execute(f"GRANT SELECT ON records TO {role}")
    try:
        u = sa.engine.make_url(pg).set(username=role, password=f"wrong-{SECRET}")
        url = u.render_as_string(hide_password=False)
        import psycopg

        try:
            pg_connect(url).close()
        except psycopg.OperationalError:
            pass
        else:
            pytest.skip("the test server does not check passwords (trust authentication)")
        got = run_process("run", EXAMPLE["telecom"][0], "--records",
                          with_query(url, table="records"))
        assert got.code == 2, got
        assert one_line(got.err), got
        assert "Traceback" not in got.err
        assert SECRET not in got.err + got.out
    finally:
        with pg_connect(pg) as con:
            con.execute("DROP TABLE records")
            con.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_missing_database_file_is_refused_not_created(kind: str, tmp_path: Path,
                                                      run_cli: Callable[..., Result]) -> None:
    path = tmp_path / ("nothing.db" if kind == "sqlite" else "nothing.duckdb")
    got = run_cli("run", EXAMPLE["telecom"][0], "--records", f"{kind}:///{path}?table=records")
    assert got.code == 2, got
    assert one_line(got.err), got
    assert not path.exists()


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
def test_missing_table_is_named(kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
                                run_cli: Callable[..., Result]) -> None:
    url = base_url(kind, tmp_path, pg_lazy)
    write_db(url, Table("records", [("payee", "text"), ("period", "text")], []))
    got = run_cli("run", EXAMPLE["telecom"][0], "--records", with_query(url, table="recrods"))
    assert got.code == 2, got
    assert one_line(got.err), got
    assert "recrods" in got.err
    assert "Traceback" not in got.err


def float_plan(tmp_path: Path, reading: str | None) -> Path:
    text = EXAMPLE["telecom"][0].read_text(encoding="utf-8")
    if reading is not None:
        text += f"\nreading: {{floats: {reading}}}\n"
    path = tmp_path / f"plan-{reading}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql", "parquet"])
def test_float_column_refused_by_default_accepted_when_the_plan_says(
        kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
        run_cli: Callable[..., Result]) -> None:
    rows = [("X", "2026-05", 50000.0), ("Y", "2026-05", 10000.5), ("Z", "2026-05", 0.1)]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = str(tmp_path / "records.parquet")
        pq.write_table(pa.table({"payee": [r[0] for r in rows], "period": [r[1] for r in rows],
                                 "traffic_revenue": pa.array([r[2] for r in rows],
                                                             type=pa.float64())}), source)
    else:
        url = base_url(kind, tmp_path, pg_lazy)
        if kind == "sqlite":
            con = sqlite3.connect(url.split("///", 1)[1])
            con.execute("CREATE TABLE records (payee TEXT, period TEXT, traffic_revenue REAL)")
            con.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
            con.commit()
            con.close()
        elif kind == "duckdb":
            import duckdb

            dcon = duckdb.connect(url.split("///", 1)[1])
            dcon.execute("CREATE TABLE records (payee VARCHAR, period VARCHAR, "
                         "traffic_revenue DOUBLE)")
            dcon.executemany("INSERT INTO records VALUES (?, ?, ?)", rows)
            dcon.close()
        else:
            with pg_connect(url) as pcon:
                pcon.execute("CREATE TABLE records (payee TEXT, period TEXT, "
                             "traffic_revenue DOUBLE PRECISION)")
                with pcon.cursor() as cur:
                    cur.executemany("INSERT INTO records VALUES (%s, %s, %s)", rows)
        source = with_query(url, table="records")
    got = run_cli("run", float_plan(tmp_path, None), "--records", source, "--format", "json")
    assert got.code == 2, got
    assert one_line(got.err), got
    assert "traffic_revenue" in got.err
    assert "float" in got.err
    assert got.out == ""

    got = run_cli("run", float_plan(tmp_path, "shortest"), "--records", source,
                  "--format", "json")
    assert got.code == 0, got
    data = json.loads(got.out)
    # 10000.5 * 2% = 200.01; 0.1 * 2% = 0.002 -> 0.00, the floor tops up to 700
    assert [(r["payee"], r["total"], r["lines"][0]["amount"]) for r in data["results"]] == [
        ("X", "1400.00", "1400.00"), ("Y", "700.00", "200.01"), ("Z", "700.00", "0.00")]
    assert data["results"][1]["lines"][0]["details"]["basis"] == "10000.5"
    assert data["results"][2]["lines"][0]["details"]["basis"] == "0.1"


# ====================================================================== 6. hostile

HOSTILE_PAYEES = [
    "x'); DROP TABLE pay; --",
    "Robert'); DROP TABLE records;--",
    '"; DROP TABLE pay_lines; --',
    "1 OR 1=1",
    "' OR ''='",
    "pay\\'; SELECT pg_sleep(10); --",
]


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
def test_sql_looking_payee_ids_are_plain_text(kind: str, tmp_path: Path,
                                              pg_lazy: Callable[[], str],
                                              run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path = EXAMPLE["telecom"][0]
    t = Table("records", [("payee", "text"), ("period", "text"), ("group", "text"),
                          ("traffic_revenue", "number")],
              [{"payee": p, "period": "2026-05", "group": "g'; DROP TABLE pay_errors; --",
                "traffic_revenue": Decimal(10000 + i)} for i, p in enumerate(HOSTILE_PAYEES)])
    url = base_url(kind, tmp_path, pg_lazy)
    write_db(url, t)
    target = with_query(url, table="pay")
    got = run_cli("run", plan_path, "--records", with_query(url, table="records"),
                  "--out", target)
    assert got.code == 0, got
    assert db_tables(url) == ["pay", "pay_errors", "pay_lines", "records"]
    assert sorted(r[0] for r in db_query(url, "SELECT payee FROM records")) == sorted(
        HOSTILE_PAYEES)
    back = incentives.read_results(target)
    assert sorted(r[4] for r in back.totals) == sorted(HOSTILE_PAYEES)
    assert {r[3] for r in back.totals} == {"g'; DROP TABLE pay_errors; --"}
    assert sorted(r[0] for r in db_query(url, "SELECT payee FROM pay")) == sorted(HOSTILE_PAYEES)

    got = run_cli("run", plan_path, "--records", with_query(url, table="records"),
                  "--format", "json")
    assert got.code == 0, got
    assert sorted(r["payee"] for r in json.loads(got.out)["results"]) == sorted(HOSTILE_PAYEES)


HOSTILE_TABLES = [
    "records; DROP TABLE records",
    'records"; DROP TABLE records; --',
    "records --",
    "records/**/",
    "a b",
    "1records",
    "main.records.extra",
    '"records"',
    "records'",
    "records\u00a0",
    "réc",
    "records)",
    "",
]


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
def test_hostile_table_names_are_refused(kind: str, tmp_path: Path,
                                         pg_lazy: Callable[[], str],
                                         run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    url = base_url(kind, tmp_path, pg_lazy)
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    write_db(url, flat.records)
    before = db_dump(url)
    files = sorted(p.name for p in tmp_path.iterdir())
    for name in HOSTILE_TABLES:
        for args in (["--records", with_query(url, table=name)],
                     [str(records_path), "--out", with_query(url, table=name)]):
            got = run_cli("run", plan_path, *args)
            assert got.code == 2, (name, got)
            assert one_line(got.err), (name, got)
            assert "table" in got.err
        assert db_dump(url) == before, name
        assert sorted(p.name for p in tmp_path.iterdir()) == files
    # a plain name, and a schema-qualified one, are fine
    schema = "main" if kind != "postgresql" else "public"
    got = run_cli("run", plan_path, "--records", with_query(url, table=f"{schema}.records"),
                  "--format", "json")
    assert got.code == 0, got


WRITING_QUERIES = [
    "DELETE FROM records",
    "delete from records where 1=1",
    "UPDATE records SET payee = 'owned'",
    "INSERT INTO records (payee, period) VALUES ('owned', '2026-05')",
    "DROP TABLE records",
    "CREATE TABLE stolen AS SELECT * FROM records",
    "SELECT * FROM records; DROP TABLE records",
    "SELECT * FROM records;\nDELETE FROM records;",
    "SELECT * FROM records; -- fine\n; DELETE FROM records",
    "SELECT * FROM records /* ; */ ; UPDATE records SET payee = 'owned'",
    "SELECT 'a;b' AS payee FROM records; DELETE FROM records",
    "/* SELECT */ DELETE FROM records",
    "-- SELECT\nDELETE FROM records",
    "WITH x AS (SELECT 1) DELETE FROM records",
    "WITH x AS (SELECT 1) INSERT INTO records (payee, period) SELECT 'owned', '2026-05' FROM x",
    "WITH x AS (SELECT 1) UPDATE records SET payee = 'owned'",
]
WRITING_BY_KIND = {
    "sqlite": ["ATTACH DATABASE 'ATTACHED' AS a", "VACUUM INTO 'ATTACHED'",
               "PRAGMA user_version = 42", "SELECT * FROM records; ATTACH 'ATTACHED' AS a",
               "REPLACE INTO records (payee, period) VALUES ('owned', '2026-05')",
               "SELECT * FROM records WHERE [payee] <> 'a]'; DELETE FROM records; -- '"],
    "duckdb": ["COPY records TO 'ATTACHED'", "ATTACH 'ATTACHED' AS a",
               "SELECT * FROM records; COPY records TO 'ATTACHED'",
               "EXPORT DATABASE 'ATTACHED'", "CHECKPOINT",
               # '[' is a list in DuckDB, not a quote: the COPY is a second statement
               "SELECT * FROM records WHERE ['a]'] IS NOT NULL; COPY records TO 'ATTACHED'; -- '",
               "SELECT * FROM records WHERE len(['a]']) = 1; ATTACH 'ATTACHED' AS a; -- '"],
    "postgresql": ["WITH d AS (DELETE FROM records RETURNING *) SELECT * FROM d",
                   "WITH u AS (UPDATE records SET payee = 'owned' RETURNING *) SELECT * FROM u",
                   "SELECT * INTO stolen FROM records",
                   "SELECT *, set_config('transaction_read_only', 'off', true) FROM records",
                   "TABLE records; DROP TABLE records",
                   "VALUES (1); DELETE FROM records",
                   "COPY records FROM STDIN",
                   "SET default_transaction_read_only = off",
                   "SELECT * FROM records FOR UPDATE; TRUNCATE records",
                   "SELECT * FROM records WHERE ARRAY['a]'] IS NOT NULL; COMMIT; "
                   "DELETE FROM records; -- '",
                   "SELECT * FROM records WHERE $q$ ' $q$ <> ''; COMMIT; DELETE FROM records; "
                   "-- '"],
}


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
def test_query_file_that_writes_is_refused(kind: str, tmp_path: Path,
                                           pg_lazy: Callable[[], str],
                                           run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    folder = tmp_path / "db"
    folder.mkdir()
    url = base_url(kind, folder, pg_lazy)
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    write_db(url, flat.records)
    before = db_dump(url)
    files = sorted(p.name for p in folder.iterdir())
    query = tmp_path / "q.sql"
    attached = tmp_path / "attached.out"
    for text in WRITING_QUERIES + WRITING_BY_KIND[kind]:
        query.write_text(text.replace("ATTACHED", str(attached)), encoding="utf-8")
        got = run_cli("run", plan_path, "--records", with_query(url, query=str(query)))
        assert not attached.exists(), ("the query wrote a file", text)
        assert db_dump(url) == before, text
        assert sorted(p.name for p in folder.iterdir()) == files, text
        assert got.code == 2, (text, got)
        assert one_line(got.err), (text, got)
        assert "Traceback" not in got.err
    # reading queries are fine: a trailing ';' and comment, a ';' inside a string
    lost = write_csv(tmp_path / "lost.csv", flat.events["lost_customers"])
    for text in ["SELECT * FROM records;\n-- done\n",
                 "select * from records where payee <> 'a;DROP TABLE records'",
                 "/* the month */ WITH r AS (SELECT * FROM records) SELECT * FROM r",
                 "SELECT * FROM records -- ; DELETE FROM records\n"]:
        query.write_text(text, encoding="utf-8")
        got = run_cli("run", plan_path, "--records", with_query(url, query=str(query)),
                      "--events", f"lost_customers={lost}", "--format", "json")
        assert got.code == 0, (text, got)
        assert got.out == baseline("telecom")[0], text
        assert db_dump(url) == before, text


HUGE = "A" * 1_000_000


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql", "parquet", "xlsx"])
def test_huge_text_cell(kind: str, tmp_path: Path, pg_lazy: Callable[[], str]) -> None:
    """A 1 MB text in the group of Y and in the reason of X's lost customer: those
    rows are errors naming the payee (or handled), the run does not crash, the
    messages do not repeat the megabyte, the other payee is paid."""
    plan_path, records_path = EXAMPLE["telecom"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    for row in flat.records.rows:
        if row["payee"] == "Y":
            row["group"] = HUGE
    flat.events["lost_customers"].rows[0]["reason"] = HUGE
    if kind == "parquet":
        source = str(write_parquet(tmp_path / "records.parquet", flat.records))
        events = str(write_parquet(tmp_path / "lost.parquet", flat.events["lost_customers"]))
    elif kind == "xlsx":
        book = write_xlsx(tmp_path / "book.xlsx", [flat.records, flat.events["lost_customers"]])
        source, events = f"{book}#records", f"{book}#lost_customers"
    else:
        url = base_url(kind, tmp_path, pg_lazy)
        write_db(url, flat.records)
        write_db(url, flat.events["lost_customers"])
        source = with_query(url, table="records")
        events = with_query(url, table="lost_customers")
    got = run_process("run", plan_path, "--records", source, "--events",
                      f"lost_customers={events}", "--format", "json")
    assert "Traceback" not in got.err
    assert len(got.out) + len(got.err) < 50_000
    assert got.code in (1, 2), got
    if got.code == 2:  # refused as a whole: one clear line
        assert one_line(got.err), got
        return
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [("Z", "4060.00")]
    assert sorted((e["payee"], e["field"].split("[")[0]) for e in data["errors"]) == [
        ("X", "events.lost_customers"), ("Y", "group")]


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1:A2)", "＝1+1", "=1+2"]


def test_xlsx_output_never_holds_a_formula(tmp_path: Path,
                                           run_cli: Callable[..., Result]) -> None:
    from openpyxl import load_workbook

    import incentives

    plan_text = EXAMPLE["telecom"][0].read_text(encoding="utf-8").replace(
        "label: 通信费提成 (traffic commission)", "label: \"=cmd|' /C calc'!A0\"")
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(plan_text, encoding="utf-8")
    raws = [{"payee": p, "period": "2026-05", "group": "=SUM(1,2)",
             "metrics": {"traffic_revenue": 10000}} for p in FORMULAS]
    raws.append({"payee": "=BAD()", "period": "2026-05", "group": "-x",
                 "metrics": {"traffic_revenue": "=1+1"}})
    records = write_jsonl(tmp_path / "records.jsonl", raws)
    target = tmp_path / "pay.xlsx"
    got = run_cli("run", plan_path, records, "--out", target)
    assert got.code == 1, got
    with zipfile.ZipFile(target) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert len(sheets) == 3
        for name in sheets:
            xml = z.read(name).decode("utf-8")
            assert "<f>" not in xml, name
            assert "<f " not in xml, name
    book = load_workbook(target)
    assert book.sheetnames == ["totals", "lines", "errors"]
    texts = [c.value for ws in book.worksheets for row in ws.iter_rows() for c in row
             if isinstance(c.value, str)]
    for text in [*FORMULAS, "=SUM(1,2)", "=cmd|' /C calc'!A0", "=BAD()"]:
        assert text in texts, text
    run = load_plan(plan_path).evaluate(read_records_file(records), errors="collect")
    assert incentives.read_results(str(target)) == result_tables(run)


@pytest.mark.parametrize("kind", ["postgresql"])
def test_credentials_never_printed(kind: str, pg: str, tmp_path: Path) -> None:
    """A URL with a password: nothing printed, nothing written to the results (JSON
    output, errors table) holds it, whether the run succeeds or has bad records."""
    import sqlalchemy as sa

    u = sa.engine.make_url(pg)
    role = f"acc_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg) as con:
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        con.execute(f"GRANT ALL ON SCHEMA public TO {role}")
    try:
        url = u.set(username=role, password=SECRET).render_as_string(hide_password=False)
        t = bad_records_table()
        with pg_connect(url) as con:
            con.execute("SELECT 1")
        write_postgres(url, t)
        plan_path = EXAMPLE["telecom"][0]
        source = with_query(url, table="records")
        for args in (["--format", "json"], ["--out", with_query(url, table="pay")],
                     ["--out", with_query(url, table="pay"), "--pay-with-errors"],
                     ["--out", str(tmp_path / "pay.xlsx")],
                     ["--format", "table"], ["--format", "csv"]):
            got = run_process("run", plan_path, "--records", source, *args)
            assert got.code == 1, got
            assert SECRET not in got.out + got.err, args
        got = run_process("stream", plan_path, "--records", source)
        assert SECRET not in got.out + got.err
        dump = db_dump(url)
        assert SECRET not in repr(dump)
        assert dump["pay_errors"]
        with zipfile.ZipFile(tmp_path / "pay.xlsx") as z:
            for name in z.namelist():
                assert SECRET.encode() not in z.read(name)
    finally:
        with pg_connect(pg) as con:
            con.execute(f"DROP OWNED BY {role}")
            con.execute(f"DROP ROLE {role}")


# ====================================================================== more: transactions


def _tx_tables() -> tuple[Table, Table, Table]:
    import datetime as dt

    folder = EXAMPLES / "transactions"
    roster = Table("roster", [("payee", "text"), ("period", "text"), ("group", "text")],
                   [{k: r[k] for k in ("payee", "period", "group")}
                    for r in read_jsonl(folder / "roster.jsonl")])
    columns: list[tuple[str, Any]] = [
        ("kind", "text"), ("id", "text"), ("date", "date"), ("amount", "number"),
        ("seller", "text"), ("sellers", "text"), ("customer", "text"), ("product", "text"),
        ("specialist", "text"), ("refers_to", "text")]
    rows = []
    for t in read_jsonl(folder / "transactions.jsonl"):
        row = {c: t.get(c) for c, _ in columns}
        row["date"] = dt.date.fromisoformat(t["date"])
        row["amount"] = Decimal(t["amount"])
        if "sellers" in t:
            row["sellers"] = ";".join(f"{s['payee']}:{s['share']}" for s in t["sellers"])
        rows.append(row)
    tx = Table("transactions", columns, rows)
    hierarchy_rows = []
    for line in (folder / "hierarchy.csv").read_text(encoding="utf-8").splitlines()[1:]:
        payee, manager, start, end = line.split(",")
        hierarchy_rows.append({"payee": payee, "manager": manager or None,
                               "from": dt.date.fromisoformat(start),
                               "to": dt.date.fromisoformat(end) if end else None})
    hierarchy = Table("hierarchy", [("payee", "text"), ("manager", "text"), ("from", "date"),
                                    ("to", "date")], hierarchy_rows)
    return roster, tx, hierarchy


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql", "parquet", "xlsx"])
def test_transactions_example_from_every_source(kind: str, tmp_path: Path,
                                                pg_lazy: Callable[[], str],
                                                run_cli: Callable[..., Result]) -> None:
    """The issue: records, transactions and hierarchies from any source."""
    folder = EXAMPLES / "transactions"
    plan_path = folder / "plan.yaml"
    want = run_cli("run", plan_path, folder / "roster.jsonl", "--transactions",
                   folder / "transactions.jsonl", "--hierarchy", folder / "hierarchy.csv",
                   "--format", "json")
    assert want.code == 0, want
    assert json.loads(want.out)["results"]
    roster, tx, hierarchy = _tx_tables()
    if kind == "parquet":
        specs = [str(write_parquet(tmp_path / f"{t.name}.parquet", t))
                 for t in (roster, tx, hierarchy)]
    elif kind == "xlsx":
        book = write_xlsx(tmp_path / "book.xlsx", [roster, tx, hierarchy])
        specs = [f"{book}#{t.name}" for t in (roster, tx, hierarchy)]
    else:
        url = base_url(kind, tmp_path, pg_lazy)
        for t in (roster, tx, hierarchy):
            write_db(url, t)
        specs = [with_query(url, table=t.name) for t in (roster, tx, hierarchy)]
    got = run_cli("run", plan_path, "--records", specs[0], "--transactions", specs[1],
                  "--hierarchy", specs[2], "--format", "json")
    assert got.code == 0, got
    if kind != "xlsx":
        assert got.out == want.out
    # Excel keeps 10000.00 as the number 10000, so the details show 10000; the pay is
    # the same to the cent
    assert pay_of(got.out) == pay_of(want.out)


def pay_of(json_text: str) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    return [(r["payee"], r["period"], r["total"], [(ln["id"], ln["amount"]) for ln in r["lines"]])
            for r in json.loads(json_text)["results"]]


# ====================================================================== more: stream


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
def test_stream_from_a_table_to_a_table(kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
                                        run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path, records_path = EXAMPLE["tobacco"]
    plan = load_plan(plan_path)
    flat = flatten(plan, read_jsonl(records_path))
    url = base_url(kind, tmp_path, pg_lazy)
    write_db(url, flat.records)
    want = run_cli("stream", plan_path, records_path)
    assert want.code == 0, want
    got = run_cli("stream", plan_path, "--records", with_query(url, table="records"))
    assert got.code == 0, got
    assert got.out == want.out
    target = with_query(url, table="pay")
    got = run_cli("stream", plan_path, "--records", with_query(url, table="records"),
                  "--out", target)
    assert got.code == 0, got
    back = incentives.read_results(target)
    run = plan.evaluate(read_records_file(records_path))
    assert back == result_tables(run)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.parametrize("sink", ["sqlite", "postgresql"])
def test_stream_killed_mid_write_leaves_the_previous_rows(
        sink: str, tmp_path: Path, pg_lazy: Callable[[], str], big_population: Path,
        run_cli: Callable[..., Result]) -> None:
    """``stream`` writes bucket by bucket, committing at the end: killed on the way,
    the previous rows are all there and none of the new."""
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    target = sink_target(sink, tmp_path, pg_lazy)
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    previous = incentives.read_results(target)
    proc = subprocess.Popen([sys.executable, "-m", "incentives", "stream", str(plan_path),
                             str(big_population), "--out", target],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        if sink == "sqlite":
            db = tmp_path / "out.db"
            _wait_until(lambda: Path(f"{db}-journal").exists() or Path(f"{db}-wal").exists(),
                        proc, "writing the database (its journal)")
        else:
            url = pg_lazy()
            _wait_until(lambda: bool(db_query(
                url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                     "current_database() AND backend_xid IS NOT NULL AND pid <> "
                     "pg_backend_pid()")[0][0]), proc, "writing")
        time.sleep(0.2)
        assert proc.poll() is None, "the stream finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    if sink == "postgresql":
        url = pg_lazy()
        end = time.monotonic() + 30
        while time.monotonic() < end and db_query(
                url, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                     "current_database() AND pid <> pg_backend_pid()")[0][0]:
            time.sleep(0.05)
    assert incentives.read_results(target) == previous


# ====================================================================== more: values


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql", "parquet", "xlsx"])
def test_numeric_employee_numbers_are_payee_ids(kind: str, tmp_path: Path,
                                                pg_lazy: Callable[[], str],
                                                run_cli: Callable[..., Result]) -> None:
    """HR keys people by number: an integer payee column reads as the id's text."""
    plan_path = EXAMPLE["telecom"][0]
    rows = [{"payee": 1001, "period": "2026-05", "traffic_revenue": Decimal(10000)},
            {"payee": 1002, "period": "2026-05", "traffic_revenue": Decimal(50000)}]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = str(tmp_path / "records.parquet")
        pq.write_table(pa.table({"payee": pa.array([1001, 1002], type=pa.int64()),
                                 "period": ["2026-05", "2026-05"],
                                 "traffic_revenue": pa.array([Decimal(10000), Decimal(50000)],
                                                             type=pa.decimal128(18, 0))}),
                       source)
    elif kind == "xlsx":
        t = Table("records", [("payee", "number"), ("period", "text"),
                              ("traffic_revenue", "number")],
                  [{**r, "payee": Decimal(r["payee"])} for r in rows])
        source = str(write_xlsx(tmp_path / "records.xlsx", [t]))
    else:
        url = base_url(kind, tmp_path, pg_lazy)
        if kind == "postgresql":
            with pg_connect(url) as con:
                con.execute("CREATE TABLE records (payee INTEGER, period TEXT, "
                            "traffic_revenue NUMERIC)")
                con.execute("INSERT INTO records VALUES (1001, '2026-05', 10000), "
                            "(1002, '2026-05', 50000)")
        else:
            t = Table("records", [("payee", "number"), ("period", "text"),
                                  ("traffic_revenue", "number")],
                      [{**r, "payee": Decimal(r["payee"])} for r in rows])
            write_db(url, t)
        source = with_query(url, table="records")
    got = run_cli("run", plan_path, "--records", source, "--format", "json")
    assert got.code == 0, got
    assert [(r["payee"], r["total"]) for r in json.loads(got.out)["results"]] == [
        ("1001", "700.00"), ("1002", "1400.00")]


def test_postgres_nan_and_infinity_are_row_errors(pg: str,
                                                  run_cli: Callable[..., Result]) -> None:
    plan_path = EXAMPLE["telecom"][0]
    with pg_connect(pg) as con:
        con.execute("CREATE TABLE records (payee TEXT, period TEXT, traffic_revenue NUMERIC)")
        con.execute("INSERT INTO records VALUES ('A', '2026-05', 'NaN'), "
                    "('B', '2026-05', 'Infinity'), ('C', '2026-05', 10000), "
                    "('D', '2026-05', '-Infinity')")
    got = run_cli("run", plan_path, "--records", with_query(pg, table="records"),
                  "--format", "json")
    assert got.code == 1, got
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [("C", "700.00")]
    assert [(e["payee"], e["field"]) for e in data["errors"]] == [
        ("A", "metrics.traffic_revenue"), ("B", "metrics.traffic_revenue"),
        ("D", "metrics.traffic_revenue")]


def test_empty_table_pays_nobody(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    plan_path = EXAMPLE["telecom"][0]
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    want = run_cli("run", plan_path, empty, "--format", "json")
    db = tmp_path / "hr.db"
    write_sqlite(db, Table("records", [("payee", "text"), ("period", "text"),
                                       ("traffic_revenue", "number")], []))
    got = run_cli("run", plan_path, "--records", sqlite_url(db, table="records"),
                  "--format", "json")
    assert (got.code, got.out) == (want.code, want.out)


@pytest.mark.parametrize("sink", ["xlsx", "parquet", "sqlite", "duckdb", "postgresql"])
def test_large_and_negative_amounts_round_trip_exactly(
        sink: str, tmp_path: Path, pg_lazy: Callable[[], str]) -> None:
    """Amounts with more digits than a double holds (17 and more significant digits),
    negative amounts and cents: every sink gives them back exactly."""
    import incentives

    plan = load_plan("name: big\ninputs: {metrics: [sales]}\nrounding: {quantum: 0.01}\n"
                     "policies: [{type: formula, id: pay, label: Pay, amount: sales}]\n")
    amounts = ["12345678901234567.89", "-98765432109876543.21", "0.10", "-0.01",
               "999999999999999999.99", "1234567.05", "0.30"]
    run = plan.evaluate([{"payee": f"p{i}", "period": "2026-05", "metrics": {"sales": a}}
                         for i, a in enumerate(amounts)])
    assert [str(r.total) for r in run.results] == amounts
    target = sink_target(sink, tmp_path, pg_lazy)
    run.write(target)
    if sink in ("sqlite", "duckdb", "postgresql"):  # what the database holds
        url = target.split("?")[0] if sink != "postgresql" else pg_lazy()
        stored = db_query(url, "SELECT payee, total FROM pay ORDER BY payee")
        assert [str(total) for _, total in stored] == amounts
        stored = db_query(url, "SELECT payee, amount FROM pay_lines ORDER BY payee")
        assert [str(amount) for _, amount in stored] == amounts
    back = incentives.read_results(target)
    assert back == result_tables(run)
    assert [str(row[5]) for row in back.totals] == amounts


# ====================================================================== more: failures


def test_python_api_errors_are_usage_errors(tmp_path: Path) -> None:
    from incentives.errors import UsageError

    plan = load_plan(EXAMPLE["telecom"][0])
    db = tmp_path / "hr.db"
    write_sqlite(db, Table("records", [("payee", "text")], []))
    for spec in (sqlite_url(db, table="nope"), sqlite_url(db, table="x; DROP TABLE records"),
                 f"postgresql://hr:{SECRET}@127.0.0.1:1/hr?table=records",
                 str(tmp_path / "missing.parquet"), str(tmp_path / "missing.xlsx")):
        with pytest.raises(UsageError) as caught:
            plan.evaluate(spec)
        assert SECRET not in str(caught.value)
        assert one_line(str(caught.value)), str(caught.value)
    assert db_tables(f"sqlite:///{db}") == ["records"]


def test_sqlite_sink_locked_by_another_writer(tmp_path: Path) -> None:
    """Another program holds the database's write lock: a clear error (exit 2), and
    when it lets go the database is as it left it."""
    plan_path, records_path = EXAMPLE["telecom"]
    db = tmp_path / "out.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("CREATE TABLE other (x INTEGER)")
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO other VALUES (1)")
    try:
        started = time.monotonic()
        got = run_process("run", plan_path, records_path, "--out", sqlite_url(db, table="pay"),
                          timeout=120)
        assert time.monotonic() - started < 100
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert got.code == 2, got
    assert one_line(got.err), got
    assert "Traceback" not in got.err
    assert db_tables(f"sqlite:///{db}") == ["other"]


def test_duckdb_file_held_by_another_process(tmp_path: Path) -> None:
    """An analyst has the DuckDB file open in another program (which locks it): reading
    or writing it is one clear error, exit 2."""
    plan_path, records_path = EXAMPLE["telecom"]
    db = tmp_path / "hr.duckdb"
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    write_duckdb(db, flat.records)
    import duckdb

    holder = duckdb.connect(str(db))
    try:
        for args in (["--records", duckdb_url(db, table="records")],
                     [str(records_path), "--out", duckdb_url(db, table="pay")]):
            got = run_process("run", plan_path, *args)
            assert got.code == 2, got
            assert one_line(got.err), got
            assert "Traceback" not in got.err
    finally:
        holder.close()


def test_existing_table_with_other_columns_is_refused(tmp_path: Path,
                                                      run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    db = tmp_path / "out.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE pay (employee TEXT, amount TEXT)")
    con.execute("INSERT INTO pay VALUES ('keep', '1.00')")
    con.commit()
    con.close()
    got = run_cli("run", plan_path, records_path, "--out", sqlite_url(db, table="pay"))
    assert got.code == 2, got
    assert one_line(got.err), got
    assert "employee" in got.err
    assert db_dump(f"sqlite:///{db}") == {"pay": [("keep", "1.00")]}


def test_postgres_sink_in_a_schema(pg: str, run_cli: Callable[..., Result]) -> None:
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    with pg_connect(pg) as con:
        con.execute("CREATE SCHEMA payroll")
    target = with_query(pg, table="payroll.pay")
    got = run_cli("run", plan_path, records_path, "--out", target)
    assert got.code == 0, got
    assert db_tables(pg) == []
    assert db_query(pg, "SELECT table_name FROM information_schema.tables WHERE "
                        "table_schema = 'payroll' ORDER BY 1") == [
        ("pay",), ("pay_errors",), ("pay_lines",)]
    run = load_plan(plan_path).evaluate(read_records_file(records_path))
    assert incentives.read_results(target) == result_tables(run)


def test_password_from_the_environment(pg: str, pg_server: str) -> None:
    """PGPASSWORD, not the URL: the run connects (over TCP, where the password is asked)."""
    import sqlalchemy as sa

    u = sa.engine.make_url(pg)
    role = f"acc_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg) as con:
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        con.execute("CREATE TABLE records (payee TEXT, period TEXT, traffic_revenue NUMERIC)")
        con.execute("INSERT INTO records VALUES ('A', '2026-05', 10000)")
        con.execute(f"GRANT SELECT ON records TO {role}")
    try:
        url = u._replace(username=role, password=None).render_as_string(hide_password=False)
        assert SECRET not in url
        assert "@" not in url.split("//", 1)[1].split("@")[0] or ":" not in url.split("//", 1)[1].split("@")[0]
        env = {**os.environ, "PGPASSWORD": SECRET}
        proc = subprocess.run([sys.executable, "-m", "incentives", "run",
                               str(EXAMPLE["telecom"][0]), "--records",
                               with_query(url, table="records"), "--format", "json"],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        assert [(r["payee"], r["total"]) for r in json.loads(proc.stdout)["results"]] == [
            ("A", "700.00")]
        assert SECRET not in proc.stdout + proc.stderr
    finally:
        with pg_connect(pg) as con:
            con.execute("DROP TABLE records")
            con.execute(f"DROP ROLE {role}")


# ====================================================================== more: workbooks in


def test_xlsx_cells_as_excel_stores_them(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    """Numbers are doubles in Excel: 0.1 reads 0.1, a computed 0.1+0.2 reads 0.3, a
    whole 3.0 reads 3; an error cell (#DIV/0!) is that row's error naming the sheet
    and cell; the other rows are paid."""
    from openpyxl import Workbook

    plan = load_plan("name: xl\ninputs: {metrics: {sales: {}, units: {integer: true, "
                     "default: 0}}}\nrounding: {quantum: 0.0001}\npolicies: [{type: formula, "
                     "id: pay, label: Pay, amount: sales + units}]\n")
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text("name: xl\ninputs: {metrics: {sales: {}, units: {integer: true, "
                         "default: 0}}}\nrounding: {quantum: 0.0001}\npolicies: [{type: "
                         "formula, id: pay, label: Pay, amount: sales + units}]\n",
                         encoding="utf-8")
    assert plan.name == "xl"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "May"
    sheet.append(["payee", "period", "sales", "units"])
    sheet.append(["a", "2026-05", 0.1, 3.0])
    sheet.append(["b", "2026-05", 0.1 + 0.2, 1])
    sheet.append(["c", "2026-05", 1234.5, None])
    sheet.append(["d", "2026-05", "#DIV/0!", 2])
    book.save(tmp_path / "hr.xlsx")
    got = run_cli("run", plan_path, "--records", f"{tmp_path / 'hr.xlsx'}#May",
                  "--format", "json")
    assert got.code == 1, got
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [
        ("a", "3.1000"), ("b", "1.3000"), ("c", "1234.5000")]
    # the spec: "field= the column" (a NULL metric's error says metrics.sales)
    assert [(e["payee"], e["field"]) for e in data["errors"]] == [("d", "sales")]
    assert "C5" in data["errors"][0]["message"]
    assert "#DIV/0!" in data["errors"][0]["message"]


@pytest.mark.parametrize("problem", ["merged", "blank", "duplicate", "no-sheet"])
def test_xlsx_header_problems_are_clear(problem: str, tmp_path: Path,
                                        run_cli: Callable[..., Result]) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "records"
    header = ["payee", "period", "traffic_revenue", "new_fax"]
    if problem == "blank":
        header[3] = None  # type: ignore[call-overload]
    if problem == "duplicate":
        header[3] = "traffic_revenue"
    sheet.append(header)
    sheet.append(["X", "2026-05", 50000, 3])
    if problem == "merged":
        sheet.merge_cells("C1:D1")
    book.save(tmp_path / "hr.xlsx")
    spec = f"{tmp_path / 'hr.xlsx'}#{'Sheet9' if problem == 'no-sheet' else 'records'}"
    got = run_cli("run", EXAMPLE["telecom"][0], "--records", spec)
    assert got.code == 2, got
    assert one_line(got.err), got
    fragment = {"merged": "C1:D1", "blank": "D", "duplicate": "traffic_revenue",
                "no-sheet": "records"}[problem]
    assert fragment in got.err


# ====================================================================== more: sinks' edges


@pytest.mark.parametrize("sink", ["sqlite", "duckdb", "postgresql"])
def test_first_run_with_errors_writes_only_errors(sink: str, tmp_path: Path,
                                                  pg_lazy: Callable[[], str],
                                                  run_cli: Callable[..., Result]) -> None:
    """A fresh database, a run with a bad record: the errors table holds it, the pay
    tables exist and are empty; ``stream`` does the same."""
    plan_path = EXAMPLE["telecom"][0]
    bad = tmp_path / "bad.db"
    write_sqlite(bad, bad_records_table())
    for command, name in (("run", "pay"), ("stream", "spay")):
        target = with_query(base_url(sink, tmp_path, pg_lazy, "out"), table=name)
        url = target.split("?")[0] if sink != "postgresql" else pg_lazy()
        got = run_cli(command, plan_path, "--records", sqlite_url(bad, table="records"),
                      "--out", target)
        assert got.code == 1, (command, got)
        assert db_query(url, f'SELECT payee, field FROM "{name}_errors"') == [
            ("Y", "metrics.traffic_revenue")]
        assert db_query(url, f'SELECT count(*) FROM "{name}"') == [(0,)]
        assert db_query(url, f'SELECT count(*) FROM "{name}_lines"') == [(0,)]


@pytest.mark.parametrize("sink", ["sqlite", "duckdb", "postgresql"])
def test_errors_of_other_periods_and_plans_are_kept(sink: str, tmp_path: Path,
                                                    pg_lazy: Callable[[], str],
                                                    run_cli: Callable[..., Result]) -> None:
    plan_path = EXAMPLE["telecom"][0]
    tobacco = EXAMPLE["tobacco"][0]
    target = sink_target(sink, tmp_path, pg_lazy)
    url = target.split("?")[0] if sink != "postgresql" else pg_lazy()
    june = write_jsonl(tmp_path / "june.jsonl", [
        {"payee": "J", "period": "2026-06", "metrics": {"traffic_revenue": "x"}},
        {"payee": "K", "period": "2026-06", "metrics": {"traffic_revenue": 100}}])
    assert run_cli("run", plan_path, june, "--out", target).code == 1
    bad_tobacco = write_jsonl(tmp_path / "tobacco.jsonl", [
        {"payee": "T", "period": "2026-05", "attributes": {"role": "boss"}}])
    assert run_cli("run", tobacco, bad_tobacco, "--out", target).code == 1
    may = write_jsonl(tmp_path / "may.jsonl", [
        {"payee": "M", "period": "2026-05", "metrics": {"traffic_revenue": None}}])
    assert run_cli("run", plan_path, may, "--out", target).code == 1
    assert sorted(db_query(url, "SELECT plan, period, payee FROM pay_errors")) == [
        ("telecom-key-account", "2026-05", "M"), ("telecom-key-account", "2026-06", "J"),
        ("tobacco-customer-manager", "2026-05", "T")]


@pytest.mark.parametrize("kind", ["sqlite", "duckdb", "postgresql"])
@pytest.mark.parametrize("name", ["select", "Pay", "group", "order_"])
def test_reserved_and_mixed_case_table_names(kind: str, name: str, tmp_path: Path,
                                             pg_lazy: Callable[[], str],
                                             run_cli: Callable[..., Result]) -> None:
    """Names the pattern allows are quoted, never interpolated: SQL keywords and mixed
    case work as sources and sinks."""
    import incentives

    plan_path, records_path = EXAMPLE["tobacco"]
    url = base_url(kind, tmp_path, pg_lazy)
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    write_db(url, flat.records, name=name)
    target = with_query(url, table=f"{name}_out")
    got = run_cli("run", plan_path, "--records", with_query(url, table=name), "--out", target)
    assert got.code == 0, got
    run = load_plan(plan_path).evaluate(read_records_file(records_path))
    assert incentives.read_results(target) == result_tables(run)


def test_postgres_long_table_names(pg: str, tmp_path: Path,
                                   run_cli: Callable[..., Result]) -> None:
    """PostgreSQL cuts identifiers at 63 bytes: a 62-character name would make NAME_lines
    and NAME_errors the same table. Refused clearly (exit 2), or written and read
    back exactly: never lines and errors mixed."""
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    raws = read_jsonl(records_path)
    raws.append({"payee": "Q", "period": "2026-05", "metrics": {"traffic_revenue": "bad"}})
    records = write_jsonl(tmp_path / "records.jsonl", raws)
    name = "p" * 62
    target = with_query(pg, table=name)
    got = run_cli("run", plan_path, records, "--out", target, "--pay-with-errors")
    if got.code == 2:
        assert one_line(got.err), got
        assert db_tables(pg) == []
        return
    assert got.code == 1, got
    run = load_plan(plan_path).evaluate(read_records_file(records), errors="collect")
    assert incentives.read_results(target) == result_tables(run)
    assert len(db_tables(pg)) == 3


def test_format_with_a_sink_of_another_kind_is_refused(tmp_path: Path,
                                                       run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    for target in (tmp_path / "pay.xlsx", tmp_path / "pay.parquet",
                   sqlite_url(tmp_path / "o.db", table="pay")):
        got = run_cli("run", plan_path, records_path, "--out", target, "--format", "json")
        assert got.code == 2, got
        assert one_line(got.err), got
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ====================================================================== more: odd inputs


def test_parquet_dictionary_strings_and_timestamps(tmp_path: Path,
                                                   run_cli: Callable[..., Result]) -> None:
    """Parquet as pandas writes it: dictionary-encoded strings, dates as midnight
    timestamps."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    plan_path, records_path = EXAMPLE["telecom"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    records = flat.records
    pq.write_table(pa.table({
        "payee": pa.array([r["payee"] for r in records.rows]).dictionary_encode(),
        "period": pa.array([r["period"] for r in records.rows]).dictionary_encode(),
        "group": pa.array([r["group"] for r in records.rows]).dictionary_encode(),
        **{c: pa.array([r[c] for r in records.rows], type=pa.decimal128(18, 0))
           for c in ("traffic_revenue", "new_400", "new_fax", "new_ipvpn")}}),
        tmp_path / "records.parquet")
    lost = flat.events["lost_customers"]

    def stamp(d: dt.date | None) -> dt.datetime | None:
        return None if d is None else dt.datetime(d.year, d.month, d.day)

    pq.write_table(pa.table({
        "payee": [r["payee"] for r in lost.rows], "period": [r["period"] for r in lost.rows],
        "id": [r["id"] for r in lost.rows],
        "monthly_value": pa.array([r["monthly_value"] for r in lost.rows],
                                  type=pa.decimal128(10, 2)),
        "reason": pa.array([r["reason"] for r in lost.rows]).dictionary_encode(),
        "acquired": pa.array([stamp(r["acquired"]) for r in lost.rows],
                             type=pa.timestamp("ns")),
        "lost": pa.array([stamp(r["lost"]) for r in lost.rows], type=pa.timestamp("us"))}),
        tmp_path / "lost.parquet")
    got = run_cli("run", plan_path, "--records", tmp_path / "records.parquet", "--events",
                  f"lost_customers={tmp_path / 'lost.parquet'}", "--format", "json")
    assert got.code == 0, got
    assert pay_of(got.out) == pay_of(baseline("telecom")[0])


@pytest.mark.parametrize("problem", ["missing", "too-large", "not-utf8", "empty"])
def test_bad_query_files(problem: str, tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    db = tmp_path / "hr.db"
    write_sqlite(db, Table("records", [("payee", "text"), ("period", "text")], []))
    query = tmp_path / "q.sql"
    if problem == "too-large":
        query.write_text("SELECT * FROM records -- " + "x" * (2 << 20) + "\n", encoding="utf-8")
    elif problem == "not-utf8":
        query.write_bytes("SELECT * FROM records WHERE payee = 'Müller'".encode("latin-1"))
    elif problem == "empty":
        query.write_text("-- nothing\n", encoding="utf-8")
    got = run_cli("run", EXAMPLE["telecom"][0], "--records", sqlite_url(db, query=str(query)))
    assert got.code == 2, got
    assert one_line(got.err), got
    assert "q.sql" in got.err
    assert len(got.err) < 2000


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_control_characters_in_ids_are_row_errors(kind: str, tmp_path: Path,
                                                  run_cli: Callable[..., Result]) -> None:
    plan_path = EXAMPLE["telecom"][0]
    t = Table("records", [("payee", "text"), ("period", "text"), ("traffic_revenue", "number")],
              [{"payee": "a\x00b", "period": "2026-05", "traffic_revenue": Decimal(1)},
               {"payee": "c\x1b[31m", "period": "2026-05", "traffic_revenue": Decimal(1)},
               {"payee": "ok", "period": "2026-05", "traffic_revenue": Decimal(10000)}])
    url = base_url(kind, tmp_path, lambda: "")
    write_db(url, t)
    got = run_process("run", plan_path, "--records", with_query(url, table="records"),
                      "--format", "json")
    assert got.code == 1, got
    assert "\x00" not in got.out + got.err
    assert "\x1b" not in got.out + got.err
    data = json.loads(got.out)
    assert [(r["payee"], r["total"]) for r in data["results"]] == [("ok", "700.00")]
    assert len(data["errors"]) == 2


# ====================================================================== more: two runs at once


def test_two_runs_of_a_period_at_once_pay_once(pg: str, tmp_path: Path,
                                               run_cli: Callable[..., Result]) -> None:
    """Two runs of the same period writing to PostgreSQL at the same time (two cron
    jobs, a re-run started before the first ended): afterwards the period has one set
    of rows, never two. Made deterministic: the test holds the period's rows locked
    until both runs wait on them, then lets go."""
    plan_path = EXAMPLE["telecom"][0]
    population = write_jsonl(tmp_path / "pop.jsonl", telecom_population(2000))
    target = with_query(pg, table="pay")
    assert run_cli("run", plan_path, population, "--out", target).code == 0
    assert db_query(pg, "SELECT count(*) FROM pay") == [(2000,)]

    holder = pg_connect(pg)
    holder.autocommit = False
    procs: list[subprocess.Popen[bytes]] = []
    try:
        holder.execute("DELETE FROM pay WHERE plan = 'telecom-key-account' AND period = "
                       "'2026-05'")
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "incentives", "run", str(plan_path), str(population),
                 "--out", target], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                cwd=ROOT))
        end = time.monotonic() + 120
        while time.monotonic() < end:
            waiting = db_query(pg, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND wait_event_type = 'Lock'")[0][0]
            if waiting >= 2 or any(p.poll() is not None for p in procs):
                break
            time.sleep(0.02)
        holder.rollback()
    finally:
        holder.close()
    codes = []
    for p in procs:
        p.wait(timeout=120)
        assert p.stderr is not None
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        codes.append((p.returncode, err))
    for code, err in codes:
        assert code in (0, 2), err
        if code == 2:
            assert one_line(err), err
    assert any(code == 0 for code, _ in codes), codes
    assert db_query(pg, "SELECT count(*), count(DISTINCT payee) FROM pay") == [(2000, 2000)]
    assert db_query(pg, "SELECT count(*) FROM pay_lines") == [(8000,)]


# ====================================================================== more: permissions, paths


def test_permission_denied_is_one_clear_line(pg: str, tmp_path: Path) -> None:
    """A role that may read nothing and create nothing: reading a table and writing the
    results are each one line, exit 2; nothing is written."""
    import sqlalchemy as sa

    plan_path, records_path = EXAMPLE["telecom"]
    role = f"acc_{uuid.uuid4().hex[:8]}"
    with pg_connect(pg) as con:
        con.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{SECRET}'")
        con.execute("CREATE TABLE records (payee TEXT, period TEXT, traffic_revenue NUMERIC)")
        con.execute("INSERT INTO records VALUES ('A', '2026-05', 10000)")
        con.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        url = sa.engine.make_url(pg)._replace(username=role, password=SECRET).render_as_string(
            hide_password=False)
        for args in (["--records", with_query(url, table="records")],
                     [str(records_path), "--out", with_query(url, table="pay")]):
            got = run_process("run", plan_path, *args)
            assert got.code == 2, got
            assert one_line(got.err), got
            assert "Traceback" not in got.err
            assert "permission" in got.err.lower()
            assert SECRET not in got.out + got.err
        assert db_tables(pg) == ["records"]
    finally:
        with pg_connect(pg) as con:
            con.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_sink_in_a_missing_folder(kind: str, tmp_path: Path,
                                  run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    target = f"{kind}:///{tmp_path / 'nowhere' / 'pay.db'}?table=pay"
    got = run_cli("run", plan_path, records_path, "--out", target)
    assert got.code == 2, got
    assert one_line(got.err), got
    assert not (tmp_path / "nowhere").exists()


def test_workbook_names_with_a_hash(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    """``May#2026.xlsx`` is a file name (no ``#`` after the suffix); ``book.xlsx#Sheet``
    names a sheet, spaces and all."""
    plan_path, records_path = EXAMPLE["tobacco"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    book = write_xlsx(tmp_path / "May#2026.xlsx", [flat.records])
    got = run_cli("run", plan_path, "--records", book, "--format", "json")
    assert got.code == 0, got
    assert got.out == baseline("tobacco")[0]
    flat.records.name = "May records #2"
    book = write_xlsx(tmp_path / "hr.xlsx", [Table("Notes", [("note", "text")], [
        {"note": "read the other sheet"}]), flat.records])
    got = run_cli("run", plan_path, "--records", f"{book}#May records #2", "--format", "json")
    assert got.code == 0, got
    assert got.out == baseline("tobacco")[0]


@pytest.mark.parametrize("sink", ["sqlite", "postgresql", "xlsx", "parquet"])
def test_transaction_errors_reach_the_errors_table(sink: str, tmp_path: Path,
                                                   pg_lazy: Callable[[], str],
                                                   run_cli: Callable[..., Result]) -> None:
    import incentives

    folder = EXAMPLES / "transactions"
    plan_path = folder / "plan.yaml"
    txs = read_jsonl(folder / "transactions.jsonl")
    txs.append({"kind": "invoices", "id": "INV-BAD", "date": "2026-05-11", "amount": "x'); --",
                "seller": "ana", "customer": "c", "product": "sdwan"})
    tx_file = write_jsonl(tmp_path / "tx.jsonl", txs)
    target = sink_target(sink, tmp_path, pg_lazy)
    extra = ["--pay-with-errors"] if sink in ("sqlite", "postgresql") else []
    got = run_cli("run", plan_path, folder / "roster.jsonl", "--transactions", tx_file,
                  "--hierarchy", folder / "hierarchy.csv", "--out", target, *extra)
    assert got.code == 1, got
    back = incentives.read_results(target)
    assert [e[6] for e in back.errors] == ["INV-BAD"]
    run = load_plan(plan_path).evaluate(
        read_records_file(folder / "roster.jsonl"), transactions=read_records_file(tx_file),
        hierarchy=read_records_file(folder / "hierarchy.csv"), errors="collect")
    assert back == result_tables(run)


@pytest.mark.parametrize("sink", ["sqlite", "postgresql"])
def test_stream_with_errors_keeps_the_previous_pay(sink: str, tmp_path: Path,
                                                   pg_lazy: Callable[[], str],
                                                   run_cli: Callable[..., Result]) -> None:
    plan_path, records_path = EXAMPLE["telecom"]
    target = sink_target(sink, tmp_path, pg_lazy)
    url = target.split("?")[0] if sink != "postgresql" else pg_lazy()
    assert run_cli("stream", plan_path, records_path, "--out", target).code == 0
    before = pay_rows(url)
    assert len(before) == 3
    # many good records first (written bucket by bucket), the bad one last
    raws = telecom_population(3000)
    raws.append({"payee": "BAD", "period": "2026-05", "metrics": {"traffic_revenue": None}})
    population = write_jsonl(tmp_path / "pop.jsonl", raws)
    got = run_cli("stream", plan_path, population, "--out", target)
    assert got.code == 1, got
    assert pay_rows(url) == before
    assert db_query(url, "SELECT count(*) FROM pay_lines") == [(12,)]
    assert db_query(url, "SELECT payee, field FROM pay_errors") == [
        ("BAD", "metrics.traffic_revenue")]


@pytest.mark.parametrize("sink", ["xlsx", "parquet", "duckdb"])
def test_long_details_are_whole_or_marked(sink: str, tmp_path: Path,
                                          pg_lazy: Callable[[], str],
                                          run_cli: Callable[..., Result]) -> None:
    """2,000 lost customers: the churn line's details run past Excel's 32,767 characters
    a cell. Parquet and databases keep them whole; the workbook marks them (never a
    broken cell); every amount is exact everywhere."""
    import datetime as dt

    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    flat = flatten(load_plan(plan_path), read_jsonl(records_path))
    lost = flat.events["lost_customers"]
    lost.rows = [{"payee": "X", "period": "2026-05", "id": f"c-{i:05d}",
                  "monthly_value": Decimal(10 + i % 7), "reason": "competitor",
                  "acquired": None, "lost": dt.date(2026, 5, 1 + i % 28)} for i in range(2000)]
    db = tmp_path / "hr.db"
    write_sqlite(db, flat.records)
    write_sqlite(db, lost)
    args = ["--records", sqlite_url(db, table="records"), "--events",
            f"lost_customers={sqlite_url(db, table='lost_customers')}"]
    want = run_cli("run", plan_path, *args, "--format", "json")
    assert want.code == 0, want
    run = load_plan(plan_path).evaluate(sqlite_url(db, table="records"),
                                        events={"lost_customers":
                                                sqlite_url(db, table="lost_customers")})
    tables = result_tables(run)
    longest = max(len(row[10]) for row in tables.lines)
    assert longest > 32767
    target = sink_target(sink, tmp_path, pg_lazy)
    got = run_cli("run", plan_path, *args, "--out", target)
    assert got.code == 0, got
    back = incentives.read_results(target)
    assert back.totals == tables.totals
    assert [row[:10] for row in back.lines] == [row[:10] for row in tables.lines]
    assert_amounts_match_json(back, want.out)
    if sink == "xlsx":
        for got_row, want_row in zip(back.lines, tables.lines, strict=True):
            if len(want_row[10]) <= 32767:
                assert got_row[10] == want_row[10]
            else:
                assert len(got_row[10]) <= 32767
                assert "truncated" in got_row[10]
    else:
        assert back == tables


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_uuid_ids_and_other_sql_types(kind: str, tmp_path: Path, pg_lazy: Callable[[], str],
                                      run_cli: Callable[..., Result]) -> None:
    """Ids as HR databases key people (UUID), a padded CHAR period, small and huge
    integer types: read as their text and numbers."""
    plan_path = EXAMPLE["telecom"][0]
    ident = "6f1c2a9e-3a57-4c55-9a0b-1b2c3d4e5f60"
    url = base_url(kind, tmp_path, pg_lazy)
    if kind == "postgresql":
        with pg_connect(url) as con:
            con.execute('CREATE TABLE records (payee UUID, period CHAR(10), "group" VARCHAR(20), '
                        "traffic_revenue NUMERIC(12,2), new_fax SMALLINT, new_ipvpn BIGINT)")
            con.execute(f"INSERT INTO records VALUES ('{ident}', '2026-05', 'g', 10000.00, 2, 1)")
    else:
        import duckdb

        dcon = duckdb.connect(url.split("///", 1)[1])
        dcon.execute('CREATE TABLE records (payee UUID, period CHAR(10), "group" VARCHAR, '
                     "traffic_revenue DECIMAL(12,2), new_fax TINYINT, new_ipvpn HUGEINT, "
                     "new_400 UBIGINT)")
        dcon.execute(f"INSERT INTO records VALUES ('{ident}', '2026-05', 'g', 10000.00, 2, 1, 0)")
        dcon.close()
    got = run_cli("run", plan_path, "--records", with_query(url, table="records"),
                  "--format", "json")
    assert got.code == 0, got
    # 200 commission + 2 * 60 + 260 = 580; the floor tops up to 700
    assert [(r["payee"], r["period"], r["total"]) for r in json.loads(got.out)["results"]] == [
        (ident, "2026-05", "700.00")]


def test_parquet_transactions_with_nested_sellers(tmp_path: Path,
                                                  run_cli: Callable[..., Result]) -> None:
    """Parquet's own way to write split credit: ``sellers`` as a list of {payee, share}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = EXAMPLES / "transactions"
    plan_path = folder / "plan.yaml"
    want = run_cli("run", plan_path, folder / "roster.jsonl", "--transactions",
                   folder / "transactions.jsonl", "--hierarchy", folder / "hierarchy.csv",
                   "--format", "json")
    assert want.code == 0, want
    _, tx, _ = _tx_tables()
    seller_type = pa.list_(pa.struct([("payee", pa.string()), ("share", pa.decimal128(5, 2))]))
    sellers = []
    for row in tx.rows:
        if row["sellers"]:
            sellers.append([{"payee": p.split(":")[0], "share": Decimal(p.split(":")[1])}
                            for p in row["sellers"].split(";")])
        else:
            sellers.append(None)
    arrays = {c: [row[c] for row in tx.rows] for c in tx.names() if c != "sellers"}
    table = pa.table({
        **{c: pa.array(v, type=pa.string()) for c, v in arrays.items()
           if c not in ("date", "amount")},
        "date": pa.array(arrays["date"], type=pa.date32()),
        "amount": pa.array(arrays["amount"], type=pa.decimal128(18, 2)),
        "sellers": pa.array(sellers, type=seller_type)})
    pq.write_table(table, tmp_path / "tx.parquet")
    got = run_cli("run", plan_path, folder / "roster.jsonl", "--transactions",
                  tmp_path / "tx.parquet", "--hierarchy", folder / "hierarchy.csv",
                  "--format", "json")
    assert got.code == 0, got
    assert pay_of(got.out) == pay_of(want.out)


def test_python_api_paths_rows_and_to_sql(tmp_path: Path) -> None:
    """``plan.evaluate`` takes paths (os.PathLike) too; ``read_rows`` gives a source's
    rows; ``run.to_sql`` holds the pay back when the run had errors, unless told."""
    import incentives

    plan_path, records_path = EXAMPLE["tobacco"]
    plan = load_plan(plan_path)
    flat = flatten(plan, read_jsonl(records_path))
    want = baseline("tobacco")[1]
    parquet = write_parquet(tmp_path / "records.parquet", flat.records)
    book = write_xlsx(tmp_path / "records.xlsx", [flat.records])
    assert plan.evaluate(parquet).to_json() == want
    assert plan.evaluate(book).to_json() == want
    db = tmp_path / "hr.db"
    write_sqlite(db, flat.records)
    rows = list(incentives.read_rows(sqlite_url(db, table="records")))
    assert len(rows) == 11
    assert rows[1] == {"payee": "GL-01", "period": "2026-05", "group": "gulou",
                       "role": "manager", "sales": 1150, "target": 1000, "sales_value": 460000,
                       "satisfaction": 97, "complaints": 0, "innovation": 85, "visits": 42}

    telecom = load_plan(EXAMPLE["telecom"][0])
    good = telecom.evaluate(read_records_file(EXAMPLE["telecom"][1]))
    out = sqlite_url(tmp_path / "out.db", table="pay")
    good.to_sql(out)
    bad_raws = [{"payee": "X", "period": "2026-05", "metrics": {"traffic_revenue": 1}},
                {"payee": "Q", "period": "2026-05", "metrics": {}}]
    bad = telecom.evaluate(bad_raws, errors="collect")
    assert len(bad.errors) == 1
    bad.to_sql(out)
    url = f"sqlite:///{tmp_path / 'out.db'}"
    assert [r[2] for r in pay_rows(url)] == ["X", "Y", "Z"]
    assert [r[3] for r in pay_rows(url)] == ["948.00", "700.00", "4060.00"]
    bad.to_sql(out, pay_with_errors=True)
    assert [(r[2], r[3]) for r in pay_rows(url)] == [("X", "700.00")]
    assert db_query(url, "SELECT payee FROM pay_errors") == [("Q",)]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("sink", ["xlsx", "parquet", "sqlite"])
def test_interrupted_write_leaves_nothing_behind(
        sink: str, sig: signal.Signals, tmp_path: Path, mid_population: Path,
        run_cli: Callable[..., Result]) -> None:
    """Ctrl-C (or a TERM) while the results are written: the previous output is as it
    was and no temporary file is left."""
    import incentives

    plan_path, records_path = EXAMPLE["telecom"]
    target = sink_target(sink, tmp_path, lambda: "")
    assert run_cli("run", plan_path, records_path, "--out", target).code == 0
    previous = incentives.read_results(target)
    files_before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    proc = subprocess.Popen([sys.executable, "-m", "incentives", "run", str(plan_path),
                             str(mid_population), "--out", target],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        if sink == "sqlite":
            db = tmp_path / "out.db"
            _wait_until(lambda: Path(f"{db}-journal").exists() or Path(f"{db}-wal").exists(),
                        proc, "writing the database (its journal)")
        else:
            _wait_until(lambda: any("incentives-tmp" in p.name and p.stat().st_size > 0
                                    for p in tmp_path.iterdir()), proc,
                        "writing its temporary file")
        assert proc.poll() is None
        os.kill(proc.pid, sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert incentives.read_results(target) == previous
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(files_before), names
    for name, data in files_before.items():
        if sink != "sqlite":
            assert (tmp_path / name).read_bytes() == data, name
