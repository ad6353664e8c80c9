"""Clawbacks: a customer lost soon after it was won takes back the commission on it.

When a customer is lost within a window after its acquisition, a share of the
commission earned on that customer is clawed back, by a schedule (e.g. 100%
within 90 days, 50% within 180, nothing later); never more than was earned on
it. The commission earned on a customer comes from the payee's ledger (recorded
when the customer was won, from the ``earned_events`` list of an earlier or the
same period) or, failing that, from a field of the loss event itself
(``commission_field``). A customer with neither is reported in the line's
details with nothing clawed back.

Holdback, the alternative: with ``pay: true`` the policy pays the commission on
each acquired customer itself and holds back ``holdback`` of it. The held part
is paid once the customer outlives the window, or when it is lost (less what the
schedule claws back, which is taken from the held part first).

>>> from incentives import Plan, Clawback
>>> plan = Plan(name="e7", inputs={"events": {"lost_customers": {"fields": {
...     "id": "text", "acquired": "date", "lost": "date", "commission": "number"}}}},
...     policies=[Clawback(id="clawback", commission_field="commission",
...               schedule=[{"within_days": 90, "share": 1}, {"within_days": 180, "share": 0.5}])])
>>> lost = {"id": "c-1", "acquired": "2026-02-01", "lost": "2026-06-20", "commission": 400}
>>> plan.evaluate([{"payee": "a", "period": "2026-06",
...                 "events": {"lost_customers": [lost]}}])["a"].total
Decimal('-200.00')
"""

from __future__ import annotations

import datetime as dt
from collections import ChainMap
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from ..errors import EvaluationError
from ..money import ZERO, amount_of
from ..periods import parse_period
from ..runtime import Line, PayeeState
from ..wording import N_, Step, Wording, dec, plain, round_like_plan
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase, StrictModel, explains

__all__ = ["Clawback", "ClawbackStep"]

_ENTRY_KEYS = {"earned", "acquired", "clawed", "held"}
#: a lost customer stays in the ledger (with its loss date) until its window
#: passes, so a repeated loss event claws nothing more
_SETTLED_KEYS = _ENTRY_KEYS | {"lost"}


class ClawbackStep(StrictModel):
    """Lost at most ``within_days`` after acquisition: ``share`` of the commission comes back."""

    within_days: int = Field(gt=0, description="lost at most this many days after acquisition")
    share: Decimal = Field(ge=0, le=1, description="the share of the commission clawed back")


class Clawback(PolicyBase):
    """Claw back the commission on customers lost within a window, by a schedule."""

    type: Literal["clawback"] = "clawback"
    events: Identifier = Field(default="lost_customers",
                               description="the event list of lost customers")
    customer_field: Identifier = Field(default="id", description="the customer's id field")
    acquired_field: Identifier = Field(default="acquired",
                                       description="the acquisition date field")
    lost_field: Identifier = Field(default="lost", description="the loss date field")
    reason_field: Identifier = "reason"
    exempt_reasons: list[str] = Field(default=[], description="losses for these reasons "
                                      "claw nothing back")
    schedule: list[ClawbackStep] = Field(min_length=1, description=(
        "steps by increasing within_days; the first that fits gives the share"))
    commission_field: Identifier | None = Field(default=None, description=(
        "a field of the loss event holding the commission earned on the customer"))
    earned_events: Identifier | None = Field(default=None, description=(
        "an event list of acquired customers whose commission is recorded in the ledger"))
    earned_amount: Expr | None = Field(default=None, description=(
        "the commission earned on one acquired customer (a formula of its fields)"))
    pay: bool = Field(default=False, description=(
        "pay that commission as part of this policy's line (needed for a holdback)"))
    holdback: Decimal | None = Field(default=None, ge=0, le=1, description=(
        "the share of the commission held back until the window passes (with pay: true)"))

    @model_validator(mode="after")
    def _consistent(self) -> Clawback:
        days = [s.within_days for s in self.schedule]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("schedule steps must have increasing within_days")
        if (self.earned_events is None) != (self.earned_amount is None):
            raise ValueError("give earned_events and earned_amount together")
        if self.pay and self.earned_events is None:
            raise ValueError("pay: true needs earned_events and earned_amount")
        if self.holdback is not None and not self.pay:
            raise ValueError("holdback needs pay: true (the policy holds what it pays)")
        if self.earned_events is None and self.commission_field is None:
            raise ValueError("say where the commission on a customer comes from: "
                             "earned_events (recorded in the ledger) or commission_field")
        return self

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledClawback(self, ctx)


def _days(a: dt.date, b: dt.date) -> int:
    return (b - a).days


class _CompiledClawback(Compiled):
    line_type = "clawback"

    def __init__(self, spec: Clawback, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec_ = spec
        fields = ctx.event_fields(spec.events, "events")
        for key in ("customer_field", "lost_field", "acquired_field"):
            name = getattr(spec, key)
            if name not in fields:
                raise ctx.error(f"event list {spec.events!r} has no field {name!r}", key)
        if fields[spec.lost_field] != "date" or fields[spec.acquired_field] != "date":
            raise ctx.error(f"{spec.lost_field!r} and {spec.acquired_field!r} must be date "
                            "fields", "lost_field")
        if spec.exempt_reasons and spec.reason_field not in fields:
            raise ctx.error(f"event list {spec.events!r} has no field {spec.reason_field!r}",
                            "reason_field")
        if spec.commission_field is not None and fields.get(spec.commission_field) != "number":
            raise ctx.error(f"event list {spec.events!r} has no number field "
                            f"{spec.commission_field!r}", "commission_field")
        self.earned_amount = None
        if spec.earned_events is not None and spec.earned_amount is not None:
            efields = ctx.event_fields(spec.earned_events, "earned_events")
            if spec.customer_field not in efields:
                raise ctx.error(f"event list {spec.earned_events!r} has no field "
                                f"{spec.customer_field!r}", "earned_events")
            if efields.get(spec.acquired_field) != "date":
                raise ctx.error(f"event list {spec.earned_events!r} has no date field "
                                f"{spec.acquired_field!r}", "earned_events")
            self.earned_amount = ctx.formula(spec.earned_amount, "earned_amount", extra=efields)
        self.steps = [(s.within_days, s.share) for s in spec.schedule]
        self.window = self.steps[-1][0]
        self.exempt = frozenset(spec.exempt_reasons)
        self.holdback = spec.holdback or ZERO

    # ------------------------------------------------------------------ ledger
    def check_entry(self, entry: Any) -> None:
        """Refuse a malformed ledger entry (see :func:`incentives.ledger.check_entries`)."""
        if not isinstance(entry, dict) or set(entry) != {"customers"} or not isinstance(
                entry["customers"], dict):
            raise ValueError('a clawback entry is {"customers": {id: {...}}}')
        for cid, c in entry["customers"].items():
            if not isinstance(c, dict) or set(c) not in (_ENTRY_KEYS, _SETTLED_KEYS):
                raise ValueError(f"customer {cid!r}: needs {', '.join(sorted(_ENTRY_KEYS))}")
            dt.date.fromisoformat(c["acquired"])
            if "lost" in c:
                dt.date.fromisoformat(c["lost"])
            earned, clawed, held = (amount_of(c, k) for k in ("earned", "clawed", "held"))
            if not ZERO <= clawed <= earned or not ZERO <= held <= earned - clawed:
                raise ValueError(f"customer {cid!r}: amounts out of range")

    def share(self, days: int) -> Decimal:
        """The share clawed back for a customer lost ``days`` after acquisition."""
        for within, share in self.steps:
            if days <= within:
                return share
        return ZERO

    # ------------------------------------------------------------------ apply
    def apply(self, s: PayeeState) -> None:
        spec = self.spec_
        env = s.env
        entry = s.ledger.get(self.id)
        book: dict[str, dict[str, str]] = entry["customers"] if entry else {}
        start, _ = parse_period(s.record.period)
        paid = released = clawed_from_pay = ZERO
        won: list[dict[str, Any]] = []
        lost_rows: list[dict[str, Any]] = []
        if self.earned_amount is not None and spec.earned_events is not None:
            for event in s.record.events.get(spec.earned_events, ()):
                cid = str(event[spec.customer_field])
                amount = self.round(self.earned_amount(ChainMap(event, env)))
                if amount < 0:
                    raise EvaluationError(f"the commission on customer {cid!r} is negative "
                                          f"({amount})")
                held = self.round(amount * self.holdback) if spec.pay else ZERO
                acquired: dt.date = event[spec.acquired_field]
                old = book.get(cid)
                if old is not None and "lost" in old:  # won again after a loss: a new start
                    old = None
                if old is not None:  # more commission on a customer already in the book
                    acquired = max(acquired, dt.date.fromisoformat(old["acquired"]))
                    amount_total = Decimal(old["earned"]) + amount
                    held_total = Decimal(old["held"]) + held
                    clawed = old["clawed"]
                else:
                    amount_total, held_total, clawed = amount, held, "0"
                book[cid] = {"earned": str(amount_total), "acquired": acquired.isoformat(),
                             "clawed": clawed, "held": str(held_total)}
                if spec.pay:
                    paid += amount - held
                won.append({"id": cid, "acquired": acquired, "earned": amount, "held": held})
        for event in s.record.events.get(spec.events, ()):
            lost_rows.append(self._lost(event, book))
        for row in lost_rows:
            clawed_from_pay += row.pop("_from_pay", ZERO)
            released += row.pop("_released", ZERO)
        for cid in sorted(book):
            c = book[cid]
            if _days(dt.date.fromisoformat(c["acquired"]), start) > self.window:
                released += Decimal(c["held"])
                del book[cid]
        if book:
            s.ledger[self.id] = {"customers": {k: book[k] for k in sorted(book)}}
        else:
            s.ledger.pop(self.id, None)
        details: dict[str, Any] = {"lost": lost_rows}
        if self.earned_amount is not None:
            details["won"] = won
        if spec.pay:
            details.update(paid=paid, released=released,
                           held=sum((Decimal(c["held"]) for c in book.values()), ZERO))
        details["clawed_back"] = clawed_from_pay
        self.line(s, paid + released - clawed_from_pay, details)

    def _lost(self, event: dict[str, Any], book: dict[str, dict[str, str]]) -> dict[str, Any]:
        spec = self.spec_
        cid = str(event[spec.customer_field])
        lost: dt.date = event[spec.lost_field]
        row: dict[str, Any] = {"id": cid, "lost": lost}
        reason = event.get(spec.reason_field)
        if reason is not None:
            row["reason"] = reason
        c = book.pop(cid, None)
        if c is not None and "lost" in c:
            book[cid] = c
            row.update(amount=ZERO, note=f"already lost on {c['lost']}")
            return row
        if c is not None:
            earned, acquired = Decimal(c["earned"]), dt.date.fromisoformat(c["acquired"])
            already, held = Decimal(c["clawed"]), Decimal(c["held"])
            row["source"] = "ledger"
        else:
            value = event.get(spec.commission_field) if spec.commission_field else None
            acq = event.get(spec.acquired_field)
            if value is None or acq is None:
                row.update(amount=ZERO, note="no commission recorded for this customer"
                           if value is None else "no acquisition date for this customer")
                return row
            earned, acquired, already, held = self.round(value), acq, ZERO, ZERO
            row["source"] = "event"
        days = _days(acquired, lost)
        if days < 0:
            raise EvaluationError(f"customer {cid!r} was lost ({lost}) before it was "
                                  f"acquired ({acquired})")
        share = ZERO if reason in self.exempt else self.share(days)
        due = min(self.round(earned * share), earned - already)
        from_held = min(due, held)
        row.update(acquired=acquired, days=days, earned=earned, share=share, amount=-due)
        if reason in self.exempt:
            row["exempt"] = True
        if held:
            row["from_held"] = from_held
        row["_from_pay"] = due - from_held
        row["_released"] = held - from_held
        if _days(acquired, lost) <= self.window:
            book[cid] = {"earned": str(earned), "acquired": acquired.isoformat(),
                         "clawed": str(already + due), "held": "0", "lost": lost.isoformat()}
        return row


# ------------------------------------------------------------------ statement
#: what a clawback's line pays, and its phrases
_PAID = {"paid": N_("paid now"), "released": N_("released from holdback")}


def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a clawback's details: the lost customers and what was clawed back."""
    return "lost" in d and "clawed_back" in d


@explains(Clawback, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Clawback | None) -> list[Step]:
    """A clawback line: each lost customer's clawback, what is paid or released and what
    is clawed back."""
    d, f = line.details, c.fmt
    steps = []
    for row in d.get("lost", []):
        cid = row.get("id")
        if "note" in row:
            steps.append(Step(c.t("customer {id}: {note}", id=cid, note=c.say(row["note"])), None,
                              f.money(row.get("amount", ZERO))))
            continue
        what = c.t("customer {id} lost {lost}, {days} days after it was won", id=cid,
                   lost=plain(f, row.get("lost")), days=row.get("days"))
        if row.get("exempt"):
            what += f" ({row.get('reason')})"
        amount = dec(row.get("amount")) or ZERO
        earned, share = dec(row.get("earned")), dec(row.get("share"))
        expr = None
        if (earned is not None and share is not None
                and -amount == round_like_plan(c, earned * share)):
            expr = f"-({f.money(earned)} x {f.num(share)})"
        steps.append(Step(what, expr, f.money(amount)))
    for row in d.get("won", []):
        steps.append(Step(f"{row.get('id')} ({plain(f, row.get('acquired'))})", None,
                          f.money(row.get("earned"))))
    parts = []
    for key, what in _PAID.items():
        if key in d:
            steps.append(Step(c.t(what), None, f.money(d[key])))
            parts.append(f.money(d[key]))
    clawed = f.money(d.get("clawed_back", ZERO))
    steps.append(Step(c.t("clawed back from pay"), None, clawed))
    if parts:
        steps.append(Step(c.t("amount"), " + ".join(parts) + f" - {clawed}", f.money(line.amount)))
    elif line.amount:
        steps.append(Step(c.t("amount"), f"-{clawed}", f.money(line.amount)))
    return steps
