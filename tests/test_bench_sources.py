"""The sources benchmark loads what its JSONL file holds, and its quick mode agrees.

``benchmarks/bench_sources.py`` streams the same telecom records from a JSONL
file, a DuckDB table (and a PostgreSQL table when ``INCENTIVES_TEST_POSTGRES``
names a server) and requires the same CSV bytes from each. Here: the tables it
loads hold exactly the records and lost customers of the file (amounts as exact
decimals, dates as dates), the quick mode runs and agrees, and a difference in
an output makes it fail.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

CI = os.environ.get("CI", "").lower() == "true"
if not CI:  # in CI the extras are installed: a missing one fails, never skips
    pytest.importorskip("duckdb")
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
import duckdb  # noqa: E402

Row = tuple[Any, ...]


def from_jsonl(path: Path) -> tuple[list[Row], list[Row]]:
    """The records and lost customers of the file, as the tables' rows should be."""
    records: list[Row] = []
    lost: list[Row] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        m = r["metrics"]
        records.append((r["payee"], r["period"], r["group"], Decimal(m["traffic_revenue"]),
                        m["new_fax"], m["new_ipvpn"]))
        for e in r.get("events", {}).get("lost_customers", []):
            lost.append((r["payee"], r["period"], e["id"], e["monthly_value"], e["reason"],
                         dt.date.fromisoformat(e["lost"])))
    return sorted(records), sorted(lost)


def test_duckdb_tables_hold_exactly_the_records_of_the_file(
        load_bench: Any, tmp_path: Path) -> None:
    bench = load_bench("bench_sources")
    records_file, db = tmp_path / "records.jsonl", tmp_path / "records.duckdb"
    bench.make_records(records_file, 120, 3, seed=bench.SEED)
    counts = bench.load_duckdb(records_file, db)
    records, lost = from_jsonl(records_file)
    assert counts == (360, len(lost))
    assert 100 < len(lost) < 200  # about 30% of records lose one or two customers
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = sorted(con.execute("SELECT * FROM records").fetchall())
        got_lost = sorted(con.execute("SELECT * FROM lost_customers").fetchall())
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'records'").fetchall())
    finally:
        con.close()
    assert got == records
    assert got_lost == lost
    assert types["traffic_revenue"] == "DECIMAL(18,2)"
    # amounts keep their cents exactly (no float on the way)
    assert all(isinstance(r[3], Decimal) and r[3].as_tuple().exponent == -2 for r in got)


@pytest.mark.skipif(not CI and not os.environ.get("INCENTIVES_TEST_POSTGRES"),
                    reason="no PostgreSQL server (INCENTIVES_TEST_POSTGRES is not set)")
def test_postgres_tables_hold_exactly_the_records_of_the_file(
        load_bench: Any, tmp_path: Path) -> None:
    import psycopg

    bench = load_bench("bench_sources")
    url = os.environ.get("INCENTIVES_TEST_POSTGRES")
    assert url, "CI runs the tests with a PostgreSQL server: INCENTIVES_TEST_POSTGRES is not set"
    records_file, db = tmp_path / "records.jsonl", tmp_path / "records.duckdb"
    bench.make_records(records_file, 50, 2, seed=bench.SEED)
    bench.load_duckdb(records_file, db)
    schema = f"test_bench_sources_{os.getpid()}"
    records, lost = from_jsonl(records_file)
    try:
        assert bench.load_postgres(url, schema, db, tmp_path) == (100, len(lost))
        with psycopg.connect(bench.libpq_url(url)) as pg:
            got = sorted(pg.execute(f"SELECT * FROM {schema}.records").fetchall())
            got_lost = sorted(pg.execute(f"SELECT * FROM {schema}.lost_customers").fetchall())
    finally:
        bench.drop_postgres(url, schema)
    assert got == records
    assert got_lost == lost
    assert not list(tmp_path.glob("*.csv"))  # the CSV files passed to COPY are removed


def test_quick_benchmark_runs_and_agrees() -> None:
    """``BENCH_QUICK=1 python benchmarks/bench_sources.py``, as a user runs it."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sources.py"
    done = subprocess.run([sys.executable, str(script)], env={**os.environ, "BENCH_QUICK": "1"},
                          capture_output=True, text=True, timeout=600, check=False)
    text, code = done.stdout, done.returncode
    assert code == 0, text
    assert "6,000 records (2,000 payees x 3 months" in text
    assert "600 records (200 payees x 3 months" in text
    agreements = re.findall(r"= stream jsonl byte for byte: (\w+)", text)
    names = ["stream duckdb", "stream duckdb", "run duckdb"]
    if os.environ.get("INCENTIVES_TEST_POSTGRES"):
        names += ["stream postgresql", "stream postgresql"]
    assert sorted(agreements) == ["True"] * len(names), text
    assert "(6,000 result rows)" in text
    ratio = re.search(r"^ratio stream_duckdb_vs_jsonl (\d+\.\d\d)$", text, re.M)
    assert ratio is not None, text
    assert float(ratio.group(1)) > 0
    assert re.search(r"^peak RSS stream_duckdb 600 records [\d,]+ MB; 6,000 records [\d,]+ MB",
                     text, re.M), text


def test_an_output_that_differs_fails_the_benchmark(
        load_bench: Any, tmp_path: Path) -> None:
    bench = load_bench("bench_sources")
    cases = []
    for size in bench.QUICK:
        case = bench.Case(size, tmp_path, tmp_path / "r.jsonl", tmp_path / "r.duckdb")
        for name in ("stream jsonl", "stream duckdb"):
            case.outputs[name] = tmp_path / f"{size.rows}-{name}.csv"
            case.outputs[name].write_text("payee,total\nm-000001,700.00\n", encoding="utf-8")
            case.best[name] = bench.Measured(cpu=1.0, rss=50_000)
        cases.append(case)
    out = io.StringIO()
    with redirect_stdout(out):
        assert bench.report(cases, 1) is True
    cases[1].outputs["stream duckdb"].write_text("payee,total\nm-000001,700.01\n",
                                                 encoding="utf-8")
    with redirect_stdout(out):
        assert bench.report(cases, 1) is False
    assert "stream duckdb = stream jsonl byte for byte: False" in out.getvalue()
