"""Band modifiers: multiply or add to earlier results by a band of some measure.

For example, customer evaluation bands: below 80 the commission is cut by 20%,
from 95 it is raised by 10%. The modifier adds one line: ``(factor - 1) x base
+ add``, where ``base`` is the sum of the named results in ``of``.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

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


class ModifierCapture(NamedTuple):
    """What a modifier line is explained from (captured when it is made)."""

    #: the measure that chose the band
    measure: Decimal
    #: what was adjusted (the sum of ``of``)
    base: Decimal
    #: the index of the band reached, or None below every band
    band: int | None


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
        i = self.band(m)
        self.line(s, self.adjust(base, i), explain=self.details,
                  captured=ModifierCapture(m, base, i))

    def emit(self, w: KernelWriter) -> bool:
        base = w.temp("base")
        w(f"{base} = _ZERO")
        for f in self.of:
            w(f"{base} = {base} + {w.evaluate(f)}")
        m = w.evaluate(self.measure)
        band, amount = w.temp("band"), w.temp()
        # band(), written out
        bisect = bisect_right if self.above else bisect_left
        w(f"{band} = {w.const(bisect)}({w.const(self.starts)}, {m}) - 1")
        with w.block(f"if {band} < 0"):
            w(f"{band} = None")
        w(f"{amount} = {w.const(self.adjust)}({base}, {band})")
        w.line(self, amount, explain=self.details,
               captured=w.record(ModifierCapture, measure=m, base=base, band=band))
        return True

    def band(self, m: Decimal) -> int | None:
        """The index of the band the measure ``m`` falls in (None: below every band)."""
        i = (bisect_right if self.above else bisect_left)(self.starts, m) - 1
        return None if i < 0 else i

    def adjust(self, base: Decimal, i: int | None) -> Decimal:
        """The adjustment of ``base`` in band ``i`` (none below every band)."""
        if i is None:
            return ZERO
        band = self.bands[i]
        return (band.factor - ONE) * base + band.add

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from the values captured when it was made."""
        c = ModifierCapture._make(captured)
        if c.band is None:
            return {"measure": c.measure, "measure_formula": self.measure.source,
                    "band": None, "of": self.spec_of, "base": c.base}
        band = self.bands[c.band]
        return {"measure": c.measure, "measure_formula": self.measure.source,
                "of": self.spec_of, "band": c.band, "band_label": band.label,
                "factor": band.factor, "add": band.add, "base": c.base}


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
