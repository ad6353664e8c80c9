"""Quarterly and annual views: sums to date kept in the ledger, quotas split by period.

``accumulate`` keeps, in the payee's ledger, the running sum of a formula over
the quarter or year the period falls in, and publishes it as ``<id>`` (this
period included), with ``<id>_periods`` (how many periods were summed) and
``<id>_closing`` (whether this period closes the quarter or year). An annual
bonus on yearly attainment is then a formula line with ``when: <id>_closing``.

``period_quota`` splits a yearly (or quarterly) target into per-period quotas
by weights, exactly (:func:`incentives.money.split`: the quotas add up to the
target), and publishes this period's quota as ``<id>`` and the quotas so far
as ``<id>_to_date``.

>>> from incentives import Plan, Accumulate, PeriodQuota
>>> plan = Plan(name="ytd", inputs={"metrics": {"sales": {}}},
...             policies=[Accumulate(id="ytd_sales", of="sales", over="quarter"),
...                       PeriodQuota(id="quota", target=1000, over="quarter")])
>>> run = plan.evaluate([{"payee": "a", "period": p, "metrics": {"sales": 100}}
...                      for p in ("2026-04", "2026-05", "2026-06")])
>>> [(r.values["ytd_sales"], r.values["ytd_sales_closing"], r.values["quota"]) for r in run]
[(Decimal('100'), False, Decimal('333.34')), (Decimal('200'), False, Decimal('333.33')), (Decimal('300'), True, Decimal('333.33'))]
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field

from ..errors import EvaluationError
from ..formulas import NameType
from ..money import ZERO, amount_of, split
from ..periods import parse_period, period_kind, span_of
from ..runtime import PayeeState
from .base import CompileContext, Compiled, Expr, PolicyBase

__all__ = ["Accumulate", "PeriodQuota"]

Over = Literal["quarter", "year"]


@lru_cache(maxsize=512)
def _span(period: str, over: str) -> tuple[str, bool]:
    return span_of(period, over)


class Accumulate(PolicyBase):
    """The running sum of ``of`` over the quarter or year (``over``), kept in the ledger."""

    type: Literal["accumulate"] = "accumulate"
    of: Expr = Field(description="the amount added each period (a formula)")
    over: Over = Field(default="year", description="the sum restarts each quarter or year")

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_periods": "number",
                f"{self.id}_closing": "bool"}

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledAccumulate(self, ctx)


class _CompiledAccumulate(Compiled):
    def __init__(self, spec: Accumulate, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.of = ctx.formula(spec.of, "of")
        self.over = spec.over

    def check_entry(self, entry: Any) -> None:
        """Refuse a malformed ledger entry (see :func:`incentives.ledger.check_entries`)."""
        if (not isinstance(entry, dict) or set(entry) != {"span", "sum", "periods"}
                or not isinstance(entry["periods"], int) or entry["periods"] < 0):
            raise ValueError('an accumulate entry is {"span": ..., "sum": ..., "periods": n}')
        period_kind(entry["span"])
        amount_of(entry, "sum")

    def _opening(self, s: PayeeState) -> tuple[str, bool, Decimal, int]:
        span, closing = _span(s.record.period, self.over)
        entry = s.ledger.get(self.id)
        if entry and entry["span"] == span:
            return span, closing, Decimal(entry["sum"]), int(entry["periods"])
        return span, closing, ZERO, 0

    def _publish(self, s: PayeeState, total: Decimal, n: int, closing: bool) -> None:
        s.set_value(self.id, total)
        s.set_value(f"{self.id}_periods", Decimal(n), show=False)
        s.set_value(f"{self.id}_closing", closing)

    def apply(self, s: PayeeState) -> None:
        span, closing, total, n = self._opening(s)
        total += self.of(s.env)
        n += 1
        s.ledger[self.id] = {"span": span, "sum": str(total), "periods": n}
        self._publish(s, total, n, closing)

    def skip(self, s: PayeeState) -> None:
        _, closing, total, n = self._opening(s)
        self._publish(s, total, n, closing)


class PeriodQuota(PolicyBase):
    """Split a quarter's or year's ``target`` into per-period quotas by ``weights``."""

    type: Literal["period_quota"] = "period_quota"
    target: Expr = Field(description="the quarter's or year's target (a formula)")
    over: Over = Field(default="year", description="split a quarter's or a year's target")
    weights: list[Decimal] | None = Field(default=None, min_length=1, max_length=12, description=(
        "one weight per period of the quarter or year (equal weights when absent)"))
    quantum: Decimal = Field(default=Decimal("0.01"), description="the quotas' unit")

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_to_date": "number"}

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledPeriodQuota(self, ctx)


class _CompiledPeriodQuota(Compiled):
    def __init__(self, spec: PeriodQuota, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.target = ctx.formula(spec.target, "target")
        self.over = spec.over
        self.weights = spec.weights
        self.quantum = spec.quantum

    def apply(self, s: PayeeState) -> None:
        period = s.record.period
        kind = period_kind(period)
        start, _ = parse_period(period)
        if kind == "month":
            count = 12 if self.over == "year" else 3
            index = start.month - 1 if self.over == "year" else (start.month - 1) % 3
        elif kind == "quarter" and self.over == "year":
            count, index = 4, (start.month - 1) // 3
        else:
            raise EvaluationError(f"period_quota {self.id!r}: cannot split a {self.over} "
                                  f"into {kind}s")
        weights = self.weights or [Decimal(1)] * count
        if len(weights) != count:
            raise EvaluationError(f"period_quota {self.id!r}: {len(weights)} weights given, "
                                  f"but a {self.over} has {count} {kind}s")
        target = self.target(s.env)
        try:
            shares = split(target, weights, quantum=self.quantum)
        except ValueError as exc:
            raise EvaluationError(f"period_quota {self.id!r}: {exc}") from None
        s.set_value(self.id, shares[index])
        s.set_value(f"{self.id}_to_date", sum(shares[: index + 1], ZERO), show=False)
