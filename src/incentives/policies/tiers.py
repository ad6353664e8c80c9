"""Tiered commission: the tier method and the boundary rule are stated, never guessed.

Tier *i* spans from its ``from`` up to the next tier's ``from``. A basis below
the first tier earns nothing. Methods:

- ``marginal``: each slice of the basis earns its own tier's rate;
- ``retroactive``: the whole basis (or ``applies_to``) earns the rate of the
  highest tier reached;
- ``step``: a fixed ``amount`` for the highest tier reached;
- ``interpolated``: amounts interpolated inside the reached tier, between its
  ``amount`` and the next tier's (the last tier pays its amount, plus ``rate``
  per unit above its start when given).

``on_threshold`` says where a basis exactly on a threshold belongs: ``above``
(the tier that starts there) or ``below`` (the tier that ends there). It is
required for the methods where it matters (retroactive and step).

``scale`` multiplies every threshold (e.g. ``scale: quota`` with thresholds
``1.0``, ``1.2`` makes tiers on quota attainment: accelerators).

>>> from incentives import Plan, Tiered
>>> t = Tiered(id="c", basis="revenue", method="marginal",
...            tiers=[{"from": 0, "rate": "0.02"}, {"from": 30000, "rate": "0.04"}])
>>> plan = Plan(name="demo", inputs={"metrics": {"revenue": {}}}, policies=[t])
>>> plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"revenue": 50000}}]).results[0].total
Decimal('1400.00')
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field, model_validator

from ..money import CONTEXT, ZERO
from ..runtime import Explained, Line, PayeeState, money_places, money_text, plain_json
from ..wording import N_, Step, Wording, dec, needs_rounding, signed_sum, uncapped
from .base import CompileContext, Compiled, Expr, Label, PolicyBase, StrictModel, explains

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["Tier", "TierTable", "Tiered", "check_tiers"]

Method = Literal["marginal", "retroactive", "step", "interpolated"]


class Tier(StrictModel):
    """One tier: where it starts, and its rate or amount."""

    #: where the tier starts (written `from:`); it ends where the next tier starts
    start: Decimal = Field(alias="from")
    #: the rate of this tier (marginal, retroactive; interpolated: per unit above the last tier's
    #: start)
    rate: Decimal | None = None
    #: the amount of this tier (step, interpolated)
    amount: Decimal | None = None
    #: a name for the tier, shown on statements
    label: Label | None = None


class Tiered(PolicyBase):
    """Commission on a ``basis`` by tiers, with the method and boundary rule stated."""

    type: Literal["tiered"] = "tiered"
    #: what the tiers apply to: a metric or a formula
    basis: Expr
    #: how the tiers turn the basis into an amount: marginal, retroactive, step or interpolated
    method: Method
    #: where a basis exactly on a threshold belongs: `above` (the tier starting there) or `below`;
    #: required for retroactive and step
    on_threshold: Literal["above", "below"] | None = None
    #: the tiers, in increasing order of `from`
    tiers: list[Tier] = Field(min_length=1)
    #: multiplies every threshold (e.g. a quota, for tiers on attainment)
    scale: Expr | None = None
    #: retroactive only: what the reached rate is paid on (default: the basis)
    applies_to: Expr | None = None
    #: the most this commission pays (a formula)
    cap: Expr | None = None

    @model_validator(mode="after")
    def _check(self) -> Tiered:
        check_tiers(self.method, self.tiers, self.on_threshold)
        if self.applies_to is not None and self.method != "retroactive":
            raise ValueError("'applies_to' is only for method 'retroactive'")
        return self

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledTiered(self, ctx)


def check_tiers(method: Method, tiers: Sequence[Tier], on_threshold: str | None) -> None:
    """Refuse a tier table that does not say what it means (a ``ValueError``): tiers out of
    order, a tier without the rate or amount its method needs, a negative rate, or a
    retroactive or step table without its boundary rule. Shared by every policy with tiers
    (``tiered``, ``per_transaction``)."""
    starts = [t.start for t in tiers]
    for i in range(1, len(starts)):
        if starts[i] <= starts[i - 1]:
            raise ValueError(
                f"tiers must be in increasing order of 'from': tier {i} starts at "
                f"{starts[i]}, not above tier {i - 1} at {starts[i - 1]}"
            )
    need = "amount" if method in ("step", "interpolated") else "rate"
    for i, t in enumerate(tiers):
        if getattr(t, need) is None:
            raise ValueError(f"tier {i}: method {method!r} needs {need!r} on every tier")
        if t.rate is not None and t.rate < 0:
            raise ValueError(f"tier {i}: rate {t.rate} is negative")
    if method in ("retroactive", "step") and on_threshold is None:
        raise ValueError(
            f"method {method!r} needs 'on_threshold: above' or 'on_threshold: below' "
            "(where a basis exactly on a threshold belongs)"
        )


class TierTable:
    """A checked tier table ready to apply: what the tiers make of a basis.

    ``table(basis)`` is the amount the tiers give ``basis`` (the function *f* of running
    tiers, which earn ``f(after) - f(before)``); :meth:`amount` is the same with the
    thresholds scaled, a retroactive rate paid on something else, and details filled in.
    Shared by ``tiered`` and ``per_transaction``.

    >>> t = TierTable("marginal", [Tier(start=0, rate="0.04"), Tier(start=50000, rate="0.06")])
    >>> t(Decimal(60000)), t(Decimal(55000)) - t(Decimal(60000))
    (Decimal('2600.00'), Decimal('-300.00'))
    """

    __slots__ = ("_bisect", "_marks", "above", "amounts", "has_rate", "labels", "method",
                 "rates", "starts")

    def __init__(self, method: Method, tiers: Sequence[Tier],
                 on_threshold: str | None = None) -> None:
        self.method = method
        #: a basis exactly on a threshold belongs to the tier starting there
        self.above = on_threshold != "below"
        # 'below': a basis on a threshold stays in the tier that ends there
        self._bisect = bisect_right if self.above else bisect_left
        self.starts = [t.start for t in tiers]
        self.rates = [t.rate if t.rate is not None else ZERO for t in tiers]
        self.amounts = [t.amount if t.amount is not None else ZERO for t in tiers]
        self.labels = [t.label for t in tiers]
        self.has_rate = [t.rate is not None for t in tiers]
        # marginal: the amount at each tier's start, so f(x) is one slice past it
        marks = [ZERO]
        for k in range(1, len(self.starts)):
            marks.append(marks[-1] + (self.starts[k] - self.starts[k - 1]) * self.rates[k - 1])
        self._marks = marks

    def __call__(self, basis: Decimal) -> Decimal:
        """The amount the tiers give ``basis`` (unscaled)."""
        if self.method == "marginal":
            k = bisect_left(self.starts, basis) - 1
            if k < 0:
                return ZERO
            return self._marks[k] + (basis - self.starts[k]) * self.rates[k]
        return self.amount(basis)

    def reached(self, basis: Decimal, starts: list[Decimal] | None = None) -> int:
        """The index of the tier ``basis`` falls in, or -1 below the first tier."""
        if starts is None:
            starts = self.starts
        if self.above:
            return bisect_right(starts, basis) - 1
        # 'below': a basis on a threshold stays in the tier that ends there
        return bisect_left(starts, basis) - 1

    def amount(self, basis: Decimal, starts: list[Decimal] | None = None,
               applied: Decimal | None = None, details: dict[str, Any] | None = None
               ) -> Decimal:
        """The amount the tiers give ``basis`` with thresholds ``starts`` (default: the
        table's), a retroactive rate paid on ``applied`` (default: the basis); with
        ``details``, fill in the slices or the tier reached."""
        if starts is None:
            starts = self.starts
        n = len(starts)
        i = self._bisect(starts, basis) - 1  # reached(), written out
        if self.method == "marginal":
            amount = ZERO
            rates = self.rates
            slices = []
            for k in range(n):
                lo = starts[k]
                if basis <= lo:
                    break
                hi = starts[k + 1] if k + 1 < n else None
                top = basis if hi is None or basis < hi else hi
                part = (top - lo) * rates[k]
                amount += part
                if details is not None:
                    slices.append({"from": lo, "to": top, "rate": rates[k], "amount": part})
            if details is not None:
                details["slices"] = slices
        elif self.method == "retroactive":
            if applied is None:
                applied = basis
            rate = self.rates[i] if i >= 0 else ZERO
            amount = applied * rate
            if details is not None:
                details.update(tier=i, rate=rate, applied_to=applied)
        elif self.method == "step":
            amount = self.amounts[i] if i >= 0 else ZERO
            if details is not None:
                details.update(tier=i)
        else:  # interpolated
            if i < 0:
                amount = ZERO
            elif i + 1 < n:
                lo, hi = starts[i], starts[i + 1]
                a0, a1 = self.amounts[i], self.amounts[i + 1]
                amount = a0 + (a1 - a0) * (basis - lo) / (hi - lo)
            else:
                amount = self.amounts[i]
                if self.has_rate[i]:
                    amount += (basis - starts[i]) * self.rates[i]
            if details is not None:
                details.update(tier=i)
        return amount


class TierCapture(NamedTuple):
    """What a tier line is explained from (captured when it is made)."""

    #: the basis the tiers were applied to
    basis: Decimal
    #: what the thresholds were multiplied by (``scale``), or None
    factor: Decimal | None
    #: what a retroactive rate was paid on (``applies_to``), or None for the basis
    applied: Decimal | None
    #: the cap, or None
    limit: Decimal | None
    #: the values of the basis formula's names (None: the basis is one name)
    basis_values: tuple[Any, ...] | None


class _CompiledTiered(Compiled):
    line_type = "commission"

    def __init__(self, spec: Tiered, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.basis = ctx.formula(spec.basis, "basis")
        self.scale = ctx.number(spec.scale, "scale")
        self.applies_to = ctx.number(spec.applies_to, "applies_to")
        self.cap = ctx.number(spec.cap, "cap")
        self.method = spec.method
        self.table = table = TierTable(spec.method, spec.tiers, spec.on_threshold)
        self.above = table.above
        self.starts, self.rates, self.amounts = table.starts, table.rates, table.amounts
        self.labels, self.has_rate = table.labels, table.has_rate
        self._basis = self.basis.fn
        # a basis that is more than one name is shown with its values substituted
        self._show_basis = not self.basis.source.strip().isidentifier()
        self._explain = Explained(self.details, self.json_details)
        #: per places of money: the JSON of each full slice of the (unscaled) marginal
        #: table, and the sum of the slices before each tier
        self._full_slices: dict[Decimal, tuple[list[dict[str, Any]], list[Decimal], list[Any]]] = {}

    def reached(self, basis: Decimal, starts: list[Decimal]) -> int:
        """The index of the tier ``basis`` falls in, or -1 below the first tier."""
        return self.table.reached(basis, starts)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        basis = self._basis(env)
        factor = None if self.scale is None else self.scale.fn(env)
        applied = (self.applies_to.fn(env) if self.applies_to is not None
                   and self.method == "retroactive" else None)
        limit = None if self.cap is None else self.cap.fn(env)
        amount = self.compute(basis, factor, applied, limit)
        self.line(s, amount, explain=self._explain, captured=TierCapture(
            basis, factor, applied, limit,
            self.basis.capture(env) if self._show_basis else None))

    def emit(self, w: KernelWriter) -> bool:
        basis = w.evaluate(self.basis)
        factor = "None" if self.scale is None else w.evaluate(self.scale)
        applied = (w.evaluate(self.applies_to) if self.applies_to is not None
                   and self.method == "retroactive" else "None")
        limit = "None" if self.cap is None else w.evaluate(self.cap)
        amount = w.temp()
        if self.method == "marginal" and self.scale is None:
            # compute(), written out for this table: one slice per tier reached (the
            # starts increase, so a basis above one start is above every earlier one)
            w(f"{amount} = _ZERO")
            starts = [w.const(x) for x in self.starts]
            for k, lo in enumerate(starts):
                top = (f"({basis} if {basis} < {starts[k + 1]} else {starts[k + 1]})"
                       if k + 1 < len(starts) else basis)
                with w.block(f"if {basis} > {lo}"):
                    w(f"{amount} = {amount} + ({top} - {lo}) * {w.const(self.rates[k])}")
            if self.cap is not None:
                with w.block(f"if {limit} is not None and {amount} > {limit}"):
                    w(f"{amount} = {limit}")
        else:
            w(f"{amount} = {w.const(self.compute)}({basis}, {factor}, {applied}, {limit})")
        values = w.capture(self.basis) if self._show_basis else "None"
        w.line(self, amount, explain=self._explain, captured=w.record(
            TierCapture, basis=basis, factor=factor, applied=applied, limit=limit,
            basis_values=values))
        return True

    def compute(self, basis: Decimal, factor: Decimal | None, applied: Decimal | None,
                limit: Decimal | None, details: dict[str, Any] | None = None) -> Decimal:
        """The commission on ``basis`` (thresholds scaled by ``factor``, the retroactive
        rate applied to ``applied``, capped at ``limit``); with ``details``, fill them in
        too (the slices, the tier reached, the distance to the next one)."""
        starts = self.starts if factor is None else [x * factor for x in self.starts]
        n = len(starts)
        amount = self.table.amount(basis, starts, applied, details)
        if details is not None:
            i = self.table.reached(basis, starts)
            if i >= 0 and self.labels[i]:
                details["tier_label"] = self.labels[i]
            if i + 1 < n:
                details["next_threshold"] = starts[i + 1]
                details["to_next_tier"] = starts[i + 1] - basis
        if limit is not None and amount > limit:
            if details is not None:
                assert self.cap is not None
                details["capped"] = {"limit": limit, "limit_formula": self.cap.source,
                                     "uncapped": amount}
            amount = limit
        if details is not None:
            details["amount"] = amount
        return amount

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from the values captured when it was made."""
        c = TierCapture._make(captured)
        details: dict[str, Any] = {"basis": c.basis, "basis_formula": self.basis.source,
                                   "method": self.method}
        if c.basis_values is not None:
            details["basis_substituted"] = self.basis.substituted(c.basis_values)
        if c.factor is not None:
            details["scale"] = c.factor
        self.compute(c.basis, c.factor, c.applied, c.limit, details)
        return details

    def json_details(self, captured: Iterable[Any], amount: Decimal) -> dict[str, Any] | None:
        """What ``jsonable(line.details)`` gives, built straight from the capture: a
        marginal table's full slices are made once per table, only the slice the
        basis falls in is made per line (``None``, for the other methods: the
        details are built as they are)."""
        if self.method != "marginal":
            return None
        basis, factor, _, limit, basis_values = captured
        places = money_places(amount)
        details: dict[str, Any] = {"basis": plain_json(basis),
                                   "basis_formula": self.basis.source, "method": "marginal"}
        if basis_values is not None:
            details["basis_substituted"] = self.basis.substituter()(basis_values)
        if factor is not None:
            details["scale"] = plain_json(factor)
            starts = [CONTEXT.multiply(x, factor) for x in self.starts]
            full, sums, texts = self._slices(starts, places)
        else:
            starts = self.starts
            made = self._full_slices.get(places)
            if made is None:
                made = self._full_slices[places] = self._slices(starts, places)
            full, sums, texts = made
        n = len(starts)
        # the tiers the basis passed whole, then the one it falls in (amount(), written out)
        k = 0
        while k + 1 < n and basis >= starts[k + 1]:
            k += 1
        if n and basis > starts[k]:
            rate = self.rates[k]
            part = CONTEXT.multiply(CONTEXT.subtract(basis, starts[k]), rate)
            details["slices"] = [*full[:k], {"from": texts[k], "to": details["basis"],
                                             "rate": texts[n + k],
                                             "amount": money_text(part, places)}]
            total = CONTEXT.add(sums[k], part)
        else:
            details["slices"] = full[:k]
            total = sums[k] if n else ZERO
        i = self.table.reached(basis, starts)
        if i >= 0 and self.labels[i]:
            details["tier_label"] = self.labels[i]
        if i + 1 < n:
            details["next_threshold"] = texts[i + 1]
            details["to_next_tier"] = plain_json(CONTEXT.subtract(starts[i + 1], basis))
        if limit is not None and total > limit:
            assert self.cap is not None
            details["capped"] = {"limit": money_text(limit, places),
                                 "limit_formula": self.cap.source,
                                 "uncapped": money_text(total, places)}
            total = limit
        details["amount"] = money_text(total, places)
        return details

    def _slices(self, starts: list[Decimal], places: Decimal
                ) -> tuple[list[dict[str, Any]], list[Decimal], list[Any]]:
        """Each full slice of a marginal table with thresholds ``starts`` as JSON, the
        sum of the slices before each tier (as :meth:`TierTable.amount` adds them), and
        the JSON of each threshold then of each rate."""
        full: list[dict[str, Any]] = []
        sums = [ZERO]
        rates = self.rates
        texts = [plain_json(x) for x in [*starts, *rates]]
        n = len(starts)
        for k in range(n - 1):
            part = CONTEXT.multiply(CONTEXT.subtract(starts[k + 1], starts[k]), rates[k])
            full.append({"from": texts[k], "to": texts[k + 1], "rate": texts[n + k],
                         "amount": money_text(part, places)})
            sums.append(CONTEXT.add(sums[-1], part))
        return full, sums, texts


# ------------------------------------------------------------------ statement
#: each method of a tiered policy, and its phrase
_METHODS = {
    "marginal": N_("marginal (each slice earns its own tier's rate)"),
    "retroactive": N_("retroactive (the whole basis earns the rate of the tier reached)"),
    "step": N_("step (a fixed amount for the tier reached)"),
    "interpolated": N_("interpolated (between the amounts of the tier reached and the next)"),
}


def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a tiered line's details: a method and its slices or the tier reached."""
    return "method" in d and ("slices" in d or "tier" in d)


@explains(Tiered, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Tiered | None) -> list[Step]:
    """A tiered line: the basis, the method, the slices or the tier reached, the cap, and
    a next-tier hint."""
    d, f = line.details, c.fmt
    steps = []
    basis_f = str(d.get("basis_formula", "basis"))
    basis = f.num(d.get("basis"))
    if "basis_substituted" in d:
        substituted = f.expr(str(d["basis_substituted"]))
        steps.append(Step(c.t("basis"), f"{f.expr(basis_f)} = {substituted}", basis))
    else:
        steps.append(Step(c.t("basis"), c.name(basis_f), basis))
    method = str(d.get("method", ""))
    steps.append(Step(c.t("method"), c.t(_METHODS[method]) if method in _METHODS else method))
    if "scale" in d:
        steps.append(Step(c.t("thresholds scaled by"), None, f.num(d["scale"])))
    tiers = list(getattr(spec, "tiers", []) or [])
    scale = dec(d.get("scale")) or Decimal(1)
    if method == "marginal":
        parts = []
        for sl in d.get("slices", []):
            lo, hi = dec(sl["from"]) or ZERO, dec(sl["to"]) or ZERO
            amt = f.money(sl["amount"])
            parts.append(amt)
            steps.append(Step(c.t("slice {lo} to {hi}", lo=f.num(lo), hi=f.num(hi)),
                              f"{f.num(hi - lo)} x {f.num(sl['rate'])}", amt))
        if len(parts) > 1:
            steps.append(Step(c.t("sum"), signed_sum(parts), f.money(uncapped(d))))
        elif not parts:
            steps.append(Step(c.t("below the first tier"), None, f.money(ZERO)))
    else:
        i = int(d.get("tier", -1))
        if i < 0:
            steps.append(Step(c.t("tier reached"), None, c.t("below the first tier")))
        else:
            start = tiers[i].start * scale if i < len(tiers) else None
            label = d.get("tier_label")
            reached = c.t("tier {n} (from {start})", n=i + 1,
                          start=f.num(start) if start is not None else "?")
            steps.append(Step(c.t("tier reached"), None, reached + (f" {label}" if label else "")))
        if method == "retroactive":
            steps.append(Step(c.t("commission"),
                              f"{f.num(d.get('applied_to'))} x {f.num(d.get('rate'))}",
                              f.money(uncapped(d))))
        elif method == "interpolated" and 0 <= i < len(tiers):
            t0 = tiers[i]
            if i + 1 < len(tiers):
                t1 = tiers[i + 1]
                lo, hi = t0.start * scale, t1.start * scale
                a0, a1 = t0.amount or ZERO, t1.amount or ZERO
                steps.append(Step(c.t("commission"),
                                  f"{f.num(a0)} + ({f.num(a1)} - {f.num(a0)}) x "
                                  f"({basis} - {f.num(lo)}) / ({f.num(hi)} - {f.num(lo)})",
                                  f.money(uncapped(d))))
            elif t0.rate is not None:
                steps.append(Step(c.t("commission"),
                                  f"{f.num(t0.amount)} + ({basis} - {f.num(t0.start * scale)}) x "
                                  f"{f.num(t0.rate)}", f.money(uncapped(d))))
            else:
                steps.append(Step(c.t("commission"), None, f.money(uncapped(d))))
        else:
            steps.append(Step(c.t("commission"), None, f.money(uncapped(d))))
    capped = d.get("capped")
    if isinstance(capped, Mapping):
        steps.append(Step(c.t("cap"), f"min({f.money(capped['uncapped'])}, "
                                      f"{f.money(capped['limit'])})", f.money(d.get("amount"))))
    if needs_rounding(steps, f.money(line.amount)):
        steps.append(Step(c.t("amount"), None, f.money(line.amount)))
    if "to_next_tier" in d and "next_threshold" in d:
        c.hints.append(f"{line.label}: " + c.t(
            "{gap} more of {basis} reaches the next tier (from {threshold})",
            gap=f.num(d["to_next_tier"]), basis=c.labels.get(basis_f, basis_f),
            threshold=f.num(d["next_threshold"])))
    return steps
