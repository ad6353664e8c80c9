"""Hypothesis strategies for records, populations, periods and parameters that fit a plan.

Needs the ``testing`` extra (``pip install incentives[testing]``). The
strategies read the plan's declared inputs: metric bounds and whole-number
flags, attribute types and ``allowed`` values, event lists with their typed
fields; every number is a :class:`~decimal.Decimal`, never a float. What a
user will want to vary is taken as a strategy (``metrics={"sales":
st.decimals(...)}``); arguments are checked when the strategy is made, with
:class:`hypothesis.errors.InvalidArgument`.

>>> from hypothesis import given, settings
>>> from incentives import load_plan
>>> from incentives.testing import floor_holds
>>> plan = load_plan("examples/telecom/plan.yaml")
>>> @settings(max_examples=20)
... @given(populations(plan, max_size=4))
... def test_floor(records):
...     floor_holds(plan, records)
>>> test_floor()

Metric values lean towards the plan's own numbers (tier thresholds, gates,
parameters) and the values just below and above them, where cliffs hide;
``landmarks=False`` turns that off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

try:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError:
    from ..extras import MissingExtraError

    raise MissingExtraError("incentives.testing.strategies needs the 'testing' extra: "
                            "pip install 'incentives[testing]'") from None

from ..errors import did_you_mean
from ..inputs import AttributeSpec, DatedValue, EventSpec, FieldLimits, MetricSpec
from ..periods import parse_period, shift_period

if TYPE_CHECKING:
    from ..plan import Plan

__all__ = ["parameters", "periods", "populations", "records"]

D = Decimal

#: The bounds used for numbers whose plan declares none.
DEFAULT_MIN_VALUE = D(0)
DEFAULT_MAX_VALUE = D(1_000_000)
_IDS = "abcdefghijklmnopqrstuvwxyz0123456789"
_TEXT = "abcdefghijklmnopqrstuvwxyz"


# ------------------------------------------------------------------ checks


def _plan(plan: Any, where: str) -> Plan:
    from ..plan import Plan

    if not isinstance(plan, Plan):
        raise InvalidArgument(f"{where}: plan must be an incentives.Plan "
                              f"(from load_plan), not {type(plan).__name__}")
    return plan


def _number(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise InvalidArgument(f"{name}={value!r} must be a Decimal, an int or numeric text "
                              "(never a float)")
    try:
        number = D(value) if not isinstance(value, Decimal) else value
    except ArithmeticError:
        raise InvalidArgument(f"{name}={value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidArgument(f"{name}={value!r} must be finite")
    return number


def _size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{name}={value!r} must be a whole number >= 0")
    return value


def _strategy_or_value(value: Any, name: str) -> st.SearchStrategy[Any]:
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, float):
        raise InvalidArgument(f"{name}={value!r}: floats are not accepted; use Decimal")
    return st.just(value)


def _overrides(given: Mapping[str, Any] | None, declared: Iterable[str], what: str,
               where: str) -> dict[str, st.SearchStrategy[Any]]:
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InvalidArgument(f"{where}: {what} must be a mapping of names to strategies")
    known = list(declared)
    out = {}
    for k, v in given.items():
        if k not in known:
            hint = did_you_mean(str(k), known)
            raise InvalidArgument(f"{where}: the plan declares no {what[:-1]} {k!r}"
                                  + (f"; {hint}" if hint else
                                     f"; it declares: {', '.join(known) or 'none'}"))
        out[k] = _strategy_or_value(v, f"{what}[{k!r}]")
    return out


# ----------------------------------------------------------------- periods




def _period_of(day: dt.date, kind: str) -> str:
    if kind == "year":
        return str(day.year)
    if kind == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}-{day.month:02d}"


_KINDS = {"month": "month", "quarter": "quarter", "year": "year"}


def periods(*, kind: str = "month", min_value: str = "2025-01",
            max_value: str = "2027-12") -> st.SearchStrategy[str]:
    """Pay periods of ``kind`` (``month``, ``quarter`` or ``year``) from
    ``min_value`` to ``max_value`` inclusive (periods of any kind: the range
    covers their days).

    >>> from hypothesis import find
    >>> find(periods(kind="quarter", min_value="2026-01", max_value="2026-12"),
    ...      lambda p: p > "2026-Q2")
    '2026-Q3'
    """
    if kind not in _KINDS:
        raise InvalidArgument(f"kind={kind!r} must be one of month, quarter, year")
    bounds = []
    for name, value in (("min_value", min_value), ("max_value", max_value)):
        if not isinstance(value, str):
            value = str(value)
        try:
            bounds.append(parse_period(value))
        except ValueError as exc:
            raise InvalidArgument(f"{name}={value!r}: {exc}") from None
    first = _period_of(bounds[0][0], kind)
    last = _period_of(bounds[1][1], kind)
    if parse_period(first)[0] > parse_period(last)[0]:
        raise InvalidArgument(f"min_value={min_value!r} is after max_value={max_value!r}")
    count = 0
    while shift_period(first, count) != last:
        count += 1
    return st.integers(min_value=0, max_value=count).map(lambda n: shift_period(first, n))


def _plan_periods(plan: Plan) -> st.SearchStrategy[str]:
    """Periods a plan can evaluate: from its effective date and the first date of
    every dated parameter, over two years."""
    start = dt.date(2026, 1, 1)
    starts = [plan.effective_from] if plan.effective_from else []
    starts += [min(v.values) for v in plan.parameters.values() if isinstance(v, DatedValue)]
    if starts:
        start = max(starts)
    first = _period_of(start, plan.period)
    if parse_period(first)[1] < start:  # pragma: no cover - a period ends after it starts
        first = shift_period(first, 1)
    span = {"month": 23, "quarter": 7, "year": 1}[plan.period]
    return periods(kind=plan.period, min_value=first, max_value=shift_period(first, span))


# ------------------------------------------------------------------ numbers


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def plan_numbers(plan: Plan) -> list[Decimal]:
    """Every number the plan states (thresholds, gates, parameters), in order: the
    landmarks that :func:`records` draws values next to."""
    found: set[Decimal] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Decimal | int) and not isinstance(node, bool):
            found.add(D(node))
        elif isinstance(node, Mapping):
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            for token in node.replace("(", " ").replace(")", " ").replace(",", " ").split():
                try:
                    value = D(token)
                except ArithmeticError:
                    continue
                if value.is_finite():
                    found.add(value)

    walk([p.model_dump(mode="python") for p in plan.policies])
    walk({k: v.values if isinstance(v, DatedValue) else v for k, v in plan.parameters.items()
          if not isinstance(v, bool)})
    return sorted(found)


def _fixed(low: Decimal, high: Decimal, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals with ``places`` decimal places from ``low`` to ``high``, drawn as whole
    numbers of the quantum (fast, and they shrink towards ``low``)."""
    quantum = D(1).scaleb(-places)
    a = int((low / quantum).to_integral_value(rounding="ROUND_CEILING"))
    b = int((high / quantum).to_integral_value(rounding="ROUND_FLOOR"))
    if a > b:
        raise InvalidArgument(f"no number with {places} decimal places lies between "
                              f"{low} and {high}")
    return st.integers(min_value=a, max_value=b).map(lambda n: (D(n) * quantum))


def _numbers(spec: MetricSpec | AttributeSpec | FieldLimits, lo: Decimal, hi: Decimal, places: int,
             marks: Sequence[Decimal]) -> st.SearchStrategy[Decimal]:
    low = spec.min if spec.min is not None else lo
    high = spec.max if spec.max is not None else max(hi, low)
    if spec.integer:
        a = int(low.to_integral_value(rounding="ROUND_CEILING"))
        b = int(high.to_integral_value(rounding="ROUND_FLOOR"))
        if a > b:
            raise InvalidArgument(f"no whole number lies between {low} and {high}")
        base: st.SearchStrategy[Decimal] = st.integers(min_value=a, max_value=b).map(D)
    else:
        base = _fixed(low, high, places)
    near = near_landmarks(spec, marks, places, low, high)
    if not near:
        return base
    return st.one_of(base, st.sampled_from(near))


def near_landmarks(spec: MetricSpec | AttributeSpec | FieldLimits, marks: Sequence[Decimal], places: int,
                   low: Decimal, high: Decimal) -> list[Decimal]:
    """The values :func:`records` draws half the time for a number: each of the plan's
    own numbers (``marks``), one quantum and one unit either side of it, kept within
    ``low`` to ``high`` and whole where ``spec`` is ``integer``, in order.

    >>> from incentives.inputs import MetricSpec
    >>> near_landmarks(MetricSpec(), [D(30000)], 2, D(0), D(10**6))
    [Decimal('29999.00'), Decimal('29999.99'), Decimal('30000.00'), Decimal('30000.01'), Decimal('30001.00')]
    """
    quantum = D(1).scaleb(-places)
    near = set()
    for m in marks:
        for delta in (D(0), quantum, -quantum, D(1), D(-1)):
            v = m + delta
            v = v.to_integral_value() if spec.integer else v.quantize(quantum)
            if low <= v <= high:
                near.add(v)
    return sorted(near)


def _attribute(spec: AttributeSpec, lo: Decimal, hi: Decimal,
               places: int) -> st.SearchStrategy[Any]:
    if spec.allowed is not None:
        return st.sampled_from(list(spec.allowed))
    if spec.type == "bool":
        return st.booleans()
    if spec.type == "number":
        return _numbers(spec, lo, hi, places, ())
    return st.text(_TEXT, min_size=1, max_size=8)


def _events(spec: EventSpec, period: str, fields: Mapping[str, st.SearchStrategy[Any]],
            max_events: int, places: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    start, end = parse_period(period)
    amounts = _fixed(D(0), D(10000), places)
    # a number field with declared limits is drawn within them
    limited = {name: _numbers(limits, D(0), D(10000), places, ())
               for name, limits in spec.limits.items()}
    first = start - dt.timedelta(days=365)
    days = st.integers(min_value=0, max_value=(end - first).days).map(
        lambda n: first + dt.timedelta(days=n))

    @st.composite
    def one(draw: st.DrawFn) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, kind in spec.fields.items():
            if name in spec.optional and draw(st.booleans()):
                continue
            if name in fields:
                row[name] = draw(fields[name])
            elif kind == "number":
                row[name] = draw(limited.get(name, amounts))
            elif kind == "date":
                row[name] = draw(days).isoformat()
            elif kind == "bool":
                row[name] = draw(st.booleans())
            else:
                row[name] = draw(st.text(_IDS, min_size=1, max_size=6))
        return row

    if "id" in spec.fields:  # event ids are unique within a list
        return st.lists(one(), max_size=max_events,
                        unique_by=lambda e: e["id"] if "id" in e else id(e))
    return st.lists(one(), max_size=max_events)


# ------------------------------------------------------------------ records


def records(
    plan: Plan,
    *,
    payees: st.SearchStrategy[str] | str | None = None,
    periods: st.SearchStrategy[str] | str | None = None,
    groups: st.SearchStrategy[str | None] | Sequence[str] | str | None = None,
    metrics: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
    events: Mapping[str, Any] | None = None,
    event_fields: Mapping[str, Mapping[str, Any]] | None = None,
    min_value: Decimal | int | str = DEFAULT_MIN_VALUE,
    max_value: Decimal | int | str = DEFAULT_MAX_VALUE,
    places: int = 2,
    max_events: int = 3,
    landmarks: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Records (plain dicts, as a JSON file holds them) that ``plan`` accepts.

    - ``payees``, ``periods``, ``groups``: a strategy or a fixed value (for
      ``groups``, also a list of names to pick from). Defaults: short ids; a
      period of the plan's kind from its effective date on; no group.
    - ``metrics``, ``attributes``, ``events``: strategies for some inputs by
      name (``metrics={"sales": st.just(D(100))}``); the others follow their
      declarations.
    - ``event_fields``: strategies for some fields of an event list
      (``{"lost_customers": {"reason": st.sampled_from(["closure", "price"])}}``).
    - ``min_value``, ``max_value``: bounds for numbers that declare none;
      ``places``: decimal places of drawn numbers; ``max_events``: longest list.
    """
    where = "records()"
    plan = _plan(plan, where)
    lo, hi = _number(min_value, "min_value"), _number(max_value, "max_value")
    if lo > hi:
        raise InvalidArgument(f"min_value={lo} is above max_value={hi}")
    places = _size(places, "places")
    max_events = _size(max_events, "max_events")
    inputs = plan.inputs
    metric_over = _overrides(metrics, inputs.metrics, "metrics", where)
    attr_over = _overrides(attributes, inputs.attributes, "attributes", where)
    event_over = _overrides(events, inputs.events, "events", where)
    field_over: dict[str, dict[str, st.SearchStrategy[Any]]] = {}
    for name, fields in (event_fields or {}).items():
        if name not in inputs.events:
            hint = did_you_mean(str(name), inputs.events)
            raise InvalidArgument(f"{where}: the plan declares no event list {name!r}"
                                  + (f"; {hint}" if hint else ""))
        field_over[name] = _overrides(fields, inputs.events[name].fields, "fields",
                                      f"{where} event_fields[{name!r}]")
    payee_st = (st.text(_IDS, min_size=1, max_size=8) if payees is None
                else _strategy_or_value(payees, "payees"))
    period_st = _plan_periods(plan) if periods is None else _strategy_or_value(periods,
                                                                                "periods")
    group_st = _groups(groups)
    marks = plan_numbers(plan) if landmarks else []
    metric_st = {name: metric_over[name] if name in metric_over
                 else _numbers(spec, lo, hi, places, marks)
                 for name, spec in inputs.metrics.items()}
    attr_st = {name: attr_over[name] if name in attr_over
               else _attribute(spec, lo, hi, places)
               for name, spec in inputs.attributes.items()}

    events_st: dict[str, dict[str, st.SearchStrategy[list[dict[str, Any]]]]] = {}

    def events_for(period: str) -> dict[str, st.SearchStrategy[list[dict[str, Any]]]]:
        # event dates depend on the period: one set of strategies per period, made once
        if period not in events_st:
            events_st[period] = {
                name: event_over[name] if name in event_over else
                _events(spec, period, field_over.get(name, {}), max_events, places)
                for name, spec in inputs.events.items()}
        return events_st[period]

    def fill(draw: st.DrawFn, period: str) -> dict[str, Any]:
        record: dict[str, Any] = {"payee": draw(payee_st), "period": period}
        group = draw(group_st)
        if group is not None:
            record["group"] = group
        if attr_st:
            record["attributes"] = {k: draw(s) for k, s in attr_st.items()}
        if metric_st:
            record["metrics"] = {k: draw(s) for k, s in metric_st.items()}
        if inputs.events:
            record["events"] = {k: draw(s) for k, s in events_for(period).items()}
        return record

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        return fill(draw, draw(period_st))

    strategy = build()
    strategy._incentives_fill = fill  # type: ignore[attr-defined]  # used by populations()
    return strategy


def _groups(groups: Any) -> st.SearchStrategy[str | None]:
    if groups is None:
        return st.none()
    if isinstance(groups, st.SearchStrategy):
        return groups
    if isinstance(groups, str):
        return st.just(groups)
    if isinstance(groups, Sequence) and groups and all(isinstance(g, str) for g in groups):
        return st.sampled_from(list(groups))
    raise InvalidArgument(f"groups={groups!r} must be a strategy, a group name or a "
                          "non-empty list of names")


def populations(
    plan: Plan,
    *,
    min_size: int = 1,
    max_size: int = 8,
    groups: st.SearchStrategy[str | None] | Sequence[str] | str | None = ("g1", "g2"),
    periods: st.SearchStrategy[str] | str | None = None,
    **kwargs: Any,
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """One period's population: ``min_size`` to ``max_size`` records of distinct
    payees (``p01``, ``p02``...), all in one drawn period, each in one of
    ``groups`` (a list of names, a strategy, or ``None`` for no group).
    Other keyword arguments go to :func:`records`.

    >>> from incentives import load_plan
    >>> plan = load_plan("examples/bank/plan.yaml")
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(populations(plan, min_size=3, max_size=3))
    ... def check(pop):
    ...     assert [r["payee"] for r in pop] == ["p01", "p02", "p03"]
    ...     assert len({r["period"] for r in pop}) == 1
    >>> check()
    """
    plan = _plan(plan, "populations()")
    min_size, max_size = _size(min_size, "min_size"), _size(max_size, "max_size")
    if min_size > max_size:
        raise InvalidArgument(f"min_size={min_size} is above max_size={max_size}")
    if max_size > 999:
        raise InvalidArgument(f"max_size={max_size}: at most 999 payees")
    if "payees" in kwargs:
        raise InvalidArgument("populations() names its payees p01, p02...; "
                              "use records() to choose payee ids")
    group_st = _groups(groups)
    period_st = _plan_periods(plan) if periods is None else _strategy_or_value(periods,
                                                                                "periods")
    # made once, up front (so bad keyword arguments fail now), drawn once per payee
    fill = records(plan, payees=st.just("p"), groups=group_st, periods=period_st,
                   **kwargs)._incentives_fill  # type: ignore[attr-defined]
    sizes = st.integers(min_value=min_size, max_value=max_size)

    @st.composite
    def build(draw: st.DrawFn) -> list[dict[str, Any]]:
        period = draw(period_st)
        n = draw(sizes)
        out = []
        for i in range(n):
            r = fill(draw, period)
            r["payee"] = f"p{i + 1:02d}" if max_size < 100 else f"p{i + 1:03d}"
            out.append(r)
        return out

    return build()


def parameters(plan: Plan, ranges: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Parameter overrides for ``plan.with_parameters(**values)``.

    ``ranges`` maps a parameter to ``(min_value, max_value)`` (Decimals),
    a list of values to pick from, or a strategy. Numbers keep the places of
    their bounds.

    >>> from incentives import load_plan
    >>> plan = load_plan("examples/telecom/plan.yaml")
    >>> from hypothesis import find
    >>> values = find(parameters(plan, {"floor_amount": (500, 900)}),
    ...               lambda v: v["floor_amount"] > 800)
    >>> values
    {'floor_amount': Decimal('801')}
    >>> plan.with_parameters(**values).parameters["floor_amount"] == values["floor_amount"]
    True
    """
    plan = _plan(plan, "parameters()")
    if not isinstance(ranges, Mapping) or not ranges:
        raise InvalidArgument("ranges must be a non-empty mapping of parameter names to "
                              "(min_value, max_value), a list of values, or a strategy")
    out: dict[str, st.SearchStrategy[Any]] = {}
    for name, spec in ranges.items():
        if name not in plan.parameters:
            hint = did_you_mean(str(name), plan.parameters)
            raise InvalidArgument(f"the plan has no parameter {name!r}"
                                  + (f"; {hint}" if hint else
                                     f"; parameters: {', '.join(plan.parameters) or 'none'}"))
        current = plan.parameters[name]
        if isinstance(spec, st.SearchStrategy):
            out[name] = spec
        elif isinstance(spec, tuple):
            if len(spec) != 2:
                raise InvalidArgument(f"ranges[{name!r}] must be (min_value, max_value)")
            if isinstance(current, (bool, str, DatedValue)):
                raise InvalidArgument(f"parameter {name!r} is not a plain number; "
                                      "give a list of values or a strategy")
            a = _number(spec[0], f"ranges[{name!r}][0]")
            b = _number(spec[1], f"ranges[{name!r}][1]")
            if a > b:
                raise InvalidArgument(f"ranges[{name!r}]: {a} is above {b}")
            places = max(_places(a), _places(b), _places(Decimal(current)))
            out[name] = st.decimals(min_value=a, max_value=b, places=places,
                                    allow_nan=False, allow_infinity=False)
        elif isinstance(spec, list) and spec:
            for v in spec:
                if isinstance(v, float):
                    raise InvalidArgument(f"ranges[{name!r}]: {v!r} is a float; use Decimal")
            out[name] = st.sampled_from(spec)
        else:
            raise InvalidArgument(f"ranges[{name!r}]={spec!r} must be (min_value, max_value), "
                                  "a non-empty list of values, or a strategy")
    return st.fixed_dictionaries(out)
