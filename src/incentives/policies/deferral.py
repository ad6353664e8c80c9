"""Deferral: part of a bonus is paid in a later period, on conditions.

``share`` of ``of`` (an earlier result, e.g. the period's bonus) is held back
this period (a negative line) and recorded in the payee's ledger as due
``after`` periods later. In the first evaluated period on or after that, the
deferred amount is paid (a positive line) if ``condition`` holds then (e.g.
``employed`` and ``attainment >= 1``); if it does not, it is forfeited
(``on_fail: forfeit``, the default) or waits for a later period
(``on_fail: wait``). The policy's line is what is paid out minus what is
deferred this period.

>>> from incentives import Plan, FormulaLine, Deferral
>>> plan = Plan(name="d", inputs={"metrics": {"bonus_base": {}}},
...             policies=[FormulaLine(id="bonus", amount="bonus_base"),
...                       Deferral(id="deferred", of="bonus", share="0.3", after=2)])
>>> run = plan.evaluate([{"payee": "a", "period": p, "metrics": {"bonus_base": b}}
...                      for p, b in [("2026-01", 1000), ("2026-02", 0), ("2026-03", 0)]])
>>> [(r.period, r.amount("deferred")) for r in run]
[('2026-01', Decimal('-300.00')), ('2026-02', Decimal('0.00')), ('2026-03', Decimal('300.00'))]
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field

from ..money import ZERO, amount_of
from ..periods import parse_period, shift_period
from ..runtime import Line, PayeeState
from ..wording import N_, Step, Wording, signed_sum
from .base import CompileContext, Compiled, Expr, PolicyBase, explains

__all__ = ["Deferral"]


class Deferral(PolicyBase):
    """Hold back ``share`` of ``of`` and pay it ``after`` periods later if ``condition`` holds."""

    type: Literal["deferral"] = "deferral"
    of: Expr = Field(description="the amount a share of which is deferred (a formula)")
    share: Expr = Field(description="the share deferred (a formula)")
    after: int = Field(ge=1, le=120, description="paid this many periods later")
    condition: Expr | None = Field(default=None, description=(
        "checked in the due period (e.g. employed): paid only if it holds"))
    on_fail: Literal["forfeit", "wait"] = Field(default="forfeit", description=(
        "when the condition fails: forfeited, or waits for a later period"))

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledDeferral(self, ctx)


@lru_cache(maxsize=256)
def _end(period: str) -> Any:
    return parse_period(period)[1]


class _CompiledDeferral(Compiled):
    line_type = "deferral"

    def __init__(self, spec: Deferral, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.of = ctx.formula(spec.of, "of")
        self.share = ctx.formula(spec.share, "share")
        self.after = spec.after
        self.condition = ctx.condition(spec.condition, "condition")
        self.forfeit = spec.on_fail == "forfeit"

    def check_entry(self, entry: Any) -> None:
        """Refuse a malformed ledger entry (see :func:`incentives.ledger.check_entries`)."""
        if not isinstance(entry, dict) or set(entry) != {"pending"} or not isinstance(
                entry["pending"], list):
            raise ValueError('a deferral entry is {"pending": [...]}')
        for item in entry["pending"]:
            if not isinstance(item, dict) or set(item) != {"from", "due", "amount"}:
                raise ValueError("a deferred amount has from, due and amount")
            _end(item["due"])
            if amount_of(item, "amount") < 0:
                raise ValueError("a deferred amount cannot be negative")

    def _release(self, s: PayeeState, details: dict[str, Any]) -> Decimal:
        """Pay (or forfeit) what is due; keep the rest in the ledger."""
        entry = s.ledger.get(self.id)
        if not entry:
            return ZERO
        end = _end(s.record.period)
        paid = ZERO
        keep = []
        for item in entry["pending"]:
            if _end(item["due"]) > end:
                keep.append(item)
                continue
            amount = Decimal(item["amount"])
            row = {"from": item["from"], "due": item["due"], "amount": amount}
            if self.condition is None or self.condition(s.env):
                paid += amount
                details.setdefault("paid_out", []).append(row)
            elif self.forfeit:
                details.setdefault("forfeited", []).append(row)
            else:
                keep.append(item)
                details.setdefault("waiting", []).append(row)
        if keep:
            s.ledger[self.id] = {"pending": keep}
        else:
            s.ledger.pop(self.id, None)
        return paid

    def apply(self, s: PayeeState) -> None:
        details: dict[str, Any] = {}
        paid = self._release(s, details)
        base = self.of(s.env)
        share = self.share(s.env)
        deferred = self.round(base * share) if base > 0 and share > 0 else ZERO
        details.update(of=base, share=share, deferred=deferred)
        if deferred:
            due = shift_period(s.record.period, self.after)
            details["due"] = due
            pending = s.ledger.setdefault(self.id, {"pending": []})["pending"]
            pending.append({"from": s.record.period, "due": due, "amount": str(deferred)})
        self.line(s, paid - deferred, details)

    def skip(self, s: PayeeState) -> None:
        """When ``when`` is false nothing new is deferred, but what is due is still paid."""
        details: dict[str, Any] = {}
        paid = self._release(s, details)
        if paid or details:
            self.line(s, paid, details)
        else:
            super().skip(s)


# ------------------------------------------------------------------ statement
#: the deferred amounts of a deferral's details, and their phrases
_DEFERRED = {
    "paid_out": N_("deferred in {period}, due {due}, paid now"),
    "forfeited": N_("deferred in {period}, due {due}, forfeited (condition not met)"),
    "waiting": N_("deferred in {period}, due {due}, still held (condition not met)"),
}


def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a deferral's details: the share deferred of an amount."""
    return "deferred" in d and "share" in d and "of" in d


@explains(Deferral, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Deferral | None) -> list[Step]:
    """A deferral line: earlier deferrals paid, forfeited or held, and the share deferred
    now."""
    d, f = line.details, c.fmt
    steps = []
    parts = []
    for key, what in _DEFERRED.items():
        for row in d.get(key, []):
            amount = f.money(row.get("amount"))
            steps.append(Step(c.t(what, period=row.get("from"), due=row.get("due")),
                              None, amount))
            if key == "paid_out":
                parts.append(amount)
    deferred = f.money(d.get("deferred", ZERO))
    if d.get("deferred"):
        steps.append(Step(c.t("deferred now, paid in {due} if the condition then holds",
                              due=d.get("due")),
                          f"{f.num(d.get('share'))} x {f.money(d.get('of'))}", deferred))
    expr = signed_sum(parts) if parts else "0"
    steps.append(Step(c.t("amount"), f"{expr} - {deferred}", f.money(line.amount)))
    return steps
