"""A floor (guarantee): pay is at least an amount; the top-up is a line.

"Floor and no ceiling" is the common shape. The floor applies to ``of``: the
running ``total`` by default, or any earlier named result, so "a floor on
total after penalties" is written by placing the floor after the penalty.

>>> from incentives import Plan, Floor, FormulaLine
>>> plan = Plan(name="demo", inputs={"metrics": {"sales": {}}},
...             policies=[FormulaLine(id="commission", amount="sales * 0.02"),
...                       Floor(id="guarantee", amount=700)])
>>> r = plan.evaluate([{"payee": "y", "period": "2026-05", "metrics": {"sales": 10000}}]).results[0]
>>> [(line.policy, line.amount) for line in r.lines]
[('commission', Decimal('200.00')), ('guarantee', Decimal('500.00'))]

A *recoverable* floor (a draw) records its top-up as owed in the payee's
ledger; later earnings above the floor repay it (a negative line), at most
``recovery_limit`` per period. Forgiveness: in a period that ends on or after
``forgive_on``, or where ``forgive_when`` holds (e.g. the payee leaves),
earnings above the floor still repay first and whatever is still owed at the
end of the period is forgiven. In every period, paid minus earned equals the
change in the balance plus what was forgiven. The balance after the period is
published as ``<id>_balance``. See :mod:`incentives.ledger` for the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field, model_validator

from ..formulas import NameType
from ..money import ZERO, amount_of
from ..periods import parse_period
from ..runtime import Explained, Line, PayeeState, money_places, money_text
from ..wording import Step, Wording, dec, formula_shown
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase, explains

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["Floor"]


class Floor(PolicyBase):
    """Top ``of`` (default ``total``) up to ``amount``. Non-recoverable: the top-up is a gift."""

    type: Literal["floor"] = "floor"
    amount: Expr
    of: Identifier = "total"
    recoverable: bool = Field(default=False, description=(
        "a draw: the top-up is owed back out of later earnings above the floor"))
    recovery_limit: Expr | None = Field(default=None, description=(
        "at most this much is recovered in one period (a formula; needs recoverable)"))
    forgive_on: dt.date | None = Field(default=None, description=(
        "what is still owed at the end of a period ending on or after this date is forgiven"))
    forgive_when: Expr | None = Field(default=None, description=(
        'a condition (e.g. status == "left"): when it holds, what is still owed is forgiven'))

    @model_validator(mode="after")
    def _draw_only(self) -> Floor:
        if not self.recoverable:
            given = [k for k in ("recovery_limit", "forgive_on", "forgive_when")
                     if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{given[0]} needs recoverable: true")
        return self

    def publishes(self) -> dict[str, NameType]:
        if self.recoverable:
            return {self.id: "number", f"{self.id}_balance": "number"}
        return {self.id: "number"}

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledFloor(self, ctx)


@lru_cache(maxsize=256)
def _end(period: str) -> dt.date:
    return parse_period(period)[1]


class FloorCapture(NamedTuple):
    """What a (non-recoverable) floor line is explained from (captured when it is made)."""

    #: the floor
    floor: Decimal
    #: what was floored (``of``), before the top-up
    before: Decimal
    #: the values of the floor formula's names
    floor_values: tuple[Any, ...]


class _CompiledFloor(Compiled):
    line_type = "floor_top_up"

    def __init__(self, spec: Floor, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.amount = ctx.formula(spec.amount, "amount")
        self.of = ctx.formula(spec.of, "of")
        self.recoverable = spec.recoverable
        self.limit = ctx.number(spec.recovery_limit, "recovery_limit")
        self.forgive_on = spec.forgive_on
        self.forgive_when = ctx.condition(spec.forgive_when, "forgive_when")
        self._amount, self._of = self.amount.fn, self.of.fn
        self._explain = Explained(self.details, self.json_details)

    def check_entry(self, entry: Any) -> None:
        """Refuse a malformed ledger entry (see :func:`incentives.ledger.check_entries`)."""
        if not isinstance(entry, dict) or set(entry) != {"balance"}:
            raise ValueError('a draw entry is {"balance": "<amount>"}')
        if amount_of(entry, "balance") < 0:
            raise ValueError("a draw balance cannot be negative")

    def apply(self, s: PayeeState) -> None:
        if self.recoverable:
            self._draw(s)
            return
        env = s.env
        floor = self._amount(env)
        current = self._of(env)
        self.line(s, floor - current if current < floor else ZERO, explain=self._explain,
                  captured=FloorCapture(floor, current, self.amount.capture(env)))

    def emit(self, w: KernelWriter) -> bool:
        if self.recoverable:
            return False
        floor = w.evaluate(self.amount)
        current = w.evaluate(self.of)
        values = w.capture(self.amount)
        w.line(self, f"{floor} - {current} if {current} < {floor} else _ZERO",
               explain=self._explain, captured=w.record(
                   FloorCapture, floor=floor, before=current, floor_values=values))
        return True

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """A (non-recoverable) floor line's details from the values it was made with."""
        c = FloorCapture._make(captured)
        details: dict[str, Any] = {"floor": c.floor, "floor_formula": self.amount.source,
                                   "of": self.of.source, "before": c.before}
        if self.amount.constant is None:
            details["floor_substituted"] = self.amount.substituted(c.floor_values)
        return details

    def json_details(self, captured: Iterable[Any], amount: Decimal) -> dict[str, Any]:
        """What ``jsonable(line.details)`` gives, built straight from the capture."""
        floor, before, values = captured
        places = money_places(amount)
        details: dict[str, Any] = {"floor": money_text(floor, places),
                                   "floor_formula": self.amount.source, "of": self.of.source,
                                   "before": money_text(before, places)}
        if self.amount.constant is None:
            details["floor_substituted"] = self.amount.substituter()(values)
        return details

    def skip(self, s: PayeeState) -> None:
        super().skip(s)
        if self.recoverable:
            entry = s.ledger.get(self.id)
            s.env[f"{self.id}_balance"] = Decimal(entry["balance"]) if entry else ZERO

    def _draw(self, s: PayeeState) -> None:
        env = s.env
        floor = self.amount(env)
        current = self.of(env)
        entry = s.ledger.get(self.id)
        opening = Decimal(entry["balance"]) if entry else ZERO
        top_up = recovery = ZERO
        details: dict[str, Any] = {"floor": floor, "floor_formula": self.amount.source,
                                   "of": self.of.source, "before": current,
                                   "recoverable": True, "opening_balance": opening}
        if current < floor:
            top_up = self.round(floor - current)
        elif opening > 0:
            recovery = min(current - floor, opening)
            if self.limit is not None:
                limit = max(self.limit(env), ZERO)
                details["recovery_limit"] = limit
                recovery = min(recovery, limit)
            recovery = self.round(recovery)
        closing = opening + top_up - recovery
        forgiven = ZERO
        if closing and ((self.forgive_on is not None and _end(s.record.period) >= self.forgive_on)
                        or (self.forgive_when is not None and self.forgive_when(env))):
            forgiven, closing = closing, ZERO
        details.update(top_up=top_up, recovery=recovery, forgiven=forgiven,
                       closing_balance=closing)
        self.line(s, top_up - recovery, details,
                  type="floor_top_up" if recovery == 0 else "draw_recovery")
        if closing:
            s.ledger[self.id] = {"balance": str(closing)}
        else:
            s.ledger.pop(self.id, None)
        s.set_value(f"{self.id}_balance", closing)


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a floor's details: the floor and what it lifts."""
    return {"floor", "before", "of"} <= set(d)


@explains(Floor, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Floor | None) -> list[Step]:
    """A floor line: the floor, the amount before it and the top-up (with a recoverable
    draw: the balance owed, the recovery and what is forgiven)."""
    d, f = line.details, c.fmt
    of = str(d.get("of", "total"))
    floor, before = f.money(d.get("floor")), f.money(d.get("before"))
    steps = []
    formula = d.get("floor_formula")
    steps.append(Step(c.t("floor"), formula_shown(c, formula, d.get("floor_substituted")),
                      floor))
    steps.append(Step(c.t("{what} before", what=c.name(of)), None, before))
    if not d.get("recoverable"):
        steps.append(Step(c.t("top-up"), f"max(0, {floor} - {before})", f.money(line.amount)))
        return steps
    opening = f.money(d.get("opening_balance", ZERO))
    top_up, recovery = f.money(d.get("top_up", ZERO)), f.money(d.get("recovery", ZERO))
    steps.append(Step(c.t("owed at the start (draw balance)"), None, opening))
    steps.append(Step(c.t("top-up"), f"max(0, {floor} - {before})", top_up))
    if (dec(d.get("top_up")) or ZERO) == 0:
        bounds = [f"max(0, {before} - {floor})", opening]
        if "recovery_limit" in d:
            bounds.append(f.money(d["recovery_limit"]))
        steps.append(Step(c.t("recovered from pay above the floor"), f"min({', '.join(bounds)})",
                          recovery))
    closing = f"{opening} + {top_up} - {recovery}"
    if (dec(d.get("forgiven")) or ZERO) != 0:
        closing += f" - {f.money(d['forgiven'])}"
        steps.append(Step(c.t("forgiven"), None, f.money(d["forgiven"])))
    steps.append(Step(c.t("owed at the end (draw balance)"), closing,
                      f.money(d.get("closing_balance", ZERO))))
    steps.append(Step(c.t("amount"), f"{top_up} - {recovery}", f.money(line.amount)))
    return steps
