"""What a policy sees and writes while a period is evaluated.

A :class:`PayeeState` is one payee in one period during evaluation: the
checked record, the *environment* of named values that formulas read
(inputs, parameters, earlier results, the running ``total``), and the lines,
titles and flags made so far. A :class:`PeriodContext` holds what is shared
by the whole period (its dates, its parameter values).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .money import ZERO

__all__ = ["Line", "PayeeState", "PeriodContext", "Record", "jsonable"]


@dataclass(slots=True)
class Record:
    """One payee in one period, checked against a plan's declared inputs."""

    payee: str
    period: str
    group: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Decimal] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """``(period, payee)``: what identifies a record within a run."""
        return (self.period, self.payee)


@dataclass(slots=True)
class Line:
    """One amount a policy contributes to a payee's pay, with its explanation."""

    policy: str
    label: str
    amount: Decimal
    type: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The line as JSON-ready data (amounts as decimal strings)."""
        return {
            "id": self.policy,
            "label": self.label,
            "amount": str(self.amount),
            "type": self.type,
            "details": jsonable(self.details),
        }


@dataclass(slots=True)
class PeriodContext:
    """What every payee of one period shares."""

    period: str
    start: dt.date
    end: dt.date
    base_env: dict[str, Any]

    @property
    def days(self) -> int:
        """The number of calendar days in the period."""
        return (self.end - self.start).days + 1


class PayeeState:
    """One payee's evaluation in progress."""

    __slots__ = ("env", "error", "flags", "ledger", "lines", "payee", "record", "titles", "total",
                 "values")

    def __init__(self, record: Record, env: dict[str, Any]) -> None:
        self.record = record
        #: the record's payee (a plain attribute: team policies sort by it a lot)
        self.payee: str = record.payee
        self.env = env
        self.lines: list[Line] = []
        self.titles: list[str] = []
        self.flags: list[str] = []
        self.values: dict[str, Any] = {}
        self.total = ZERO
        self.error: Exception | None = None
        self.ledger: dict[str, Any] = {}

    def add_line(
        self,
        policy: str,
        label: str,
        amount: Decimal,
        type: str,
        details: dict[str, Any] | None = None,
    ) -> Line:
        """Append a line (already rounded) and update ``total`` and the policy's name."""
        line = Line(policy, label, amount, type, details if details is not None else {})
        self.lines.append(line)
        self.total += amount
        env = self.env
        env["total"] = self.total
        env[policy] = env.get(policy, ZERO) + amount
        return line

    def set_value(self, name: str, value: Any, *, show: bool = True) -> None:
        """Publish a named result that later formulas may read."""
        self.env[name] = value
        if show:
            self.values[name] = value


def jsonable(value: Any) -> Any:
    """Turn details into JSON-ready data: Decimals and dates become strings."""
    # the common exact types first (this runs for every value of every line)
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is Decimal:
        return str(value)
    if t is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in value.items()}
    if t is list:
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):  # pragma: no cover - never produced by the library
        return str(Decimal(repr(value)))
    return value
