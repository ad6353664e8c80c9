"""Bonus balancing (internal equity): keep a group's bonuses within stated bounds.

``of`` names an earlier result (usually a policy id: the per-payee amounts of
a bonus) among the group's members for whom ``when`` holds. The bounds, on
either side:

- ``mean: {min: a, max: c}``: each bonus between ``a x mean`` and ``c x mean``
  (``a <= 1 <= c``);
- ``ratio: {min: r1, max: r2}``: the largest bonus over the smallest between
  ``r1`` (too narrow below it) and ``r2`` (too wide above it).

Methods (each keeps the group total to the cent and never swaps two people):

- ``scale_about_mean``: ``b' = mean + k (b - mean)``, one ``k >= 0`` for the
  group: ``k < 1`` compresses, ``k > 1`` stretches. ``k`` is the value
  closest to 1 (no change) that meets every bound;
- ``clamp``: each bonus is held within the mean bounds and the excess (or
  shortfall) is spread over the others in proportion to their bonuses: the
  new bonuses are ``clamp(f x b, a x mean, c x mean)`` with one common ``f``
  (only with ``mean`` bounds; a ratio range needs ``scale_about_mean``).

Equal amounts (all zero, say) are left as they are, unless a ratio minimum
asks them to widen. Bounds that cannot all be met (a ratio range that the
mean bounds forbid, a spread of equal amounts that must widen, unequal
amounts whose mean is not positive) are an
:class:`~incentives.InfeasibleError`; with ``on_infeasible: closest`` the
upper limits (the spread is never made wider than allowed) are met and the
lower ones as closely as they allow, and each line's details report what
was left unmet.

The new amounts are rounded to the plan's quantum keeping the total exact
(largest remainder, never past a mean bound). A ratio bound holds exactly
on the unrounded amounts; rounding each to the cent can move a ratio by the
width of that cent. Each payee gets an adjustment line (``new - old``); its
details hold the old and new amounts, ``k`` (or ``f``), and the group's
spread before and after (:func:`incentives.spread.spread_figures`).

>>> from incentives import Plan, Balance, FormulaLine
>>> plan = Plan(name="demo", inputs={"metrics": {"b": {}}}, policies=[
...     FormulaLine(id="bonus", amount="b"),
...     Balance(id="balance", of="bonus", ratio={"max": 3}, method="scale_about_mean")])
>>> run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g", "metrics": {"b": b}}
...                      for p, b in [("A", 1000), ("B", 2000), ("C", 6000)]])
>>> [str(r.total) for r in run]
['1666.67', '2333.33', '5000.00']
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from operator import attrgetter, neg, sub
from typing import Any, Literal, NamedTuple

from pydantic import Field, model_validator

from ..allocation import fill, round_to_total
from ..errors import EvaluationError, InfeasibleError
from ..formulas import NameType
from ..money import ZERO
from ..runtime import Line, PayeeState, PeriodContext
from ..spread import spread_figures
from ..wording import N_, Approx, Step, Wording
from .base import CompileContext, Identifier, StrictModel, explains
from .team import TeamCompiled, TeamPolicy

__all__ = ["Balance", "MeanBounds", "RatioBounds"]

ONE = Decimal(1)


class MeanBounds(StrictModel):
    """Each bonus between ``min`` x mean and ``max`` x mean."""

    min: Decimal | None = Field(default=None, ge=0, le=1)
    max: Decimal | None = Field(default=None, ge=1)


class RatioBounds(StrictModel):
    """The largest bonus over the smallest between ``min`` and ``max``."""

    min: Decimal | None = Field(default=None, ge=1)
    max: Decimal | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _order(self) -> RatioBounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"ratio min {self.min} is above ratio max {self.max}")
        return self


class Balance(TeamPolicy):
    """Keep the group's ``of`` amounts within ``mean`` and/or ``ratio`` bounds."""

    type: Literal["balance"] = "balance"
    of: Identifier
    mean: MeanBounds | None = None
    ratio: RatioBounds | None = None
    method: Literal["scale_about_mean", "clamp"]
    on_infeasible: Literal["error", "closest"] = "error"

    @model_validator(mode="after")
    def _check(self) -> Balance:
        if self.mean is None and self.ratio is None:
            raise ValueError("give 'mean' and/or 'ratio' bounds")
        if self.method == "clamp" and self.ratio is not None:
            raise ValueError("method clamp keeps 'mean' bounds only; use scale_about_mean "
                             "for a ratio range")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number"}

    def compile(self, ctx: CompileContext) -> TeamCompiled:
        return _CompiledBalance(self, ctx)


_PAYEE = attrgetter("payee")


class BalanceFound(NamedTuple):
    """What a balancing found for a group, shared by its members' lines (each explained
    from it and the member's index)."""

    #: each member's amount before balancing
    before: list[Decimal]
    #: each member's amount after (rounded, adding up to the same total)
    after: list[Decimal]
    #: the group's mean
    mean: Decimal
    #: each member's exact amount after, before rounding
    exact: list[Decimal]
    #: how: ``{"k": k}`` (scale about the mean), else the factor and who is held
    info: dict[str, Any]
    #: the bounds that could not be met
    unmet: list[str]
    #: the spreads before and after, figured when first needed
    spreads: dict[str, Any]


class _CompiledBalance(TeamCompiled):
    line_type = "adjustment"

    def __init__(self, spec: Balance, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec: Balance = spec
        self.quantum = ctx.rounding.quantum
        self.of = ctx.formula(spec.of, "of")

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        members = self.applying(states)
        if not members:
            return
        members.sort(key=_PAYEE)
        spec = self.spec
        of = self.of.fn
        before = [of(s.env) for s in members]
        total = sum(before, ZERO)
        q = self.quantum
        if (total / q) != (total / q).to_integral_value():
            raise EvaluationError(f"balance {self.id!r}: the amounts of {spec.of!r} are not "
                                  f"whole multiples of {q}", group=group)
        n = len(members)
        m = total / n
        lower = [spec.mean.min * m if spec.mean and spec.mean.min is not None else None] * n
        upper = [spec.mean.max * m if spec.mean and spec.mean.max is not None else None] * n
        unmet: list[str] = []
        info: dict[str, Any]
        try:
            if spec.method == "scale_about_mean":
                k, unmet = self._k(before, m, group)
                exact = list(before) if k == ONE else [m + k * (b - m) for b in before]
                info = {"k": k}
            elif max(before) == min(before):  # all equal: within any mean bounds already
                exact = list(before)
                info = {"factor": ONE, "held_at": [None] * n}
            else:
                if m <= 0 or any(b < 0 for b in before):
                    raise InfeasibleError(f"balance {self.id!r}: clamp needs amounts that are "
                                          "not negative, with a positive mean", group=group)
                filled = fill(total, before, lower=lower, upper=upper)
                exact = filled.amounts
                info = {"factor": filled.factor, "held_at": filled.held}
            if exact == before:
                after = list(before)
            else:
                # cents left over go first to the larger amounts (taken back from the
                # smaller ones first), so rounding never swaps two people
                # (the members are in payee order: their index stands for the payee id)
                order = list(zip(map(neg, before), range(n), strict=True))
                after = round_to_total(exact, total, q, lower=None if unmet else lower,
                                       upper=None if unmet else upper, order=order)
        except InfeasibleError as exc:
            raise InfeasibleError(exc.message, group=group) from None
        # what every member's details are built from, when first read
        spreads: dict[str, Any] = {}  # figured when first needed
        found = BalanceFound(before, after, m, exact, info, unmet, spreads)
        self.group_lines(members, list(map(sub, after, before)), self.details, found)

    def details(self, found: BalanceFound, i: int) -> dict[str, Any]:
        """Member ``i``'s details from what :meth:`apply_group` found for the group."""
        info, spreads, m = found.info, found.spreads, found.mean
        spec = self.spec
        if not spreads:  # figured once for the whole group, shared by its members
            spreads.update(before=spread_figures(found.before),
                           after=spread_figures(found.after))
        details: dict[str, Any] = {
            "method": spec.method, "of": spec.of, "before": found.before[i],
            "after": found.after[i], "mean": m, "bounds": _bounds(spec, m),
            "exact": found.exact[i], "spread_before": spreads["before"],
            "spread_after": spreads["after"],
        }
        if "k" in info:
            details["k"] = info["k"]
        else:
            details["factor"] = info["factor"]
            details["held_at"] = info["held_at"][i]
        if found.unmet:
            details["unmet"] = found.unmet
        return details

    def _k(self, b: list[Decimal], m: Decimal, group: str | None) -> tuple[Decimal, list[str]]:
        """The k closest to 1 that meets every bound (with the unmet ones, if closest)."""
        spec = self.spec
        dmax, dmin = max(b) - m, min(b) - m
        if dmax == 0:  # all equal: no k changes anything
            unmet: list[str] = []
            if spec.ratio is not None and spec.ratio.min is not None and spec.ratio.min > 1:
                msg = (f"every amount is {m}: a spread of equal amounts cannot be "
                       f"stretched to a max/min ratio of at least {spec.ratio.min}")
                if spec.on_infeasible == "error":
                    raise InfeasibleError(f"balance {self.id!r}: {msg}")
                unmet.append(msg)
            return ONE, unmet
        if m <= 0:
            raise InfeasibleError(f"balance {self.id!r}: the mean {m} is not positive; "
                                  "bounds relative to it mean nothing")
        lo_k, hi_k = ZERO, None
        why_lo = why_hi = ""

        def tighter(k: Decimal, why: str) -> None:
            nonlocal hi_k, why_hi
            if hi_k is None or k < hi_k:
                hi_k, why_hi = k, why

        if spec.mean is not None:
            if spec.mean.min is not None and dmin < 0:
                tighter(m * (ONE - spec.mean.min) / -dmin,
                        f"each at least {spec.mean.min} x mean")
            if spec.mean.max is not None and dmax > 0:
                tighter(m * (spec.mean.max - ONE) / dmax, f"each at most {spec.mean.max} x mean")
        if spec.ratio is not None:

            def k_for(r: Decimal) -> Decimal:
                return (r - ONE) * m / (dmax - r * dmin)

            if spec.ratio.max is not None:
                tighter(k_for(spec.ratio.max), f"max/min at most {spec.ratio.max}")
            if spec.ratio.min is not None:
                lo_k, why_lo = k_for(spec.ratio.min), f"max/min at least {spec.ratio.min}"
        if hi_k is not None and lo_k > hi_k:
            msg = (f"{why_lo} needs k >= {lo_k}, but {why_hi} needs k <= {hi_k}")
            if spec.on_infeasible == "error":
                raise InfeasibleError(f"balance {self.id!r}: bounds cannot all hold: {msg}")
            return hi_k, [f"{why_lo} not met: {msg}; k = {hi_k} keeps the upper limits"]
        k = ONE
        if k < lo_k:
            k = lo_k
        if hi_k is not None and k > hi_k:
            k = hi_k
        return k, []


def _bounds(spec: Balance, m: Decimal) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.mean is not None:
        if spec.mean.min is not None:
            out["min"] = spec.mean.min * m
        if spec.mean.max is not None:
            out["max"] = spec.mean.max * m
    if spec.ratio is not None:
        out["ratio"] = {"min": spec.ratio.min, "max": spec.ratio.max}
    return out


# ------------------------------------------------------------------ statement
#: the spread figures of a balance's details, and their phrases
_SPREADS = {"spread_before": N_("spread before"), "spread_after": N_("spread after")}


def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a balance's details: before and after, about the group mean."""
    return "mean" in d and "before" in d and "after" in d


@explains(Balance, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Balance | None) -> list[Step]:
    """A balance line: the payee's amount before, the group mean, ``mean + k x (before -
    mean)``, the amount after (rounded, the group's total kept) and the adjustment."""
    d, f = line.details, c.fmt
    a = Approx(f)
    before, after, mean = f.money(d.get("before")), f.money(d.get("after")), f.money(d.get("mean"))
    steps = [Step(c.t("{what} before", what=c.name(str(d.get("of")))), None, before),
             Step(c.t("group mean"), None, mean, team=True)]
    if "k" in d:
        expr = f"{mean} + {a(d['k'])} x ({before} - {mean})"
        steps.append(Step(c.t("balanced about the group mean"), expr, a.result(d.get("exact"))))
    else:
        steps.append(Step(c.t("balanced about the group mean"), None, a.result(d.get("exact"))))
    steps.append(Step(c.t("after (to the cent, the group's total kept exactly)"), None, after))
    for key, what in _SPREADS.items():
        sp = d.get(key)
        if isinstance(sp, Mapping) and "ratio" in sp:
            ratio = c.t("max/min {ratio} ({hi} / {lo})", ratio=a.result(sp["ratio"]),
                        lo=f.money(sp.get("min")), hi=f.money(sp.get("max")))
            steps.append(Step(c.t(what), None, ratio, team=True))
    if d.get("unmet"):
        unmet = c.t("; ").join(c.say(u) for u in d["unmet"])
        steps.append(Step(c.t("bounds not met: {what}", what=unmet), team=True))
    steps.append(Step(c.t("adjustment"), f"{after} - {before}", f.money(line.amount)))
    return steps
