"""Bonus pools: a group's pool shared by weights, within per-person floors and caps.

For each group, the ``pool`` is a formula (a fixed amount, or a figure over
the group's results: declare group ``aggregates`` such as ``{branch_revenue:
{sum: revenue}}`` and write ``pool: branch_revenue * 0.05``). Aggregates are
taken over every member of the group (``when`` does not filter them); the
pool is shared among the members for whom ``when`` holds, and is rounded
once, to the plan's rounding, before it is shared.

Each sharer's share is ``f x weight`` with one common factor ``f`` for
everybody, except those held at their ``floor`` or ``cap`` (water-filling,
:func:`incentives.allocation.fill`). The shares are then rounded to the
plan's quantum so that they add up to the pool exactly, by largest remainder
(ties: payee id ascending), never past a bound (a floor is rounded up and a
cap down to the quantum first). ``floor`` and ``cap`` are formulas per
person and may read ``pool``, ``mean_share`` (pool / sharers) and
``sharers``, besides the aggregates and the payee's own names. Floors above
the pool, or caps below it, are an :class:`~incentives.InfeasibleError` with
the numbers.

The policy publishes ``<id>`` (the share) and ``<id>_pool`` (the group's
pool, the same for every member).

>>> from incentives import Plan, BonusPool
>>> plan = Plan(name="demo", inputs={"metrics": {"score": {}}}, policies=[
...     BonusPool(id="pool", pool=9000, weight="score",
...               floor="0.5 * mean_share", cap="1.5 * mean_share")])
>>> run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g", "metrics": {"score": s}}
...                      for p, s in [("A", 70), ("B", 20), ("C", 10)]])
>>> [str(r.total) for r in run]
['4500.00', '3000.00', '1500.00']
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from pydantic import model_validator

from ..allocation import Fill, fill, round_to_total
from ..errors import EvaluationError, InfeasibleError
from ..formulas import NameType
from ..money import ZERO
from ..runtime import Line, PayeeState, PeriodContext
from ..wording import Approx, Step, Wording, dec
from .base import CompileContext, Expr, Identifier, PathError, explains
from .team import Aggregate, CompiledAggregates, TeamCompiled, TeamPolicy

__all__ = ["BonusPool"]

_SHARE_NAMES: dict[str, NameType] = {"pool": "number", "mean_share": "number",
                                     "sharers": "number"}


class BonusPool(TeamPolicy):
    """A group pool shared by ``weight`` with optional per-person ``floor`` and ``cap``."""

    type: Literal["bonus_pool"] = "bonus_pool"
    aggregates: dict[Identifier, Aggregate] = {}
    pool: Expr
    weight: Expr = "1"
    floor: Expr | None = None
    cap: Expr | None = None

    @model_validator(mode="after")
    def _bounds_can_hold(self) -> BonusPool:
        # numbers written in the plan: a floor above the cap can never be met
        low, high = _literal(self.floor), _literal(self.cap)
        if low is not None and high is not None and low > high:
            raise PathError(f"the per-person floor {low} is above the cap {high}: "
                            "both cannot hold", "floor")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_pool": "number"}

    def group_names(self) -> list[str]:
        """Names whose value is the same for every member of a group."""
        return [f"{self.id}_pool"]

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledPool(self, ctx)


def _literal(expr: str | None) -> Decimal | None:
    """The number a formula is, when it is just a number; else None."""
    if expr is None:
        return None
    try:
        value = Decimal(expr.strip())
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


_PAYEE = attrgetter("payee")


class PoolFound(NamedTuple):
    """What a bonus pool found for a group, shared by its sharers' lines (each explained
    from it and the sharer's index)."""

    #: the group's pool (rounded)
    pool: Decimal
    #: how many share it
    sharers: int
    #: the group's aggregates, by name
    aggregates: dict[str, Decimal]
    #: each sharer's weight
    weights: list[Decimal]
    #: the exact shares, the common factor and who is held at a bound
    shares: Fill
    #: each sharer's floor (None without one)
    floors: list[Decimal | None]
    #: each sharer's cap (None without one)
    caps: list[Decimal | None]


class _CompiledPool(TeamCompiled):
    line_type = "bonus"

    def __init__(self, spec: BonusPool, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.quantum = ctx.rounding.quantum
        self.aggregates = CompiledAggregates(dict(spec.aggregates), ctx, "aggregates")
        agg_names: dict[str, NameType] = {n: "number" for n in spec.aggregates}
        for n in agg_names:
            if n in ctx.names or n in _SHARE_NAMES:
                raise ctx.error(f"aggregate {n!r} clashes with a name the plan already has",
                                "aggregates", n, suggestion="give the aggregate another name")
        self.pool = ctx.formula(spec.pool, "pool", extra=agg_names)
        extra = {**agg_names, **_SHARE_NAMES}
        self.weight = ctx.formula(spec.weight, "weight", extra=agg_names)
        self.floor = ctx.formula(spec.floor, "floor", extra=extra) if spec.floor else None
        self.cap = ctx.formula(spec.cap, "cap", extra=extra) if spec.cap else None

    def skip(self, s: PayeeState) -> None:
        super().skip(s)
        s.env[f"{self.id}_pool"] = ZERO

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        sharers = self.applying(states)
        if not sharers:
            return
        sharers.sort(key=_PAYEE)
        aggs = self.aggregates(states, group)
        if self.pool.names <= aggs.keys() | period.base_env.keys() - {"total"}:
            # over parameters and aggregates only: the same for every sharer
            pools = {self.pool({**period.base_env, **aggs})}
        else:
            pools = {self.pool({**s.env, **aggs}) for s in sharers}
        if len(pools) != 1:
            raise EvaluationError(
                f"pool {self.id!r}: the pool formula differs between members "
                f"({', '.join(sorted(map(str, pools)))}); write it over parameters and "
                "aggregates", group=group)
        pool = self.round(pools.pop())
        if pool < 0:
            raise InfeasibleError(f"pool {self.id!r} is negative ({pool})", group=group)
        n = len(sharers)
        mean_share = pool / n
        weights: list[Decimal] = []
        floors: list[Decimal | None] = []
        caps: list[Decimal | None] = []
        shared = {**aggs, "pool": pool, "mean_share": mean_share, "sharers": Decimal(n)}
        # formulas that read none of the shared names are evaluated on the payee's own
        # names (no merged copy per sharer)
        merge = any(f is not None and not f.names.isdisjoint(shared)
                    for f in (self.weight, self.floor, self.cap))
        weight = self.weight.fn
        if not (merge or self.floor or self.cap):
            # the common case: weights alone, each over the payee's own names
            weights = [weight(s.env) for s in sharers]
            floors, caps = [None] * n, [None] * n
        else:
            for s in sharers:
                env = {**s.env, **shared} if merge else s.env
                weights.append(weight(env))
                floors.append(self.floor(env) if self.floor else None)
                caps.append(self.cap(env) if self.cap else None)
        if min(weights) < 0:
            i = next(i for i, w in enumerate(weights) if w < 0)
            raise InfeasibleError(f"pool {self.id!r}: payee {sharers[i].payee!r} has a "
                                  f"negative weight ({weights[i]})", group=group)
        try:
            shares = fill(pool, weights, lower=floors, upper=caps)
            # (the sharers are in payee order: ties go to the payee ids that sort first)
            paid = round_to_total(shares.amounts, pool, self.quantum, lower=floors, upper=caps)
        except InfeasibleError as exc:
            raise InfeasibleError(f"pool {self.id!r} of {pool} among {n}: {exc.message}",
                                  group=group) from None
        # what every sharer's details are built from, when first read
        found = PoolFound(pool, n, aggs, weights, shares, floors, caps)
        name = f"{self.id}_pool"
        for s in sharers:
            s.env[name] = s.values[name] = pool
        self.group_lines(sharers, paid, self.details, found)

    def details(self, found: PoolFound, i: int) -> dict[str, Any]:
        """Sharer ``i``'s details from what :meth:`apply_group` found for the group."""
        shares = found.shares
        return {"pool": found.pool, "sharers": found.sharers, "aggregates": found.aggregates,
                "weight": found.weights[i], "factor": shares.factor, "floor": found.floors[i],
                "cap": found.caps[i], "held_at": shares.held[i],
                "exact_share": shares.amounts[i]}


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a bonus pool's details: the pool and its sharers."""
    return "pool" in d and "sharers" in d


@explains(BonusPool, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: BonusPool | None) -> list[Step]:
    """A bonus pool line: the pool and its sharers (team context), the payee's share and
    its bounds, and what is paid."""
    d, f = line.details, c.fmt
    a = Approx(f)
    steps = [Step(c.t("pool, shared among {n}", n=d.get("sharers")), None, f.money(d.get("pool")),
                  team=True)]
    aggs = d.get("aggregates")
    if isinstance(aggs, Mapping):
        steps += [Step(c.name(str(k)), None, a.result(v), team=True) for k, v in aggs.items()]
    weight, factor = dec(d.get("weight")), dec(d.get("factor"))
    if weight is not None and factor is not None:
        expr = f"{a(weight)} x {a(factor)}"
        steps.append(Step(c.t("share: weight x common factor"), expr, a.result(weight * factor)))
    held = str(d.get("held_at") or "")
    if held:
        is_floor = held in ("lower", "floor", "min")
        bound = d.get("floor") if is_floor else d.get("cap")
        steps.append(Step(c.t("held at the floor") if is_floor else c.t("held at the cap"), None,
                          f.money(bound)))
    steps.append(Step(c.t("paid (to the cent, the shares adding up to the pool exactly)"), None,
                      f.money(line.amount)))
    return steps
