"""Writing a run as it is made: a period's results at a time, never the whole run held.

``incentives run`` evaluates period by period (:meth:`CompiledPlan.periods
<incentives.engine.CompiledPlan.periods>`) and hands each period's results to a
writer of its output format, then drops them. Each writer writes the same bytes
(or, for a sink, the same rows) as the whole-run output of
:class:`~incentives.results.Run`:

- :class:`JsonWriter`: the document of :meth:`Run.to_json`, laid out the same way
  (each result on a line of its own), the errors and the group figures at the end;
- :class:`CsvWriter`: the rows of :meth:`Run.to_csv`. Its header names the policies
  that made lines, known only at the end: the rows wait in a temporary file (written
  with the columns of the policies that made lines so far, which is what the header
  says almost always; otherwise they are written again with the columns found);
- :class:`SinkWriter`: the tables of :func:`~incentives.tabular.result_tables`
  to a :class:`~incentives.tabular.Sink` (a database, a workbook, Parquet), a
  period at a time within its one transaction or its staged files.

Each writer is given the periods in calendar order, each period's results sorted by
payee (what :meth:`CompiledPlan.periods` yields), or a large period in parts, one
after another, in the order the format writes them (``parts="payee"`` for JSON,
``"group"`` for CSV, when the plan allows: see :meth:`CompiledPlan.periods`); then
:meth:`finish` with the run's errors, sorted; :meth:`discard` drops what was written.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO

from .errors import IncentivesError
from .money import ZERO
from .results import (
    add_to_groups,
    all_policy_ids,
    check_details,
    csv_header,
    csv_rows,
    csv_sorted,
    group_names,
    json_head,
    json_tail,
    result_json,
)

if TYPE_CHECKING:
    from .plan import Plan
    from .results import PayeeResult
    from .tabular import Sink

__all__ = ["CsvWriter", "JsonWriter", "RunWriter", "SinkWriter", "copy_text"]

#: the characters copied at a time from a temporary file
_CHUNK = 1 << 20
#: the results encoded (or made rows) at a time, then written
BATCH = 2_000


class RunWriter(Protocol):
    """Writes a run a period at a time (see the module's documentation)."""

    #: how many results, and how many lines, were given to :meth:`add`
    results: int
    lines: int

    def add(self, results: Sequence[PayeeResult]) -> None: ...

    def finish(self, errors: Sequence[IncentivesError]) -> None: ...

    def discard(self) -> None: ...


class JsonWriter:
    """The document of :meth:`Run.to_json <incentives.results.Run.to_json>` (with its
    default layout) at the level of ``details``, written to ``handle`` as the periods
    come: :func:`~incentives.results.json_head`, the results a batch at a time (one
    on each line), then :func:`~incentives.results.json_tail`."""

    def __init__(self, handle: TextIO, plan: Plan, *, details: str = "full") -> None:
        self.handle = handle
        self.plan = plan
        self.details = check_details(details)
        self.results = 0
        self.lines = 0
        self._names = group_names(plan)
        self._groups: dict[tuple[str, str], dict[str, Any]] = {}
        handle.write(json_head(plan))

    def add(self, results: Sequence[PayeeResult]) -> None:
        if not results:
            return
        write, details = self.handle.write, self.details
        for start in range(0, len(results), BATCH):  # a batch's text at a time
            texts = [result_json(r, details) for r in results[start:start + BATCH]]
            write(('  "results": [\n    ' if not self.results else ",\n    ")
                  + ",\n    ".join(texts))
            self.results += len(texts)
        self.lines += sum(len(r.lines) for r in results)
        if self._names:
            add_to_groups(self._groups, self._names, results)

    def finish(self, errors: Sequence[IncentivesError]) -> None:
        groups = [self._groups[k] for k in sorted(self._groups)] if self._names else None
        end = "\n  ]" if self.results else '  "results": []'
        self.handle.write(end + json_tail(errors, groups))

    def discard(self) -> None:
        pass


class CsvWriter:
    """The CSV of :meth:`Run.to_csv <incentives.results.Run.to_csv>` at the level of
    ``details``, written to ``handle`` by :meth:`finish`; until then the rows wait in a temporary file (in
    ``folder``, or the system's temporary folder), which is gone when the writer is
    finished or discarded, or the process ends."""

    def __init__(self, handle: TextIO, plan: Plan, *, details: str = "full",
                 folder: str | None = None) -> None:
        self.handle = handle
        self.results = 0
        self.lines = 0
        #: ``none``: no policy column
        self._policies = check_details(details) != "none"
        self._order = {pid: i for i, pid in enumerate(all_policy_ids(plan))}
        # the columns the rows are written with: the policies that made lines so far,
        # in plan order (those of the first period, mostly: the rows are then copied
        # as they are under the header)
        self._columns: list[str] = []
        self._seen: dict[str, None] = {}
        #: (the row from which, the columns the rows are written with)
        self._segments: list[tuple[int, list[str]]] = [(0, [])]
        self._zero = str(plan.rounding.round(ZERO))
        self._body: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115 - closed by finish
            "w+", encoding="utf-8", newline="", dir=folder)
        self._writer = csv.writer(self._body, lineterminator="\n")

    def add(self, results: Sequence[PayeeResult]) -> None:
        if not results:
            return
        seen = self._seen
        before = len(seen)
        for r in results:
            for line in r.lines if self._policies else ():
                if line.policy not in seen:
                    seen[line.policy] = None
            self.lines += len(r.lines)
        if len(seen) != before:  # a policy's first line: the rows from here get its column
            self._columns = self.columns()
            if self._segments[-1][0] == self.results:  # no row written with the last
                self._segments.pop()
            self._segments.append((self.results, list(self._columns)))
        self._writer.writerows(csv_rows(csv_sorted(results), self._columns, self._zero))
        self.results += len(results)

    def columns(self) -> list[str]:
        """The header's policy columns: those that made lines, as :meth:`Run.columns`."""
        order = self._order
        return sorted(self._seen, key=lambda pid: order.get(pid, len(order)))

    def finish(self, errors: Sequence[IncentivesError]) -> None:
        final = self.columns()
        writer = csv.writer(self.handle, lineterminator="\n")
        writer.writerow(csv_header(final))
        body = self._body
        body.seek(0)
        if len(self._segments) == 1 and final == self._segments[0][1]:
            shutil.copyfileobj(body, self.handle, _CHUNK)
        else:  # some policy made no line (or one not of the plan did): its columns change
            self._rewrite(writer, final)
        self.discard()

    def _rewrite(self, writer: Any, final: list[str]) -> None:
        """Each row again, with the columns ``final`` (a cell is read back as written)."""
        zero = self._zero
        bounds = [start for start, _ in self._segments[1:]] + [-1]
        segment = 0
        columns = self._segments[0][1]
        for number, row in enumerate(csv.reader(self._body, lineterminator="\n")):
            while number == bounds[segment]:
                segment += 1
                columns = self._segments[segment][1]
            n = len(columns)
            amounts = dict(zip(columns, row[3:3 + n], strict=True))
            writer.writerow([*row[:3], *[amounts.get(c, zero) for c in final],
                             *row[3 + n:]])

    def discard(self) -> None:
        self._body.close()


class SinkWriter:
    """The tables of a run to ``sink``, a period at a time, then the errors, then
    :meth:`~incentives.tabular.Sink.commit`. A workbook's sheet that would hold more
    rows than Excel allows is refused at the end, with the rows the whole run would
    have (as when it is written at once); nothing more is written to it then."""

    def __init__(self, sink: Sink, plan: Plan, *, details: str = "full") -> None:
        from .tabular import places_of

        self.sink = sink
        self.plan = plan
        self.details = check_details(details)
        self.results = 0
        self.lines = 0
        self._places = places_of(plan.rounding.quantum)
        self._excel = type(sink).__name__ == "ExcelSink"
        self._over = False

    def _tables(self) -> Any:
        from .tabular import ResultTables

        return ResultTables(self.plan.name, str(self.plan.version), self._places)

    def add(self, results: Sequence[PayeeResult]) -> None:
        from .tabular import add_results

        if not results:
            return
        self.results += len(results)
        if self._over:  # counted only
            self.lines += self._line_rows(results)
            return
        for start in range(0, len(results), BATCH):  # a batch's rows at a time
            tables = self._tables()
            add_results(tables, results[start:start + BATCH], (), details=self.details)
            self.lines += len(tables.lines)
            if self._excel and _too_many(self.results, self.lines, 0):
                self._over = True
                self.lines += self._line_rows(results[start + BATCH:])
                return
            self.sink.write(tables)

    def _line_rows(self, results: Sequence[PayeeResult]) -> int:
        return 0 if self.details == "none" else sum(len(r.lines) for r in results)

    def finish(self, errors: Sequence[IncentivesError]) -> None:
        from .tabular import add_results

        try:
            if self._excel and (self._over or _too_many(self.results, self.lines,
                                                        len(errors))):
                from .excel import check_sheet_rows

                check_sheet_rows((self.results, self.lines, len(errors)))
            tables = self._tables()
            add_results(tables, (), errors)
            # written even when empty: the sink's files (or tables) are made as when a
            # run is written at once
            self.sink.write(tables)
            self.sink.commit()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.sink.discard()


def _too_many(*counts: int) -> bool:
    from .excel import EXCEL_ROWS

    return any(n > EXCEL_ROWS - 1 for n in counts)


def copy_text(source: IO[str], out: TextIO) -> None:
    """Copy the text of ``source`` (from its start) to ``out``: to its file
    descriptor, encoded as ``out`` encodes, after checking that all of it can be
    encoded (so that nothing is written when some of it cannot: a
    :class:`UnicodeEncodeError`); or with ``out.write`` when it is not a file.
    A broken pipe is an ``OSError``."""
    import os
    import sys

    try:
        fd = out.fileno()
        encoding = out.encoding
        if sys.platform == "win32":  # pragma: no cover - the stream translates newlines
            raise ValueError
    except (AttributeError, OSError, ValueError):  # not a file (a StringIO)
        source.seek(0)
        while chunk := source.read(_CHUNK):
            out.write(chunk)
        out.flush()
        return
    errors = getattr(out, "errors", None) or "strict"
    source.seek(0)
    while chunk := source.read(_CHUNK):
        chunk.encode(encoding, errors)
    source.seek(0)
    out.flush()
    while chunk := source.read(_CHUNK):
        data = memoryview(chunk.encode(encoding, errors))
        while data:
            data = data[os.write(fd, data[:1 << 16]):]
