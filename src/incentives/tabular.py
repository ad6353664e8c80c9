"""A run as tables, and rows read from tables: what the SQL, Parquet and Excel
integrations (:mod:`incentives.sql`, :mod:`incentives.parquet`,
:mod:`incentives.excel`) share.

A run is written as three tables, each with fixed columns whatever the plan
(a new policy is a new row, never a new column, so a table outlives plan
versions):

- **totals**: one row per payee and period;
- **lines**: one row per line of pay, in the order of the payee's statement,
  with the line's details as JSON text;
- **errors**: one row per record or transaction that failed.

Every row starts with the plan's name and version and the period, which is
how a re-run of a period replaces that period's rows (see :class:`Sink`).
Amounts are exact :class:`~decimal.Decimal` values at the plan's quantum
(:attr:`ResultTables.places` places).

Values read from a table (:func:`cell`) are text, ``int``, ``Decimal``, ``bool``
or ``None``; dates become ISO text; a float is read as its plan says
(:class:`FloatReading`), and refused unless the plan says how.

>>> from incentives import load_plan
>>> plan = load_plan("examples/telecom/plan.yaml")
>>> run = plan.evaluate([{"payee": "Y", "period": "2026-05", "group": "g",
...                       "metrics": {"traffic_revenue": "10000"}}])
>>> t = result_tables(run)
>>> [c.name for c in TOTALS]
['plan', 'plan_version', 'period', 'group', 'payee', 'total', 'titles', 'flags']
>>> t.totals
[('telecom-key-account', '2026.1', '2026-05', 'g', 'Y', Decimal('700.00'), '', '')]
>>> [(row[5], row[6], row[9]) for row in t.lines]
[(1, 'commission', Decimal('200.00')), (2, 'new_business', Decimal('0.00')), (3, 'churn_penalty', Decimal('0.00')), (4, 'floor', Decimal('500.00'))]
>>> t.places, t.periods
(2, ['2026-05'])
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from .errors import UsageError, error_dict

if TYPE_CHECKING:
    from .results import PayeeResult, Run

__all__ = [
    "ERRORS",
    "LINES",
    "TOTALS",
    "Column",
    "FloatReading",
    "ResultTables",
    "Sink",
    "cell",
    "float_value",
    "period_order",
    "periods_of",
    "result_tables",
]


class Column(NamedTuple):
    """A column of a result table: its name and kind.

    Kinds: ``text`` (may be empty, never NULL unless said), ``money`` (a
    Decimal at the plan's places), ``int``, ``json`` (JSON text), and
    ``text?`` (text or NULL: an error's payee, period, field, id).
    """

    name: str
    kind: Literal["text", "text?", "money", "int", "json"]


#: One row per payee and period.
TOTALS: tuple[Column, ...] = (
    Column("plan", "text"), Column("plan_version", "text"), Column("period", "text"),
    Column("group", "text"), Column("payee", "text"), Column("total", "money"),
    Column("titles", "text"), Column("flags", "text"),
)
#: One row per line of pay (``line``: its place in the statement, from 1).
LINES: tuple[Column, ...] = (
    Column("plan", "text"), Column("plan_version", "text"), Column("period", "text"),
    Column("group", "text"), Column("payee", "text"), Column("line", "int"),
    Column("policy", "text"), Column("label", "text"), Column("type", "text"),
    Column("amount", "money"), Column("details", "json"),
)
#: One row per error (``kind``: record, transaction, evaluation...; ``id``: a
#: transaction's id; ``policy``: an evaluation error's policy).
ERRORS: tuple[Column, ...] = (
    Column("plan", "text"), Column("plan_version", "text"), Column("period", "text?"),
    Column("kind", "text"), Column("payee", "text?"), Column("field", "text?"),
    Column("id", "text?"), Column("policy", "text?"), Column("message", "text"),
)


@dataclass
class ResultTables:
    """A run (or, in :mod:`incentives.streaming`, part of one) as rows of
    :data:`TOTALS`, :data:`LINES` and :data:`ERRORS`, each a tuple in column order."""

    plan: str
    version: str
    #: the places of every money value (the plan's quantum's)
    places: int
    totals: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)
    #: the periods these rows are of (results' and errors'), sorted: a sink replaces
    #: exactly these periods' rows of this plan
    periods: list[str] = field(default_factory=list)

    @property
    def has_pay(self) -> bool:
        return bool(self.totals)


def places_of(quantum: Decimal) -> int:
    """The places of amounts rounded to ``quantum`` (0 for 1, 5 or 10).

    >>> places_of(Decimal("0.01")), places_of(Decimal("0.05")), places_of(Decimal("1")), places_of(Decimal("1E+1"))
    (2, 2, 0, 0)
    """
    exponent = quantum.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _details_text(line: Any) -> str:
    """A line's details as compact JSON text: made as JSON data from what its policy
    captured where it can (:meth:`~incentives.runtime.Line.json_details`)."""
    from .runtime import json_default

    details = line.json_details()
    try:
        return json.dumps(details, ensure_ascii=False, sort_keys=False, default=json_default,
                          separators=(",", ":"))
    except TypeError:
        from .runtime import jsonable

        return json.dumps(jsonable(line.details), ensure_ascii=False, separators=(",", ":"))


def result_rows(r: PayeeResult, plan: str, version: str, *, details: str = "full"
                ) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The totals row and the line rows of one payee's result, at the level of
    ``details``: ``full`` (each line's details as JSON text), ``lines`` (the lines,
    their details empty text) or ``none`` (no line rows)."""
    group = r.group or ""
    total = (plan, version, r.period, group, r.payee, r.total, "; ".join(r.titles),
             "; ".join(r.flags))
    if details == "none":
        return total, []
    full = details == "full"
    lines = [(plan, version, r.period, group, r.payee, i, line.policy, line.label,
              line.type, line.amount, _details_text(line) if full else "")
             for i, line in enumerate(r.lines, 1)]
    return total, lines


def error_row(e: BaseException, plan: str, version: str) -> tuple[Any, ...]:
    """One row of :data:`ERRORS`."""
    d = error_dict(e)

    def text(key: str) -> str | None:
        value = d.get(key)
        return None if value is None else str(value)

    return (plan, version, text("period"), str(d.get("kind", "")), text("payee"),
            text("field"), text("id"), text("policy"), str(d.get("message", "")))


def result_tables(run: Run, *, details: str = "full") -> ResultTables:
    """``run`` as :class:`ResultTables` (results in the run's order: period, group,
    payee), at the level of ``details`` (see :func:`result_rows`)."""
    plan = run.plan
    out = ResultTables(plan.name, str(plan.version), places_of(plan.rounding.quantum))
    add_results(out, run.results, run.errors, details=details)
    return out


def add_results(tables: ResultTables, results: Iterable[PayeeResult],
                errors: Iterable[BaseException], *, details: str = "full") -> None:
    """Add results and errors to ``tables`` (and their periods to ``tables.periods``)."""
    periods = set(tables.periods)
    for r in results:
        total, lines = result_rows(r, tables.plan, tables.version, details=details)
        tables.totals.append(total)
        tables.lines.extend(lines)
        periods.add(r.period)
    for e in errors:
        row = error_row(e, tables.plan, tables.version)
        tables.errors.append(row)
        if row[2] is not None:
            periods.add(row[2])
    tables.periods = sorted(periods, key=period_order)


def periods_of(tables: ResultTables) -> list[str]:
    """The periods of ``tables``' totals and errors, in :func:`period_order` (what a
    reader of a sink sets as :attr:`ResultTables.periods`)."""
    periods = {row[2] for row in tables.totals}
    periods.update(row[2] for row in tables.errors if row[2] is not None)
    return sorted(periods, key=period_order)


def period_order(p: str) -> Any:
    """The sort key of periods: in time order (a month, then its quarter, then its
    year when they start together), then anything that is not a period, as text."""
    from .periods import parse_period

    try:
        return (0, parse_period(p), p)
    except (ValueError, TypeError):
        return (1, (), p)


class Sink(Protocol):
    """Where a run's tables go (a database, a workbook, Parquet files).

    :meth:`write` may be called several times (a stream writes bucket by
    bucket); nothing is visible until :meth:`commit`, and :meth:`discard` (or
    an exception before :meth:`commit`) leaves the target exactly as it was.
    A database sink replaces, in one transaction, the rows of this plan in each
    period it is given rows of, and writes pay only when told to if there were
    errors (``pay_with_errors``).
    """

    def write(self, tables: ResultTables) -> None: ...

    def commit(self) -> None: ...

    def discard(self) -> None: ...


# ------------------------------------------------------------------ reading cells

#: How a floating-point value read from a table becomes a Decimal: ``refuse`` (the
#: default: the column is refused, naming it), ``shortest`` (the shortest decimal
#: that reads back as the same float: ``0.1`` for 0.1), or a quantum such as
#: ``Decimal("0.01")`` (the shortest decimal, rounded half up to it).
FloatReading = Literal["refuse", "shortest"] | Decimal


def float_value(value: float, reading: FloatReading, *, source: str, column: str) -> Decimal:
    """``value`` read as ``reading`` says; a :class:`UsageError` naming ``source`` and
    ``column`` when floats are refused (or the value is not finite).

    >>> float_value(0.1, "shortest", source="table t", column="x")
    Decimal('0.1')
    >>> float_value(2.675, Decimal("0.01"), source="table t", column="x")
    Decimal('2.68')
    >>> float_value(0.1, "refuse", source="table t", column="x")
    Traceback (most recent call last):
    ...
    incentives.errors.UsageError: table t, column 'x': holds floating-point numbers, which are not exact; store it as DECIMAL/NUMERIC (or text), cast it in the query, or say how to read floats in the plan (reading: {floats: shortest}, or a quantum such as 0.01)
    """
    if reading == "refuse":
        raise UsageError(
            f"{source}, column {column!r}: holds floating-point numbers, which are not "
            "exact; store it as DECIMAL/NUMERIC (or text), cast it in the query, or say how "
            "to read floats in the plan (reading: {floats: shortest}, or a quantum such as "
            "0.01)")
    text = repr(value)
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - repr of a float is always a number
        raise UsageError(f"{source}, column {column!r}: {text} is not a number") from None
    if not number.is_finite():
        return number  # NaN and infinities: the reader refuses them, naming the row
    if reading == "shortest":
        return number
    from decimal import ROUND_HALF_UP

    try:
        return number.quantize(reading, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than a decimal holds at this quantum (1e300)
        return number  # the reader refuses it as too large, naming the row


def cell(value: Any, reading: FloatReading, *, source: str, column: str) -> Any:
    """A value from a table as the readers take it: text, ``int``, ``Decimal``,
    ``bool`` or ``None`` as they are; a date as ``YYYY-MM-DD``; a date and time at
    midnight as its date, otherwise ISO text; a float by :func:`float_value`; a list
    or a dict (a LIST, STRUCT or JSON column) with each value inside read the same way.

    >>> cell(dt.date(2026, 5, 3), "refuse", source="t", column="lost")
    '2026-05-03'
    >>> cell(dt.datetime(2026, 5, 3), "refuse", source="t", column="lost")
    '2026-05-03'
    """
    kind = type(value)
    if kind is str or kind is int or kind is Decimal or value is None or kind is bool:
        return value
    if kind is float:
        return float_value(value, reading, source=source, column=column)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise UsageError(f"{source}, column {column!r}: holds binary data, not text or "
                         "numbers")
    if isinstance(value, int):  # numpy integers and the like
        return int(value)
    if isinstance(value, uuid.UUID):  # a UUID key column: its text
        return str(value)
    if kind is list or kind is tuple:  # a database's LIST, ARRAY or JSON column
        return [cell(v, reading, source=source, column=column) for v in value]
    if kind is dict:  # a STRUCT or a JSON object: its floats obey the reading too
        return {k: cell(v, reading, source=source, column=column) for k, v in value.items()}
    return value
