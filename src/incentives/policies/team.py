"""What team-scoped policies share: ranking keys, tie blocks, cut-offs, group aggregates.

Ranking is always total and deterministic. Payees are ordered by their keys
(each ``desc``: higher is better, or ``asc``: lower is better); payees equal
on every key form a *tie block*. Where a rule breaks the remaining ties
"by keys", the final key is the payee id, ascending: of two payees tied on
every stated key, the one whose id sorts first ranks higher.

A cut-off (the N best, the N worst) that falls inside a tie block is
settled by the stated ``cutoff_ties`` rule:

- ``include``: every payee of the block is in (more than N may be chosen);
- ``exclude``: no payee of the block is in (fewer than N may be chosen);
- ``keys``: the block is broken by the final key (payee id) and exactly N
  are chosen.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, model_validator

from ..errors import EvaluationError
from ..formulas import Formula, NameType
from ..money import ZERO
from ..runtime import PayeeState
from .base import CompileContext, Compiled, Expr, PolicyBase, StrictModel

__all__ = [
    "Aggregate",
    "CutoffRule",
    "RankKey",
    "Ranked",
    "TeamCompiled",
    "TeamPolicy",
    "count_for",
    "rank",
    "select",
]

CutoffRule = Literal["include", "exclude", "keys"]
Across = Literal["group", "population"]
ShareRounding = Literal["down", "up", "nearest"]


class TeamPolicy(PolicyBase):
    """A policy that sees every payee of its group at once.

    With ``across: population`` it sees every payee of the period instead
    (one province-wide contest, say), whatever their group.
    """

    across: Across = "group"

    scope = "group"


class TeamCompiled(Compiled):
    """The compiled half of a :class:`TeamPolicy`."""

    def __init__(self, spec: TeamPolicy, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.scope = spec.across


def _key_shorthand(value: Any) -> Any:
    if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool):
        return {"by": value}
    return value


class _RankKey(StrictModel):
    """One ranking key: a formula, and whether higher (``desc``) or lower (``asc``) is better."""

    by: Expr
    order: Literal["desc", "asc"] = "desc"

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        """The schema accepts the shorthand too: ``revenue``, a formula alone, is short for ``{by: revenue}``."""
        return {"anyOf": [{"type": "string"}, {"type": "number"}, handler(core_schema)]}


#: A ranking key; ``"revenue"`` is short for ``{by: revenue, order: desc}``.
RankKey = Annotated[_RankKey, BeforeValidator(_key_shorthand)]


class Aggregate(StrictModel):
    """A figure over a group's members: exactly one of ``sum``, ``mean``, ``min``,
    ``max`` (each a formula) or ``count`` (a condition)."""

    sum: Expr | None = None
    mean: Expr | None = None
    min: Expr | None = None
    max: Expr | None = None
    count: Expr | None = None

    @model_validator(mode="after")
    def _one(self) -> Aggregate:
        given = [k for k in ("sum", "mean", "min", "max", "count") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an aggregate is exactly one of sum, mean, min, max, count "
                             f"(got {', '.join(given) or 'none'})")
        return self

    @property
    def op(self) -> str:
        for k in ("sum", "mean", "min", "max", "count"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def expr(self) -> str:
        value = getattr(self, self.op)
        assert isinstance(value, str)
        return value


class CompiledAggregates:
    """Aggregates compiled against a context; evaluated over a list of states."""

    def __init__(self, specs: dict[str, Aggregate], ctx: CompileContext, *path: str | int) -> None:
        self.items: list[tuple[str, str, Formula]] = []
        for name, agg in specs.items():
            expect: NameType | None = None if agg.op == "count" else "number"
            f = ctx.formula(agg.expr, *path, name, agg.op, expect=expect)
            self.items.append((name, agg.op, f))

    def __call__(self, members: Sequence[PayeeState], group: str | None) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for name, op, f in self.items:
            if op == "count":
                out[name] = Decimal(sum(1 for s in members if f(s.env)))
                continue
            fn = f.fn
            values = [fn(s.env) for s in members]
            if op == "sum":
                out[name] = sum(values, ZERO)
            elif not values:
                raise EvaluationError(f"aggregate {name!r} ({op}) of a group with no members",
                                      group=group)
            elif op == "mean":
                out[name] = sum(values, ZERO) / len(values)
            elif op == "min":
                out[name] = min(values)
            else:
                out[name] = max(values)
        return out


class Ranked:
    """Members in ranking order (best first), with their key values and tie blocks."""

    def __init__(self, members: list[PayeeState], values: list[tuple[Decimal, ...]],
                 orders: Sequence[str]) -> None:
        keys: list[tuple[Any, ...]]
        if len(orders) == 1:  # the common case, keyed without a function per member
            if orders[0] == "desc":
                keys = [(-v[0], m.payee) for v, m in zip(values, members, strict=True)]
            else:
                keys = [(v[0], m.payee) for v, m in zip(values, members, strict=True)]
        else:
            keys = [(*(-x if o == "desc" else x for x, o in zip(v, orders, strict=True)),
                     m.payee) for v, m in zip(values, members, strict=True)]
        idx = sorted(range(len(members)), key=keys.__getitem__)
        #: for each position, the index of its member in the list given
        self.index = idx
        self.members = list(map(members.__getitem__, idx))
        self.values = list(map(values.__getitem__, idx))
        #: the positions (0-based) of each tie block, best first
        self.blocks: list[list[int]] = [
            list(block) for _, block in groupby(range(len(idx)), self.values.__getitem__)]

    def __len__(self) -> int:
        return len(self.members)

    def competition_ranks(self) -> list[int]:
        """Rank per position: 1 + the number of payees strictly better ("1224")."""
        ranks = [0] * len(self.members)
        for block in self.blocks:
            for pos in block:
                ranks[pos] = block[0] + 1
        return ranks

    def block_of(self) -> list[list[int]]:
        """For each position, the positions of its tie block."""
        out: list[list[int]] = [[] for _ in self.members]
        for block in self.blocks:
            for pos in block:
                out[pos] = block
        return out


def rank(members: list[PayeeState], keys: Sequence[tuple[Formula, str]]) -> Ranked:
    """Order ``members`` by ``keys`` (formula, ``desc``/``asc``), best first, payee id last."""
    values = [tuple(rank_number(f(s.env), f) for f, _ in keys) for s in members]
    return Ranked(members, values, [o for _, o in keys])


def rank_number(value: Any, f: Formula) -> Decimal:
    """``value`` (what the ranking key ``f`` gave) as a Decimal, or an EvaluationError."""
    if value.__class__ is Decimal:
        return value
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise EvaluationError(f"ranking key {f.source!r} is not a number ({value!r})")
    return Decimal(value)


def count_for(n: int, *, count: int | None, share: Decimal | None,
              rounding: ShareRounding) -> int | None:
    """How many may be chosen among ``n``: ``count``, or ``share`` of ``n`` rounded as stated.

    >>> count_for(15, count=None, share=Decimal("0.1"), rounding="down")
    1
    >>> count_for(15, count=None, share=Decimal("0.1"), rounding="up")
    2
    """
    limits: list[int] = []
    if count is not None:
        limits.append(count)
    if share is not None:
        mode = {"down": decimal.ROUND_FLOOR, "up": decimal.ROUND_CEILING,
                "nearest": decimal.ROUND_HALF_UP}[rounding]
        limits.append(int((share * n).to_integral_value(rounding=mode)))
    return min(limits) if limits else None


def select(ranked: Ranked, n: int | None, *, side: Literal["top", "bottom"],
           rule: CutoffRule) -> tuple[set[int], dict[str, Any] | None]:
    """Positions chosen as the ``n`` best (``top``) or worst (``bottom``).

    Returns the chosen positions and, when the cut-off fell inside a tie
    block, a description of how the rule settled it.
    """
    total = len(ranked)
    if n is None or n >= total:
        return set(range(total)), None
    chosen: set[int] = set()
    blocks = ranked.blocks if side == "top" else list(reversed(ranked.blocks))
    note: dict[str, Any] | None = None
    for block in blocks:
        room = n - len(chosen)
        if room <= 0:
            break
        if len(block) <= room:
            chosen.update(block)
            continue
        tied = [ranked.members[p].payee for p in block]
        if rule == "include":
            chosen.update(block)
            taken = tied
        elif rule == "exclude":
            taken = []
        else:
            ordered = block if side == "top" else list(reversed(block))
            picked = ordered[:room]
            chosen.update(picked)
            taken = [ranked.members[p].payee for p in sorted(picked)]
        note = {"rule": rule, "tied": tied, "places_left": room, "chosen": taken}
        break
    return chosen, note


def evaluate_when(when: Callable[[dict[str, Any]], Any] | None,
                  states: Sequence[PayeeState]) -> list[bool]:
    """Whether each state's ``when`` holds (all, with no condition)."""
    if when is None:
        return [True] * len(states)
    return [bool(when(s.env)) for s in states]
