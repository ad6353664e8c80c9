"""Transactions: the kinds a plan declares, and reading them exactly.

A plan that pays from transactions (orders, invoice lines, credit notes,
payments) declares each kind under ``transactions:``::

    transactions:
      invoices:
        fields: {customer: text, product: text}
      credit_notes:
        refers_to: invoices
        sign: negative

Every kind has the built-in fields ``id`` (unique within the kind), ``date``
and ``amount`` (required), ``currency`` and ``quantity`` (optional), the
sellers (``seller: A``, or ``sellers`` with shares), and, for a kind that
``refers_to`` another, ``refers_to`` (the id of the transaction it refers to).
A transaction that refers to another and lacks a field takes it from that one:
a credit note without sellers is credited with its invoice's shares.

Reading is strict: an amount is an exact decimal (never through float), a
date is a date, a credit note's sign is checked, and a bad transaction is a
:class:`~incentives.errors.TransactionError` naming its kind, id and field,
while the good ones are still read.

>>> kinds = {"invoices": TransactionKind(fields={"customer": "text"})}
>>> t = TransactionReader(kinds).read({"kind": "invoices", "id": "inv-1",
...     "date": "2026-05-10", "amount": "10000", "sellers": "A:0.6;B:0.4", "customer": "c-1"})
>>> t.amount, t.sellers
(Decimal('10000'), (('A', Decimal('0.6')), ('B', Decimal('0.4'))))
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import model_validator

from .errors import (
    CONTROL_CHARACTERS,
    IncentivesError,
    RecordError,
    TransactionError,
    UsageError,
    did_you_mean,
)
from .fileio import MAX_TEXT_FIELD, add_transaction_options
from .formulas import NameType
from .money import ZERO, short, to_decimal
from .policies.base import Identifier, Label, StrictModel
from .runtime import Transaction, TransactionBook

if TYPE_CHECKING:
    from .tabular import FloatReading

__all__ = [
    "BUILTIN_FIELDS",
    "MAX_SELLERS",
    "ONE",
    "SELLER_FIELDS",
    "TransactionInput",
    "TransactionKind",
    "TransactionReader",
    "add_transaction_options",
    "check_kinds",
    "kind_fields",
    "kind_names",
    "link_transactions",
    "parse_sellers",
    "payee_text",
    "read_rows",
    "read_transactions_file",
    "share_value",
    "split_kind",
    "transaction_options",
    "transaction_rows",
]

#: The fields every kind has, and their types.
BUILTIN_FIELDS: dict[str, NameType] = {
    "id": "text",
    "date": "date",
    "amount": "number",
    "currency": "text",
    "quantity": "number",
    "refers_to": "text",
}
#: Where a transaction names who sold it.
SELLER_FIELDS = ("sellers", "seller")
#: The most sellers one transaction may name.
MAX_SELLERS = 100
#: the share of a whole credit (one object: crediting skips multiplying by it)
ONE = Decimal(1)
_RESERVED = frozenset({*BUILTIN_FIELDS, *SELLER_FIELDS, "kind"})

TransactionFieldType = Literal["text", "number", "date", "bool", "payees"]


class TransactionKind(StrictModel):
    """A kind of transaction a plan reads (invoices, credit notes, payments...).

    ``fields``: the declared fields beyond the built-in ones, each ``text``,
    ``number``, ``date``, ``bool`` or ``payees`` (payees with shares, written as
    the sellers are: for an overlay rule's specialist). Fields in ``optional``
    may be absent. ``refers_to``: the kind whose ids this kind's ``refers_to``
    names (a credit note's invoice). ``sign``: ``negative`` for refunds and
    credit notes (an amount above zero is refused), ``positive`` for payments.
    ``negate``: the source writes this kind's amounts with the opposite sign
    (credit notes as positive totals), so they are read negated.
    """

    label: Label | None = None
    fields: dict[Identifier, TransactionFieldType] = {}
    optional: list[Identifier] = []
    refers_to: Identifier | None = None
    sign: Literal["any", "positive", "negative"] = "any"
    negate: bool = False
    #: the sellers are required (``true``), may be absent (``false``); by default
    #: they may be absent only where the kind ``refers_to`` another
    sellers: bool | None = None

    @model_validator(mode="after")
    def _field_names(self) -> TransactionKind:
        for name in self.fields:
            if name in _RESERVED:
                raise ValueError(f"{name!r} is a built-in field of every transaction; "
                                 "do not declare it under fields")
        for name in self.optional:
            if name not in self.fields and name not in ("currency", "quantity"):
                raise ValueError(f"optional field {name!r} is not a declared field"
                                 + _hint(name, self.fields))
        return self

    def names(self) -> dict[str, NameType]:
        """The names a formula over one of these transactions may read."""
        out: dict[str, NameType] = {k: v for k, v in BUILTIN_FIELDS.items()
                                    if k != "refers_to" or self.refers_to is not None}
        for name, ftype in self.fields.items():
            out[name] = "any" if ftype == "payees" else ftype
        return out

    @property
    def sellers_required(self) -> bool:
        """Whether a transaction of this kind must name its sellers."""
        return self.sellers if self.sellers is not None else False


def kind_names(kinds: Mapping[str, TransactionKind], name: str) -> dict[str, NameType]:
    """The fields a transaction of kind ``name`` has: its own and, for a kind that
    ``refers_to`` another, those it takes from the transaction it refers to."""
    out: dict[str, NameType] = {}
    seen: set[str] = set()
    kind: str | None = name
    while kind is not None and kind in kinds and kind not in seen:
        seen.add(kind)
        for n, t in kinds[kind].names().items():
            out.setdefault(n, t)
        kind = kinds[kind].refers_to
    if kinds.get(name) is not None and kinds[name].refers_to is not None:
        out["refers_to"] = "text"
    return out


def kind_fields(kinds: Mapping[str, TransactionKind], name: str) -> dict[str, str]:
    """The declared (not built-in) fields of kind ``name`` with their types, those it
    takes from the kind it refers to included."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    kind: str | None = name
    while kind is not None and kind in kinds and kind not in seen:
        seen.add(kind)
        for n, t in kinds[kind].fields.items():
            out.setdefault(n, t)
        kind = kinds[kind].refers_to
    return out


def check_kinds(kinds: Mapping[str, TransactionKind]) -> list[tuple[str, tuple[str | int, ...]]]:
    """Problems with declared kinds: ``(message, path below 'transactions')``."""
    problems: list[tuple[str, tuple[str | int, ...]]] = []
    for name, kind in kinds.items():
        if kind.refers_to is not None and kind.refers_to not in kinds:
            problems.append((f"kind {name!r} refers to {kind.refers_to!r}, which is not a "
                             "declared kind" + _hint(kind.refers_to, kinds),
                             (name, "refers_to")))
    return problems


def _hint(name: str, known: Iterable[str]) -> str:
    found = did_you_mean(name, list(known))
    return f"; {found}" if found else ""


# ------------------------------------------------------------------ sellers


def parse_sellers(value: Any) -> tuple[tuple[str, Decimal], ...]:
    """Read the payees of a transaction and their shares, or raise ``ValueError``.

    Accepted: a payee's name (``"A"``, share 1); text with ``payee:share``
    entries separated by ``;`` (``"A:0.6;B:0.4"``, as in a CSV; an entry
    without ``:share`` has share 1); a list of payee names (each share 1); a
    list of ``{"payee": ..., "share": ...}`` objects (share 1 when left out);
    a mapping ``{"A": "0.6", "B": "0.4"}``; one ``{"payee": ..., "share": ...}``
    object; and the ``(payee, share)`` pairs this returns. Shares are exact:
    text, Decimals or whole numbers; a float from a program is read by its
    shortest repr (``0.1`` is one tenth), as a record's numbers are. Refused: a
    share that is not more than 0, a payee named twice, a blank or over-long name, a name holding a control character,
    and a value naming no payee. Whether shares sum to 1 is the crediting
    rule's to check (an overlay credits each payee in full).

    >>> parse_sellers("A:0.6; B:0.4")
    (('A', Decimal('0.6')), ('B', Decimal('0.4')))
    >>> parse_sellers([{"payee": "A"}, {"payee": "S", "share": 1}])
    (('A', Decimal('1')), ('S', Decimal('1')))
    >>> parse_sellers({"A": 0.6, "B": 0.4})  # a float by its shortest repr: six tenths
    (('A', Decimal('0.6')), ('B', Decimal('0.4')))
    """
    if isinstance(value, str):
        if ";" not in value and ":" not in value:
            return ((payee_text(value), ONE),)
        entries: list[tuple[Any, Any]] = []
        for part in value.split(";"):
            if not part.strip():
                raise ValueError(f"an empty entry in {_quoted(value)}: write payee:share "
                                 "entries separated by ';'")
            name, colon, share = part.rpartition(":")
            entries.append((name, share) if colon else (share, None))
    elif isinstance(value, Mapping):
        if "payee" in value and set(value) <= {"payee", "share"}:
            entries = [(value["payee"], value.get("share"))]
        else:
            entries = list(value.items())
    elif isinstance(value, (list, tuple)):
        entries = [_entry(item) for item in value]
    else:
        raise ValueError("sellers must be a payee's name, a list of payees or payee: share "
                         f"pairs, not {type(value).__name__}")
    if not entries:
        raise ValueError("names no payee")
    if len(entries) > MAX_SELLERS:
        raise ValueError(f"names {len(entries)} payees (at most {MAX_SELLERS})")
    out: list[tuple[str, Decimal]] = []
    seen: set[str] = set()
    for raw_name, raw_share in entries:
        name = payee_text(raw_name)
        if name in seen:
            raise ValueError(f"payee {name!r} is named twice")
        seen.add(name)
        out.append((name, ONE if raw_share is None else share_value(raw_share, name)))
    return tuple(out)


def _entry(item: Any) -> tuple[Any, Any]:
    if isinstance(item, str):
        return (item, None)
    if isinstance(item, Mapping):
        unknown = [k for k in item if k not in ("payee", "share")]
        if unknown:
            hint = did_you_mean(str(unknown[0]), ["payee", "share"])
            raise ValueError(f"unknown key {unknown[0]!r} in a seller"
                             + (f"; {hint}" if hint else "; a seller has payee and share"))
        if "payee" not in item:
            raise ValueError("a seller without its payee")
        return (item["payee"], item.get("share"))
    if isinstance(item, (list, tuple)) and len(item) == 2:
        return (item[0], item[1])
    raise ValueError("each seller must be a payee's name or a payee with a share, "
                     f"not {_quoted(item)}")


def share_value(raw: Any, name: str) -> Decimal:
    """A share: exact and above 0. A float (from a program or a DataFrame) is read from
    its shortest repr, as a record's numbers are: ``0.6`` is six tenths."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal, float)):
        raise ValueError(f"share of {name!r} must be a number, not {_quoted(raw)}")
    share = to_decimal(raw, what=f"share of {name!r}")
    if share <= 0:
        raise ValueError(f"share of {name!r} must be more than 0, not {share}")
    # a whole share is the one ONE: crediting then skips multiplying by it
    return ONE if share == ONE and share.as_tuple().exponent == 0 else share


def payee_text(value: Any, what: str = "payee") -> str:
    """A payee's name (or a table key) as text: stripped, not blank, printable."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, Decimal) and value.is_finite():
        value = format(value, "f")
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, not {_quoted(value)}")
    text = value.strip()
    if not text:
        raise ValueError(f"blank {what}")
    if len(text) > MAX_TEXT_FIELD:
        raise ValueError(f"{what} is too long ({len(text)} characters, at most {MAX_TEXT_FIELD})")
    found = CONTROL_CHARACTERS.search(text)
    if found is not None:
        raise ValueError(f"{what} holds a control character (U+{ord(found.group()):04X})")
    return text



def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ reading


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class TransactionReader:
    """Checks raw transactions (mappings, as read from JSON, CSV or a program)."""

    def __init__(self, kinds: Mapping[str, TransactionKind], *,
                 currency: str | None = None) -> None:
        self.kinds = dict(kinds)
        self.currency = currency
        self._allowed = {name: frozenset({*_RESERVED, *k.fields})
                         for name, k in self.kinds.items()}

    def read(self, raw: Any, index: int | None = None, *,
             kind: str | None = None) -> Transaction:
        """One checked transaction, or a :class:`TransactionError`.

        ``kind``: the kind of a row that does not say (a file given as
        ``KIND=FILE``, or a plan with one kind).
        """
        found = self._plain(raw, index, kind)
        return found if found is not None else self._read(raw, index, kind)

    def _plain(self, raw: Any, index: int | None, kind: str | None) -> Transaction | None:
        """A transaction as most sources write it, read at once; ``None`` for anything
        else (read by :meth:`_read`, which checks it field by field)."""
        if raw.__class__ is not dict:
            return None
        k = raw.get("kind", kind)
        if k is None and len(self.kinds) == 1:
            k = next(iter(self.kinds))
        spec = self.kinds.get(k)  # type: ignore[arg-type]
        if spec is None or (kind is not None and k != kind) \
                or not raw.keys() <= self._allowed[k]:  # type: ignore[index]
            return None
        ident, day, amount = raw.get("id"), raw.get("date"), raw.get("amount")
        if ident.__class__ is not str or not ident.isprintable() or ident.strip() != ident \
                or not 0 < len(ident) <= MAX_TEXT_FIELD or day.__class__ is not str \
                or len(day) != 10:
            return None
        try:
            date = dt.date.fromisoformat(day)
        except ValueError:
            return None
        if (amount.__class__ is str and _PLAIN_NUMBER.fullmatch(amount)) or (amount.__class__ is int and -_INT_LIMIT < amount < _INT_LIMIT):
            number = Decimal(amount)
        elif amount.__class__ is Decimal:  # a JSON number, read exactly
            try:
                number = to_decimal(amount)
            except ValueError:
                return None
        else:
            return None
        if spec.negate:
            number = -number
        if (spec.sign == "negative" and number > 0) or (spec.sign == "positive" and number < 0):
            return None
        fields: dict[str, Any] = {"id": ident, "date": date, "amount": number}
        for name in ("currency", "quantity"):
            if name in raw:
                return None
        refers = raw.get("refers_to")
        if refers == "":  # an empty column of a CSV file
            refers = None
        if refers is not None:
            if spec.refers_to is None or not (refers.__class__ is str and _plain_text(refers)):
                return None
            fields["refers_to"] = refers
        seller = raw.get("seller")
        sellers: tuple[tuple[str, Decimal], ...] | None = None
        if seller is not None:
            if seller.__class__ is not str or not seller.isprintable() \
                    or seller.strip() != seller or not 0 < len(seller) <= MAX_TEXT_FIELD \
                    or "sellers" in raw or ":" in seller or ";" in seller:
                return None
            sellers = ((seller, _ONE),)
        elif "sellers" in raw:
            sellers = _plain_shares(raw["sellers"])
            if sellers is None:
                return None
        elif spec.sellers_required:
            return None
        for name, ftype in spec.fields.items():
            value = raw.get(name)
            if value is None or value == "":
                if name not in spec.optional and refers is None:
                    return None
                continue
            if ftype == "text" and value.__class__ is str and value.isprintable() \
                    and value.strip() == value and 0 < len(value) <= MAX_TEXT_FIELD:
                fields[name] = value
            else:
                return None
        return Transaction(k, ident, date, number, fields, sellers,  # type: ignore[arg-type]
                           refers, None if index is None else index + 1)

    def _read(self, raw: Any, index: int | None, kind: str | None) -> Transaction:
        if not isinstance(raw, Mapping):
            raise TransactionError("a transaction is a mapping of fields, not "
                                   f"{type(raw).__name__}", kind=kind, index=index)
        ident = raw.get("id")
        id_text = _text_id(ident)
        given_kind = raw.get("kind")
        if _blank(given_kind):
            if kind is None:
                if len(self.kinds) == 1:
                    kind = next(iter(self.kinds))
                else:
                    raise TransactionError(
                        f"no kind: one of {', '.join(self.kinds)}", id=id_text, index=index,
                        field="kind")
        else:
            if not isinstance(given_kind, str):
                raise TransactionError("the kind is a name", id=id_text, index=index,
                                       field="kind")
            given_kind = given_kind.strip()
            if kind is not None and given_kind != kind:
                raise TransactionError(f"kind {short(given_kind)!r} in a file of {kind}",
                                       kind=kind, id=id_text, index=index, field="kind")
            kind = given_kind
        spec = self.kinds.get(kind)
        if spec is None:
            raise TransactionError(
                f"unknown kind {short(kind)!r}" + (_hint(kind, self.kinds) or
                                                   f"; the plan declares {', '.join(self.kinds)}"),
                id=id_text, index=index, field="kind")

        def fail(message: str, field: str) -> TransactionError:
            return TransactionError(message, kind=kind, id=id_text, index=index, field=field)

        allowed = self._allowed[kind]
        for k in raw:
            if k not in allowed:
                if isinstance(k, str) and _blank(raw[k]):
                    continue  # an empty CSV column of another kind
                raise fail(f"unknown field {short(str(k))!r}" + _hint(str(k), allowed),
                           short(str(k)))
        if id_text is None:
            raise fail(_id_problem(ident), "id")
        date = _date(raw.get("date"), "date", fail, required=True)
        assert date is not None
        amount = _number(raw.get("amount"), "amount", fail, required=True)
        assert amount is not None
        written = amount
        if spec.negate:
            amount = -amount
        shown = (f"amount {written} (read as {amount}: {kind} declare 'negate: true')"
                 if spec.negate else f"amount {amount}")
        if spec.sign == "negative" and amount > 0:
            raise fail(f"{shown} is above zero, but {kind} are negative"
                       + ("" if spec.negate else
                          "; if your system writes them as positive amounts, declare "
                          f"'negate: true' for {kind}"), "amount")
        if spec.sign == "positive" and amount < 0:
            raise fail(f"{shown} is below zero, but {kind} are positive", "amount")
        fields: dict[str, Any] = {"id": id_text, "date": date, "amount": amount}
        currency = raw.get("currency")
        if not _blank(currency):
            text = _text(currency, "currency", fail)
            # ISO 4217 codes: 'cny' is CNY
            if self.currency is not None and text.upper() != self.currency.strip().upper():
                raise fail(f"currency {short(text)!r}, but the plan pays in {self.currency} "
                           "(convert amounts before they are credited)", "currency")
            fields["currency"] = text
        quantity = _number(raw.get("quantity"), "quantity", fail, required=False)
        if quantity is not None:
            fields["quantity"] = quantity
        refers = raw.get("refers_to")
        refers_to: str | None = None
        if not _blank(refers):
            if spec.refers_to is None:
                raise fail(f"{kind} do not refer to other transactions (declare "
                           f"'refers_to:' for the kind)", "refers_to")
            refers_to = _text_id(refers)
            if refers_to is None:
                raise fail("refers_to is the id of a transaction", "refers_to")
            fields["refers_to"] = refers_to
        sellers: tuple[tuple[str, Decimal], ...] | None = None
        seller_field = "sellers" if not _blank(raw.get("sellers")) else "seller"
        value = raw.get(seller_field)
        if not _blank(raw.get("sellers")) and not _blank(raw.get("seller")):
            raise fail("give 'seller' or 'sellers', not both", "sellers")
        if value.__class__ is str and value.isprintable() and ":" not in value \
                and ";" not in value and 0 < len(value) <= MAX_TEXT_FIELD \
                and not value[0].isspace() and not value[-1].isspace():
            sellers = ((value, _ONE),)  # one seller, the common case
        elif not _blank(value):
            try:
                sellers = parse_sellers(value)
            except ValueError as exc:
                raise fail(str(exc), seller_field) from None
        elif spec.sellers_required:
            raise fail("missing sellers", "sellers")
        for name, ftype in spec.fields.items():
            value = raw.get(name)
            if _blank(value):
                if name not in spec.optional and refers_to is None:
                    raise fail("missing field", name)
                continue
            fields[name] = _value(value, ftype, name, fail)
        return Transaction(kind, id_text, date, amount, fields, sellers, refers_to,
                           None if index is None else index + 1)

    def read_all(self, rows: Iterable[Any], *, kind: str | None = None, start: int = 0,
                 source: str | None = None) -> tuple[list[Transaction], list[IncentivesError]]:
        """Every good transaction of ``rows`` and an error for each bad one; ``source``
        (a file's name) is named in the message of a row that has no id."""
        good: list[Transaction] = []
        bad: list[IncentivesError] = []
        read = self.read
        for i, raw in enumerate(rows, start):
            if isinstance(raw, RecordError):  # a line of a file that cannot be read
                bad.append(TransactionError(raw.message, kind=kind, index=i,
                                            field=raw.field))
                continue
            try:
                good.append(read(raw, i, kind=kind))
            except TransactionError as exc:
                if source is not None and exc.id is None:
                    exc = TransactionError(f"{source}, row {i + 1}: {exc.message}",
                                           kind=exc.kind, field=exc.field)
                bad.append(exc)
        return good, bad


def _plain_shares(value: Any) -> tuple[tuple[str, Decimal], ...] | None:
    """Sellers written ``{"A": 0.6, "B": 0.4}`` (the common form of a split), read at once;
    ``None`` for anything else (read by :func:`parse_sellers`)."""
    if value.__class__ is not dict or not 0 < len(value) <= MAX_SELLERS:
        return None
    out = []
    for payee, share in value.items():
        if payee.__class__ is not str or not 0 < len(payee) <= MAX_TEXT_FIELD \
                or not payee.isprintable() or payee.strip() != payee:
            return None
        if share.__class__ is Decimal:
            if not (0 < share <= 1) or len(share.as_tuple().digits) > 20:
                return None
        elif share.__class__ is str and _PLAIN_NUMBER.fullmatch(share):
            share = Decimal(share)
            if not share > 0:
                return None
        elif share == 1 and share.__class__ is int:
            share = _ONE
        else:
            return None
        out.append((payee, share))
    return tuple(out)


def _id_problem(value: Any) -> str:
    """Why ``value`` is not a transaction's id."""
    if _blank(value):
        return "missing id"
    if isinstance(value, str):
        if len(value.strip()) > MAX_TEXT_FIELD:
            return f"id too long ({len(value.strip())} characters, at most {MAX_TEXT_FIELD})"
        return "the id holds control characters"
    return "an id is text or a whole number"


def _plain_text(text: str) -> bool:
    """Whether ``text`` is read as it is: printable, with no space at either end, and
    not too long."""
    return 0 < len(text) <= MAX_TEXT_FIELD and text.isprintable() \
        and not text[0].isspace() and not text[-1].isspace()


def _text_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return format(value, "f")
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= MAX_TEXT_FIELD and CONTROL_CHARACTERS.search(text) is None:
            return text
    return None


def _text(value: Any, field: str, fail: Any) -> str:
    if isinstance(value, (dict, list, bool)):
        raise fail(f"must be text, not {type(value).__name__}", field)
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    text = text.strip()
    if CONTROL_CHARACTERS.search(text) is not None:
        raise fail("holds control characters", field)
    if len(text) > MAX_TEXT_FIELD:
        raise fail(f"text too long ({len(text)} characters, at most {MAX_TEXT_FIELD})", field)
    return text


#: a number as most sources write it: read at once (anything else goes through to_decimal)
_PLAIN_NUMBER = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,20})?", re.ASCII)
_ONE = ONE
_INT_LIMIT = 10 ** 15


def _number(value: Any, field: str, fail: Any, *, required: bool) -> Decimal | None:
    cls = value.__class__
    if cls is str and _PLAIN_NUMBER.fullmatch(value):
        return Decimal(value)
    if cls is int and -_INT_LIMIT < value < _INT_LIMIT:
        return Decimal(value)
    if _blank(value):
        if required:
            raise fail(f"missing {field}", field)
        return None
    try:
        return to_decimal(value, what=field)
    except ValueError as exc:
        raise fail(str(exc), field) from None


def _date(value: Any, field: str, fail: Any, *, required: bool) -> dt.date | None:
    if _blank(value):
        if required:
            raise fail(f"missing {field}", field)
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value.__class__ is str and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise fail(f"{short(str(value))!r} is not a date like 2026-05-10", field)


def _value(value: Any, ftype: str, field: str, fail: Any) -> Any:
    if ftype == "number":
        return _number(value, field, fail, required=True)
    if ftype == "date":
        return _date(value, field, fail, required=True)
    if ftype == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise fail(f"must be true or false, not {short(str(value))!r}", field)
    if ftype == "payees":
        try:
            return parse_sellers(value)
        except ValueError as exc:
            raise fail(str(exc), field) from None
    return _text(value, field, fail)


# ------------------------------------------------------------------ linking


def link_transactions(transactions: Iterable[Transaction],
                      kinds: Mapping[str, TransactionKind]
                      ) -> tuple[list[Transaction], TransactionBook, list[IncentivesError]]:
    """Check ids and references across all transactions; fill in inherited fields.

    Two transactions of one kind with the same id are both errors (neither is
    credited). A ``refers_to`` naming no transaction of the kind it refers to is
    an error. A transaction that refers to another takes the sellers and the
    fields it lacks from it. Returns the good transactions in (date, kind, id)
    order, the book of them, and the errors.
    """
    errors: list[IncentivesError] = []
    by_key: dict[tuple[str, str], Transaction] = {}
    dupes: dict[tuple[str, str], int] = {}
    for t in transactions:
        key = (t.kind, t.id)
        if key in by_key:
            dupes[key] = dupes.get(key, 1) + 1
        else:
            by_key[key] = t
    for (kind, ident), n in sorted(dupes.items()):
        del by_key[(kind, ident)]
        errors.append(TransactionError(f"{n} transactions with the same id; none of them "
                                       "was credited", kind=kind, id=ident, field="id"))
    good: list[Transaction] = []
    book = TransactionBook()
    pending = sorted(by_key.values(), key=_ORDER)
    by_key_of_book = book.by_key
    refunded: dict[tuple[str, str], Decimal] = {}  # by invoice: its credit notes so far
    for t in pending:
        if t.refers_to is None:
            continue
        target_kind = kinds[t.kind].refers_to
        assert target_kind is not None
        target = by_key.get((target_kind, t.refers_to))
        if target is None:
            hint = ("; it has the same id as a transaction that is given twice"
                    if (target_kind, t.refers_to) in dupes else "")
            t.fields = {}  # marked bad
            errors.append(TransactionError(
                f"refers to {target_kind} {short(t.refers_to)!r}, which is not among the "
                "transactions given" + hint, kind=t.kind, id=t.id, field="refers_to"))
            continue
    for t in pending:
        if not t.fields:
            continue
        if t.refers_to is not None:
            target_kind = kinds[t.kind].refers_to
            target = by_key[(target_kind, t.refers_to)]  # type: ignore[index]
            if not target.fields:
                errors.append(TransactionError(
                    f"refers to {target_kind} {short(t.refers_to)!r}, which has an error",
                    kind=t.kind, id=t.id, field="refers_to"))
                t.fields = {}
                continue
            spec = kinds[t.kind]
            if spec.sign == "negative":  # a credit note or a refund
                problem = None
                if t.date < target.date:
                    problem = (f"dated {t.date.isoformat()}, before {target_kind} "
                               f"{short(target.id)!r} ({target.date.isoformat()}) it reverses")
                else:
                    total = refunded.get(target.key, ZERO) - t.amount
                    if target.amount >= 0 and total > target.amount:
                        problem = (f"the {t.kind} of {target_kind} {short(target.id)!r} come "
                                   f"to {total}, more than its amount {target.amount}")
                    else:
                        refunded[target.key] = total
                if problem is not None:
                    errors.append(TransactionError(problem, kind=t.kind, id=t.id,
                                                   field="date" if "dated" in problem
                                                   else "amount"))
                    t.fields = {}
                    continue
            if t.sellers is None:
                t.sellers = target.sellers
            for name, value in target.fields.items():
                if name not in t.fields and name not in BUILTIN_FIELDS:
                    t.fields[name] = value
            for name in spec.fields:
                if name not in t.fields and name not in spec.optional:
                    errors.append(TransactionError(
                        f"missing field, and {target_kind} {short(t.refers_to)!r} has none "
                        "to take", kind=t.kind, id=t.id, field=name))
                    t.fields = {}
                    break
            if not t.fields:
                continue
            book.add(t, target_kind)
        else:
            by_key_of_book[(t.kind, t.id)] = t
        good.append(t)
    return good, book, errors


#: transactions in (date, kind, id) order
_ORDER = attrgetter("date", "kind", "id")


# ------------------------------------------------------------------ sources


def transaction_rows(source: Any) -> Iterator[tuple[str | None, Any]]:
    """``(kind or None, raw row)`` for each row of a Python source of transactions:
    an iterable of mappings (each saying its ``kind``), a pandas DataFrame, or a
    mapping from kind to either."""
    if source is None:
        return
    if isinstance(source, Mapping):
        for kind, rows in source.items():
            for row in _rows(rows):
                yield str(kind), row
        return
    for row in _rows(source):
        yield None, row


def _rows(rows: Any) -> Iterable[Any]:
    if hasattr(rows, "columns") and hasattr(rows, "to_dict"):
        from .dataframes import frame_rows

        return frame_rows(rows)
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise UsageError("transactions are rows (mappings), a DataFrame, or a mapping from "
                         f"kind to those, not {type(rows).__name__}")
    return rows


def read_rows(reader: TransactionReader, source: Any
              ) -> tuple[list[Transaction], list[IncentivesError]]:
    """Read every transaction of a Python source (see :func:`transaction_rows`)."""
    good: list[Transaction] = []
    bad: list[IncentivesError] = []
    read = reader.read
    for i, (kind, raw) in enumerate(transaction_rows(source)):
        try:
            good.append(read(raw, i, kind=kind))
        except TransactionError as exc:
            bad.append(exc)
    return good, bad


def read_transactions_file(reader: TransactionReader, spec: str, *,
                           floats: FloatReading = "refuse", **options: Any
                           ) -> tuple[list[Transaction], list[IncentivesError]]:
    """Read the transactions of a source (a file or a database URL: see
    :mod:`incentives.sources`) given as ``SOURCE`` or ``KIND=SOURCE``; ``floats``: how
    a floating-point column is read; ``options``: a text file's encoding and the like."""
    from .sources import read_rows as source_rows
    from .sources import source_label

    kind, path = split_kind(spec, reader.kinds)
    rows = source_rows(path, floats=floats, what="transactions", expect=("id",), **options)
    return reader.read_all(rows, kind=kind, source=source_label(path))


def split_kind(spec: str, kinds: Mapping[str, Any]) -> tuple[str | None, str]:
    """``KIND=FILE`` as ``(KIND, FILE)``; a plain ``FILE`` as ``(None, FILE)``."""
    head, sep, tail = spec.partition("=")
    if sep and head in kinds:
        return head, tail
    if sep and head.isidentifier() and not Path(spec).exists() and "://" not in head:
        raise UsageError(f"unknown transaction kind {head!r} in {spec!r}"
                         + _hint(head, kinds))
    return None, spec




class TransactionInput:
    """Transactions already read (from files, on the command line), with the errors
    met reading them: what :meth:`incentives.Plan.evaluate` takes as ``transactions``
    as well as raw rows."""

    __slots__ = ("errors", "transactions")

    def __init__(self, transactions: list[Transaction],
                 errors: list[IncentivesError] | None = None) -> None:
        self.transactions = transactions
        self.errors = errors if errors is not None else []


# ------------------------------------------------------------------ command line


def transaction_options(args: Any, reader: TransactionReader | None, *,
                        floats: FloatReading = "refuse", **options: Any) -> dict[str, Any]:
    """The keyword arguments of :meth:`incentives.Plan.evaluate` that the options of
    :func:`add_transaction_options` give: the files read, every transaction checked."""
    files = list(getattr(args, "transactions", None) or [])
    hierarchy = getattr(args, "hierarchy", None)
    tables = list(getattr(args, "table", None) or [])
    if not files and hierarchy is None and not tables:
        return {}
    if reader is None:
        raise UsageError("the plan declares no transactions: --transactions, --hierarchy "
                         "and --table are for plans that do")
    good: list[Transaction] = []
    bad: list[IncentivesError] = []
    for spec in files:
        g, b = read_transactions_file(reader, spec, floats=floats, **options)
        good += g
        bad += b
    # without --transactions the run says they are missing (a forgotten file is not zero pay)
    out: dict[str, Any] = {"transactions": TransactionInput(good, bad)} if files else {}
    if hierarchy is not None:
        out["hierarchy"] = _table_rows(hierarchy, "the hierarchy", floats=floats,
                                       expect=("payee",), **options)
    named: dict[str, Any] = {}
    for spec in tables:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--table {spec!r}: give NAME=FILE")
        if name in named:
            raise UsageError(f"--table {name!r} is given twice")
        named[name] = _table_rows(path, f"table {name!r}", floats=floats, expect=("key",),
                                  **options)
    if named:
        out["tables"] = named
    return out


def _table_rows(path: str, what: str, *, floats: FloatReading, expect: tuple[str, ...],
                **options: Any) -> list[Any]:
    from .sources import read_rows as source_rows
    from .sources import source_label

    rows = []
    for row in source_rows(path, floats=floats, what=what, expect=expect, **options):
        if isinstance(row, RecordError):
            raise UsageError(f"{what} ({source_label(path)}) cannot be read: {row.message}")
        rows.append(row)
    return rows
