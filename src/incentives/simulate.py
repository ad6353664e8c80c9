"""Simulating pay schemes: variants of a plan, sweeps, and comparisons.

A *variant* is a plan derived from a baseline in code, without editing a file:
parameters overridden, policies dropped or added, or any nested field changed
by its path (``policies.commission.tiers[1].rate``). Its :meth:`Variant.summary`
says what differs from the baseline, as a structural diff of the two plans' data.

>>> from incentives import load_plan
>>> plan = load_plan('''
... name: demo
... inputs: {metrics: {sales: {}}}
... parameters: {floor_amount: 700}
... policies:
...   - {type: tiered, id: commission, basis: sales, method: marginal,
...      tiers: [{from: 0, rate: 0.02}, {from: 30000, rate: 0.04}]}
...   - {type: floor, id: floor, amount: floor_amount}
... ''')
>>> v = variant(plan, "richer", changes={"policies.commission.tiers[1].rate": "0.05"},
...             parameters={"floor_amount": 900})
>>> print(v.summary())
richer: 2 changes from demo
  parameters.floor_amount: 700 -> 900
  policies.commission.tiers[1].rate: 0.04 -> 0.05

:func:`simulate` evaluates the baseline and its variants on the same
population; :meth:`Simulation.compare` gives the figures a designer asks for
(cost, distribution, floor and cap shares, spread per group, winners and
losers), exact in Decimal, with DataFrame views when pandas is installed.

>>> people = [{"payee": p, "period": "2026-05", "metrics": {"sales": s}}
...           for p, s in [("a", 10000), ("b", 50000)]]
>>> sim = simulate(plan, [v], people, progress=False)
>>> c = sim.compare(revenue="sales")
>>> c["baseline"].total_cost, c["richer"].total_cost
(Decimal('2100.00'), Decimal('2500.00'))
>>> c["richer"].changes.winners
2
"""

from __future__ import annotations

import decimal
import heapq
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from .errors import UsageError, did_you_mean
from .money import CONTEXT, ZERO, to_decimal
from .plan import Plan
from .policies.base import PolicyBase
from .spread import coefficient_of_variation, gini, max_min_ratio

if TYPE_CHECKING:
    import pandas as pd

    from .results import PayeeResult, Run
    from .runtime import Record

__all__ = [
    "REMOVE",
    "Change",
    "Changes",
    "Comparison",
    "GroupSpread",
    "Outcome",
    "PayeeChange",
    "Simulation",
    "Summary",
    "Variant",
    "at_cap",
    "changes",
    "diff",
    "format_figure",
    "on_floor",
    "percentile",
    "simulate",
    "summarize",
    "sweep",
    "variant",
]


class _Absent:
    """Marks a value that is not there (a key added or removed)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVE"


#: Use as a value in ``changes`` to delete a key, a list item or a policy.
REMOVE: Any = _Absent()
_ABSENT = REMOVE


# ---------------------------------------------------------------- diffs


@dataclass(frozen=True)
class Change:
    """One difference between two plans: a path, the value before and after."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """``"added"``, ``"removed"`` or ``"changed"``."""
        if self.before is _ABSENT:
            return "added"
        if self.after is _ABSENT:
            return "removed"
        return "changed"

    def __str__(self) -> str:
        if self.kind == "added":
            return f"{self.path}: added {_show(self.after)}"
        if self.kind == "removed":
            return f"{self.path}: removed (was {_show(self.before)})"
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}"


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value if re.fullmatch(r"[\w .*/+\-()<>=!,]*", value) else repr(value)
    if isinstance(value, Mapping):
        if "type" in value and "id" in value:
            return f"{value['type']} policy {value['id']!r}"
        inner = ", ".join(f"{k}: {_show(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _keyed(value: Any) -> Any:
    """Plan data with lists of policies keyed by id, so a diff matches policies by id."""
    if isinstance(value, Mapping):
        return {k: _keyed(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) and isinstance(v.get("id"), str)
                         and "type" in v for v in value):
            return _ById({v["id"]: _keyed(v) for v in value})
        return [_keyed(v) for v in value]
    return value


class _ById(dict[str, Any]):
    """A list of policies, keyed by id (order is kept as the dict's order)."""


def diff(base: Plan, other: Plan) -> list[Change]:
    """The differences between two plans' data (policies matched by id).

    Each :class:`Change` path can be given back to :func:`variant` in ``changes``.
    """
    out: list[Change] = []
    _diff(_keyed(base.to_data()), _keyed(other.to_data()), "", out)
    return out


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _diff(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in a:
            if k in b:
                _diff(a[k], b[k], _join(path, k), out)
            else:
                out.append(Change(_join(path, k), a[k], _ABSENT))
        for k in b:
            if k not in a:
                out.append(Change(_join(path, k), _ABSENT, b[k]))
        if isinstance(a, _ById) and isinstance(b, _ById):
            common_a = [k for k in a if k in b]
            common_b = [k for k in b if k in a]
            if common_a != common_b:
                out.append(Change(f"{path} (order)", common_a, common_b))
        return
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            if i >= len(b):
                out.append(Change(_join(path, i), a[i], _ABSENT))
            elif i >= len(a):
                out.append(Change(_join(path, i), _ABSENT, b[i]))
            else:
                _diff(a[i], b[i], _join(path, i), out)
        return
    if type(a) is not type(b) or a != b:
        if isinstance(a, _ById):
            a = dict(a)
        if isinstance(b, _ById):
            b = dict(b)
        out.append(Change(path, a, b))


# ---------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """A plan derived from a baseline, with a name (and, in a sweep, its point)."""

    name: str
    plan: Plan
    base: Plan | None = None
    parameter: str | None = None
    value: Any = None

    def changes(self) -> list[Change]:
        """What differs from the baseline (empty when there is no baseline)."""
        return diff(self.base, self.plan) if self.base is not None else []

    def summary(self) -> str:
        """A readable summary: one line per change from the baseline."""
        if self.base is None:
            return f"{self.name}: plan {self.plan.name!r} (no baseline)"
        changes = self.changes()
        n = len(changes)
        head = f"{self.name}: {n} change{'' if n == 1 else 's'} from {self.base.name}"
        return "\n".join([head, *(f"  {c}" for c in changes)])


_TOKEN = re.compile(r"\[(-?\d+)\]|([^.\[\]]+)")


def _parse_path(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    pos = 0
    text = path.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise UsageError(f"cannot read the path {path!r} at {text[pos:]!r}; write "
                             "it like policies.commission.tiers[1].rate")
        tokens.append(int(m.group(1)) if m.group(1) is not None else m.group(2).strip())
        pos = m.end()
    if not tokens:
        raise UsageError("an empty path")
    return tokens


def _step(container: Any, token: str | int, path: str, done: str) -> tuple[Any, str | int]:
    """Resolve ``token`` in ``container``: the key or index to use there."""
    where = done or "the plan"
    if isinstance(container, dict):
        if isinstance(token, int):
            raise UsageError(f"{path}: {where} is a mapping; use .name, not [{token}]")
        return container, token
    if isinstance(container, list):
        if isinstance(token, int):
            if not -len(container) <= token < len(container):
                raise UsageError(f"{path}: {where} has {len(container)} items; "
                                 f"[{token}] is out of range")
            return container, token % len(container)
        ids = [v.get("id") for v in container if isinstance(v, dict)]
        if token in ids:
            return container, ids.index(token)
        hint = did_you_mean(token, [i for i in ids if isinstance(i, str)])
        raise UsageError(f"{path}: {where} has no item with id {token!r}"
                         + (f"; {hint}" if hint else ""))
    raise UsageError(f"{path}: {where} is a value ({_show(container)}), not a mapping or list")


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    tokens = _parse_path(path)
    node: Any = data
    done = ""
    for token in tokens[:-1]:
        node, key = _step(node, token, path, done)
        if isinstance(node, dict) and key not in node:
            hint = did_you_mean(str(key), [str(k) for k in node])
            raise UsageError(f"{path}: {done or 'the plan'} has no {key!r}"
                             + (f"; {hint}" if hint else ""))
        done = _join(done, token)
        node = node[key]
    node, key = _step(node, tokens[-1], path, done)
    if value is _ABSENT:
        if isinstance(node, dict):
            if key not in node:
                raise UsageError(f"{path}: nothing to remove")
            del node[key]
        else:
            del node[key]
        return
    old = node.get(key, _ABSENT) if isinstance(node, dict) else node[key]
    node[key] = _coerce(value, old)


def _coerce(value: Any, old: Any) -> Any:
    """Values as a plan file would hold them: floats and numeric text become Decimals."""
    if isinstance(value, PolicyBase):
        return value.model_dump(mode="python", exclude_defaults=True, by_alias=True)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return to_decimal(value)
    if isinstance(value, str) and isinstance(old, Decimal):
        try:
            return to_decimal(value)
        except ValueError:
            return value
    if isinstance(value, Mapping):
        return {k: _coerce(v, _ABSENT) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v, _ABSENT) for v in value]
    return value


def _validated(data: dict[str, Any], name: str) -> Plan:
    from .policies.validation import plan_error

    where = f"<variant {name!r}>"
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise plan_error(exc, data, {}, where) from None
    plan._file = where
    plan.compile()
    return plan


def variant(
    plan: Plan | Variant,
    name: str,
    *,
    changes: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
    remove: Iterable[str] = (),
    add: Iterable[PolicyBase | Mapping[str, Any]] = (),
) -> Variant:
    """Derive a named variant of ``plan``; the baseline is left as it is.

    Applied in this order: ``remove`` (policy ids), ``add`` (policies appended,
    or placed with an ``after:`` / ``before:`` key in a mapping), ``parameters``
    (overrides, like :meth:`Plan.with_parameters`), then ``changes``: paths into
    the plan's data, e.g. ``{"policies.commission.tiers[1].rate": "0.05"}``.
    A policy in a path is named by its id (or its index); :data:`REMOVE` as a
    value deletes. The result is validated and compiled, so a change that makes
    the plan wrong raises :class:`PlanError` at once.

    Given a :class:`Variant`, the new variant builds on it and keeps its baseline,
    so its summary lists every change from that baseline.
    """
    if isinstance(plan, Variant):
        base = plan.base if plan.base is not None else plan.plan
        plan = plan.plan
    else:
        base = plan
    data = plan.to_data()
    policies: list[Any] = data["policies"]
    for pid in remove:
        ids = [p["id"] for p in policies]
        if pid not in ids:
            hint = did_you_mean(pid, ids)
            raise UsageError(f"variant {name!r}: no policy {pid!r} to remove"
                             + (f"; {hint}" if hint else ""))
        del policies[ids.index(pid)]
    for item in add:
        spec = dict(_coerce(item, _ABSENT))
        after, before = spec.pop("after", None), spec.pop("before", None)
        ids = [p["id"] for p in policies]
        anchor = after if after is not None else before
        if anchor is not None and anchor not in ids:
            hint = did_you_mean(str(anchor), ids)
            raise UsageError(f"variant {name!r}: no policy {anchor!r} to add next to"
                             + (f"; {hint}" if hint else ""))
        if after is not None:
            policies.insert(ids.index(after) + 1, spec)
        elif before is not None:
            policies.insert(ids.index(before), spec)
        else:
            policies.append(spec)
    params: dict[str, Any] = data.setdefault("parameters", {})
    for key, value in (parameters or {}).items():
        if key not in params:
            hint = did_you_mean(key, params)
            raise UsageError(f"variant {name!r}: unknown parameter {key!r}"
                             + (f"; {hint}" if hint else ""))
        params[key] = _coerce(value, params[key])
    for path, value in (changes or {}).items():
        _set_path(data, path, value)
    return Variant(name, _validated(data, name), base)


def _as_path(plan: Plan, parameter: str) -> str:
    if parameter in plan.parameters:
        return f"parameters.{parameter}"
    if "." in parameter or "[" in parameter:
        return parameter
    hint = did_you_mean(parameter, plan.parameters)
    raise UsageError(f"unknown parameter {parameter!r}" + (f"; {hint}" if hint else "")
                     + "; or give a path like policies.commission.tiers[1].rate")


def sweep(plan: Plan, parameter: str, values: Iterable[Any]) -> list[Variant]:
    """One variant per value of ``parameter`` (a parameter name or a path).

    >>> from incentives import load_plan
    >>> plan = load_plan("name: d\\ninputs: {metrics: [sales]}\\nparameters: {r: 0.1}\\n"
    ...                  "policies: [{type: formula, id: c, amount: sales * r}]")
    >>> [v.name for v in sweep(plan, "r", ["0.1", "0.2"])]
    ['r=0.1', 'r=0.2']
    """
    path = _as_path(plan, parameter)
    out = []
    for value in values:
        shown = _show(_coerce(value, Decimal(0)) if isinstance(value, (int, float)) else value)
        v = variant(plan, f"{parameter}={shown}", changes={path: value})
        out.append(Variant(v.name, v.plan, plan, parameter=parameter,
                           value=_coerce(value, Decimal(0))))
    return out


# ---------------------------------------------------------------- running


@dataclass
class Outcome:
    """A plan (baseline or variant) evaluated on the simulation's population."""

    name: str
    plan: Plan
    run: Run
    variant: Variant | None = None


def _population(records: Any) -> list[Any]:
    if hasattr(records, "columns") and hasattr(records, "itertuples"):
        from .dataframes import frame_rows

        return list(frame_rows(records))
    return list(records)


def _progress(items: Sequence[Any], enabled: bool | None, desc: str) -> Iterable[Any]:
    if enabled is False:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the simulate extra
        return items
    bar: Iterable[Any] = tqdm(items, desc=desc, unit="plan",
                              disable=None if enabled is None else False)
    return bar


class Simulation:
    """A baseline and its variants evaluated on one population."""

    def __init__(self, baseline: Outcome, variants: list[Outcome]) -> None:
        self.baseline = baseline
        self.variants = variants

    @property
    def records(self) -> list[Record]:
        """The checked records of the payees the baseline evaluated."""
        return [r.record for r in self.baseline.run.results if r.record is not None]

    @property
    def outcomes(self) -> list[Outcome]:
        """The baseline, then the variants."""
        return [self.baseline, *self.variants]

    def __getitem__(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(f"no outcome {name!r}; outcomes: {', '.join(o.name for o in self.outcomes)}")

    def runs(self) -> dict[str, Run]:
        """Each outcome's run, by name."""
        return {o.name: o.run for o in self.outcomes}

    def metric(self, name: str) -> dict[tuple[str, str], Decimal]:
        """A metric of each record, by (period, payee)."""
        out = {}
        for r in self.records:
            if name not in r.metrics:
                known = list(r.metrics)
                hint = did_you_mean(name, known)
                raise UsageError(f"no metric {name!r} in the records"
                                 + (f"; {hint}" if hint else ""))
            out[(r.period, r.payee)] = r.metrics[name]
        return out

    def compare(self, *, revenue: str | None = None, top: int = 5) -> Comparison:
        """Figures for the baseline and each variant (see :func:`summarize`).

        ``revenue`` names the metric that cost is measured against.
        """
        first = next((r.record for r in self.baseline.run.results if r.record is not None),
                     None)
        if revenue and first is not None and revenue not in first.metrics:
            hint = did_you_mean(revenue, first.metrics)
            raise UsageError(f"no metric {revenue!r} in the records"
                             + (f"; {hint}" if hint else ""))
        from .engine import paused_gc

        with paused_gc():  # many small objects, no cycles: the collector is pure cost
            out = [summarize(self.baseline.run, name=self.baseline.name, revenue=revenue)]
            for o in self.variants:
                out.append(summarize(o.run, name=o.name, revenue=revenue,
                                     baseline=self.baseline.run, top=top))
        return Comparison(out)


def simulate(
    baseline: Plan,
    variants: Iterable[Variant | Plan],
    population: Any,
    *,
    progress: bool | None = None,
    errors: str = "collect",
) -> Simulation:
    """Evaluate ``baseline`` and each variant on the same ``population``.

    ``population`` is a list of records (dicts or :class:`Record`) or a pandas
    DataFrame. ``progress`` shows a tqdm bar over the plans (``None``: only on a
    terminal). Records that fail are in each run's ``errors`` (``errors="raise"``
    raises the first instead).
    """
    records = _population(population)
    items: list[tuple[str, Plan, Variant | None]] = [("baseline", baseline, None)]
    for i, v in enumerate(variants):
        if isinstance(v, Variant):
            items.append((v.name, v.plan, v))
        else:
            items.append((v.name if v.name != baseline.name else f"variant {i + 1}", v, None))
    names = [n for n, _, _ in items]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise UsageError(f"two outcomes named {sorted(dupes)[0]!r}; give the variants other names")
    outcomes = []
    mode: Literal["raise", "collect"] = "raise" if errors == "raise" else "collect"
    from .engine import paused_gc

    # the runs kept alive grow the heap; the collector's full passes over it between
    # evaluations would make a sweep cost more than one evaluation per plan
    with paused_gc():
        for name, plan, var in _progress(items, progress, "simulate"):
            run = plan.evaluate(records, errors=mode)
            outcomes.append(Outcome(name, plan, run, var))
    return Simulation(outcomes[0], outcomes[1:])


# ---------------------------------------------------------------- figures


def percentile(values: Sequence[Decimal], p: Decimal | str | int) -> Decimal:
    """The ``p``-th fraction (0..1) of ``values``, interpolated between closest ranks.

    The position is ``h = (n - 1) * p`` in the sorted values (0-based), and the
    value is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``
    (the "linear" rule of NumPy and Excel's PERCENTILE.INC).

    >>> percentile([Decimal(v) for v in (10, 20, 30, 40)], "0.5")
    Decimal('25.0')
    >>> percentile([Decimal(v) for v in (10, 20, 30, 40)], "0.1")
    Decimal('13.0')
    """
    if not values:
        raise ValueError("percentile of no values")
    q = Decimal(p)
    if not 0 <= q <= 1:
        raise ValueError(f"p must be between 0 and 1, not {p}")
    return _percentile(sorted(values), q)


def _percentile(xs: Sequence[Decimal], q: Decimal) -> Decimal:
    """:func:`percentile` of values already sorted."""
    with decimal.localcontext(CONTEXT):
        h = (len(xs) - 1) * q
        lo = int(h)
        frac = h - lo
        if lo + 1 >= len(xs) or frac == 0 or xs[lo + 1] == xs[lo]:
            return xs[lo]
        return xs[lo] + frac * (xs[lo + 1] - xs[lo])


@dataclass
class GroupSpread:
    """How unequal pay is inside one group."""

    group: str | None
    payees: int
    total: Decimal
    min: Decimal
    max: Decimal
    max_min: Decimal | None
    cv: Decimal | None
    gini: Decimal | None


@dataclass
class PayeeChange:
    """One payee's pay under the baseline and under a variant."""

    payee: str
    period: str
    group: str | None
    before: Decimal
    after: Decimal

    @property
    def change(self) -> Decimal:
        return self.after - self.before


@dataclass
class Changes:
    """Winners and losers of a variant against the baseline (payees in both runs)."""

    winners: int
    losers: int
    unchanged: int
    gained: Decimal
    lost: Decimal
    largest_gain: Decimal
    largest_loss: Decimal
    biggest: list[PayeeChange]
    #: payees evaluated in only one of the two runs (a record failed in one)
    unmatched: int = 0

    @property
    def net(self) -> Decimal:
        """Total gained less total lost."""
        return self.gained - self.lost


@dataclass
class Summary:
    """The figures of one outcome (baseline or variant)."""

    name: str
    payees: int
    total_cost: Decimal
    revenue: Decimal | None
    cost_per_revenue: Decimal | None
    mean: Decimal | None
    median: Decimal | None
    p10: Decimal | None
    p90: Decimal | None
    on_floor: int
    at_cap: int
    groups: dict[str | None, GroupSpread] = field(default_factory=dict)
    changes: Changes | None = None
    errors: int = 0

    @property
    def on_floor_share(self) -> Decimal | None:
        """The share of payees topped up by a floor (0..1)."""
        return _share(self.on_floor, self.payees)

    @property
    def at_cap_share(self) -> Decimal | None:
        """The share of payees held down by a cap (0..1)."""
        return _share(self.at_cap, self.payees)

    def figures(self) -> dict[str, Any]:
        """The headline figures as a flat mapping (one row of the comparison table)."""
        row: dict[str, Any] = {
            "variant": self.name, "payees": self.payees, "total_cost": self.total_cost,
            "cost_per_revenue": self.cost_per_revenue, "mean": self.mean,
            "median": self.median, "p10": self.p10, "p90": self.p90,
            "on_floor_share": self.on_floor_share, "at_cap_share": self.at_cap_share,
        }
        ch = self.changes
        row.update(winners=ch.winners if ch else None, losers=ch.losers if ch else None,
                   net_change=ch.net if ch else None)
        return row


def _share(k: int, n: int) -> Decimal | None:
    if n == 0:
        return None
    with decimal.localcontext(CONTEXT):
        return Decimal(k) / Decimal(n)


def on_floor(result: PayeeResult) -> bool:
    """Whether a floor topped this payee up (a floor line above zero)."""
    return any(line.type == "floor_top_up" and line.amount > ZERO for line in result.lines)


def at_cap(result: PayeeResult) -> bool:
    """Whether a cap held this payee down: a cap line below zero, or a capped commission."""
    for line in result.lines:
        if line.type == "cap":
            if line.amount < ZERO:
                return True
        elif line.type == "commission" and line.details.get("capped"):
            return True
    return False


def summarize(
    run: Run,
    *,
    name: str = "baseline",
    revenue: str | Mapping[tuple[str, str], Decimal] | None = None,
    baseline: Run | None = None,
    top: int = 5,
) -> Summary:
    """The figures of one run; with ``baseline``, also its winners and losers.

    - ``total_cost``: the sum of every payee's total; ``cost_per_revenue``: that
      over the sum of ``revenue`` of the payees evaluated (``revenue`` names a
      metric of the records, or maps (period, payee) to an amount);
    - ``mean``, ``median``, ``p10``, ``p90`` of payee totals (see :func:`percentile`);
    - ``on_floor`` / ``at_cap``: payees with a floor line above zero / a cap line
      below zero (or a capped commission);
    - ``groups``: per group, max/min, coefficient of variation and Gini of totals
      (:mod:`incentives.spread`);
    - ``changes``: per payee, variant total less baseline total.
    """
    results = run.results
    totals: list[Decimal] = []
    groups: dict[str | None, list[Decimal]] = {}
    floor_count = cap_count = 0
    for r in results:
        t = r.total
        totals.append(t)
        groups.setdefault(r.group, []).append(t)
        if on_floor(r):
            floor_count += 1
        if at_cap(r):
            cap_count += 1
    ordered = sorted(totals)
    with decimal.localcontext(CONTEXT):
        cost = sum(totals, ZERO)
        rev_total: Decimal | None = None
        ratio: Decimal | None = None
        if revenue is not None:
            rev_total = sum([_revenue(r, revenue) for r in results], ZERO)
            ratio = cost / rev_total if rev_total else None
        mean = cost / len(totals) if totals else None
    spreads = {}
    for g in sorted(groups, key=lambda k: k or ""):
        xs = groups[g]
        spreads[g] = GroupSpread(g, len(xs), sum(xs, ZERO), min(xs), max(xs), max_min_ratio(xs),
                                 _tidy(coefficient_of_variation(xs)), gini(xs))
    return Summary(
        name=name,
        payees=len(results),
        total_cost=cost,
        revenue=rev_total,
        cost_per_revenue=ratio,
        mean=mean,
        median=_percentile(ordered, Decimal("0.5")) if totals else None,
        p10=_percentile(ordered, Decimal("0.1")) if totals else None,
        p90=_percentile(ordered, Decimal("0.9")) if totals else None,
        on_floor=floor_count,
        at_cap=cap_count,
        groups=spreads,
        changes=changes(baseline, run, top=top) if baseline is not None else None,
        errors=len(run.errors),
    )


def _tidy(x: Decimal | None) -> Decimal | None:
    return x.normalize() if x is not None and x == 0 else x


def _revenue(r: PayeeResult, revenue: str | Mapping[tuple[str, str], Decimal]) -> Decimal:
    if not isinstance(revenue, str):
        return revenue[(r.period, r.payee)]
    if r.record is None or revenue not in r.record.metrics:
        raise UsageError(f"no metric {revenue!r} for payee {r.payee!r} in {r.period}")
    value: Decimal = r.record.metrics[revenue]
    return value


def changes(baseline: Run, other: Run, *, top: int = 5) -> Changes:
    """Per-payee winners and losers of ``other`` against ``baseline``.

    ``biggest`` holds the ``top`` largest changes by size (ties: by period, payee).
    """
    before = {(r.period, r.payee): r.total for r in baseline.results}
    moved: list[tuple[Decimal, PayeeResult, Decimal]] = []
    gains: list[Decimal] = []
    losses: list[Decimal] = []
    matched = 0
    for r in other.results:
        b = before.get((r.period, r.payee))
        if b is None:
            continue
        matched += 1
        d = r.total - b
        if d > 0:
            gains.append(d)
        elif d < 0:
            losses.append(-d)
        else:
            continue
        moved.append((d, r, b))
    unmatched = (len(before) - matched) + (len(other.results) - matched)
    chosen = heapq.nsmallest(top, moved, key=lambda m: (-abs(m[0]), m[1].period, m[1].payee))
    biggest = [PayeeChange(r.payee, r.period, r.group, b, r.total) for _, r, b in chosen]
    return Changes(
        winners=len(gains),
        losers=len(losses),
        unchanged=matched - len(gains) - len(losses),
        gained=sum(gains, ZERO),
        lost=sum(losses, ZERO),
        largest_gain=max(gains, default=ZERO),
        largest_loss=max(losses, default=ZERO),
        biggest=biggest,
        unmatched=unmatched,
    )


class Comparison:
    """The summaries of a baseline and its variants, by name, with table views."""

    def __init__(self, summaries: list[Summary]) -> None:
        self.summaries = summaries

    def __iter__(self) -> Iterator[Summary]:
        return iter(self.summaries)

    def __len__(self) -> int:
        return len(self.summaries)

    def __getitem__(self, name: str) -> Summary:
        for s in self.summaries:
            if s.name == name:
                return s
        raise KeyError(f"no summary {name!r}; "
                       f"names: {', '.join(s.name for s in self.summaries)}")

    def rows(self) -> list[dict[str, Any]]:
        """One row of headline figures per outcome (exact Decimals)."""
        return [s.figures() for s in self.summaries]

    def group_rows(self) -> list[dict[str, Any]]:
        """One row per outcome and group: the spread figures."""
        out = []
        for s in self.summaries:
            for g in s.groups.values():
                out.append({"variant": s.name, "group": g.group, "payees": g.payees,
                            "total": g.total, "min": g.min, "max": g.max,
                            "max_min": g.max_min, "cv": g.cv, "gini": g.gini})
        return out

    def change_rows(self) -> list[dict[str, Any]]:
        """One row per variant and biggest change."""
        out = []
        for s in self.summaries:
            if s.changes is None:
                continue
            for c in s.changes.biggest:
                out.append({"variant": s.name, "payee": c.payee, "period": c.period,
                            "group": c.group, "before": c.before, "after": c.after,
                            "change": c.change})
        return out

    def to_dataframe(self, *, floats: bool = False) -> pd.DataFrame:
        """The headline figures, one row per outcome, indexed by name."""
        return _frame(self.rows(), floats).set_index("variant")

    def groups_dataframe(self, *, floats: bool = False) -> pd.DataFrame:
        """The spread per group, one row per outcome and group."""
        return _frame(self.group_rows(), floats)

    def changes_dataframe(self, *, floats: bool = False) -> pd.DataFrame:
        """The biggest per-payee changes of each variant."""
        return _frame(self.change_rows(), floats)

    def to_text(self, *, places: int = 2) -> str:
        """The headline figures as a text table."""
        rows = self.rows()
        if not rows:
            return ""
        header = list(rows[0])
        body = [[format_figure(r[k], places=places, key=k) for k in header] for r in rows]
        from .display import table

        right = [i > 0 for i in range(len(header))]  # the variant's name, then figures
        lines = table([header], body, right=right, head_right=[False] * len(header),
                      underline=False)
        return "\n".join(lines) + "\n"


def format_figure(value: Any, *, places: int = 2, key: str = "") -> str:
    """A figure for a table: shares and cost per revenue as percentages, ratios to 4 places,
    money to ``places``."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        if key.endswith("_share"):
            return f"{(value * 100).quantize(Decimal('0.1'))}%"
        if key == "cost_per_revenue":  # cost as a percentage of revenue, as designers say it
            return f"{(value * 100).quantize(Decimal('0.01'))}%"
        if key in ("cv", "gini", "max_min"):
            return format(value.quantize(Decimal("0.0001")), "f")
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")
    return str(value)


def _frame(rows: list[dict[str, Any]], floats: bool) -> pd.DataFrame:
    from .extras import require

    require("simulate", "a DataFrame view of a comparison", modules=("pandas",))
    import pandas as pd

    frame = pd.DataFrame(rows)
    if floats:
        for col in frame.columns:
            if any(isinstance(v, Decimal) for v in frame[col]):
                frame[col] = [float(v) if isinstance(v, Decimal) else v for v in frame[col]]
                frame[col] = frame[col].astype("float64")
    return frame
