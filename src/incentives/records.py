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

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import IncentivesError, RecordError, UsageError, did_you_mean
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

__all__ = ["RecordReader", "iter_raw_records", "read_records_file"]

_TOP = ("payee", "period", "group")
_NESTED = ("metrics", "attributes", "events")
_MISSING = object()
_PLUS = CONTEXT.plus
#: the least ``adjusted()`` an input number may have (:data:`money.MAX_PLACES`)
_MINA = -MAX_PLACES
#: The longest text a record may hold in one field (payee, group, a text attribute...).
MAX_TEXT_FIELD = 1000
_NESTED_KEYS = frozenset((*_TOP, *_NESTED))
_GOOD_PERIODS: set[str] = set()


class _Slow(Exception):
    """The fast path met something it leaves to the full check."""


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


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
        (a raw record that is already an error, as a JSONL line that is not JSON, too)."""
        quick = self._quick
        for i, raw in enumerate(raws):
            if type(raw) is dict:
                try:
                    records.append(quick(raw))
                    continue
                except _Slow:
                    pass
                except RecordError as exc:
                    errors.append(exc)
                    continue
            elif isinstance(raw, IncentivesError):
                errors.append(raw)
                continue
            try:
                records.append(self._read(raw, i))
            except RecordError as exc:
                errors.append(exc)

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
        payee = payee_raw.strip()
        if len(payee) > MAX_TEXT_FIELD:
            raise RecordError(f"payee is too long ({len(payee)} characters, at most "
                              f"{MAX_TEXT_FIELD})", payee=payee[:40] + "...", field="payee")
        period = raw.get("period")
        if _blank(period):
            period = self.default_period
        if period is None:
            raise RecordError("missing period", payee=payee, field="period")
        period = str(period).strip()
        try:
            parse_period(period)
        except ValueError as exc:
            raise RecordError(str(exc), payee=payee, field="period") from None
        group = raw.get("group")

        def fail(message: str, field: str) -> RecordError:
            return RecordError(message, payee=payee, period=period, field=field)

        group = self._group(group, fail)

        if any(k in raw for k in _NESTED):
            for k in raw:
                if k not in _TOP and k not in _NESTED:
                    raise fail(f"unknown key {k!r}" + self._hint(k, (*_TOP, *_NESTED)), str(k))
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
                if k in self.metric_columns:
                    metrics_raw[self.metric_columns[k]] = v
                elif k in self.attr_columns:
                    attrs_raw[self.attr_columns[k]] = v
                elif self.unknown == "error":
                    known = [*self.metric_columns, *self.attr_columns, *_NESTED]
                    raise fail(f"unknown field {k!r}" + self._hint(str(k), known), str(k))
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
            group = _as_text(group) if isinstance(group, Decimal) else str(group).strip()
            if len(group) > MAX_TEXT_FIELD:
                raise fail(f"group is too long ({len(group)} characters, at most "
                           f"{MAX_TEXT_FIELD})", "group")
        known = self.inputs.groups
        if known is not None and group not in known:
            if group is None:
                raise fail("missing group (the plan declares its groups)", "group")
            raise fail(f"unknown group {group!r}" + self._hint(group, known), "group")
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
                raise fail(f"unknown {what[:-1]} {k!r}" + self._hint(str(k), declared),
                           f"{what}.{k}")

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
                raise fail(f"must be true or false, not {value!r}", field)
        else:
            if isinstance(value, (dict, list, bool)):
                raise fail(f"must be text, not {type(value).__name__}", field)
            out = _as_text(value) if isinstance(value, Decimal) else str(value).strip()
            if len(out) > MAX_TEXT_FIELD:
                raise fail(f"text too long ({len(out)} characters, at most {MAX_TEXT_FIELD})",
                           field)
        if spec.allowed is not None and out not in spec.allowed:
            allowed = [str(a) for a in spec.allowed]
            raise fail(f"{out!r} is not one of {', '.join(allowed)}"
                       + self._hint(str(out), allowed), field)
        return out

    def _events(self, given: Mapping[str, Any], fail: Any) -> dict[str, list[dict[str, Any]]]:
        declared = self.inputs.events
        for k in given:
            if k not in declared:
                raise fail(f"unknown event list {k!r}" + self._hint(str(k), declared),
                           f"events.{k}")
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
                    raise fail(f"unknown field {k!r}" + self._hint(str(k), fields),
                               f"events.{name}[{i}].{k}")
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
                            and len(value) <= MAX_TEXT_FIELD:
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
                raise fail(f"{value!r} is not a date like 2026-05-03", where) from None
        if ftype == "bool":
            if not isinstance(value, bool):
                raise fail(f"must be true or false, not {value!r}", where)
            return value
        if isinstance(value, (dict, list, bool)):
            raise fail(f"must be text, not {type(value).__name__}", where)
        text = _as_text(value) if isinstance(value, Decimal) else str(value)
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
                             "_AN": frozenset(inputs.attributes)}
    code = ["def read(raw):",
            "    payee = raw.get('payee')",
            "    if payee.__class__ is not str: raise _Slow",
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
             "    period = period.strip()",
             "    if period not in _GOOD: _good_period(period)",
             "    group = raw.get('group')",
             "    if group is not None:",
             "        if group.__class__ is not str: raise _Slow",
             "        group = group.strip() or None",
             "        if group is not None and len(group) > _MAXT: raise _Slow"]
    if inputs.groups is not None:
        code.append(f"    if group not in {const(frozenset(inputs.groups))}: raise _Slow")
    code += ["    if 'metrics' in raw or 'attributes' in raw or 'events' in raw:"]
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
    scope["__builtins__"] = {"len": len, "int": int, "str": str, "dict": dict, "list": list}
    exec(compile("\n".join(code), "<record reader>", "exec"), scope)
    read: Callable[[dict[str, Any]], Record] = scope["read"]
    return read


def _events_code(inputs: Inputs, const: Callable[[Any], str]) -> list[str]:
    """The part of ``read`` (see :func:`_fast_reader`) that reads the events and
    returns the record."""
    declared = inputs.events
    empty = "{" + ", ".join(f"{n!r}: []" for n in declared) + "}"
    code = ["    if not er:",
            "        if er is not None and er.__class__ is not dict: raise _Slow",
            f"        return _Record(payee, period, group, attributes, metrics, {empty})",
            "    if er.__class__ is not dict: raise _Slow"]
    plain = all(t in ("number", "text") for spec in declared.values()
                for t in spec.fields.values())
    if not declared or not plain:
        # dates, true/false...: read (or reported) by the reader's own method
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
        for k, (fname, ftype) in enumerate(fields):
            v = f"f{k}"
            code.append(f"                {v} = item.get({fname!r})")
            if ftype == "number":
                code.append(f"                if not ({v}.__class__ is _Decimal and "
                            f"{v}.is_finite() and _MINA <= {v}.adjusted() < _MAXD and "
                            f"_plus({v}) == {v}): raise _Slow")
                lim = spec.limits.get(fname)
                if lim is not None:  # out of its limits: the reader's own method reports it
                    checks = ([f"{v} < {const(lim.min)}"] if lim.min is not None else []) + (
                        [f"{v} > {const(lim.max)}"] if lim.max is not None else []) + (
                        [f"{v} != {v}.to_integral_value()"] if lim.integer else [])
                    if checks:
                        code.append(f"                if {' or '.join(checks)}: raise _Slow")
            else:
                code.append(f"                if not ({v}.__class__ is str and {v}.strip() "
                            f"and len({v}) <= _MAXT): raise _Slow")
        row = "{" + ", ".join(f"{fname!r}: f{k}" for k, (fname, _) in enumerate(fields)) + "}"
        code.append(f"                {var}.append({row})")
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


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_parse_float, parse_int=_parse_int,
                      parse_constant=lambda c: c)


def iter_raw_records(path: str | Path) -> Iterator[Any]:
    """Yield the raw records of a JSON, JSONL or CSV file, in file order.

    A line of JSONL that is not JSON is yielded as a :class:`RecordError`, so
    the good lines are still read.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        handle = p.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageError(f"cannot read records file {str(path)!r}: {exc.strerror}") from None
    with handle:
        if suffix == ".csv":
            yield from _iter_csv(handle)
        elif suffix in (".jsonl", ".ndjson"):
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield _loads(line)
                except json.JSONDecodeError as exc:
                    yield RecordError(f"line {n} is not JSON: {exc.msg}", field=f"line {n}")
        elif suffix == ".json":
            try:
                data = _loads(handle.read())
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"{str(path)!r} is not JSON: {exc.msg} at line {exc.lineno}") from None
            if isinstance(data, dict) and "records" in data:
                data = data["records"]
            if not isinstance(data, list):
                raise UsageError(f"{str(path)!r}: expected a list of records")
            yield from data
        else:
            raise UsageError(
                f"cannot tell the format of {str(path)!r}: use .json, .jsonl or .csv")


def _iter_csv(handle: io.TextIOBase) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(handle)
    for row in reader:
        clean: dict[str, Any] = {}
        for k, v in row.items():
            if k is None:
                clean["<extra cells>"] = v  # more cells than the header names
                continue
            clean[k.strip()] = v
        yield clean


def read_records_file(path: str | Path) -> list[Any]:
    """Every raw record of a file, as a list (see :func:`iter_raw_records`)."""
    return list(iter_raw_records(path))
