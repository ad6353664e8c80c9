"""Results: per payee, the lines, total, titles and flags; a run of a population.

JSON output follows the contract in DESIGN.md: every amount is a decimal
string, and identical inputs give byte-identical output.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .errors import IncentivesError, UsageError, did_you_mean, error_dict
from .money import ZERO
from .policies import group_names as of_policies
from .policies.base import flatten_policies, policy_titles
from .runtime import Line, MeasureValue, PayeeState, Record, json_default, jsonable

if TYPE_CHECKING:
    from .plan import Plan
    from .tabular import Sink

__all__ = ["DETAILS_LEVELS", "PayeeResult", "Run", "check_details", "csv_header", "csv_row",
           "measure_dict", "result_json"]

#: The levels of detail of an output (``--details``): ``full`` (every line with its
#: details: the default), ``lines`` (every line without its details), ``none`` (totals,
#: titles, flags and values; no lines). See docs/performance.md, "Detail levels".
DETAILS_LEVELS = ("none", "lines", "full")


def check_details(details: str) -> str:
    """``details`` when it is one of :data:`DETAILS_LEVELS`; else a :class:`UsageError`
    naming the three.

    >>> check_details("lines")
    'lines'
    >>> check_details("some")
    Traceback (most recent call last):
    ...
    incentives.errors.UsageError: details 'some': give none, lines or full
    """
    if details not in DETAILS_LEVELS:
        raise UsageError(f"details {details!r}: give none, lines or full")
    return details


def _plain_text(value: Decimal) -> str:
    """A decimal written out, never in exponent notation nor as a negative zero."""
    if not value:
        value = abs(value)
    return format(value, "f") if value.is_finite() else str(value)


def measure_dict(m: MeasureValue) -> dict[str, Any]:
    """A measure as JSON-ready data: its value and each transaction (or event) behind
    it, with its share, the rule that credited it and what it contributed."""
    data: dict[str, Any] = {"value": _plain_text(m.value)}
    if m.items:
        rows = []
        for c, x in m.items:
            t = c.transaction
            row: dict[str, Any] = {"kind": t.kind, "id": t.id, "date": t.date.isoformat(),
                                   "amount": _plain_text(t.amount), "payee": c.payee,
                                   "share": _plain_text(c.share), "rule": c.rule,
                                   "value": _plain_text(x)}
            if c.via:
                row["via"] = list(c.via)
            rows.append(row)
        data["transactions"] = rows
    if m.events:
        data["events"] = [{**jsonable(e), "value": _plain_text(x)} for e, x in m.events]
    return data


@dataclass(slots=True)
class PayeeResult:
    """One payee's pay for one period."""

    payee: str
    period: str
    group: str | None
    lines: list[Line]
    total: Decimal
    titles: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    #: the checked record this result was computed from (for statements), when known
    record: Record | None = field(default=None, repr=False, compare=False)
    #: the plan that made this result (for statements), when known
    plan: Plan | None = field(default=None, repr=False, compare=False)
    #: the payee's measures in the period, with the credits behind each (plans with
    #: ``measures:``)
    measures: dict[str, MeasureValue] = field(default_factory=dict, repr=False)

    @classmethod
    def from_state(cls, s: PayeeState) -> PayeeResult:
        r = s.record
        # the state's running total is the sum of its lines (every line goes through
        # PayeeState.add_line or Compiled.line); the state is not used afterwards
        return cls(r.payee, r.period, r.group, s.lines, s.total, s.titles, s.flags, s.values,
                   record=r, measures=s.measures)

    def amount(self, policy: str) -> Decimal:
        """The sum of this payee's lines from ``policy`` (zero if it made none)."""
        return sum((line.amount for line in self.lines if line.policy == policy), ZERO)

    def line(self, policy: str) -> Line:
        """The (first) line made by ``policy``; ``KeyError`` if there is none."""
        for line in self.lines:
            if line.policy == policy:
                return line
        raise KeyError(f"payee {self.payee!r} has no line from {policy!r}")

    def explain(self, format: str = "text", lang: str = "en", *,
                templates: str | os.PathLike[str] | None = None) -> str:
        """This payee's statement, which a person can recompute by hand.

        ``format`` is ``text``, ``markdown`` or ``html``; ``lang`` is ``en`` or ``zh``;
        ``templates`` is a folder of HTML templates of one's own (``html`` only; see
        docs/statements.md). See :mod:`incentives.explain`.
        """
        from .explain import explain

        return explain(self, format=format, lang=lang,
                       templates=None if templates is None else os.fspath(templates))

    def _repr_html_(self) -> str:
        from .explain import result_html

        return result_html(self)

    def to_json(self, *, details: str = "full") -> str:
        """This result as one line of JSON (what a line of ``incentives stream`` holds,
        and an entry of ``results`` in ``incentives run --format json``), at the level
        of ``details`` (``full``, ``lines`` or ``none``: see :data:`DETAILS_LEVELS`)."""
        return result_json(self, check_details(details))

    def to_dict(self, *, convert: Callable[[Any], Any] | None = jsonable,
                details: str = "full") -> dict[str, Any]:
        """JSON-ready data: amounts as decimal strings (``convert=None``: details and
        values left as they are, for an encoder that converts them itself).

        ``details``: ``full`` (every line with its details), ``lines`` (every line's
        ``id``, ``label``, ``amount`` and ``type``; the measures' values only) or
        ``none`` (no ``lines``, no ``measures``).
        """
        check_details(details)
        data: dict[str, Any] = {
            "payee": self.payee,
            "period": self.period,
            "group": self.group,
            "total": str(self.total),
        }
        if details == "full":
            data["lines"] = [line.to_dict(convert=convert) for line in self.lines]
        elif details == "lines":
            data["lines"] = [{"id": line.policy, "label": line.label,
                              "amount": str(line.amount), "type": line.type}
                             for line in self.lines]
        data["titles"] = list(self.titles)
        data["flags"] = list(self.flags)
        data["values"] = convert(self.values) if convert is not None else self.values
        if self.measures and details != "none":
            if details == "full":
                data["measures"] = {name: measure_dict(m) for name, m in self.measures.items()}
            else:
                data["measures"] = {name: {"value": _plain_text(m.value)}
                                    for name, m in self.measures.items()}
        return data


def result_json(r: PayeeResult, details: str = "full") -> str:
    """The JSON text of one result at the level of ``details``: exactly an entry of the
    ``results`` array of :meth:`Run.to_json` (and a line of ``incentives stream --format
    jsonl``, without its newline). What an incremental writer writes per result.

    Each line's details are built once, as JSON data, from what its policy captured
    (:meth:`~incentives.runtime.Line.json_details`), and the C encoder writes the
    whole result with no call back into Python for the plans' own policies.
    """
    try:
        return _encode(_json_data(r, details))
    except TypeError:  # something only jsonable knows how to write (a key, say)
        return json.dumps(r.to_dict(details=details), ensure_ascii=False)


def _encoder() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, default=json_default)``, with the C
    encoder made once rather than for every result (where there is one)."""
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    text = getattr(encoder, "c_encode_basestring", None)
    if make is None or text is None:  # pragma: no cover - CPython has both
        return functools.partial(json.dumps, ensure_ascii=False, default=json_default)
    # what JSONEncoder(ensure_ascii=False, default=json_default, check_circular=False)
    # gives its C encoder: the same text (the library's data holds no cycles)
    c = make(None, json_default, text, None, ": ", ", ", False, False, True)

    def encode(value: Any) -> str:
        return "".join(c(value, 0))

    return encode


_encode = _encoder()


def _json_data(r: PayeeResult, details: str) -> dict[str, Any]:
    """What :meth:`PayeeResult.to_dict` gives with ``convert=None``, the details of
    lines as JSON data wherever their policies can make it straight away."""
    data: dict[str, Any] = {"payee": r.payee, "period": r.period, "group": r.group,
                            "total": str(r.total)}
    if details == "full":
        data["lines"] = [{"id": line.policy, "label": line.label, "amount": str(line.amount),
                          "type": line.type, "details": line.json_details()}
                         for line in r.lines]
    elif details == "lines":
        data["lines"] = [{"id": line.policy, "label": line.label, "amount": str(line.amount),
                          "type": line.type} for line in r.lines]
    elif details != "none":
        check_details(details)
    data["titles"] = r.titles
    data["flags"] = r.flags
    values = r.values
    if values:
        values = {k: str(v) if v.__class__ is Decimal else v for k, v in values.items()}
    data["values"] = values
    if r.measures and details != "none":
        if details == "full":
            data["measures"] = {name: measure_dict(m) for name, m in r.measures.items()}
        else:
            data["measures"] = {name: {"value": _plain_text(m.value)}
                                for name, m in r.measures.items()}
    return data


@dataclass
class Run:
    """The results of evaluating a population, with the errors of the records that failed."""

    plan: Plan
    results: list[PayeeResult]
    errors: list[IncentivesError] = field(default_factory=list)
    state: Any = None

    def __post_init__(self) -> None:
        for r in self.results:
            if r.plan is None:
                r.plan = self.plan

    def __iter__(self) -> Iterator[PayeeResult]:
        return iter(self.results)

    def explain(self, payee: str, period: str | None = None, *, format: str = "text",
                lang: str = "en", templates: str | os.PathLike[str] | None = None) -> str:
        """The statement of ``payee`` (in ``period``, when the run has several);
        ``templates``: a folder of HTML templates of one's own (``html`` only)."""
        return self.get(payee, period).explain(format=format, lang=lang, templates=templates)

    def _repr_html_(self) -> str:
        from .explain import run_html

        return run_html(self)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, payee: str) -> PayeeResult:
        return self.get(payee)

    def get(self, payee: str, period: str | None = None) -> PayeeResult:
        """The result of ``payee`` (in ``period``, when the run has several)."""
        found = [r for r in self.results
                 if r.payee == payee and (period is None or r.period == period)]
        if not found:
            raise KeyError(f"no result for payee {payee!r}"
                           + (f" in period {period}" if period else ""))
        if len(found) > 1:
            raise KeyError(f"payee {payee!r} has results in several periods; name one")
        return found[0]

    @property
    def total(self) -> Decimal:
        """The sum of every payee's total."""
        return sum((r.total for r in self.results), ZERO)

    @property
    def ok(self) -> bool:
        """Whether every record was evaluated."""
        return not self.errors

    # ------------------------------------------------------------------ output
    def to_dict(self, *, convert: Callable[[Any], Any] | None = jsonable,
                details: str = "full") -> dict[str, Any]:
        """JSON-ready data in the documented shape (plus ``groups`` when the plan has
        group figures); ``convert=None`` leaves Decimals in details and values;
        ``details``: see :meth:`PayeeResult.to_dict` (errors are always whole)."""
        data: dict[str, Any] = {
            "plan": {"name": self.plan.name, "version": self.plan.version},
            "results": [r.to_dict(convert=convert, details=details) for r in self.results],
            "errors": [error_dict(e) for e in self.errors],
        }
        if group_names(self.plan):
            data["groups"] = jsonable(self.groups())
        return data

    def groups(self) -> list[dict[str, Any]]:
        """Per period and group, the figures team policies publish once per group
        (spread figures, group values, pools): ``[{"period", "group", "size",
        "values": {...}}]``, sorted by period and group."""
        names = group_names(self.plan)
        if not names:
            return []
        out: dict[tuple[str, str], dict[str, Any]] = {}
        add_to_groups(out, names, self.results)
        return [out[k] for k in sorted(out)]

    def to_json(self, *, indent: int | None = 2, details: str = "full") -> str:
        """The run as JSON text; byte-identical for identical inputs.

        Laid out for people and for speed: each top-level key on its own line
        and each result (each error, each group) compact on a line of its own,
        so the text is written by the C encoder rather than indented node by
        node. ``indent=None`` gives one line. ``details``: ``full`` (the
        default), ``lines`` or ``none`` (see :data:`DETAILS_LEVELS`).
        """
        check_details(details)
        if indent is None:
            try:
                # the encoder turns Decimals and dates into strings itself, as jsonable would
                return _layout(self.to_dict(convert=None, details=details), None,
                               json_default)
            except TypeError:  # something only jsonable knows how to write (a key, say)
                return _layout(self.to_dict(details=details), None, None)
        return "".join(json_pieces(self.plan, (result_json(r, details) for r in self.results),
                                   self.errors, self.groups() if group_names(self.plan)
                                   else None, indent=indent))

    def columns(self) -> list[str]:
        """The policy ids that made lines, in plan order."""
        seen: dict[str, None] = {}
        order = {pid: i for i, pid in enumerate(all_policy_ids(self.plan))}
        for r in self.results:
            for line in r.lines:
                seen.setdefault(line.policy, None)
        return sorted(seen, key=lambda pid: order.get(pid, len(order)))

    def _amount(self, r: PayeeResult, policy: str) -> Decimal:
        """``r``'s amount from ``policy``, written to the plan's quantum even when the
        policy made no line for ``r`` (``0.00``, not ``0``)."""
        amount = r.amount(policy)
        if amount or any(line.policy == policy for line in r.lines):
            return amount
        return self.plan.rounding.round(ZERO)

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat row per payee and period: a column per policy, the total, titles, flags."""
        cols = self.columns()
        rows = []
        for r in self.results:
            row: dict[str, Any] = {"payee": r.payee, "period": r.period, "group": r.group or ""}
            for c in cols:
                row[c] = self._amount(r, c)
            row["total"] = r.total
            row["titles"] = "; ".join(r.titles)
            row["flags"] = "; ".join(r.flags)
            rows.append(row)
        return rows

    def write(self, target: str | os.PathLike[str], *, pay_with_errors: bool = False,
              details: str = "full") -> bool:
        """Write the run to a sink: a ``.xlsx`` workbook, a ``.parquet`` file (with its
        ``.lines`` and ``.errors`` files) or a database URL with ``table=NAME`` (see
        :mod:`incentives.tabular` for the tables, docs/data-sources.md for the rules).

        All of it or nothing: a file replaces the old one whole; a database gets
        one transaction that replaces this plan's rows of the run's periods. When
        records failed, a database gets their errors and keeps the pay rows it had,
        unless ``pay_with_errors``. Returns whether the pay was written.
        ``details``: ``full`` (each line's details as JSON text), ``lines`` (the
        lines with empty details) or ``none`` (totals and errors; no line rows).
        """
        from .sources import open_sink, sink_kind

        check_details(details)
        self.write_to(open_sink(target, pay_with_errors=pay_with_errors), details=details)
        return not self.errors or pay_with_errors or sink_kind(target) != "sql"

    def write_to(self, sink: Sink, *, details: str = "full") -> None:
        """Write the run's tables to an open :class:`~incentives.tabular.Sink` and
        commit; on any error (or an interrupt) the sink is discarded. ``details``: as
        :meth:`write`."""
        from .tabular import result_tables

        try:
            sink.write(result_tables(self, details=check_details(details)))
            sink.commit()
        except BaseException:
            sink.discard()
            raise

    def to_sql(self, url: str, *, pay_with_errors: bool = False,
               details: str = "full") -> bool:
        """Write the run to the database ``url`` (``...?table=NAME``: the tables NAME,
        NAME_lines and NAME_errors) in one transaction; see :meth:`write`."""
        self._sink_is(url, "sql", "a database URL such as sqlite:///pay.db?table=pay")
        return self.write(url, pay_with_errors=pay_with_errors, details=details)

    def to_parquet(self, path: str | os.PathLike[str], *, details: str = "full") -> None:
        """Write the run to ``path`` (``.parquet``: the totals) and, next to it,
        ``STEM.lines.parquet`` and ``STEM.errors.parquet``; see :meth:`write`."""
        self._sink_is(path, "parquet", "a .parquet file")
        self.write(path, details=details)

    def to_excel(self, path: str | os.PathLike[str], *, details: str = "full") -> None:
        """Write the run to the workbook ``path`` (``.xlsx``: sheets totals, lines and
        errors; no cell is ever a formula); see :meth:`write`."""
        self._sink_is(path, "excel", "an .xlsx file")
        self.write(path, details=details)

    @staticmethod
    def _sink_is(target: str | os.PathLike[str], kind: str, want: str) -> None:
        from .errors import UsageError
        from .sources import sink_kind, source_label

        if sink_kind(target) != kind:
            raise UsageError(f"{source_label(target)}: give {want}")

    def to_dataframe(self, *, floats: bool = False) -> Any:
        """The run as a pandas DataFrame: one row per payee and period (needs pandas).

        A column per policy that made lines, then ``total``, ``titles``, ``flags``;
        amounts are exact Decimals, or float64 with ``floats=True`` (for plotting).
        See :func:`incentives.dataframes.run_frame`.
        """
        from .dataframes import run_frame

        return run_frame(self, floats=floats)

    def to_csv(self, *, details: str = "full") -> str:
        """The run as CSV: one row per payee and period, by period, group and payee.

        The same bytes as ``incentives stream --format csv`` for the same records.
        Text cells that a spreadsheet would take for a formula are neutralised
        (see :func:`csv_text`); amounts are written as they are. CSV never holds
        details: ``full`` and ``lines`` give a column per policy; ``none`` gives
        payee, period, group, total, titles and flags only.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = csv_columns(self.columns(), check_details(details))
        writer.writerow(csv_header(columns))
        zero = str(self.plan.rounding.round(ZERO))
        writer.writerows(csv_rows(csv_sorted(self.results), columns, zero))
        return out.getvalue()

    def to_table(self, *, width: int | None = None,
                 columns: str | Sequence[str] | None = None, details: str = "full") -> str:
        """The run as a text table for a terminal, ``width`` columns wide at most.

        ``width`` defaults to the terminal's (``COLUMNS``, else the terminal's own,
        else 80). By default the table keeps payee, period, group and total, and
        as many policy columns as fit, in plan order; a note then names the
        columns left out. ``columns="all"`` shows every column whatever the
        width; a list (or a comma-separated string) of names (``payee``,
        ``period``, ``group``, ``total``, policy ids or labels) shows those, in
        that order. Width is display width: a CJK character takes two columns.
        ``details="none"`` shows payee, period, group and total only (no policy
        column: naming one in ``columns`` is then an error).
        """
        from .display import clean, cut, rule, terminal_width, wrap

        limit = width if width is not None else terminal_width()
        labels = policy_titles(self.plan.policies)
        policies = check_details(details) != "none"
        made = self.columns() if policies else []
        cols = self._table_columns(made, labels, columns, policies=policies)
        fit = columns is None
        left_out: list[str] = []
        if fit:
            fixed = [c for c in cols if c.policy is None]
            used = sum(c.width for c in fixed) + 2 * (len(fixed) - 1)
            if used > limit:  # long payees or groups: cut them (with …) to fit
                cuttable = [c for c in fixed if c.key in ("payee", "group")]
                room = limit - (used - sum(c.width for c in cuttable))
                for c in cuttable:
                    c.cells = [cut(x, max(8, room // len(cuttable))) for x in c.cells]
                    c.__post_init__()
                used = sum(c.width for c in fixed) + 2 * (len(fixed) - 1)
            kept: list[_Column] = []
            policy_cols = [c for c in cols if c.policy is not None]
            for i, c in enumerate(policy_cols):
                if used + 2 + c.width > limit:
                    left_out = [x.key for x in policy_cols[i:]]
                    break
                kept.append(c)
                used += 2 + c.width
            cols = [*fixed[:3], *kept, *fixed[3:]]
        from .display import row, table

        depth = max((len(c.header) for c in cols), default=1)
        sizes = [c.width for c in cols]
        right = [c.numeric for c in cols]
        lines = table([[c.header[i] if i < len(c.header) else "" for c in cols]
                       for i in range(depth)],
                      [[c.cells[j] for c in cols] for j in range(len(self.results))],
                      right=right, sizes=sizes)
        if self.results:
            label_at = _total_label_at(cols)
            if label_at is None:  # no column to say "total" in: a rule sets the totals apart
                lines.append(rule(sizes))
            lines.append(row(["total" if k == label_at else c.total for k, c in enumerate(cols)],
                             sizes, right))
        if left_out:
            n = len(left_out)
            note = (f"({n} column{'s' if n > 1 else ''} left out to fit {limit} characters: "
                    f"{', '.join(clean(x) for x in left_out)}; --columns all shows every "
                    "column, --format csv/json give everything)")
            lines += wrap(note, limit, indent=" ")
        extras = [f"{clean(r.payee)} {r.period}: titles {', '.join(r.titles)}"
                  for r in self.results if r.titles]
        extras += [f"{clean(r.payee)} {r.period}: flags {', '.join(r.flags)}"
                   for r in self.results if r.flags]
        for g in self.groups():
            if g["values"]:
                figures = ", ".join(f"{k} {_short(v)}" for k, v in g["values"].items())
                extras.append(f"group {clean(g['group'] or '-')} {g['period']}: {figures}")
        if extras:
            lines.append("")
            for extra in extras:
                lines += wrap(clean(extra), limit)
        if self.errors:
            lines += ["", f"{len(self.errors)} record(s) not evaluated:"]
            for e in self.errors:
                lines += wrap(clean(f"  {e}"), limit)
        return "\n".join(lines) + "\n"

    def _table_columns(self, made: list[str], labels: dict[str, str],
                       columns: str | Sequence[str] | None, *,
                       policies: bool = True) -> list[_Column]:
        """The table's columns: every one (``columns`` None or ``"all"``), or those named."""
        from .display import clean
        from .display import width as text_width

        results = self.results

        def text(key: str, cells: list[str], total: str = "") -> _Column:
            return _Column(key, None, [key], [clean(x) for x in cells], False, total)

        def policy(pid: str) -> _Column:
            cells = []
            for r in results:
                has = any(line.policy == pid for line in r.lines)
                cells.append(str(r.amount(pid)) if has else "-")
            total = str(sum((self._amount(r, pid) for r in results), ZERO))
            label = clean(labels.get(pid, pid))
            need = max([text_width(x) for x in [*cells, total]], default=0)
            return _Column(pid, pid, _split_label(label, need), cells, True, total)

        fixed = {
            "payee": lambda: text("payee", [r.payee for r in results]),
            "period": lambda: text("period", [r.period for r in results]),
            "group": lambda: text("group", [r.group or "" for r in results]),
            "total": lambda: _Column("total", None, ["total"], [str(r.total) for r in results],
                                     True, str(self.total)),
        }
        if columns is None or (isinstance(columns, str) and columns.strip().lower() == "all"):
            return [fixed["payee"](), fixed["period"](), fixed["group"](),
                    *[policy(pid) for pid in made], fixed["total"]()]
        names = ([n.strip() for n in columns.split(",")] if isinstance(columns, str)
                 else [str(n).strip() for n in columns])
        ids = all_policy_ids(self.plan)
        by_label = {labels[pid]: pid for pid in reversed(ids) if pid in labels}
        chosen: list[_Column] = []
        for name in dict.fromkeys(names):  # a name given twice is shown once
            if not name:
                raise UsageError("--columns: an empty column name (names are separated by commas)")
            if name in fixed:
                chosen.append(fixed[name]())
            elif not policies and (name in ids or name in by_label):
                raise UsageError(f"--columns: {name!r} is a policy's column, which --details "
                                 "none leaves out (columns: payee, period, group, total)")
            elif name in ids or name in by_label:
                chosen.append(policy(name if name in ids else by_label[name]))
            else:
                choices = [*fixed, *ids]
                if name.lower() == "all":
                    raise UsageError("--columns: 'all' stands alone; or name the columns "
                                     f"({', '.join(choices)}, or a policy's label)")
                hint = did_you_mean(name, [*choices, *by_label])
                shown = repr(name[:40]) + ("…" if len(name) > 40 else "")
                raise UsageError(f"--columns: no column {shown}"
                                 + (f"; {hint} " if hint else " ")
                                 + f"(columns: all, {', '.join(choices)}, or a policy's label)")
        return chosen

# ---------------------------------------------------------------------- CSV
# One writer for ``incentives run --format csv`` and ``incentives stream --format csv``.

#: A cell starting with one of these is read as a formula by spreadsheets (OWASP,
#: "CSV injection"); the fullwidth forms too, which some spreadsheets convert.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def add_to_groups(groups: dict[tuple[str, str], dict[str, Any]], names: Sequence[str],
                  results: Iterable[PayeeResult]) -> None:
    """Count ``results`` into ``groups`` (by period and group, as :meth:`Run.groups`
    lists them), each group's figures ``names`` taken from its first member having
    them; a writer adds a run's results a period at a time."""
    for r in results:
        key = (r.period, r.group or "")
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = {"period": r.period, "group": r.group, "size": 0,
                                   "values": {}}
        entry["size"] += 1
        for n in names:
            if n in r.values and n not in entry["values"]:
                entry["values"][n] = r.values[n]


def csv_text(value: str) -> str:
    """A text cell (an id, a group, a title) safe to open in a spreadsheet: one that
    starts like a formula gets a leading single quote, as OWASP recommends.
    Amounts are never passed through it: ``-632.00`` stays a number.

    >>> csv_text("=1+1"), csv_text("-1"), csv_text("@SUM(A1)"), csv_text("m-017")
    ("'=1+1", "'-1", "'@SUM(A1)", 'm-017')
    """
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def csv_order(r: PayeeResult) -> tuple[str, str, str]:
    """The order of CSV rows: by period, group and payee."""
    return (r.period, r.group or "", r.payee)


_PERIOD_GROUP_PAYEE = attrgetter("period", "group", "payee")


def csv_sorted(results: Iterable[PayeeResult]) -> list[PayeeResult]:
    """``results`` in the order of CSV rows (:func:`csv_order`)."""
    results = list(results)
    if all(r.group is not None for r in results):  # the key made without a call
        return sorted(results, key=_PERIOD_GROUP_PAYEE)
    return sorted(results, key=csv_order)


def csv_record(r: PayeeResult) -> list[Any]:
    """What a CSV row needs of a result, as plain JSON data: payee, period, group,
    ``{policy: amount}`` of the policies that made lines, total, titles, flags."""
    sums: dict[str, Decimal] = {}
    for line in r.lines:  # one pass: as r.amount(policy) adds them, from ZERO
        policy = line.policy
        held = sums.get(policy)
        sums[policy] = ZERO + line.amount if held is None else held + line.amount
    amounts = {policy: str(amount) for policy, amount in sums.items()}
    return [r.payee, r.period, r.group or "", amounts, str(r.total),
            "; ".join(r.titles), "; ".join(r.flags)]


def csv_rows(results: Iterable[PayeeResult], columns: list[str], zero: str
             ) -> list[list[str]]:
    """The cells of each of ``results``' rows, as :func:`csv_row` gives them: made for
    many rows at once (a period's), each period's and group's cell made once."""
    starts = FORMULA_STARTS
    texts: dict[str, str] = {}  # a period's or a group's cell
    rows: list[list[str]] = []
    append = rows.append
    for r in results:
        lines = r.lines
        # as csv_record adds them: from ZERO, a policy's lines in one figure
        sums = {line.policy: ZERO + line.amount for line in lines}
        if len(sums) != len(lines):  # a policy made more than one line
            sums = {}
            for line in lines:
                held = sums.get(line.policy)
                sums[line.policy] = ZERO + line.amount if held is None else \
                    held + line.amount
        payee, period, group = r.payee, r.period, r.group or ""
        period_cell = texts.get(period)
        if period_cell is None:
            period_cell = texts[period] = csv_text(period)
        group_cell = texts.get(group)
        if group_cell is None:
            group_cell = texts[group] = csv_text(group)
        titles, flags = r.titles, r.flags
        append([f"'{payee}" if payee.startswith(starts) else payee, period_cell, group_cell,
                *[str(sums[c]) if c in sums else zero for c in columns], str(r.total),
                csv_text("; ".join(titles)) if titles else "",
                csv_text("; ".join(flags)) if flags else ""])
    return rows


def csv_columns(columns: list[str], details: str = "full") -> list[str]:
    """The policy columns a CSV at the level of ``details`` has: ``columns`` (the
    policies that made lines, in plan order: :meth:`Run.columns`), none for ``none``."""
    return [] if details == "none" else columns


def csv_header(columns: list[str]) -> list[str]:
    """The header's cells: payee, period, group, a column per policy (``columns``, from
    :func:`csv_columns`), total, titles, flags (for ``csv.writer(...).writerow``)."""
    return [csv_text(c) for c in ["payee", "period", "group", *columns, "total", "titles",
                                  "flags"]]


def csv_row(r: PayeeResult, columns: list[str], zero: str) -> list[str]:
    """The cells of ``r``'s row under :func:`csv_header` ``(columns)``; ``zero`` (the
    plan's zero, ``0.00``) where a policy made no line for ``r``."""
    return csv_rows((r,), columns, zero)[0]


def csv_cells(record: list[Any], columns: list[str], zero: str) -> list[str]:
    """The cells of a row from :func:`csv_record` (kept as JSON data by a stream)."""
    payee, period, group, amounts, total, titles, flags = record
    return [csv_text(payee), csv_text(period), csv_text(group),
            *[amounts.get(c, zero) for c in columns], total, csv_text(titles),
            csv_text(flags)]


def write_csv_header(writer: Any, columns: list[str]) -> None:
    """The header: payee, period, group, a column per policy, total, titles, flags."""
    writer.writerow(csv_header(columns))


def write_csv_row(writer: Any, record: list[Any], columns: list[str], zero: str) -> None:
    """One row from :func:`csv_record`; ``zero`` where a policy made no line."""
    writer.writerow(csv_cells(record, columns, zero))


def json_pieces(plan: Plan, results: Iterable[str], errors: Iterable[BaseException],
                groups: list[dict[str, Any]] | None, *, indent: int = 2) -> Iterator[str]:
    """The text of :meth:`Run.to_json` in pieces, from each result's text
    (:func:`result_json`), in order. ``groups``: :meth:`Run.groups` when the plan has
    group figures (else ``None``). An incremental writer
    (:class:`incentives.output.JsonWriter`) writes :func:`json_head`, the results (one
    on each line), then :func:`json_tail`."""
    pad = " " * indent
    yield json_head(plan, indent=indent)
    yield from _json_list(pad, "results", results, f",\n{pad}{pad}")
    yield json_tail(errors, groups, indent=indent)


def json_head(plan: Plan, *, indent: int = 2) -> str:
    """The text of :meth:`Run.to_json` before its results."""
    return "{\n" + " " * indent + '"plan": ' + json.dumps(
        {"name": plan.name, "version": plan.version}, ensure_ascii=False,
        default=json_default) + ",\n"


def json_tail(errors: Iterable[BaseException], groups: list[dict[str, Any]] | None, *,
              indent: int = 2) -> str:
    """The text of :meth:`Run.to_json` after its results: the errors, the groups."""
    pad = " " * indent
    sep = f",\n{pad}{pad}"
    parts = [",\n", *_json_list(pad, "errors", (json.dumps(
        error_dict(e), ensure_ascii=False, default=json_default) for e in errors), sep)]
    if groups is not None:
        parts += [",\n", *_json_list(pad, "groups", (json.dumps(jsonable(g), ensure_ascii=False)
                                                    for g in groups), sep)]
    parts.append("\n}\n")
    return "".join(parts)


def _json_list(pad: str, key: str, items: Iterable[str], sep: str) -> Iterator[str]:
    first = True
    for item in items:
        yield (f'{pad}"{key}": [\n{pad}{pad}' if first else sep) + item
        first = False
    yield f'{pad}"{key}": []' if first else f"\n{pad}]"


def _layout(data: dict[str, Any], indent: int | None,
            default: Callable[[Any], Any] | None) -> str:
    """``data`` as JSON text: each top-level key on a line, each item of a list on a line."""
    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=default)

    if indent is None:
        return dumps(data) + "\n"
    pad = " " * indent
    parts = []
    for key, value in data.items():
        head = f"{pad}{dumps(key)}: "
        if isinstance(value, list) and value:
            items = f",\n{pad}{pad}".join(dumps(v) for v in value)
            parts.append(f"{head}[\n{pad}{pad}{items}\n{pad}]")
        else:
            parts.append(head + dumps(value))
    return "{\n" + ",\n".join(parts) + "\n}\n"


def all_policy_ids(plan: Plan) -> list[str]:
    return [p.id for p in flatten_policies(plan.policies)]


def _short(value: Any) -> str:
    """A figure for a terminal: at most 4 decimal places ('-' when undefined)."""
    if value is None:
        return "-"
    if isinstance(value, Decimal) and value.as_tuple().exponent < -4:  # type: ignore[operator]
        return str(value.quantize(Decimal("0.0001")))
    return str(value)


def group_names(plan: Plan) -> list[str]:
    """The names ``plan``'s policies publish that are figures of a whole group."""
    return of_policies(plan.policies)


@dataclass
class _Column:
    """A column of the terminal table: its header (one or two lines) and cells."""

    key: str
    policy: str | None
    header: list[str]
    cells: list[str]
    numeric: bool
    total: str
    width: int = 0

    def __post_init__(self) -> None:
        from .display import widths

        self.width = widths([[x] for x in [*self.header, *self.cells, self.total]])[0]


def _split_label(label: str, need: int) -> list[str]:
    """A policy's label as a header of one line, or two when that makes the column
    narrower than the label (split before a parenthesis, else at the best space)."""
    from .display import width as measure

    if measure(label) <= need or " " not in label.strip():
        return [label]
    paren = label.rfind(" (")
    if paren > 0:
        parts = [label[:paren], label[paren + 1:]]
    else:
        spaces = [i for i, ch in enumerate(label) if ch == " " and 0 < i < len(label) - 1]
        if not spaces:
            return [label]
        best = min(spaces, key=lambda i: max(measure(label[:i]), measure(label[i + 1:])))
        parts = [label[:best], label[best + 1:]]
    parts = [p.strip() for p in parts]
    if not all(parts) or max(measure(p) for p in parts) >= measure(label):
        return [label]
    return parts


def _total_label_at(cols: list[_Column]) -> int | None:
    """Where the totals row says "total": the text column just before the first number
    column (else the first text column); None when every column is a number."""
    first_num = next((i for i, c in enumerate(cols) if c.numeric), len(cols))
    before = [i for i in range(first_num) if not cols[i].numeric]
    if before:
        return before[-1]
    return next((i for i, c in enumerate(cols) if not c.numeric), None)

