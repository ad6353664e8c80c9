"""Free formulas: a line whose amount is a formula, and a named value with no line.

``value`` policies name an intermediate result (``variable_pay = commission +
new_business``) that later policies read; they add nothing to pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ..formulas import NameType
from ..runtime import Explained, Line, PayeeState
from ..wording import Step, Wording
from .base import CompileContext, Compiled, Expr, PolicyBase, explains

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["FormulaLine", "Value"]


class FormulaLine(PolicyBase):
    """A line whose amount is ``amount``, a formula over earlier names."""

    type: Literal["formula"] = "formula"
    #: the line's amount (a formula over earlier names)
    amount: Expr

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledFormulaLine(self, ctx)


class _CompiledFormulaLine(Compiled):
    def __init__(self, spec: FormulaLine, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.amount = ctx.formula(spec.amount, "amount")
        self._amount = self.amount.fn
        self._explain = Explained(self.details, self.json_details)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        amount = self._amount(env)
        # captured: the values of the formula's names (its own record, Formula.capture)
        self.line(s, amount, explain=self._explain, captured=self.amount.capture(env))

    def emit(self, w: KernelWriter) -> bool:
        amount = w.evaluate(self.amount)
        w.line(self, amount, explain=self._explain, captured=w.capture(self.amount))
        return True

    def details(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """The line's details from the formula's values captured when it was made."""
        f = self.amount
        return {"formula": f.source, "substituted": f.substituted(values)}

    def json_details(self, values: tuple[Any, ...], amount: Any) -> dict[str, Any]:
        """What ``jsonable(line.details)`` gives (text only), without a mapping per line."""
        f = self.amount
        return {"formula": f.source, "substituted": f.substituter()(values)}


class Value(PolicyBase):
    """A named intermediate result: no line, but later formulas can read it.

    With ``round: true`` the value is rounded to the plan's quantum.
    """

    type: Literal["value"] = "value"
    #: the value (a formula)
    value: Expr
    #: round the value to the plan's quantum
    round: bool = False

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "any"}

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledValue(self, ctx)


class _CompiledValue(Compiled):
    def __init__(self, spec: Value, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.value = ctx.formula(spec.value, "value", expect=None)
        self.rounding = spec.round
        ctx.names[spec.id] = self.value.result_type
        self._value = self.value.fn

    def apply(self, s: PayeeState) -> None:
        v = self._value(s.env)
        if self.rounding:
            v = self.round(v)
        s.env[self.id] = s.values[self.id] = v

    def emit(self, w: KernelWriter) -> bool:
        v = w.evaluate(self.value)
        if self.rounding:
            w(f"{v} = {w.const(self.round)}({v})")
        w(f"e[{self.id!r}] = values[{self.id!r}] = {v}")
        return True


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a formula line's details: the formula and its substitution, nothing else."""
    return set(d) == {"formula", "substituted"}


@explains(FormulaLine, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: FormulaLine | None) -> list[Step]:
    """A formula line: the formula and its substitution."""
    d, f = line.details, c.fmt
    return [Step(c.t("formula"), f.expr(str(d.get("formula")))),
            Step(c.t("amount"), f.expr(str(d.get("substituted"))), f.money(line.amount))]
