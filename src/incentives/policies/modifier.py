"""Band modifiers: multiply or add to earlier results by a band of some measure.

For example, customer evaluation bands: below 80 the commission is cut by 20%,
from 95 it is raised by 10%. The modifier adds one line: ``(factor - 1) x base
+ add``, where ``base`` is the sum of the named results in ``of``.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from ..money import ZERO
from ..runtime import Line, PayeeState
from ..wording import Step, Wording
from .base import (
    CompileContext,
    Compiled,
    Expr,
    Identifier,
    Label,
    PolicyBase,
    StrictModel,
    explains,
)

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


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a modifier's details: the measure, the band and the base."""
    return {"measure", "band", "base"} <= set(d)


@explains(Modifier, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Modifier | None) -> list[Step]:
    """A modifier line: the measure, the base, the band reached and the adjustment."""
    d, f = line.details, c.fmt
    steps = []
    mf = d.get("measure_formula")
    steps.append(Step(c.t("measure"), c.name(str(mf)) if mf else None, f.num(d.get("measure"))))
    of = d.get("of")
    if of:
        steps.append(Step(c.t("of"), " + ".join(c.name(str(o)) for o in of),
                          f.money(d.get("base"))))
    if d.get("band") is None:
        steps.append(Step(c.t("below the first band: no change"), None, f.money(line.amount)))
        return steps
    i = int(d["band"])
    band = c.t("band {n}", n=i + 1)
    bands = list(getattr(spec, "bands", []) or [])
    if i < len(bands):
        band = c.t("band {n} (from {start})", n=i + 1, start=f.num(bands[i].start))
    if d.get("band_label"):
        band += f" {d['band_label']}"
    steps.append(Step(band))
    steps.append(Step(c.t("adjustment"),
                      f"({f.num(d.get('factor'))} - 1) x {f.money(d.get('base'))} + "
                      f"{f.num(d.get('add'))}", f.money(line.amount)))
    return steps
