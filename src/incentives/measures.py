"""Measures: named aggregations of a payee's credits (or event lists) in a period.

A measure is read by formulas and policies exactly as a metric is::

    measures:
      revenue: {kinds: [invoices, credit_notes], rules: [direct], sum: amount}
      deals: {kinds: [invoices], count: transactions}
      by_product: {sum: amount, by: product, values: [mobile, ipvpn]}
      lost_value: {events: lost_customers, sum: monthly_value}

What each aggregation means, over the credits a payee has in the period (the
credit counts in the period that holds its transaction's ``date``, or the date
field the measure names):

- ``sum: F``: the sum of the credited values ``F x share``;
- ``count: transactions``: how many distinct transactions were credited;
  ``count: credits``: how many credits;
- ``distinct: F``: how many distinct values of ``F``;
- ``min: F`` / ``max: F``: the least / greatest credited value ``F x share``
  (zero when nothing counts).

``kinds`` and ``rules`` choose the credits (default: all), ``where`` is a
formula over the transaction's fields (and ``kind``, ``rule``, ``share``; a
transaction lacking an optional field the formula reads does not count), and
``by`` with ``values`` makes one more measure per value (``by_product_mobile``,
``by_product_ipvpn``, and ``by_product_other`` for the rest), the value read
through a classification ``table`` when one is named. Over a record's event
list (``events: lost_customers``) the same aggregations apply to the events,
each with share 1.

A measure keeps the credits behind it (:class:`~incentives.runtime.MeasureValue`):
statements list them, each with its share, its rule and its contribution.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from .errors import IncentivesError, TransactionError, describe_exception, did_you_mean
from .formulas import RUNTIME_ERRORS, Formula, NameType
from .money import CONTEXT, ZERO, whole
from .policies.base import CompileContext, Identifier, Label, StrictModel
from .runtime import Credit, MeasureValue, PayeeState, PeriodContext
from .transactions import BUILTIN_FIELDS, TransactionKind, kind_names
from .wording import Step, Wording, signed_sum

if TYPE_CHECKING:
    from .inputs import EventSpec

__all__ = [
    "AGGREGATIONS",
    "CompiledMeasures",
    "CreditIndex",
    "MeasureSpec",
    "measure_names",
    "measure_steps",
]

#: The aggregations a measure may make, each naming a field (``count`` names what it counts).
AGGREGATIONS = ("sum", "count", "distinct", "min", "max")
#: What ``by`` names the bucket of values not listed in ``values``.
OTHER = "other"


class MeasureSpec(StrictModel):
    """A named aggregation of credits or of a record's events (see the module)."""

    label: Label | None = None
    events: Identifier | None = None
    kinds: list[Identifier] | None = None
    rules: list[Identifier] | None = None
    sum: Identifier | None = None
    count: Literal["transactions", "credits", "events"] | None = None
    distinct: Identifier | None = None
    min: Identifier | None = None
    max: Identifier | None = None
    where: str | None = None
    by: Identifier | None = None
    values: list[Identifier] | None = None
    table: Identifier | None = None
    date: Identifier = "date"

    @model_validator(mode="after")
    def _one_aggregation(self) -> MeasureSpec:
        given = [a for a in AGGREGATIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError("a measure makes one aggregation: one of sum, count, distinct, "
                             f"min, max{' (not ' + ' and '.join(given) + ')' if given else ''}")
        if self.events is not None:
            for name in ("kinds", "rules"):
                if getattr(self, name) is not None:
                    raise ValueError(f"a measure over events takes no {name!r}")
            if self.count not in (None, "events"):
                raise ValueError("a measure over events counts 'events'")
            if self.date != "date":
                raise ValueError("a measure over events counts the record's events: no 'date'")
        elif self.count == "events":
            raise ValueError("'count: events' is for a measure over an event list (events:)")
        if (self.by is None) != (self.values is None):
            raise ValueError("'by' and 'values' go together: by a field, one measure per value")
        if self.table is not None and self.by is None:
            raise ValueError("'table' classifies the 'by' field: give 'by' and 'values'")
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError("'values' names a value twice")
        if self.values is not None and OTHER in self.values:
            raise ValueError(f"{OTHER!r} is the bucket of the values not listed; do not list it")
        return self

    def working(self, c: Wording, value: MeasureValue) -> list[Step]:
        """The measure's working on a statement (see :func:`measure_steps`)."""
        return measure_steps(c, value, self)

    @property
    def aggregation(self) -> tuple[str, str]:
        """``(aggregation, its field or what it counts)``."""
        for a in AGGREGATIONS:
            value = getattr(self, a)
            if value is not None:
                return a, value
        raise AssertionError("validated")  # pragma: no cover


def measure_names(measures: Mapping[str, MeasureSpec]) -> dict[str, NameType]:
    """Every formula name the measures make (with ``by``: one per value and ``_other``)."""
    out: dict[str, NameType] = {}
    for name, spec in measures.items():
        out[name] = "number"
        for value in [*(spec.values or ()), OTHER] if spec.values is not None else ():
            out[f"{name}_{value}"] = "number"
    return out


def check_measures(measures: Mapping[str, MeasureSpec], kinds: Mapping[str, TransactionKind],
                   rules: Mapping[str, Any], events: Mapping[str, EventSpec],
                   tables: Mapping[str, Any]) -> list[tuple[str, tuple[str | int, ...]]]:
    """Problems with declared measures: ``(message, path below 'measures')``."""
    problems: list[tuple[str, tuple[str | int, ...]]] = []

    def unknown(what: str, name: str, known: Iterable[str], *at: str | int) -> None:
        known = list(known)
        hint = did_you_mean(name, known)
        problems.append((f"unknown {what} {name!r}" + (f"; {hint}" if hint else
                         f" (declared: {', '.join(known) or 'none'})"), at))

    for mname, spec in measures.items():
        agg, field = spec.aggregation
        if spec.events is not None:
            if spec.events not in events:
                unknown("event list", spec.events, events, mname, "events")
                continue
            fields: dict[str, str] = dict(events[spec.events].fields)
            covered = [f"event list {spec.events!r}"]
        else:
            if not kinds:
                problems.append(("a measure over transactions needs transaction kinds "
                                 "(declare them under 'transactions')", (mname,)))
                continue
            for i, k in enumerate(spec.kinds or ()):
                if k not in kinds:
                    unknown("transaction kind", k, kinds, mname, "kinds", i)
            for i, r in enumerate(spec.rules or ()):
                if r not in rules:
                    unknown("crediting rule", r, rules, mname, "rules", i)
            chosen = [k for k in (spec.kinds or kinds) if k in kinds]
            fields = {}
            for k in chosen:
                for n, t in kind_names(kinds, k).items():
                    fields.setdefault(n, t)
            covered = chosen
            for k in chosen:
                names = kind_names(kinds, k)
                if spec.date not in names:
                    unknown(f"date field of {k}", spec.date, [
                        n for n, t in names.items() if t == "date"], mname, "date")
                elif names[spec.date] != "date":
                    problems.append((f"{spec.date!r} is not a date field of {k}",
                                     (mname, "date")))
        if agg == "count":
            pass
        elif field not in fields:
            unknown(f"field of {' and '.join(covered)}", field, fields, mname, agg)
        elif agg in ("sum", "min", "max") and fields[field] != "number":
            problems.append((f"{agg} of {field!r}, which is not a number field", (mname, agg)))
        if spec.by is not None and spec.by not in fields:
            unknown(f"field of {' and '.join(covered)}", spec.by, fields, mname, "by")
        if spec.table is not None and spec.table not in tables:
            unknown("table", spec.table, tables, mname, "table")
    return problems


# ---------------------------------------------------------------- evaluation


class CreditIndex:
    """A run's credits by payee, each payee's in date order, for each date field in use.

    A credit whose transaction lacks an optional date field is in no period for
    that field (an invoice not yet paid counts nowhere by its payment date).
    """

    def __init__(self, credits: Sequence[Credit], date_fields: Iterable[str]) -> None:
        #: by date field, each payee's credits in date order
        self.by_field: dict[str, dict[str, list[Credit]]] = {}
        for name in sorted(set(date_fields)):
            if name == "date":
                ordered = credits if _in_date_order(credits) else sorted(
                    credits, key=_TRANSACTION_ORDER)
            else:
                ordered = sorted((c for c in credits
                                  if isinstance(c.transaction.fields.get(name), dt.date)),
                                 key=lambda c: (c.transaction.fields[name], c.transaction.kind,
                                                c.transaction.id))
            # each payee's credits in the order met: date order (one pass, no sort)
            table: dict[str, list[Credit]] = {}
            get = table.get
            for c in ordered:
                found = get(c.payee)
                if found is None:
                    table[c.payee] = [c]
                else:
                    found.append(c)
            self.by_field[name] = table
        self._days = {name: (_DATE if name == "date" else _field_day(name))
                      for name in self.by_field}

    def between(self, field: str, payee: str, start: dt.date, end: dt.date) -> list[Credit]:
        """``payee``'s credits whose ``field`` falls from ``start`` to ``end`` (inclusive)."""
        credits = self.by_field.get(field, {}).get(payee)
        if not credits:
            return []
        day = self._days[field]
        return credits[bisect.bisect_left(credits, start, key=day):
                       bisect.bisect_right(credits, end, key=day)]

    def payees(self, field: str = "date") -> dict[str, list[Credit]]:
        """Each payee's credits by ``field``, in date order."""
        return self.by_field.get(field, {})


_TRANSACTION_ORDER = operator.attrgetter("transaction.date", "transaction.kind", "transaction.id")
_DATE = operator.attrgetter("transaction.date")


def _field_day(name: str) -> Callable[[Credit], Any]:
    def day(c: Credit) -> Any:
        return c.transaction.fields[name]
    return day


def _in_date_order(credits: Sequence[Credit]) -> bool:
    """Whether ``credits`` are in date order of their transactions (crediting makes them
    in (date, kind, id) order)."""
    days = list(map(_DATE, credits))
    return all(map(operator.le, days, days[1:]))


class _Measure:
    """One measure, compiled."""

    def __init__(self, name: str, spec: MeasureSpec, where: Formula | None,
                 table: Mapping[str, str] | None, base: Mapping[str, Any]) -> None:
        self.name = name
        self.spec = spec
        self.kinds = frozenset(spec.kinds) if spec.kinds is not None else None
        self.rules = frozenset(spec.rules) if spec.rules is not None else None
        self.where = where
        self.table = table
        self.base = base
        self.agg, self.field = spec.aggregation
        self.values = frozenset(spec.values or ())

    def chooses(self, c: Credit) -> bool:
        t = c.transaction
        if self.kinds is not None and t.kind not in self.kinds:
            return False
        if self.rules is not None and c.rule not in self.rules:
            return False
        if self.where is not None:
            env = {**self.base, **t.fields, "kind": t.kind, "rule": c.rule, "share": c.share}
            missing = self.where.names - env.keys()
            if missing:
                return False  # an optional field the transaction does not have: not counted
            try:
                return bool(self.where(env))
            except (*RUNTIME_ERRORS, IncentivesError) as exc:
                # never a silent drop: the payee's measures cannot be worked out
                raise TransactionError(
                    f"measure {self.name!r}: where {self.where.source!r} fails on it "
                    f"({describe_exception(exc)})", kind=t.kind, id=t.id,
                    payee=c.payee) from None
        return True

    def contribution(self, c: Credit) -> Decimal:
        if self.agg in ("sum", "min", "max"):
            value = c.transaction.fields[self.field]
            return value if c.share == 1 else CONTEXT.multiply(value, c.share)
        return whole(1)

    def bucket(self, fields: Mapping[str, Any]) -> str:
        value = fields.get(self.spec.by or "")
        if self.table is not None:
            value = self.table.get(str(value)) if value is not None else None
        text = str(value) if value is not None else None
        return text if text is not None and text in self.values else OTHER

    def aggregate(self, credits: Iterable[Credit]) -> list[MeasureValue]:
        items: list[tuple[Credit, Decimal]] = []
        if self.agg in ("sum", "min", "max") and self.field == "amount":
            # a credit's amount is the transaction's amount times its share already
            kinds, rules = self.kinds, self.rules
            if self.where is None and kinds is None:
                items = [(c, c.amount) for c in credits if rules is None or c.rule in rules]
            elif self.where is None and kinds is not None:
                items = [(c, c.amount) for c in credits if c.transaction.kind in kinds
                         and (rules is None or c.rule in rules)]
            else:
                items = [(c, c.amount) for c in credits if self.chooses(c)]
        elif self.agg in ("sum", "min", "max"):
            items = [(c, self.contribution(c)) for c in credits if self.chooses(c)]
        elif self.agg == "count":
            seen: set[Any] = set()
            for c in credits:
                if self.chooses(c):
                    key = c.transaction.key if self.field == "transactions" else c
                    items.append((c, ZERO if key in seen else whole(1)))
                    seen.add(key)
        else:  # distinct
            values: set[Any] = set()
            for c in credits:
                if self.chooses(c):
                    v = c.transaction.fields.get(self.field)
                    items.append((c, ZERO if v is None or v in values else whole(1)))
                    if v is not None:
                        values.add(v)
        out = [MeasureValue(self.name, self._value(items), items)]
        if self.spec.by is not None:
            buckets: dict[str, list[tuple[Credit, Decimal]]] = {
                v: [] for v in [*(self.spec.values or ()), OTHER]}
            for c, x in items:
                buckets[self.bucket(c.transaction.fields)].append((c, x))
            for v, part in buckets.items():
                out.append(MeasureValue(f"{self.name}_{v}", self._value(part), part))
        return out

    def _value(self, items: Sequence[tuple[Any, Decimal]]) -> Decimal:
        if not items:
            return ZERO
        if self.agg == "min":
            return min(x for _, x in items)
        if self.agg == "max":
            return max(x for _, x in items)
        return sum([x for _, x in items], ZERO)  # in the plans' context (CONTEXT)

    def over_events(self, events: Sequence[Mapping[str, Any]]) -> list[MeasureValue]:
        chosen: list[tuple[dict[str, Any], Decimal]] = []
        seen: set[Any] = set()
        for i, e in enumerate(events):
            if self.where is not None:
                env = {**self.base, **e}
                if self.where.names - env.keys():
                    continue  # an optional field the event does not have: not counted
                try:
                    if not self.where(env):
                        continue
                except (*RUNTIME_ERRORS, IncentivesError) as exc:
                    raise TransactionError(
                        f"measure {self.name!r}: where {self.where.source!r} fails on it "
                        f"({describe_exception(exc)})", kind=self.spec.events,
                        id=str(e.get("id", i + 1))) from None
            if self.agg in ("sum", "min", "max"):
                chosen.append((dict(e), e[self.field]))
            elif self.agg == "count":
                chosen.append((dict(e), whole(1)))
            else:
                v = e.get(self.field)
                chosen.append((dict(e), ZERO if v is None or v in seen else whole(1)))
                if v is not None:
                    seen.add(v)
        out = [MeasureValue(self.name, self._value(chosen), events=chosen)]
        if self.spec.by is not None:
            buckets: dict[str, list[tuple[dict[str, Any], Decimal]]] = {
                v: [] for v in [*(self.spec.values or ()), OTHER]}
            for e, x in chosen:
                buckets[self.bucket(e)].append((e, x))
            for v, part in buckets.items():
                out.append(MeasureValue(f"{self.name}_{v}", self._value(part), events=part))
        return out


class CompiledMeasures:
    """A plan's measures, ready to fill in each payee's environment."""

    def __init__(self, measures: Mapping[str, MeasureSpec], ctx: CompileContext,
                 kinds: Mapping[str, TransactionKind], tables: Mapping[str, Mapping[str, str]],
                 parameters: Mapping[str, Any]) -> None:
        self.measures: list[_Measure] = []
        for name, spec in measures.items():
            where = None
            if spec.where is not None:
                if spec.events is not None:
                    extra: dict[str, NameType] = dict(ctx.event_fields(spec.events, name,
                                                                       "events"))
                else:
                    extra = {"kind": "text", "rule": "text", "share": "number"}
                    for k in spec.kinds or kinds:
                        for n, t in kind_names(kinds, k).items():
                            extra.setdefault(n, t)
                where = ctx.formula(spec.where, name, "where", expect=None, extra=extra)
            table = tables.get(spec.table) if spec.table is not None else None
            self.measures.append(_Measure(name, spec, where, table, parameters))
        self.date_fields = sorted({m.spec.date for m in self.measures if m.spec.events is None})

    def needed_fields(self, kinds: Mapping[str, TransactionKind]) -> dict[str, set[str]]:
        """By kind, the fields a transaction must have for the measures to read it: a
        ``sum``, ``min`` or ``max`` of a field the kind may lack (``quantity``). A
        transaction without one is reported, never read as zero."""
        out: dict[str, set[str]] = {}
        for m in self.measures:
            if m.spec.events is not None or m.agg not in ("sum", "min", "max"):
                continue
            for k in m.spec.kinds or kinds:
                if (m.field in BUILTIN_FIELDS and m.field not in ("id", "date", "amount")) \
                        or m.field in kinds[k].optional:
                    out.setdefault(k, set()).add(m.field)
        return out

    @classmethod
    def empty(cls) -> CompiledMeasures:
        """No measures (a plan that credits transactions only for its policies to read)."""
        out = cls.__new__(cls)
        out.measures = []
        out.date_fields = []
        return out

    def with_tables(self, tables: Mapping[str, Mapping[str, str]]) -> CompiledMeasures:
        """A copy whose classification tables are ``tables`` where they name one."""
        out = CompiledMeasures.__new__(CompiledMeasures)
        out.date_fields = self.date_fields
        out.measures = []
        for m in self.measures:
            table = tables.get(m.spec.table, m.table) if m.spec.table is not None else None
            out.measures.append(_Measure(m.name, m.spec, m.where, table, m.base))
        return out

    def fill(self, states: Iterable[PayeeState], pctx: PeriodContext,
             index: CreditIndex | None) -> None:
        """Work out every measure of each payee in ``pctx``'s period: into ``s.measures``
        and, by name, into the environment formulas read."""
        with decimal.localcontext(CONTEXT):
            self._fill(states, pctx, index)

    def _fill(self, states: Iterable[PayeeState], pctx: PeriodContext,
              index: CreditIndex | None) -> None:
        start, end = pctx.start, pctx.end
        for s in states:
            try:
                self._fill_one(s, start, end, index)
            except TransactionError as exc:
                s.error = TransactionError(exc.message, kind=exc.kind, id=exc.id,
                                           payee=s.payee, period=pctx.period, field=exc.field)

    def _fill_one(self, s: PayeeState, start: dt.date, end: dt.date,
                  index: CreditIndex | None) -> None:
        found: dict[str, MeasureValue] = {}
        by_field: dict[str, list[Credit]] = {}
        for m in self.measures:
            if m.spec.events is not None:
                values = m.over_events(s.record.events.get(m.spec.events, ()))
            else:
                credits = by_field.get(m.spec.date)
                if credits is None:
                    credits = by_field[m.spec.date] = (
                        index.between(m.spec.date, s.payee, start, end)
                        if index is not None else [])
                values = m.aggregate(credits)
            for v in values:
                found[v.name] = v
                s.env[v.name] = v.value
        s.measures = found


# --- statement


def measure_steps(c: Wording, value: MeasureValue, spec: MeasureSpec | None) -> list[Step]:
    """The working of a measure on a statement: each transaction (or event) behind it, with
    its share, its rule and its contribution, then the value."""
    f = c.fmt
    steps: list[Step] = []
    agg, field = spec.aggregation if spec is not None else ("sum", "amount")
    if agg == "sum":
        steps.append(Step(c.t("sum of {field} x share", field=c.name(field))))
    elif agg == "count":
        steps.append(Step(c.t("count of {what}", what=c.t(field))))
    elif agg == "distinct":
        steps.append(Step(c.t("distinct values of {field}", field=c.name(field))))
    else:
        steps.append(Step(c.t("{agg} of {field} x share", agg=c.t(agg), field=c.name(field))))
    shown: list[str] = []
    for credit, x in value.items:
        t = credit.transaction
        head = f"{t.kind} {t.id} {t.date.isoformat()}"
        rule = c.t("by {rule}", rule=c.name(credit.rule))
        if credit.via:
            rule += ", " + c.t("through {payees}", payees=", ".join(credit.via))
        if agg in ("sum", "min", "max"):
            base = t.fields[field]
            expr = f"{f.money(base)} x {f.num(credit.share)}" if credit.share != 1 else None
            steps.append(Step(f"{head} ({rule})", expr, f.money(x)))
        elif agg == "count":
            steps.append(Step(f"{head} ({rule})", None, f.num(x)))
        else:
            steps.append(Step(f"{head} ({rule})", c.name(field) + " " + str(t.fields.get(field)),
                              f.num(x)))
        shown.append(f.money(x) if agg == "sum" else f.num(x))
    for event, x in value.events:
        label = str(event.get("id", "")) or c.t("event")
        steps.append(Step(label, None, f.money(x) if agg in ("sum", "min", "max") else f.num(x)))
        shown.append(f.money(x) if agg == "sum" else f.num(x))
    total = f.money(value.value) if agg in ("sum", "min", "max") else f.num(value.value)
    if not shown:
        steps.append(Step(c.name(value.name), c.t("nothing counts"), total))
    elif agg in ("sum", "count", "distinct"):
        steps.append(Step(c.name(value.name), signed_sum(shown), total))
    else:
        steps.append(Step(c.name(value.name), f"{c.t(agg)}({', '.join(shown)})", total))
    return steps
