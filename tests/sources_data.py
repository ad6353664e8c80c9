"""Data builders for the acceptance tests of issue 18 (tests/test_data_sources_e2e.py).

A JSON Lines records file (nested ``metrics``/``attributes``/``events``) is laid
out as HR keeps it: one flat table of records (``payee``, ``period``, ``group``,
then every declared attribute and metric under its name) and one table per event
list (``payee``, ``period``, then the event's fields). Each table is then written
to each kind of source: CSV, Parquet (decimal128 numbers, date32 dates), Excel
(numbers as numbers, dates as dates), SQLite (integers, or decimal text), DuckDB
(DECIMAL) and PostgreSQL (NUMERIC).

These builders are written from the spec, independently of the implementation:
they use the drivers directly (sqlite3, duckdb, psycopg, pyarrow, openpyxl).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from incentives import Plan

Kind = Literal["text", "number", "date", "bool"]


@dataclass
class Table:
    """Rows of a flat table: ``columns`` are (name, kind) in order; each row maps a
    column to its value (``None`` for a missing one): text as ``str``, numbers as
    ``Decimal``, dates as :class:`datetime.date`."""

    name: str
    columns: list[tuple[str, Kind]]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    def scale(self, column: str) -> int:
        """The most places a number of ``column`` has (0 for whole numbers)."""
        places = 0
        for row in self.rows:
            value = row.get(column)
            if isinstance(value, Decimal):
                exponent = value.as_tuple().exponent
                assert isinstance(exponent, int)
                places = max(places, -exponent)
        return places

    def whole(self, column: str) -> bool:
        return self.scale(column) == 0


@dataclass
class Flat:
    records: Table
    events: dict[str, Table]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file, numbers as ``int`` or ``Decimal``."""
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line.strip()]


def write_jsonl(path: Path, raws: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for raw in raws:
            f.write(json.dumps(raw, ensure_ascii=False, default=str) + "\n")
    return path


def _number(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    return Decimal(str(value))


def flatten(plan: Plan, raws: Sequence[dict[str, Any]]) -> Flat:
    """``raws`` (nested records) as the flat records table and one table per event
    list the plan declares (named after the list)."""
    inputs = plan.inputs
    columns: list[tuple[str, Kind]] = [("payee", "text"), ("period", "text"), ("group", "text")]
    for name, spec in inputs.attributes.items():
        columns.append((name, "number" if spec.type == "number" else
                        "bool" if spec.type == "bool" else "text"))
    columns += [(name, "number") for name in inputs.metrics]
    records = Table("records", columns)
    events = {name: Table(name, [("payee", "text"), ("period", "text"),
                                 *((f, _kind(t)) for f, t in spec.fields.items())])
              for name, spec in inputs.events.items()}
    for raw in raws:
        row: dict[str, Any] = {"payee": raw["payee"], "period": raw["period"],
                               "group": raw.get("group")}
        attributes = raw.get("attributes") or {}
        metrics = raw.get("metrics") or {}
        for name, kind in columns[3:]:
            value = attributes.get(name) if name in inputs.attributes else metrics.get(name)
            row[name] = _number(value) if kind == "number" else value
        records.rows.append(row)
        for list_name, items in (raw.get("events") or {}).items():
            table = events[list_name]
            for item in items:
                event: dict[str, Any] = {"payee": raw["payee"], "period": raw["period"]}
                for fname, kind in table.columns[2:]:
                    value = item.get(fname)
                    if value is not None and kind == "number":
                        value = _number(value)
                    elif value is not None and kind == "date":
                        value = dt.date.fromisoformat(value)
                    event[fname] = value
                table.rows.append(event)
    return Flat(records, events)


def _kind(field_type: str) -> Kind:
    return {"number": "number", "date": "date", "bool": "bool"}.get(field_type, "text")  # type: ignore[return-value]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- files


def write_csv(path: Path, table: Table) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(table.names())
        for row in table.rows:
            writer.writerow([_text(row.get(c)) for c in table.names()])
    return path


def arrow_table(table: Table) -> Any:
    import pyarrow as pa

    arrays = []
    fields = []
    for name, kind in table.columns:
        values = [row.get(name) for row in table.rows]
        if kind == "number":
            typ = pa.decimal128(18, table.scale(name))
        elif kind == "date":
            typ = pa.date32()
        elif kind == "bool":
            typ = pa.bool_()
        else:
            typ = pa.string()
        arrays.append(pa.array(values, type=typ))
        fields.append(pa.field(name, typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write_parquet(path: Path, table: Table) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(arrow_table(table), path)
    return path


def write_parquet_dataset(folder: Path, table: Table, partition: str) -> Path:
    """``table`` as a hive-partitioned dataset (``folder/PARTITION=value/part-0.parquet``),
    the partition column only in the folder names."""
    import pyarrow.parquet as pq

    values = sorted({str(row[partition]) for row in table.rows})
    for value in values:
        part = Table(table.name, [c for c in table.columns if c[0] != partition],
                     [{k: v for k, v in row.items() if k != partition}
                      for row in table.rows if str(row[partition]) == value])
        target = folder / f"{partition}={value}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(arrow_table(part), target / "part-0.parquet")
    return folder


def excel_value(value: Any) -> Any:
    """A value as Excel stores it: numbers as numbers (a whole number as an int, others
    as the double Excel keeps), dates as dates, text as text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def write_xlsx(path: Path, tables: Sequence[Table], *, titles: Sequence[str] = ()) -> Path:
    """One sheet per table (named after it), an optional title row or rows above the
    header; dates formatted as dates."""
    from openpyxl import Workbook

    book = Workbook()
    first = True
    for table in tables:
        if first:
            sheet = book.active
            assert sheet is not None
            sheet.title = table.name
            first = False
        else:
            sheet = book.create_sheet(table.name)
        for title in titles:
            sheet.append([title])
        sheet.append(table.names())
        for row in table.rows:
            sheet.append([excel_value(row.get(c)) for c in table.names()])
            for i, (name, kind) in enumerate(table.columns, 1):
                if kind == "date" and row.get(name) is not None:
                    sheet.cell(row=sheet.max_row, column=i).number_format = "yyyy-mm-dd"
    book.save(path)
    return path


# ---------------------------------------------------------------- databases


def write_sqlite(path: Path, table: Table, *, numbers: Literal["native", "text"] = "native",
                 name: str | None = None) -> Path:
    """``table`` into the SQLite file ``path``: a column of whole numbers as INTEGER
    (``numbers="native"``), any other number column (or every one, with
    ``numbers="text"``) as TEXT holding the decimal; dates as ISO text."""
    types = []
    for column, kind in table.columns:
        integer = kind == "number" and numbers == "native" and table.whole(column)
        types.append("INTEGER" if integer else "TEXT")
    con = sqlite3.connect(path)
    try:
        con.execute(f"CREATE TABLE {_q(name or table.name)} ("
                    + ", ".join(f"{_q(c)} {t}" for (c, _), t in zip(table.columns, types, strict=True)) + ")")
        con.executemany(
            f"INSERT INTO {_q(name or table.name)} VALUES ("
            + ", ".join("?" for _ in table.columns) + ")",
            [[_sqlite_value(row.get(c), t) for (c, _), t in zip(table.columns, types, strict=True)]
             for row in table.rows])
        con.commit()
    finally:
        con.close()
    return path


def _sqlite_value(value: Any, typ: str) -> Any:
    if value is None:
        return None
    if typ == "INTEGER":
        return int(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value) if isinstance(value, Decimal) else value


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_type(table: Table, column: str, kind: Kind, dialect: str) -> str:
    if kind == "number":
        return "NUMERIC" if dialect == "postgresql" else f"DECIMAL(18, {table.scale(column)})"
    if kind == "date":
        return "DATE"
    if kind == "bool":
        return "BOOLEAN"
    return "TEXT" if dialect == "postgresql" else "VARCHAR"


def write_duckdb(path: Path, table: Table, *, name: str | None = None) -> Path:
    """``table`` into the DuckDB file ``path``: numbers as DECIMAL(18, their places)."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute(f"CREATE TABLE {_q(name or table.name)} ("
                    + ", ".join(f"{_q(c)} {_sql_type(table, c, k, 'duckdb')}"
                                for c, k in table.columns) + ")")
        if table.rows:
            con.executemany(f"INSERT INTO {_q(name or table.name)} VALUES ("
                            + ", ".join("?" for _ in table.columns) + ")",
                            [[row.get(c) for c in table.names()] for row in table.rows])
    finally:
        con.close()
    return path


def pg_connect(url: str) -> Any:
    """A psycopg connection to the database of the SQLAlchemy ``url``."""
    import psycopg
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    kwargs: dict[str, Any] = {"dbname": u.database or "postgres"}
    if u.username:
        kwargs["user"] = u.username
    if u.password:
        kwargs["password"] = u.password
    if u.host:
        kwargs["host"] = u.host
    if u.port:
        kwargs["port"] = u.port
    for key, value in u.query.items():
        if key in ("host", "port", "user", "password", "sslmode"):
            kwargs[key] = value if isinstance(value, str) else value[0]
    return psycopg.connect(**kwargs, autocommit=True)


def write_postgres(url: str, table: Table, *, name: str | None = None) -> None:
    """``table`` into the PostgreSQL database at ``url``: numbers as NUMERIC (which
    keeps each value's places), dates as DATE, text as TEXT."""
    with pg_connect(url) as con:
        con.execute(f"CREATE TABLE {_q(name or table.name)} ("
                    + ", ".join(f"{_q(c)} {_sql_type(table, c, k, 'postgresql')}"
                                for c, k in table.columns) + ")")
        with con.cursor() as cur:
            cur.executemany(f"INSERT INTO {_q(name or table.name)} VALUES ("
                            + ", ".join("%s" for _ in table.columns) + ")",
                            [[row.get(c) for c in table.names()] for row in table.rows])


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string."""
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params)


def telecom_population(n: int, period: str = "2026-05") -> list[dict[str, Any]]:
    """``n`` telecom records (payees P000000...), amounts varied but deterministic."""
    out = []
    for i in range(n):
        metrics: dict[str, Any] = {"traffic_revenue": 1000 + (i * 7919) % 150000,
                                   "new_fax": i % 4, "new_ipvpn": i % 3}
        out.append({"payee": f"P{i:06d}", "period": period, "group": f"g{i % 50:02d}",
                    "metrics": metrics})
    return out
