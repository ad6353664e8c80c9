"""Where records, events, transactions and tables come from, and where results go:
files, SQL databases, Parquet and Excel, each named by a path or a URL.

A *source* is written the same way wherever one is taken (``incentives run``'s
records, ``--events NAME=``, ``--transactions``, ``--hierarchy``, ``--table
NAME=``; :meth:`incentives.Plan.evaluate`):

- a file: ``.json``, ``.jsonl`` / ``.ndjson``, ``.csv``; ``.parquet`` / ``.pq``
  or a folder of Parquet files (a dataset, hive partitions allowed); ``.xlsx`` /
  ``.xlsm``, with a sheet after ``#`` (``pay.xlsx#May records``);
- a database: a SQLAlchemy URL with ``table=NAME`` or ``query=FILE``, such as
  ``sqlite:///hr.db?table=records``, ``duckdb:///hr.duckdb?table=records`` or
  ``postgresql://hr@db.internal/hr?table=pay.records``.

A *sink* (``--out``, :meth:`incentives.results.Run.to_sql` and the like) is an
``.xlsx`` workbook, a ``.parquet`` file (with its ``.lines`` and ``.errors``
files) or a database URL with ``table=NAME``; see :mod:`incentives.tabular`.

The integrations live in :mod:`incentives.sql`, :mod:`incentives.parquet` and
:mod:`incentives.excel`, each behind its extra (``pip install
'incentives[sql]'``...); this module only tells them apart.

>>> parse_source("examples/telecom/records.jsonl").kind
'file'
>>> parse_source("pay.xlsx#May records")
Source(kind='excel', location='pay.xlsx', sheet='May records', label="'pay.xlsx', sheet 'May records'")
>>> parse_source("sqlite:///hr.db?table=records").kind
'sql'
>>> sink_kind("pay.parquet"), sink_kind("duckdb:///pay.duckdb?table=pay"), sink_kind("pay.json")
('parquet', 'sql', None)
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .errors import IncentivesError, RecordError, UsageError
from .fileio import quote

if TYPE_CHECKING:
    from .tabular import FloatReading, ResultTables, Sink

__all__ = [
    "Source",
    "is_url",
    "join_events",
    "open_sink",
    "parse_source",
    "read_results",
    "read_rows",
    "sink_kind",
    "source_label",
]

#: A URL's scheme: a letter, then letters, digits, ``+ - .``; two characters at least,
#: so that ``C:\\data`` stays a path.
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
_EXCEL = re.compile(r"^(.*?\.xls[xm])(?:#(.*))?$", re.IGNORECASE | re.DOTALL)
_FILES = (".json", ".jsonl", ".ndjson", ".csv")
_PARQUET = (".parquet", ".pq")


class Source(NamedTuple):
    """A parsed source: ``kind`` (file, parquet, excel, sql), where it is, the sheet
    of a workbook, and how messages name it (a password never shows)."""

    kind: Literal["file", "parquet", "excel", "sql"]
    location: str
    sheet: str | None
    label: str


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://...``) rather than a path.

    >>> is_url("postgresql://hr@db/hr?table=records"), is_url("C://data.csv"), is_url("a.csv")
    (True, False, False)
    """
    return _URL.match(text) is not None


def source_label(spec: str | os.PathLike[str]) -> str:
    """``spec`` as messages show it: a path quoted; a URL without its password."""
    text = os.fspath(spec)
    if is_url(text):
        return _safe_url(text)
    return quote(text, 200)


def _safe_url(text: str) -> str:
    from .sql import safe_url  # plain text work: no extra needed

    return safe_url(text)


def parse_source(spec: str | os.PathLike[str]) -> Source:
    """Tell what kind of source ``spec`` names (see the module's documentation);
    :class:`UsageError` when it cannot be told."""
    text = os.fspath(spec)
    if not isinstance(text, str) or not text.strip():
        raise UsageError("a source is a file path or a database URL, not an empty text")
    if is_url(text):
        if text.lower().startswith(("http://", "https://", "ftp://", "file://")):
            raise UsageError(f"{_safe_url(text)}: give a file path or a database URL "
                             "(sqlite:///..., duckdb:///..., postgresql://...), not a web "
                             "address")
        return Source("sql", text, None, _safe_url(text))
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in _FILES:
        return Source("file", text, None, quote(text, 200))
    if suffix in _PARQUET or path.is_dir():
        return Source("parquet", text, None, quote(text, 200))
    excel = _EXCEL.match(text)
    if (excel is not None and not path.exists()) or suffix in (".xlsx", ".xlsm"):
        if excel is None:  # pragma: no cover - the suffix matched
            raise UsageError(f"cannot read {quote(text)}")
        where, sheet = excel[1], excel[2]
        if sheet is not None and not sheet.strip():
            raise UsageError(f"{quote(text)}: no sheet named after '#'")
        label = quote(where, 200) + (f", sheet {quote(sheet)}" if sheet is not None else "")
        return Source("excel", where, sheet, label)
    if suffix == ".xls":
        raise UsageError(f"{quote(text)}: the old Excel format (.xls) is not read; save the "
                         "workbook as .xlsx")
    raise UsageError(
        f"cannot tell the format of {quote(text)}: use .json, .jsonl, .csv, .parquet (or a "
        "folder of Parquet files), .xlsx, or a database URL such as "
        "sqlite:///hr.db?table=records")


def read_rows(spec: str | os.PathLike[str], *, floats: FloatReading = "refuse",
              what: str = "records", expect: Sequence[str] = ("payee",),
              encoding: str | None = None, delimiter: str | None = None,
              max_bytes: int | None = None) -> Iterator[Any]:
    """The raw rows of a source, one at a time (dicts of column to value; a row that
    cannot be read is a :class:`RecordError` in its place, so the others are still
    read). ``floats``: how a floating-point column is read (see
    :class:`incentives.tabular.FloatReading`); ``what`` names the rows in messages;
    ``expect``: the columns that mark a workbook's header row. ``encoding`` and
    ``delimiter`` are for text files (:func:`incentives.records.iter_raw_records`);
    ``max_bytes`` is the most a text file may hold, or a workbook once uncompressed
    (:data:`incentives.excel.MAX_WORKBOOK_BYTES`)."""
    source = parse_source(spec)
    if source.kind != "file" and (encoding is not None or delimiter is not None):
        raise UsageError(f"{source.label}: an encoding or a delimiter applies to text files "
                         "(.csv, .json, .jsonl) only")
    if source.kind == "file":
        from .records import iter_raw_records

        return iter_raw_records(source.location, encoding=encoding, delimiter=delimiter,
                                max_bytes=max_bytes)
    if source.kind == "parquet":
        from .extras import require

        require("parquet", f"reading {source.label}")
        from .parquet import read_parquet

        return read_parquet(source.location, floats=floats, what=what)
    if source.kind == "excel":
        from .extras import require

        require("excel", f"reading {source.label}")
        from .excel import read_excel

        return read_excel(source.location, sheet=source.sheet, what=what, expect=expect,
                          max_bytes=max_bytes)
    from .extras import require

    require("sql", f"reading {source.label}")
    from .sql import read_sql

    return read_sql(source.location, floats=floats, what=what)


def excel_event_sheets(spec: str | os.PathLike[str], names: Iterable[str], *,
                       max_bytes: int | None = None) -> dict[str, str]:
    """For a workbook source of records, the event lists among ``names`` that have a
    sheet of their own name in the same workbook: ``{name: "BOOK.xlsx#name"}``
    (``max_bytes``: see :func:`read_rows`)."""
    source = parse_source(spec)
    if source.kind != "excel":
        return {}
    from .extras import require

    require("excel", f"reading {source.label}")
    from .excel import sheet_names

    present = set(sheet_names(source.location, max_bytes=max_bytes))
    return {name: f"{source.location}#{name}" for name in names
            if name in present and name != source.sheet}


# ---------------------------------------------------------------------- events from tables


def _key_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        return text or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    from decimal import Decimal

    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return None


def join_events(records: Iterable[Any], events: Mapping[str, Iterable[Any]], *,
                default_period: str | None = None,
                labels: Mapping[str, str] | None = None,
                spill_after: int | None = None) -> Iterator[Any]:
    """``records`` with the rows of each event table attached: every row of
    ``events[name]`` (its ``payee``, its ``period`` and the event's fields) becomes
    an event of the list ``name`` of the record of that payee and period.

    An event row without a payee or a period, and the rows of a payee and period
    that has no record, are :class:`RecordError` s (yielded after the records), so
    no event is dropped without a word; a record that carries a list of its own
    for a name given here is an error too. ``labels`` name the tables in messages.
    The event rows wait in memory, or, past ``spill_after`` of them (by default
    :data:`SPILL_EVENTS`), in a temporary file, so memory does not grow with the
    event tables.

    >>> rows = [{"payee": "X", "period": "2026-05", "sales": "10"}]
    >>> lost = [{"payee": "X", "period": "2026-05", "id": "c-1"},
    ...         {"payee": "Q", "period": "2026-05", "id": "c-2"}]
    >>> out = list(join_events(rows, {"lost": lost}))
    >>> out[0]
    {'payee': 'X', 'period': '2026-05', 'sales': '10', 'events': {'lost': [{'id': 'c-1'}]}}
    >>> str(out[1])
    "payee 'Q' period 2026-05 field 'events.lost': 1 row of the event table 'lost' names this payee and period, which has no record"
    """
    labels = labels or {}
    table = _EventStore(SPILL_EVENTS if spill_after is None else spill_after)
    problems: list[IncentivesError] = []
    try:
        for name, rows in events.items():
            label = labels.get(name, f"the event table {name!r}")
            for i, row in enumerate(rows):
                if isinstance(row, IncentivesError):
                    problems.append(row)
                    continue
                if not isinstance(row, Mapping):
                    problems.append(RecordError(f"{label}, row {i + 1}: not a row of fields",
                                                field=f"events.{name}"))
                    continue
                payee = _key_text(row.get("payee"))
                period = _key_text(row.get("period")) or default_period
                if payee is None or period is None:
                    missing = "payee" if payee is None else "period"
                    problems.append(RecordError(
                        f"{label}, row {i + 1}: no {missing} (each event row names the payee "
                        "and the period of its record)", payee=payee, period=period,
                        field=f"events.{name}"))
                    continue
                item = {k: v for k, v in row.items() if k not in ("payee", "period")}
                table.add((payee, period), name, item)
        for raw in records:
            if type(raw) is dict and table:
                payee = _key_text(raw.get("payee"))
                period = _key_text(raw.get("period")) or default_period
                found = table.take((payee, period)) if payee and period else None
                if found is not None:
                    given = raw.get("events")
                    if given is not None and not isinstance(given, Mapping):
                        yield raw  # the reader reports the bad events
                        continue
                    both = sorted(set(given or {}) & set(found))
                    if both:
                        yield RecordError(
                            f"the events {', '.join(both)} come both with the record and "
                            "from an event table: give them one way", payee=payee,
                            period=period, field=f"events.{both[0]}")
                        continue
                    raw = {**raw, "events": {**(given or {}), **found}}
            yield raw
        for (payee, period), name, n in table.leftovers():
            label = labels.get(name, f"the event table {name!r}")
            problems.append(RecordError(
                f"{n} row{'s' if n != 1 else ''} of {label} name{'s' if n == 1 else ''} this "
                "payee and period, which has no record", payee=payee, period=period,
                field=f"events.{name}"))
    finally:
        table.close()
    yield from problems


#: How many event rows :func:`join_events` holds in memory; past that, they wait in a
#: temporary file (an SQLite database of the standard library), so that a stream's
#: memory does not grow with its event tables.
SPILL_EVENTS = 100_000


class _EventStore:
    """The event rows waiting for their record, by (payee, period) and list name: in a
    dict, then, past ``spill_after`` rows, in a temporary SQLite file (rows pickled:
    this process wrote them, and they come back with their exact types)."""

    def __init__(self, spill_after: int) -> None:
        self.spill_after = spill_after
        self.memory: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(dict)
        self.count = 0
        self.db: Any = None
        self.path: str | None = None
        self.pending: list[tuple[str, str, str, int, bytes]] = []

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, key: tuple[str, str], name: str, item: dict[str, Any]) -> None:
        self.count += 1
        if self.db is None:
            self.memory[key].setdefault(name, []).append(item)
            if self.count > self.spill_after:
                self._spill()
            return
        import pickle

        self.pending.append((key[0], key[1], name, self.count, pickle.dumps(item, 5)))
        if len(self.pending) >= 10_000:
            self._flush()

    def _spill(self) -> None:
        import sqlite3
        import tempfile

        fd, self.path = tempfile.mkstemp(prefix="incentives-events-", suffix=".sqlite")
        os.close(fd)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE ev (payee TEXT, period TEXT, name TEXT, seq INTEGER, "
                        "item BLOB)")
        import pickle

        seq = 0
        for (payee, period), lists in self.memory.items():
            for name, items in lists.items():
                for item in items:
                    seq += 1
                    self.pending.append((payee, period, name, seq, pickle.dumps(item, 5)))
        self.memory.clear()
        self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", self.pending)
            self.pending.clear()

    def _ready(self) -> None:
        if self.pending or not getattr(self, "_indexed", False):
            self._flush()
            self.db.execute("CREATE INDEX IF NOT EXISTS ev_key ON ev (payee, period)")
            self._indexed = True

    def take(self, key: tuple[str, str]) -> dict[str, list[dict[str, Any]]] | None:
        """The events of ``key``, taken out (None when it has none)."""
        if self.db is None:
            return self.memory.pop(key, None)
        import pickle

        self._ready()
        found = self.db.execute("SELECT rowid, name, item FROM ev WHERE payee = ? AND "
                                "period = ? ORDER BY seq", key).fetchall()
        if not found:
            return None
        self.db.executemany("DELETE FROM ev WHERE rowid = ?", [(r[0],) for r in found])
        out: dict[str, list[dict[str, Any]]] = {}
        for _, name, item in found:
            out.setdefault(name, []).append(pickle.loads(item))
        return out

    def leftovers(self) -> Iterator[tuple[tuple[str, str], str, int]]:
        """The rows no record took: ``((payee, period), name, count)``, sorted."""
        if self.db is None:
            for key, lists in sorted(self.memory.items()):
                for name, items in lists.items():
                    yield key, name, len(items)
            return
        self._ready()
        rows = self.db.execute("SELECT payee, period, name, COUNT(*), MIN(seq) FROM ev "
                               "GROUP BY payee, period, name ORDER BY payee, period, "
                               "MIN(seq)").fetchall()
        for payee, period, name, n, _ in rows:
            yield (payee, period), name, n

    def close(self) -> None:
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.close()
            self.db = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None


# ---------------------------------------------------------------------- sinks


def sink_kind(target: str | os.PathLike[str]) -> Literal["sql", "parquet", "excel"] | None:
    """The kind of sink ``target`` names, or None for a text file (JSON, CSV...)."""
    text = os.fspath(target)
    if is_url(text):
        return "sql"
    suffix = Path(text).suffix.lower()
    if suffix in _PARQUET:
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "excel"
    return None


def open_sink(target: str | os.PathLike[str], *, pay_with_errors: bool = False) -> Sink:
    """The sink ``target`` names (see :mod:`incentives.tabular`); ``pay_with_errors``:
    a database gets the pay of a run whose records had errors (otherwise only the
    errors, leaving the pay rows it had)."""
    from .extras import require

    text = os.fspath(target)
    kind = sink_kind(text)
    label = source_label(text)
    if kind == "sql":
        require("sql", f"writing to {label}")
        from .sql import sql_sink

        return sql_sink(text, pay_with_errors=pay_with_errors)
    if kind == "parquet":
        require("parquet", f"writing {label}")
        from .parquet import parquet_sink

        return parquet_sink(text)
    if kind == "excel":
        require("excel", f"writing {label}")
        from .excel import excel_sink

        return excel_sink(text)
    raise UsageError(f"{label}: results go to a .xlsx workbook, a .parquet file or a "
                     "database URL with table=NAME (JSON and CSV: --format and --out)")


def read_results(target: str | os.PathLike[str], *, plan: str | None = None
                 ) -> ResultTables:
    """The result tables a sink holds (as :func:`incentives.tabular.result_tables`
    makes them), read back exactly: to check a round trip, or to reconcile. ``plan``:
    which plan's rows, when several plans write to one database table (a file holds
    one plan's: it is checked)."""
    from .extras import require

    text = os.fspath(target)
    kind = sink_kind(text)
    label = source_label(text)
    if kind == "sql":
        require("sql", f"reading {label}")
        from .sql import read_result_sql

        return read_result_sql(text, plan=plan)
    if kind == "parquet":
        require("parquet", f"reading {label}")
        from .parquet import read_result_parquet

        return _of_plan(read_result_parquet(text), plan, label)
    if kind == "excel":
        require("excel", f"reading {label}")
        from .excel import read_result_excel

        return _of_plan(read_result_excel(text), plan, label)
    raise UsageError(f"{label}: not a results workbook, Parquet file or database URL")


def _of_plan(tables: ResultTables, plan: str | None, label: str) -> ResultTables:
    if plan is not None and tables.plan != plan:
        raise UsageError(f"{label} holds the results of the plan {tables.plan!r}, not "
                         f"{plan!r}")
    return tables
