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
"""

from __future__ import annotations

from typing import Literal

from ..money import ZERO
from ..runtime import PayeeState
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase

__all__ = ["Floor"]


class Floor(PolicyBase):
    """Top ``of`` (default ``total``) up to ``amount``. Non-recoverable: the top-up is a gift."""

    type: Literal["floor"] = "floor"
    amount: Expr
    of: Identifier = "total"

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledFloor(self, ctx)


class _CompiledFloor(Compiled):
    line_type = "floor_top_up"

    def __init__(self, spec: Floor, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.amount = ctx.formula(spec.amount, "amount")
        self.of = ctx.formula(spec.of, "of")

    def apply(self, s: PayeeState) -> None:
        floor = self.amount(s.env)
        current = self.of(s.env)
        top_up = floor - current if current < floor else ZERO
        self.line(s, top_up, {"floor": floor, "of": self.of.source, "before": current})
