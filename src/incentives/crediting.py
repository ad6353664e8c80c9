"""Crediting: from checked transactions to credits, by a plan's named rules, in order.

A *credit* (:class:`~incentives.runtime.Credit`) is a share of one transaction
given to one payee by one named rule. Three kinds of rule make them:

- :class:`DirectRule` (``type: direct``): the payees a transaction names itself
  (its ``sellers``, or another field), with their shares, which sum to exactly 1
  unless the rule is an ``overlay`` (each payee credited in full);
- :class:`AssignmentRule` (``type: assignment``): the payees an effective-dated
  :class:`AssignmentTable` gives a transaction's field (a customer, a territory)
  on the transaction's date;
- :class:`RollUpRule` (``type: roll_up``): the managers above the payees credited
  by earlier rules, in the :class:`Hierarchy` in force on the transaction's date.
  With ``count: once`` a manager's share of a transaction is
  ``min(1, the sum of the shares credited in their subtree)``, so a transaction
  two reps (or a rep and an overlay) share counts once; ``count: each_credit``
  takes the sum uncapped.

:func:`credit` applies the rules to a run's transactions. It does no I/O: the
tables come as rows (``Hierarchy.from_rows``, ``AssignmentTable.from_rows``),
which report their own errors. A transaction with any error gets no credit at
all (the errors name it); the others are credited.

>>> import datetime as dt
>>> from decimal import Decimal
>>> from incentives.runtime import Transaction, TransactionBook
>>> inv = Transaction("invoices", "inv-1", dt.date(2026, 5, 10), Decimal("10000"), {},
...                   sellers=parse_sellers("A:0.6;B:0.4"))
>>> credits, errors = credit([DirectRule(id="direct")], [inv], TransactionBook([inv]))
>>> [(c.payee, c.share, c.amount) for c in credits], errors
([('A', Decimal('0.6'), Decimal('6000')), ('B', Decimal('0.4'), Decimal('4000'))], [])
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import pairwise
from operator import attrgetter
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, model_serializer

from .errors import TransactionError, UsageError, did_you_mean
from .money import CONTEXT
from .policies.base import Identifier, Label, StrictModel
from .runtime import Credit, Transaction, TransactionBook, paused_gc
from .transactions import ONE, parse_sellers, payee_text, share_value

__all__ = [
    "AssignmentRule",
    "AssignmentTable",
    "CreditRule",
    "DirectRule",
    "Hierarchy",
    "HierarchyError",
    "RollUpRule",
    "TableError",
    "check_rules",
    "credit",
    "parse_sellers",
    "times",
]

#: The longest payee name or table key read here (as a record's text fields).
MAX_TEXT = 1000
#: A reference chain (a credit note of a payment of an invoice...) is followed this far.
MAX_REFERENCE_DEPTH = 32
_SELLER_FIELDS = ("sellers", "seller")


# --- the rules (what a plan's ``crediting:`` section says)


class _Rule(StrictModel):
    """Fields every crediting rule has."""

    #: unique among the plan's crediting rules; credits and measures name the rule by it
    id: Identifier
    #: shown on statements (any language)
    label: Label | None = None

    @model_serializer(mode="wrap")
    def _keep_type(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and "type" not in data:
            data = {"type": getattr(self, "type"), **data}  # noqa: B009
        return data

    @property
    def title(self) -> str:
        """The label, or the id when there is none."""
        return self.label or self.id


#: a non-empty list of names (kinds, rules)
Names = Annotated[list[Identifier], Field(min_length=1)]


class DirectRule(_Rule):
    """``type: direct``: each transaction is credited to the payees it names.

    The payees are read from ``field``: by default the transaction's
    ``sellers`` (written ``seller: A`` or ``sellers: ...``, see
    :func:`parse_sellers`); with another field name, from that field of the
    transaction. Their shares must sum to exactly 1. An ``overlay`` rule credits
    each payee in full (share 1): a share other than 1 is then an error (an
    overlay never silently drops what a file says). A transaction that names
    none and refers to another takes the payees of the one it refers to.
    """

    type: Literal["direct"] = "direct"
    #: the transaction kinds it credits (left out: every kind)
    kinds: Names | None = None
    #: where the payees are: ``sellers`` (also ``seller``) or another field's name
    field: Identifier = "sellers"
    #: each payee credited in full rather than by shares summing to 1
    overlay: bool = False


class AssignmentRule(_Rule):
    """``type: assignment``: each transaction is credited to the payees an
    assignment table gives its field ``by`` (a customer, a territory) on the
    transaction's date, with the table's shares (which sum to exactly 1 unless
    ``overlay``: then each payee is credited in full, and a table share other
    than 1 is an error). A key the table does not hold on that date credits
    nobody by this rule. A transaction lacking the field takes that of the
    transaction it refers to.
    """

    type: Literal["assignment"] = "assignment"
    #: the transaction kinds it credits (left out: every kind)
    kinds: Names | None = None
    #: the transaction field looked up in the table
    by: Identifier
    #: the name of the assignment table (given when the plan is evaluated)
    table: Identifier
    #: each payee credited in full rather than by shares summing to 1
    overlay: bool = False


class RollUpRule(_Rule):
    """``type: roll_up``: managers are credited with the transactions of their subtree.

    For each transaction, every manager within ``levels`` above a payee credited
    by the ``of`` rules (None: every earlier direct and assignment rule), in the
    hierarchy in force on the transaction's date, is credited once: with
    ``count: once`` their share is ``min(1, sum of the subtree's shares)``, with
    ``count: each_credit`` the sum itself. A manager's own credits are not rolled
    up to themselves (they roll up to the manager's managers). The credit's
    ``via`` names the subtree payees whose credits it rolls up.
    """

    type: Literal["roll_up"] = "roll_up"
    #: the earlier direct or assignment rules it rolls up (left out: all of them)
    of: Names | None = None
    #: how many levels of managers (1: the direct manager) or ``all``
    levels: Annotated[StrictInt, Field(ge=1)] | Literal["all"] = 1
    #: ``once``: each transaction at most in full per manager; ``each_credit``: every credit
    count: Literal["once", "each_credit"] = "once"


#: One crediting rule of a plan, told apart by its ``type``.
CreditRule = Annotated[DirectRule | AssignmentRule | RollUpRule, Field(discriminator="type")]

Path = tuple[str | int, ...]


def check_rules(rules: Sequence[DirectRule | AssignmentRule | RollUpRule],
                kinds: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """What is wrong with a plan's crediting rules, as ``(message, path)`` pairs.

    ``kinds`` are the plan's declared transaction kinds (name -> its spec; when a
    spec has a ``fields`` mapping, a rule's ``field`` and ``by`` are checked
    against it). Paths start at the plan (``("crediting", 2, "of", 0)``). Checks:
    ids are unique; kinds are declared (with a did-you-mean); a roll-up's ``of``
    names earlier direct or assignment rules, and it has one to roll up.

    >>> check_rules([DirectRule(id="direct", kinds=["invoice"])], {"invoices": None})
    [("unknown transaction kind 'invoice'; did you mean 'invoices'?", ('crediting', 0, 'kinds', 0))]
    """
    problems: list[tuple[str, Path]] = []
    first: dict[str, int] = {}
    base_before: list[str] = []
    for i, rule in enumerate(rules):
        at: Path = ("crediting", i)
        if rule.id in first:
            problems.append((f"crediting rule id {rule.id!r} is used twice "
                             f"(first by crediting[{first[rule.id]}])", (*at, "id")))
        else:
            first[rule.id] = i
        if isinstance(rule, RollUpRule):
            if rule.of is None:
                if not base_before:
                    problems.append(("a roll-up needs an earlier direct or assignment rule "
                                     "to roll up", at))
            else:
                for j, name in enumerate(rule.of):
                    problem = _of_problem(name, i, rules, base_before)
                    if problem:
                        problems.append((problem, (*at, "of", j)))
                    elif name in rule.of[:j]:
                        problems.append((f"{name!r} is named twice", (*at, "of", j)))
            continue
        base_before.append(rule.id)
        covered = list(kinds) if rule.kinds is None else rule.kinds
        for j, kind in enumerate(rule.kinds or ()):
            if kind not in kinds:
                hint = did_you_mean(kind, kinds) or (
                    "known kinds: " + ", ".join(sorted(kinds)) if kinds
                    else "the plan declares no transaction kinds")
                problems.append((f"unknown transaction kind {kind!r}; {hint}",
                                 (*at, "kinds", j)))
        direct = isinstance(rule, DirectRule)
        name = rule.field if isinstance(rule, DirectRule) else rule.by
        if direct and name in _SELLER_FIELDS:
            continue
        key = "field" if direct else "by"
        for kind in covered:
            problem = _field_problem(kinds, kind, name, direct)
            if problem:
                problems.append((problem, (*at, key)))
                break
    return problems


_BUILT_INS = ("id", "date", "amount", "currency", "quantity", "refers_to")


def _field_problem(kinds: Mapping[str, Any], kind: str, name: str, direct: bool) -> str | None:
    """Why transactions of ``kind`` cannot give a direct rule's payees (``direct``) or
    an assignment's key from field ``name``, or None. A field a kind lacks but takes
    from the kind it ``refers_to`` is found there. Unchecked when the kinds' specs
    do not say their fields."""
    seen: set[str] = set()
    at: str | None = kind
    declared: list[str] = []
    while at is not None and at not in seen:
        seen.add(at)
        fields = getattr(kinds.get(at), "fields", None)
        if not isinstance(fields, Mapping):
            return None
        if name in fields:
            ftype = fields[name]
            # "any": a payees field as a plan's formulas see it
            if direct and ftype not in ("payees", "text", "any"):
                return (f"field {name!r} of transaction kind {at!r} is of type {ftype}; a direct "
                        "rule reads payees from a payees or text field")
            if not direct and ftype in ("payees", "bool", "date"):
                return (f"field {name!r} of transaction kind {at!r} is of type {ftype}; an "
                        "assignment looks up a text or number field")
            return None
        declared.extend(fields)
        refers = getattr(kinds.get(at), "refers_to", None)
        at = refers if isinstance(refers, str) else None
    if name in _BUILT_INS:
        return (f"{name!r} is a built-in field; a direct rule reads payees from a payees or "
                "text field") if direct else None
    near = did_you_mean(name, [*declared, *_BUILT_INS])
    return f"transaction kind {kind!r} has no field {name!r}" + (f"; {near}" if near else "")


def _of_problem(name: str, i: int, rules: Sequence[Any], base_before: list[str]) -> str | None:
    if name in base_before:
        return None
    ids = [r.id for r in rules]
    if name not in ids:
        hint = did_you_mean(name, base_before)
        return f"{name!r} is not an earlier crediting rule" + (f"; {hint}" if hint else "")
    where = ids.index(name)
    if isinstance(rules[where], RollUpRule):
        return f"{name!r} is a roll-up; a roll-up rolls up direct and assignment rules"
    if where >= i:
        return f"{name!r} comes after this roll-up; a roll-up rolls up earlier rules"
    return None  # pragma: no cover - every earlier non-roll-up is in base_before


def _quoted(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _blank(value: Any) -> bool:
    """None, blank text, an empty list or mapping, or a DataFrame's missing value."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, Mapping)):
        return not value
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _day(value: Any, what: str) -> dt.date | None:
    """A row's date: ISO text or a date; blank is open (None)."""
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise ValueError(f"{what} {value.isoformat()} has a time of day; give a date")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what} {_quoted(value)} is not a date like 2026-05-03")


# --- effective-dated tables


class HierarchyError(ValueError):
    """The hierarchy cannot say who manages whom on a day: a cycle (``payees`` are
    its members, in order) or a payee whose rows were refused."""

    def __init__(self, message: str, payees: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.payees = payees


class TableError(ValueError):
    """An assignment table cannot say who a key goes to: its rows were refused."""


_OPEN_START = dt.date.min
_OPEN_END = dt.date.max


def _bounds(intervals: Iterable[tuple[dt.date, dt.date]]) -> list[dt.date]:
    """The days on which something starts or stops: between two of them nothing changes."""
    days: set[dt.date] = set()
    for start, end in intervals:
        days.add(start)
        if end != _OPEN_END:
            days.add(end + dt.timedelta(days=1))
    return sorted(days)


def _row_interval(row: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    """:func:`_interval`, a problem with it named on the row's ``from`` field."""
    try:
        return _interval(row)
    except _FieldError:
        raise
    except ValueError as exc:
        raise _FieldError(str(exc), "from") from None


def _interval(row: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    start = _day(row.get("from"), "from")
    try:
        end = _day(row.get("to"), "to")
    except ValueError as exc:
        raise _FieldError(str(exc), "to") from None
    start = start or _OPEN_START
    end = end or _OPEN_END
    if start > end:
        raise _FieldError(f"from {start.isoformat()} is after to {end.isoformat()}", "to")
    return start, end


class _FieldError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _check_keys(row: Any, known: tuple[str, ...], what: str) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise _FieldError(f"{what} row must be an object with " + ", ".join(known)
                          + f", not {type(row).__name__}", "")
    for key in row:
        if key not in known:
            hint = did_you_mean(str(key), known) or ("known keys: " + ", ".join(known))
            raise _FieldError(f"unknown key {_quoted(key)}; {hint}", str(key))
    return row


def _span(start: dt.date, end: dt.date) -> str:
    return (f"{'open' if start == _OPEN_START else start.isoformat()} to "
            f"{'open' if end == _OPEN_END else end.isoformat()}")


class Hierarchy:
    """Who manages whom, and when: rows ``{payee, manager, from, to}``.

    ``from`` and ``to`` are inclusive ISO dates (or dates); a blank one is open.
    A blank ``manager`` says the payee has no manager then (the top). Build it
    with :meth:`from_rows`, which reports bad rows; a payee with a refused row
    cannot be rolled up through (:meth:`chain` raises :class:`HierarchyError`),
    so no credit is silently mis-routed.

    >>> h, errors = Hierarchy.from_rows([
    ...     {"payee": "A", "manager": "M", "to": "2026-05-31"},
    ...     {"payee": "A", "manager": "N", "from": "2026-06-01"},
    ...     {"payee": "M", "manager": "D"}])
    >>> h.chain("A", dt.date(2026, 5, 10), "all"), h.chain("A", dt.date(2026, 6, 1), 1), errors
    (('M', 'D'), ('N',), [])
    """

    __slots__ = ("_bounds", "_broken", "_chains", "_cycles", "_rows", "payees")

    def __init__(self, rows: Mapping[str, Sequence[tuple[dt.date, dt.date, str | None]]],
                 broken: Mapping[str, str] | None = None) -> None:
        #: payee -> (the days its rows start, its rows ``(from, to, manager)``) by start
        self._rows = {p: ([r[0] for r in rs], list(rs))
                      for p, rs in ((p, sorted(rs, key=lambda r: r[0])) for p, rs in rows.items())}
        self._broken = dict(broken or {})
        self._bounds = _bounds((r[0], r[1]) for rs in rows.values() for r in rs)
        self._chains: dict[tuple[str, int, int | None], tuple[str, ...]] = {}
        self._cycles: dict[int, dict[str, tuple[str, ...] | None]] = {}
        #: everyone the hierarchy names, as a payee or as a manager, on any day
        self.payees: frozenset[str] = frozenset(
            {*rows, *(r[2] for rs in rows.values() for r in rs if r[2] is not None),
             *self._broken})

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> tuple[Hierarchy, list[TransactionError]]:
        """Read rows ``{payee, manager, from, to}``; return the hierarchy and the
        errors (kind ``hierarchy``, id the payee, with the field): a missing payee
        or ``manager`` key, an unknown key, a bad date, ``from`` after ``to``, a
        payee as their own manager, two rows of one payee that overlap."""
        errors: list[TransactionError] = []
        found: dict[str, list[tuple[dt.date, dt.date, str | None]]] = {}
        broken: dict[str, str] = {}
        keys = ("payee", "manager", "from", "to")
        for i, raw in enumerate(rows):
            payee: str | None = None
            try:
                row = _check_keys(raw, keys, "a hierarchy")
                if _blank(row.get("payee")):
                    raise _FieldError("missing payee", "payee")
                try:
                    payee = payee_text(row["payee"])
                except ValueError as exc:
                    raise _FieldError(str(exc), "payee") from None
                if "manager" not in row:
                    raise _FieldError("missing manager (leave it blank for a payee with no "
                                      "manager)", "manager")
                try:
                    manager = (None if _blank(row["manager"])
                               else payee_text(row["manager"], "manager"))
                except ValueError as exc:
                    raise _FieldError(str(exc), "manager") from None
                if manager == payee:
                    raise _FieldError(f"{payee!r} is their own manager", "manager")
                start, end = _row_interval(row)
            except _FieldError as exc:
                errors.append(TransactionError(str(exc), kind="hierarchy", id=payee,
                                               field=exc.field or None, index=i))
                if payee is not None:
                    broken.setdefault(payee, str(exc))
                continue
            found.setdefault(payee, []).append((start, end, manager))
        for payee, prows in found.items():
            prows.sort(key=lambda r: (r[0], r[1]))
            for before, after in pairwise(prows):
                if after[0] <= before[1]:
                    message = (f"rows overlap: {_span(before[0], before[1])} and "
                               f"{_span(after[0], after[1])}")
                    errors.append(TransactionError(message, kind="hierarchy", id=payee,
                                                   field="from"))
                    broken.setdefault(payee, message)
                    break
        return cls(found, broken), errors

    def manager_of(self, payee: str, day: dt.date) -> str | None:
        """``payee``'s manager on ``day``, or ``None`` (no row then, or the top)."""
        found = self._rows.get(payee)
        if found is None:
            return None
        starts, rows = found
        i = bisect_right(starts, day) - 1
        if i < 0:
            return None
        row = rows[i]
        return row[2] if row[1] >= day else None

    def chain(self, payee: str, day: dt.date, levels: int | Literal["all"] = "all") -> tuple[str, ...]:
        """The managers above ``payee`` on ``day``, nearest first, at most ``levels``.

        Raises :class:`HierarchyError` when a cycle lies above ``payee`` that day
        (whatever ``levels``: the hierarchy is wrong), or when the rows of a payee
        whose manager is read were refused. Cached per payee and stretch of days
        over which no row starts or ends.
        """
        seg = bisect_right(self._bounds, day)
        depth = None if levels == "all" else levels
        key = (payee, seg, depth)
        found = self._chains.get(key)
        if found is None:
            cycle = self._cycle_above(payee, day, seg)
            if cycle is not None:
                raise HierarchyError(
                    f"hierarchy cycle on {day.isoformat()}: "
                    + " -> ".join(repr(p) for p in (*cycle, cycle[0])), cycle)
            managers: list[str] = []
            p: str | None = payee
            while p is not None and (depth is None or len(managers) < depth):
                if p in self._broken:
                    raise HierarchyError(f"the hierarchy rows of {p!r} were refused "
                                         f"({self._broken[p]})", (p,))
                p = self.manager_of(p, day)
                if p is not None:
                    managers.append(p)
            found = self._chains[key] = tuple(managers)
        return found

    def _cycle_above(self, payee: str, day: dt.date, seg: int) -> tuple[str, ...] | None:
        """The cycle met walking up from ``payee`` on ``day`` (its members), or None;
        memoised per stretch of days, so each payee is walked once per stretch."""
        known = self._cycles.setdefault(seg, {})
        if payee in known:
            return known[payee]
        path: list[str] = []
        index: dict[str, int] = {}
        p: str | None = payee
        result: tuple[str, ...] | None = None
        while p is not None:
            if p in known:
                result = known[p]
                break
            if p in index:
                result = tuple(path[index[p]:])
                break
            index[p] = len(path)
            path.append(p)
            p = self.manager_of(p, day)
        for q in path:
            known[q] = result
        return result


class AssignmentTable:
    """An effective-dated assignment of keys (customers, territories) to payees:
    rows ``{key, payee, share, from, to}`` (``share`` defaults to 1; dates are
    inclusive, blank is open). Build it with :meth:`from_rows`.

    >>> t, errors = AssignmentTable.from_rows("territories", [
    ...     {"key": "north", "payee": "A", "to": "2026-06-30"},
    ...     {"key": "north", "payee": "B", "from": "2026-07-01"}])
    >>> t.payees_on("north", dt.date(2026, 7, 1)), t.payees_on("south", dt.date(2026, 7, 1))
    ((('B', Decimal('1')),), ())
    """

    __slots__ = ("_bounds", "_broken", "_cache", "_rows", "name")

    def __init__(self, name: str,
                 rows: Mapping[str, Sequence[tuple[dt.date, dt.date, str, Decimal]]],
                 broken: Mapping[str, str] | None = None) -> None:
        self.name = name
        self._rows = {k: sorted(rs, key=lambda r: (r[2], r[0])) for k, rs in rows.items()}
        self._broken = dict(broken or {})
        self._bounds = _bounds((r[0], r[1]) for rs in rows.values() for r in rs)
        self._cache: dict[tuple[str, int], tuple[tuple[str, Decimal], ...]] = {}

    @classmethod
    def from_rows(cls, name: str, rows: Iterable[Mapping[str, Any]]
                  ) -> tuple[AssignmentTable, list[TransactionError]]:
        """Read rows ``{key, payee, share, from, to}``; return the table and the
        errors (kind ``table NAME``, id the key, with the field): a missing key or
        payee, an unknown column, a share that is not a number above 0 (a float,
        as a DataFrame gives, is read from its shortest repr), a
        bad date, ``from`` after ``to``, two rows of one key and payee that overlap.
        A key with a refused row credits nobody: :meth:`payees_on` raises
        :class:`TableError` for it."""
        errors: list[TransactionError] = []
        found: dict[str, list[tuple[dt.date, dt.date, str, Decimal]]] = {}
        broken: dict[str, str] = {}
        what = f"table {name}"
        keys = ("key", "payee", "share", "from", "to")
        for i, raw in enumerate(rows):
            key: str | None = None
            try:
                row = _check_keys(raw, keys, "an assignment")
                for field in ("key", "payee"):
                    if _blank(row.get(field)):
                        raise _FieldError(f"missing {field}", field)
                try:
                    key = payee_text(row["key"], "key")
                except ValueError as exc:
                    raise _FieldError(str(exc), "key") from None
                try:
                    payee = payee_text(row["payee"])
                except ValueError as exc:
                    raise _FieldError(str(exc), "payee") from None
                try:
                    share = (ONE if _blank(row.get("share"))
                             else share_value(row["share"], payee))
                except ValueError as exc:
                    raise _FieldError(str(exc), "share") from None
                start, end = _row_interval(row)
            except _FieldError as exc:
                errors.append(TransactionError(str(exc), kind=what, id=key,
                                               field=exc.field or None, index=i))
                if key is not None:
                    broken.setdefault(key, str(exc))
                continue
            found.setdefault(key, []).append((start, end, payee, share))
        for key, krows in found.items():
            krows.sort(key=lambda r: (r[2], r[0], r[1]))
            for before, after in pairwise(krows):
                if before[2] == after[2] and after[0] <= before[1]:
                    message = (f"two rows of payee {before[2]!r} overlap: "
                               f"{_span(before[0], before[1])} and {_span(after[0], after[1])}")
                    errors.append(TransactionError(message, kind=what, id=key, field="from"))
                    broken.setdefault(key, message)
                    break
        return cls(name, found, broken), errors

    def payees_on(self, key: str, day: dt.date) -> tuple[tuple[str, Decimal], ...]:
        """The ``(payee, share)`` pairs ``key`` goes to on ``day``, by payee (empty
        when none); :class:`TableError` when a row of ``key`` was refused."""
        if key in self._broken:
            raise TableError(f"table {self.name!r}: the rows of key {key!r} were refused "
                             f"({self._broken[key]})")
        seg = bisect_right(self._bounds, day)
        found = self._cache.get((key, seg))
        if found is None:
            found = self._cache[(key, seg)] = tuple(
                (r[2], r[3]) for r in self._rows.get(key, ()) if r[0] <= day <= r[1])
        return found


# --- crediting


_DIRECT, _ASSIGN, _ROLL = 0, 1, 2

#: The plan's arithmetic, where a credited amount that would be rounded is an error
_EXACT = CONTEXT.copy()
_EXACT.traps[decimal.Inexact] = True


def times(amount: Decimal, share: Decimal) -> Decimal:
    """``amount x share`` exactly, written to the amount's places when it has no more
    digits than that (``10000 x 0.6`` is ``6000``, ``10000.00 x 0.6`` is ``6000.00``;
    ``333.33 x 0.5`` stays ``166.665``).

    >>> times(Decimal("10000"), Decimal("0.6")), times(Decimal("333.33"), Decimal("0.5"))
    (Decimal('6000'), Decimal('166.665'))
    """
    exact = amount * share
    places = amount.as_tuple().exponent
    found = exact.as_tuple()
    drop = places - found.exponent  # type: ignore[operator]
    if drop > 0 and not any(found.digits[-drop:]):
        return exact.quantize(amount)  # exact: only zeros are dropped
    return exact


def credit(
    rules: Sequence[DirectRule | AssignmentRule | RollUpRule],
    transactions: Iterable[Transaction],
    book: TransactionBook,
    *,
    hierarchy: Hierarchy | None = None,
    tables: Mapping[str, AssignmentTable] | None = None,
    known_payees: Iterable[str] | None = None,
    refers_to: Mapping[str, str] | None = None,
) -> tuple[list[Credit], list[TransactionError]]:
    """Credit ``transactions`` by ``rules`` (in order); return the credits and the errors.

    ``book`` holds every transaction of the run: a transaction lacking its payees
    (or an assignment rule's field) takes those of the one its ``refers_to``
    names, found there (``refers_to`` maps a kind to the kind it refers to, as
    the plan declares; without it the book is searched for the one transaction
    with that id). ``hierarchy`` is needed by roll-up rules, ``tables`` (name ->
    :class:`AssignmentTable`) by assignment rules: a missing one is a
    :class:`~incentives.errors.UsageError`. With ``known_payees``, a credit to a
    payee neither in it nor in the hierarchy is an error.

    Each credit's ``amount`` is exactly ``transaction.amount * share``. The
    errors (:class:`~incentives.errors.TransactionError`) name the transaction:
    shares not summing to 1 (or not 1 in an overlay), an unknown payee, a
    reference to a missing transaction, a hierarchy cycle, a transaction of a
    kind some rule credits that no rule credited ("credited to nobody"). A
    transaction with an error gets no credit at all, and so does one whose
    credited amount would need more than the arithmetic's 34 significant digits
    (a credit is never rounded).

    Credits and errors come in the order of the transactions' ``(date, kind,
    id)``, then of the rules, whatever the order ``transactions`` came in;
    within a rule, a direct rule's in the order the transaction names its
    payees, an assignment's by payee, a roll-up's nearest manager first (then by
    name).
    """
    compiled = _compile(rules, hierarchy, tables or {})
    covered_all = any(c[0] != _ROLL and c[2] is None for c in compiled)
    covered = {k for c in compiled if c[0] != _ROLL and c[2] for k in c[2]}
    known: set[str] | None = None
    if known_payees is not None:
        known = set(known_payees)
        if hierarchy is not None:
            known |= hierarchy.payees
    refs = _References(book, refers_to)
    hints: dict[str, str | None] = {}
    credits: list[Credit] = []
    errors: list[TransactionError] = []
    ordered = _in_order(transactions)
    new = tuple.__new__  # a Credit made without NamedTuple's Python-level __new__
    with paused_gc(), decimal.localcontext(_EXACT):
        for t in ordered:
            start = len(credits)  # this transaction's credits are credits[start:]
            problems: list[TransactionError] | None = None
            try:
                for c in compiled:
                    tag = c[0]
                    if tag == _ROLL:
                        if problems is None and len(credits) > start:
                            problem = _roll_up(c, t, credits, start, hierarchy,
                                               _credit_day(t, refs))
                            if problem is not None:
                                problems = [problem]
                        continue
                    kinds = c[2]
                    if kinds is not None and t.kind not in kinds:
                        continue
                    rule_id, field, overlay = c[1], c[3], c[4]
                    try:
                        if tag == _DIRECT:
                            payees = (t.sellers if c[6] and t.sellers
                                      else _direct_payees(t, field, refs))
                        else:
                            payees = _assigned_payees(t, field, c[5], refs)
                    except (ValueError, _Refused) as exc:
                        # a reference that cannot be followed is the reference's fault
                        problems = [*(problems or ()), TransactionError(
                            str(exc), kind=t.kind, id=t.id,
                            field="refers_to" if isinstance(exc, _Refused) else field)]
                        continue
                    if not payees:
                        continue
                    if len(payees) == 1:
                        payee, share = payees[0]
                        if share != ONE:
                            problems = [*(problems or ()),
                                        _share_error(t, field, payees, overlay)]
                        elif known is not None and payee not in known:
                            problems = [*(problems or ()),
                                        _unknown(t, field, payee, known, hints)]
                        else:
                            # x * 1 is x, digit for digit: no multiplication for the usual share
                            credits.append(new(Credit, (
                                payee, t, share, rule_id,
                                t.amount if share is ONE else times(t.amount, share), ())))
                        continue
                    if overlay:
                        bad = any(s != ONE for _, s in payees)
                    else:
                        bad = sum(s for _, s in payees) != ONE
                    if bad:
                        problems = [*(problems or ()), _share_error(t, field, payees, overlay)]
                        continue
                    if known is not None:
                        unknown = [_unknown(t, field, p, known, hints)
                                   for p, _ in payees if p not in known]
                        if unknown:
                            problems = [*(problems or ()), *unknown]
                            continue
                    amount = t.amount
                    for p, s in payees:
                        credits.append(new(Credit, (p, t, s, rule_id, times(amount, s), ())))
            except decimal.Inexact:
                problems = [*(problems or ()), TransactionError(
                    "a credited amount (amount x share) or a sum of shares would need more "
                    f"than {CONTEXT.prec} significant digits", kind=t.kind, id=t.id)]
            if problems is not None:
                del credits[start:]
                errors.extend(problems)
            elif len(credits) == start and (covered_all or t.kind in covered):
                errors.append(TransactionError(
                    "credited to nobody: no crediting rule found a payee for it",
                    kind=t.kind, id=t.id, field=_nobody_field(compiled, t.kind)))
    return credits, errors


def _in_order(transactions: Iterable[Transaction]) -> list[Transaction]:
    """``transactions`` by date, kind and id: three stable sorts on one attribute each,
    three times faster than one sort on ``(date, kind, id)`` tuples."""
    ordered = sorted(transactions, key=_ID)
    ordered.sort(key=_KIND)
    ordered.sort(key=_DATE)
    return ordered


_ID, _KIND, _DATE = attrgetter("id"), attrgetter("kind"), attrgetter("date")


_Compiled = tuple[Any, ...]


def _compile(rules: Sequence[DirectRule | AssignmentRule | RollUpRule],
             hierarchy: Hierarchy | None,
             tables: Mapping[str, AssignmentTable]) -> list[_Compiled]:
    """The rules as plain tuples, checked against what the evaluation was given:
    ``(tag, id, kinds, field, overlay, table)`` or ``(tag, id, of, levels, once)``."""
    out: list[_Compiled] = []
    base: list[str] = []
    for rule in rules:
        if isinstance(rule, DirectRule):
            kinds = None if rule.kinds is None else frozenset(rule.kinds)
            out.append((_DIRECT, rule.id, kinds, rule.field, rule.overlay, None,
                        rule.field in _SELLER_FIELDS))
            base.append(rule.id)
        elif isinstance(rule, AssignmentRule):
            table = tables.get(rule.table)
            if table is None:
                given = ", ".join(sorted(tables)) or "none"
                raise UsageError(f"assignment rule {rule.id!r} reads table {rule.table!r}, "
                                 f"which was not given (tables given: {given})")
            kinds = None if rule.kinds is None else frozenset(rule.kinds)
            out.append((_ASSIGN, rule.id, kinds, rule.by, rule.overlay, table))
            base.append(rule.id)
        else:
            if hierarchy is None:
                raise UsageError(f"roll-up rule {rule.id!r} needs a hierarchy "
                                 "(rows payee, manager, from, to)")
            of = base if rule.of is None else rule.of
            missing = [name for name in of if name not in base]
            if missing:
                raise UsageError(f"roll-up rule {rule.id!r} rolls up {missing[0]!r}, "
                                 "which is not an earlier direct or assignment rule")
            if not of:
                raise UsageError(f"roll-up rule {rule.id!r} has no earlier rule to roll up")
            levels = "all" if rule.levels == "all" else rule.levels
            out.append((_ROLL, rule.id, frozenset(of), levels, rule.count == "once"))
    return out


class _Refused(Exception):
    """A reference that cannot be followed (message for the transaction's error)."""


class _References:
    """Follows a transaction's ``refers_to`` to the transaction it names."""

    __slots__ = ("_book", "_kinds", "_targets")

    def __init__(self, book: TransactionBook, targets: Mapping[str, str] | None) -> None:
        self._book = book
        self._targets = targets or {}
        self._kinds: list[str] | None = None

    def target(self, t: Transaction) -> Transaction:
        ref = t.refers_to
        assert ref is not None
        kind = self._targets.get(t.kind)
        if kind is not None:
            found = self._book.get(kind, ref)
            if found is None:
                raise _Refused(f"refers to {kind} {ref!r}, which is not in the run")
            return found
        if self._kinds is None:
            self._kinds = sorted({k for k, _ in self._book.by_key})
        hits = [f for f in (self._book.get(k, ref) for k in self._kinds) if f is not None]
        if not hits:
            raise _Refused(f"refers to {ref!r}, which is not in the run")
        if len(hits) > 1:
            raise _Refused(f"refers to {ref!r}, which names transactions of "
                           + " and ".join(h.kind for h in hits))
        return hits[0]

    def follow(self, t: Transaction, read: Callable[[Transaction], Any]) -> Any:
        """``read(t)``, or when it is None that of the transaction ``t`` refers to
        (and so on up the references); None when none has it."""
        seen = {t.key}
        for _ in range(MAX_REFERENCE_DEPTH):
            value = read(t)
            if value is not None or t.refers_to is None:
                return value
            t = self.target(t)
            if t.key in seen:
                raise _Refused("its references go round in a circle")
            seen.add(t.key)
        raise _Refused(f"its references go more than {MAX_REFERENCE_DEPTH} deep")


def _own_payees(field: str) -> Callable[[Transaction], tuple[tuple[str, Decimal], ...] | None]:
    if field in _SELLER_FIELDS:
        def read(t: Transaction) -> tuple[tuple[str, Decimal], ...] | None:
            if t.sellers is not None:
                return t.sellers or None
            for name in _SELLER_FIELDS:
                value = t.fields.get(name)
                if not _blank(value):
                    return parse_sellers(value)
            return None
    else:
        def read(t: Transaction) -> tuple[tuple[str, Decimal], ...] | None:
            value = t.fields.get(field)
            return None if _blank(value) else parse_sellers(value)
    return read


_READERS: dict[str, Callable[[Transaction], tuple[tuple[str, Decimal], ...] | None]] = {}


def _direct_payees(t: Transaction, field: str,
                   refs: _References) -> tuple[tuple[str, Decimal], ...] | None:
    if field in _SELLER_FIELDS and t.sellers:
        return t.sellers  # the usual case, read once by the transaction reader
    read = _READERS.get(field)
    if read is None:
        read = _READERS[field] = _own_payees(field)
    found: tuple[tuple[str, Decimal], ...] | None = refs.follow(t, read)
    return found


def _assigned_payees(t: Transaction, field: str, table: AssignmentTable,
                     refs: _References) -> tuple[tuple[str, Decimal], ...] | None:
    value = refs.follow(t, lambda x: None if _blank(x.fields.get(field)) else x.fields[field])
    if value is None:
        return None
    try:
        key = payee_text(value, field)
    except ValueError as exc:
        raise ValueError(f"{exc} (looked up in table {table.name!r})") from None
    try:
        return table.payees_on(key, _credit_day(t, refs))
    except TableError as exc:
        raise ValueError(str(exc)) from None


def _share_error(t: Transaction, field: str, payees: Sequence[tuple[str, Decimal]],
                 overlay: bool) -> TransactionError:
    if overlay:
        payee, share = next((p, s) for p, s in payees if s != ONE)
        message = (f"an overlay credits each payee in full, but {payee!r} has share {share}")
    else:
        total = sum((s for _, s in payees), Decimal(0))
        message = f"shares sum to {total}, not 1"
    return TransactionError(message, kind=t.kind, id=t.id, field=field)


def _unknown(t: Transaction, field: str, payee: str, known: set[str],
             hints: dict[str, str | None]) -> TransactionError:
    if payee not in hints:
        # a hint costs a scan of every payee: only for the first few unknown names
        hints[payee] = did_you_mean(payee, known) if len(hints) < 10 else None
    hint = hints[payee]
    return TransactionError(
        f"unknown payee {payee!r}: no record in any period and not in the hierarchy"
        + (f"; {hint}" if hint else ""), kind=t.kind, id=t.id, field=field)


def _nobody_field(compiled: list[_Compiled], kind: str) -> str | None:
    for c in compiled:
        if c[0] != _ROLL and (c[2] is None or kind in c[2]):
            return str(c[3])
    return None


def _credit_day(t: Transaction, refs: _References) -> dt.date:
    """The day a transaction is credited as of: its own, or for one that refers to
    another (a credit note), that of the transaction it reverses, so that it is
    credited to the managers and territory owners its invoice was credited to."""
    if t.refers_to is None:
        return t.date
    found = refs.follow(t, lambda x: x.date if x.refers_to is None else None)
    return found if isinstance(found, dt.date) else t.date


def _roll_up(c: _Compiled, t: Transaction, credits: list[Credit], start: int,
             hierarchy: Hierarchy | None, day: dt.date) -> TransactionError | None:
    """Append rule ``c``'s roll-up credits of ``t`` to ``credits``, from its credits
    ``credits[start:]`` by the rules rolled up, along the hierarchy in force on
    ``day``; or return why it cannot."""
    assert hierarchy is not None
    _, rule_id, of, levels, once = c
    amount = t.amount
    if len(credits) - start == 1:  # the usual case: one payee, no sums
        b = credits[start]
        if b.rule not in of:
            return None
        try:
            managers = hierarchy.chain(b.payee, day, levels)
        except HierarchyError as exc:
            return _cycle_error(t, exc)
        share = b.share
        if share is not ONE and once and share >= ONE:
            share = ONE
        credited = amount if share is ONE else times(amount, share)
        via = (b.payee,)
        new = tuple.__new__
        for m in managers:
            credits.append(new(Credit, (m, t, share, rule_id, credited, via)))
        return None
    sums: dict[str, Decimal] = {}
    vias: dict[str, set[str]] = {}
    nearest: dict[str, int] = {}
    for b in credits[start:]:
        if b.rule not in of:
            continue
        try:
            managers = hierarchy.chain(b.payee, day, levels)
        except HierarchyError as exc:
            return _cycle_error(t, exc)
        for level, m in enumerate(managers):
            if m in sums:
                sums[m] += b.share
                vias[m].add(b.payee)
                nearest[m] = min(nearest[m], level)
            else:
                sums[m] = b.share
                vias[m] = {b.payee}
                nearest[m] = level
    for m in sorted(sums, key=lambda m: (nearest[m], m)):
        share = sums[m]
        if share == ONE or (once and share > ONE):
            share = ONE
        credits.append(Credit(m, t, share, rule_id,
                              amount if share is ONE else times(amount, share),
                              tuple(sorted(vias[m]))))
    return None


def _cycle_error(t: Transaction, exc: HierarchyError) -> TransactionError:
    return TransactionError(f"cannot roll up: {exc}", kind=t.kind, id=t.id)
