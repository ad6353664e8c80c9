"""Pay periods: ``YYYY-MM`` (months), ``YYYY-Qn`` (quarters) and ``YYYY`` (years).

>>> parse_period("2026-05")
(datetime.date(2026, 5, 1), datetime.date(2026, 5, 31))
>>> parse_period("2026-Q2")
(datetime.date(2026, 4, 1), datetime.date(2026, 6, 30))
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

__all__ = ["parse_period", "period_kind", "shift_period", "span_of"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def period_kind(period: str) -> str:
    """``"month"``, ``"quarter"`` or ``"year"``; ``ValueError`` for anything else."""
    if _MONTH.match(period):
        return "month"
    if _QUARTER.match(period):
        return "quarter"
    if _YEAR.match(period):
        return "year"
    raise ValueError(f"period {period!r} is not YYYY-MM, YYYY-Qn or YYYY")


def parse_period(period: str) -> tuple[dt.date, dt.date]:
    """The first and last day of ``period``."""
    if not isinstance(period, str):
        raise ValueError(f"period must be text like 2026-05, not {period!r}")
    if m := _MONTH.match(period):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ValueError(f"period {period!r}: month {month} does not exist")
        last = calendar.monthrange(year, month)[1]
        return dt.date(year, month, 1), dt.date(year, month, last)
    if m := _QUARTER.match(period):
        year, q = int(m[1]), int(m[2])
        first = 3 * q - 2
        last_month = first + 2
        return dt.date(year, first, 1), dt.date(
            year, last_month, calendar.monthrange(year, last_month)[1]
        )
    if m := _YEAR.match(period):
        year = int(m[1])
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    raise ValueError(f"period {period!r} is not YYYY-MM, YYYY-Qn or YYYY")


def shift_period(period: str, n: int) -> str:
    """The period ``n`` periods of the same kind after ``period``.

    >>> shift_period("2026-11", 3), shift_period("2026-Q4", 1), shift_period("2026", 2)
    ('2027-02', '2027-Q1', '2028')
    """
    kind = period_kind(period)
    start, _ = parse_period(period)
    if kind == "year":
        return str(start.year + n)
    if kind == "quarter":
        q = start.year * 4 + (start.month - 1) // 3 + n
        return f"{q // 4:04d}-Q{q % 4 + 1}"
    m = start.year * 12 + start.month - 1 + n
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def span_of(period: str, over: str) -> tuple[str, bool]:
    """The quarter or year ``period`` falls in, and whether ``period`` closes it.

    >>> span_of("2026-06", "quarter"), span_of("2026-06", "year")
    (('2026-Q2', True), ('2026', False))
    """
    start, end = parse_period(period)
    span = str(start.year) if over == "year" else f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return span, parse_period(span)[1] == end
