"""Leaders paid on their team: a bonus for a group's leader from the group's results.

A branch head or a key-account centre director is paid on what the team
did, alongside the members' own pay. In each group, the payees meeting the
``leader`` condition (and ``when``) are its leaders; the others meeting
``members`` (default: every payee who is not a leader) are the team. The
``aggregates`` are taken over the team, and ``amount`` is a formula over
the leader's own names and those aggregates (e.g. ``2000 *
min(team_revenue / team_quota, 1.5)``). A group with no leader pays no one;
a group with more than one is an error unless ``leaders: any`` (each is then
paid on the same team figures).

The policy publishes ``<id>`` (the leader's bonus; 0 for everybody else).

>>> from incentives import Plan, LeaderBonus
>>> plan = Plan(name="demo", inputs={"metrics": {"revenue": {}},
...                                  "attributes": {"role": {"type": "text"}}},
...             policies=[LeaderBonus(id="head", leader="role == 'head'",
...                                   aggregates={"team_revenue": {"sum": "revenue"}},
...                                   amount="team_revenue * 0.01")])
>>> run = plan.evaluate([
...     {"payee": "H", "period": "2026-05", "group": "g", "attributes": {"role": "head"},
...      "metrics": {"revenue": 0}},
...     {"payee": "M", "period": "2026-05", "group": "g", "attributes": {"role": "member"},
...      "metrics": {"revenue": 50000}}])
>>> str(run["H"].total), run["M"].lines
('500.00', [])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from ..errors import EvaluationError
from ..formulas import NameType
from ..runtime import Line, PayeeState, PeriodContext
from ..wording import Approx, Step, Wording
from .base import CompileContext, Expr, Identifier, explains
from .team import Aggregate, CompiledAggregates, TeamCompiled, TeamPolicy

__all__ = ["LeaderBonus"]


class LeaderBonus(TeamPolicy):
    """Pay each group's leader ``amount``, a formula over the team's ``aggregates``."""

    type: Literal["leader_bonus"] = "leader_bonus"
    leader: Expr
    members: Expr | None = None
    aggregates: dict[Identifier, Aggregate] = Field(default_factory=dict)
    amount: Expr
    leaders: Literal["one", "any"] = "one"

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledLeader(self, ctx)


class _CompiledLeader(TeamCompiled):
    line_type = "bonus"

    def __init__(self, spec: LeaderBonus, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec: LeaderBonus = spec
        self.leader = ctx.formula(spec.leader, "leader", expect=None)
        self.members = ctx.condition(spec.members, "members")
        for n in spec.aggregates:
            if n in ctx.names:
                raise ctx.error(f"aggregate {n!r} clashes with a name the plan already has",
                                "aggregates", n, suggestion="give the aggregate another name")
        self.aggregates = CompiledAggregates(dict(spec.aggregates), ctx, "aggregates")
        extra: dict[str, NameType] = {n: "number" for n in spec.aggregates}
        self.amount = ctx.formula(spec.amount, "amount", extra=extra)

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        leaders = [s for s in states if self.leader(s.env) and self.applies(s)]
        leader_ids = {s.payee for s in leaders}
        for s in states:
            if s.payee not in leader_ids:
                self.skip(s)
        if not leaders:
            return
        if len(leaders) > 1 and self.spec.leaders == "one":
            raise EvaluationError(
                f"leader bonus {self.id!r}: {len(leaders)} leaders in one group "
                f"({', '.join(s.payee for s in leaders)}); say 'leaders: any' to pay each",
                group=group)
        team = [s for s in states if s.payee not in leader_ids
                and (self.members is None or self.members(s.env))]
        aggs = self.aggregates(team, group)
        for s in leaders:
            env = {**s.env, **aggs}
            details: dict[str, Any] = {
                "team": [t.payee for t in team], "aggregates": aggs,
                "formula": self.amount.source, "substituted": self.amount.substitute(env),
            }
            self.line(s, self.amount(env), details)


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a leader bonus's details: the team and the formula."""
    return "team" in d and "formula" in d and "substituted" in d


@explains(LeaderBonus, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: LeaderBonus | None) -> list[Step]:
    """A leader bonus line: the team, its figures (team context), the formula and its
    substitution."""
    d, f = line.details, c.fmt
    a = Approx(f)
    steps = []
    team = d.get("team")
    if isinstance(team, list):
        steps.append(Step(c.t("team"), None, ", ".join(map(str, team)) or "-", team=True))
    aggs = d.get("aggregates")
    if isinstance(aggs, Mapping):
        steps += [Step(c.name(str(k)), None, a.result(v), team=True) for k, v in aggs.items()]
    steps.append(Step(c.t("formula"), f.expr(str(d.get("formula")))))
    steps.append(Step(c.t("amount"), f.expr(str(d.get("substituted"))), f.money(line.amount)))
    return steps
