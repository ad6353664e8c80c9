"""A cap: an upper limit on an earlier result or on the total. No cap unless stated.

The cap is a negative line that takes ``of`` down to ``limit``.

>>> from incentives import Plan, Cap, FormulaLine
>>> plan = Plan(name="demo", inputs={"metrics": {"sales": {}}},
...             policies=[FormulaLine(id="commission", amount="sales * 0.1"),
...                       Cap(id="ceiling", limit=5000)])
>>> plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": 80000}}]).results[0].total
Decimal('5000.00')
"""

from __future__ import annotations

from typing import Any, Literal

from ..money import ZERO
from ..runtime import PayeeState
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase

__all__ = ["Cap"]


class Cap(PolicyBase):
    """Hold ``of`` (default ``total``) at most at ``limit``."""

    type: Literal["cap"] = "cap"
    #: the most `of` may come to (a formula)
    limit: Expr
    #: what is capped: `total` (so far) or an earlier result
    of: Identifier = "total"

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledCap(self, ctx)


class _CompiledCap(Compiled):
    line_type = "cap"

    def __init__(self, spec: Cap, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.limit = ctx.formula(spec.limit, "limit")
        self.of = ctx.formula(spec.of, "of")

    def apply(self, s: PayeeState) -> None:
        limit = self.limit(s.env)
        current = self.of(s.env)
        cut = limit - current if current > limit else ZERO
        details: dict[str, Any] = {"limit": limit, "limit_formula": self.limit.source,
                                   "of": self.of.source, "before": current}
        if self.limit.constant is None:
            details["limit_substituted"] = self.limit.substitute(s.env)
        self.line(s, cut, details)
