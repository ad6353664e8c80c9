"""Composition: the larger, the smaller, or the sum of several policies, as one line.

The children are evaluated as if alone (their lines are not paid); the
combined amount is paid as the parent's line, and the details say what each
child came to. Each child's name is then readable by later policies.

>>> from incentives import Plan, FormulaLine, LargerOf
>>> best = LargerOf(id="pay", policies=[FormulaLine(id="commission", amount="sales * 0.05"),
...                                     FormulaLine(id="guarantee", amount=1000)])
>>> plan = Plan(name="demo", inputs={"metrics": {"sales": {}}}, policies=[best])
>>> plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": 30000}}]).results[0].total
Decimal('1500.00')
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from pydantic import Field, model_validator

from ..money import ZERO
from ..runtime import Line, PayeeState
from ..wording import N_, Step, Wording, dec, signed_sum
from .base import CompileContext, Compiled, PolicyBase, PolicySpec, explains

__all__ = ["LargerOf", "SmallerOf", "SumOf"]


class _Combine(PolicyBase):
    #: the child policies, evaluated as if alone
    policies: list[PolicySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _payee_scoped(self) -> _Combine:
        for p in self.policies:
            if p.scope != "payee":
                raise ValueError(f"policy {p.id!r} is team-scoped and cannot be combined")
        return self

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledCombine(self, ctx)


class LargerOf(_Combine):
    """Pay the largest of the children's amounts."""

    type: Literal["larger_of"] = "larger_of"


class SmallerOf(_Combine):
    """Pay the smallest of the children's amounts."""

    type: Literal["smaller_of"] = "smaller_of"


class SumOf(_Combine):
    """Pay the sum of the children's amounts, as one line."""

    type: Literal["sum_of"] = "sum_of"


class CombineCapture(NamedTuple):
    """What a combination's line is explained from (captured when it is made)."""

    #: each child's amount, by the child's id
    amounts: dict[str, Decimal]
    #: the children's own lines (each explains itself)
    lines: list[Line]
    #: the child whose amount was taken (larger_of, smaller_of), or None
    chosen: str | None


class _CompiledCombine(Compiled):
    line_type = "combined"

    def __init__(self, spec: _Combine, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.kind = spec.type
        self.children: list[Compiled] = []
        for i, child in enumerate(spec.policies):
            sub = ctx.sub("policies", i, policy=child.id)
            self.children.append(child.compile(sub))
        for child in spec.policies:
            ctx.define(child.publishes())

    def apply(self, s: PayeeState) -> None:
        scratch = PayeeState(s.record, s.env.copy())
        scratch.measures, scratch.book = s.measures, s.book
        amounts: dict[str, Any] = {}
        for child in self.children:
            before = scratch.total
            if child.applies(scratch):
                child.apply(scratch)
            else:
                child.skip(scratch)
            amounts[child.id] = scratch.total - before
        values = list(amounts.values())
        if self.kind == "larger_of":
            amount = max(values)
        elif self.kind == "smaller_of":
            amount = min(values)
        else:
            amount = sum(values, ZERO)
        chosen = [k for k, v in amounts.items() if v == amount] if self.kind != "sum_of" else []
        for k, v in scratch.env.items():
            if k not in s.env or k in amounts:
                s.env[k] = v
        for k, v in amounts.items():
            s.env[k] = v
        self.line(s, amount, explain=self.details, captured=CombineCapture(
            amounts, scratch.lines, chosen[0] if chosen else None))

    def details(self, c: CombineCapture) -> dict[str, Any]:
        """The line's details: the rule, each child's amount and its own working."""
        details: dict[str, Any] = {"rule": self.kind, "children": c.amounts}
        # each child's own working, for statements
        details["workings"] = {
            line.policy: {"type": line.type, "amount": line.amount, "details": line.details}
            for line in c.lines}
        if c.chosen is not None:
            details["chosen"] = c.chosen
        return details


# ------------------------------------------------------------------ statement
#: each rule of combination, and its phrase
_RULES = {"larger_of": N_("the larger of"), "smaller_of": N_("the smaller of"),
          "sum_of": N_("the sum of")}


def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a combination's details: the rule and the children."""
    return "rule" in d and "children" in d


@explains(LargerOf, SmallerOf, SumOf, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: PolicyBase | None) -> list[Step]:
    """A combination line (larger_of, smaller_of, sum_of): each child's own working, its
    amount, and the rule over the children's amounts."""
    d, f = line.details, c.fmt
    children = d.get("children", {})
    workings = d.get("workings", {})
    child_specs = {s.id: s for s in getattr(spec, "policies", []) or []}
    steps = []
    for k, v in children.items():
        w = workings.get(k) if isinstance(workings, Mapping) else None
        if isinstance(w, Mapping) and isinstance(w.get("details"), Mapping):
            child_spec = child_specs.get(str(k))
            child = Line(str(k), child_spec.title if child_spec else str(k),
                         dec(w.get("amount")) or ZERO, str(w.get("type")), dict(w["details"]))
            working = c.working_for(child_spec, child.details)
            try:
                inner = working(c, child, child_spec)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
                inner = []
            steps += [Step(f"{c.name(str(k))} › {s.label}", s.expr, s.result, s.team)
                      for s in inner]
        steps.append(Step(c.name(str(k)), None, f.money(v)))
    amounts = [f.money(v) for v in children.values()]
    rule = str(d.get("rule"))
    expr = {"larger_of": f"max({', '.join(amounts)})",
            "smaller_of": f"min({', '.join(amounts)})"}.get(rule, signed_sum(amounts))
    steps.append(Step(c.t(_RULES[rule]) if rule in _RULES else rule, expr, f.money(line.amount)))
    return steps
