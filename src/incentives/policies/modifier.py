"""Band modifiers: multiply or add to earlier results by a band of some measure.

For example, customer evaluation bands: below 80 the commission is cut by 20%,
from 95 it is raised by 10%. The modifier adds one line: ``(factor - 1) x base
+ add``, where ``base`` is the sum of the named results in ``of``.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..money import ZERO
from ..runtime import PayeeState
from .base import CompileContext, Compiled, Expr, Identifier, Label, PolicyBase, StrictModel

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["Band", "Modifier"]

ONE = Decimal(1)


class Band(StrictModel):
    """A band of the measure: from where it starts, the factor and/or amount it applies."""

    #: where the band starts (written `from:`)
    start: Decimal = Field(alias="from")
    #: multiplies the base
    factor: Decimal = ONE
    #: added to the base
    add: Decimal = ZERO
    #: a name for the band, shown on statements
    label: Label | None = None


class Modifier(PolicyBase):
    """Adjust the sum of ``of`` by the band that ``measure`` falls in."""

    type: Literal["modifier"] = "modifier"
    #: the earlier results adjusted (their sum is the base)
    of: list[Identifier] = Field(min_length=1)
    #: what selects the band (a formula)
    measure: Expr
    #: where a measure exactly on a band's start belongs: `above` or `below`
    on_threshold: Literal["above", "below"]
    #: the bands, in increasing order of `from`
    bands: list[Band] = Field(min_length=1)

    @model_validator(mode="after")
    def _sorted(self) -> Modifier:
        starts = [b.start for b in self.bands]
        if any(b <= a for a, b in itertools.pairwise(starts)):
            raise ValueError("bands must be in increasing order of 'from'")
        return self

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledModifier(self, ctx)


class _CompiledModifier(Compiled):
    line_type = "modifier"

    def __init__(self, spec: Modifier, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.of = [ctx.formula(name, "of", i) for i, name in enumerate(spec.of)]
        self.measure = ctx.formula(spec.measure, "measure")
        self.starts = [b.start for b in spec.bands]
        self.bands = spec.bands
        self.above = spec.on_threshold == "above"
        self.spec_of = list(spec.of)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        base = sum((f(env) for f in self.of), ZERO)
        m = self.measure(env)
        at = len(s.pool)
        self.line(s, self.adjust(base, m, s.pool), explain=self.details, at=at)

    def emit(self, w: KernelWriter) -> bool:
        base = w.temp("base")
        w(f"{base} = _ZERO")
        for f in self.of:
            w(f"{base} = {base} + {w.evaluate(f)}")
        m = w.evaluate(self.measure)
        at = w.start()
        amount = w.temp()
        w(f"{amount} = {w.const(self.adjust)}({base}, {m}, pool)")
        w.line(self, amount, explain=self.details, at=at)
        return True

    def adjust(self, base: Decimal, m: Decimal, pool: list[Any]) -> Decimal:
        """The adjustment of ``base`` for the band ``m`` falls in; puts the measure, the
        base and the band's index (None: below every band) in the pool."""
        i = (bisect_right if self.above else bisect_left)(self.starts, m) - 1
        if i < 0:
            pool += (m, base, None)
            return ZERO
        band = self.bands[i]
        pool += (m, base, i)
        return (band.factor - ONE) * base + band.add

    def details(self, pool: list[Any], at: int) -> dict[str, Any]:
        """The line's details from the values captured when it was made."""
        m, base, i = pool[at:at + 3]
        if i is None:
            return {"measure": m, "measure_formula": self.measure.source,
                    "band": None, "of": self.spec_of, "base": base}
        band = self.bands[i]
        return {"measure": m, "measure_formula": self.measure.source,
                "of": self.spec_of, "band": i, "band_label": band.label,
                "factor": band.factor, "add": band.add, "base": base}
