"""Spread figures per group: how unequal a chosen result is within each team.

For each group, over the members for whom ``when`` holds, the ``of``
formula (``total``, a policy id, any earlier result) is measured with
:mod:`incentives.spread`. Every member of the group (measured or not) gets
the group's figures as names later policies may read: ``<id>_ratio``
(max/min), ``<id>_cv`` (coefficient of variation), ``<id>_gini`` and
``<id>`` (the mean). A figure that is undefined for the group (a ratio with
a smallest amount of zero or less; cv and Gini with a mean of zero) reads as
0 in formulas and shows as ``null`` in the output. The figures also appear
once per group in ``Run.groups()`` and in the ``groups`` section of the JSON
output.

>>> from incentives import Plan, FormulaLine, SpreadFigures
>>> plan = Plan(name="demo", inputs={"metrics": {"b": {}}}, policies=[
...     FormulaLine(id="bonus", amount="b"), SpreadFigures(id="spread", of="bonus")])
>>> run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g", "metrics": {"b": b}}
...                      for p, b in [("A", 1000), ("B", 3000)]])
>>> run["A"].values["spread_ratio"], run["A"].values["spread_gini"]
(Decimal('3'), Decimal('0.25'))
"""

from __future__ import annotations

from typing import Any, Literal

from ..formulas import NameType
from ..money import ZERO
from ..runtime import PayeeState, PeriodContext
from ..spread import spread_figures
from .base import CompileContext, Expr
from .team import TeamCompiled, TeamPolicy

__all__ = ["SpreadFigures"]

_FIGURES = {"ratio": "ratio", "cv": "cv", "gini": "gini"}


class SpreadFigures(TeamPolicy):
    """Max/min ratio, coefficient of variation and Gini of ``of`` within each group."""

    type: Literal["spread"] = "spread"
    of: Expr

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", **{f"{self.id}_{k}": "number" for k in _FIGURES}}

    def group_names(self) -> list[str]:
        """Names whose value is the same for every member of a group."""
        return list(self.publishes())

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledSpread(self, ctx)


class _CompiledSpread(TeamCompiled):
    def __init__(self, spec: SpreadFigures, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.of = ctx.formula(spec.of, "of")

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        measured = [s for s in states if self.applies(s)]
        figures: dict[str, Any] = {}
        if measured:
            figs = spread_figures([self.of(s.env) for s in measured])
            figures = {self.id: figs["mean"],
                       **{f"{self.id}_{k}": figs[v] for k, v in _FIGURES.items()}}
        else:
            figures = {name: None for name in (self.id, *(f"{self.id}_{k}" for k in _FIGURES))}
        for s in states:
            for name, value in figures.items():
                s.env[name] = ZERO if value is None else value
                s.values[name] = value
