"""What a policy sees and writes while a period is evaluated.

A :class:`PayeeState` is one payee in one period during evaluation: the
checked record, the *environment* of named values that formulas read
(inputs, parameters, earlier results, the running ``total``), and the lines,
titles and flags made so far. A :class:`PeriodContext` holds what is shared
by the whole period (its dates, its parameter values).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from .money import CONTEXT, ZERO

__all__ = ["MONEY_DETAILS", "Credit", "Explained", "Line", "MeasureValue", "PayeeState", "PeriodContext",
           "Record", "Transaction", "TransactionBook", "json_default", "jsonable",
           "money_details", "money_places", "money_text", "paused_gc", "plain_json"]

#: Keys of a line's details whose Decimal values are money (at any depth: a tier
#: slice's ``amount``, a lost customer's ``amount``...). They are written to the
#: places of the line's amount (the plan's quantum): ``632.00``, not ``632.000``
#: beside ``180``; a value with more digits than that keeps every digit. Other
#: values (bases, thresholds, rates, quantities, per-unit rates, weights, scores,
#: factors, counts) are shown exactly as they are.
MONEY_DETAILS = frozenset({
    "above_cap", "add", "after", "amount", "base", "before", "cap", "carried_forward",
    "carried_in", "clawed_back", "closing_balance", "deferred", "earned", "exact",
    "exact_share", "floor", "forgiven", "full_amount", "held", "limit", "mean", "mean_share",
    "of", "opening_balance", "paid", "pool", "pooled", "recovery", "recovery_limit",
    "released", "target_bonus", "top_up", "uncapped",
})
#: details whose every Decimal value is money (a combination's children, a tie's prizes)
_ALL_MONEY = frozenset({"children", "prizes"})
#: keys that are money only inside these details (a spread's smallest and largest pay)
_MONEY_INSIDE = {"spread_before": frozenset({"min", "max"}),
                 "spread_after": frozenset({"min", "max"}),
                 "bounds": frozenset({"min", "max"})}
_NO_KEYS: frozenset[str] = frozenset()


def _money_at(value: Decimal, places: Decimal) -> Decimal:
    """``value`` written to ``places`` when it is exact there, else with every digit."""
    try:
        shown = value.quantize(places, context=CONTEXT)
    except decimal.DecimalException:
        return value
    return shown if shown == value else value


def money_details(details: Mapping[str, Any], amount: Decimal) -> dict[str, Any]:
    """``details`` with money values (:data:`MONEY_DETAILS`) written to ``amount``'s places.

    >>> money_details({"cap": Decimal("632.000"), "rate": Decimal("0.40"),
    ...                "slices": [{"amount": Decimal("180"), "to": Decimal("30000")}]},
    ...               Decimal("-632.00"))
    {'cap': Decimal('632.00'), 'rate': Decimal('0.40'), 'slices': [{'amount': Decimal('180.00'), 'to': Decimal('30000')}]}
    """
    exp = amount.as_tuple().exponent if amount.is_finite() else 0
    places = Decimal(1).scaleb(min(exp, 0)) if isinstance(exp, int) else Decimal(1)
    return _money_walk(details, places, _NO_KEYS)  # type: ignore[no-any-return]


def _money_walk(value: Any, places: Decimal, extra: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_money_walk(v, places, extra) if isinstance(v, (Mapping, list)) else v
                for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {}
    for k, v in value.items():
        c = v.__class__
        if c is Decimal:
            out[k] = _money_at(v, places) if k in MONEY_DETAILS or k in extra else v
        elif c is str or c is int or c is bool or v is None:
            out[k] = v
        elif k in _ALL_MONEY:
            out[k] = _all_money(v, places)
        elif isinstance(v, (Mapping, list)):
            out[k] = _money_walk(v, places, _MONEY_INSIDE.get(k, _NO_KEYS)
                                 if isinstance(k, str) else _NO_KEYS)
        else:
            out[k] = v
    return out


def _all_money(value: Any, places: Decimal) -> Any:
    if isinstance(value, Decimal):
        return _money_at(value, places)
    if isinstance(value, Mapping):
        return {k: _all_money(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [_all_money(v, places) for v in value]
    return value


def money_places(amount: Decimal) -> Decimal:
    """The places money values of a line's details are written to: its amount's
    (``0.01`` for ``632.00``; ``1`` for a whole or infinite amount).

    >>> money_places(Decimal("632.00")), money_places(Decimal("-5")), money_places(Decimal("1E+2"))
    (Decimal('0.01'), Decimal('1'), Decimal('1'))
    """
    text = str(amount)  # cheaper than as_tuple(), which makes a named tuple
    if "E" in text or "e" in text:
        exp = amount.as_tuple().exponent if amount.is_finite() else 0
        key = min(exp, 0) if isinstance(exp, int) else 0
    else:
        dot = text.find(".")
        key = dot + 1 - len(text) if dot >= 0 else 0
    places = _PLACES.get(key)
    if places is None:
        places = _PLACES[key] = Decimal(1).scaleb(key, CONTEXT)
    return places


_PLACES: dict[int, Decimal] = {}


def money_text(value: Any, places: Decimal) -> Any:
    """A money value of a line's details as JSON data: what :func:`money_details` then
    :func:`jsonable` make of it (a Decimal at ``places`` when it is exact there, else
    with every digit, as text; anything else as :func:`plain_json` writes it).

    >>> money_text(Decimal("180"), Decimal("0.01")), money_text(Decimal("1.2345"), Decimal("0.01"))
    ('180.00', '1.2345')
    """
    if value.__class__ is not Decimal:
        return plain_json(value)
    try:
        shown = value.quantize(places, context=CONTEXT)
    except decimal.DecimalException:
        return str(value)
    return str(shown) if shown == value else str(value)


def plain_json(value: Any) -> Any:
    """A value of a line's details that is not money, as JSON data (:func:`jsonable`)."""
    c = value.__class__
    if c is str or c is int or value is None or c is bool:
        return value
    if c is Decimal:
        return str(value)
    return jsonable(value)


class Explained:
    """A policy's explanation of its lines, and the same as JSON data.

    ``build(captured)`` gives a line's details (Decimals, dates: what
    :attr:`Line.details` holds, before money values are written to the line's
    places); ``json(captured, amount)`` gives, straight from what the policy
    captured, what :func:`jsonable` makes of :attr:`Line.details`: every value
    JSON-ready (text, numbers, lists, dicts with text keys), so an encoder writes
    it with no callback; or ``None`` when it has no shortcut for this line (the
    details are then built and converted). It may be called in any decimal
    context: its arithmetic names the plans' (:data:`~incentives.money.CONTEXT`:
    ``CONTEXT.multiply(a, b)``), as building the details does. What it returns
    may share parts with other lines' (a tier table's full slices): it is only
    read, never changed.
    """

    __slots__ = ("build", "json")

    def __init__(self, build: Callable[[Any], dict[str, Any]],
                 json: Callable[[Any, Decimal], dict[str, Any] | None]) -> None:
        self.build = build
        self.json = json

    def __call__(self, captured: Any) -> dict[str, Any]:
        return self.build(captured)


def _given(details: dict[str, Any]) -> dict[str, Any]:
    """The "lazy" form of details given as they are: the details themselves."""
    return details


def json_default(value: Any) -> Any:
    """For ``json.dumps(default=...)``: what :func:`jsonable` makes of a value the
    encoder does not know (Decimals and dates become strings)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not JSON data")


def jsonable(value: Any) -> Any:
    """Turn details into JSON-ready data: Decimals and dates become strings."""
    # the common exact types first (this runs for every value of every line)
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is Decimal:
        return str(value)
    if t is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in value.items()}
    if t is list:
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):  # pragma: no cover - never produced by the library
        return str(Decimal(repr(value)))
    return value


@dataclass(slots=True)
class Record:
    """One payee in one period, checked against a plan's declared inputs."""

    payee: str
    period: str
    group: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Decimal] = field(default_factory=dict)
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """``(period, payee)``: what identifies a record within a run."""
        return (self.period, self.payee)


class Line:
    """One amount a policy contributes to a payee's pay, with its explanation.

    ``details`` is the data that explains the amount (the basis, the slices of a
    tier table, a scorecard's rows...). A policy may give it *lazily*: it keeps
    the values it used in a small record of its own (``captured``: a named tuple
    such as a tier line's ``TierCapture(basis=..., factor=..., ...)``, or, from
    a kernel, that record's values in the order of its fields, which the policy
    reads as the record), and ``explain(captured)`` builds the details the first
    time they are read. (A team policy's line captures the member's index, and
    its ``explain`` is the policy's explanation bound to what it found for the
    whole group, shared by the members' lines.) Most runs only need amounts and
    totals, so the explanation of a line nobody reads is never built. Reading
    the details gives what building them when the line was made would have.
    """

    __slots__ = ("_captured", "_details", "_explain", "amount", "label", "policy", "type")

    def __init__(
        self,
        policy: str,
        label: str,
        amount: Decimal,
        type: str,
        details: dict[str, Any] | None = None,
        explain: Callable[[Any], dict[str, Any]] | None = None,
        captured: Any = None,
    ) -> None:
        self.policy = policy
        self.label = label
        self.amount = amount
        self.type = type
        if explain is None and details:
            # given as they are: their money values are written out when first read
            self._details: dict[str, Any] | None = None
            self._explain: Callable[[Any], dict[str, Any]] | None = _given
            self._captured: Any = details
        else:
            self._details = {} if details is None and explain is None else details
            self._explain = explain
            self._captured = captured

    @property
    def captured(self) -> Any:
        """The record the policy captured to explain the line (``None`` once the
        details are built, or when they were given as they are)."""
        return None if self._explain is _given else self._captured

    @property
    def details(self) -> dict[str, Any]:
        """The data that explains the amount (built on first use when given lazily), its
        money values written to the places of the amount (see :data:`MONEY_DETAILS`)."""
        d = self._details
        if d is None:
            # built in the plans' arithmetic context, whatever the caller's is
            with decimal.localcontext(CONTEXT):
                d = self._details = money_details(
                    self._explain(self._captured), self.amount)  # type: ignore[misc]
            self._explain = self._captured = None
        return d

    @details.setter
    def details(self, value: dict[str, Any]) -> None:
        self._details = value
        self._explain = self._captured = None

    def json_details(self) -> Any:
        """The details as JSON data, equal to ``jsonable(line.details)``: built straight
        from what the policy captured when its explanation knows how (an
        :class:`Explained`), without building
        :attr:`details`; else :attr:`details` themselves (Decimals and dates in them,
        for an encoder that converts them itself)."""
        explain = self._explain
        if explain.__class__ is Explained and self._details is None:
            made = explain.json(self._captured, self.amount)
            if made is not None:
                return made
        return self.details

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Line):
            return NotImplemented
        o = other
        return (self.policy == o.policy and self.label == o.label and self.amount == o.amount
                and self.type == o.type and self.details == o.details)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"Line(policy={self.policy!r}, label={self.label!r}, amount={self.amount!r}, "
                f"type={self.type!r}, details={self.details!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled with its details built (the lazy form refers to the compiled plan)
        return (Line, (self.policy, self.label, self.amount, self.type, self.details))

    def to_dict(self, *, convert: Callable[[Any], Any] | None = jsonable) -> dict[str, Any]:
        """The line as JSON-ready data (amounts as decimal strings).

        ``convert=None`` leaves the details as they are (Decimals and dates in
        them), for an encoder that converts them itself.
        """
        details = self.details
        return {
            "id": self.policy,
            "label": self.label,
            "amount": str(self.amount),
            "type": self.type,
            "details": convert(details) if convert is not None else details,
        }


@dataclass(slots=True)
class PeriodContext:
    """What every payee of one period shares."""

    period: str
    start: dt.date
    end: dt.date
    base_env: dict[str, Any]
    #: what a policy works out once for the period, over parameters only (a
    #: contest's prizes), keyed by the policy's id and what it is
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def days(self) -> int:
        """The number of calendar days in the period."""
        return (self.end - self.start).days + 1


class PayeeState:
    """One payee's evaluation in progress."""

    __slots__ = ("book", "env", "error", "flags", "ledger", "lines", "measures", "payee",
                 "record", "titles", "total", "values")

    def __init__(self, record: Record, env: dict[str, Any]) -> None:
        self.record = record
        #: the record's payee (a plain attribute: team policies sort by it a lot)
        self.payee: str = record.payee
        self.env = env
        self.lines: list[Line] = []
        self.titles: list[str] = []
        self.flags: list[str] = []
        self.values: dict[str, Any] = {}
        self.total = ZERO
        self.error: Exception | None = None
        self.ledger: dict[str, Any] = {}
        #: the measures of this payee and period, by name (plans with ``measures:``)
        self.measures: dict[str, MeasureValue] = _NO_MEASURES
        #: every transaction of the run (plans with ``transactions:``), else ``None``
        self.book: TransactionBook | None = None

    def add_line(
        self,
        policy: str,
        label: str,
        amount: Decimal,
        type: str,
        details: dict[str, Any] | None = None,
        explain: Callable[[Any], dict[str, Any]] | None = None,
        captured: Any = None,
    ) -> Line:
        """Append a line (already rounded) and update ``total`` and the policy's name.

        The details are given as they are, or lazily: ``explain(captured)``
        (see :class:`Line`).
        """
        line = Line(policy, label, amount, type, details, explain, captured)
        self.lines.append(line)
        self.total += amount
        env = self.env
        env["total"] = self.total
        env[policy] = env.get(policy, ZERO) + amount
        return line

    def set_value(self, name: str, value: Any, *, show: bool = True) -> None:
        """Publish a named result that later formulas may read."""
        self.env[name] = value
        if show:
            self.values[name] = value


# ---------------------------------------------------------------- transactions


class Transaction:
    """One checked transaction (an invoice, a credit note, a payment...) of a declared kind.

    ``amount`` is signed (a credit note's is negative). ``sellers`` are the
    ``(payee, share)`` pairs it names itself, ``None`` when it names none (a
    credit note then takes those of the transaction it ``refers_to``).
    ``fields`` holds every declared field by name, the built-in ones too
    (``id``, ``date``, ``amount``, ``currency``, ``quantity``, ``refers_to``),
    as formulas over a transaction read them.
    """

    __slots__ = ("amount", "date", "fields", "id", "kind", "refers_to", "row", "sellers")

    def __init__(self, kind: str, id: str, date: dt.date, amount: Decimal,
                 fields: dict[str, Any], sellers: tuple[tuple[str, Decimal], ...] | None = None,
                 refers_to: str | None = None, row: int | None = None) -> None:
        self.kind = kind
        self.id = id
        self.date = date
        self.amount = amount
        self.fields = fields
        self.sellers = sellers
        self.refers_to = refers_to
        #: where it was read (1-based row of its file or input), for messages
        self.row = row

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, id)``: a transaction's identity."""
        return (self.kind, self.id)

    def __repr__(self) -> str:
        return (f"Transaction({self.kind!r}, {self.id!r}, {self.date.isoformat()}, "
                f"{self.amount})")


class Credit(NamedTuple):
    """A share of one transaction given to one payee by one named crediting rule.

    ``amount`` is the credited amount, exactly ``transaction.amount * share``
    (never rounded). ``via`` names, for a roll-up credit, the payees of the
    manager's subtree whose credits it rolls up; for a direct credit it is empty.
    """

    payee: str
    transaction: Transaction
    share: Decimal
    rule: str
    amount: Decimal
    via: tuple[str, ...] = ()


class MeasureValue:
    """A measure of one payee in one period: its value and the credits behind it.

    ``items`` pairs each credit that counted with what it contributed (for
    ``sum``, its credited value); a measure over a record's event lists has
    ``items`` of ``(None, contribution)`` and the events in ``events``.
    """

    __slots__ = ("events", "items", "name", "value")

    def __init__(self, name: str, value: Decimal,
                 items: list[tuple[Credit, Decimal]] | None = None,
                 events: list[tuple[dict[str, Any], Decimal]] | None = None) -> None:
        self.name = name
        self.value = value
        self.items: list[tuple[Credit, Decimal]] = items if items is not None else []
        self.events: list[tuple[dict[str, Any], Decimal]] = events if events is not None else []

    def __repr__(self) -> str:
        return f"MeasureValue({self.name!r}, {self.value}, {len(self.items)} credits)"


_NO_MEASURES: dict[str, MeasureValue] = {}


class TransactionBook:
    """Every checked transaction of a run, by kind and id, and what refers to what.

    Policies read it through :attr:`PayeeState.book`: pay on payment finds the
    payments of an invoice with :meth:`referring`.
    """

    __slots__ = ("_referring", "_targets", "by_key", "tables")

    def __init__(self, transactions: Iterable[Transaction] = ()) -> None:
        self.by_key: dict[tuple[str, str], Transaction] = {}
        #: classification tables given for this run (``evaluate(tables=...)``,
        #: ``--table``), by name: they replace the plan's tables of the same name
        self.tables: dict[str, dict[str, str]] = {}
        self._referring: dict[tuple[str, str, str], list[Transaction]] = {}
        self._targets: dict[tuple[str, str], tuple[str, str]] = {}
        for t in transactions:
            self.add(t)

    def add(self, t: Transaction, target_kind: str | None = None) -> None:
        """Add ``t``; ``target_kind`` is the kind its ``refers_to`` names."""
        self.by_key[t.key] = t
        if t.refers_to is not None and target_kind is not None:
            self._referring.setdefault((target_kind, t.refers_to, t.kind), []).append(t)
            self._targets[t.key] = (target_kind, t.refers_to)

    def get(self, kind: str, id: str) -> Transaction | None:
        """The transaction ``id`` of ``kind``, or ``None``."""
        return self.by_key.get((kind, id))

    def target(self, t: Transaction) -> Transaction | None:
        """The transaction ``t`` refers to (a credit note's invoice), or ``None``."""
        key = self._targets.get(t.key)
        return None if key is None else self.by_key.get(key)

    def referring(self, target: Transaction, kind: str) -> list[Transaction]:
        """The transactions of ``kind`` that refer to ``target``, by date then id."""
        found = self._referring.get((target.kind, target.id, kind), [])
        return sorted(found, key=_by_date_id)

    def __len__(self) -> int:
        return len(self.by_key)


def _by_date_id(t: Transaction) -> tuple[dt.date, str]:
    return (t.date, t.id)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a population is evaluated.

    Evaluation makes many small containers (lines, results) and no reference
    cycles, so the collector's passes over a growing heap are pure cost (about
    a quarter of the time on large populations). Reference counting still frees
    everything.

    When it resumes, what was made meanwhile is handed to the collector's
    oldest generation (``gc.freeze()`` then ``gc.unfreeze()``) rather than
    left in the youngest: results are long-lived by nature, and otherwise the
    collector would walk every one of them once as young objects, then again
    as middle-aged ones (about 3 microseconds per payee each time). The cost:
    any other young object of the process also moves to the oldest generation,
    so a reference cycle it is part of is reclaimed at the next full
    collection instead of a young one. A process that froze objects itself
    (``gc.freeze()``, before forking workers) keeps them frozen: then nothing
    is moved. Nested or concurrent pauses are harmless: only the outermost one
    that paused resumes.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
