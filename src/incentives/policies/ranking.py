"""Ranking flags: the top or bottom N (or share) of a group, flagged.

For promotion lists (``side: top``) and annual "survival of the fittest"
reviews (``side: bottom``). Payees of a group for whom ``when`` holds are
ranked by ``keys`` (best first); the ``count`` best or worst (or the
``share`` of them, rounded as ``share_rounding`` says; with both, the
smaller) get ``flag`` in their ``flags``. A cut-off inside a tie is settled
by ``cutoff_ties`` exactly as for honour awards: ``include`` all tied,
``exclude`` all tied, or ``keys`` (payee id ascending ranks higher, so at
the bottom the ids that sort last are flagged first).

The policy adds no line; it publishes ``<id>`` (a condition: flagged) and
``<id>_rank`` (1 = best, tied payees share a rank).

>>> from incentives import Plan, RankingFlag
>>> plan = Plan(name="demo", inputs={"metrics": {"sales": {}}},
...             policies=[RankingFlag(id="review", flag="bottom", side="bottom", count=1,
...                                   keys=["sales"], cutoff_ties="include")])
>>> run = plan.evaluate([{"payee": p, "period": "2026-05", "metrics": {"sales": v}}
...                      for p, v in [("A", 5), ("B", 1), ("C", 1)]])
>>> [r.flags for r in run]
[[], ['bottom'], ['bottom']]
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from ..formulas import NameType
from ..money import ZERO
from ..runtime import PayeeState, PeriodContext
from .base import CompileContext
from .team import (
    CutoffRule,
    RankKey,
    ShareRounding,
    TeamCompiled,
    TeamPolicy,
    count_for,
    rank,
    select,
)

__all__ = ["RankingFlag"]


class RankingFlag(TeamPolicy):
    """Flag the top or bottom ``count`` (or ``share``) of each group."""

    type: Literal["ranking_flag"] = "ranking_flag"
    flag: str
    side: Literal["top", "bottom"]
    keys: list[RankKey] = Field(min_length=1)
    count: int | None = Field(default=None, ge=0)
    share: Decimal | None = Field(default=None, ge=0, le=1)
    share_rounding: ShareRounding = "down"
    cutoff_ties: CutoffRule

    @model_validator(mode="after")
    def _check(self) -> RankingFlag:
        if self.count is None and self.share is None:
            raise ValueError("give 'count' and/or 'share'")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "bool", f"{self.id}_rank": "number"}

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledRankingFlag(self, ctx)


class _CompiledRankingFlag(TeamCompiled):
    def __init__(self, spec: RankingFlag, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec: RankingFlag = spec
        self.keys = [(ctx.formula(k.by, "keys", i, "by"), k.order)
                     for i, k in enumerate(spec.keys)]

    def skip(self, s: PayeeState) -> None:
        s.env[self.id] = False
        s.env[f"{self.id}_rank"] = ZERO

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        spec = self.spec
        members = self.applying(states)
        n = count_for(len(members), count=spec.count, share=spec.share,
                      rounding=spec.share_rounding)
        ranked = rank(members, self.keys)
        chosen, note = select(ranked, n, side=spec.side, rule=spec.cutoff_ties)
        ranks = ranked.competition_ranks()
        for p, s in enumerate(ranked.members):
            flagged = p in chosen
            if flagged:
                s.flags.append(spec.flag)
            explanation: dict[str, Any] = {"flag": spec.flag, "side": spec.side, "limit": n,
                                           "rank": ranks[p], "of": len(ranked),
                                           "flagged": flagged}
            if note is not None and s.payee in note["tied"]:
                explanation["cutoff_tie"] = note
            s.set_value(self.id, flagged, show=False)
            s.set_value(f"{self.id}_rank", Decimal(ranks[p]))
            s.values[f"{self.id}_explanation"] = explanation
