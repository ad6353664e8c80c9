"""Performance records: from dicts, JSON, JSONL and CSV, checked against a plan.

A record is one payee in one period::

    {"payee": "m-017", "period": "2026-05", "group": "fuzhou-key-accounts",
     "attributes": {"employment": "contract", "days_worked": 18},
     "metrics": {"traffic_revenue": "48000.50", "new_ipvpn": 1},
     "events": {"lost_customers": [{"id": "c-88", "monthly_value": 1200,
                "reason": "competitor", "acquired": "2026-02-10", "lost": "2026-05-03"}]}}

Numbers may be JSON numbers or strings; both are read as exact decimals (JSON
is parsed with ``parse_float=Decimal``; no float is ever made). A flat mapping
(a CSV row, a DataFrame row) puts the declared inputs at the top level.

A missing required field, a blank, a non-number, NaN or an infinity is a
:class:`~incentives.errors.RecordError` naming the payee, period and field:
never a zero.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import itertools
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import CONTROL_CHARACTERS, IncentivesError, RecordError, UsageError, did_you_mean
from .fileio import MAX_FILE_BYTES, MAX_TEXT_FIELD, add_file_options, file_options, quote
from .inputs import AttributeSpec, FieldLimits, Inputs, MetricSpec
from .money import (
    CONTEXT,
    MAX_DIGITS,
    MAX_NUMBER_TEXT,
    MAX_PLACES,
    SMALL,
    plain,
    range_problem,
    short,
    to_decimal,
)
from .periods import parse_period
from .runtime import Record

__all__ = ["MAX_ERRORS", "MAX_FILE_BYTES", "MAX_LINE", "MAX_UNREADABLE", "RecordReader",
           "add_file_options", "file_options", "iter_raw_records", "read_records_file"]

_TOP = ("payee", "period", "group")
_NESTED = ("metrics", "attributes", "events")
_MISSING = object()
_PLUS = CONTEXT.plus
#: the least ``adjusted()`` an input number may have (:data:`money.MAX_PLACES`)
_MINA = -MAX_PLACES
_NESTED_KEYS = frozenset((*_TOP, *_NESTED))
_control = CONTROL_CHARACTERS.search
_GOOD_PERIODS: set[str] = set()


#: a number as text that needs no check but its bounds: ASCII digits, at most 18 before
#: the point (below 10**18) and 16 after it (34 digits in all: the precision holds it)
_NUMBER_TEXT = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{0,16})?").fullmatch


class _Slow(Exception):
    """The fast path met something it leaves to the full check."""


def too_many_errors(limit: int) -> UsageError:
    """The error that stops a reading past ``limit`` bad records."""
    return UsageError(f"more than {limit:,} records failed: stopped (is it the right "
                      "records file for this plan?)")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (:data:`CONTROL_CHARACTERS`); cheap
    for the usual text (``isprintable`` first)."""
    return not text.isprintable() and _control(text) is not None


def _control_message(text: str) -> str:
    found = _control(text)
    code = ord(found.group()) if found is not None else 0
    return (f"control character U+{code:04X} in {_quote(text)}: ids and text may not hold "
            "control characters")


class RecordReader:
    """Checks raw records against a plan's declared inputs and converts them.

    ``unknown="error"`` (the default) reports a field the plan does not declare
    (with a did-you-mean); ``"ignore"`` drops such fields.
    """

    def __init__(self, inputs: Inputs, *, unknown: str = "error",
                 default_period: str | None = None) -> None:
        self.inputs = inputs
        self.unknown = unknown
        self.default_period = default_period
        #: past this many bad records, :meth:`read_all` stops with a UsageError (the
        #: command line sets :data:`MAX_ERRORS`, so that a file that is not records
        #: ends); None: no limit
        self.max_errors: int | None = None
        self.metric_columns = {spec.column or name: name for name, spec in inputs.metrics.items()}
        self.attr_columns = {spec.column or name: name for name, spec in inputs.attributes.items()}
        # a flat row's column is a metric's before an attribute's, as in _read
        flat_columns = {**{k: (False, v) for k, v in self.attr_columns.items()},
                        **{k: (True, v) for k, v in self.metric_columns.items()}}
        plain = (all(k == v for k, v in self.metric_columns.items())
                 and all(k == v for k, v in self.attr_columns.items()))
        # well-formed records are read by a function written for these inputs; what it
        # leaves (raising _Slow) takes the full check, _read
        self._quick: Callable[[dict[str, Any]], Record] = _fast_reader(
            inputs, default_period=default_period, columns=flat_columns, nested=plain,
            events=self._checked_events)

    # ------------------------------------------------------------------
    def read(self, raw: Any, index: int | None = None) -> Record:
        """Check one raw record and return it converted, or raise :class:`RecordError`.

        Well-formed records take a fast path prepared once per plan; anything
        unusual (a blank, a bad value, an unknown key) takes the full check,
        which gives the same record or the located error.
        """
        if type(raw) is dict:
            try:
                return self._quick(raw)
            except _Slow:
                pass
        return self._read(raw, index)

    def read_all(self, raws: Iterable[Any], records: list[Record],
                 errors: list[IncentivesError]) -> None:
        """:meth:`read` each raw record into ``records``, or its error into ``errors``
        (a raw record that is already an error, as a JSONL line that is not JSON, too).

        More than :attr:`max_errors` errors stop the reading with a :class:`UsageError`.
        """
        quick = self._quick
        limit = len(errors) + (self.max_errors if self.max_errors is not None else 1 << 62)
        for i, raw in enumerate(raws):
            if type(raw) is dict:
                try:
                    records.append(quick(raw))
                    continue
                except _Slow:
                    pass
                except RecordError as exc:
                    errors.append(exc)
                    if len(errors) > limit:
                        raise too_many_errors(self.max_errors or 0) from None
                    continue
            elif isinstance(raw, IncentivesError):
                errors.append(raw)
                if len(errors) > limit:
                    raise too_many_errors(self.max_errors or 0)
                continue
            try:
                records.append(self._read(raw, i))
            except RecordError as exc:
                errors.append(exc)
                if len(errors) > limit:
                    raise too_many_errors(self.max_errors or 0) from None

    def _checked_events(self, given: dict[str, Any], payee: str,
                        period: str) -> dict[str, list[dict[str, Any]]]:
        """:meth:`_events` for the fast path: a bad event is a located RecordError."""

        def fail(message: str, field: str) -> RecordError:
            return RecordError(message, payee=payee, period=period, field=field)

        return self._events(given, fail)

    def _read(self, raw: Any, index: int | None = None) -> Record:
        """The full check of one raw record (every error located)."""
        if isinstance(raw, Record):
            raw = {"payee": raw.payee, "period": raw.period, "group": raw.group,
                   "attributes": raw.attributes, "metrics": raw.metrics, "events": raw.events}
        if not isinstance(raw, Mapping):
            raise RecordError(f"a record is a mapping, not {type(raw).__name__}", index=index)
        payee_raw = raw.get("payee")
        if _blank(payee_raw):
            raise RecordError("missing payee", field="payee", index=index)
        if isinstance(payee_raw, (Decimal, int)) and not isinstance(payee_raw, bool):
            payee_raw = _as_text(payee_raw) if isinstance(payee_raw, Decimal) else str(payee_raw)
        if not isinstance(payee_raw, str):
            raise RecordError("payee must be text", field="payee", index=index)
        if _has_control(payee_raw):
            raise RecordError(_control_message(payee_raw).replace(
            f" in {_quote(payee_raw)}", " in the payee"), payee=_safe(payee_raw.strip()),
            field="payee")
        payee = payee_raw.strip()
        if len(payee) > MAX_TEXT_FIELD:
            raise RecordError(f"payee is too long ({len(payee)} characters, at most "
                              f"{MAX_TEXT_FIELD})", payee=payee[:40] + "...", field="payee")
        period = raw.get("period")
        if _blank(period):
            period = self.default_period
        if period is None:
            raise RecordError("missing period", payee=payee, field="period")
        period = str(period)
        if _has_control(period):
            raise RecordError(_control_message(period), payee=payee, field="period")
        period = period.strip()
        if len(period) > 20:  # no period is this long: quote only its start
            raise RecordError(f"period {_quote(period)} is not YYYY-MM, YYYY-Qn or YYYY",
                              payee=payee, field="period")
        try:
            parse_period(period)
        except ValueError as exc:
            raise RecordError(str(exc), payee=payee, field="period") from None
        group = raw.get("group")

        def fail(message: str, field: str) -> RecordError:
            return RecordError(message, payee=payee, period=period, field=field)

        group = self._group(group, fail)

        if "metrics" in raw or "attributes" in raw:
            for k in raw:
                if k not in _TOP and k not in _NESTED:
                    raise fail(f"unknown key {_quote(k)}" + self._hint(str(k), (*_TOP, *_NESTED)),
                               _safe(str(k)))
            metrics_raw = self._mapping(raw.get("metrics"), "metrics", fail)
            attrs_raw = self._mapping(raw.get("attributes"), "attributes", fail)
            events_raw = self._mapping(raw.get("events"), "events", fail)
            metrics_raw = {self.metric_columns.get(k, k): v for k, v in metrics_raw.items()}
            attrs_raw = {self.attr_columns.get(k, k): v for k, v in attrs_raw.items()}
            self._unknown(metrics_raw, self.inputs.metrics, "metrics", fail)
            self._unknown(attrs_raw, self.inputs.attributes, "attributes", fail)
        else:
            metrics_raw, attrs_raw, events_raw = {}, {}, {}
            for k, v in raw.items():
                if k in _TOP:
                    continue
                if k == "events":  # a flat row with its events (joined from event tables)
                    events_raw = self._mapping(v, "events", fail)
                    continue
                if k in self.metric_columns:
                    metrics_raw[self.metric_columns[k]] = v
                elif k in self.attr_columns:
                    attrs_raw[self.attr_columns[k]] = v
                elif self.unknown == "error":
                    known = [*self.metric_columns, *self.attr_columns, *_NESTED]
                    raise fail(f"unknown field {_quote(k)}" + self._hint(str(k), known),
                               _safe(str(k)))
        metrics = {name: self._metric(name, spec, metrics_raw.get(name, _MISSING), fail)
                   for name, spec in self.inputs.metrics.items()}
        attributes = {name: self._attribute(name, spec, attrs_raw.get(name, _MISSING), fail)
                      for name, spec in self.inputs.attributes.items()}
        events = self._events(events_raw, fail)
        return Record(payee, period, group, attributes, metrics, events)

    # ------------------------------------------------------------------
    def _group(self, group: Any, fail: Any) -> str | None:
        """The record's group: text, and one of the plan's ``inputs.groups`` if it names them."""
        if _blank(group):
            group = None
        elif isinstance(group, (dict, list, bool)):
            raise fail(f"group must be text, not {type(group).__name__}", "group")
        else:
            group = _as_text(group) if isinstance(group, Decimal) else str(group)
            if _has_control(group):
                raise fail(_control_message(group), "group")
            group = group.strip()
            if len(group) > MAX_TEXT_FIELD:
                raise fail(f"group is too long ({len(group)} characters, at most "
                           f"{MAX_TEXT_FIELD})", "group")
        known = self.inputs.groups
        if known is not None and group not in known:
            if group is None:
                raise fail("missing group (the plan declares its groups)", "group")
            raise fail(f"unknown group {_quote(group)}" + self._hint(group, known), "group")
        return group  # type: ignore[no-any-return]

    @staticmethod
    def _hint(name: str, known: Iterable[str]) -> str:
        hint = did_you_mean(name, known)
        return f"; {hint}" if hint else ""

    @staticmethod
    def _mapping(value: Any, what: str, fail: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise fail(f"{what} must be a mapping of names to values", what)
        return dict(value)

    def _unknown(self, given: Mapping[str, Any], declared: Mapping[str, Any], what: str,
                 fail: Any) -> None:
        if self.unknown != "error":
            return
        for k in given:
            if k not in declared:
                raise fail(f"unknown {what[:-1]} {_quote(k)}" + self._hint(str(k), declared),
                           f"{what}.{_safe(str(k))}")

    @staticmethod
    def _number(value: Any, spec: MetricSpec | AttributeSpec, field: str, fail: Any) -> Decimal:
        try:
            number = to_decimal(value, what="value")
        except ValueError as exc:
            raise fail(str(exc), field) from None
        if spec.integer and number != number.to_integral_value():
            raise fail(f"must be a whole number, not {value}", field)
        if spec.min is not None and number < spec.min:
            raise fail(f"{number} is below the minimum {spec.min}", field)
        if spec.max is not None and number > spec.max:
            raise fail(f"{number} is above the maximum {spec.max}", field)
        return number

    def _metric(self, name: str, spec: MetricSpec, value: Any, fail: Any) -> Decimal:
        field = f"metrics.{name}"
        if value is _MISSING or _blank(value):
            if spec.default is not None:
                return spec.default
            raise fail("missing required metric" if value is _MISSING or value is None
                       else "blank value for a required metric", field)
        return self._number(value, spec, field, fail)

    def _attribute(self, name: str, spec: AttributeSpec, value: Any, fail: Any) -> Any:
        field = f"attributes.{name}"
        if value is _MISSING or _blank(value):
            if spec.default is not None:
                return spec.default
            raise fail("missing required attribute", field)
        if spec.type == "number":
            out: Any = self._number(value, spec, field, fail)
        elif spec.type == "bool":
            if isinstance(value, bool):
                out = value
            elif isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
                out = True
            elif isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
                out = False
            else:
                raise fail(f"must be true or false, not {_quote(value)}", field)
        else:
            if isinstance(value, (dict, list, bool)):
                raise fail(f"must be text, not {type(value).__name__}", field)
            out = _as_text(value) if isinstance(value, Decimal) else str(value)
            if _has_control(out):
                raise fail(_control_message(out), field)
            out = out.strip()
            if len(out) > MAX_TEXT_FIELD:
                raise fail(f"text too long ({len(out)} characters, at most {MAX_TEXT_FIELD})",
                           field)
        if spec.allowed is not None and out not in spec.allowed:
            allowed = [str(a) for a in spec.allowed]
            raise fail(f"{_quote(out)} is not one of {', '.join(allowed)}"
                       + self._hint(str(out), allowed), field)
        return out

    def _events(self, given: Mapping[str, Any], fail: Any) -> dict[str, list[dict[str, Any]]]:
        declared = self.inputs.events
        for k in given:
            if k not in declared:
                raise fail(f"unknown event list {_quote(k)}" + self._hint(str(k), declared),
                           f"events.{_safe(str(k))}")
        out: dict[str, list[dict[str, Any]]] = {}
        for name, spec in declared.items():
            items = given.get(name)
            if items is None:
                out[name] = []
                continue
            if not isinstance(items, list):
                raise fail("must be a list of events", f"events.{name}")
            rows = []
            fields = spec.fields
            limits = spec.limits
            for i, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise fail("an event is a mapping of fields", f"events.{name}[{i}]")
                if not item.keys() <= fields.keys():
                    k = next(k for k in item if k not in fields)
                    raise fail(f"unknown field {_quote(k)}" + self._hint(str(k), fields),
                               f"events.{name}[{i}].{_safe(str(k))}")
                row: dict[str, Any] = {}
                for fname, ftype in fields.items():
                    value = item.get(fname)
                    if (ftype == "number" and value.__class__ is Decimal and value.is_finite()
                            and _MINA <= value.adjusted() < MAX_DIGITS and _PLUS(value) == value):
                        row[fname] = value  # the common case: what to_decimal gives
                        if fname in limits:
                            self._event_limits(item, name, i, fname, limits[fname], value, fail)
                        continue
                    if ftype == "text" and value.__class__ is str and value.strip() \
                            and len(value) <= MAX_TEXT_FIELD and not _has_control(value):
                        row[fname] = value
                        continue
                    fwhere = f"events.{name}[{i}].{fname}"
                    if _blank(value):
                        if fname in spec.optional:
                            continue
                        raise fail("missing event field", fwhere)
                    row[fname] = self._event_value(value, ftype, fwhere, fail)
                    if fname in limits:
                        self._event_limits(item, name, i, fname, limits[fname], row[fname], fail)
                rows.append(row)
            out[name] = rows
        return out

    @staticmethod
    def _event_limits(item: Mapping[str, Any], name: str, i: int, fname: str,
                      limits: FieldLimits, number: Decimal, fail: Any) -> None:
        """Refuse an event's number outside its declared ``min``/``max``/``integer``,
        naming the event list, the event (its id, if it has one) and the field."""
        if limits.integer and number != number.to_integral_value():
            problem = f"must be a whole number, not {number}"
        elif limits.min is not None and number < limits.min:
            problem = f"{number} is below the minimum {limits.min}"
        elif limits.max is not None and number > limits.max:
            problem = f"{number} is above the maximum {limits.max}"
        else:
            return
        ident = item.get("id")
        event = (f"event {short(str(ident))!r}" if isinstance(ident, (str, int, Decimal))
                 and not isinstance(ident, bool) else f"event {i + 1}")
        raise fail(f"{name} {event}: {fname} {problem}", f"events.{name}[{i}].{fname}")

    @staticmethod
    def _event_value(value: Any, ftype: str, where: str, fail: Any) -> Any:
        if ftype == "number":
            try:
                return to_decimal(value)
            except ValueError as exc:
                raise fail(str(exc), where) from None
        if ftype == "date":
            if isinstance(value, dt.date):
                return value
            try:
                return dt.date.fromisoformat(str(value).strip())
            except ValueError:
                raise fail(f"{_quote(value)} is not a date like 2026-05-03", where) from None
        if ftype == "bool":
            if not isinstance(value, bool):
                raise fail(f"must be true or false, not {_quote(value)}", where)
            return value
        if isinstance(value, (dict, list, bool)):
            raise fail(f"must be text, not {type(value).__name__}", where)
        text = _as_text(value) if isinstance(value, Decimal) else str(value)
        if _has_control(text):
            raise fail(_control_message(text), where)
        if len(text) > MAX_TEXT_FIELD:
            raise fail(f"text too long ({len(text)} characters, at most {MAX_TEXT_FIELD})", where)
        return text


def _fast_reader(inputs: Inputs, *, default_period: str | None,
                 columns: dict[str, tuple[bool, str]], nested: bool,
                 events: Callable[[dict[str, Any], str, str], dict[str, list[dict[str, Any]]]]
                 ) -> Callable[[dict[str, Any]], Record]:
    """The fast path: one function written out for these declared inputs (made once
    per plan), ``read(raw) -> Record``.

    It reads a well-formed record, a flat row (the declared inputs at the top
    level, under their ``columns`` names) or, when ``nested`` (no input has a
    column name of its own), a record of the nested layout. Events whose fields
    are all numbers and text are read inline; others go to ``events(given,
    payee, period)``, which reports a bad one as a located RecordError. For
    anything else unusual (a missing value, a bad number, text out of its
    allowed values, an unknown key...) it raises :class:`_Slow`, and the full
    check reads or reports the record.

    Only names and constants of the plan's declared inputs go into the
    function: names as string literals (``repr``), constants by reference in
    its namespace.
    """
    scope: dict[str, Any] = {"_Slow": _Slow, "_Decimal": Decimal, "_plus": _PLUS,
                             "_MAXD": MAX_DIGITS, "_MINA": _MINA, "_MAXT": MAX_TEXT_FIELD,
                             "_number": _fast_number, "_BIG": 10 ** MAX_DIGITS,
                             "_SMALL": SMALL, "_Record": Record, "_events": events,
                             "_good_period": _good_period, "_GOOD": _GOOD_PERIODS,
                             "_NK": _NESTED_KEYS, "_TOP": frozenset(_TOP), "_COLS": columns,
                             "_MN": frozenset(inputs.metrics),
                             "_AN": frozenset(inputs.attributes), "_ctl": _control,
                             "_numtext": _NUMBER_TEXT, "_date": dt.date.fromisoformat,
                             "_ValueError": ValueError}
    code = ["def read(raw):",
            "    payee = raw.get('payee')",
            "    if payee.__class__ is not str: raise _Slow",
            "    if not payee.isprintable() and _ctl(payee): raise _Slow",
            "    payee = payee.strip()",
            "    if not payee or len(payee) > _MAXT: raise _Slow"]

    def const(value: Any) -> str:
        name = f"_c{len(scope)}"
        scope[name] = value
        return name

    def number(var: str, lo: Decimal | None, hi: Decimal | None, integer: bool) -> None:
        bounds = [f"{var} < {const(lo)}" if lo is not None else "",
                  f"{var} > {const(hi)}" if hi is not None else ""]
        bounds = [c for c in bounds if c]
        whole = [f"{var} != {var}.to_integral_value()"] if integer else []
        code.append(f"    elif {var}.__class__ is _Decimal:")
        code.append(f"        if not ({var}.is_finite() and _MINA <= {var}.adjusted() < _MAXD "
                    f"and _plus({var}) == {var}): raise _Slow")
        if bounds + whole:
            code.append(f"        if {' or '.join(bounds + whole)}: raise _Slow")
        # a number written as plain text (``"48000.50"``): at most 18 digits before the
        # point and 16 after, so in range and within the precision with no more checks
        code.append(f"    elif {var}.__class__ is str and _numtext({var}) is not None:")
        code.append(f"        {var} = _Decimal({var})")
        if bounds + whole:
            code.append(f"        if {' or '.join(bounds + whole)}: raise _Slow")
        code.append(f"    elif {var}.__class__ is int and -_BIG < {var} < _BIG:")
        # a small count is one of the numbers made once (money.SMALL)
        code.append(f"        {var} = _SMALL[{var}] if 0 <= {var} < {len(SMALL)} else _Decimal({var})")
        if bounds:
            code.append(f"        if {' or '.join(bounds)}: raise _Slow")
        code.append("    else:")
        code.append(f"        {var} = _number({var}, {const(lo)}, {const(hi)}, {integer})")

    def missing(var: str, default: Any) -> None:
        code.append(f"    if {var} is None:")
        code.append(f"        {var} = {const(default)}" if default is not None
                    else "        raise _Slow")

    code += ["    period = raw.get('period')",
             "    if period is None or period == '':",
             f"        period = {const(default_period)}",
             "    if period.__class__ is not str: raise _Slow",
             "    if not period.isprintable() and _ctl(period): raise _Slow",
             "    period = period.strip()",
             "    if period not in _GOOD: _good_period(period)",
             "    group = raw.get('group')",
             "    if group is not None:",
             "        if group.__class__ is not str: raise _Slow",
             "        if not group.isprintable() and _ctl(group): raise _Slow",
             "        group = group.strip() or None",
             "        if group is not None and len(group) > _MAXT: raise _Slow"]
    if inputs.groups is not None:
        code.append(f"    if group not in {const(frozenset(inputs.groups))}: raise _Slow")
    # a flat row may carry its events (from event tables joined to it)
    code += ["    if 'metrics' in raw or 'attributes' in raw:"]
    if nested:
        code += ["        if not raw.keys() <= _NK: raise _Slow",
                 "        mr = raw.get('metrics')",
                 "        if mr is None: mr = {}",
                 "        elif mr.__class__ is not dict or not mr.keys() <= _MN: raise _Slow",
                 "        ar = raw.get('attributes')",
                 "        if ar is None: ar = {}",
                 "        elif ar.__class__ is not dict or not ar.keys() <= _AN: raise _Slow",
                 "        er = raw.get('events')"]
    else:  # column names: a nested record is left to the full check
        code += ["        raise _Slow"]
    code += ["    else:  # a flat row",
             "        mr = {}",
             "        ar = {}",
             "        er = None",
             "        for k, v in raw.items():",
             "            if k in _TOP: continue",
             "            if k == 'events':",
             "                er = v",
             "                continue",
             "            found = _COLS.get(k)",
             "            if found is None: raise _Slow",
             "            (mr if found[0] else ar)[found[1]] = v"]
    metric_vars = []
    for i, (name, mspec) in enumerate(inputs.metrics.items()):
        var = f"m{i}"
        metric_vars.append((name, var))
        code.append(f"    {var} = mr.get({name!r})")
        missing(var, mspec.default)
        number(var, mspec.min, mspec.max, mspec.integer)
    attr_vars = []
    for i, (name, aspec) in enumerate(inputs.attributes.items()):
        var = f"a{i}"
        attr_vars.append((name, var))
        code.append(f"    {var} = ar.get({name!r})")
        missing(var, aspec.default)
        if aspec.type == "text":
            code.append(f"    elif {var}.__class__ is not str: raise _Slow")
            code.append("    else:")
            code.append(f"        if not {var}.isprintable() and _ctl({var}): raise _Slow")
            code.append(f"        {var} = {var}.strip()")
            code.append(f"        if not {var} or len({var}) > _MAXT: raise _Slow")
        elif aspec.type == "number":
            number(var, aspec.min, aspec.max, aspec.integer)
        else:
            code.append("    else: raise _Slow")
        if aspec.allowed is not None:
            allowed = const(frozenset(aspec.allowed))
            # a default is taken as declared; only a given value must be allowed
            code.append(f"    if {var} not in {allowed} and ar.get({name!r}) is not None: "
                        "raise _Slow")
    metrics = "{" + ", ".join(f"{n!r}: {v}" for n, v in metric_vars) + "}"
    attributes = "{" + ", ".join(f"{n!r}: {v}" for n, v in attr_vars) + "}"
    code += [f"    metrics = {metrics}", f"    attributes = {attributes}"]
    code += _events_code(inputs, const)
    # the source names only the plan's declared inputs (as repr'd literals) and the
    # values bound above; it runs with no builtins but these
    scope["__builtins__"] = {"len": len, "int": int, "str": str, "dict": dict, "list": list,
                             "bool": bool}
    exec(compile("\n".join(code), "<record reader>", "exec"), scope)
    read: Callable[[dict[str, Any]], Record] = scope["read"]
    return read


def _events_code(inputs: Inputs, const: Callable[[Any], str]) -> list[str]:
    """The part of ``read`` (see :func:`_fast_reader`) that reads the events and
    returns the record.

    Each declared list is read by a loop written for its fields: a number (a
    Decimal in range and precision, a whole number below 10**18, or plain text
    such as ``"1200.50"``), text (not blank, not too long, no control character:
    kept as written), a date (ISO text) or true/false, an optional field absent
    or null. Anything else (a blank, a bad value, a number outside its limits, an
    unknown field) leaves the events to the reader's own method, which gives the
    same events or the located error."""
    declared = inputs.events
    empty = "{" + ", ".join(f"{n!r}: []" for n in declared) + "}"
    code = ["    if not er:",
            "        if er is not None and er.__class__ is not dict: raise _Slow",
            f"        return _Record(payee, period, group, attributes, metrics, {empty})",
            "    if er.__class__ is not dict: raise _Slow"]
    if not declared:
        code.append("    return _Record(payee, period, group, attributes, metrics, "
                    "_events(er, payee, period))")
        return code
    code += ["    try:",
             f"        if not er.keys() <= {const(frozenset(declared))}: raise _Slow"]
    lists = []
    for i, (name, spec) in enumerate(declared.items()):
        var = f"ev{i}"
        lists.append((name, var))
        fields = list(spec.fields.items())
        code += [f"        {var} = []",
                 f"        items = er.get({name!r})",
                 "        if items is not None:",
                 "            if items.__class__ is not list: raise _Slow",
                 "            for item in items:",
                 "                if item.__class__ is not dict or not item.keys() <= "
                 f"{const(frozenset(spec.fields))}: raise _Slow"]
        absent = []
        for k, (fname, ftype) in enumerate(fields):
            v = f"f{k}"
            code.append(f"                {v} = item.get({fname!r})")
            test = "if"
            if fname in spec.optional:  # absent (or null): left out of the event
                code.append(f"                if {v} is None: pass")
                absent.append((fname, v))
                test = "elif"
            if ftype == "number":
                lim = spec.limits.get(fname)
                checks = [] if lim is None else (
                    [f"{v} < {const(lim.min)}"] if lim.min is not None else []) + (
                    [f"{v} > {const(lim.max)}"] if lim.max is not None else [])
                whole = [f"{v} != {v}.to_integral_value()"] if lim is not None and lim.integer \
                    else []
                code += [f"                {test} {v}.__class__ is _Decimal:",
                         f"                    if not ({v}.is_finite() and _MINA <= "
                         f"{v}.adjusted() < _MAXD and _plus({v}) == {v}): raise _Slow",
                         f"                elif {v}.__class__ is int and -_BIG < {v} < _BIG:",
                         f"                    {v} = _SMALL[{v}] if 0 <= {v} < {len(SMALL)} "
                         f"else _Decimal({v})",
                         f"                elif {v}.__class__ is str and _numtext({v}) "
                         "is not None:",
                         f"                    {v} = _Decimal({v})",
                         "                else: raise _Slow"]
                if checks or whole:  # out of its limits: the reader's own method reports it
                    code.append(f"                if {v} is not None and ("
                                f"{' or '.join(checks + whole)}): raise _Slow")
            elif ftype == "text":
                code.append(f"                {test} not ({v}.__class__ is str and {v}.strip() "
                            f"and len({v}) <= _MAXT and ({v}.isprintable() or not _ctl({v}))): "
                            "raise _Slow")
            elif ftype == "date":
                code += [f"                {test} {v}.__class__ is str:",
                         "                    try:",
                         f"                        {v} = _date({v}.strip())",
                         "                    except _ValueError:",
                         "                        raise _Slow from None",
                         "                else: raise _Slow"]
            else:  # bool
                code.append(f"                {test} {v}.__class__ is not bool: raise _Slow")
        row = "{" + ", ".join(f"{fname!r}: f{k}" for k, (fname, _) in enumerate(fields)) + "}"
        code.append(f"                row = {row}")
        for fname, v in absent:
            code.append(f"                if {v} is None: del row[{fname!r}]")
        code.append(f"                {var}.append(row)")
    events = "{" + ", ".join(f"{n!r}: {v}" for n, v in lists) + "}"
    code += [f"        events = {events}",
             "    except _Slow:  # anything unusual in the events: the reader's own method",
             "        events = _events(er, payee, period)",
             "    return _Record(payee, period, group, attributes, metrics, events)"]
    return code


def _good_period(period: str) -> None:
    """Note ``period`` as well-formed, or :class:`_Slow` (the full check reports it)."""
    if not period:
        raise _Slow
    try:
        parse_period(period)
    except ValueError:
        raise _Slow from None
    _GOOD_PERIODS.add(period)


def _fast_number(value: Any, lo: Decimal | None, hi: Decimal | None, integer: bool) -> Decimal:
    """A number the fast path accepts as it is, or :class:`_Slow`."""
    t = type(value)
    number: Decimal
    if t is Decimal:
        number = value
        if range_problem(number) or _PLUS(number) != number:
            raise _Slow  # out of range, or more digits than the precision holds: the full
            # check reports it
    elif t is int:
        number = Decimal(value)
    elif t is str:
        try:
            number = to_decimal(value)
        except ValueError:
            raise _Slow from None
        return _fast_number(number, lo, hi, integer)
    else:
        raise _Slow
    if (not number.is_finite() or number.adjusted() >= MAX_DIGITS
            or (lo is not None and number < lo) or (hi is not None and number > hi)
            or (integer and number != number.to_integral_value())):
        raise _Slow
    return number


# ---------------------------------------------------------------------- files

#: The most bad records one evaluation on the command line collects: past them it
#: stops with a UsageError (the file, or the plan, is not the one meant); see
#: :attr:`RecordReader.max_errors`.
MAX_ERRORS = 10_000
#: The longest line of a JSON Lines or CSV records file, in characters.
MAX_LINE = 1 << 20
#: A file with more lines than this that cannot be read at all (not JSON, not CSV)
#: is refused as a whole: it is not a records file.
MAX_UNREADABLE = 1000
#: How much of a file's start is looked at to tell its encoding.
DETECT_BYTES = 1 << 16
#: The delimiters a CSV header is sniffed for, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")
_CHUNK = 1 << 16
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
#: what charset-normalizer may name for CJK bytes, by family, preferred first: a GBK or
#: GB18030 export (Chinese Excel) is read as GB18030 whenever that reading is plausible
_CJK_FAMILIES = (
    ("gb18030", ("gb18030", "gbk", "gb2312", "hz")),
    ("cp950", ("big5", "big5hkscs", "cp950")),
    ("cp932", ("cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp",
               "euc_jis_2004", "euc_jisx0213", "iso2022_jp")),
    ("cp949", ("cp949", "euc_kr", "johab", "iso2022_kr")),
)
_EOL = re.compile(r"\r\n|\r|\n")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[{]+|[\]}]+|[:,]')  # runs of brackets: one token
_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')


def _parse_int(text: str) -> int | Decimal:
    # a very long integer stays a Decimal (the reader refuses it as too large; reading
    # even a million digits so takes milliseconds, unlike int())
    return int(text) if len(text) <= 40 else Decimal(text)


def _parse_float(text: str) -> Decimal | str:
    """A JSON number with a point or an exponent, exactly: ``1e5`` is ``100000``. One
    longer than a number may be written, or out of range (``1e999999``), stays its
    text: refused as a number, and read as it is written where text is meant."""
    if len(text) > MAX_NUMBER_TEXT:
        return text
    number = Decimal(text)
    if "e" in text or "E" in text:
        return text if range_problem(number) else plain(number)
    return number


def _as_text(value: Decimal) -> str:
    """A number where text is meant, written out; one out of range (``1E+999999``: a
    million digits written out) as it prints."""
    return str(value) if range_problem(value) else format(value, "f")


class _Dup(dict):  # type: ignore[type-arg]
    """A JSON object that named a key twice (``key``): refused by the file readers."""

    key: str = ""


def _decoder(found: list[str]) -> json.JSONDecoder:
    """A JSON decoder reading numbers as Decimals; an object naming a key twice is
    a :class:`_Dup` and its key is appended to ``found``."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(items)
        if len(d) < len(items):
            seen: set[str] = set()
            key = next(k for k, _ in items if k in seen or seen.add(k))  # type: ignore[func-returns-value]
            d = _Dup(d)
            d.key = key
            found.append(key)
        return d

    return json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int,
                            parse_constant=lambda c: c, object_pairs_hook=pairs)


def _loads(text: str) -> Any:
    """``text`` as JSON, numbers as Decimals; a key named twice in an object is a
    ValueError (a :class:`json.JSONDecodeError`), and so is nesting too deep."""
    found: list[str] = []
    try:
        data = _decoder(found).decode(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    if found:
        raise json.JSONDecodeError(f"duplicate key {_quote(found[0])}", text, 0)
    return data


def iter_raw_records(path: str | Path, *, encoding: str | None = None,
                     delimiter: str | None = None,
                     max_bytes: int | None = None) -> Iterator[Any]:
    """Yield the raw records of a JSON, JSONL or CSV file, in file order.

    ``encoding`` is the file's text encoding; without it the file is read as
    UTF-8 (with or without a byte-order mark), as UTF-16 or UTF-32 when it starts
    with their byte-order mark, and otherwise as the legacy encoding detected
    from its first :data:`DETECT_BYTES` (GB18030 for a GBK export from Chinese
    Excel); a file whose encoding cannot be told is refused, asking for
    ``encoding``. ``delimiter`` is a CSV file's (``,``, ``;``, tab, ``|``...);
    without it, it is sniffed from the header line.

    A line of JSONL that cannot be read (not JSON, a key named twice, nested
    too deeply) is yielded as a :class:`RecordError`, so the good lines are
    still read; so is a CSV row that cannot be read. Blank and whitespace-only
    lines are skipped. What makes the whole file unreadable (bytes that are not
    text in its encoding, a line longer than :data:`MAX_LINE` characters, more
    than ``max_bytes`` bytes (by default: a regular file's size, a FIFO's or a
    device's :data:`MAX_FILE_BYTES`), a CSV header naming a column twice...) raises a
    :class:`UsageError` naming the file and, where there is one, the line and
    the byte.
    """
    p = Path(path)
    name = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".json"):
        raise UsageError(
            f"cannot tell the format of {name!r}: use .json, .jsonl or .csv")
    if delimiter is not None:
        delimiter = _delimiter(delimiter)
        if suffix != ".csv":
            raise UsageError(f"{name!r}: a delimiter applies to .csv files only")
    if encoding is not None:
        encoding = _encoding(encoding)
    try:
        handle = p.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read records file {name!r}: {exc.strerror or exc}") from None
    with handle:
        chunks = _decoded(handle, name, encoding, max_bytes)
        if suffix == ".csv":
            yield from _iter_csv(_lines(chunks, name, keepends=True), name, delimiter)
        elif suffix == ".json":
            yield from _iter_json(chunks, name)
        else:
            yield from _iter_jsonl(_lines(chunks, name, keepends=False), name)


def read_records_file(path: str | Path, *, encoding: str | None = None,
                      delimiter: str | None = None,
                      max_bytes: int | None = None) -> list[Any]:
    """Every raw record of a file, as a list (see :func:`iter_raw_records`)."""
    return list(iter_raw_records(path, encoding=encoding, delimiter=delimiter,
                                 max_bytes=max_bytes))


def _delimiter(text: str) -> str:
    d = _DELIMITER_NAMES.get(text.lower(), text)
    if len(d) != 1 or d in '"\r\n' or d.isalnum():
        raise UsageError(f"delimiter {_quote(text)}: give one character (such as ; or |) "
                         "or comma, semicolon, tab, pipe")
    return d


def _encoding(name: str) -> str:
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # unknown, or a NUL in the name
        raise UsageError(f"unknown encoding {_quote(name)}; for example utf-8, gb18030, "
                         "utf-16, cp1252") from None
    if getattr(info, "_is_text_encoding", True) is False:
        raise UsageError(f"{_quote(name)} is not a text encoding")
    return info.name


_quote = quote  # ``value`` as a safe, short Python literal for a message


def _safe(value: str, limit: int = 40) -> str:
    """``value`` with control characters escaped (as ``repr`` does), cut to
    ``limit`` characters and ``...``: a payee or a field to name in an error."""
    if len(value) > limit:
        value = value[:limit]
        return repr(value)[1:-1] + "..."
    return value if value.isprintable() else repr(value)[1:-1]


# ---------------------------------------------------------------------- decoding


def _decoded(handle: Any, name: str, encoding: str | None,
             max_bytes: int | None) -> Iterator[str]:
    """The text of the open binary file ``handle``, chunk by chunk, decoded strictly
    (a leading byte-order mark dropped); at most ``max_bytes`` bytes are read (by
    default: a regular file's size, growing by at most :data:`MAX_FILE_BYTES` while
    read; :data:`MAX_FILE_BYTES` from anything else, which may never end)."""
    try:
        st = os.fstat(handle.fileno())
    except OSError:
        st = None
    regular = st is not None and stat.S_ISREG(st.st_mode)
    if max_bytes is None:
        max_bytes = st.st_size + MAX_FILE_BYTES if regular and st is not None else MAX_FILE_BYTES
    elif regular and st is not None and st.st_size > max_bytes:
        raise _too_large(name, max_bytes)
    if stat.S_ISDIR(st.st_mode if st is not None else 0):
        raise UsageError(f"cannot read records file {name!r}: it is a folder")
    head = _read(handle, name, min(DETECT_BYTES, max_bytes + 1))
    if encoding is None:
        encoding = _detect(head, name)
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    consumed = 0  # bytes handed to the decoder before ``data``
    newlines = 0  # "\n" in the text decoded so far (to locate a bad byte)
    data: bytes | None = head
    first = True
    while True:
        if data is None:
            data = _read(handle, name, _CHUNK)
        final = not data
        state = decoder.getstate()
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _undecodable(exc, name, encoding, decoder, state, data, consumed,
                               newlines) from None
        except UnicodeError as exc:  # no byte-order mark where the codec needs one
            raise UsageError(f"records file {name!r} is not valid {encoding} text: {exc} "
                             "(for UTF-16 without one, name utf-16-le or utf-16-be)") from None
        consumed += len(data)
        if consumed > max_bytes:
            raise _too_large(name, max_bytes)
        if first:
            first = False
            if text.startswith("\ufeff"):
                text = text[1:]
        newlines += text.count("\n")
        if text:
            yield text
        if final:
            return
        data = None


def _read(handle: Any, name: str, size: int) -> bytes:
    try:
        data: bytes = handle.read(size)
    except OSError as exc:
        raise UsageError(f"cannot read records file {name!r}: {exc.strerror or exc}") from None
    return data


def _too_large(name: str, max_bytes: int) -> UsageError:
    return UsageError(f"records file {name!r} is larger than {max_bytes:,} bytes, the most "
                      "read from it (--max-bytes; records.MAX_FILE_BYTES for a pipe or a "
                      "device)")


def _undecodable(exc: UnicodeDecodeError, name: str, encoding: str, decoder: Any,
                 state: Any, data: bytes, consumed: int, newlines: int) -> UsageError:
    pending = max(0, len(exc.object) - len(data))  # bytes the decoder held from before
    offset = max(0, consumed - pending + exc.start)
    try:  # the newlines in the good part of this chunk
        decoder.setstate(state)
        part = decoder.decode(data[:max(0, exc.start - pending)])
    except (UnicodeDecodeError, ValueError):
        part = ""
    line = newlines + part.count("\n") + 1
    bad = exc.object[exc.start:min(exc.end, exc.start + 4)]
    shown = " ".join(f"0x{b:02x}" for b in bad)
    return UsageError(f"records file {name!r} is not valid {encoding} text: line {line}, "
                      f"byte offset {offset} (counted from 0): {shown}; name the file's "
                      "encoding with --encoding (e.g. gb18030, utf-16, cp1252)")


def _detect(head: bytes, name: str) -> str:
    """The encoding of a file starting with ``head``: a byte-order mark's, UTF-8 if
    ``head`` is UTF-8 (ASCII is), else a CJK encoding charset-normalizer finds
    plausible (GB18030 first); anything else is refused rather than guessed."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:  # text has no NUL: UTF-16 without its mark, when one byte of
        even = head[0:len(head) // 2 * 2:2]  # each pair is mostly NUL and the other never
        odd = head[1:len(head) // 2 * 2:2]
        for codec, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
            if (zeros.count(0) * 2 > len(zeros) and other.count(0) * 20 < len(other)
                    and _decodes(head, codec)):
                return codec
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, False)
        return "utf-8"
    except UnicodeDecodeError as exc:
        bad = " ".join(f"0x{b:02x}" for b in head[exc.start:min(exc.end, exc.start + 4)])
        line = head.count(b"\n", 0, exc.start) + 1
        where = f" (line {line}, byte offset {exc.start} counted from 0: {bad})"
    cut = head.rfind(b"\n")
    sample = head[:cut + 1] if cut > 0 and len(head) > DETECT_BYTES // 2 else head
    from charset_normalizer import from_bytes

    found = [m.encoding for m in from_bytes(sample)]
    guess = found[0] if found else None
    cjk = {n for _, names in _CJK_FAMILIES for n in names}
    if guess in cjk:
        for codec, names in _CJK_FAMILIES:
            if (any(n in names for n in found) and _decodes(sample, codec)
                    and _plausible(sample, codec)):
                return codec
        guess = None  # no plausible reading: Western bytes that decode (Niño as Ni駉)
    hint = (f"; it may be {guess}: try --encoding {guess}" if guess in cjk else
            "; name its encoding with --encoding, e.g. cp1252 (Western European Windows), "
            "cp1250 (Central European) or gb18030 (Chinese)")
    raise UsageError(f"cannot tell the text encoding of records file {name!r}: it is not "
                     f"UTF-8{where} and has no byte-order mark{hint}")


#: the characters most text in a CJK encoding is made of, by the code points of a
#: reference encoding: GB2312, Big5 level 1 and symbols, JIS level 1 and kana, KS X
#: 1001 hangul and symbols. Western text misread as CJK is almost never made of them.
_COMMON_CJK: dict[str, tuple[str, tuple[tuple[int, int], ...]]] = {
    "gb18030": ("gb2312", ((0xA1A1, 0xF7FE),)),
    "cp950": ("big5", ((0xA140, 0xA3BF), (0xA440, 0xC67E))),
    "cp932": ("shift_jis", ((0x8140, 0x84BE), (0x889F, 0x9872))),
    "cp949": ("euc_kr", ((0xA1A1, 0xACFE), (0xB0A1, 0xC8FE))),
}


def _plausible(sample: bytes, codec: str) -> bool:
    """Whether ``sample`` read as ``codec`` (a CJK family's) is mostly made of that
    script's common characters (three in four of its non-ASCII ones)."""
    reference, ranges = _COMMON_CJK[codec]
    text = codecs.getincrementaldecoder(codec)("strict").decode(sample, False)
    total = common = 0
    for char in text:
        if char.isascii():
            continue
        total += 1
        try:
            code = int.from_bytes(char.encode(reference), "big")
        except UnicodeEncodeError:
            continue
        common += any(lo <= code <= hi for lo, hi in ranges)
    return common * 4 >= total * 3


def _decodes(sample: bytes, codec: str) -> bool:
    try:
        codecs.getincrementaldecoder(codec)("strict").decode(sample, False)
    except UnicodeDecodeError:
        return False
    return True


def _lines(chunks: Iterator[str], name: str, *, keepends: bool) -> Iterator[str]:
    """The lines of the text in ``chunks`` (ended by \\n, \\r\\n or \\r; with their
    ends when ``keepends``); a line longer than :data:`MAX_LINE` is refused."""
    rest = ""
    n = 0
    for text in chunks:
        if rest:
            text = rest + text
        if "\r" not in text or text.count("\r") == text.count("\r\n"):
            # no line ends but \n and \r\n: split at \n (a CSV line keeps its \r\n, as
            # the csv module wants)
            if not keepends and "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            rest = lines.pop()
            if len(text) > MAX_LINE:
                for i, line in enumerate(lines):
                    if len(line) > MAX_LINE:
                        raise _too_long(name, n + i + 1)
            n += len(lines)
            if keepends:
                for line in lines:
                    yield line + "\n"
            else:
                yield from lines
        else:
            pos = 0
            for m in _EOL.finditer(text):
                if m.end() == len(text) and m.group() == "\r":
                    break  # a \n may follow in the next chunk
                n += 1
                if m.start() - pos > MAX_LINE:
                    raise _too_long(name, n)
                yield text[pos:m.end() if keepends else m.start()]
                pos = m.end()
            rest = text[pos:]
        if len(rest) > MAX_LINE:
            raise _too_long(name, n + 1)
    if rest:
        yield rest


def _too_long(name: str, line: int) -> UsageError:
    return UsageError(f"records file {name!r}: line {line} is longer than {MAX_LINE:,} "
                      "characters, the most a line may hold (records.MAX_LINE)")


# ---------------------------------------------------------------------- JSON


def _iter_jsonl(lines: Iterator[str], name: str) -> Iterator[Any]:
    found: list[str] = []
    decoder = _decoder(found)
    decode = decoder.decode
    # decode() without its layers, for a line that is one value
    scan = decoder.scan_once  # type: ignore[attr-defined]
    unreadable = 0
    for n, line in enumerate(lines, start=1):
        try:
            # the usual line: one object from its first character to its last
            if line[:1] == "{" and line[-1:] == "}":
                raw, end = scan(line, 0)
                if end == len(line):
                    if not found:
                        yield raw
                        continue
                    found.clear()  # read again below, the duplicate found as it is
        except Exception:
            found.clear()
        if not line.strip():
            continue
        try:
            try:
                raw = decode(line)
            except json.JSONDecodeError:
                if not line.startswith("\ufeff"):
                    raise
                raw = decode(line[1:])  # a byte-order mark inside: files joined by cat
        except json.JSONDecodeError as exc:
            error = RecordError(f"line {n} is not JSON: {exc.msg}", field=f"line {n}")
        except RecursionError:
            error = _too_deep(line, 0, f"line {n}")
        else:
            if not found:
                yield raw
                continue
            error = _duplicate(raw, found[0], f"line {n}")
            found.clear()
        unreadable += 1
        if unreadable > MAX_UNREADABLE:
            raise UsageError(f"records file {name!r}: more than {MAX_UNREADABLE} lines "
                             "cannot be read as records; is it a JSON Lines file?")
        yield error


def _iter_json(chunks: Iterator[str], name: str) -> Iterator[Any]:
    text = "".join(chunks)
    found: list[str] = []
    decoder = _decoder(found)
    try:
        data = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name!r} is not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        yield from _json_items(text, name, found)
        return
    if isinstance(data, dict) and "records" in data:
        if type(data) is _Dup:
            raise UsageError(f"{name!r}: duplicate key {_quote(data.key)}")
        data = data["records"]
    if not isinstance(data, list):
        raise UsageError(f"{name!r}: expected a list of records")
    if not found:
        yield from data
        return
    for i, raw in enumerate(data):
        key = _dup_key(raw)
        yield raw if key is None else _duplicate(raw, key, None, index=i)


def _json_items(text: str, name: str, found: list[str]) -> Iterator[Any]:
    """The items of the JSON list ``text`` one by one (the whole is nested too deeply
    for one parse): an item nested too deeply is yielded as a RecordError."""
    decoder = _decoder(found)
    ws = re.compile(r"[ \t\n\r]*")
    pos = ws.match(text).end()  # type: ignore[union-attr]
    if not text.startswith("[", pos):
        raise UsageError(f"{name!r} is nested too deeply (a records file is a list of records)")
    pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
    i = 0
    while not text.startswith("]", pos):
        try:
            raw, end = decoder.raw_decode(text, pos)
        except RecursionError:
            yield _too_deep(text, pos, None, index=i)
            end = _value_end(text, pos)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name!r} is not JSON: {exc.msg} at line {exc.lineno}") from None
        else:
            key = _dup_key(raw) if found else None
            found.clear()
            yield raw if key is None else _duplicate(raw, key, None, index=i)
        i += 1
        pos = ws.match(text, end).end()  # type: ignore[union-attr]
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
        elif not text.startswith("]", pos):
            line = text.count("\n", 0, pos) + 1
            raise UsageError(f"{name!r} is not JSON: expecting ',' at line {line}")


def _value_end(text: str, pos: int) -> int:
    depth = 0
    for m in _JSON_TOKEN.finditer(text, pos):
        t = m.group()
        if t[0] in "[{":
            depth += len(t)
        elif t[0] in "]}":
            if depth <= len(t):
                return m.start() + depth
            depth -= len(t)
    return len(text)


def _too_deep(text: str, pos: int, where: str | None, index: int | None = None) -> RecordError:
    """The error for a record nested too deeply to parse: its payee when it names one
    near its top, and the field under which the nesting goes deep."""
    depth = deepest = 0
    keys: list[str | None] = []
    field: list[str] | None = None
    payee: str | None = None
    last: str | None = None
    want = False
    for m in _JSON_TOKEN.finditer(text, pos):
        t = m.group()
        if t[0] in "[{":
            depth += len(t)
            deepest = max(deepest, depth)
            keys.extend([None] * len(t))
            if depth >= 10 and field is None:
                field = [k for k in keys[:10] if k is not None][:3]
        elif t[0] in "]}":
            depth -= len(t)
            if depth <= 0:
                break
            del keys[depth:]
        elif t == ":":
            if keys:
                keys[-1] = last
            want = depth == 1 and last == "payee"
            continue
        elif t != ",":
            if want and len(t) <= 4 * MAX_TEXT_FIELD:
                with contextlib.suppress(ValueError):
                    payee = json.loads(t)
            last = t[1:-1] if len(t) <= 200 else None
        want = False
    message = f"nested too deeply ({deepest:,} levels of [ and {{)"
    if where is not None:
        message = f"{where}: {message}"
    name = ".".join(_safe(k) for k in field or [] if k) or where
    if isinstance(payee, str) and payee.strip():
        return RecordError(message, payee=_safe(payee.strip()), field=name)
    return RecordError(message, field=name, index=index)


def _dup_key(raw: Any) -> list[str] | None:
    """Where in ``raw`` (a parsed record) an object names a key twice: the path to
    that key, or None."""
    todo: list[tuple[Any, list[str]]] = [(raw, [])]
    while todo:
        value, path = todo.pop()
        if isinstance(value, dict):
            if type(value) is _Dup:
                return [*path, value.key]
            todo.extend((v, [*path, str(k)]) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            todo.extend((v, [*path[:-1], f"{path[-1]}[{i}]" if path else f"[{i}]"])
                        for i, v in reversed(list(enumerate(value))))
    return None


def _duplicate(raw: Any, key: Any, where: str | None, index: int | None = None) -> RecordError:
    """The error for a record naming a key twice (``key``: the key, or its path)."""
    path = key if isinstance(key, list) else _dup_key(raw) or [key]
    field = ".".join(_safe(k) for k in path)
    message = f"duplicate key {_quote(path[-1])}"
    if where is not None:
        message = f"{where}: {message}"
    payee = raw.get("payee") if isinstance(raw, dict) and path != ["payee"] else None
    if isinstance(payee, str) and payee.strip():
        period = raw.get("period") if path != ["period"] else None
        if not isinstance(period, str):
            period = None
        else:
            period = period.strip() or None
            try:
                parse_period(period or "")
            except ValueError:
                period = None
        return RecordError(message, payee=_safe(payee.strip()), period=period, field=field)
    return RecordError(message, field=field, index=index)


# ---------------------------------------------------------------------- CSV


def _sniff(header: str) -> str:
    """The delimiter of a CSV header line: the candidate found most often outside
    quotes (a comma on a tie, or when there is none)."""
    bare = _QUOTED.sub("", header)
    best = max(DELIMITERS, key=lambda d: (bare.count(d), -DELIMITERS.index(d)))
    return best if bare.count(best) else ","


def _iter_csv(lines: Iterator[str], name: str, delimiter: str | None) -> Iterator[Any]:
    seen: list[str] = []  # the lines the csv reader took for the row it is on

    def feed() -> Iterator[str]:
        for line in lines:
            seen.append(line)
            yield line

    source = feed()
    skipped = 0
    first = ""
    for first in source:
        if first.strip():
            break
        skipped += 1
        seen.clear()
    else:
        return  # no header: no records
    if delimiter is None:
        delimiter = _sniff(first)
    reader = csv.reader(itertools.chain([first], source), delimiter=delimiter, strict=True)
    try:
        header_row = next(reader)
    except csv.Error as exc:
        raise UsageError(f"records file {name!r}: the header (line {skipped + 1}) is not a "
                         f"CSV row: {_csv_problem(exc, skipped + 1)}") from None
    header = [h.strip() for h in header_row]
    # a column without a name (a trailing delimiter, as spreadsheets export) is
    # dropped where its cells are blank, and named by its place where they are not
    unnamed = [f"column {i + 1} (no name in the header)" for i, h in enumerate(header)
               if not h]
    header = [h or f"column {i + 1} (no name in the header)" for i, h in enumerate(header)]
    where: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in where:
            raise UsageError(f"records file {name!r}: the header names the column "
                             f"{_quote(h)} twice (columns {where[h] + 1} and {i + 1})")
        where[h] = i
    width = len(header)
    unreadable = 0
    while True:
        seen.clear()
        line = reader.line_num + skipped + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cells = None
            if "field limit" in str(exc):  # read the row without the csv module's limit
                text = "".join(seen)
                while text.count('"') % 2 and len(text) <= MAX_LINE:
                    more = next(source, None)  # the rest of a quoted cell's lines
                    if more is None:
                        break
                    text += more
                cells = _split_row(text, delimiter)
            if cells is None and "unexpected end of data" in str(exc):
                raise UsageError(f"records file {name!r}: {_csv_problem(exc, line)}") from None
            if cells is None:
                unreadable += 1
                if unreadable > MAX_UNREADABLE:
                    raise UsageError(f"records file {name!r}: more than {MAX_UNREADABLE} "
                                     "lines cannot be read as CSV rows") from None
                yield RecordError(f"line {line} is not a CSV row: {exc}", field=f"line {line}")
                continue
            row = cells
        if not row or (not row[0].strip() and not any(c.strip() for c in row)):
            continue  # a blank or whitespace-only line
        if len(row) == width and not unnamed:
            yield dict(zip(header, row, strict=True))
            continue
        clean: dict[str, Any] = dict(zip(header, row, strict=False))
        if len(row) < width:
            for h in header[len(row):]:
                clean[h] = None  # fewer cells than the header names
        elif len(row) > width:
            clean["<extra cells>"] = row[width:]  # more cells than the header names
        for h in unnamed:
            if _blank(clean[h]):
                del clean[h]
        yield clean


def _csv_problem(exc: csv.Error, line: int) -> str:
    """What is wrong with the CSV row starting on ``line``, in words."""
    if "unexpected end of data" in str(exc):
        return (f"a quoted cell in the row starting on line {line} is never closed (a \" "
                "without its pair), so no row after it can be read")
    if "field limit" in str(exc):
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    return str(exc)


def _split_row(text: str, delimiter: str) -> list[str] | None:
    """The cells of one CSV row of ``text`` (its lines), read without the csv module's
    field size limit; None when ``text`` is not one whole row."""
    body = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\n", "\r")) \
        else text
    cell = re.compile(r'"([^"]*(?:""[^"]*)*)"|([^' + re.escape(delimiter) + r'"\r\n]*)')
    cells: list[str] = []
    pos = 0
    while True:
        m = cell.match(body, pos)
        if m is None:
            return None
        cells.append(m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos == len(body):
            return cells
        if body[pos] != delimiter:
            return None
        pos += 1
