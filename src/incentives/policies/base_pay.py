"""Base pay: a fixed amount, or one looked up by attributes, optionally prorated.

>>> from incentives import Plan, BasePay
>>> plan = Plan(name="demo", inputs={"attributes": {"grade": {"type": "text"}}},
...             policies=[BasePay(id="base", by=["grade"], table={"A": 5000, "B": 4000})])
>>> plan.evaluate([{"payee": "a", "period": "2026-05", "attributes": {"grade": "B"}}]).results[0].total
Decimal('4000.00')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import model_validator

from ..errors import EvaluationError
from ..money import to_decimal
from ..runtime import Line, PayeeState
from ..wording import Step, Wording
from .base import CompileContext, Compiled, Expr, Identifier, PolicyBase, explains

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["BasePay"]


class BasePay(PolicyBase):
    """Base pay: ``amount`` (a formula), or a ``table`` looked up ``by`` attributes.

    ``prorate`` is a factor formula, e.g. ``days_worked / period_days``.
    """

    type: Literal["base_pay"] = "base_pay"
    #: a fixed amount (a formula); or give `by` and `table`
    amount: Expr | None = None
    #: the attributes the table is looked up by, in nesting order
    by: list[Identifier] | None = None
    #: amounts nested one level per attribute in `by`
    table: dict[str, Any] | None = None
    #: the amount for a combination the table lacks (else such a record is an error)
    default: Expr | None = None
    #: a factor formula, e.g. `days_worked / period_days`
    prorate: Expr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BasePay:
        if (self.amount is None) == (self.table is None):
            raise ValueError("give either 'amount' or 'by' with 'table'")
        if self.table is not None and not self.by:
            raise ValueError("a 'table' needs 'by': the attributes it is looked up by")
        if self.by is not None and self.table is None:
            raise ValueError("'by' needs a 'table'")
        return self

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledBasePay(self, ctx)


class BasePayCapture(NamedTuple):
    """What a base pay line is explained from (captured when it is made)."""

    #: the table key looked up (the values of ``by``), or None for an ``amount``
    key: tuple[str, ...] | None
    #: the full amount, before proration
    full: Decimal
    #: the proration factor, or None when not prorated
    factor: Decimal | None
    #: the values of the proration formula's names, or None when not prorated
    prorate_values: tuple[Any, ...] | None


class _CompiledBasePay(Compiled):
    line_type = "base"

    def __init__(self, spec: BasePay, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.amount = ctx.number(spec.amount, "amount")
        self.default = ctx.number(spec.default, "default")
        self.prorate = ctx.number(spec.prorate, "prorate")
        self.by = tuple(spec.by or ())
        for i, attr in enumerate(self.by):
            if attr not in ctx.names:
                ctx.formula(attr, "by", i)  # raises with a did-you-mean
        self.table: dict[tuple[str, ...], Decimal] = {}
        if spec.table is not None:
            self._flatten(spec.table, (), ctx)

    def _flatten(self, node: Any, key: tuple[str, ...], ctx: CompileContext) -> None:
        depth = len(key)
        if depth == len(self.by):
            try:
                self.table[key] = to_decimal(node, what="amount")
            except ValueError as exc:
                raise ctx.error(str(exc), "table", *key) from None
            return
        if not isinstance(node, dict):
            raise ctx.error(
                f"the table must be nested {len(self.by)} levels deep (by {', '.join(self.by)})",
                "table", *key,
            )
        for k, v in node.items():
            self._flatten(v, (*key, str(k)), ctx)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        key, full = self.full_amount(env)
        if self.prorate is None:
            self.line(s, full, explain=self.details,
                      captured=BasePayCapture(key, full, None, None))
            return
        factor = self.prorate.fn(env)
        self.line(s, full * factor, explain=self.details,
                  captured=BasePayCapture(key, full, factor, self.prorate.capture(env)))

    def emit(self, w: KernelWriter) -> bool:
        key, full = w.temp("key"), w.temp("full")
        if self.amount is None:
            # the table lookup written out; a key the table lacks (a default, or the
            # error) is left to full_amount
            parts = "".join(f"{w.const(str)}(e[{a!r}]), " for a in self.by)
            w(f"{key} = ({parts})")
            w(f"{full} = {w.const(self.table)}.get({key})")
            with w.block(f"if {full} is None"):
                w(f"{key}, {full} = {w.const(self.full_amount)}(e)")
        else:
            w(f"{key}, {full} = {w.const(self.full_amount)}(e)")
        if self.prorate is None:
            w.line(self, full, explain=self.details, captured=w.record(
                BasePayCapture, key=key, full=full, factor="None", prorate_values="None"))
            return True
        factor = w.evaluate(self.prorate)
        values = w.capture(self.prorate)
        w.line(self, f"{full} * {factor}", explain=self.details, captured=w.record(
            BasePayCapture, key=key, full=full, factor=factor, prorate_values=values))
        return True

    def full_amount(self, env: dict[str, Any]) -> tuple[tuple[str, ...] | None, Decimal]:
        """The table key looked up (None for an ``amount``) and the full amount, unprorated."""
        key: tuple[str, ...] | None = None
        if self.amount is not None:
            full = self.amount.fn(env)
        else:
            key = tuple([str(env[a]) for a in self.by])
            found = self.table.get(key)
            if found is None:
                if self.default is None:
                    known = ", ".join("/".join(k) for k in sorted(self.table))
                    raise EvaluationError(
                        f"no base pay for {' / '.join(f'{a}={v!r}' for a, v in zip(self.by, key, strict=True))}"
                        f" (the table has {known})"
                    )
                found = self.default(env)
            full = found
        return key, full

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from the values captured when it was made."""
        c = BasePayCapture._make(captured)
        details: dict[str, Any] = {}
        if self.amount is not None:
            details["formula"] = self.amount.source
        else:
            details["lookup"] = dict(zip(self.by, c.key or (), strict=True))
        details["full_amount"] = c.full
        if self.prorate is not None:
            assert c.prorate_values is not None
            details["prorate"] = {"formula": self.prorate.source,
                                  "substituted": self.prorate.substituted(c.prorate_values),
                                  "factor": c.factor}
        return details


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is base pay's details: the full amount."""
    return "full_amount" in d


@explains(BasePay, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: BasePay | None) -> list[Step]:
    """A base pay line: the full amount (looked up, or its formula) and its proration."""
    d, f = line.details, c.fmt
    steps = []
    full = f.money(d.get("full_amount"))
    if "lookup" in d:
        keys = ", ".join(f"{c.name(str(k))}={v}" for k, v in d["lookup"].items())
        steps.append(Step(c.t("looked up by {keys}", keys=keys), None, full))
    elif "formula" in d:
        steps.append(Step(c.t("full amount"), c.name(str(d["formula"])), full))
    pr = d.get("prorate")
    if isinstance(pr, Mapping):
        steps.append(Step(c.t("prorated"),
                          f"{full} x ({f.expr(str(pr.get('substituted')))})", f.money(line.amount)))
    return steps
