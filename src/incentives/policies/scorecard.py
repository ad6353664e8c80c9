"""KPI scorecards: weighted attainments, caps and floors, gates, a payout table.

Each KPI's attainment is ``actual / target`` (``higher`` is better) or
``target / actual`` (``lower`` is better), held between its ``floor`` and
``cap``. The score is the sum of weight x attainment (weights must add up to
``weights_total``, 100 by default, so the score is in points). Gates pay
nothing below them. The payout percentage is read from ``payout`` (score to
percent, interpolated between points unless ``interpolate: false``), or is the
score itself; the bonus is ``target_bonus`` x percent / 100.

The policy publishes ``<id>`` (the bonus), ``<id>_score`` and ``<id>_percent``.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field, model_validator

from ..errors import EvaluationError
from ..formulas import NameType
from ..money import ZERO
from ..runtime import Line, PayeeState
from ..wording import Step, Wording, dec
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

__all__ = ["KPI", "Gate", "PayoutPoint", "Scorecard"]

HUNDRED = Decimal(100)


class KPI(StrictModel):
    """One KPI of a scorecard."""

    #: the KPI's name
    id: Identifier
    #: shown on statements
    label: Label | None = None
    #: the result achieved (a formula)
    actual: Expr
    #: the target (a formula)
    target: Expr
    #: points this KPI is worth at attainment 1
    weight: Decimal = Field(ge=0)
    #: `higher` (actual / target) or `lower` is better (target / actual)
    direction: Literal["higher", "lower"] = "higher"
    #: the most the attainment counts for
    cap: Decimal | None = None
    #: the least the attainment counts for
    floor: Decimal | None = None


class Gate(StrictModel):
    """Pay nothing unless the score (or one KPI's attainment) reaches a minimum."""

    #: pay nothing below this score
    min_score: Decimal | None = None
    #: a KPI whose attainment gates the bonus
    kpi: Identifier | None = None
    #: pay nothing when that KPI's attainment is below this
    min_attainment: Decimal | None = None

    @model_validator(mode="after")
    def _one(self) -> Gate:
        if (self.min_score is None) == (self.kpi is None):
            raise ValueError("a gate is either 'min_score', or 'kpi' with 'min_attainment'")
        if self.kpi is not None and self.min_attainment is None:
            raise ValueError("a KPI gate needs 'min_attainment'")
        return self


class PayoutPoint(StrictModel):
    """A point of the score-to-payout table."""

    #: a score
    score: Decimal
    #: the payout percent at that score
    percent: Decimal


class Scorecard(PolicyBase):
    """A weighted KPI scorecard paying ``target_bonus`` x payout percent / 100."""

    type: Literal["scorecard"] = "scorecard"
    #: the KPIs; their weights add up to `weights_total`
    kpis: list[KPI] = Field(min_length=1)
    #: what the weights must add up to
    weights_total: Decimal = HUNDRED
    #: conditions below which nothing is paid
    gates: list[Gate] = []
    #: score to payout percent (default: the percent is the score)
    payout: list[PayoutPoint] | None = None
    #: interpolate between payout points (else step down to the point below)
    interpolate: bool = True
    #: the bonus at 100 percent (a formula)
    target_bonus: Expr

    @model_validator(mode="after")
    def _check(self) -> Scorecard:
        total = sum((k.weight for k in self.kpis), ZERO)
        if total != self.weights_total:
            raise ValueError(
                f"KPI weights add up to {total}, not {self.weights_total} "
                "(set 'weights_total' if that is meant)"
            )
        ids = [k.id for k in self.kpis]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate KPI ids: {', '.join(sorted(dup))}")
        for k in self.kpis:
            if k.cap is not None and k.floor is not None and k.floor > k.cap:
                raise ValueError(f"KPI {k.id!r}: floor {k.floor} is above cap {k.cap}")
        for g in self.gates:
            if g.kpi is not None and g.kpi not in ids:
                raise ValueError(f"gate names unknown KPI {g.kpi!r}; KPIs: {', '.join(ids)}")
        if self.payout is not None:
            scores = [p.score for p in self.payout]
            if any(b <= a for a, b in itertools.pairwise(scores)):
                raise ValueError("payout points must be in increasing order of score")
        return self

    def publishes(self) -> dict[str, NameType]:
        return {self.id: "number", f"{self.id}_score": "number", f"{self.id}_percent": "number"}

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledScorecard(self, ctx)


class KpiMeasure(NamedTuple):
    """One KPI of a scorecard line, as it was measured."""

    #: the actual
    actual: Decimal
    #: the target
    target: Decimal
    #: actual / target (target / actual when lower is better), before cap and floor
    attainment: Decimal
    #: the attainment counted (within the KPI's cap and floor)
    counted: Decimal


class ScorecardCapture(NamedTuple):
    """What a scorecard line is explained from (captured when it is made)."""

    #: each KPI as measured, in the scorecard's order (a kernel captures each one's
    #: values in the order of KpiMeasure's fields)
    kpis: tuple[KpiMeasure, ...]
    #: the weighted score
    score: Decimal
    #: the payout percent of the target bonus
    percent: Decimal
    #: the target bonus
    target_bonus: Decimal
    #: why the first gate not met fails, or None
    failed: str | None


class _CompiledScorecard(Compiled):
    line_type = "bonus"

    def __init__(self, spec: Scorecard, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.kpis = [
            (k, ctx.formula(k.actual, "kpis", i, "actual"), ctx.formula(k.target, "kpis", i, "target"))
            for i, k in enumerate(spec.kpis)
        ]
        self.target_bonus = ctx.formula(spec.target_bonus, "target_bonus")
        self.gates = spec.gates
        self.points = [(p.score, p.percent) for p in spec.payout] if spec.payout else None
        self.scores = [p[0] for p in self.points] if self.points else []
        self.interpolate = spec.interpolate
        # what apply reads per KPI, prepared once
        self._plan = [(k.id, a.fn, t.fn, k.direction == "higher", k.cap, k.floor, k.weight)
                      for k, a, t in self.kpis]
        self._index = {k.id: i for i, (k, _, _) in enumerate(self.kpis)}
        self._target_bonus = self.target_bonus.fn
        self._score_name = f"{spec.id}_score"
        self._percent_name = f"{spec.id}_percent"
        self._explain = self.details

    def percent(self, score: Decimal) -> Decimal:
        if self.points is None:
            return score
        i = bisect_right(self.scores, score) - 1
        if i < 0:
            return ZERO
        if i + 1 == len(self.points) or not self.interpolate:
            return self.points[i][1]
        (s0, p0), (s1, p1) = self.points[i], self.points[i + 1]
        return p0 + (p1 - p0) * (score - s0) / (s1 - s0)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        score = ZERO
        measured: list[KpiMeasure] = []  # each KPI's actual, target and attainment
        for kpi_id, actual_f, target_f, higher, cap, floor, weight in self._plan:
            actual, target = actual_f(env), target_f(env)
            if higher:
                if target == 0:
                    raise EvaluationError(f"KPI {kpi_id!r}: target is zero")
                att = actual / target
            elif actual == 0:
                if cap is None:
                    raise EvaluationError(
                        f"KPI {kpi_id!r}: actual is zero with lower-is-better and no cap")
                att = cap
            else:
                att = target / actual
            raw = att
            if cap is not None and att > cap:
                att = cap
            if floor is not None and att < floor:
                att = floor
            score += weight * att
            measured.append(KpiMeasure(actual, target, raw, att))
        failed = self._gate_failed(score, measured) if self.gates else None
        target_bonus = self._target_bonus(env)
        percent = ZERO if failed else self.percent(score)
        env[self._score_name] = s.values[self._score_name] = score
        env[self._percent_name] = percent
        self.line(s, target_bonus * percent / HUNDRED, explain=self._explain,
                  captured=ScorecardCapture(tuple(measured), score, percent, target_bonus,
                                            failed))

    def emit(self, w: KernelWriter) -> bool:
        score = w.temp("score")
        w(f"{score} = _ZERO")
        measured: list[str] = []  # each KPI's record
        counted: dict[str, str] = {}  # each KPI's counted attainment, by the KPI's id
        error = w.const(EvaluationError)
        for (kpi_id, _, _, higher, cap, floor, weight), (_, actual_f, target_f) in zip(
                self._plan, self.kpis, strict=True):
            actual, target = w.evaluate(actual_f), w.evaluate(target_f)
            att, raw = w.temp("att"), w.temp("raw")
            if higher:
                with w.block(f"if {target} == 0"):
                    w(f"raise {error}({w.const(f'KPI {kpi_id!r}: target is zero')})")
                w(f"{att} = {actual} / {target}")
            else:
                with w.block(f"if {actual} == 0"):
                    if cap is None:
                        message = f"KPI {kpi_id!r}: actual is zero with lower-is-better and no cap"
                        w(f"raise {error}({w.const(message)})")
                    else:
                        w(f"{att} = {w.const(cap)}")
                with w.block("else"):
                    w(f"{att} = {target} / {actual}")
            w(f"{raw} = {att}")
            if cap is not None:
                with w.block(f"if {att} > {w.const(cap)}"):
                    w(f"{att} = {w.const(cap)}")
            if floor is not None:
                with w.block(f"if {att} < {w.const(floor)}"):
                    w(f"{att} = {w.const(floor)}")
            w(f"{score} = {score} + {w.const(weight)} * {att}")
            measured.append(w.record(KpiMeasure, actual=actual, target=target,
                                     attainment=raw, counted=att))
            counted[kpi_id] = att
        failed = w.temp("failed")
        w(f"{failed} = None")
        # _gate_failed(), written out: the first gate not met says why
        keyword = "if"
        for g in self.gates:
            if g.min_score is not None:
                with w.block(f"{keyword} {score} < {w.const(g.min_score)}"):
                    message = w.const(f"score {{}} is below the gate {g.min_score}".format)
                    w(f"{failed} = {message}({score})")
            elif g.kpi is not None and g.min_attainment is not None:
                att = counted[g.kpi]
                with w.block(f"{keyword} {att} < {w.const(g.min_attainment)}"):
                    message = w.const(
                        f"KPI {g.kpi} attainment {{}} is below the gate {g.min_attainment}".format)
                    w(f"{failed} = {message}({att})")
            keyword = "elif"
        bonus = w.evaluate(self.target_bonus)
        percent = w.temp("percent")
        self._emit_percent(w, score, percent, failed)
        w(f"e[{self._score_name!r}] = values[{self._score_name!r}] = {score}")
        w(f"e[{self._percent_name!r}] = {percent}")
        w.line(self, f"{bonus} * {percent} / {w.const(HUNDRED)}", explain=self._explain,
               captured=w.record(ScorecardCapture, kpis=f"({', '.join(measured)},)",
                                 score=score, percent=percent, target_bonus=bonus,
                                 failed=failed))
        return True

    def _emit_percent(self, w: KernelWriter, score: str, percent: str, failed: str) -> None:
        """percent(), written out for this payout table (zero when a gate failed)."""
        points = self.points
        if points is None:
            w(f"{percent} = _ZERO if {failed} else {score}")
            return
        with w.block(f"if {failed} or {score} < {w.const(points[0][0])}"):
            w(f"{percent} = _ZERO")
        for i, (s0, p0) in enumerate(points):
            if i + 1 == len(points):
                with w.block("else"):
                    w(f"{percent} = {w.const(p0)}")
                break
            s1, p1 = points[i + 1]
            with w.block(f"elif {score} < {w.const(s1)}"):
                if self.interpolate:
                    w(f"{percent} = {w.const(p0)} + ({w.const(p1)} - {w.const(p0)}) * "
                      f"({score} - {w.const(s0)}) / ({w.const(s1)} - {w.const(s0)})")
                else:
                    w(f"{percent} = {w.const(p0)}")

    def _gate_failed(self, score: Decimal, measured: Sequence[KpiMeasure]) -> str | None:
        """Why the first gate that is not met fails, or ``None`` when all are met."""
        for g in self.gates:
            if g.min_score is not None and score < g.min_score:
                return f"score {score} is below the gate {g.min_score}"
            if g.kpi is not None and g.min_attainment is not None:
                att = measured[self._index[g.kpi]].counted
                if att < g.min_attainment:
                    return f"KPI {g.kpi} attainment {att} is below the gate {g.min_attainment}"
        return None

    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from what :meth:`apply` measured (built when first read)."""
        c = ScorecardCapture._make(captured)
        measured = list(map(KpiMeasure._make, c.kpis))
        score = c.score
        rows: list[dict[str, Any]] = []
        for (kpi, _, _), m in zip(self.kpis, measured, strict=True):
            rows.append({"kpi": kpi.id, "label": kpi.label or kpi.id, "actual": m.actual,
                         "target": m.target, "attainment": m.attainment,
                         "counted": m.counted, "weight": kpi.weight,
                         "points": kpi.weight * m.counted})
        gates: list[dict[str, Any]] = []
        for g in self.gates:
            if g.min_score is not None:
                gates.append({"of": "score", "value": score, "min": g.min_score,
                              "met": score >= g.min_score})
            elif g.kpi is not None and g.min_attainment is not None:
                att = measured[self._index[g.kpi]].counted
                gates.append({"of": g.kpi, "value": att, "min": g.min_attainment,
                              "met": att >= g.min_attainment})
        details: dict[str, Any] = {"kpis": rows, "score": score, "percent": c.percent,
                                   "target_bonus": c.target_bonus}
        if self.points is not None:
            details["payout_table"] = [{"score": a, "percent": b} for a, b in self.points]
        if gates:
            details["gates"] = gates
        if c.failed:
            details["gate_failed"] = c.failed
        return details

    def skip(self, s: PayeeState) -> None:
        super().skip(s)
        s.env[f"{self.id}_score"] = ZERO
        s.env[f"{self.id}_percent"] = ZERO


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a scorecard's details: its KPIs and the score."""
    return "kpis" in d and "score" in d


@explains(Scorecard, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: Scorecard | None) -> list[Step]:
    """A scorecard line: each KPI's attainment and points, the score, the gates, the
    payout percent and the bonus."""
    d, f = line.details, c.fmt
    steps = []
    points = []
    labels_of_kpis = {str(k.get("kpi")): str(k.get("label") or k.get("kpi"))
                      for k in d.get("kpis", [])}
    for k in d.get("kpis", []):
        name = str(k.get("label") or k.get("kpi"))
        raw, raw_rounded = f.approx(k.get("attainment"), 6)
        direction_lower = False
        for kpi in getattr(spec, "kpis", []) or []:
            if kpi.id == k.get("kpi") and kpi.direction == "lower":
                direction_lower = True
        ratio = (f"{f.num(k.get('target'))} / {f.num(k.get('actual'))}" if direction_lower
                 else f"{f.num(k.get('actual'))} / {f.num(k.get('target'))}")
        steps.append(Step(c.t("{kpi} attainment", kpi=name), ratio,
                          (c.t("about") + " " if raw_rounded else "") + raw))
        counted, counted_rounded = f.approx(k.get("counted"), 6)
        if k.get("counted") != k.get("attainment"):
            held = k.get("counted")
            bound = "min" if (dec(held) or ZERO) < (dec(k.get("attainment")) or ZERO) else "max"
            steps.append(Step(c.t("{kpi} counted", kpi=name), f"{bound}({raw}, {counted})",
                              counted))
        pts, pts_rounded = f.approx(k.get("points"), 6)
        points.append(pts)
        steps.append(Step(c.t("{kpi} points", kpi=name), f"{f.num(k.get('weight'))} x {counted}",
                          (c.t("about") + " " if pts_rounded or counted_rounded else "") + pts))
    score, _ = f.approx(d.get("score"), 6)
    steps.append(Step(c.t("score"), " + ".join(points), score))
    gates = d.get("gates")
    if isinstance(gates, list):
        for g in gates:
            what = c.t("score") if g.get("of") == "score" else c.t(
                "{kpi} attainment", kpi=labels_of_kpis.get(str(g.get("of")), str(g.get("of"))))
            value, _ = f.approx(g.get("value"), 6)
            verdict = c.t("met") if g.get("met") else c.t("not met")
            gate = c.t("{what} {value}, at least {min} needed: {verdict}", what=what, value=value,
                       min=f.num(g.get("min")), verdict=verdict)
            steps.append(Step(c.t("gate"), None, gate))
    elif d.get("gate_failed"):
        steps.append(Step(c.t("gate not met: {reason}", reason=c.say(d["gate_failed"]))))
    percent, _ = f.approx(d.get("percent"), 6)
    steps.append(Step(c.t("payout percent (from the payout table)") if d.get("payout_table")
                      else c.t("payout percent"), None, percent))
    steps.append(Step(c.t("bonus"), f"{f.money(d.get('target_bonus'))} x {percent} / 100",
                      f.money(line.amount)))
    return steps
