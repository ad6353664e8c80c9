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

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..money import ZERO
from ..runtime import Explained, Line, PayeeState, money_places, money_text
from ..wording import Step, Wording, formula_shown
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase, explains

if TYPE_CHECKING:
    from ..kernel import KernelWriter

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


class CapCapture(NamedTuple):
    """What a cap line is explained from (captured when it is made)."""

    #: the cap
    limit: Decimal
    #: what was capped (``of``), before the cap
    before: Decimal
    #: the values of the limit formula's names
    limit_values: tuple[Any, ...]


class _CompiledCap(Compiled):
    line_type = "cap"

    def __init__(self, spec: Cap, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.limit = ctx.formula(spec.limit, "limit")
        self.of = ctx.formula(spec.of, "of")
        self._explain = Explained(self.details, self.json_details)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        limit = self.limit(env)
        current = self.of(env)
        self.line(s, limit - current if current > limit else ZERO, explain=self._explain,
                  captured=CapCapture(limit, current, self.limit.capture(env)))

    def emit(self, w: KernelWriter) -> bool:
        limit = w.evaluate(self.limit)
        current = w.evaluate(self.of)
        values = w.capture(self.limit)
        w.line(self, f"{limit} - {current} if {current} > {limit} else _ZERO",
               explain=self._explain, captured=w.record(
                   CapCapture, limit=limit, before=current, limit_values=values))
        return True

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from the values captured when it was made."""
        c = CapCapture._make(captured)
        details: dict[str, Any] = {"limit": c.limit, "limit_formula": self.limit.source,
                                   "of": self.of.source, "before": c.before}
        if self.limit.constant is None:
            details["limit_substituted"] = self.limit.substituted(c.limit_values)
        return details

    def json_details(self, captured: Iterable[Any], amount: Decimal) -> dict[str, Any]:
        """What ``jsonable(line.details)`` gives, built straight from the capture."""
        limit, before, values = captured
        places = money_places(amount)
        details: dict[str, Any] = {"limit": money_text(limit, places),
                                   "limit_formula": self.limit.source, "of": self.of.source,
                                   "before": money_text(before, places)}
        if self.limit.constant is None:
            details["limit_substituted"] = self.limit.substituter()(values)
        return details


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a cap's details: the limit and what it caps."""
    return {"limit", "before", "of"} <= set(d)


@explains(Cap, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Cap | None) -> list[Step]:
    """A cap line: the limit, the amount before it and the cut ``-max(0, before - limit)``."""
    d, f = line.details, c.fmt
    of = str(d.get("of", "total"))
    limit, before = f.money(d.get("limit")), f.money(d.get("before"))
    formula = d.get("limit_formula")
    return [
        Step(c.t("limit"), formula_shown(c, formula, d.get("limit_substituted")), limit),
        Step(c.t("{what} before", what=c.name(of)), None, before),
        Step(c.t("cut"), f"-max(0, {before} - {limit})", f.money(line.amount)),
    ]
