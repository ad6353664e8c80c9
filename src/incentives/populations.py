"""Synthetic populations: seeded, reproducible records that fit a plan's declared inputs.

When no real data exists, a designer still needs a population to try a plan
on. :func:`synthetic` makes ``n`` records for one period that fit what the plan
declares (every metric, attribute and event list), with a revenue metric drawn
by grade, optional quota attainment spreads and lost-customer events. The same
seed always gives the same records (``random.Random(seed)``; values are
Decimals, rounded to the cent; no numpy).

>>> from incentives import load_plan
>>> plan = load_plan("examples/telecom/plan.yaml")
>>> people = synthetic(plan, 3, seed=7)
>>> people == synthetic(plan, 3, seed=7)
True
>>> sorted(people[0]["metrics"])
['new_400', 'new_fax', 'new_ipvpn', 'traffic_revenue']
>>> len(plan.evaluate(people))
3
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .errors import UsageError, did_you_mean
from .inputs import AttributeSpec, EventSpec, FieldLimits, MetricSpec
from .periods import parse_period
from .plan import Plan

__all__ = ["DEFAULT_GRADES", "Grade", "synthetic"]

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Grade:
    """A grade of payee: its share of the population and its revenue distribution.

    Revenue is log-normal: ``median`` is the typical month, ``spread`` the
    standard deviation of its logarithm (0.5 is a wide, realistic spread).
    With a quota, ``quota`` is the grade's target and attainment is drawn
    instead (see :func:`synthetic`).
    """

    name: str
    share: Decimal
    median: Decimal
    spread: float = 0.5
    quota: Decimal | None = None


#: Three grades of key-account manager, for a monthly revenue metric.
DEFAULT_GRADES: tuple[Grade, ...] = (
    Grade("junior", Decimal("0.5"), Decimal("25000"), 0.6, Decimal("30000")),
    Grade("senior", Decimal("0.35"), Decimal("55000"), 0.5, Decimal("60000")),
    Grade("principal", Decimal("0.15"), Decimal("110000"), 0.4, Decimal("100000")),
)


def _money(x: float) -> Decimal:
    return Decimal(repr(x)).quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by Knuth's method (fine for the small means used here)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _pick(rng: random.Random, grades: Sequence[Grade]) -> Grade:
    total = float(sum(g.share for g in grades))
    x = rng.random() * total
    for g in grades:
        x -= float(g.share)
        if x < 0:
            return g
    return grades[-1]


def _revenue_metric(plan: Plan, revenue: str | None) -> str | None:
    metrics = plan.inputs.metrics
    if revenue is not None:
        if revenue not in metrics:
            hint = did_you_mean(revenue, metrics)
            raise UsageError(f"the plan declares no metric {revenue!r}"
                             + (f"; {hint}" if hint else ""))
        return revenue
    for name in metrics:
        if "revenue" in name or "sales" in name:
            return name
    required = [n for n, s in metrics.items() if s.default is None and not s.integer]
    return required[0] if required else None


def synthetic(
    plan: Plan,
    n: int,
    *,
    seed: int = 0,
    period: str = "2026-05",
    groups: int | Sequence[str] = 4,
    grades: Sequence[Grade] = DEFAULT_GRADES,
    revenue: str | None = None,
    quota: str | None = None,
    attainment: tuple[float, float] = (1.0, 0.25),
    grade_attribute: str | None = "grade",
    events: Mapping[str, float] | None = None,
    counts: float = 0.8,
) -> list[dict[str, Any]]:
    """``n`` seeded records for ``period`` that fit ``plan``'s declared inputs.

    - ``revenue`` (default: the first metric named like revenue or sales) is
      drawn per grade, log-normal around the grade's ``median``;
    - with ``quota`` (a metric name), each payee's quota is its grade's
      ``quota`` and revenue is quota times an attainment drawn from a normal
      ``attainment = (mean, sd)``, never below zero;
    - the grade is written to the attribute ``grade_attribute`` when the plan
      declares it;
    - ``groups`` names the groups (or how many: ``g1``, ``g2``...), assigned
      in turn so groups have even sizes;
    - each event list gets a Poisson number of events per payee with the mean
      in ``events`` (default 0.3): numbers a fraction of revenue, dates inside
      the period, text fields one of a few values (``reason``: competitor,
      price, service, closure);
    - other integer metrics are Poisson counts with mean ``counts``; other
      metrics are uniform between their declared min (or 0) and max (or the
      revenue median); attributes take a declared allowed value or default.
    """
    if n < 0:
        raise UsageError(f"n must be zero or more, not {n}")
    if not grades:
        raise UsageError("at least one grade is needed")
    start, end = parse_period(period)
    rng = random.Random(seed)
    group_names = ([f"g{i + 1}" for i in range(groups)] if isinstance(groups, int)
                   else list(groups))
    if not group_names:
        raise UsageError("at least one group is needed")
    metrics = plan.inputs.metrics
    rev = _revenue_metric(plan, revenue)
    if quota is not None and quota not in metrics:
        hint = did_you_mean(quota, metrics)
        raise UsageError(f"the plan declares no metric {quota!r}" + (f"; {hint}" if hint else ""))
    rates = {name: 0.3 for name in plan.inputs.events}
    for name, rate in (events or {}).items():
        if name not in rates:
            hint = did_you_mean(name, rates)
            raise UsageError(f"the plan declares no event list {name!r}"
                             + (f"; {hint}" if hint else ""))
        rates[name] = rate
    width = len(str(max(n, 1)))
    out = []
    for i in range(n):
        grade = _pick(rng, grades)
        values: dict[str, Decimal] = {}
        if rev is not None:
            if quota is not None:
                target = grade.quota if grade.quota is not None else grade.median
                ratio = max(0.0, rng.gauss(*attainment))
                values[quota] = target
                values[rev] = _money(float(target) * ratio)
            else:
                values[rev] = _money(float(grade.median) * rng.lognormvariate(0.0, grade.spread))
        for name, spec in metrics.items():
            if name not in values:
                values[name] = _other_metric(rng, spec, counts, grade)
        attributes = {name: _attribute(rng, name, spec, grade, grade_attribute)
                      for name, spec in plan.inputs.attributes.items()}
        base = float(values[rev]) if rev is not None else float(grade.median)
        evs = {name: [_event(rng, plan.inputs.events[name], k, i, base, start, end)
                      for k in range(_poisson(rng, rate))]
               for name, rate in rates.items()}
        record: dict[str, Any] = {
            "payee": f"p{i + 1:0{width}d}",
            "period": period,
            "group": group_names[i % len(group_names)],
            "metrics": values,
        }
        if attributes:
            record["attributes"] = attributes
        if any(evs.values()):
            record["events"] = {k: v for k, v in evs.items() if v}
        out.append(record)
    return out


def _other_metric(rng: random.Random, spec: MetricSpec, counts: float, grade: Grade) -> Decimal:
    lo = spec.min if spec.min is not None else Decimal(0)
    if spec.integer:
        value = Decimal(_poisson(rng, counts)) + lo.to_integral_value()
        return min(value, spec.max) if spec.max is not None else value
    hi = spec.max if spec.max is not None else max(grade.median, lo + 1)
    return _money(float(lo) + rng.random() * float(hi - lo))


def _attribute(rng: random.Random, name: str, spec: AttributeSpec, grade: Grade,
               grade_attribute: str | None) -> Any:
    if name == grade_attribute and (spec.allowed is None or grade.name in spec.allowed):
        return grade.name
    if spec.allowed:
        return spec.allowed[rng.randrange(len(spec.allowed))]
    if spec.default is not None:
        return spec.default
    if spec.type == "bool":
        return rng.random() < 0.5
    if spec.type == "number":
        lo = spec.min if spec.min is not None else Decimal(0)
        hi = spec.max if spec.max is not None else lo + 10
        if spec.integer:
            return Decimal(rng.randint(int(lo), int(hi)))
        return _money(float(lo) + rng.random() * float(hi - lo))
    return f"{name}-{rng.randrange(3) + 1}"


def _within(value: Decimal, limits: FieldLimits | None) -> Decimal:
    """``value`` moved within an event field's declared limits (whole when ``integer``)."""
    if limits is None:
        return value
    if limits.integer:
        value = value.to_integral_value()
    if limits.max is not None and value > limits.max:
        value = limits.max.to_integral_value(rounding="ROUND_FLOOR") if limits.integer \
            else limits.max
    if limits.min is not None and value < limits.min:
        value = limits.min.to_integral_value(rounding="ROUND_CEILING") if limits.integer \
            else limits.min
    return value


_REASONS = ("competitor", "price", "service", "closure")


def _event(rng: random.Random, spec: EventSpec, k: int, i: int, base: float,
           start: dt.date, end: dt.date) -> dict[str, Any]:
    days = (end - start).days
    row: dict[str, Any] = {}
    for fname, ftype in spec.fields.items():
        if fname in spec.optional and rng.random() < 0.3:
            continue
        if ftype == "number":
            row[fname] = _within(_money(max(base, 1000.0) * rng.uniform(0.01, 0.06)),
                                 spec.limits.get(fname))
        elif ftype == "date":
            if fname in ("acquired", "start", "started", "opened"):
                back = rng.randint(30, 720)
                row[fname] = (start - dt.timedelta(days=back)).isoformat()
            else:
                row[fname] = (start + dt.timedelta(days=rng.randint(0, days))).isoformat()
        elif ftype == "bool":
            row[fname] = rng.random() < 0.5
        elif fname == "id":
            row[fname] = f"c-{i + 1}-{k + 1}"
        elif fname == "reason":
            row[fname] = _REASONS[rng.randrange(len(_REASONS))]
        else:
            row[fname] = f"{fname}-{rng.randrange(3) + 1}"
    return row
