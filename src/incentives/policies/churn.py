"""Churn penalties: lost customers cost the payee.

Each lost customer (an event in the record's ``events`` list) costs
``per_customer``, a formula that may read the event's fields (e.g.
``1.5 * monthly_value``) as well as earlier results. Customers lost for an
exempt reason cost nothing. The period's penalty is held at most at ``cap``
(e.g. ``0.4 * variable_pay``). The line is negative.
"""

from __future__ import annotations

from collections import ChainMap
from decimal import Decimal
from typing import Any, Literal

from ..money import ZERO
from ..runtime import PayeeState
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase

__all__ = ["ChurnPenalty"]


class ChurnPenalty(PolicyBase):
    """A penalty per lost customer, exemptions by reason, a cap per period."""

    type: Literal["churn_penalty"] = "churn_penalty"
    events: Identifier = "lost_customers"
    per_customer: Expr
    exempt_reasons: list[str] = []
    reason_field: Identifier = "reason"
    cap: Expr | None = None

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledChurn(self, ctx)


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

    def apply(self, s: PayeeState) -> None:
        env = s.env
        rows: list[dict[str, Any]] = []
        total = ZERO
        for event in s.record.events.get(self.events, ()):
            reason = event.get(self.reason_field)
            row: dict[str, Any] = {"id": event.get("id"), "reason": reason}
            if reason in self.exempt:
                row.update(amount=ZERO, exempt=True)
            else:
                amount: Decimal = self.per_customer(ChainMap(event, env))
                row["amount"] = amount
                total += amount
            rows.append(row)
        details: dict[str, Any] = {"customers": rows, "uncapped": total}
        if self.cap is not None:
            limit = self.cap(env)
            limit = max(limit, ZERO)
            details["cap"] = limit
            if total > limit:
                details["above_cap"] = total - limit
                total = limit
        self.line(s, -total, details)
