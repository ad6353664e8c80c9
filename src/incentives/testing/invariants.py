"""Ready invariants an auditor calls from their own tests (no hypothesis needed).

Each check evaluates a plan on concrete records and either returns the number
of comparisons it made (so a test can see that it checked something) or
raises :class:`InvariantViolation`, an ``AssertionError`` that carries the
counterexample: the records, and the two results that break the rule.

>>> from incentives import load_plan
>>> plan = load_plan('''
... name: cliff
... inputs: {metrics: {sales: {min: 0}}}
... policies:
...   - type: tiered
...     id: commission
...     basis: sales
...     method: retroactive
...     on_threshold: above
...     tiers: [{from: 0, rate: 0.02}, {from: 30000, rate: 0.04}]
... ''')
>>> records = [{"payee": "a", "period": "2026-05", "metrics": {"sales": "29999"}}]
>>> monotone(plan, "sales", records)
4
>>> no_cliff(plan, "sales", records, max_jump=50, step=1)
Traceback (most recent call last):
...
incentives.testing.invariants.InvariantViolation: no_cliff broken: pay of a (2026-05) changes by 600.02 (more than 50) when sales rises by 1, from 29999 to 30000
...

With hypothesis (``incentives.testing.strategies``), draw the records::

    @given(populations(plan))
    def test_pay_never_falls_when_sales_rise(records):
        monotone(plan, "sales", records)
"""

from __future__ import annotations

import dataclasses
import decimal
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import UsageError, did_you_mean
from ..money import ZERO
from ..runtime import Record, jsonable
from .declared import varying_names

if TYPE_CHECKING:
    from ..plan import Plan
    from ..results import PayeeResult, Run

__all__ = [
    "BALANCING_TYPES",
    "POOL_TYPES",
    "InvariantViolation",
    "cap_holds",
    "deterministic",
    "equal_treatment",
    "floor_holds",
    "monotone",
    "no_cliff",
    "order_independent",
    "penalties_never_pay",
    "pool_conserved",
    "record_data",
    "total_is_sum_of_lines",
]

#: The amounts ``monotone`` raises a metric by, when not told.
DEFAULT_RISES: tuple[Decimal, ...] = (Decimal("0.01"), Decimal(1), Decimal(100), Decimal(10000))

#: Policy types that share out a pool (checked by :func:`pool_conserved`).
POOL_TYPES: tuple[str, ...] = ("bonus_pool",)

#: Policy types whose lines are penalties (checked by :func:`penalties_never_pay`).
PENALTY_TYPES: tuple[str, ...] = ("churn_penalty",)

#: Policy types that rebalance a group's amounts keeping its total.
BALANCING_TYPES: tuple[str, ...] = ("balance",)

#: Keys of a line's details that may state the pool it shares.
_POOL_KEYS = ("pool", "pool_amount")


class InvariantViolation(AssertionError):
    """An invariant does not hold: the message, the records, the two results.

    ``records`` are JSON-ready record dicts that reproduce the break when
    evaluated; ``results`` are ``(label, PayeeResult)`` pairs (usually two:
    before and after, or one payee and another).
    """

    def __init__(self, invariant: str, message: str, records: Sequence[Record],
                 results: Sequence[tuple[str, PayeeResult]] = (),
                 facts: dict[str, Any] | None = None) -> None:
        self.invariant = invariant
        self.message = message
        self.records = [record_data(r) for r in records]
        self.results = list(results)
        self.facts = dict(facts or {})
        super().__init__(self.describe())

    def describe(self) -> str:
        """The message, then the records (one JSON line each) and the results."""
        lines = [f"{self.invariant} broken: {self.message}", "  records:"]
        lines += ["    " + json.dumps(r, ensure_ascii=False, sort_keys=False)
                  for r in self.records]
        for label, result in self.results:
            lines.append(f"  {label}: {describe_result(result)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: invariant, message, records, results, facts."""
        return {
            "invariant": self.invariant,
            "message": self.message,
            "records": self.records,
            "results": [{"label": label, **r.to_dict()} for label, r in self.results],
            "facts": jsonable(self.facts),
        }


def record_data(record: Record) -> dict[str, Any]:
    """A checked record as JSON-ready data (decimals and dates as strings).

    >>> record_data(Record("a", "2026-05", None, {}, {"sales": Decimal("12.50")}, {}))
    {'payee': 'a', 'period': '2026-05', 'metrics': {'sales': '12.50'}}
    """
    out: dict[str, Any] = {"payee": record.payee, "period": record.period}
    if record.group is not None:
        out["group"] = record.group
    if record.attributes:
        out["attributes"] = jsonable(record.attributes)
    if record.metrics:
        out["metrics"] = jsonable(record.metrics)
    events = {k: v for k, v in record.events.items() if v}
    if events:
        out["events"] = jsonable(events)
    return out


def describe_result(r: PayeeResult) -> str:
    """``total 948.00 = commission 1400.00 + ...`` with titles and flags."""
    parts = [f"{line.policy} {line.amount}" for line in r.lines]
    text = f"total {r.total}" + (" = " + " + ".join(parts) if parts else "")
    if r.titles:
        text += f"; titles: {', '.join(r.titles)}"
    if r.flags:
        text += f"; flags: {', '.join(r.flags)}"
    return text


# ---------------------------------------------------------------- helpers


def _checked(plan: Plan, records: Iterable[Any]) -> list[Record]:
    recs, problems = plan.compile().check(records)
    if problems:
        raise problems[0]
    return recs


def _evaluate(plan: Plan, records: Sequence[Record]) -> Run:
    return plan.compile().evaluate(records, errors="raise")


def _by_key(run: Run) -> dict[tuple[str, str], PayeeResult]:
    return {(r.period, r.payee): r for r in run.results}


def _policy_ids(plan: Plan) -> list[str]:
    from ..plan import flatten_policies

    return [p.id for p in flatten_policies(plan.policies)]


def _check_metric(plan: Plan, metric: str) -> None:
    names = varying_names(plan.inputs)
    if metric not in names:
        hint = did_you_mean(metric, names)
        raise UsageError(f"{metric!r} is not a metric or number attribute of plan "
                         f"{plan.name!r}" + (f"; {hint}" if hint else
                                             f"; it has: {', '.join(names) or 'none'}"))


def _check_policy(plan: Plan, policy: str | None) -> None:
    if policy is None:
        return
    ids = _policy_ids(plan)
    if policy not in ids:
        hint = did_you_mean(policy, ids)
        raise UsageError(f"plan {plan.name!r} has no policy {policy!r}"
                         + (f"; {hint}" if hint else f"; policies: {', '.join(ids)}"))


def _get(plan: Plan, r: Record, name: str) -> Decimal:
    value = r.metrics[name] if name in plan.inputs.metrics else r.attributes[name]
    return Decimal(value)


def _with(plan: Plan, r: Record, name: str, value: Decimal) -> Record:
    if name in plan.inputs.metrics:
        return dataclasses.replace(r, metrics={**r.metrics, name: value})
    return dataclasses.replace(r, attributes={**r.attributes, name: value})


def _spec(plan: Plan, name: str) -> Any:
    return plan.inputs.metrics.get(name) or plan.inputs.attributes[name]


def _raised(plan: Plan, name: str, value: Decimal, by: Decimal) -> Decimal | None:
    """``value + by`` kept within the input's bounds and integrality; None if it cannot rise."""
    spec = _spec(plan, name)
    allowed = getattr(spec, "allowed", None)
    if allowed:  # a number attribute with listed values: the next one up, at least `by`
        above = sorted(Decimal(a) for a in allowed if Decimal(a) >= value + by)
        return above[0] if above else None
    if spec.integer:
        by = max(Decimal(1), by.to_integral_value(rounding=decimal.ROUND_CEILING))
    new = value + by
    if spec.max is not None and new > spec.max:
        new = spec.max
    return new if new > value else None


def _pay(r: PayeeResult, policy: str | None) -> Decimal:
    return r.total if policy is None else r.amount(policy)


def _what(policy: str | None) -> str:
    return "pay" if policy is None else f"{policy!r}"


def _rises(by: Decimal | int | str | Sequence[Decimal | int | str]) -> list[Decimal]:
    items = [by] if isinstance(by, (Decimal, int, str)) else list(by)
    out = [Decimal(str(x)) if not isinstance(x, Decimal) else x for x in items]
    if not out or any(x <= 0 for x in out):
        raise UsageError("the amounts to raise a metric by must be positive numbers")
    return out


def _each_rise(plan: Plan, recs: list[Record], metric: str,
               rises: list[Decimal]) -> Iterator[tuple[Record, Decimal, Decimal, Any, Any]]:
    """For each record and each rise: the record, the metric before and after, and
    the payee's result before and after (the rest of the population unchanged).
    Rises that would leave the metric's declared bounds are skipped."""
    before = _by_key(_evaluate(plan, recs))
    for i, r in enumerate(recs):
        old = _get(plan, r, metric)
        for d in rises:
            new = _raised(plan, metric, old, d)
            if new is None:
                continue
            changed = [*recs[:i], _with(plan, r, metric, new), *recs[i + 1:]]
            after = _by_key(_evaluate(plan, changed))
            yield r, old, new, before[r.key], after[r.key]


# ------------------------------------------------------------ invariants


def monotone(plan: Plan, metric: str, records: Iterable[Any], policy: str | None = None, *,
             by: Decimal | int | str | Sequence[Decimal | int | str] = DEFAULT_RISES) -> int:
    """Raising ``metric`` for one payee never lowers that payee's pay.

    For each record of the population and each amount in ``by``, the
    population is evaluated again with that payee's ``metric`` raised (within
    its declared bounds); the payee's total (or ``policy``'s amount) must not
    fall. Other payees keep their records, so a ranking in a group is checked
    too: doing better never costs you.
    """
    _check_metric(plan, metric)
    _check_policy(plan, policy)
    recs = _checked(plan, records)
    checks = 0
    for r, old, new, a, b in _each_rise(plan, recs, metric, _rises(by)):
        checks += 1
        if _pay(b, policy) < _pay(a, policy):
            raise InvariantViolation(
                "monotone",
                f"{_what(policy)} of {r.payee} ({r.period}) falls from {_pay(a, policy)} "
                f"to {_pay(b, policy)} when {metric} rises from {old} to {new}",
                recs, [(f"{metric} = {old}", a), (f"{metric} = {new}", b)],
                {"payee": r.payee, "metric": metric, "from": old, "to": new})
    return checks


def no_cliff(plan: Plan, metric: str, records: Iterable[Any], *, max_jump: Decimal | int | str,
             step: Decimal | int | str = 1, policy: str | None = None) -> int:
    """Raising ``metric`` by ``step`` never changes a payee's pay by more than ``max_jump``.

    A retroactive tier is the usual cliff: one more unit of sales lifts the
    rate on the whole basis. Each record is compared with itself at
    ``metric + step`` (within the declared bounds), the rest of the population
    unchanged; the change in total (or in ``policy``'s amount), up or down,
    must be at most ``max_jump``.
    """
    _check_metric(plan, metric)
    _check_policy(plan, policy)
    limit = Decimal(str(max_jump))
    (rise,) = _rises(step)
    if limit < 0:
        raise UsageError("max_jump must not be negative")
    recs = _checked(plan, records)
    checks = 0
    for r, old, new, a, b in _each_rise(plan, recs, metric, [rise]):
        checks += 1
        jump = _pay(b, policy) - _pay(a, policy)
        if abs(jump) > limit:
            raise InvariantViolation(
                "no_cliff",
                f"{_what(policy)} of {r.payee} ({r.period}) changes by {jump} (more than "
                f"{limit}) when {metric} rises by {new - old}, from {old} to {new}",
                recs, [(f"{metric} = {old}", a), (f"{metric} = {new}", b)],
                {"payee": r.payee, "metric": metric, "from": old, "to": new, "jump": jump})
    return checks


def _specs_of_type(plan: Plan, kind: str) -> list[Any]:
    from ..plan import flatten_policies

    return [p for p in flatten_policies(plan.policies) if p.type == kind]


def floor_holds(plan: Plan, records: Iterable[Any], *,
                amount: Decimal | int | str | None = None) -> int:
    """Every payee's total is at least the floor.

    With ``amount``, the floor is that fixed amount. Without it, each floor
    policy of the plan on the total (``of: total``, the default) is checked
    against the floor it computed for that payee (a formula floor is read
    from the line's details), after every later policy has run.
    """
    recs = _checked(plan, records)
    run = _evaluate(plan, recs)
    rnd = plan.rounding.round
    by_key = {r.key: r for r in recs}
    checks = 0
    floors = {p.id for p in _specs_of_type(plan, "floor") if getattr(p, "of", "total") == "total"}
    for res in run.results:
        wanted: list[tuple[str, Decimal]] = []
        if amount is not None:
            wanted.append(("the floor", Decimal(str(amount))))
        else:
            for line in res.lines:
                if line.policy in floors and "floor" in line.details:
                    wanted.append((f"floor {line.policy!r}", rnd(Decimal(line.details["floor"]))))
        for label, floor in wanted:
            checks += 1
            if res.total < floor:
                raise InvariantViolation(
                    "floor_holds",
                    f"total of {res.payee} ({res.period}) is {res.total}, below {label} "
                    f"{floor}", [by_key[(res.period, res.payee)]], [("result", res)],
                    {"payee": res.payee, "floor": floor, "total": res.total})
    return checks


def cap_holds(plan: Plan, records: Iterable[Any], *,
              amount: Decimal | int | str | None = None) -> int:
    """No payee is paid above the cap.

    With ``amount``, every total is at most that amount. Without it, each cap
    policy of the plan is checked: a cap on the total holds the final total
    at most at its limit (so a later top-up that lifts pay over the cap is a
    break); a cap on a policy holds that policy's amount plus the cap's line.
    """
    recs = _checked(plan, records)
    run = _evaluate(plan, recs)
    rnd = plan.rounding.round
    by_key = {r.key: r for r in recs}
    ids = set(_policy_ids(plan))
    caps = {p.id: getattr(p, "of", "total") for p in _specs_of_type(plan, "cap")}
    checks = 0
    for res in run.results:
        found: list[tuple[str, Decimal, Decimal]] = []
        if amount is not None:
            found.append(("the cap", Decimal(str(amount)), res.total))
        else:
            for line in res.lines:
                of = caps.get(line.policy)
                if of is None or "limit" not in line.details:
                    continue
                limit = rnd(Decimal(line.details["limit"]))
                if of == "total":
                    found.append((f"cap {line.policy!r} on the total", limit, res.total))
                elif of in ids:
                    found.append((f"cap {line.policy!r} on {of!r}", limit,
                                  res.amount(of) + res.amount(line.policy)))
        for label, limit, value in found:
            checks += 1
            if value > limit:
                raise InvariantViolation(
                    "cap_holds",
                    f"{res.payee} ({res.period}) is paid {value}, above {label} {limit}",
                    [by_key[(res.period, res.payee)]], [("result", res)],
                    {"payee": res.payee, "limit": limit, "value": value})
    return checks


def total_is_sum_of_lines(plan: Plan, records: Iterable[Any]) -> int:
    """Each total is exactly the sum of its lines, each line is rounded to the
    plan's quantum, and the run's total is the sum of the totals."""
    recs = _checked(plan, records)
    run = _evaluate(plan, recs)
    by_key = {r.key: r for r in recs}
    rnd = plan.rounding.round
    checks = 0
    for res in run.results:
        checks += 1
        rec = [by_key[(res.period, res.payee)]]
        added = sum((line.amount for line in res.lines), ZERO)
        if res.total != added:
            raise InvariantViolation(
                "total_is_sum_of_lines",
                f"total of {res.payee} ({res.period}) is {res.total}, but its lines add up "
                f"to {added}", rec, [("result", res)])
        for line in res.lines:
            if line.amount != rnd(line.amount):
                raise InvariantViolation(
                    "total_is_sum_of_lines",
                    f"line {line.policy!r} of {res.payee} ({res.period}) is {line.amount}, "
                    f"not rounded to {plan.rounding.quantum}", rec, [("result", res)])
    grand = sum((r.total for r in run.results), ZERO)
    if run.total != grand:  # pragma: no cover - Run.total is this sum
        raise InvariantViolation("total_is_sum_of_lines",
                                 f"the run's total {run.total} is not the sum {grand}", recs)
    return checks


def penalties_never_pay(plan: Plan, records: Iterable[Any], *,
                        types: Sequence[str] = PENALTY_TYPES) -> int:
    """No penalty raises pay: each line of a penalty policy (``types``) is zero or
    below, and no payee's penalty is refused for coming to less than nothing (a
    :class:`~incentives.policies.churn.PenaltyError`, e.g. a ``per_customer``
    formula that goes negative on a record the inputs accept)."""
    from ..policies.churn import PenaltyError

    recs = _checked(plan, records)
    by_key = {r.key: r for r in recs}
    ids = {p.id for kind in types for p in _specs_of_type(plan, kind)}
    try:
        run = _evaluate(plan, recs)
    except PenaltyError as exc:
        culprit = [r for r in recs if r.payee == exc.payee and r.period == exc.period]
        raise InvariantViolation(
            "penalties_never_pay", f"{exc.payee} ({exc.period}): {exc.message}",
            culprit or recs, [], {"payee": exc.payee, "field": exc.field}) from None
    checks = 0
    for res in run.results:
        for line in res.lines:
            if line.policy not in ids:
                continue
            checks += 1
            if line.amount > 0:
                raise InvariantViolation(
                    "penalties_never_pay",
                    f"penalty {line.policy!r} pays {res.payee} ({res.period}) {line.amount}",
                    [by_key[(res.period, res.payee)]], [("result", res)],
                    {"payee": res.payee, "policy": line.policy, "amount": line.amount})
    return checks


def pool_conserved(plan: Plan, records: Iterable[Any], *,
                   types: Sequence[str] = POOL_TYPES,
                   balancing: Sequence[str] = BALANCING_TYPES) -> int:
    """Each pool pays out exactly, and balancing keeps each group's total.

    - Pools: per period and group, the lines of a pool policy add up to the
      pool its lines state (``details["pool"]``). Pool policies are found by
      type (``types``, default :data:`POOL_TYPES`) and, whatever their type,
      by lines whose details state a ``pool``.
    - Balancing (``balancing``, default :data:`BALANCING_TYPES`): per period
      and group, the adjustment lines add up to exactly zero.

    A plan with neither checks nothing (the count returned is 0).
    """
    recs = _checked(plan, records)
    run = _evaluate(plan, recs)
    pool_ids = {p.id for kind in types for p in _specs_of_type(plan, kind)}
    zero_ids = {p.id for kind in balancing for p in _specs_of_type(plan, kind)}
    buckets: dict[tuple[str, str | None, str], list[tuple[PayeeResult, Decimal, Any]]] = {}
    for res in run.results:
        for line in res.lines:
            stated = next((line.details[k] for k in _POOL_KEYS if k in line.details), None)
            if line.policy in zero_ids:
                stated = ZERO
            if line.policy in pool_ids or stated is not None:
                buckets.setdefault((res.period, res.group, line.policy), []).append(
                    (res, line.amount, stated))
    checks = 0
    for (period, group, pid), items in sorted(buckets.items(),
                                              key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        members = [r for r in recs if r.period == period and r.group == group]
        stated = {Decimal(str(s)) for _, _, s in items if s is not None}
        if not stated:
            raise UsageError(f"policy {pid!r} states no pool amount in its lines' details "
                             f"(one of {', '.join(_POOL_KEYS)}); cannot check it")
        paid = sum((a for _, a, _ in items), ZERO)
        checks += 1
        where = f"group {group!r}" if group is not None else "the population"
        pair = [(r.payee, r) for r, _, _ in items[:2]]
        if len(stated) > 1:
            raise InvariantViolation(
                "pool_conserved", f"pool {pid!r} in {where} ({period}) states different pool "
                f"amounts: {', '.join(sorted(map(str, stated)))}", members, pair)
        pool = stated.pop()
        if paid != pool:
            what = (f"balancing {pid!r} in {where} ({period}) changes the group's total by "
                    f"{paid}" if pid in zero_ids else
                    f"pool {pid!r} in {where} ({period}) is {pool} but pays out {paid} "
                    f"(off by {paid - pool})")
            raise InvariantViolation("pool_conserved", what, members, pair,
                                     {"pool": pool, "paid": paid})
    return checks


def _first_difference(a: Run, b: Run) -> tuple[PayeeResult, PayeeResult] | None:
    left, right = _by_key(a), _by_key(b)
    for key in sorted(set(left) | set(right)):
        x, y = left.get(key), right.get(key)
        if x is None or y is None:  # pragma: no cover - both runs see the same records
            raise AssertionError(f"payee {key[1]} ({key[0]}) is in only one of the runs")
        if json.dumps(x.to_dict()) != json.dumps(y.to_dict()):
            return x, y
    return None


def order_independent(plan: Plan, records: Iterable[Any], *,
                      orders: Iterable[Sequence[int]] | None = None) -> int:
    """The order records arrive in changes nothing: each reordering (a list of
    indices; default: reversed, and rotated by one) gives identical results."""
    recs = _checked(plan, records)
    n = len(recs)
    if orders is None:
        orders = [list(range(n))[::-1], [*range(1, n), 0][:n]]
    base = _evaluate(plan, recs)
    checks = 0
    for order in orders:
        order = list(order)
        if sorted(order) != list(range(n)):
            raise UsageError(f"an order is a permutation of 0..{n - 1}, not {order}")
        other = _evaluate(plan, [recs[i] for i in order])
        checks += 1
        diff = _first_difference(base, other)
        if diff is not None or base.to_json() != other.to_json():
            x, y = diff if diff is not None else (base.results[0], other.results[0])
            raise InvariantViolation(
                "order_independent",
                f"result of {x.payee} ({x.period}) changes when the records are reordered "
                f"as {order}", recs, [("in the given order", x), (f"in order {order}", y)],
                {"order": order})
    return checks


def _separating(plan: Plan) -> list[str]:
    return [p.id for p in plan.compile().policies if p.scope != "payee"]


def _comparable(r: PayeeResult, ids: set[str] | None) -> Any:
    if ids is None:
        return json.dumps({k: v for k, v in r.to_dict().items()
                           if k not in ("payee", "values")}, sort_keys=True)
    return [(line.policy, str(line.amount)) for line in r.lines if line.policy in ids]


def equal_treatment(plan: Plan, records: Iterable[Any], *,
                    separating: Sequence[str] | None = None) -> int:
    """Two payees with equal records in the same period and group are paid the same.

    The rule: records equal in everything but the payee id get identical
    lines, total, titles and flags, except from the first policy that may
    separate equals onward. By default those are the team-scoped policies
    (contests, honour awards, ranking flags, pools, quota splits...): a
    ranking may settle a tie by payee id, and an exact split gives the odd
    cent by a stated tie-break. Before that policy, every line must be equal.
    Pass ``separating=[]`` to demand full equality everywhere.
    """
    from ..plan import flatten_policies

    recs = _checked(plan, records)
    sep = _separating(plan) if separating is None else list(separating)
    for pid in sep:
        _check_policy(plan, pid)
    ids: set[str] | None = None
    if sep:
        ids = set()
        for p in plan.policies:
            if any(q.id in sep for q in flatten_policies([p])):
                break
            ids.update(q.id for q in flatten_policies([p]))
    run = _by_key(_evaluate(plan, recs))
    classes: dict[str, list[Record]] = {}
    for r in recs:
        data = record_data(r)
        data.pop("payee")
        classes.setdefault(json.dumps(data, sort_keys=True), []).append(r)
    checks = 0
    for members in classes.values():
        first = members[0]
        for other in members[1:]:
            a, b = run[first.key], run[other.key]
            checks += 1
            if _comparable(a, ids) != _comparable(b, ids):
                scope = ("" if ids is None else
                         f" (compared before {sep[0]!r}, which may separate equals)")
                raise InvariantViolation(
                    "equal_treatment",
                    f"{first.payee} and {other.payee} have equal records in "
                    f"{'group ' + repr(first.group) if first.group else 'no group'} "
                    f"({first.period}) but are paid differently{scope}", [first, other],
                    [(first.payee, a), (other.payee, b)])
    return checks


def deterministic(plan: Plan, records: Iterable[Any], *, runs: int = 2) -> int:
    """Evaluating the same records again, with the same plan and with a fresh
    copy of it (rebuilt from its data), gives byte-identical JSON."""
    from ..plan import Plan as PlanModel

    recs = _checked(plan, records)
    first = _evaluate(plan, recs)
    text = first.to_json()
    fresh = PlanModel.model_validate(plan.to_data())
    makers: list[tuple[str, Callable[[], Run]]] = [
        (f"run {i + 2}", lambda: _evaluate(plan, recs)) for i in range(max(1, runs - 1))]
    makers.append(("a fresh copy of the plan", lambda: _evaluate(fresh, recs)))
    checks = 0
    for label, make in makers:
        other = make()
        checks += 1
        if other.to_json() != text:
            diff = _first_difference(first, other)
            x, y = diff if diff is not None else (first.results[0], other.results[0])
            raise InvariantViolation(
                "deterministic", f"result of {x.payee} ({x.period}) differs between the first "
                f"run and {label}", recs, [("first run", x), (label, y)])
    return checks
