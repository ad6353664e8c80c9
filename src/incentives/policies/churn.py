"""Churn penalties: lost customers cost the payee.

Each lost customer (an event in the record's ``events`` list) costs
``per_customer``, a formula that may read the event's fields (e.g.
``1.5 * monthly_value``) as well as earlier results. Customers lost for an
exempt reason cost nothing. The period's penalty is held at most at ``cap``
(e.g. ``0.4 * variable_pay``, or an absolute amount). The line is negative.

What is above the cap is forgiven (``above_cap: forgive``, the default) or
carried forward (``above_cap: carry_forward``): kept in the payee's ledger and
added to the next evaluated period's penalty, where the cap applies again.
A clawback of the commission earned on a lost customer is
:class:`~incentives.policies.clawback.Clawback`.

A penalty never raises pay: a lost customer whose ``per_customer`` comes to
less than zero (a negative ``monthly_value``, a formula that can go negative)
is a :class:`PenaltyError` naming the payee and the event, and that payee is
not paid (the others are).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field

from ..errors import RecordError
from ..money import ZERO, amount_of
from ..runtime import Explained, Line, PayeeState, money_places, money_text, plain_json
from ..wording import Step, Wording, dec, formula_shown, signed_sum
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase, explains

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["ChurnPenalty", "PenaltyError"]


class PenaltyError(RecordError):
    """A penalty would raise pay: a lost customer's ``per_customer`` is below zero."""


class ChurnPenalty(PolicyBase):
    """A penalty per lost customer, exemptions by reason, a cap per period."""

    type: Literal["churn_penalty"] = "churn_penalty"
    #: the event list of lost customers
    events: Identifier = "lost_customers"
    #: the penalty per lost customer: a formula that may read the event's fields
    per_customer: Expr
    #: reasons that cost nothing (e.g. closure)
    exempt_reasons: list[str] = []
    #: the event field holding the reason
    reason_field: Identifier = "reason"
    #: the most the period's penalty comes to (a formula, e.g. `0.4 * variable_pay`)
    cap: Expr | None = None
    above_cap: Literal["forgive", "carry_forward"] = Field(default="forgive", description=(
        "the part above the cap: forgiven, or carried forward to the next period's penalty"))

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledChurn(self, ctx)


class LostCustomer(NamedTuple):
    """One lost customer of a churn penalty line, as it was charged."""

    #: the event's ``id`` (None when it has none)
    id: Any
    #: the event's reason (None when it has none)
    reason: Any
    #: the penalty for the customer, or None when the reason is exempt
    amount: Decimal | None
    #: the values of ``per_customer``'s names (None when exempt)
    values: tuple[Any, ...] | None


class ChurnCapture(NamedTuple):
    """What a churn penalty line is explained from (captured when it is made)."""

    #: each lost customer, in the order of the record's events (a kernel captures each
    #: one's values in the order of LostCustomer's fields)
    customers: tuple[LostCustomer, ...]
    #: the penalty before any cap (and before what was carried in)
    uncapped: Decimal
    #: the penalty carried in from earlier periods (carry_forward), or None
    carried_in: Decimal | None
    #: the cap, or None without one
    limit: Decimal | None
    #: how much the penalty was above the cap, or None when it was not
    above: Decimal | None
    #: what is carried to the next period (carry_forward), or None
    carried_forward: Decimal | None
    #: what the cap forgave, or None
    forgiven: Decimal | None
    #: the values of the cap formula's names, or None without a cap
    cap_values: tuple[Any, ...] | None


class _CompiledChurn(Compiled):
    line_type = "penalty"

    def __init__(self, spec: ChurnPenalty, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        fields = ctx.event_fields(spec.events, "events")
        if spec.exempt_reasons and spec.reason_field not in fields:
            raise ctx.error(f"event list {spec.events!r} has no field {spec.reason_field!r}",
                            "reason_field")
        self.events = spec.events
        self.per_customer = ctx.formula(spec.per_customer, "per_customer", extra=fields)
        self.cap = ctx.number(spec.cap, "cap")
        self.exempt = frozenset(spec.exempt_reasons)
        self.reason_field = spec.reason_field
        self.carry = spec.above_cap == "carry_forward"
        if self.carry and spec.cap is None:
            raise ctx.error("above_cap: carry_forward needs a cap", "above_cap")
        self._explain = Explained(self.details, self.json_details)

    def check_entry(self, entry: Any) -> None:
        """Refuse a malformed ledger entry (see :func:`incentives.ledger.check_entries`)."""
        if not isinstance(entry, dict) or set(entry) != {"carried"}:
            raise ValueError('a churn entry is {"carried": "<amount>"}')
        if amount_of(entry, "carried") < 0:
            raise ValueError("a carried penalty cannot be negative")

    def apply(self, s: PayeeState) -> None:
        env = s.env
        per_customer = self.per_customer
        events = s.record.events.get(self.events, ())
        lost: list[LostCustomer] = []
        total = ZERO
        for event in events:
            reason = event.get(self.reason_field)
            if reason in self.exempt:
                lost.append(LostCustomer(event.get("id"), reason, None, None))
            else:
                scope = {**env, **event}  # the event's fields first (a dict: faster)
                amount: Decimal = per_customer(scope)
                if amount < ZERO:
                    self.would_pay(event, events, amount)
                lost.append(LostCustomer(event.get("id"), reason, amount,
                                         per_customer.capture(scope)))
                total += amount
        uncapped = total
        carried_in = limit = above = carried_forward = forgiven = None
        entry = s.ledger.get(self.id) if self.carry else None
        if entry:
            carried_in = Decimal(entry["carried"])
            total += carried_in
        if self.cap is not None:
            limit = max(self.cap(env), ZERO)
            if total > limit:
                above = total - limit
                if self.carry:
                    due = self.round(total)
                    total = min(due, self.round(limit))
                    carried_forward = due - total
                else:
                    forgiven = total - limit
                    total = limit
        if self.carry:
            if carried_forward:
                s.ledger[self.id] = {"carried": str(carried_forward)}
            else:
                s.ledger.pop(self.id, None)
        self.line(s, -total, explain=self._explain, captured=ChurnCapture(
            tuple(lost), uncapped, carried_in, limit, above, carried_forward, forgiven,
            self.cap.capture(env) if self.cap is not None else None))

    def emit(self, w: KernelWriter) -> bool:
        if self.carry:  # a carried penalty goes through the ledger: called as it is
            return False
        events, total, lost = w.temp("events"), w.temp("t"), w.temp("lost")
        w(f"{events} = s.record.events.get({self.events!r}, ())")
        w(f"{lost} = []")
        w(f"{total} = _ZERO")
        per_customer = w.const(self.per_customer)
        with w.block(f"for event in {events}"):
            w(f"reason = event.get({self.reason_field!r})")
            with w.block(f"if reason in {w.const(self.exempt)}"):
                w(f"{lost}.append(" + w.record(LostCustomer, id='event.get("id")',
                                              reason="reason", amount="None",
                                              values="None") + ")")
            with w.block("else"):
                w("scope = {**e, **event}")  # the event's fields first, as apply
                w(f"amount = {per_customer}(scope)")
                with w.block("if amount < _ZERO"):
                    w(f"{w.const(self.would_pay)}(event, {events}, amount)")
                values = f"{w.const(self.per_customer.capture)}(scope)"
                w(f"{lost}.append(" + w.record(LostCustomer, id='event.get("id")',
                                              reason="reason", amount="amount",
                                              values=values) + ")")
                w(f"{total} = {total} + amount")
        uncapped = w.temp("uncapped")
        w(f"{uncapped} = {total}")
        customers = f"{w.const(tuple)}({lost})"
        if self.cap is None:
            captured = w.record(ChurnCapture, customers=customers, uncapped=uncapped,
                                carried_in="None", limit="None", above="None",
                                carried_forward="None", forgiven="None", cap_values="None")
        else:
            limit, above, forgiven = w.temp("limit"), w.temp("above"), w.temp("forgiven")
            value = w.evaluate(self.cap)
            w(f"{limit} = _ZERO if _ZERO > {value} else {value}")  # max(value, 0)
            w(f"{above} = {forgiven} = None")
            with w.block(f"if {total} > {limit}"):
                w(f"{above} = {total} - {limit}")
                w(f"{forgiven} = {total} - {limit}")
                w(f"{total} = {limit}")
            captured = w.record(ChurnCapture, customers=customers, uncapped=uncapped,
                                carried_in="None", limit=limit, above=above,
                                carried_forward="None", forgiven=forgiven,
                                cap_values=w.capture(self.cap))
        w.line(self, f"-{total}", explain=self._explain, captured=captured)
        return True

    def would_pay(self, event: dict[str, Any], events: Any, amount: Decimal) -> None:
        """Raise the :class:`PenaltyError` of a lost customer that would cost less than
        nothing."""
        i = next((k for k, e in enumerate(events) if e is event), 0)
        ident = event.get("id")
        which = f"event {str(ident)[:40]!r}" if ident is not None else f"event {i + 1}"
        raise PenaltyError(
            f"penalty {self.id!r}: {self.events} {which} would cost {amount} "
            f"(per_customer {self.per_customer.source!r}), below zero; a penalty never "
            "raises pay", field=f"events.{self.events}[{i}]")

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from the values captured when it was made."""
        c = ChurnCapture._make(captured)
        customers: list[dict[str, Any]] = []
        for lost in map(LostCustomer._make, c.customers):
            row: dict[str, Any] = {"id": lost.id, "reason": lost.reason}
            if lost.amount is None:
                row.update(amount=ZERO, exempt=True)
            else:
                assert lost.values is not None
                row.update(formula=self.per_customer.source,
                           substituted=self.per_customer.substituted(lost.values),
                           amount=lost.amount)
            customers.append(row)
        details: dict[str, Any] = {"customers": customers, "uncapped": c.uncapped}
        if c.carried_in is not None:
            details["carried_in"] = c.carried_in
        if c.limit is not None:
            assert self.cap is not None
            assert c.cap_values is not None
            details["cap"] = c.limit
            details["cap_formula"] = self.cap.source
            details["cap_substituted"] = self.cap.substituted(c.cap_values)
            if c.above is not None:
                details["above_cap"] = c.above
                if c.carried_forward is not None:
                    details["carried_forward"] = c.carried_forward
                else:
                    details["forgiven"] = c.forgiven
        return details

    def json_details(self, captured: Iterable[Any], amount: Decimal) -> dict[str, Any]:
        """What ``jsonable(line.details)`` gives, built straight from the capture."""
        (lost, uncapped, carried_in, limit, above, carried_forward, forgiven,
         cap_values) = captured
        places = money_places(amount)
        customers: list[dict[str, Any]] = []
        source = self.per_customer.source
        substituted = None
        for ident, reason, lost_amount, values in lost:
            row: dict[str, Any] = {"id": plain_json(ident), "reason": plain_json(reason)}
            if lost_amount is None:
                row["amount"] = money_text(ZERO, places)
                row["exempt"] = True
            else:
                if substituted is None:
                    substituted = self.per_customer.substituter()
                row["formula"] = source
                row["substituted"] = substituted(values)
                row["amount"] = money_text(lost_amount, places)
            customers.append(row)
        details: dict[str, Any] = {"customers": customers,
                                   "uncapped": money_text(uncapped, places)}
        if carried_in is not None:
            details["carried_in"] = money_text(carried_in, places)
        if limit is not None:
            assert self.cap is not None
            assert cap_values is not None
            details["cap"] = money_text(limit, places)
            details["cap_formula"] = self.cap.source
            details["cap_substituted"] = self.cap.substituter()(cap_values)
            if above is not None:
                details["above_cap"] = money_text(above, places)
                if carried_forward is not None:
                    details["carried_forward"] = money_text(carried_forward, places)
                else:
                    details["forgiven"] = money_text(forgiven, places)
        return details


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a churn penalty's details: the lost customers and the amount
    before the cap."""
    return "customers" in d and "uncapped" in d


@explains(ChurnPenalty, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: ChurnPenalty | None) -> list[Step]:
    """A churn penalty line: each lost customer's charge, the amount carried in, the cap
    and what is charged."""
    d, f = line.details, c.fmt
    steps = []
    parts = []
    formulas = {row["formula"] for row in d.get("customers", []) if "formula" in row}
    if len(formulas) == 1:
        steps.append(Step(c.t("per lost customer"), f.expr(formulas.pop())))
    for row in d.get("customers", []):
        cid, reason = row.get("id"), row.get("reason")
        if row.get("exempt"):
            steps.append(Step(c.t("customer {id}: exempt ({reason})", id=cid, reason=reason), None,
                              f.money(ZERO)))
            continue
        amt = f.money(row.get("amount"))
        parts.append(amt)
        expr = f.expr(str(row["substituted"])) if "substituted" in row else None
        steps.append(Step(c.t("customer {id} ({reason})", id=cid, reason=reason), expr, amt))
    due = dec(d.get("uncapped")) or ZERO
    if "carried_in" in d:
        carried = f.money(d["carried_in"])
        steps.append(Step(c.t("carried in from earlier periods"), None, carried))
        parts.append(carried)
        due += dec(d["carried_in"]) or ZERO
    if not parts:
        steps.append(Step(c.t("no lost customers") if not d.get("customers") else c.t("charged"),
                          None, f.money(line.amount)))
        return steps
    shown_due = f.money(due)
    if len(parts) > 1:
        steps.append(Step(c.t("before the cap"), signed_sum(parts), shown_due))
    if "cap" in d:
        cap = f.money(d["cap"])
        expr = formula_shown(c, d.get("cap_formula"), d.get("cap_substituted"))
        steps.append(Step(c.t("cap"), expr, cap))
        steps.append(Step(c.t("charged"), f"-min({shown_due}, {cap})", f.money(line.amount)))
        if d.get("carried_forward"):
            steps.append(Step(c.t("{amount} above the cap is carried forward to the next period",
                                  amount=f.money(d["carried_forward"]))))
        elif "above_cap" in d:
            steps.append(Step(c.t("{amount} above the cap is not charged",
                                  amount=f.money(d["above_cap"]))))
    else:
        steps.append(Step(c.t("charged"), f"-{shown_due}", f.money(line.amount)))
    return steps
