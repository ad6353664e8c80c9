"""Streaming evaluation: records in and results out as streams, memory bounded by a group.

A plan evaluates a period's population, and team-scoped policies (contests,
pools, balancing...) see every payee of their group in the period. So a
stream is cut into *buckets*: one per ``(period, group)`` (one per period when
a policy sees the whole population). Each bucket is evaluated on its own, as
``plan.evaluate`` would evaluate it, and its results are written before the
next one is read. Memory holds one bucket, not the file.

Records need not arrive grouped. When they come bucket after bucket in the
order of the output (a file sorted by period and group, as most exports are), or
period after period with their groups mixed (at most :data:`MAX_HELD` records
of a period held), and :func:`evaluate_stream` can read them again (a file),
each record is read once and each bucket evaluated as soon as it is complete:
no temporary files. Otherwise (or when a record comes out of that order, or
for a payee and period seen already: the stream then starts again from the
start of the file, reporting nothing twice) it makes two passes:

1. it reads and checks every record, and appends it to one temporary file
   (in ``spill_dir``, or the system's temporary folder), a bucket's records
   written together (at most :data:`SPILL_BUFFER` characters wait in memory).
   Bad records are reported here; so are duplicates (several records for one
   payee and period: none is evaluated, as in ``plan.evaluate``), found from
   the (period, payee) keys, which are spilled too, into
   :data:`KEY_PARTITIONS` parts by payee;
2. it evaluates the buckets in order of (period, group), each read back from
   the file, and deletes it.

The output, the errors and the summary are the same either way.

With ``grouped=True`` the input is trusted to be grouped already (each
bucket's records together, e.g. a file sorted by period and group): one pass,
no temporary files. A bucket that shows up again after another one started is
a :class:`~incentives.UsageError` telling you to drop ``grouped``. A
duplicate that falls in another bucket than the first copy is reported as an
error for the later copy (the first was already written).

Results come out bucket by bucket, by (period, group), and by payee within a
bucket. JSON Lines output writes one result per line (the same object as an
entry of ``results`` in ``incentives run --format json``); CSV output has the
columns of ``incentives run --format csv``.

>>> import io
>>> from incentives import load_plan
>>> plan = load_plan('''
... name: demo
... inputs: {metrics: {sales: {}}}
... policies: [{type: formula, id: commission, amount: sales * 0.05}]
... ''')
>>> out = io.StringIO()
>>> summary = evaluate_stream(plan, [{"payee": "a", "period": "2026-05", "metrics": {"sales": 1000}}], out)
>>> import json
>>> line = json.loads(out.getvalue())
>>> line["payee"], line["total"], [x["amount"] for x in line["lines"]]
('a', '50.00', ['50.00'])
>>> summary.results, summary.total
(1, Decimal('50.00'))

On the command line: ``incentives stream PLAN RECORDS [--format jsonl|csv]
[--out FILE] [--grouped] [--spill-dir DIR] [--errors FILE] [--period P]
[--encoding E] [--delimiter D] [--max-bytes N]``. From Python, a file in another
encoding or with another delimiter is given as
``iter_raw_records(path, encoding=..., delimiter=...)``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import shutil
import tempfile
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TextIO

from .errors import IncentivesError, RecordError, UsageError
from .fileio import atomic_open, names_starting, path_in_use, try_lock
from .money import ZERO
from .records import RecordReader, iter_raw_records, too_many_errors
from .runtime import Record, paused_gc

if TYPE_CHECKING:
    from .engine import CompiledPlan
    from .plan import Plan
    from .results import Run
    from .tabular import Sink

__all__ = ["MAX_OPEN", "StreamSummary", "evaluate_stream", "iter_buckets"]

#: Kept for compatibility: the spill now writes one file (see :data:`SPILL_BUFFER`).
MAX_OPEN = 32

#: The most records of one period the stream holds while they come in period order but
#: not bucket after bucket (past them, they must come bucket after bucket, or be spilled).
MAX_HELD = 64

#: How many files the (period, payee) keys are spread over to find duplicates.
KEY_PARTITIONS = 16

Key = tuple[str, str]

#: JSON Lines are written this many results at a time (at least: a bucket's whole), in
#: one text: fewer writes than a bucket at a time, and a text small enough to stay in
#: the processor's caches while it is encoded.
WRITE_LINES = 64

#: The most characters of spilled lines held in memory before they are written.
SPILL_BUFFER = 1 << 14


@dataclass
class StreamSummary:
    """What a streaming evaluation did: counts, the grand total, and the errors."""

    results: int = 0
    total: Decimal = ZERO
    buckets: int = 0
    largest_bucket: int = 0
    errors: list[IncentivesError] = field(default_factory=list)
    #: the closing state (a :class:`~incentives.ledger.State`) when one was given
    state: Any = None

    @property
    def ok(self) -> bool:
        """Whether every record was evaluated."""
        return not self.errors


def _compiled(plan: Plan | CompiledPlan) -> CompiledPlan:
    from .engine import CompiledPlan

    return plan if isinstance(plan, CompiledPlan) else plan.compile()


def _reader(compiled: CompiledPlan, default_period: str | None) -> RecordReader:
    """A reader of the plan's records with ``default_period``: the plan's own when it
    reads them so (its code is written once per plan), else a new one."""
    reader = compiled.reader
    if (reader.default_period == default_period and reader.unknown == "error"
            and reader.inputs is compiled.plan.inputs):
        return reader
    return RecordReader(compiled.plan.inputs, default_period=default_period)


def bucket_scope(compiled: CompiledPlan) -> Literal["period", "group"]:
    """``"period"`` when some policy sees a period's whole population, else ``"group"``."""
    return "period" if any(p.scope == "population" for p in compiled.policies) else "group"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # read back as the same Decimal
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to a spill file")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _raw_records(source: str | os.PathLike[str] | Iterable[Any]) -> Iterable[Any]:
    if isinstance(source, (str, os.PathLike)):
        return iter_raw_records(Path(source))
    from .engine import record_rows  # a DataFrame gives its rows

    return record_rows(source)


#: Spill folders are named ``incentives-stream-PID-XXXXXXXX`` (PID: the process using it).
SPILL_PREFIX = "incentives-stream-"


class _Spill:
    """Temporary files, one per bucket, holding ``[payee, raw record]`` lines.

    They live in a folder ``incentives-stream-PID-...`` holding a locked ``.lock``
    file while in use, so that :func:`clean_spill_leftovers` can tell the folder
    of a running stream from the leftover of a killed one.
    """

    def __init__(self, spill_dir: str | os.PathLike[str] | None) -> None:
        self.folder = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=spill_dir)
        self.lock = -1
        try:
            self.lock = os.open(os.path.join(self.folder, ".lock"),
                                os.O_CREAT | os.O_RDWR, 0o600)
            try_lock(self.lock)
        except BaseException:
            self.close()
            raise
        # one file of lines, written a bucket's waiting lines at a time; where each
        # bucket's parts are in it: offset and length, one after the other
        self.data: IO[bytes] | None = None
        self.at = 0
        self.paths: dict[Key, array[int]] = {}
        # the lines waiting to be written, by bucket: written when they pass
        # SPILL_BUFFER characters, each bucket's together, so that a bucket is read
        # back in few parts whatever the order of the records
        self.waiting: dict[Key, list[str]] = {}
        self.size = 0

    def add(self, key: Key, payee: str, raw: Any) -> None:
        line = _dumps([payee, raw]) + "\n"
        waiting = self.waiting.get(key)
        if waiting is None:
            waiting = self.waiting[key] = []
            if key not in self.paths:
                self.paths[key] = array("q")
        waiting.append(line)
        self.size += len(line)
        if self.size > SPILL_BUFFER:
            self.flush()

    def flush(self) -> None:
        """Write every bucket's waiting lines to the file."""
        if self.data is None:
            self.data = open(os.path.join(self.folder, "lines"), "wb",  # noqa: SIM115
                             buffering=1 << 14)
        for key, lines in self.waiting.items():
            data = "".join(lines).encode("utf-8")
            self.data.write(data)
            self.paths[key].extend((self.at, len(data)))
            self.at += len(data)
        self.waiting.clear()
        self.size = 0

    def buckets(self) -> Iterator[tuple[Key, list[tuple[str, Any]]]]:
        self.flush()
        assert self.data is not None
        self.data.close()
        with open(os.path.join(self.folder, "lines"), "rb", buffering=0) as data:
            fd = data.fileno()
            # periods in calendar order (2026-Q3 before 2026-10), as a state closes them
            for key in sorted(self.paths, key=_bucket_order):
                parts = self.paths[key]
                text = b"".join(os.pread(fd, parts[i + 1], parts[i])
                                for i in range(0, len(parts), 2)).decode("utf-8")
                # one line a record (JSON escapes a line end inside a string)
                rows = [(payee, raw) for payee, raw in map(_loads, text.split("\n")[:-1])]
                yield key, rows

    def close(self) -> None:
        data = getattr(self, "data", None)
        if data is not None:
            data.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.lock >= 0:
            os.close(self.lock)
            self.lock = -1


def _bucket_order(key: Key) -> tuple[Any, ...]:
    from .ledger import period_key

    return (period_key(key[0]), key[1])


def clean_spill_leftovers(spill_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Remove the spill folders that killed streams left in ``spill_dir`` (the system's
    temporary folder by default); one note per folder removed. Folders of streams
    still running are left alone."""
    folder = os.fspath(spill_dir) if spill_dir is not None else tempfile.gettempdir()
    notes = []
    for name in names_starting(folder, SPILL_PREFIX):
        path = os.path.join(folder, name)
        head = name[len(SPILL_PREFIX):].split("-", 1)[0]
        if not head.isdigit():
            continue  # not named by this version (no process id): not ours to judge
        pid = int(head)
        if not os.path.isdir(path) or os.path.islink(path) or path_in_use(path, pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            notes.append(f"{path}: removed, the spill folder of an interrupted stream "
                         f"(process {pid})")
    return notes


def _duplicate_error(period: str, payee: str, count: int) -> RecordError:
    return RecordError(f"{count} records for the same payee and period; "
                       "none of them was evaluated", payee=payee, period=period, field="payee")


def iter_buckets(
    plan: Plan | CompiledPlan,
    source: str | os.PathLike[str] | Iterable[Any],
    *,
    grouped: bool = False,
    default_period: str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    on_error: Callable[[IncentivesError], None] | None = None,
    state: Any = None,
) -> Generator[Run, None, None]:
    """Evaluate ``source`` bucket by bucket; yield one :class:`~incentives.Run` per bucket.

    ``source`` is a records file (``.jsonl`` and ``.csv`` are read line by
    line; a ``.json`` array is read whole) or an iterable of raw records. Errors found while reading (bad records,
    duplicates) go to ``on_error`` (they are raised when it is ``None``);
    errors found while evaluating a bucket are in that bucket's run.

    With ``state`` (a :class:`~incentives.ledger.State` or its JSON data), the
    payees open with their ledgers from it, and every run's ``state`` is one
    new state, carried from bucket to bucket: a period is closed in it when
    the buckets move on to the next period, and the last one when the
    iteration ends. Periods must then come in order (they do unless
    ``grouped`` records list a later period first: that is a StateError).
    """
    return _iter_buckets(plan, source, grouped=grouped, default_period=default_period,
                         spill_dir=spill_dir, on_error=on_error, state=state)


def _iter_buckets(
    plan: Plan | CompiledPlan,
    source: str | os.PathLike[str] | Iterable[Any],
    *,
    grouped: bool = False,
    default_period: str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    on_error: Callable[[IncentivesError], None] | None = None,
    state: Any = None,
    reported_before: int = 0,
) -> Generator[Run, None, None]:
    """:func:`iter_buckets`; the first ``reported_before`` reading errors were reported
    already (by a pass that read the same records in order, see :func:`_in_order`):
    they count, but are not reported again."""
    compiled = _compiled(plan)
    reader = _reader(compiled, default_period)
    by_period = bucket_scope(compiled) == "period"
    # the payees' ledgers are carried from period to period, as a run carries them,
    # with a state given or not (without one, no period is closed: none is written)
    book = compiled.opening_state(state)
    closes = state is not None
    current: list[str] = []  # the period being evaluated, with a state

    reported = [0]
    limit = compiled.reader.max_errors

    def report(exc: IncentivesError) -> None:
        if on_error is None:
            raise exc
        reported[0] += 1
        if limit is not None and reported[0] > limit:  # a file that is not records: stop
            raise too_many_errors(limit)
        if reported[0] > reported_before:
            on_error(exc)

    def evaluate(rows: list[tuple[str, Any]]) -> Run:
        # the period is filled in already, so the plan's own reader needs no default
        raws = [raw for _, raw in rows]
        period = raws[0]["period"]
        if not closes:
            return compiled.evaluate_part(raws, book)
        if current and current[0] != period:
            book.close(current.pop(), compiled.plan)
        if not current:
            current.append(period)
        return compiled.evaluate_part(raws, book)

    def close_last() -> None:
        if current:
            book.close(current.pop(), compiled.plan)

    def checked(index: int, raw: Any) -> tuple[Key, str, Any] | None:
        if isinstance(raw, IncentivesError):
            report(raw)
            return None
        try:
            record = reader.read(raw, index)
        except RecordError as exc:
            report(exc)
            return None
        if isinstance(raw, Record):
            raw = {"payee": raw.payee, "period": raw.period, "group": raw.group,
                   "attributes": raw.attributes, "metrics": raw.metrics, "events": raw.events}
        if isinstance(raw, dict) and raw.get("period") != record.period:
            raw = {**raw, "period": record.period}  # a default period, written in
        key = (record.period, "" if by_period else (record.group or ""))
        return key, record.payee, raw

    if grouped:
        yield from _grouped(_raw_records(source), checked, evaluate, report)
        close_last()
        return
    spill = _Spill(spill_dir)
    keys = _Spill(spill_dir)
    try:
        for index, raw in enumerate(_raw_records(source)):
            found = checked(index, raw)
            if found is None:
                continue
            key, payee, raw = found
            spill.add(key, payee, raw)
            # (period, payee) keys, partitioned by payee: duplicates are found one
            # partition at a time, so no set of every key is held in memory
            keys.add(("", str(zlib.crc32(payee.encode("utf-8")) % KEY_PARTITIONS)), payee,
                     key[0])
        if closes:
            book.check_open({key[0] for key in spill.paths})  # before any result is written
        dupes: dict[tuple[str, str], int] = {}
        for _, rows in keys.buckets():
            seen = Counter((period, payee) for payee, period in rows)
            dupes.update((k, n) for k, n in seen.items() if n > 1)
        keys.close()
        for period, payee in sorted(dupes):
            report(_duplicate_error(period, payee, dupes[(period, payee)]))
        for key, rows in spill.buckets():
            if dupes:
                rows = [(p, raw) for p, raw in rows if (key[0], p) not in dupes]
            if rows:
                yield evaluate(rows)
        close_last()
    finally:
        spill.close()
        keys.close()


def _grouped(
    raws: Iterable[Any],
    checked: Callable[[int, Any], tuple[Key, str, Any] | None],
    evaluate: Callable[[list[tuple[str, Any]]], Run],
    report: Callable[[IncentivesError], None],
) -> Iterator[Run]:
    current: Key | None = None
    rows: list[tuple[str, Any]] = []
    closed: set[Key] = set()
    owner: dict[tuple[str, str], Key] = {}
    for index, raw in enumerate(raws):
        found = checked(index, raw)
        if found is None:
            continue
        key, payee, raw = found
        if key != current:
            if key in closed:
                what = f"group {key[1]!r} of period {key[0]}" if key[1] else f"period {key[0]}"
                raise UsageError(
                    f"the records are not grouped: {what} appears again at record "
                    f"#{index + 1}, after other records; let incentives group them "
                    "(without --grouped)")
            if current is not None:
                closed.add(current)
                if rows:
                    yield evaluate(rows)
            current, rows = key, []
        first = owner.setdefault((key[0], payee), key)
        if first != key:
            report(RecordError(
                f"another record for this payee and period (group {first[1]!r}) was "
                "already evaluated; this one was not", payee=payee, period=key[0],
                field="payee"))
            continue
        rows.append((payee, raw))
    if rows:
        yield evaluate(rows)


def evaluate_stream(
    plan: Plan | CompiledPlan,
    source: str | os.PathLike[str] | Iterable[Any],
    out: TextIO | str | os.PathLike[str] | Sink,
    *,
    format: Literal["jsonl", "csv"] | str = "jsonl",
    grouped: bool = False,
    default_period: str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    on_error: Callable[[IncentivesError], None] | None = None,
    state: Any = None,
    details: str = "full",
    reopen: Callable[[], Iterable[Any]] | None = None,
    direct: bool = False,
) -> StreamSummary:
    """Evaluate ``source`` as a stream and write each result to ``out`` as it is made.

    ``out`` is a text stream, or a path written atomically (a temporary file in
    the same folder, renamed when complete), or a :class:`~incentives.tabular.Sink`
    (a database, a workbook, Parquet: see :func:`incentives.sources.open_sink`),
    committed when the stream ends (``format`` is then not used). Errors are collected in the
    summary (and passed to ``on_error`` as they happen, when given); the good
    records are still evaluated. With ``state``, the payees open with their
    ledgers from it and ``summary.state`` is the closing state (see
    :func:`iter_buckets`). ``details``: ``full`` (the default), ``lines`` or ``none``,
    as in ``incentives run`` (see :data:`incentives.results.DETAILS_LEVELS`).

    ``reopen`` gives the same records again, from the start (a records file is
    read again by itself): then records that arrive bucket after bucket, in
    order, are read once and evaluated as they come, with no temporary files;
    when one arrives out of order (or for a payee and period seen already), the
    stream starts again and sorts them through temporary files. The output is
    the same either way.

    ``direct=True`` says that ``out`` (a seekable text file) is thrown away by the
    caller when the stream fails, as ``incentives stream`` throws away its staged
    ``--out``: JSON Lines then go into it as they are made rather than through a
    temporary file, and when the records must be read again it is cut back to where
    it was. Otherwise a stream of the caller's is written only once all is done.
    """
    from .results import check_details, result_json

    check_details(details)
    to_sink = not isinstance(out, (str, os.PathLike)) and hasattr(out, "commit")
    if to_sink:
        format = "sink"
    elif format not in ("jsonl", "csv"):
        raise UsageError(f"unknown stream format {format!r}; use jsonl or csv")
    summary = StreamSummary()
    if direct and (to_sink or isinstance(out, (str, os.PathLike))
                   or not out.seekable()):  # type: ignore[union-attr]
        direct = False  # a path is written atomically; a pipe cannot be cut back

    locate = getattr(source, "locate", None)  # the rows of a table name it in errors

    def error(exc: IncentivesError) -> None:
        if locate is not None:
            locate([exc])
        summary.errors.append(exc)
        if on_error is not None:
            on_error(exc)

    compiled = _compiled(plan)
    if reopen is None and isinstance(source, (str, os.PathLike)):
        path = source

        def reopen() -> Iterable[Any]:
            return _raw_records(path)

    reported_before = 0
    if reopen is not None and not to_sink and not grouped and state is None:
        # records that come bucket after bucket, in order (a file sorted by period and
        # group, as most exports are) are evaluated as they are read, each read once;
        # others are read again, from the start, and spilled (below)
        start = out.tell() if direct else 0  # type: ignore[union-attr]
        try:
            with paused_gc():  # as incentives run: the results hold no cycles
                _in_order(compiled, source, out, format, default_period,  # type: ignore[arg-type]
                          spill_dir, summary, error, details, direct)
            return summary
        except _NotInOrder:
            if direct:  # what was written goes
                out.seek(start)  # type: ignore[union-attr]
                out.truncate()  # type: ignore[union-attr]
            reported_before = len(summary.errors)  # the reading errors, reported once
            summary.results, summary.total = 0, ZERO
            summary.buckets = summary.largest_bucket = 0
            source = reopen()
    buckets = _iter_buckets(compiled, source, grouped=grouped, default_period=default_period,
                            spill_dir=spill_dir, on_error=error, state=state,
                            reported_before=reported_before)
    closing: list[Any] = []

    def runs_kept() -> Iterator[Run]:  # remembers the state the runs carry
        for run in buckets:
            closing[:] = [run.state]
            yield run

    runs = runs_kept()
    try:
        if to_sink:
            _write_sink(compiled, runs, out, summary, error,  # type: ignore[arg-type]
                        details)
            return _closed(summary, compiled, closing, state)
        with _output(out) as handle:  # type: ignore[arg-type]
            if format == "jsonl":
                for run in runs:
                    _count(summary, run, error)
                    if run.results:  # the bucket's lines in one write
                        texts = [result_json(r, details) for r in run.results]
                        texts.append("")
                        handle.write("\n".join(texts))
            else:
                _write_csv(compiled, runs, handle, summary, error, spill_dir, details)
    finally:
        buckets.close()  # its spill files go now, even on an error or an interrupt
    return _closed(summary, compiled, closing, state)


class _NotInOrder(Exception):
    """The records do not come bucket after bucket in order: sort them (spill)."""


def _in_order(compiled: CompiledPlan, source: Iterable[Any] | str | os.PathLike[str],
              out: TextIO | str | os.PathLike[str], format: str, default_period: str | None,
              spill_dir: str | os.PathLike[str] | None, summary: StreamSummary,
              error: Callable[[IncentivesError], None], details: str = "full",
              direct: bool = False) -> None:
    """Evaluate records that come bucket after bucket in the order the spill would
    give them (by period in calendar order, then group), each bucket as soon as the
    next one starts, from the records as read (not read again); write the output
    when the last one is done, or JSON Lines as they are made into a file that is
    thrown away on a failure (a path, written atomically; or ``out`` itself when
    ``direct``: the caller cuts it back). :class:`_NotInOrder` (nothing written, or
    all of it thrown away) when a bucket comes out of order or a payee comes twice
    in a period.

    What it reports and writes is what the spill gives: reading errors as they come
    (the spill reports them all before evaluating), then the evaluation errors of
    each bucket in order; rows in the same order."""
    from .ledger import period_key
    from .results import all_policy_ids, csv_rows, csv_sorted, result_json

    reader = _reader(compiled, default_period)
    by_period = bucket_scope(compiled) == "period"
    limit = compiled.reader.max_errors
    evaluate = compiled.evaluate_bucket
    # the payees' ledgers carried from period to period, as a run carries them (no
    # state is written, so no period is closed in it)
    book = compiled.opening_state(None)
    place = {pid: i for i, pid in enumerate(all_policy_ids(compiled.plan))}
    # CSV rows wait in temporary files, each written with the policy columns of the
    # lines seen when it was started (none at details "none"): a new file when a
    # policy makes its first line (rarely after the first rows)
    columns: list[str] = []
    segments: list[tuple[IO[str], list[str]]] = []
    writer: Any = None  # the last file's
    zero = str(compiled.plan.rounding.round(ZERO))
    seen: dict[str, None] = {}
    later: list[IncentivesError] = []  # evaluation errors, reported once all is read
    reported = 0
    period: str | None = None  # the period being read
    after: tuple[Any, ...] = ()  # its place in the spill's order
    held: dict[str, list[Record]] = {}  # its records not evaluated yet, by bucket
    count = 0  # how many
    flushed: str | None = None  # the last of its buckets evaluated already
    payees: set[str] = set()  # its payees

    def done(records: list[Record]) -> None:
        results, problems = evaluate(records, book)
        summary.buckets += 1
        summary.largest_bucket = max(summary.largest_bucket, len(results) + len(problems))
        summary.results += len(results)
        summary.total += sum((r.total for r in results), ZERO)
        later.extend(problems)
        if format == "jsonl":
            for r in results:
                lines.append(result_json(r, details))
            if len(lines) >= WRITE_LINES:
                write_lines()
            return
        nonlocal columns, writer
        ordered = csv_sorted(results)
        made = {line.policy for r in ordered for line in r.lines}
        if not made.issubset(seen):  # a policy's first line: a file with its column
            if not made.issubset(place):
                raise _NotInOrder  # a column the spill would put last
            seen.update(dict.fromkeys(made))
            if details != "none":
                columns = sorted(seen, key=place.__getitem__)
                writer = segment(columns)
        writer.writerows(csv_rows(ordered, columns, zero))

    lines: list[str] = []  # JSON Lines not written yet

    def write_lines() -> None:
        lines.append("")
        write("\n".join(lines))
        lines.clear()

    def segment(columns: list[str]) -> Any:
        """A new file of CSV rows with these policy columns; its writer."""
        rows = stack.enter_context(tempfile.TemporaryFile(  # noqa: SIM115 - closed by stack
            "w+", encoding="utf-8", newline="", dir=spill_dir))
        segments.append((rows, columns))
        return csv.writer(rows, lineterminator="\n")

    def flush(keep: str | None) -> str | None:
        """Evaluate the held buckets, in order, but ``keep`` (which must come after
        them); the last one evaluated."""
        last = None
        for group in sorted(held):
            if group != keep:
                if keep is not None and group > keep:
                    raise _NotInOrder  # a bucket after the one still coming
                done(held.pop(group))
                last = group
        return last

    with contextlib.ExitStack() as stack:
        rows: IO[str] | None = None
        if format != "jsonl":
            writer = segment(columns)
        elif direct or isinstance(out, (str, os.PathLike)):
            # JSON Lines straight into the output: a file that is thrown away on an
            # error (a path is written atomically, discarded when this block fails)
            write = stack.enter_context(_output(out)).write
        else:  # a stream of the caller's: written only once all is done
            rows = stack.enter_context(tempfile.TemporaryFile(
                "w+", encoding="utf-8", newline="", dir=spill_dir))
            write = rows.write
        read, most = reader.read, MAX_HELD
        group: str | None = None  # the bucket of the last record, held: bucket
        bucket: list[Record] = []
        for index, raw in enumerate(_raw_records(source)):
            try:
                if type(raw) is not dict and isinstance(raw, IncentivesError):
                    raise raw
                record = read(raw, index)
            except IncentivesError as exc:
                if exc is not raw and not isinstance(exc, RecordError):
                    raise
                reported += 1
                if limit is not None and reported > limit:
                    raise too_many_errors(limit) from None
                error(exc)
                continue
            if record.period != period:
                # periods one after another, in calendar order (and as text: the CSV's)
                now = (period_key(record.period), record.period)
                if period is not None and (now <= after or record.period <= period):
                    raise _NotInOrder
                flush(None)
                period, after, count, flushed, payees = record.period, now, 0, None, set()
                group = None
            payee = record.payee
            if payee in payees:
                raise _NotInOrder  # a duplicate: none of its records is evaluated
            payees.add(payee)
            this = "" if by_period else (record.group or "")
            if this != group:
                group = this
                found = held.get(group)
                if found is None:
                    if flushed is not None and group <= flushed:
                        raise _NotInOrder  # a bucket evaluated already, or one before it
                    found = held[group] = []
                bucket = found
            bucket.append(record)
            count += 1
            if count > most and len(held) > 1:
                # a large period: hold one bucket at a time when they come in order
                flushed = flush(group) or flushed
                count = len(bucket)
        flush(None)
        if lines:
            write_lines()
        for problem in later:
            error(problem)
        if format == "jsonl":
            if rows is not None:
                rows.seek(0)
                with _output(out) as handle:
                    shutil.copyfileobj(rows, handle, 1 << 20)
            return
        for part, made in segments:
            if made != columns:
                # read back exactly when no cell holds a carriage return (written
                # without quotes, it would read as a line end)
                part.seek(0)
                if any("\r" in chunk for chunk in iter(partial(part.read, 1 << 20), "")):
                    raise _NotInOrder
        from .results import write_csv_header

        with _output(out) as handle:
            final = csv.writer(handle, lineterminator="\n")
            write_csv_header(final, columns)
            for part, made in segments:
                part.seek(0)
                if made == columns:
                    shutil.copyfileobj(part, handle, 1 << 20)
                    continue
                # rows written before a policy's first line: its cells are the zero
                where = {c: 3 + i for i, c in enumerate(made)}
                tail = 3 + len(made)
                for row in csv.reader(part, strict=True):
                    final.writerow([*row[:3], *(row[where[c]] if c in where else zero
                                                for c in columns), *row[tail:]])


def _closed(summary: StreamSummary, compiled: CompiledPlan, closing: list[Any],
            state: Any) -> StreamSummary:
    if state is not None:
        summary.state = closing[0] if closing else compiled.opening_state(state)
    return summary


def _write_sink(compiled: CompiledPlan, runs: Iterable[Run], sink: Sink,
                summary: StreamSummary, error: Callable[[IncentivesError], None],
                details: str = "full") -> None:
    """Each bucket's results to ``sink`` as they are made; every error once the stream
    has ended (those of unreadable records come in as it reads); then commit. On any
    error (or an interrupt) the sink is discarded: nothing is written."""
    from .engine import error_order
    from .tabular import ResultTables, add_results, places_of

    plan = compiled.plan
    places = places_of(plan.rounding.quantum)
    try:
        for run in runs:
            _count(summary, run, error)
            if run.results:
                tables = ResultTables(plan.name, str(plan.version), places)
                add_results(tables, run.results, (), details=details)
                sink.write(tables)
        tables = ResultTables(plan.name, str(plan.version), places)
        add_results(tables, (), sorted(summary.errors, key=error_order))
        if tables.errors:
            sink.write(tables)
        sink.commit()
    except BaseException:
        sink.discard()
        raise



def _count(summary: StreamSummary, run: Run, error: Callable[[IncentivesError], None]) -> None:
    summary.buckets += 1
    size = len(run.results) + len(run.errors)
    summary.largest_bucket = max(summary.largest_bucket, size)
    summary.results += len(run.results)
    summary.total += run.total
    for e in run.errors:
        error(e)


def _write_csv(compiled: CompiledPlan, runs: Iterable[Run], handle: TextIO,
               summary: StreamSummary, error: Callable[[IncentivesError], None],
               spill_dir: str | os.PathLike[str] | None, details: str = "full") -> None:
    """CSV with the columns and rows of ``Run.to_csv``, byte for byte, written by the same
    functions (``details="none"``: no policy columns). The columns are known only at the end, so the rows wait in a temporary
    file (one line each, a bucket's rows together), then are written under the header,
    the buckets in order of (period, group)."""
    from .results import (
        all_policy_ids,
        csv_columns,
        csv_order,
        csv_record,
        write_csv_header,
        write_csv_row,
    )

    order = {pid: i for i, pid in enumerate(all_policy_ids(compiled.plan))}
    seen: dict[str, None] = {}
    segments: list[tuple[tuple[str, str], int, int]] = []
    with tempfile.TemporaryFile("w+b", dir=spill_dir) as rows:
        for run in runs:
            _count(summary, run, error)
            results = sorted(run.results, key=csv_order)
            if not results:
                continue
            start = rows.tell()
            for r in results:
                for line in r.lines:
                    seen.setdefault(line.policy, None)
                rows.write((_dumps(csv_record(r)) + "\n").encode("utf-8"))
            segments.append((csv_order(results[0])[:2], start, rows.tell()))
        columns = csv_columns(sorted(seen, key=lambda pid: order.get(pid, len(order))),
                              details)
        writer = csv.writer(handle, lineterminator="\n")
        write_csv_header(writer, columns)
        zero = str(compiled.plan.rounding.round(ZERO))
        for _, start, end in sorted(segments):
            rows.seek(start)
            while rows.tell() < end:
                write_csv_row(writer, json.loads(rows.readline()), columns, zero)


@contextlib.contextmanager
def _output(out: TextIO | str | os.PathLike[str]) -> Iterator[TextIO]:
    if not isinstance(out, (str, os.PathLike)):
        yield out
        return
    with atomic_open(out) as handle:
        yield handle
