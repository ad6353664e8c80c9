"""Evaluating a plan with Dask, when one process is not enough (the ``dask`` extra).

``pip install 'incentives[dask]'`` (Dask and ``dask.distributed``). Three entry points:

- :func:`run_partitioned`: records already partitioned so that each (period,
  group) is whole in one partition (a Parquet dataset partitioned by period and
  group, a folder of JSON Lines parts...) are evaluated where they lie: each
  worker of a ``dask.distributed`` cluster reads its partitions, evaluates them
  and writes their results (JSON Lines or Parquet parts) itself; the client
  gets back only counts, paths and errors, checks that no (period, group) was in
  two partitions, and writes a small manifest. Nothing is shuffled and no
  result passes through the client.
- :func:`evaluate_frame`: a Dask DataFrame of flat records (``payee``,
  ``period``, ``group`` and one column per declared input, as in CSV) to a Dask
  DataFrame of results, one row per record (see :func:`result_columns`);
- :func:`evaluate_bag`: a Dask Bag of raw records (dicts, nested or flat, as in
  JSON Lines, event lists included) to a Bag of result dicts (the entries of
  ``results`` in ``incentives run --format json``) and error dicts
  (``{"error": {...}}``).

How the work is cut: team-scoped policies (contests, pools, balancing) see a
whole group in a period, so each (period, group) must be evaluated in one
piece (each period, when some policy sees the whole population). Given
``partitioned_by=("period", "group")`` (or ``("period",)``), the collections
and folders are taken as already cut that way: each partition is evaluated as
it is, and the partitioning is checked (a key found in two partitions is a
:class:`~incentives.errors.UsageError` naming it and both partitions). Without
it, the lazy collections are first shuffled so that each key is in one
partition. The plan travels to the workers as its YAML text
(``plan.to_yaml()``) and is loaded and compiled there, once per worker
process; nothing else of the plan is pickled.

Amounts stay exact: in the DataFrame they are decimal strings (``"1400.00"``),
in Parquet parts decimal128, never floats; money columns in the *input*
should be strings (or decimals) too (a float column is read from each float's
shortest repr in a frame, and as the plan's ``reading.floats`` says in Parquet).

Records for the same payee and period are found (and refused, as duplicates)
within a partition, so within a (period, group); a payee listed in two groups
of one period, in two partitions, is refused by :func:`run_partitioned` (the
whole run) and not caught by the lazy collections, unlike ``plan.evaluate``. A
plan's ledger (``state``) is not carried across partitions: plans whose
policies read earlier periods are run with ``incentives run --state``.

>>> import dask.bag as db
>>> from incentives import load_plan
>>> plan = load_plan('''
... name: demo
... inputs: {metrics: {sales: {}}}
... policies: [{type: formula, id: commission, amount: sales * 0.05}]
... ''')
>>> bag = db.from_sequence([{"payee": "a", "period": "2026-05", "metrics": {"sales": "1000"}}])
>>> [r["total"] for r in evaluate_bag(plan, bag).compute(scheduler="synchronous")]
['50.00']
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import IncentivesError, UsageError

if TYPE_CHECKING:
    from .engine import CompiledPlan
    from .plan import Plan
    from .results import PayeeResult, Run

__all__ = ["Partition", "PartitionedRun", "evaluate_bag", "evaluate_frame",
           "evaluate_partition", "partitions", "result_columns", "run_partitioned", "run_rows"]

_BUCKET = "_incentives_bucket"
_SEP = "\x1f"
#: the files a partition folder may hold (others, and names starting with "." or "_", are
#: left out)
_DATA = (".parquet", ".pq", ".jsonl", ".json", ".csv")
MANIFEST = "manifest.json"
Details = Literal["full", "lines", "none"]


def _require() -> None:
    from .extras import require

    require("dask", "incentives.dask")


@functools.lru_cache(maxsize=8)
def _compiled(text: str) -> CompiledPlan:
    """The plan of ``text``, loaded and compiled once per worker process."""
    from .plan import load_plan

    return load_plan(text).compile()


def _by_period(compiled: CompiledPlan) -> bool:
    return any(p.scope == "population" for p in compiled.policies)


def _partitioning(value: str | Sequence[str], compiled: CompiledPlan) -> tuple[str, ...]:
    """``partitioned_by`` checked: ``("period",)`` or ``("period", "group")``, and
    whole periods for a plan with a policy that sees the whole population."""
    names = (value,) if isinstance(value, str) else tuple(value)
    if names not in (("period",), ("period", "group")):
        raise UsageError(f"partitioned_by={names!r}: give ('period', 'group') (each team's "
                         "period whole in one partition) or ('period',) (each period whole)")
    if names != ("period",) and _by_period(compiled):
        scoped = next(p.id for p in compiled.policies if p.scope == "population")
        raise UsageError(f"plan {compiled.plan.name!r}: policy {scoped!r} sees every payee of "
                         "a period, so each period must be whole in one partition: partition "
                         "the records by period and give partitioned_by=('period',)")
    return names


def _key_text(key: Sequence[str]) -> str:
    return f"group {key[1]!r} of period {key[0]}" if len(key) > 1 else f"period {key[0]}"


def _refuse_split(key: Sequence[str], first: str, second: str) -> UsageError:
    return UsageError(f"the records are not partitioned by {'/'.join(('period', 'group')[:len(key)])}"
                      f": {_key_text(key)} is in two partitions ({first} and {second}); "
                      "repartition them so that each is whole in one partition")


def result_columns(plan: Plan) -> list[str]:
    """The columns of :func:`evaluate_frame`'s result.

    ``payee``, ``period``, ``group``, one column per policy of the plan (its id,
    in plan order; ``value`` policies make no lines and have none), ``total``,
    ``titles``, ``flags`` and ``error`` (empty, or the reason a record was not
    evaluated). Amounts are decimal strings; ``"0"`` where a policy made no line.
    """
    from .plan import flatten_policies

    ids = [p.id for p in flatten_policies(plan.policies) if p.type != "value"]
    return ["payee", "period", "group", *ids, "total", "titles", "flags", "error"]


def run_rows(run: Run, columns: list[str]) -> list[dict[str, str]]:
    """A run as rows of :func:`result_columns` (errors as rows with ``error`` set)."""
    ids = columns[3:-4]
    rows: list[dict[str, str]] = []
    for r in run.results:
        row = {"payee": r.payee, "period": r.period, "group": r.group or ""}
        for pid in ids:
            row[pid] = str(r.amount(pid))
        row.update(total=str(r.total), titles="; ".join(r.titles), flags="; ".join(r.flags),
                   error="")
        rows.append(row)
    for e in run.errors:
        row = dict.fromkeys(columns, "")
        row["payee"] = str(getattr(e, "payee", None) or "")
        row["period"] = str(getattr(e, "period", None) or "")
        row["group"] = str(getattr(e, "group", None) or "")
        row["error"] = str(e)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- partitioned check


def _keys_of_results(results: Iterable[Any], width: int) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    for r in results:
        if isinstance(r, dict):
            if "error" in r:
                continue
            key = (str(r.get("period") or ""), str(r.get("group") or ""))
        else:
            key = (r.period, r.group or "")
        keys.add(key[:width])
    return keys


def _check_keys(found: Iterable[tuple[str, Iterable[tuple[str, ...]]]]) -> None:
    """Refuse a key found in two partitions (``found``: each partition's name and keys)."""
    owner: dict[tuple[str, ...], str] = {}
    for name, keys in found:
        for key in keys:
            first = owner.setdefault(tuple(key), name)
            if first != name:
                raise _refuse_split(key, first, name)


# ---------------------------------------------------------------------- DataFrame


def _evaluate_partition(frame: Any, text: str, columns: list[str], *checked: Any) -> Any:
    import pandas as pd

    compiled = _compiled(text)
    if _BUCKET in frame.columns:
        frame = frame.drop(columns=[_BUCKET])
    if "events" in frame.columns:  # each record's event lists, as JSON text
        frame = frame.assign(events=[_events_value(v) for v in frame["events"]])
    run = compiled.evaluate(frame, errors="collect")
    return pd.DataFrame(run_rows(run, columns), columns=columns, dtype=object)


def _events_value(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value  # the reader says what is wrong with it
    return value


def _frame_keys(frame: Any, names: tuple[str, ...], info: Any = None) -> list[Any]:
    """The keys (``names``) of one partition's records, with the partition's number."""
    number = info["number"] if isinstance(info, dict) else 0
    if len(frame) == 0:
        return [(number, [])]
    cols = [frame[n].fillna("").astype(str).str.strip() if n in frame.columns
            else [""] * len(frame) for n in names]
    return [(number, sorted(set(zip(*cols, strict=True))))]


def _checked_partitions(parts: list[Any]) -> bool:
    _check_keys((f"partition {number}", [tuple(k) for k in keys]) for number, keys in parts)
    return True


def evaluate_frame(plan: Plan, frame: Any, *,
                   partitioned_by: str | Sequence[str] | None = None) -> Any:
    """Evaluate a Dask DataFrame of flat records; a Dask DataFrame of results (lazy).

    The frame needs ``payee`` and ``period`` columns (and ``group`` for
    team-scoped policies); event lists travel in an ``events`` column, each
    record's ``{"name": [event, ...]}`` as JSON text. By default it is
    shuffled so that each (period, group) lands in one partition, then each
    partition is evaluated on a worker. With ``partitioned_by=("period", "group")`` (or ``("period",)``),
    the frame is taken as already cut that way (as ``dd.read_parquet`` reads a
    dataset written partitioned by period and group, one file per folder): no
    shuffle; the keys of each partition are read first (two columns) and a key
    found in two partitions stops the computation with a
    :class:`~incentives.errors.UsageError` naming it.

    >>> import dask.dataframe as dd, pandas as pd
    >>> from incentives import load_plan
    >>> plan = load_plan("examples/telecom/plan.yaml")
    >>> frame = dd.from_pandas(pd.DataFrame({
    ...     "payee": ["X", "Y"], "period": ["2026-05", "2026-05"], "group": ["f", "f"],
    ...     "traffic_revenue": ["50000", "10000"], "new_fax": ["3", "0"]}), npartitions=2)
    >>> out = evaluate_frame(plan, frame).compute(scheduler="synchronous")
    >>> sorted(zip(out["payee"], out["total"]))
    [('X', '1580.00'), ('Y', '700.00')]
    """
    _require()
    import pandas as pd

    text = plan.to_yaml()
    compiled = _compiled(text)
    columns = result_columns(plan)
    if "period" not in frame.columns or "payee" not in frame.columns:
        raise UsageError("the frame needs 'payee' and 'period' columns")
    meta = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    if partitioned_by is not None:
        names = _partitioning(partitioned_by, compiled)
        from dask.delayed import delayed

        present = [n for n in names if n in frame.columns]  # only these columns are read
        keys = [delayed(_frame_keys)(part, names, {"number": i})
                for i, part in enumerate(frame[present].to_delayed())]
        check = delayed(_checked_partitions)(delayed(_flatten)(keys))
        return frame.map_partitions(_evaluate_partition, text, columns, check, meta=meta)
    key = frame["period"].astype(str).str.strip()
    if not _by_period(compiled) and "group" in frame.columns:
        key = key + _SEP + frame["group"].fillna("").astype(str).str.strip()
    keyed = frame.assign(**{_BUCKET: key})
    if keyed.npartitions > 1:
        keyed = keyed.shuffle(on=_BUCKET)
    return keyed.map_partitions(_evaluate_partition, text, columns, meta=meta)


def _flatten(lists: list[list[Any]]) -> list[Any]:
    return [x for part in lists for x in part]


# ---------------------------------------------------------------------- Bag


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _bucket_key(by_period: bool, raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        return ("", "")
    return (_text(raw.get("period")), "" if by_period else _text(raw.get("group")))


def _run_items(text: str, items: Iterable[Any]) -> list[dict[str, Any]]:
    from .errors import error_dict

    run = _compiled(text).evaluate(list(items), errors="collect")
    out: list[dict[str, Any]] = [r.to_dict() for r in run.results]
    out.extend({"error": error_dict(e)} for e in run.errors)
    return out


def _evaluate_items(text: str, keyed: tuple[Any, Iterable[Any]]) -> list[dict[str, Any]]:
    return _run_items(text, keyed[1])


def _item_keys(names: tuple[str, ...], items: Iterable[Any]) -> list[tuple[str, ...]]:
    width = len(names)
    return sorted({_bucket_key(False, raw)[:width] for raw in items if isinstance(raw, dict)})


def _partition_keys(names: tuple[str, ...], items: Iterable[Any]) -> list[tuple[str, ...]]:
    return _item_keys(names, items)


def _checked_bag(parts: list[list[tuple[str, ...]]]) -> bool:
    _check_keys((f"partition {i}", keys) for i, keys in enumerate(parts))
    return True


def _evaluate_checked(text: str, items: Iterable[Any], checked: bool) -> list[dict[str, Any]]:
    return _run_items(text, items)


def evaluate_bag(plan: Plan, bag: Any, *,
                 partitioned_by: str | Sequence[str] | None = None) -> Any:
    """Evaluate a Dask Bag of raw records; a Bag of result dicts and error dicts (lazy).

    By default records are grouped by (period, group) with a task-based
    shuffle (it runs on every scheduler, processes included), then each group
    is evaluated. With ``partitioned_by=("period", "group")`` (or
    ``("period",)``) the bag is taken as already cut that way (``db.read_text``
    of JSON Lines parts, one partition per file, say): each partition is
    evaluated where it is, with its records' event lists; the keys of every
    partition are gathered first (a few strings each), and a key found in two
    partitions stops the computation with a
    :class:`~incentives.errors.UsageError` naming it.
    """
    _require()
    text = plan.to_yaml()
    compiled = _compiled(text)
    if partitioned_by is not None:
        names = _partitioning(partitioned_by, compiled)
        from dask.delayed import delayed

        keys = bag.map_partitions(functools.partial(_partition_keys, names))
        check = delayed(_checked_bag)(keys.to_delayed())
        return bag.map_partitions(functools.partial(_evaluate_checked, text), check)
    by_period = _by_period(compiled)
    grouped = bag.groupby(functools.partial(_bucket_key, by_period), shuffle="tasks")
    return grouped.map(functools.partial(_evaluate_items, text)).flatten()


# ---------------------------------------------------------------- partitioned runs


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned source: its name (its path in the source,
    ``/``-separated: a folder ``period=2026-01/group=g7`` or a file), its files, and
    the values its folders give (``period=2026-01`` gives ``("period", "2026-01")``),
    which fill a record's missing columns."""

    name: str
    files: tuple[str, ...]
    values: tuple[tuple[str, str], ...] = ()


def _hive(parts: Sequence[str]) -> tuple[tuple[str, str], ...]:
    from urllib.parse import unquote

    values: dict[str, str] = {}
    for folder in parts:
        key, sep, value = folder.partition("=")
        if sep and key:
            values[unquote(key)] = unquote(value)
    return tuple(values.items())


def partitions(source: str | os.PathLike[str]) -> list[Partition]:
    """The partitions of the folder ``source``, in path order.

    Files in a ``key=value`` folder (``period=2026-01/group=g7/``, as Dask,
    Spark and pyarrow write a dataset partitioned by period and group) are one
    partition; a file anywhere else (``part-00003.jsonl``) is a partition of its
    own. Data files are ``.parquet``, ``.pq``, ``.jsonl``, ``.json`` and
    ``.csv``; names starting with ``.`` or ``_`` are left out. Listing is all
    the client does with the data.
    """
    root = Path(source).absolute()  # a worker may not share this process's directory
    if not root.is_dir():
        if root.is_file():
            return [Partition(root.name, (str(root),), ())]
        raise UsageError(f"records {str(source)!r}: no such folder")
    found: dict[str, list[str]] = {}
    values: dict[str, tuple[tuple[str, str], ...]] = {}

    def failed(exc: OSError) -> None:
        raise UsageError(f"cannot read records folder {str(source)!r}: "
                         f"{exc.strerror or exc}") from None

    for folder, dirs, names in os.walk(root, onerror=failed):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        here = Path(folder)
        rel = here.relative_to(root).parts
        for name in sorted(names):
            if name.startswith((".", "_")) or not name.lower().endswith(_DATA):
                continue
            key = "/".join(rel) if rel and "=" in rel[-1] else "/".join((*rel, name))
            found.setdefault(key, []).append(str(here / name))
            values.setdefault(key, _hive(rel))
    if not found:
        raise UsageError(f"records folder {str(source)!r} holds no records files "
                         f"({', '.join(_DATA)})")
    return [Partition(k, tuple(found[k]), values[k]) for k in sorted(found)]


def _filled(rows: Iterable[Any], values: tuple[tuple[str, str], ...],
            keys: tuple[str, ...]) -> Iterator[Any]:
    """``rows`` with the folder values of ``keys`` filled in where a row has none."""
    values = tuple((k, v) for k, v in values if k in keys)
    if not values:
        yield from rows
        return
    for row in rows:
        if isinstance(row, dict):
            for key, value in values:
                if row.get(key) in (None, ""):
                    row[key] = value
        yield row


def _rows_of(compiled: CompiledPlan, part: Partition, what: str) -> Iterator[Any]:
    # a record takes its period and group from its folders, an event row its period
    # only (a group would be a field of the event), a transaction nothing (its date)
    keys = {"records": ("period", "group"), "transactions": ()}.get(what, ("period",))
    for file in part.files:
        yield from _filled(compiled.rows(file, what=what), part.values, keys)


def _same_place(root: str | os.PathLike[str], part: Partition) -> Partition | None:
    """The partition of the dataset ``root`` laid out as ``part`` (its same path), or
    ``None`` when ``root`` has none there."""
    where = Path(root, *part.name.split("/"))
    if where.is_file():
        return Partition(part.name, (str(where),), part.values)
    if where.is_dir():
        files = sorted(str(f) for f in where.iterdir() if f.is_file()
                       and not f.name.startswith((".", "_")) and f.name.lower().endswith(_DATA))
        return Partition(part.name, tuple(files), part.values)
    return None


def _digest(period: str, payee: str) -> bytes:
    """8 bytes naming a (period, payee), the same in every process."""
    return hashlib.blake2b(f"{period}{_SEP}{payee}".encode(), digest_size=8).digest()


def _paid_twice(summaries: list[dict[str, Any]], folder: Path) -> UsageError | None:
    """A payee paid in two partitions for one period (a payee in two teams, one in each
    partition), found from the digests the workers sent; ``None`` when there is none."""
    import numpy as np

    digests = [np.frombuffer(s["payees"], dtype=np.uint64) for s in summaries]
    every = np.concatenate(digests) if digests else np.zeros(0, dtype=np.uint64)
    ordered = np.sort(every)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(twice):
        return None
    first = twice[0]
    where = [s for s, d in zip(summaries, digests, strict=True) if first in d]
    for period, payee in _paid_in(where[0], folder):
        if np.frombuffer(_digest(period, payee), dtype=np.uint64)[0] == first:
            break
    else:  # pragma: no cover - the digest was read from this part's results
        period = payee = "?"
    return UsageError(f"payee {payee!r} of period {period} has records in two partitions "
                      f"({where[0]['partition']} and {where[-1]['partition']}: a payee in two "
                      "teams of one period?); none was evaluated apart, nothing was written")


def _paid_in(summary: dict[str, Any], folder: Path) -> Iterator[tuple[str, str]]:
    for name in summary["files"]:
        path = folder / name
        if name.endswith(".errors.jsonl") or ".lines." in name or ".errors." in name:
            continue
        if name.endswith(".jsonl"):
            with path.open(encoding="utf-8") as f:
                for line in f:
                    data = json.loads(line)
                    yield data["period"], data["payee"]
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=["period", "payee"])
            yield from zip(table.column("period").to_pylist(),
                           table.column("payee").to_pylist(), strict=True)


def _json_line(r: PayeeResult, details: Details) -> str:
    """A result's JSONL line at the level of ``details`` (as ``incentives stream`` writes
    it)."""
    return r.to_json(details=details)


def _write_jsonl(path: Path, lines: Iterable[str]) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temp.open("w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line + "\n")
        os.replace(temp, path)  # a task run again (a worker lost) replaces it whole
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def evaluate_partition(
    text: str,
    part: Partition,
    index: int,
    out: str | os.PathLike[str],
    *,
    partitioned_by: tuple[str, ...] = ("period", "group"),
    format: Literal["jsonl", "parquet"] = "jsonl",
    details: Details = "full",
    events: Mapping[str, str] | None = None,
    transactions: str | None = None,
    hierarchy: str | None = None,
) -> dict[str, Any]:
    """Evaluate one partition and write its results: what a worker of
    :func:`run_partitioned` does (and what one process does, partition after
    partition, without a cluster). ``text`` is the plan's YAML.

    Writes ``part-NNNNN.jsonl`` (one result per line, as ``incentives stream
    --format jsonl`` writes it) and, when there are errors,
    ``part-NNNNN.errors.jsonl`` (one error per line, as in the ``errors`` of
    JSON output); or, with ``format="parquet"``, ``part-NNNNN.parquet`` and its
    ``.lines`` and ``.errors`` files (the Parquet sink's tables: amounts
    decimal128). Returns a small summary: the files written, the counts, the
    errors, the partition's keys, the CPU seconds it took and the worker
    process's id. A bad source
    (a file that cannot be read) is returned as ``{"failed": message}``.
    """
    from .errors import error_dict

    started = time.process_time()
    compiled = _compiled(text)
    folder = Path(out)
    stem = f"part-{index:05d}"
    try:
        rows = _rows_of(compiled, part, "records")
        joined: dict[str, Any] = {}
        for name, root in (events or {}).items():
            same = _same_place(root, part)
            joined[name] = [] if same is None else _rows_of(compiled, same, f"events {name}")
        extra: dict[str, Any] = {}
        if transactions is not None:
            same = _same_place(transactions, part)
            extra["transactions"] = [] if same is None else list(
                _rows_of(compiled, same, "transactions"))
        if hierarchy is not None:
            extra["hierarchy"] = hierarchy
        run = compiled.evaluate(rows, events=joined or None, errors="collect", **extra)
        written: list[str] = []
        if format == "parquet":
            if run.results or run.errors:
                from .parquet import parquet_sink
                from .tabular import result_tables

                tables = result_tables(run, details=details)
                sink = parquet_sink(folder / f"{stem}.parquet")
                try:
                    sink.write(tables)
                    sink.commit()
                except BaseException:
                    sink.discard()
                    raise
                written = [p.name for p in sink.paths]
        else:
            _write_jsonl(folder / f"{stem}.jsonl", (_json_line(r, details) for r in run.results))
            written.append(f"{stem}.jsonl")
            if run.errors:
                _write_jsonl(folder / f"{stem}.errors.jsonl",
                             (json.dumps(error_dict(e), ensure_ascii=False)
                              for e in run.errors))
                written.append(f"{stem}.errors.jsonl")
    except IncentivesError as exc:  # sent back as text: error objects need not unpickle
        return {"partition": part.name, "failed": f"partition {part.name}: {exc}"}
    return {
        "partition": part.name,
        "files": written,
        "results": len(run.results),
        "errors": [error_dict(e) for e in run.errors],
        "keys": sorted(_keys_of_results(run.results, len(partitioned_by))),
        "payees": b"".join(_digest(r.period, r.payee) for r in run.results),
        "cpu_seconds": time.process_time() - started,
        "pid": os.getpid(),
    }


def _where(source: str | os.PathLike[str]) -> str:
    """A path made absolute (a worker may not share this process's directory); a
    database URL as it is."""
    from .sources import is_url

    text = os.fspath(source)
    return text if is_url(text) else os.path.abspath(text)


@dataclass
class PartitionedRun:
    """What :func:`run_partitioned` did: the folder written, its parts (each
    partition's summary: ``partition``, ``files``, ``results``, ``errors``,
    ``cpu_seconds``), and the totals."""

    out: Path
    parts: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def results(self) -> int:
        return sum(int(p["results"]) for p in self.parts)

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e for p in self.parts for e in p["errors"]]

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds the partitions took, summed over the workers."""
        return sum(float(p["cpu_seconds"]) for p in self.parts)

    @property
    def ok(self) -> bool:
        return not self.errors

    def files(self) -> list[Path]:
        """The result files, in partition order."""
        return [self.out / name for p in self.parts for name in p["files"]]


def run_partitioned(
    plan: Plan,
    source: str | os.PathLike[str] | Sequence[Partition],
    out: str | os.PathLike[str],
    *,
    client: Any = None,
    partitioned_by: str | Sequence[str] = ("period", "group"),
    format: Literal["jsonl", "parquet"] = "jsonl",
    details: Details = "full",
    events: Mapping[str, str | os.PathLike[str]] | None = None,
    transactions: str | os.PathLike[str] | None = None,
    hierarchy: str | os.PathLike[str] | None = None,
) -> PartitionedRun:
    """Evaluate records already partitioned (see :func:`partitions`) on the
    workers of ``client``; the workers write the results to the folder ``out``.

    ``client``: a ``dask.distributed.Client`` (``Client(LocalCluster(...))`` on
    this machine, ``Client("tcp://scheduler:8786")`` for a cluster); every
    worker must see ``source`` and ``out`` at the same paths (a shared file
    system). Without one, the partitions are evaluated here, one after
    another. ``partitioned_by``: what each partition holds whole,
    ``("period", "group")`` or ``("period",)``; it is checked from the keys the
    workers send back, and a key found in two partitions is a
    :class:`~incentives.errors.UsageError` naming it and both partitions. A
    payee paid in two partitions for one period (a payee in two teams, its
    records in two partitions) is refused likewise (each worker sends back 8
    bytes per payee-period to find it): where ``plan.evaluate`` would report
    both records as duplicates, a partitioned run cannot, having evaluated them
    apart.

    ``events`` (event-list name to a dataset) and ``transactions`` are datasets
    laid out as ``source``: a partition's event rows (and transactions) are the
    files at its same path there (``lost/period=2026-01/group=g7/``), read and
    joined on the worker. ``hierarchy`` is read whole by each partition.

    ``out`` is a folder that must not exist or be empty: the parts are written
    into a folder next to it and moved into place with a ``manifest.json``
    when every partition is done and the partitioning is checked; on any error
    nothing is left. Records that cannot be evaluated are errors in the
    summary and the parts (``part-NNNNN.errors.jsonl``); the others are paid.
    """
    from .plan import Plan

    if not isinstance(plan, Plan):
        raise UsageError(f"plan: a loaded plan (incentives.load_plan), not "
                         f"{type(plan).__name__}")
    if format not in ("jsonl", "parquet"):
        raise UsageError(f"format {format!r}: use 'jsonl' or 'parquet'")
    if details not in ("full", "lines", "none"):
        raise UsageError(f"details {details!r}: use 'full', 'lines' or 'none'")
    text = plan.to_yaml()
    compiled = _compiled(text)
    names = _partitioning(partitioned_by, compiled)
    declared = compiled.plan.inputs.events
    for name in events or {}:
        if name not in declared:
            raise UsageError(f"events {name!r}: the plan declares no such event list")
    parts = list(source) if isinstance(source, Sequence) and not isinstance(source, str) \
        else partitions(source)
    target = Path(out).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{str(out)!r}: the output folder must not exist or be empty")
    staging = target.with_name(f".{target.name}.incentives-tmp-{uuid.uuid4().hex[:12]}")
    options: dict[str, Any] = {
        "partitioned_by": names, "format": format, "details": details,
        "events": {n: os.path.abspath(p) for n, p in (events or {}).items()} or None,
        "transactions": None if transactions is None else os.path.abspath(transactions),
        "hierarchy": None if hierarchy is None else _where(hierarchy),
    }
    started = time.perf_counter()
    staging.mkdir(parents=True)
    try:
        if client is None:
            summaries = [evaluate_partition(text, p, i, str(staging), **options)
                         for i, p in enumerate(parts)]
        else:
            futures = client.map(functools.partial(evaluate_partition, text, out=str(staging),
                                                   **options),
                                 parts, range(len(parts)), pure=False)
            summaries = client.gather(futures)
        failed = [s["failed"] for s in summaries if "failed" in s]
        if failed:
            raise UsageError(failed[0] + (f" (and {len(failed) - 1} more partitions failed)"
                                          if len(failed) > 1 else ""))
        _check_keys((s["partition"], s.pop("keys")) for s in summaries)
        twice = _paid_twice(summaries, staging)
        if twice is not None:
            raise twice
        for s in summaries:
            del s["payees"]
        done = PartitionedRun(target, list(summaries), time.perf_counter() - started)
        manifest = {
            "plan": {"name": plan.name, "version": plan.version},
            "format": format, "details": details, "partitioned_by": list(names),
            "results": done.results, "errors": len(done.errors),
            "parts": [{k: s[k] for k in ("partition", "files", "results", "cpu_seconds")}
                      | {"errors": len(s["errors"])} for s in summaries],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1)
                                        + "\n", encoding="utf-8")
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    done.wall_seconds = time.perf_counter() - started
    return done
