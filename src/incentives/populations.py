"""Synthetic populations: seeded, reproducible records that fit a plan's declared inputs.

When no real data exists, a designer still needs a population to try a plan
on. :func:`synthetic` makes ``n`` records for one period that fit what the plan
declares (every metric, attribute and event list, within their ``min``,
``max``, ``allowed`` values and ``integer`` declarations, in the declared
groups, with at most one leader per group where a ``leader_bonus`` pays one),
with a revenue metric drawn by grade, optional quota attainment spreads and
lost-customer events. The same seed always gives the same records
(``random.Random(seed)``; values are Decimals, rounded to the cent; no numpy).

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

import ast
import datetime as dt
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from .errors import IncentivesError, UsageError, did_you_mean
from .formulas import Formula
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


def revenue_metric(plan: Plan, revenue: str | None) -> str | None:
    """The metric that stands for revenue: ``revenue`` if the plan declares it (a
    UsageError otherwise), else the first metric named like revenue or sales, else
    the first required decimal metric (``None`` when there is none)."""
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
    groups: int | Sequence[str] | None = None,
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
      in turn so groups have even sizes; by default the groups the plan
      declares (``inputs.groups``), else four; a plan that declares its groups
      takes only those (a number then takes the first ones);
    - each event list gets a Poisson number of events per payee with the mean
      in ``events`` (default 0.3): numbers a fraction of revenue, dates inside
      the period, text fields one of a few values (``reason``: competitor,
      price, service, closure);
    - other integer metrics are Poisson counts with mean ``counts``; other
      metrics are uniform between their declared min (or 0) and max (or the
      revenue median); attributes take a declared allowed value or default.

    A revenue (or quota) range off the grades' scale (a ``max`` below the largest
    median, a ``min`` above the smallest) gets the draws moved into it.

    Every value keeps to its declaration: between ``min`` and ``max``, whole
    where ``integer``, one of ``allowed``. Where a ``leader_bonus`` pays one
    leader per group (``leaders: one``), each group of two or more payees has
    exactly one payee meeting its ``leader`` condition (the group's first
    payee, or the next one where two leader bonuses read the same attribute)
    and a group of one has none: the attributes the condition reads are set
    to make it so.
    """
    if n < 0:
        raise UsageError(f"n must be zero or more, not {n}")
    if not grades:
        raise UsageError("at least one grade is needed")
    start, end = parse_period(period)
    rng = random.Random(seed)
    group_names = _group_names(plan, groups)
    metrics = plan.inputs.metrics
    rev = revenue_metric(plan, revenue)
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
                values[quota] = _fit(_scaled(target, metrics[quota], grades), metrics[quota])
                values[rev] = _fit(_scaled(_money(float(target) * ratio), metrics[rev], grades),
                                   metrics[rev])
            else:
                drawn = _money(float(grade.median) * rng.lognormvariate(0.0, grade.spread))
                values[rev] = _fit(_scaled(drawn, metrics[rev], grades), metrics[rev])
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
    _one_leader_per_group(plan, out, period)
    return out


def _group_names(plan: Plan, groups: int | Sequence[str] | None) -> list[str]:
    declared = plan.inputs.groups
    if groups is None:
        groups = list(declared) if declared else 4
    if isinstance(groups, int):
        if groups < 1:
            raise UsageError(f"at least one group is needed, not {groups}")
        if declared is None:
            return [f"g{i + 1}" for i in range(groups)]
        if groups > len(declared):
            raise UsageError(f"the plan declares {len(declared)} group(s) "
                             f"({', '.join(declared)}); {groups} asked for")
        return list(declared[:groups])
    names = [str(g) for g in groups]
    if not names:
        raise UsageError("at least one group is needed")
    if declared is not None:
        for g in names:
            if g not in declared:
                hint = did_you_mean(g, declared)
                raise UsageError(f"the plan declares no group {g!r}" + (f"; {hint}" if hint else "")
                                 + f" (it declares {', '.join(declared)})")
    return names


def _bounds(spec: MetricSpec | AttributeSpec) -> tuple[Decimal | None, Decimal | None]:
    """The declared bounds, as whole numbers inside them where ``integer``."""
    lo, hi = spec.min, spec.max
    if spec.integer:
        lo = lo.to_integral_value(rounding=ROUND_CEILING) if lo is not None else None
        hi = hi.to_integral_value(rounding=ROUND_FLOOR) if hi is not None else None
        if lo is not None and hi is not None and lo > hi:
            raise UsageError(f"no whole number lies between the declared min {spec.min} "
                             f"and max {spec.max}")
    return lo, hi


def _scaled(value: Decimal, spec: MetricSpec, grades: Sequence[Grade]) -> Decimal:
    """``value``, drawn on the grades' money scale, moved into the range ``spec``
    declares when that range is not on that scale (a ``max`` below the largest
    median or quota, a ``min`` above the smallest median), so that the values spread
    over the range rather than all being cut to its max or min."""
    lo, hi = _bounds(spec)
    low = lo if lo is not None and lo > 0 else Decimal(0)
    top = max(max(g.median for g in grades),
              max((g.quota for g in grades if g.quota is not None), default=Decimal(0)))
    if hi is not None and hi < top:  # the largest median or quota lands mid-range
        return _money(float(low) + float(value) * float(hi - low) / float(2 * top))
    if low > min(g.median for g in grades):
        return value + low
    return value


def _fit(value: Decimal, spec: MetricSpec | AttributeSpec) -> Decimal:
    """``value`` made to fit ``spec``: whole where ``integer``, inside min and max."""
    if spec.integer:
        value = value.to_integral_value(rounding=ROUND_HALF_EVEN)
    lo, hi = _bounds(spec)
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return value


def _other_metric(rng: random.Random, spec: MetricSpec, counts: float, grade: Grade) -> Decimal:
    lo, hi = _bounds(spec)
    low = lo if lo is not None else Decimal(0)
    if spec.integer:
        return _fit(Decimal(_poisson(rng, counts)) + low, spec)
    top = hi if hi is not None else max(grade.median, low + 1)
    value = _fit(_money(float(low) + rng.random() * float(top - low)), spec)
    if value == 0 and top > 0:  # never exactly zero when it need not be: a divisor, maybe
        value = _fit(min(_CENT, top), spec)
    return value


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
        lo, hi = _bounds(spec)
        low = lo if lo is not None else Decimal(0)
        top = hi if hi is not None else low + 10
        if spec.integer:
            return Decimal(rng.randint(int(low), int(top)))
        return _fit(_money(float(low) + rng.random() * float(top - low)), spec)
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


# ---------------------------------------------------------------- leaders

#: a condition's verdict on a record: True, False, or None when it cannot be told from
#: the record alone (it reads a figure that only evaluating the plan gives)
_Verdict = bool | None
#: a leader rule, as searched: its conditions, the earlier rules' conditions, the
#: attributes it reads and the values to try for each
_Rule = tuple[list[Formula], list[list[Formula]], list[str], list[list[Any]]]


def _one_leader_per_group(plan: Plan, records: list[dict[str, Any]], period: str) -> None:
    """Give each group exactly one leader (none to a group of one) for every
    ``leader_bonus`` that pays one per group, by setting the attributes its
    ``leader`` (and ``when``) conditions read. A condition that reads more than
    the record's inputs and the parameters is left to the evaluation."""
    from .policies.leader import LeaderBonus

    compiled = plan.compile()
    attributes = plan.inputs.attributes
    rules: list[tuple[list[Formula], Any, list[str]]] = []
    for policy in compiled.policies:
        if not isinstance(policy.spec, LeaderBonus) or policy.spec.leaders != "one":
            continue
        conditions: list[Formula] = [policy.leader]  # type: ignore[attr-defined]
        if policy.when is not None:
            conditions.append(policy.when)
        names = sorted({n for c in conditions for n in c.names if n in attributes})
        rules.append((conditions, policy.scope, names))
    if not rules or not records:
        return
    base = dict(compiled.period(period).base_env)
    counts = [(e, f"{e}_count") for e in plan.inputs.events]

    def verdict(conditions: list[Formula], record: dict[str, Any]) -> _Verdict:
        env = {**base, **record["metrics"], **record.get("attributes", {})}
        for e, key in counts:
            env[key] = Decimal(len(record.get("events", {}).get(e, ())))
        try:
            return all(bool(c(env)) for c in conditions)
        except (IncentivesError, ArithmeticError, ValueError, TypeError, KeyError):
            return None  # a name only the evaluation gives, or a formula that fails

    for j, (conditions, scope, names) in enumerate(rules):
        if not names:
            continue
        earlier = [c for c, _, _ in rules[:j]]
        choices = [_candidates(attributes[a], a, conditions) for a in names]

        def search(r: dict[str, Any], want: bool, strict: bool,
                   rule: _Rule = (conditions, earlier, names, choices)) -> dict[str, Any] | None:
            """Attributes that give ``want``; ``strict``: what the earlier leader rules
            made of this payee stays as it is."""
            now, before, keys, values = rule
            kept = [verdict(c, r) for c in before]
            for combo in itertools.product(*values):
                trial = {**r, "attributes": {**r.get("attributes", {}),
                                             **dict(zip(keys, combo, strict=True))}}
                if verdict(now, trial) == want and (
                        not strict or [verdict(c, trial) for c in before] == kept):
                    return trial["attributes"]  # type: ignore[no-any-return]
            return None

        teams: dict[Any, list[dict[str, Any]]] = {}
        for r in records:
            teams.setdefault(None if scope == "population" else r["group"], []).append(r)
        for team in teams.values():
            leader = None
            if len(team) > 1:  # the first payee that leads, or can without undoing others
                for r in team:
                    found = verdict(conditions, r)
                    if found is None:
                        continue
                    change = None if found else search(r, True, strict=True)
                    if found or change is not None:
                        if change is not None:
                            r["attributes"] = change
                        leader = r
                        break
            for r in team:
                if r is not leader and verdict(conditions, r):
                    change = search(r, False, strict=True) or search(r, False, strict=False)
                    if change is not None:
                        r["attributes"] = change


def _candidates(spec: AttributeSpec, name: str, conditions: list[Formula]) -> list[Any]:
    """The values to try for attribute ``name`` to meet (or miss) a condition."""
    if spec.allowed:
        return list(spec.allowed)
    if spec.type == "bool":
        return [True, False]
    found: list[Any] = []
    for c in conditions:
        for node in ast.walk(ast.parse(c.source, mode="eval")):
            if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
                if spec.type == "text" and isinstance(node.value, str):
                    found.append(node.value)
                elif spec.type == "number" and isinstance(node.value, (int, float)):
                    number = Decimal(repr(node.value))
                    for v in (number, number + 1, number - 1):
                        fitted = _fit(v, spec)
                        found.append(fitted)
    if spec.type == "text":
        found.append(f"{name}-1")
    elif spec.type == "number":
        found += [_fit(Decimal(0), spec)]
    return list(dict.fromkeys(found))
