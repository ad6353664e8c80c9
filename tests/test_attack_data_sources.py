"""Hostile tests of the data sources and sinks (issue 18): each test is a finding of an
attack on the SQL, Parquet and Excel sources and sinks, asserting the correct behaviour.
Real SQLite, DuckDB and PostgreSQL; no mocks."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from databases import execute, query, with_param
from incentives import load_plan
from incentives.errors import UsageError

for _module in ("sqlalchemy", "duckdb", "duckdb_engine", "psycopg"):
    pytest.importorskip(_module)

from incentives.sql import read_result_sql, read_sql, safe_url  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TELECOM = ROOT / "examples" / "telecom"


def telecom_run() -> Any:
    plan = load_plan(TELECOM / "plan.yaml")
    records = [json.loads(line) for line in
               (TELECOM / "records.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    return plan.evaluate(records, errors="collect")


# ------------------------------------------------------------------ credentials


@pytest.mark.parametrize("password", ["p?ss-S3cret", "p#ss-S3cret", "a?b#c-S3cret"])
def test_safe_url_hides_a_password_holding_a_question_mark_or_a_hash(password: str) -> None:
    """SQLAlchemy reads the password up to the '@' (a '?' or '#' in it included): the
    shown URL must hide all of it."""
    import sqlalchemy as sa

    url = f"postgresql://pay:{password}@db.example.com:5432/hr?table=records"
    assert sa.engine.make_url(url).password == password  # what the driver is given
    shown = safe_url(url)
    assert "S3cret" not in shown
    assert shown == "postgresql://pay:***@db.example.com:5432/hr?table=records"


def test_a_wrong_password_with_a_question_mark_never_reaches_stderr(
        postgres: str, cli: Any) -> None:
    import sqlalchemy as sa

    url = sa.engine.make_url(postgres)
    bad = (f"postgresql://{url.username}:Wr0ng?S3cret@{url.host}:{url.port}/{url.database}"
           "?table=records")
    for args in (["run", TELECOM / "plan.yaml", bad],
                 ["run", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--out",
                  bad.replace("records", "pay")]):
        result = cli(*args)
        assert result.code == 2
        assert "S3cret" not in result.err + result.out
        assert "password authentication failed" in result.err
        assert result.err.count("\n") == 1


# ------------------------------------------------------------------ query files


@pytest.mark.parametrize("database", ["file", "memory"])
def test_a_duckdb_query_file_cannot_hide_a_second_statement_in_a_list_literal(
        database: str, tmp_path: Path) -> None:
    """DuckDB's [ ... ] is a list, not a quoted name: a ']' inside a string of the list
    must not let a second statement (COPY ... TO a file) through the check."""
    url = f"duckdb:///{tmp_path / 'h.duckdb'}" if database == "file" else "duckdb:///:memory:"
    if database == "file":
        execute(url, "CREATE TABLE t (payee VARCHAR)", "INSERT INTO t VALUES ('A')")
    written = tmp_path / "pwned.csv"
    q = tmp_path / "q.sql"
    q.write_text(f"SELECT ['x]'] AS a; COPY (SELECT 'pwned' AS p) TO '{written}'; "
                 "SELECT 1 AS payee -- '", encoding="utf-8")
    with pytest.raises(UsageError, match=r"q\.sql"):
        list(read_sql(with_param(url, "query", str(q))))
    assert not written.exists()


def test_a_duckdb_query_file_cannot_reach_outside_the_database(tmp_path: Path) -> None:
    """The docs: a query file holds no word that reaches outside the database, and the
    database itself refuses what gets past the check. DuckDB's table functions
    read_csv/read_text reach any file of the machine: the query is run with DuckDB's
    external access off."""
    url = f"duckdb:///{tmp_path / 'h.duckdb'}"
    execute(url, "CREATE TABLE t (payee VARCHAR)", "INSERT INTO t VALUES ('A')")
    secret = tmp_path / "secret.txt"
    secret.write_text("payee\nS3cret-row\n", encoding="utf-8")
    q = tmp_path / "q.sql"
    q.write_text(f"SELECT * FROM read_csv('{secret}')", encoding="utf-8")
    with pytest.raises(UsageError) as e:
        list(read_sql(with_param(url, "query", str(q))))
    assert "S3cret-row" not in str(e.value)
    # a query of the database's own tables still reads
    q.write_text("SELECT payee FROM t", encoding="utf-8")
    assert list(read_sql(with_param(url, "query", str(q)))) == [{"payee": "A"}]


# ------------------------------------------------------------------ the SQL sink


@pytest.mark.parametrize("declared", ["REAL", "NUMERIC", "DOUBLE", "INTEGER", "DECIMAL(38, 2)"])
def test_a_sqlite_results_table_whose_amounts_would_be_floats_is_refused(
        declared: str, tmp_path: Path) -> None:
    """SQLite turns '1234.50' written to a column of NUMERIC, REAL or INTEGER affinity
    into a binary float (or an integer, losing the places): an existing table with such
    an amount column is refused, naming it, and nothing is written."""
    db = tmp_path / "pay.db"
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE pay (plan TEXT, plan_version TEXT, period TEXT, "group" TEXT, '
                f"payee TEXT, total {declared}, titles TEXT, flags TEXT)")
    con.commit()
    con.close()
    run = telecom_run()
    with pytest.raises(UsageError, match=r"pay\.total") as e:
        run.to_sql(f"sqlite:///{db}?table=pay")
    assert "\n" not in str(e.value)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM pay").fetchone() == (0,)
    assert con.execute("SELECT name FROM sqlite_master WHERE name LIKE 'pay_%'").fetchall() == []
    con.close()


def test_a_sqlite_text_amount_column_round_trips_exactly(tmp_path: Path) -> None:
    """A pre-made table whose amounts are TEXT (no float affinity) is fine."""
    db = tmp_path / "pay.db"
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE pay (plan TEXT, plan_version TEXT, period TEXT, "group" TEXT, '
                "payee TEXT, total TEXT, titles TEXT, flags TEXT)")
    con.commit()
    con.close()
    run = telecom_run()
    run.to_sql(f"sqlite:///{db}?table=pay", pay_with_errors=True)
    back = read_result_sql(f"sqlite:///{db}?table=pay")
    from incentives.tabular import result_tables

    assert back.totals == result_tables(run).totals
    assert {type(r[5]) for r in back.totals} == {Decimal}
    assert query(f"sqlite:///{db}", "SELECT DISTINCT typeof(total) FROM pay") == [("text",)]


@pytest.mark.parametrize("param", ["enable_external_access=true", "ENABLE_EXTERNAL_ACCESS=1",
                                   "access_mode=read_write"])
def test_a_duckdb_url_parameter_cannot_undo_the_query_guards(param: str, tmp_path: Path
                                                             ) -> None:
    """duckdb-engine hands a URL's parameters to DuckDB's configuration: they must not
    switch external access back on, nor open the file for writing, for a query file."""
    url = f"duckdb:///{tmp_path / 'h.duckdb'}"
    execute(url, "CREATE TABLE t (payee VARCHAR)", "INSERT INTO t VALUES ('A')")
    secret = tmp_path / "secret.txt"
    secret.write_text("payee\nS3cret-row\n", encoding="utf-8")
    q = tmp_path / "q.sql"
    q.write_text(f"SELECT * FROM read_csv('{secret}')", encoding="utf-8")
    with pytest.raises(UsageError) as e:
        list(read_sql(f"{url}?query={q}&{param}"))
    assert "S3cret-row" not in str(e.value)
    q.write_text("DELETE FROM t RETURNING *", encoding="utf-8")
    import incentives.sql as module

    # the database's own guard, with the text check out of the way
    check = module.check_query
    module.check_query = lambda sql, where: None
    try:
        with pytest.raises(UsageError, match="tried to change the database"):
            list(read_sql(f"{url}?query={q}&{param}"))
    finally:
        module.check_query = check
    assert query(url, "SELECT payee FROM t") == [("A",)]


# ------------------------------------------------------------------ Excel sources


def test_a_row_of_formulas_without_saved_values_is_reported_not_dropped(tmp_path: Path
                                                                        ) -> None:
    """A workbook written by a program (never opened in Excel) has formulas without
    saved values. The docs: such a cell is blank, so its field is reported missing. A
    row whose every cell is such a formula (payee =Roster!A2) must be reported too,
    never skipped as a blank row: a record lost without a word."""
    import openpyxl

    from incentives.excel import read_excel

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["payee", "period", "traffic_revenue"])
    sheet.append(["Y", "2026-05", 10000])
    sheet.append(["=Roster!A3", "=Roster!B3", "=Roster!C3"])
    book.save(tmp_path / "hr.xlsx")
    rows = list(read_excel(tmp_path / "hr.xlsx"))
    assert len(rows) == 2
    assert rows[0] == {"payee": "Y", "period": "2026-05", "traffic_revenue": 10000}
    assert "A3" in str(rows[1])
    assert "a formula with no saved value" in str(rows[1])


def test_a_formula_without_a_saved_value_is_never_its_fields_default(tmp_path: Path) -> None:
    """A metric with a default (0): a formula cell with no saved value must not be read as
    blank and so as the default; the record is that cell's error, the others are paid."""
    import openpyxl

    import incentives

    plan = incentives.load_plan("""name: d
inputs: {metrics: {sales: {}, bonus_base: {default: 0}}}
policies: [{type: formula, id: pay, amount: sales + bonus_base}]
""")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["payee", "period", "sales", "bonus_base"])
    sheet.append(["Y", "2026-05", 100, 5])
    sheet.append(["Z", "2026-05", 100, "=C3*2"])
    book.save(tmp_path / "hr.xlsx")
    run = plan.evaluate(tmp_path / "hr.xlsx", errors="collect")
    assert [(r.payee, r.total) for r in run.results] == [("Y", Decimal("105.00"))]
    assert [(e.payee, e.field) for e in run.errors] == [("Z", "bonus_base")]
    assert "cell D3" in str(run.errors[0])


# ------------------------------------------------------------------ sinks that lose the pay


@pytest.mark.parametrize(("kind", "schema"), [("sqlite", "temp"), ("sqlite", "TEMP"),
                                             ("duckdb", "temp"), ("postgresql", "pg_temp"),
                                             ("postgresql", "PG_TEMP_3")])
def test_a_results_table_in_a_temporary_schema_is_refused_before_any_work(
        kind: str, schema: str, request: pytest.FixtureRequest, tmp_path: Path,
        cli: Any) -> None:
    """A table of the session's temporary schema is dropped when the sink's connection
    closes: `--out ...?table=pg_temp.pay` said 'wrote 3 result(s)', exit 0, wrote the
    --state (the period closed), and the pay was gone: the period never reached
    payroll and could not be run again. It is refused, exit 2, before any work."""
    base = {"sqlite": lambda: f"sqlite:///{tmp_path / 'p.db'}",
            "duckdb": lambda: f"duckdb:///{tmp_path / 'p.duckdb'}",
            "postgresql": lambda: str(request.getfixturevalue("postgres_url"))}[kind]()
    target = with_param(base, "table", f"{schema}.pay")
    state = tmp_path / "state.json"
    result = cli("run", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--out", target,
                 "--state", state)
    assert result.code == 2, result.out
    assert "temporary" in result.err
    assert result.err.count("\n") == 1
    assert not state.exists()
    run = telecom_run()
    with pytest.raises(UsageError, match="temporary"):
        run.to_sql(target)


def test_an_ssl_key_password_in_the_url_is_hidden_too(cli: Any) -> None:
    """libpq's sslpassword= (the password of the client's SSL key) is a secret like
    password=: it was shown whole in the error line."""
    assert safe_url("postgresql://u@h/db?sslpassword=S3cret&table=t") == (
        "postgresql://u@h/db?sslpassword=***&table=t")
    url = ("postgresql://pay@127.0.0.1:9/hr?table=records&sslpassword=S3cret"
           "&connect_timeout=3")
    result = cli("run", TELECOM / "plan.yaml", url)
    assert result.code == 2
    assert "S3cret" not in result.err
    assert "sslpassword=***" in result.err


# ------------------------------------------------------------------ floats read by a quantum


def _float_plan(tmp_path: Path) -> Path:
    text = (TELECOM / "plan.yaml").read_text(encoding="utf-8")
    assert "\nreading:" not in text
    plan = tmp_path / "plan.yaml"
    plan.write_text(text + "\nreading:\n  floats: 0.01\n", encoding="utf-8")
    return plan


def test_a_huge_double_read_by_a_quantum_is_that_row_s_error_not_a_traceback(
        tmp_path: Path, cli: Any) -> None:
    """reading: {floats: 0.01} and a DOUBLE of 1e300: quantizing it overflowed the
    decimal context and the run died with decimal.InvalidOperation (a traceback, no
    pay for anyone). The value is that record's error; the others are paid."""
    url = f"duckdb:///{tmp_path / 'hr.duckdb'}"
    execute(url, 'CREATE TABLE r (payee VARCHAR, period VARCHAR, "group" VARCHAR, '
                 "traffic_revenue DOUBLE)",
            "INSERT INTO r VALUES ('A', '2026-05', 'g', 10000.0), ('C', '2026-05', 'g', 1e300)")
    plan = _float_plan(tmp_path)
    result = cli("run", plan, f"{url}?table=r", "--format", "json")
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    assert "payee 'C'" in result.err
    assert "too large" in result.err
    paid = json.loads(result.out)
    assert [(r["payee"], r["total"]) for r in paid["results"]] == [("A", "700.00")]


@pytest.mark.parametrize("target", ["sqlite://?table=pay", "sqlite:///:memory:?table=pay",
                                    "duckdb:///:memory:?table=pay", "duckdb://?table=pay",
                                    "sqlite:///file:pay?mode=memory&uri=true&table=pay"])
def test_an_in_memory_database_is_refused_as_a_sink(target: str, tmp_path: Path,
                                                     cli: Any) -> None:
    """An in-memory database is gone when the run's connection closes: the run said
    'wrote 3 result(s)', exit 0, closed the period in --state, and the pay existed
    nowhere. Refused, exit 2, before any work."""
    state = tmp_path / "state.json"
    result = cli("run", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--out", target,
                 "--state", state)
    assert result.code == 2, result.out
    assert "in memory" in result.err
    assert result.err.count("\n") == 1
    assert not state.exists()
    with pytest.raises(UsageError, match="in memory"):
        telecom_run().to_sql(target)


# ------------------------------------------------------------------ a period paid twice


def test_two_runs_of_one_period_at_once_never_pay_it_twice(postgres_url: str) -> None:
    """'Re-running a period replaces its rows' must hold when two runs of the same plan
    and period overlap (a retry while the first is still writing, two operators): on
    PostgreSQL (READ COMMITTED) the second run's DELETE did not see the first run's
    uncommitted rows, both inserted, and the period's pay was in the table twice."""
    import threading

    from incentives.sql import sql_sink
    from incentives.tabular import result_tables

    url = with_param(postgres_url, "table", "pay")
    tables = result_tables(telecom_run())
    telecom_run().to_sql(url)  # the period, paid once already
    first = sql_sink(url, pay_with_errors=True)
    first.write(tables)  # holds its transaction open
    failures: list[BaseException] = []

    def second_run() -> None:
        try:
            sink = sql_sink(url, pay_with_errors=True)
            sink.write(tables)
            sink.commit()
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=second_run)
    thread.start()
    thread.join(2.0)  # the second run waits for the first
    first.commit()
    thread.join(60.0)
    assert not thread.is_alive()
    assert failures == []
    payees = sorted(r[0] for r in query(postgres_url, "SELECT payee FROM pay"))
    assert payees == sorted(r[4] for r in tables.totals)
    assert int(query(postgres_url, "SELECT COUNT(*) FROM pay_lines")[0][0]) == len(tables.lines)


def test_two_first_runs_at_once_both_write(postgres_url: str) -> None:
    """Two runs writing to tables that do not exist yet: the second waited for nothing
    and failed on the first one's CREATE TABLE (duplicate key pg_type_typname_nsp_index);
    it waits, then replaces the first one's rows."""
    import threading

    from incentives.sql import sql_sink
    from incentives.tabular import result_tables

    url = with_param(postgres_url, "table", "pay")
    tables = result_tables(telecom_run())
    first = sql_sink(url, pay_with_errors=True)
    first.write(tables)
    failures: list[BaseException] = []

    def second_run() -> None:
        try:
            sink = sql_sink(url, pay_with_errors=True)
            sink.write(tables)
            sink.commit()
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=second_run)
    thread.start()
    thread.join(2.0)
    first.commit()
    thread.join(60.0)
    assert not thread.is_alive()
    assert failures == []
    assert int(query(postgres_url, "SELECT COUNT(*) FROM pay")[0][0]) == len(tables.totals)


def test_read_results_of_a_table_two_plans_share_takes_the_plan(tmp_path: Path) -> None:
    """Two plans may write to one table (each replaces only its own rows). Reading it
    back with incentives.read_results said 'say which (plan=...)', and read_results
    took no plan= (a TypeError)."""
    import incentives
    from incentives.tabular import result_tables

    url = f"sqlite:///{tmp_path / 'pay.db'}?table=pay"
    telecom = telecom_run()
    tobacco_plan = load_plan(ROOT / "examples" / "tobacco" / "plan.yaml")
    tobacco = tobacco_plan.evaluate(
        [json.loads(line) for line in (ROOT / "examples" / "tobacco" / "records.jsonl")
         .read_text(encoding="utf-8").splitlines() if line.strip()], errors="collect")
    assert result_tables(tobacco).places == result_tables(telecom).places
    telecom.to_sql(url, pay_with_errors=True)
    tobacco.to_sql(url, pay_with_errors=True)
    with pytest.raises(UsageError, match=r"several plans .*plan="):
        incentives.read_results(url)
    assert incentives.read_results(url, plan=telecom.plan.name) == result_tables(telecom)
    assert incentives.read_results(url, plan=tobacco_plan.name) == result_tables(tobacco)


# ------------------------------------------------------------------ floats inside JSON columns


def test_a_postgresql_jsonb_sellers_column_gives_exact_decimal_shares(postgres_url: str
                                                                      ) -> None:
    """psycopg parses json/jsonb numbers as Python floats: a `sellers` jsonb column gave
    shares 0.3333333333333333 (a float, 19 digits cut to 16), past the float refusal,
    where the same transactions as JSON Lines give the exact decimals written."""
    transactions = ROOT / "examples" / "transactions"
    thirds = [{"payee": "ana", "share": "0.3333333333333333333"},
              {"payee": "ben", "share": "0.6666666666666666667"}]
    execute(postgres_url,
            "CREATE TABLE tx (kind TEXT, id TEXT, date TEXT, amount NUMERIC(18, 2), "
            "sellers JSONB, seller TEXT, customer TEXT, product TEXT, specialist TEXT)",
            "INSERT INTO tx VALUES ('invoices', 'INV-1', '2026-05-10', 10000.00, "
            "'[{\"payee\": \"ana\", \"share\": 0.3333333333333333333}, "
            "{\"payee\": \"ben\", \"share\": 0.6666666666666666667}]', NULL, 'c', "
            "'ipvpn-1g', 'sam')")
    rows = list(read_sql(with_param(postgres_url, "table", "tx"), what="transactions"))
    assert rows[0]["sellers"] == [{"payee": "ana", "share": Decimal("0.3333333333333333333")},
                                  {"payee": "ben", "share": Decimal("0.6666666666666666667")}]
    assert {type(s["share"]) for s in rows[0]["sellers"]} == {Decimal}
    plan = load_plan(transactions / "plan.yaml")
    roster = [json.loads(line) for line in
              (transactions / "roster.jsonl").read_text(encoding="utf-8").splitlines()
              if line.strip()]
    as_json = [{"kind": "invoices", "id": "INV-1", "date": "2026-05-10", "amount": "10000.00",
                "sellers": thirds, "customer": "c", "product": "ipvpn-1g", "specialist": "sam"}]
    expected = plan.evaluate(roster, transactions=as_json,
                             hierarchy=transactions / "hierarchy.csv", errors="collect")
    got = plan.evaluate(roster, transactions=with_param(postgres_url, "table", "tx"),
                        hierarchy=transactions / "hierarchy.csv", errors="collect")
    assert got.to_json() == expected.to_json()


def test_floats_nested_in_a_duckdb_list_column_obey_the_float_reading(tmp_path: Path) -> None:
    """A DuckDB LIST(STRUCT(payee, share DOUBLE)) column passed its float shares through
    untouched, where a DOUBLE column is refused and Parquet's sellers obey
    reading.floats: refused by default, naming the column; read by the plan's reading
    otherwise; exact decimals inside stay exact."""
    url = f"duckdb:///{tmp_path / 'tx.duckdb'}"
    execute(url, "CREATE TABLE tx AS SELECT 'INV-1' AS id, "
                 "[{'payee': 'ana', 'share': 0.1::DOUBLE}, "
                 "{'payee': 'ben', 'share': 0.9::DOUBLE}] AS sellers, "
                 "[{'payee': 'ana', 'share': 0.25::DECIMAL(5, 4)}] AS exact")
    source = with_param(url, "table", "tx")
    with pytest.raises(UsageError, match=r"column 'sellers': holds floating-point numbers"):
        list(read_sql(source, what="transactions"))
    rows = list(read_sql(source, floats="shortest", what="transactions"))
    assert rows == [{"id": "INV-1",
                     "sellers": [{"payee": "ana", "share": Decimal("0.1")},
                                 {"payee": "ben", "share": Decimal("0.9")}],
                     "exact": [{"payee": "ana", "share": Decimal("0.2500")}]}]
