"""Competition awards (contests): prizes by rank within a group.

Payees for whom ``when`` holds enter; those whose ``score`` reaches the
``threshold`` (at least it with ``order: desc``, at most it with ``asc``)
qualify and are ranked within their group. Prizes go by position, from
``prizes`` (1st, 2nd, ...) or from percentile ``bands`` (position ``p`` of
``n`` qualified payees is in a band with ``top: t`` when ``p <= t * n``; the
first such band pays). With fewer than ``min_participants`` qualified
payees, nobody wins a prize.

Ties on the score are settled by the stated rule (``ties``, required):

- ``share``: the tied payees pool the prizes of the positions they occupy
  and split the pool evenly, exactly (:func:`incentives.split`: cents that
  cannot be split evenly go one each to the payee ids that sort first);
- ``best``: each tied payee gets the prize of the best position of the tie;
- ``keys``: ties are broken by ``tie_keys``, then by payee id (ascending).

Every entrant gets a line (zero without a prize) whose details hold the
score, the rank, the tie and how it was settled, and ``gap_to_next_prize``:
how much more score (less, with ``asc``) draws level with the lowest-placed
payee who gets a larger prize. The policy publishes ``<id>`` (the prize) and
``<id>_rank`` (1 = best; tied payees share a rank under ``share`` and
``best``; 0 for payees not ranked).

>>> from incentives import Plan, Contest
>>> plan = Plan(name="demo", inputs={"metrics": {"score": {}}}, policies=[
...     Contest(id="contest", score="score", prizes=[800, 500, 200], threshold=70, ties="share")])
>>> run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g", "metrics": {"score": s}}
...                      for p, s in [("A", 91), ("B", 85), ("C", 85), ("D", 72), ("E", 64)]])
>>> [str(r.total) for r in run]
['800.00', '350.00', '350.00', '0.00', '0.00']
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import Field, model_validator

from ..errors import EvaluationError
from ..formulas import Formula, NameType
from ..money import ZERO, split, whole
from ..runtime import Line, PayeeState, PeriodContext
from ..wording import N_, Approx, Step, Wording, dec, is_name, round_like_plan
from .base import CompileContext, Expr, StrictModel, explains
from .team import Ranked, RankKey, TeamCompiled, TeamPolicy, rank, rank_number

__all__ = ["Contest", "PrizeBand"]


class PrizeBand(StrictModel):
    """A percentile band: the positions within the ``top`` share of qualified payees."""

    top: Decimal = Field(gt=0, le=1)
    prize: Expr


class Contest(TeamPolicy):
    """Prizes by rank within a group (see the module docs for the tie rules)."""

    type: Literal["contest"] = "contest"
    score: Expr
    order: Literal["desc", "asc"] = "desc"
    threshold: Expr | None = None
    prizes: list[Expr] | None = None
    bands: list[PrizeBand] | None = None
    min_participants: int = Field(default=1, ge=1)
    ties: Literal["share", "best", "keys"]
    tie_keys: list[RankKey] = []

    @model_validator(mode="after")
    def _check(self) -> Contest:
        if (self.prizes is None) == (self.bands is None):
            raise ValueError("give either 'prizes' (by rank) or 'bands' (by percentile)")
        if self.prizes is not None and not self.prizes:
            raise ValueError("'prizes' is empty")
        if self.bands is not None:
            if not self.bands:
                raise ValueError("'bands' is empty")
            tops = [b.top for b in self.bands]
            if any(b <= a for a, b in itertools.pairwise(tops)):
                raise ValueError("bands must be in increasing order of 'top'")
        if self.ties == "keys" and not self.tie_keys:
            raise ValueError("ties: keys needs 'tie_keys' (payee id is always the last key)")
        if self.ties != "keys" and self.tie_keys:
            raise ValueError("'tie_keys' is only used with ties: keys")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_rank": "number"}

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledContest(self, ctx)


class ContestFound(NamedTuple):
    """What a contest found for a group, shared by its entrants' lines (each explained
    from it and the entrant's index). Each list holds one item per entrant."""

    #: each entrant's score
    scores: list[Decimal]
    #: each entrant's threshold (None without one)
    thresholds: list[Decimal | None]
    #: each entrant's prize
    amounts: list[Decimal]
    #: each entrant's rank (tied entrants share the rank of their block's first
    #: position), or None when it did not qualify
    ranks: list[int | None]
    #: each entrant's position (1 for the first), or None when it did not qualify
    positions: list[int | None]
    #: what else explains each entrant's place (a tie, the keys that broke it), or None
    extras: list[dict[str, Any] | None]
    #: the indexes of the entrants who qualified
    qualified: list[int]
    #: how many qualified
    participants: int
    #: whether enough qualified for the prizes to be paid
    pays: bool
    #: what the details of the whole group share, worked out when first needed
    shared: dict[str, Any]


class _CompiledContest(TeamCompiled):
    line_type = "award"

    def __init__(self, spec: Contest, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec: Contest = spec
        self.quantum = ctx.rounding.quantum
        self.score = ctx.formula(spec.score, "score")
        self.threshold = ctx.number(spec.threshold, "threshold")
        self.prizes: list[Formula] = []
        self.bands: list[tuple[Decimal, Formula]] = []
        if spec.prizes is not None:
            self.prizes = [ctx.formula(p, "prizes", i) for i, p in enumerate(spec.prizes)]
        else:
            assert spec.bands is not None
            self.bands = [(b.top, ctx.formula(b.prize, "bands", i, "prize"))
                          for i, b in enumerate(spec.bands)]
        self.tie_keys = [(ctx.formula(k.by, "tie_keys", i, "by"), k.order)
                         for i, k in enumerate(spec.tie_keys)]

    def skip(self, s: PayeeState) -> None:
        super().skip(s)
        s.env[f"{self.id}_rank"] = ZERO

    def _amount(self, f: Formula, env: dict[str, Any]) -> Decimal:
        try:
            return self.round(f(env))
        except KeyError as exc:
            raise EvaluationError(
                f"prize {f.source!r} uses {exc.args[0]!r}: prizes may use parameters only"
            ) from None

    def _position_prizes(self, n: int, period: PeriodContext) -> list[Decimal]:
        """The prize of each position 1..n (zero past the last prize)."""
        key = (self.id, "prizes")
        values = period.cache.get(key)
        if values is None:  # prizes are over parameters: worked out once a period
            env = period.base_env
            values = period.cache[key] = [self._amount(f, env) for f in
                                          (self.prizes or [f for _, f in self.bands])]
        if self.prizes:
            return [values[p] if p < len(values) else ZERO for p in range(n)]
        bands = list(zip((top for top, _ in self.bands), values, strict=True))
        out = []
        for p in range(1, n + 1):
            out.append(next((amount for top, amount in bands if p <= top * n), ZERO))
        return out

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        spec = self.spec
        entrants = self.applying(states)
        if not entrants:
            return
        desc = spec.order == "desc"
        score_of = self.score.fn
        scores = [score_of(s.env) for s in entrants]
        threshold = self.threshold
        thresholds: list[Decimal | None]
        if threshold is None:
            thresholds = [None] * len(entrants)
            qualified = list(range(len(entrants)))
        else:
            if threshold.names <= period.base_env.keys() - {"total"}:
                # over parameters only: one for everybody
                thresholds = [threshold(period.base_env)] * len(entrants)
            else:
                thresholds = [threshold(s.env) for s in entrants]
            qualified = [i for i, (sc, t) in enumerate(zip(scores, thresholds, strict=True))
                         if (sc >= t if desc else sc <= t)]
        if spec.ties == "keys":
            ranked = rank([entrants[i] for i in qualified],
                          [(self.score, spec.order), *self.tie_keys])
        else:  # the scores are known: rank by them (then payee id)
            ranked = Ranked([entrants[i] for i in qualified],
                            [(rank_number(scores[i], self.score),) for i in qualified],
                            (spec.order,))
        n = len(ranked)
        pays = n >= spec.min_participants
        prizes = self._position_prizes(n, period) if n else []
        # per entrant (by index): the prize, and where it was placed among the qualified
        # (rank, position, what else explains it); None for those who did not qualify
        k = len(entrants)
        found = ContestFound(scores, thresholds, amounts=[ZERO] * k, ranks=[None] * k,
                             positions=[None] * k, extras=[None] * k, qualified=qualified,
                             participants=n, pays=pays, shared={})
        amounts, ranks, positions = found.amounts, found.ranks, found.positions
        # ties on the score alone (for share / best); with keys every position is its own
        at = [qualified[i] for i in ranked.index]  # the entrant at each position
        if spec.ties != "keys":
            for block in ranked.blocks:
                if len(block) == 1:  # no tie: the prize of its position
                    p = block[0]
                    if pays and prizes[p]:
                        amounts[at[p]] = prizes[p]
                    ranks[at[p]] = positions[at[p]] = p + 1
                else:
                    self._tie(block, ranked, prizes, at, found)
        else:
            for p in range(n):
                if pays and prizes[p]:
                    amounts[at[p]] = prizes[p]
                ranks[at[p]] = positions[at[p]] = p + 1
                found.extras[at[p]] = {"keys": [str(v) for v in ranked.values[p]]}
        rank_name = f"{self.id}_rank"
        for s, rank_of in zip(entrants, ranks, strict=True):
            if rank_of is not None:
                s.env[rank_name] = s.values[rank_name] = whole(rank_of)
            else:
                s.env[rank_name] = ZERO
        # the details (with each one's gap to the next prize) are built when first read
        self.group_lines(entrants, amounts, self.details, found)

    def _weakest_above(self, scores: list[Decimal], amounts: list[Decimal],
                       qualified: list[int]) -> dict[Decimal, Decimal | None]:
        """For each prize amount, the weakest score among those paid more."""
        desc = self.spec.order == "desc"
        by_amount: dict[Decimal, list[Decimal]] = {ZERO: []}
        for i in qualified:
            by_amount.setdefault(amounts[i], []).append(scores[i])
        weakest_above: dict[Decimal, Decimal | None] = {}
        weakest: Decimal | None = None
        for amt in sorted(by_amount, reverse=True):
            weakest_above[amt] = weakest
            group_weakest = (min if desc else max)(by_amount[amt], default=None)
            if group_weakest is not None:
                weakest = group_weakest if weakest is None else (
                    min(weakest, group_weakest) if desc else max(weakest, group_weakest))
        return weakest_above

    def _tie(self, block: list[int], ranked: Ranked, prizes: list[Decimal], at: list[int],
             found: ContestFound) -> None:
        """Settle a tie on the score among the positions ``block`` (share or best): the
        tied entrants' prizes and places, in ``found``."""
        spec = self.spec
        pays = found.pays
        payees = [ranked.members[p].payee for p in block]
        positions = [p + 1 for p in block]
        block_prizes = [prizes[p] for p in block]
        if not pays or not any(block_prizes):
            shares = [ZERO] * len(block)
        elif spec.ties == "best":
            shares = [block_prizes[0]] * len(block)
        else:
            pooled = sum(block_prizes, ZERO)
            shares = split(pooled, [1] * len(block), quantum=self.quantum, order=payees)
        for p, payee, share in zip(block, payees, shares, strict=True):
            extra: dict[str, Any] | None = None
            if any(block_prizes):
                # a tie among places that win nothing changes nothing (and its
                # details would grow with the square of the tie's size)
                tie: dict[str, Any] = {"rule": spec.ties, "with": [x for x in payees if x != payee],
                       "positions": positions, "prizes": block_prizes}
                if spec.ties == "share":
                    tie["pooled"] = sum(block_prizes, ZERO)
                extra = {"tie": tie}
            e = at[p]
            found.amounts[e] = share
            found.ranks[e], found.positions[e], found.extras[e] = block[0] + 1, p + 1, extra

    def details(self, found: ContestFound, i: int) -> dict[str, Any]:
        """Entrant ``i``'s details from what :meth:`apply_group` found for the group."""
        spec = self.spec
        desc = spec.order == "desc"
        n, shared = found.participants, found.shared
        weakest_above = shared.get("weakest_above")
        if weakest_above is None:  # worked out once for the group, when first needed
            weakest_above = shared["weakest_above"] = self._weakest_above(
                found.scores, found.amounts, found.qualified)
        sc, t, rank_of = found.scores[i], found.thresholds[i], found.ranks[i]
        # the gap to the next prize: to the weakest score paid more (to qualifying first)
        target = weakest_above[found.amounts[i]]
        gap: Decimal | None = None
        if target is not None:
            gap = target - sc if desc else sc - target
            if gap < ZERO:
                gap = ZERO
        if rank_of is None:
            assert t is not None  # only a threshold leaves an entrant unplaced
            short = t - sc if desc else sc - t
            if gap is not None and short > gap:
                gap = short
        details: dict[str, Any] = {"score": sc, "order": spec.order, "threshold": t,
                                   "qualified": rank_of is not None, "participants": n,
                                   "min_participants": spec.min_participants}
        if rank_of is not None:
            details["rank"], details["position"] = rank_of, found.positions[i]
            extra = found.extras[i]
            if extra:
                details.update(extra)
        else:
            details["rank"] = None
            details["gap_to_qualify"] = short
        if not found.pays and n:
            details["not_paid"] = (f"{n} qualified, fewer than the minimum of "
                                   f"{spec.min_participants}")
        details["gap_to_next_prize"] = gap
        return details


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a contest's details: the score, the rank and the participants."""
    return "participants" in d and "rank" in d and "score" in d


@explains(Contest, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Contest | None) -> list[Step]:
    """A contest line: the score, the threshold, the rank, ties and the prize."""
    d, f = line.details, c.fmt
    a = Approx(f)
    steps = []
    score_f = getattr(spec, "score", None)
    score = a(d.get("score"))
    a.rounded = False
    shown_f = c.fmt.expr(str(score_f)) if is_name(score_f) and str(score_f) != score else None
    steps.append(Step(c.t("score"), shown_f, a.result(d.get("score"))))
    t = d.get("threshold")
    if t is not None:
        key = (N_("{what} {value}, at least {min} needed: {verdict}")
               if d.get("order", "desc") == "desc"
               else N_("{what} {value}, at most {min} allowed: {verdict}"))
        verdict = c.t("qualified") if d.get("rank") is not None else c.t("not qualified")
        steps.append(Step(c.t("threshold"), None, c.t(key, what=c.t("score"), value=score,
                                                      min=f.num(t), verdict=verdict)))
    rank = d.get("rank")
    if rank is not None:
        steps.append(Step(c.t("rank {rank} of {n} qualified (position {position})", rank=rank,
                              n=d.get("participants"), position=d.get("position"))))
    tie = d.get("tie")
    amount = f.money(line.amount)
    if isinstance(tie, Mapping):
        with_ = ", ".join(str(x) for x in tie.get("with", []))
        positions = ", ".join(str(x) for x in tie.get("positions", []))
        prizes = [f.money(x) for x in tie.get("prizes", [])]
        what = c.t("tied at positions {positions}", positions=positions)
        sep = c.t("; ")
        if with_:
            steps.append(Step(c.t("tied with"), None, with_, team=True))
        rule = tie.get("rule")
        if rule == "share":
            k = len(prizes)
            pooled = dec(tie.get("pooled")) or ZERO
            exact = round_like_plan(c, pooled / k) if k else ZERO
            if k and exact == line.amount:
                steps.append(Step(what + sep + c.t("the tied positions' prizes shared evenly"),
                                  f"({' + '.join(prizes)}) / {k}", amount))
            else:
                steps.append(Step(c.t(
                    "(shared exactly: a cent that cannot be split evenly goes to the payee ids first in order)")))
                steps.append(Step(what + sep + c.t("the tied positions' prizes shared evenly"),
                                  None, amount))
        elif rule == "best":
            steps.append(Step(what + sep + c.t("each gets the best tied position's prize"), None, amount))
        else:
            steps.append(Step(what, None, amount))
    elif rank is not None:
        steps.append(Step(c.t("prize for position {position}", position=d.get("position")), None,
                          amount))
    if d.get("not_paid"):
        steps.append(Step(c.t("no prizes: {reason}", reason=c.say(d["not_paid"])), None, amount))
    elif rank is None:
        steps.append(Step(c.t("prize"), None, amount))
    gap = d.get("gap_to_next_prize")
    if gap is not None and (dec(gap) or ZERO) > 0:
        c.hints.append(f"{line.label}: "
                       + c.t("{gap} more score draws level with a larger prize", gap=a(gap)))
    return steps
