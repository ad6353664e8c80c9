"""Per-transaction pay: commission on each credited transaction of a measure.

The policy reads a measure's credits (``s.measures[measure]``: each credit of a
transaction to the payee, and its credited value under the measure) and pays
each one:

- at a flat ``rate``;
- by ``tiers`` (the tier table of ``tiered``, with its ``method``), each
  transaction on its own (``running: none``) or *running*: in (date, kind, id)
  order each credit earns ``f(cumulative after) - f(cumulative before)`` over
  the period's (``running: period``) or the calendar year's (``running: year``,
  carried in the ledger) credited value, so earlier periods are never re-rated
  and a refund reverses at the rate at the top of the cumulative;
- at a rate per value of a transaction field (``rates_by: product``, ``rates:``,
  optionally through a classification ``table`` such as SKU -> category, and a
  ``default_rate`` for the other values; without one, such a transaction is an
  error that names it).

With ``running: none`` a credit of a negative transaction (a credit note) that
refers to a transaction credited to the same payee earns at the rate that
transaction earned (``v x f(ref) / ref``), else ``-f(-v)``.

The line is the exact sum of the credits' earnings, rounded once. With
``payable: on_payment`` what is earned is kept per transaction in the ledger and
paid as the customer pays it (``payments:``, the kind whose ``refers_to`` pays
the transaction): each period pays ``round(earned x min(1, paid / amount))``
less what was paid before, for payments dated up to the period's end. A
write-off (``write_offs:``) dated in or before the period closes the
transaction: ``forgive`` drops what is held and keeps what was paid,
``claw_back`` takes back what was paid too.

Ledger entry (under the policy id)::

    {"year": "2026", "cumulative": "60000",                     # running: year
     "transactions": {"invoices/inv-1": {"earned": "500", "amount": "10000",
                                         "paid": "300.00"}}}      # on_payment
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BeforeValidator, Field, model_validator

from ..errors import TransactionError, did_you_mean
from ..money import ZERO, amount_of, money_text
from ..periods import parse_period
from ..runtime import Credit, Line, PayeeState, Transaction, TransactionBook
from ..wording import N_, Step, Wording, dec, needs_rounding, signed_sum
from .base import CompileContext, Compiled, Identifier, Label, PolicyBase, StrictModel, explains
from .tiers import Method, Tier, TierTable, check_tiers

__all__ = ["PerTransaction", "PerTransactionCapture", "TransactionTier"]

ONE = Decimal(1)
_VALUE = itemgetter(1)


def key_text(value: Any) -> str:
    """A field value (or a key of ``rates:`` / ``table:``) as the text it is looked up by:
    numbers without trailing zeros (``100``, ``1.5``), ``true``/``false``, ISO dates.

    >>> key_text(Decimal("100.0")), key_text(True), key_text("ipvpn"), key_text(2)
    ('100', 'true', 'ipvpn', '2')
    """
    if value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        d = Decimal(str(value)).normalize()
        return format(d, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _text_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key_text(k): v for k, v in value.items()}
    return value


def _text_values(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key_text(k): key_text(v) for k, v in value.items()}
    return value


class TransactionTier(StrictModel):
    """One tier of a per-transaction table: where it starts (``from:``) or where it ends
    (``up_to:``; the first starts at 0, the last has none), and its rate or amount."""

    #: where the tier starts (as in `tiered`)
    start: Decimal | None = Field(default=None, alias="from")
    #: where the tier ends (the next tier starts there); every tier but the last has one
    up_to: Decimal | None = None
    #: the rate of this tier
    rate: Decimal | None = None
    #: the amount of this tier (step, interpolated)
    amount: Decimal | None = None
    #: a name for the tier, shown on statements
    label: Label | None = None


class PerTransaction(PolicyBase):
    """Commission on each credited transaction of a measure: a flat rate, tiers (each
    transaction on its own, or running over the period or year), or a rate by a field."""

    type: Literal["per_transaction"] = "per_transaction"
    #: the measure whose credits are paid (each with its credited value)
    measure: Identifier
    #: a flat rate on each credit's value
    rate: Decimal | None = None
    #: a tier table (`from:` as in `tiered`, or `up_to:`)
    tiers: list[TransactionTier] | None = Field(default=None, min_length=1)
    #: how the tiers turn a value into an amount (as in `tiered`); required with tiers
    method: Method | None = None
    #: where a value exactly on a threshold belongs (retroactive and step tiers)
    on_threshold: Literal["above", "below"] | None = None
    #: none: each transaction on its own; period or year: each earns f(after) - f(before)
    #: of the cumulative credited value of the period or calendar year
    running: Literal["none", "period", "year"] = "none"
    #: a rate per value of this transaction field
    rates_by: Identifier | None = None
    #: a classification table the field's value is looked up in first (its name, or the
    #: table itself as key: value)
    table: Annotated[Identifier | dict[str, str] | None,
                     BeforeValidator(_text_values)] = None
    #: the rate of each value (or category) of `rates_by`
    rates: Annotated[dict[str, Decimal] | None, BeforeValidator(_text_keys)] = None
    #: the rate of a value `rates` does not list (none: such a transaction is an error)
    default_rate: Decimal | None = None
    #: when_earned: paid when the transaction counts; on_payment: as the customer pays it
    payable: Literal["when_earned", "on_payment"] = "when_earned"
    #: on_payment: the transaction kind whose refers_to pays a transaction
    payments: Identifier | None = None
    #: on_payment: a transaction kind whose refers_to writes a transaction off
    write_offs: Identifier | None = None
    #: forgive: what is held is dropped, what was paid is kept; claw_back: what was paid is
    #: taken back too
    write_off: Literal["forgive", "claw_back"] = "forgive"

    @model_validator(mode="after")
    def _check(self) -> PerTransaction:
        given = [k for k in ("rate", "tiers", "rates_by") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give one of 'rate', 'tiers' or 'rates_by' (with 'rates')"
                             + (f", not {' and '.join(map(repr, given))}" if given else ""))
        if self.tiers is not None:
            if self.method is None:
                raise ValueError("tiers need a 'method' (marginal, retroactive, step or "
                                 "interpolated): it is stated, never guessed")
            check_tiers(self.method, self.tier_list(), self.on_threshold)
        else:
            for k in ("method", "on_threshold"):
                if getattr(self, k) is not None:
                    raise ValueError(f"{k!r} is only for 'tiers'")
        if self.rates_by is not None:
            if not self.rates:
                raise ValueError("'rates_by' needs 'rates' (the rate of each value)")
            if self.running != "none":
                raise ValueError("'running' is for 'tiers' or a 'rate', not 'rates_by'")
        else:
            for k in ("rates", "default_rate", "table"):
                if getattr(self, k) is not None:
                    raise ValueError(f"{k!r} is only for 'rates_by'")
        for what, r in [("rate", self.rate), ("default_rate", self.default_rate),
                        *((f"rates.{k}", v) for k, v in (self.rates or {}).items())]:
            if r is not None and r < 0:
                raise ValueError(f"{what} {r} is negative")
        if self.payable == "on_payment":
            if self.payments is None:
                raise ValueError("'payable: on_payment' needs 'payments' (the kind that pays "
                                 "a transaction)")
        else:
            for k in ("payments", "write_offs"):
                if getattr(self, k) is not None:
                    raise ValueError(f"{k!r} is only for 'payable: on_payment'")
            if "write_off" in self.model_fields_set:
                raise ValueError("'write_off' is only for 'payable: on_payment'")
        return self

    def tier_list(self) -> list[Tier]:
        """The tiers as `tiered` writes them (each with where it starts)."""
        tiers = self.tiers or []
        if not any(t.up_to is not None for t in tiers):
            missing = [i for i, t in enumerate(tiers) if t.start is None]
            if missing:
                raise ValueError(f"tier {missing[0]}: give 'from' (where it starts) or "
                                 "'up_to' (where it ends) on the tiers")
            return [Tier(start=t.start, rate=t.rate, amount=t.amount, label=t.label)
                    for t in tiers]
        out = []
        lo = ZERO
        for i, t in enumerate(tiers):
            if t.start is not None:
                raise ValueError(f"tier {i}: write the tiers with 'up_to' or with 'from', "
                                 "not both")
            if t.up_to is None and i + 1 < len(tiers):
                raise ValueError(f"tier {i}: every tier but the last needs 'up_to'")
            if t.up_to is not None and i + 1 == len(tiers):
                raise ValueError(f"tier {i}: the last tier has no 'up_to' (it has no ceiling)")
            out.append(Tier(start=lo, rate=t.rate, amount=t.amount, label=t.label))
            if t.up_to is not None:
                lo = t.up_to
        return out

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledPerTransaction(self, ctx)


class PerTransactionCapture(NamedTuple):
    """What a per-transaction line is explained from (captured when it is made)."""

    #: the measure's ``(credit, value)`` items, as the measure gave them
    items: Sequence[tuple[Credit, Decimal]]
    #: the cumulative before the period's first credit (running), else None
    start: Decimal | None
    #: the run's transactions (credit notes' references), or None
    book: TransactionBook | None
    #: the payee
    payee: str
    #: the year the cumulative runs over (running: year), else None
    year: int | None
    #: on_payment: each transaction settled this period (:class:`Settled`), else None
    settled: tuple[Settled, ...] | None
    #: on_payment: the rounding carried in from earlier periods (what was due exactly
    #: but not yet paid in whole cents, or paid ahead)
    carry: Decimal = ZERO


class Settled(NamedTuple):
    """One transaction's commission under ``payable: on_payment`` in one period."""

    #: ``kind/id``
    key: str
    #: the transaction (None when the run does not hold it)
    transaction: Transaction | None
    #: earned on it, in all (exact)
    earned: Decimal
    #: its amount (less its credit notes), what its payments are measured against
    amount: Decimal
    #: what its payments dated up to the period's end add up to
    customer_paid: Decimal
    #: commission paid on it in earlier periods
    paid_before: Decimal
    #: commission paid on it this period
    paid: Decimal
    #: "held", "paid", "forgiven" or "clawed_back"
    status: str


class _Row(NamedTuple):
    credit: Credit
    value: Decimal
    earned: Decimal
    rate: Decimal | None
    #: the category (rates_by with a table) or the field's value (rates_by)
    category: str | None
    #: the referenced transaction whose rate a credit note earned at, and its value
    ref: Transaction | None
    ref_value: Decimal | None
    before: Decimal | None


class _Flat:
    """``f(x) = x * rate``: a flat rate as a function of running tiers."""

    __slots__ = ("rate",)

    def __init__(self, rate: Decimal) -> None:
        self.rate = rate

    def __call__(self, value: Decimal) -> Decimal:
        return value * self.rate


class _BelowZero:
    """Running tiers' ``f`` continued below a cumulative of zero at ``rate``."""

    __slots__ = ("f", "rate")

    def __init__(self, f: Callable[[Decimal], Decimal], rate: Decimal) -> None:
        self.f = f
        self.rate = rate

    def __call__(self, value: Decimal) -> Decimal:
        return self.f(value) if value >= 0 else value * self.rate


@lru_cache(maxsize=256)
def _period_dates(period: str) -> tuple[dt.date, dt.date]:
    return parse_period(period)


def _order(item: tuple[Credit, Decimal]) -> tuple[dt.date, str, str, str, str]:
    c = item[0]
    t = c.transaction
    return (t.date, t.kind, t.id, c.rule, str(c.share))


class _CompiledPerTransaction(Compiled):
    line_type = "commission"

    def __init__(self, spec: PerTransaction, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.spec_ = spec
        self.measure = spec.measure
        measures = ctx.measures
        known: Iterable[str]
        if measures is not None:
            known = measures
            ok = spec.measure in measures
        else:  # any number name until the plan says which names are measures
            known = [n for n, t in ctx.names.items() if t == "number"]
            ok = ctx.names.get(spec.measure) == "number"
        if not ok:
            raise ctx.error(f"unknown measure {spec.measure!r}", "measure",
                            suggestion=did_you_mean(spec.measure, known)
                            or "declare it under measures")
        if measures is not None and measures[spec.measure] == "events":
            raise ctx.error(f"measure {spec.measure!r} is made of the records' events, not of "
                            "transactions: per_transaction pays credited transactions",
                            "measure")
        if measures is not None and measures[spec.measure] not in ("transactions", "sum"):
            raise ctx.error(f"measure {spec.measure!r} is a {measures[spec.measure]}: "
                            "per_transaction pays each credit's value, so its measure is a "
                            "sum (of amount, or of quantity...)", "measure")
        kinds = ctx.kinds
        if kinds is not None:
            for key in ("payments", "write_offs"):
                kind = getattr(spec, key)
                if kind is None:
                    continue
                if kind not in kinds:
                    raise ctx.error(f"unknown transaction kind {kind!r}", key,
                                    suggestion=did_you_mean(kind, kinds)
                                    or "declare it under transactions")
                if kinds[kind] is None:
                    raise ctx.error(f"kind {kind!r} refers to no transaction (its "
                                    "'refers_to' is not declared), so it cannot pay or write "
                                    "off one", key)
        self.running = None if spec.running == "none" else spec.running
        self.f: Callable[[Decimal], Decimal] | None = None
        self.table: TierTable | None = None
        self.rate = spec.rate
        if spec.tiers is not None:
            assert spec.method is not None
            self.f = self.table = TierTable(spec.method, spec.tier_list(), spec.on_threshold)
            if self.running is not None:
                # a refund beyond what the period or year has sold so far (a December sale
                # refunded in January) still reverses: below zero at the rate in force at zero
                first = spec.tier_list()[0]
                self.f = _BelowZero(self.table, first.rate if first.rate is not None
                                    and (first.start or ZERO) <= 0 else ZERO)
        elif spec.rate is not None:
            self.f = _Flat(spec.rate)
        self.rates_by = spec.rates_by
        self.rates = dict(spec.rates or {})
        self.default_rate = spec.default_rate
        self.classes: dict[str, str] | None = None
        #: the plan's table this policy classifies by, which a run may replace
        self.table_name = spec.table if isinstance(spec.table, str) else None
        if isinstance(spec.table, dict):
            self.classes = dict(spec.table)
        elif spec.table is not None:
            tables = ctx.tables
            if spec.table not in tables:
                raise ctx.error(f"unknown table {spec.table!r}", "table",
                                suggestion=did_you_mean(spec.table, tables)
                                or "declare it under tables, or write the table here "
                                   "(key: category)")
            self.classes = {key_text(k): key_text(v) for k, v in tables[spec.table].items()}
        self.on_payment = spec.payable == "on_payment"
        self.payments = spec.payments
        self.write_offs = spec.write_offs
        self.claw_back = spec.write_off == "claw_back"
        self._explain = self.details

    # ------------------------------------------------------------------ ledger
    def check_entry(self, entry: Any) -> None:
        """Refuse a malformed ledger entry (see :func:`incentives.ledger.check_entries`)."""
        if not isinstance(entry, dict) or not entry or set(entry) - {
                "year", "cumulative", "transactions", "carry"}:
            raise ValueError('a per-transaction entry has "year" and "cumulative" (running '
                             'year) and/or "transactions" (on payment)')
        if ("year" in entry) != ("cumulative" in entry):
            raise ValueError('"year" and "cumulative" go together')
        if "year" in entry:
            year = entry["year"]
            if not isinstance(year, str) or not (len(year) == 4 and year.isdigit()):
                raise ValueError("the year is four digits, as text")
            amount_of(entry, "cumulative")
        if "carry" in entry:
            amount_of(entry, "carry")
        if "transactions" in entry:
            held = entry["transactions"]
            if not isinstance(held, dict):
                raise ValueError('"transactions" is {"kind/id": {...}}')
            for key, item in held.items():
                kind, sep, tid = key.partition("/")
                if not sep or not kind or not tid:
                    raise ValueError(f"{key!r} is not kind/id")
                if not isinstance(item, dict) or set(item) != {"earned", "amount", "paid"}:
                    raise ValueError(f"{key!r}: needs earned, amount and paid")
                for k in ("earned", "amount", "paid"):
                    amount_of(item, k)

    # ------------------------------------------------------------------ apply
    def apply(self, s: PayeeState) -> None:
        mv = s.measures.get(self.measure)
        items: Sequence[tuple[Credit, Decimal]] = mv.items if mv is not None else ()
        start = None
        year = None
        running = self.running
        if running is not None:
            f = self.f
            assert f is not None
            start = ZERO
            total = sum(map(_VALUE, items), ZERO)
            if running == "year":
                year = _period_dates(s.env.get("period") or s.record.period)[0].year
                entry = s.ledger.get(self.id)
                if entry and entry.get("year") == str(year):
                    start = Decimal(entry["cumulative"])
                self._carry(s, year, start + total)
            # the credits' earnings f(after) - f(before) telescope: their exact sum
            amount = f(start + total) - f(start)
        elif self.rates_by is None and self.table is None:
            assert self.rate is not None
            amount = sum(map(_VALUE, items), ZERO) * self.rate
        elif self.rates_by is None:
            amount = self._each(items, s.book, s.payee)
        else:
            amount = ZERO
            rate_of, payee, period, book = self.rate_of, s.payee, s.record.period, s.book
            for credit, value in items:
                amount += value * rate_of(credit, payee, period, book)[0]
        if self.on_payment:
            before = s.ledger.get(self.id) or {}
            carry = amount_of(before, "carry") if "carry" in before else ZERO
            settled = self._settle(s, items, start)
            exact = sum((x.paid for x in settled), ZERO) + carry
            amount = self.round(exact)
            # what rounding left over is carried: paid in whole cents, to date, is always the
            # exact amount due to date rounded once, never a cent per transaction more
            entry = s.ledger.get(self.id)
            if exact != amount:
                entry = s.ledger[self.id] = {**(entry or {}), "carry": money_text(exact - amount)}
            elif entry is not None and "carry" in entry:
                entry = {k: v for k, v in entry.items() if k != "carry"}
                if entry:
                    s.ledger[self.id] = entry
                else:
                    s.ledger.pop(self.id, None)
            self.line(s, amount, explain=self._explain, captured=PerTransactionCapture(
                items, start, s.book, s.payee, year, settled, carry))
            return
        self.line(s, amount, explain=self._explain, captured=PerTransactionCapture(
            items, start, s.book, s.payee, year, None))

    def _each(self, items: Sequence[tuple[Credit, Decimal]], book: TransactionBook | None,
              payee: str) -> Decimal:
        """Tiers on each credit on its own: what :meth:`rows` adds up, without the rows."""
        f = self.table
        assert f is not None
        amount = ZERO
        negative = False
        for _, value in items:
            if value >= 0:
                amount += f(value)
            else:
                negative = True
        if negative:
            for row in self.rows(items, None, book, payee, ""):
                if row.value < 0:
                    amount += row.earned
        return amount

    def _carry(self, s: PayeeState, year: int, cumulative: Decimal) -> None:
        """Keep the year's cumulative in the ledger (none once it is zero)."""
        entry = dict(s.ledger.get(self.id) or {})
        entry.pop("year", None)
        entry.pop("cumulative", None)
        if cumulative:
            entry["year"] = str(year)
            entry["cumulative"] = money_text(cumulative)
        if entry:
            s.ledger[self.id] = entry
        else:
            s.ledger.pop(self.id, None)

    def rows(self, items: Sequence[tuple[Credit, Decimal]], start: Decimal | None,
             book: TransactionBook | None, payee: str, period: str) -> list[_Row]:
        """Each credit with what it earns, in (date, kind, id) order."""
        ordered = sorted(items, key=_order)
        out: list[_Row] = []
        if self.running is not None:
            f = self.f
            assert f is not None
            assert start is not None
            cum = start
            for credit, value in ordered:
                after = cum + value
                out.append(_Row(credit, value, f(after) - f(cum), None, None, None, None, cum))
                cum = after
            return out
        if self.rates_by is not None:
            for credit, value in ordered:
                rate, category = self.rate_of(credit, payee, period, book)
                out.append(_Row(credit, value, value * rate, rate, category, None, None, None))
            return out
        if self.table is None:
            flat = self.rate
            assert flat is not None
            return [_Row(c, v, v * flat, flat, None, None, None, None) for c, v in ordered]
        f = self.table
        mine: dict[tuple[str, str], Decimal] = {}
        for credit, value in ordered:
            key = credit.transaction.key
            mine[key] = mine.get(key, ZERO) + value
        for credit, value in ordered:
            if value >= 0:
                out.append(_Row(credit, value, f(value), None, None, None, None, None))
                continue
            ref, ref_value = self._reference(credit, value, book, payee, mine)
            if ref is not None and ref_value:
                earned = value * f(ref_value) / ref_value
            else:
                ref = ref_value = None
                earned = -f(-value)
            out.append(_Row(credit, value, earned, None, None, ref, ref_value, None))
        return out

    def _reference(self, credit: Credit, value: Decimal, book: TransactionBook | None,
                   payee: str, mine: Mapping[tuple[str, str], Decimal]
                   ) -> tuple[Transaction | None, Decimal | None]:
        """The transaction a negative credit refers to, and its credited value to the same
        payee: from this period's credits of the measure; else, when the measure's value is
        the credited amount, the referenced amount times the payee's share of it."""
        if book is None or credit.transaction.refers_to is None:
            return None, None
        ref = book.target(credit.transaction)
        if ref is None:
            return None, None
        if ref.key in mine:
            return ref, mine[ref.key]
        if value != credit.amount:  # a measure of another field: its value is not known
            return None, None
        share = dict(ref.sellers).get(payee) if ref.sellers else None
        if share is None:
            share = credit.share
        return ref, ref.amount * share

    def rate_of(self, credit: Credit, payee: str, period: str,
                book: TransactionBook | None = None) -> tuple[Decimal, str | None]:
        """The rate of a credit's transaction by ``rates_by`` (and the value or category it
        was found by), or a :class:`TransactionError` naming the transaction. A transaction
        without the field (a credit note) takes it from the transaction it refers to."""
        t = credit.transaction
        field = self.rates_by
        assert field is not None
        raw = t.fields.get(field)
        if raw is None and book is not None and t.refers_to is not None:
            target = book.target(t)
            if target is not None:
                raw = target.fields.get(field)
        if raw is None:
            found = None
        else:
            found = key_text(raw)
            classes = self.classes
            if book is not None and self.table_name in book.tables:
                classes = book.tables[self.table_name]
            if classes is not None:
                found = classes.get(found)
        rate = self.rates.get(found) if found is not None else None
        if rate is None:
            rate = self.default_rate
            if rate is None:
                if raw is None:
                    why = f"has no {field!r}"
                elif found is None:
                    why = f"{field} {key_text(raw)!r} is not in the table"
                else:
                    why = f"{field} {found!r} has no rate"
                raise TransactionError(
                    f"{why} (policy {self.id!r}: give it a rate, or a default_rate)",
                    kind=t.kind, id=t.id, field=field, payee=payee, period=period)
        return rate, found

    def transaction_problem(self, t: Transaction, book: TransactionBook | None
                            ) -> tuple[str, str] | None:
        """Why this policy could not pay ``t``, found before anything is credited (so the
        transaction is reported and not credited, and the payee's other transactions are
        still paid): ``(field, message)``, or ``None``."""
        if self.rates_by is None or self.default_rate is not None:
            return None
        try:
            self.rate_of(Credit("", t, ONE, "", t.amount), "", "", book)
        except TransactionError as exc:
            return exc.field or self.rates_by, exc.message
        return None

    # ------------------------------------------------------------------ on payment
    def _settle(self, s: PayeeState, items: Sequence[tuple[Credit, Decimal]],
                start: Decimal | None) -> tuple[Settled, ...]:
        """Add this period's earnings to the transactions held, pay what their payments
        make due, close the written-off ones; keep the rest in the ledger."""
        book = s.book
        period = s.record.period
        end = _period_dates(s.env.get("period") or period)[1]
        entry = s.ledger.get(self.id) or {}
        held: dict[str, list[Decimal]] = {
            k: [Decimal(v["earned"]), Decimal(v["amount"]), Decimal(v["paid"])]
            for k, v in (entry.get("transactions") or {}).items()}
        txns: dict[str, Transaction | None] = {}
        counted: set[tuple[str, str]] = set()
        rows = self.rows(items, start, book, s.payee, period)
        later = []
        for row in rows:
            t = row.credit.transaction
            target = book.target(t) if book is not None else None
            if target is not None:
                later.append((row, target))
                continue
            self._hold(held, txns, counted, t, t, row.earned)
        for row, target in later:
            t = row.credit.transaction
            tkey = f"{target.kind}/{target.id}"
            self._hold(held, txns, counted, target if tkey in held else t, t, row.earned)
        out = []
        for key in held:
            if key not in txns:
                kind, _, tid = key.partition("/")
                txns[key] = book.get(kind, tid) if book is not None else None
        for key in sorted(held, key=lambda k: _settle_order(k, txns[k])):
            earned, amount, paid_before = held[key]
            held_txn = txns[key]
            customer_paid = ZERO
            written = False
            if held_txn is not None and book is not None:
                assert self.payments is not None
                for p in book.referring(held_txn, self.payments):
                    if p.date <= end:
                        customer_paid += p.amount
                if self.write_offs is not None:
                    written = any(w.date <= end
                                  for w in book.referring(held_txn, self.write_offs))
            ratio = ONE if amount <= 0 else min(ONE, max(customer_paid, ZERO) / amount)
            due = earned * ratio  # exact: the period's line is rounded once (see apply)
            pay = due - paid_before
            if written:
                if self.claw_back:
                    pay, status = -paid_before, "clawed_back"
                else:
                    status = "forgiven"
            elif ratio == ONE:
                status = "paid"
            else:
                status = "held"
            out.append(Settled(key, held_txn, earned, amount, customer_paid, paid_before, pay,
                               status))
        kept = {x.key: {"earned": money_text(x.earned), "amount": money_text(x.amount),
                        "paid": money_text(x.paid_before + x.paid)}
                for x in out if x.status == "held"}
        new = {k: v for k, v in entry.items() if k != "transactions"}
        if kept:
            new["transactions"] = kept
        if new:
            s.ledger[self.id] = new
        else:
            s.ledger.pop(self.id, None)
        return tuple(out)

    @staticmethod
    def _hold(held: dict[str, list[Decimal]], txns: dict[str, Transaction | None],
              counted: set[tuple[str, str]], into: Transaction, t: Transaction,
              earned: Decimal) -> None:
        """Add what ``t`` earned to the entry of ``into`` (``t`` itself, or the transaction
        it refers to), and ``t``'s amount to it when ``t`` is a new transaction there (a
        credit note lowers what its invoice's payments are measured against)."""
        key = f"{into.kind}/{into.id}"
        txns[key] = into
        found = held.get(key)
        if found is None:
            held[key] = [earned, t.amount, ZERO]
        else:
            found[0] += earned
            if t is not into and t.key not in counted:
                found[1] += t.amount
        counted.add(t.key)

    # ------------------------------------------------------------------ details
    def details(self, captured: Iterable[Any]) -> dict[str, Any]:
        """The line's details from what :meth:`apply` captured."""
        c = PerTransactionCapture._make(captured)
        period = ""
        rows = self.rows(c.items, c.start, c.book, c.payee, period)
        listed = []
        earned = ZERO
        for r in rows:
            t = r.credit.transaction
            d: dict[str, Any] = {"kind": t.kind, "id": t.id, "date": t.date,
                                 "share": r.credit.share, "rule": r.credit.rule,
                                 "value": r.value, "earned": r.earned}
            if r.rate is not None:
                d["rate"] = r.rate
            if r.category is not None:
                d[self.rates_by or "category"] = r.category
            if r.ref is not None and r.ref_value is not None and self.table is not None:
                d["rate_of"] = {"kind": r.ref.kind, "id": r.ref.id, "value": r.ref_value,
                                "earned": self.table(r.ref_value)}
            if r.before is not None and self.f is not None:
                after = r.before + r.value
                d["cumulative_before"] = r.before
                d["cumulative_after"] = after
                d["tiers_before"] = self.f(r.before)
                d["tiers_after"] = self.f(after)
            listed.append(d)
            earned += r.earned
        spec = self.spec_
        out: dict[str, Any] = {"measure": self.measure, "running": spec.running}
        if self.rates_by is not None:
            out["rates_by"] = self.rates_by
            if isinstance(spec.table, str):
                out["table"] = spec.table
        elif self.table is not None:
            out["method"] = self.table.method
        else:
            out["rate"] = self.rate
        if c.year is not None:
            out["year"] = c.year
        if c.start is not None:
            out["cumulative_start"] = c.start
            out["cumulative_end"] = c.start + sum((r.value for r in rows), ZERO)
        out["transactions"] = listed
        out["earned"] = earned
        if c.settled is not None:
            out["payable"] = "on_payment"
            pays = []
            held = ZERO
            for x in c.settled:
                kind, _, tid = x.key.partition("/")
                after = x.paid_before + x.paid
                keeps = x.earned - after if x.status == "held" else ZERO
                held += keeps
                pays.append({"kind": kind, "id": tid,
                             "date": x.transaction.date if x.transaction is not None else None,
                             "earned": x.earned, "amount": x.amount,
                             "customer_paid": x.customer_paid, "paid_before": x.paid_before,
                             "paid": x.paid, "paid_to_date": after, "held": keeps,
                             "status": x.status})
            out["settled"] = pays
            out["paid"] = sum((x.paid for x in c.settled), ZERO)
            out["held"] = held
            if c.carry:
                out["carried_in"] = c.carry
        return out


def _settle_order(key: str, t: Transaction | None) -> tuple[dt.date, str]:
    return (t.date if t is not None else dt.date.min, key)


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a per-transaction line's details: a measure, how it runs and the
    transactions behind it."""
    return {"measure", "running", "transactions", "earned"} <= set(d)


#: what a line with no credit says (the phrases, for the catalogues)
_NOTHING = (N_("nothing earned this period"), N_("no credited transactions"))

_STATUS = {
    "forgiven": N_("{kind} {id} written off, {held} forgiven"),
    "clawed_back": N_("{kind} {id} written off, commission paid taken back"),
}


@explains(PerTransaction, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: PerTransaction | None) -> list[Step]:
    """A row per transaction (its value, rate or cumulative, and what it earned), their sum;
    on payment, a row per transaction held or paid, and what is held for later."""
    d, f = line.details, c.fmt
    steps: list[Step] = []
    parts = []
    for row in d.get("transactions", []):
        earned = f.money(row.get("earned"))
        parts.append(earned)
        what = c.t("{kind} {id} of {date}, share {share}", kind=row.get("kind"),
                   id=row.get("id"), date=str(row.get("date")), share=f.num(row.get("share")))
        value = f.num(row.get("value"))
        if "cumulative_before" in row:
            before, after = row["cumulative_before"], row["cumulative_after"]
            what += ", " + c.t("cumulative {before} to {after}", before=f.num(before),
                               after=f.num(after))
            steps.append(Step(what, f"{f.money(row.get('tiers_after'))} - "
                                    f"{f.money(row.get('tiers_before'))}", earned))
        elif "rate" in row:
            steps.append(Step(what, f"{value} x {f.num(row['rate'])}", earned))
        elif isinstance(row.get("rate_of"), Mapping):
            ref = row["rate_of"]
            what += ", " + c.t("at the rate of {kind} {id}", kind=ref.get("kind"),
                               id=ref.get("id"))
            steps.append(Step(what, f"{value} x {f.money(ref.get('earned'))} / "
                                    f"{f.num(ref.get('value'))}", earned))
        else:
            what += ", " + c.t("tiers on {value}", value=value)
            steps.append(Step(what, None, earned))
    settled = d.get("settled")
    if not parts:
        nothing = ("nothing earned this period" if isinstance(settled, list)
                   else "no credited transactions")
        steps.append(Step(c.t(nothing), None, f.money(ZERO)))
    earned_total = f.money(d.get("earned"))
    if len(parts) > 1:
        steps.append(Step(c.t("earned"), signed_sum(parts), earned_total))
    if isinstance(settled, list):
        pays = []
        for x in settled:
            paid = f.money(x.get("paid"))
            pays.append(paid)
            status = str(x.get("status"))
            if status in _STATUS:
                what = c.t(_STATUS[status], kind=x.get("kind"), id=x.get("id"),
                           held=f.money((dec(x.get("earned")) or ZERO)
                                        - (dec(x.get("paid_to_date")) or ZERO)))
                expr = (f"0 - {f.money(x.get('paid_before'))}" if status == "clawed_back"
                        else None)
                steps.append(Step(what, expr, paid))
                continue
            what = c.t("{kind} {id} paid {paid} of {amount}", kind=x.get("kind"),
                       id=x.get("id"), paid=f.num(x.get("customer_paid")),
                       amount=f.num(x.get("amount")))
            customer, amount = dec(x.get("customer_paid")) or ZERO, dec(x.get("amount")) or ZERO
            before = f.money(x.get("paid_before"))
            if amount <= 0 or customer >= amount:
                expr = f"{f.money(x.get('earned'))} - {before}"
            else:
                expr = (f"{f.money(x.get('earned'))} x {f.num(max(customer, ZERO))} / "
                        f"{f.num(amount)} - {before}")
            steps.append(Step(what, expr, paid))
        steps.append(Step(c.t("held for later payments"), None, f.money(d.get("held"))))
        carried = dec(d.get("carried_in")) or ZERO
        if carried:
            pays.append(f.money(carried))
            steps.append(Step(c.t("rounding carried from earlier periods"), None,
                              f.money(carried)))
        exact = (dec(d.get("paid")) or ZERO) + carried
        steps.append(Step(c.t("paid this period"), signed_sum(pays) if pays else None,
                          f.money(exact)))
        if exact != line.amount:
            steps.append(Step(c.t("rounding carried to later periods"), None,
                              f.money(exact - line.amount)))
            steps.append(Step(c.t("amount"), None, f.money(line.amount)))
        return steps
    if needs_rounding(steps, f.money(line.amount)):
        steps.append(Step(c.t("amount"), None, f.money(line.amount)))
    return steps
