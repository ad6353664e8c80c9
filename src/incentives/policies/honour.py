"""Honour awards: a title (and optionally cash) for those who meet criteria.

Among the payees of a group for whom ``when`` holds, those meeting
``criteria`` are candidates. They are ranked by ``keys`` (best first); at
most ``max`` of them (and at most ``max_share`` of the group's eligible
payees, rounded as ``share_rounding`` says) get the ``title`` and ``cash``.
When the cut-off falls inside a tie (payees equal on every key), the stated
``cutoff_ties`` rule settles it: ``include`` all of them, ``exclude`` all of
them, or break the tie by ``keys``, i.e. by payee id, ascending, the final
key (see :mod:`incentives.policies.team`).

The title goes to the payee's ``titles``; the cash (if any) is a line.
Candidates who miss out get a zero line (when there is cash) whose details
say why. The policy publishes ``<id>`` (the cash), ``<id>_awarded`` (a
condition) and ``<id>_rank`` (rank among the candidates, 0 for others).

>>> from incentives import Plan, Honour
>>> plan = Plan(name="demo", inputs={"metrics": {"satisfaction": {}, "revenue": {}}},
...             policies=[Honour(id="star", title="Service Star", criteria="satisfaction >= 95",
...                              keys=["satisfaction", "revenue"], max=1, cutoff_ties="keys",
...                              cash=300)])
>>> run = plan.evaluate([
...     {"payee": "A", "period": "2026-05", "metrics": {"satisfaction": 97, "revenue": 100}},
...     {"payee": "B", "period": "2026-05", "metrics": {"satisfaction": 97, "revenue": 200}}])
>>> run["B"].titles, str(run["B"].total), run["A"].titles
(['Service Star'], '300.00', [])
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from ..formulas import NameType
from ..i18n import TIE_RULE
from ..money import ZERO
from ..runtime import Line, PayeeState, PeriodContext
from ..wording import Step, Wording, dec
from .base import CompileContext, Expr, explains
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

__all__ = ["Honour"]


class Honour(TeamPolicy):
    """A title (with optional cash) for the best candidates meeting ``criteria``."""

    type: Literal["honour"] = "honour"
    #: the title awarded (written ``title:`` in a plan)
    award: str = Field(alias="title")
    criteria: Expr = "True"
    keys: list[RankKey] = Field(min_length=1)
    max: int | None = Field(default=None, ge=0)
    max_share: Decimal | None = Field(default=None, ge=0, le=1)
    share_rounding: ShareRounding = "down"
    cutoff_ties: CutoffRule
    cash: Expr | None = None

    @model_validator(mode="after")
    def _check(self) -> Honour:
        if self.max is None and self.max_share is None:
            raise ValueError("give 'max' (at most N per group) and/or 'max_share'")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_awarded": "bool", f"{self.id}_rank": "number"}

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledHonour(self, ctx)


class _CompiledHonour(TeamCompiled):
    line_type = "award"

    def __init__(self, spec: Honour, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec: Honour = spec
        self.criteria = ctx.formula(spec.criteria, "criteria", expect=None)
        self.keys = [(ctx.formula(k.by, "keys", i, "by"), k.order)
                     for i, k in enumerate(spec.keys)]
        self.cash = ctx.number(spec.cash, "cash")

    def skip(self, s: PayeeState) -> None:
        super().skip(s)
        s.env[f"{self.id}_awarded"] = False
        s.env[f"{self.id}_rank"] = ZERO

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        spec = self.spec
        eligible = self.applying(states)
        candidates = [s for s in eligible if self.criteria(s.env)]
        limit = count_for(len(eligible), count=spec.max, share=spec.max_share,
                          rounding=spec.share_rounding)
        ranked = rank(candidates, self.keys)
        chosen, note = select(ranked, limit, side="top", rule=spec.cutoff_ties)
        ranks = ranked.competition_ranks()
        position = {s.payee: p for p, s in enumerate(ranked.members)}
        for s in eligible:
            p = position.get(s.payee)
            won = p is not None and p in chosen
            details: dict[str, Any] = {"title": spec.award, "criteria": self.criteria.source,
                                       "met_criteria": p is not None, "candidates": len(ranked),
                                       "limit": limit}
            if p is not None:
                details["rank"] = ranks[p]
                details["keys"] = [str(v) for v in ranked.values[p]]
                if note is not None and s.payee in note["tied"]:
                    details["cutoff_tie"] = note
                if not won and chosen:
                    # how far the first key is from the last title-holder's (for statements)
                    last = ranked.values[max(chosen)][0]
                    mine = ranked.values[p][0]
                    details["gap_to_title"] = (last - mine if self.keys[0][1] == "desc"
                                               else mine - last)
                if not won:
                    details["reason"] = ("tied at the cut-off, excluded by the rule"
                                         if note is not None and s.payee in note["tied"]
                                         else "ranked below the cut-off")
                s.set_value(f"{self.id}_rank", Decimal(ranks[p]), show=False)
            else:
                details["reason"] = "does not meet the criteria"
                s.env[f"{self.id}_rank"] = ZERO
            s.set_value(f"{self.id}_awarded", won, show=False)
            if won:
                s.titles.append(spec.award)
            if self.cash is not None:
                amount = self.cash(s.env) if won else ZERO
                self.line(s, amount, details)
            else:
                s.env[self.id] = ZERO


# ------------------------------------------------------------------ statement
#: the rules for a tie at the cut-off, named on a statement in the catalogues' context
#: TIE_RULE (incentives.i18n)
_TIE_RULES = ("include", "exclude", "keys")


def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is an honour's details: the criteria, whether they were met, the candidates."""
    return "criteria" in d and "met_criteria" in d and "candidates" in d


@explains(Honour, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Honour | None) -> list[Step]:
    """An honour line: the criteria, the rank among candidates, a tie at the cut-off and
    whether the title is awarded."""
    d, f = line.details, c.fmt
    verdict = c.t("met") if d.get("met_criteria") else c.t("not met")
    steps = [Step(c.t("criteria"), None, f"{c.fmt.expr(str(d.get('criteria')))}: {verdict}")]
    if d.get("rank") is not None:
        keys = ", ".join(str(k) for k in d.get("keys", []))
        steps.append(Step(c.t("rank {rank} of {n} candidates (at most {limit} awarded); ranked by",
                              rank=d["rank"], n=d.get("candidates"), limit=d.get("limit")),
                          None, keys or None))
    tie = d.get("cutoff_tie")
    if isinstance(tie, Mapping):
        rule = str(tie.get("rule"))
        rule = c.t_in(TIE_RULE, rule) if rule in _TIE_RULES else rule
        steps.append(Step(c.t("tied at the cut-off: {tied}; rule {rule}: {chosen} chosen",
                              tied=", ".join(map(str, tie.get("tied", []))), rule=rule,
                              chosen=", ".join(map(str, tie.get("chosen", [])))), team=True))
    title = str(d.get("title", ""))
    gap = dec(d.get("gap_to_title"))
    if gap is not None:
        rank_keys = list(getattr(spec, "keys", []) or [])
        key = c.name(str(rank_keys[0].by)) if rank_keys else "score"
        hint = (c.t("{gap} more {by} draws level with the last holder of {title}",
                    gap=c.fmt.num(gap), by=key, title=title) if gap > 0
                else c.t("level with the last holder of {title} on {by}; the later keys decided",
                         by=key, title=title))
        c.hints.append(f"{line.label}: {hint}")
    reason = c.say(d.get("reason", ""))
    won = title in c.result.titles and not d.get("reason")
    steps.append(Step(c.t("{title} awarded", title=title) if won else
                      c.t("{title} not awarded ({reason})", title=title, reason=reason), None,
                      f.money(line.amount)))
    return steps
