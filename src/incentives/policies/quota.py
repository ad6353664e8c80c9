"""Quota and attainment.

A payee's quota is an input (a formula), or is split from a group target by
weights (``split``), exactly, so the members' quotas add up to the target.
The policy publishes ``<id>`` (the quota) and ``<id>_attainment`` (``actual /
quota``); it adds no line.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from ..errors import EvaluationError
from ..formulas import NameType
from ..money import ZERO, split
from ..runtime import PayeeState, PeriodContext
from .base import CompileContext, Compiled, Expr, PolicyBase, StrictModel

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["Quota", "QuotaSplit"]


class QuotaSplit(StrictModel):
    """Split a group ``target`` among the group's members by ``weight``."""

    #: the group's target (the same for every member)
    target: Expr
    #: each member's weight in the split
    weight: Expr = "1"
    #: the split is exact to this quantum
    quantum: Decimal = Decimal("0.01")


class Quota(PolicyBase):
    """A payee's quota (``quota``, or ``split`` from a group target) and attainment."""

    type: Literal["quota"] = "quota"
    #: what counts against the quota (a formula)
    actual: Expr
    #: the payee's quota (a formula); or give `split`
    quota: Expr | None = None
    #: split a group target among the group's members by weight
    split: QuotaSplit | None = None

    @model_validator(mode="after")
    def _one(self) -> Quota:
        if (self.quota is None) == (self.split is None):
            raise ValueError("give either 'quota' (per payee) or 'split' (from a group target)")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_attainment": "number"}

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledQuota(self, ctx)


class _CompiledQuota(Compiled):
    def __init__(self, spec: Quota, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.actual = ctx.formula(spec.actual, "actual")
        self.quota = ctx.number(spec.quota, "quota")
        self.split = spec.split
        if spec.split is not None:
            self.scope = "group"
            self.target = ctx.formula(spec.split.target, "split", "target")
            self.weight = ctx.formula(spec.split.weight, "split", "weight")

    def _publish(self, s: PayeeState, quota: Decimal) -> None:
        actual = self.actual(s.env)
        if quota == 0:
            raise EvaluationError(f"quota {self.id!r} is zero: attainment is undefined")
        s.set_value(self.id, quota)
        s.set_value(f"{self.id}_attainment", actual / quota)

    def apply(self, s: PayeeState) -> None:
        assert self.quota is not None
        self._publish(s, self.quota(s.env))

    def emit(self, w: KernelWriter) -> bool:
        if self.quota is None:  # split from a group target: a team step
            return False
        quota = w.evaluate(self.quota)
        actual = w.evaluate(self.actual)
        message = w.const(f"quota {self.id!r} is zero: attainment is undefined")
        with w.block(f"if {quota} == 0"):
            w(f"raise {w.const(EvaluationError)}({message})")
        w(f"e[{self.id!r}] = values[{self.id!r}] = {quota}")
        name = f"{self.id}_attainment"
        w(f"e[{name!r}] = values[{name!r}] = {actual} / {quota}")
        return True

    def skip(self, s: PayeeState) -> None:
        super().skip(s)
        s.env[f"{self.id}_attainment"] = ZERO

    def apply_group(self, states: list[PayeeState], group: str | None,
                    period: PeriodContext) -> None:
        if self.split is None:
            super().apply_group(states, group, period)
            return
        members = self.applying(states)
        if not members:
            return
        targets = {self.target(s.env) for s in members}
        if len(targets) != 1:
            raise EvaluationError(
                f"quota {self.id!r}: the group target differs between members "
                f"({', '.join(sorted(map(str, targets)))})", group=group)
        target = targets.pop()
        members.sort(key=lambda s: s.payee)
        weights = [self.weight(s.env) for s in members]
        shares = split(target, weights, quantum=self.split.quantum)
        for s, q in zip(members, shares, strict=True):
            self._publish(s, q)
