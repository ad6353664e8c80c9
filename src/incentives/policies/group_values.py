"""Group values: figures over a group's members, given to every member.

``values`` names aggregates (``{branch_revenue: {sum: revenue}}``; one of
``sum``, ``mean``, ``min``, ``max`` of a formula, or ``count`` of a
condition), taken over the group's members for whom ``when`` holds and
published to every member of the group, so later policies (a leader's
bonus, a pool, a modifier) can read them. ``<id>`` is the number of members
counted. The figures also appear once per group in ``Run.groups()`` and in
the ``groups`` section of the JSON output.

>>> from incentives import Plan, GroupValues
>>> plan = Plan(name="demo", inputs={"metrics": {"revenue": {}}}, policies=[
...     GroupValues(id="branch", values={"branch_revenue": {"sum": "revenue"}})])
>>> run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g", "metrics": {"revenue": v}}
...                      for p, v in [("A", 100), ("B", 250)]])
>>> run["A"].values["branch_revenue"]
Decimal('350')
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from ..formulas import NameType
from ..runtime import PayeeState, PeriodContext
from .base import CompileContext, Identifier
from .team import Aggregate, CompiledAggregates, TeamCompiled, TeamPolicy

__all__ = ["GroupValues"]


class GroupValues(TeamPolicy):
    """Aggregates over each group's members, published to every member."""

    type: Literal["group_values"] = "group_values"
    values: dict[Identifier, Aggregate] = Field(min_length=1)

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", **{n: "number" for n in self.values}}

    def group_names(self) -> list[str]:
        """Names whose value is the same for every member of a group."""
        return list(self.publishes())

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledGroupValues(self, ctx)


class _CompiledGroupValues(TeamCompiled):
    def __init__(self, spec: GroupValues, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.aggregates = CompiledAggregates(dict(spec.values), ctx, "values")

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        counted = [s for s in states if self.applies(s)]
        values = self.aggregates(counted, group)
        for s in states:
            s.set_value(self.id, Decimal(len(counted)))
            for name, value in values.items():
                s.set_value(name, value)
