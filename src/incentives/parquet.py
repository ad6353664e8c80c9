"""Records, transactions and tables from Parquet, and a run's tables to Parquet (the
``parquet`` extra: ``pip install 'incentives[parquet]'``, which brings pyarrow).

Reading (:func:`read_parquet`): a ``.parquet`` file, or a folder of them (a
dataset, hive-partitioned or not: ``period=2026-05/group=x/part-0.parquet``),
read one file and one record batch at a time, so memory holds one batch (a
row group at most), whatever the size of the data. Values arrive exact:

- ``decimal128``/``decimal256`` (and ``decimal32``/``decimal64``): :class:`~decimal.Decimal`,
  never through a float;
- integers: ``int``; strings (dictionary-encoded too): text; booleans: ``bool``;
- ``date32``/``date64``: ``YYYY-MM-DD``; timestamps: ISO text (a date at midnight,
  as :func:`incentives.tabular.cell` says); times: ``HH:MM:SS[.ffffff]``;
- partition folders (``key=value``): a column ``key`` holding the text ``value``;
- ``float16/32/64`` columns: refused, naming the file and the column, unless the
  plan says how to read floats (``floats``: ``shortest`` or a quantum), checked
  once from each file's schema, before any row is read;
- nested columns (lists, structs, maps): refused, naming the column, except a
  column ``sellers`` holding a list of ``{payee, share}`` structs (a transaction's
  sellers), which passes as a list of dicts.

Writing (:func:`parquet_sink`): three files, ``NAME.parquet`` (totals), and next to
it ``NAME.lines.parquet`` and ``NAME.errors.parquet``, with the columns of
:data:`~incentives.tabular.TOTALS`, :data:`~incentives.tabular.LINES` and
:data:`~incentives.tabular.ERRORS`; money as ``decimal128(38, places)``.

>>> import tempfile, pathlib
>>> from decimal import Decimal
>>> from incentives.tabular import ResultTables
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> sink = parquet_sink(folder / "pay.parquet")
>>> sink.write(ResultTables("demo", "1", 2, totals=[
...     ("demo", "1", "2026-05", "g", "A", Decimal("1400.50"), "", "")], periods=["2026-05"]))
>>> sink.commit()
>>> sorted(p.name for p in folder.iterdir())
['pay.errors.parquet', 'pay.lines.parquet', 'pay.parquet']
>>> read_result_parquet(folder / "pay.parquet").totals
[('demo', '1', '2026-05', 'g', 'A', Decimal('1400.50'), '', '')]
>>> [row["total"] for row in read_parquet(folder / "pay.parquet")]
[Decimal('1400.50')]
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .errors import UsageError
from .fileio import StagedFiles, check_output
from .tabular import (
    ERRORS,
    LINES,
    TOTALS,
    Column,
    FloatReading,
    ResultTables,
    cell,
    float_value,
    periods_of,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["parquet_paths", "parquet_sink", "read_parquet", "read_result_parquet"]

#: Rows per record batch read (memory holds one batch, and one row group of the file).
BATCH_ROWS = 16_384
#: The file metadata keys the sink writes.
META_PLAN = b"incentives.plan"
META_VERSION = b"incentives.plan_version"
META_PLACES = b"incentives.places"
META_TABLE = b"incentives.table"
META_WRITE = b"incentives.write"
#: The value of a hive partition folder ``key=__HIVE_DEFAULT_PARTITION__``: no value.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
#: The most digits of a money column (``decimal128``).
MAX_DIGITS = 38


def _require() -> None:
    from .extras import require

    require("parquet", "reading or writing Parquet", modules=("pyarrow", "pyarrow.parquet"))


def _floats(floats: FloatReading) -> FloatReading:
    if floats in ("refuse", "shortest") or (isinstance(floats, Decimal)
                                             and floats.is_finite() and floats > 0):
        return floats
    raise UsageError(f"floats: {floats!r} is not 'refuse', 'shortest' or a positive quantum "
                     "such as Decimal('0.01')")


# ---------------------------------------------------------------------------- reading


def read_parquet(path: str | os.PathLike[str], *, floats: FloatReading = "refuse",
                 what: str = "records") -> Iterator[dict[str, Any]]:
    """The rows of the Parquet file or dataset folder ``path``, one dict per row
    (column name -> value), read one record batch at a time.

    The files are found and their schemas checked at once (a float or nested
    column is refused here, before any row is read, with a :class:`UsageError`
    naming the file and the column); the rows are read as the iterator is
    consumed. ``what`` names the source in messages (``records``,
    ``transactions``...). A file that cannot be read, here or later: a
    :class:`UsageError` naming it.
    """
    _require()
    reading = _floats(floats)
    root = Path(path)
    files = _dataset_files(root, what)
    plans = [_FilePlan(file, parts, _schema(file, what), reading, what) for file, parts in files]
    return _rows(plans, what)


def _dataset_files(root: Path, what: str) -> list[tuple[Path, dict[str, str | None]]]:
    """The Parquet files of ``root`` (itself, or the files under the folder, in sorted
    order, hidden names and names starting with ``_`` left out) with their hive
    partition values."""
    try:
        is_dir = root.is_dir()
        exists = is_dir or root.exists()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {str(root)!r}: {exc.strerror or exc}") from None
    if not exists:
        raise UsageError(f"cannot read {what} {str(root)!r}: no such file or folder")
    if not is_dir:
        return [(root, {})]
    found: list[tuple[tuple[str, ...], Path]] = []

    def failed(exc: OSError) -> None:
        raise UsageError(f"cannot read {what} folder {str(root)!r}: "
                         f"{exc.strerror or exc}") from None

    for folder, dirs, names in os.walk(root, onerror=failed, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        here = Path(folder)
        for name in names:
            if name.startswith((".", "_")):
                continue
            file = here / name
            if file.is_file():
                found.append((file.relative_to(root).parts, file))
    if not found:
        raise UsageError(f"{what} folder {str(root)!r} holds no Parquet files")
    found.sort()
    return [(file, _partitions(parts[:-1], file, what)) for parts, file in found]


def _partitions(folders: Sequence[str], file: Path, what: str) -> dict[str, str | None]:
    """The hive partition values of the folders ``key=value`` a file is in."""
    values: dict[str, str | None] = {}
    for folder in folders:
        key, sep, value = folder.partition("=")
        if not sep or not key:
            continue  # a folder that is not a partition: no column
        key, value = unquote(key), unquote(value)
        if key in values:
            raise UsageError(f"{what} file {str(file)!r}: the partition {key!r} is given twice "
                             "in its folders")
        values[key] = None if value == HIVE_NULL else value
    return values


def _schema(file: Path, what: str) -> pa.Schema:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(file)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"cannot read {what} file {str(file)!r}: {_arrow_message(exc)}"
                         ) from None


def _arrow_message(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 300 else first[:300] + "…"


Converter = Callable[["pa.Array"], list[Any]]


class _FilePlan:
    """One file of the source: its partition values and how each column is read."""

    def __init__(self, file: Path, partitions: dict[str, str | None], schema: pa.Schema,
                 reading: FloatReading, what: str) -> None:
        self.file = file
        self.partitions = partitions
        self.source = f"{what} file {str(file)!r}"
        names = list(schema.names)
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise UsageError(f"{self.source}: the column {name!r} appears twice")
            seen.add(name)
            if name in partitions:
                raise UsageError(f"{self.source}: {name!r} is both a column of the file and a "
                                 f"partition folder ({name}=...)")
        self.names = names
        self.converters = [_converter(field.name, field.type, reading, self.source)
                           for field in schema]


def _converter(name: str, kind: pa.DataType, reading: FloatReading, source: str) -> Converter:
    """How the values of column ``name`` (of Arrow type ``kind``) are read; a
    :class:`UsageError` for a type that is refused."""
    import pyarrow as pa
    import pyarrow.types as t

    def plain(array: pa.Array) -> list[Any]:
        return array.to_pylist()  # type: ignore[no-any-return]

    if t.is_dictionary(kind):
        inner = _converter(name, kind.value_type, reading, source)
        return lambda array: inner(array.dictionary_decode())
    if (t.is_string(kind) or t.is_large_string(kind) or _is(t, "is_string_view", kind)
            or t.is_integer(kind) or t.is_boolean(kind) or t.is_null(kind)
            or t.is_decimal(kind)):
        return plain
    if t.is_floating(kind):
        if reading == "refuse":
            float_value(0.0, reading, source=source, column=name)  # raises, naming the column

        def floats(array: pa.Array) -> list[Any]:
            return [None if v is None else float_value(float(v), reading, source=source,
                                                       column=name)
                    for v in array.to_pylist()]
        return floats
    if t.is_date(kind):
        return lambda array: [None if v is None else v.isoformat() for v in array.to_pylist()]
    if t.is_timestamp(kind):
        def timestamps(array: pa.Array) -> list[Any]:
            if kind.unit == "ns":
                array = _to_micros(array, pa.timestamp("us", kind.tz), name, source)
            return [cell(v, reading, source=source, column=name) for v in array.to_pylist()]
        return timestamps
    if t.is_time(kind):
        def times(array: pa.Array) -> list[Any]:
            if kind.unit == "ns":
                array = _to_micros(array, pa.time64("us"), name, source)
            return [None if v is None else v.isoformat() for v in array.to_pylist()]
        return times
    if name == "sellers" and _sellers_type(kind, reading, source):
        return lambda array: _sellers(array, reading, source)
    if t.is_nested(kind):
        raise UsageError(f"{source}, column {name!r}: holds nested values ({kind}), which are "
                         "not read: give one value per column (only 'sellers' may be a list "
                         "of {payee, share})")
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind) \
            or _is(t, "is_binary_view", kind):
        raise UsageError(f"{source}, column {name!r}: holds binary data ({kind}), not text or "
                         "numbers")
    raise UsageError(f"{source}, column {name!r}: its type {kind} is not read (text, integers, "
                     "decimals, booleans, dates and timestamps are)")


def _is(types: Any, test: str, kind: pa.DataType) -> bool:
    """``types.<test>(kind)`` where this pyarrow has that test (newer types)."""
    check = getattr(types, test, None)
    return bool(check(kind)) if check is not None else False


def _to_micros(array: pa.Array, target: pa.DataType, name: str, source: str) -> pa.Array:
    import pyarrow as pa

    try:
        return array.cast(target, safe=True)
    except pa.ArrowInvalid:
        raise UsageError(f"{source}, column {name!r}: holds times with nanoseconds, finer than "
                         "Python's dates and times hold; round them to microseconds") from None


def _sellers_type(kind: pa.DataType, reading: FloatReading, source: str) -> bool:
    """Whether ``kind`` is a list of ``{payee, share}`` structs (a float share refused
    by ``reading`` is a :class:`UsageError`)."""
    import pyarrow.types as t

    if not (t.is_list(kind) or t.is_large_list(kind)) or not t.is_struct(kind.value_type):
        return False
    fields = {kind.value_type.field(i).name: kind.value_type.field(i).type
              for i in range(kind.value_type.num_fields)}
    if "payee" not in fields or not set(fields) <= {"payee", "share"}:
        return False
    payee = fields["payee"]
    if t.is_dictionary(payee):
        payee = payee.value_type
    if not (t.is_string(payee) or t.is_large_string(payee) or _is(t, "is_string_view", payee)):
        return False
    share = fields.get("share")
    if share is None:
        return True
    if t.is_floating(share):
        if reading == "refuse":
            float_value(0.0, reading, source=source, column="sellers.share")
        return True
    return bool(t.is_decimal(share) or t.is_integer(share) or t.is_string(share)
                or t.is_large_string(share))


def _sellers(array: pa.Array, reading: FloatReading, source: str) -> list[Any]:
    out: list[Any] = []
    for sellers in array.to_pylist():
        if sellers is None:
            out.append(None)
            continue
        converted = []
        for seller in sellers:
            if seller is not None and type(seller.get("share")) is float:
                seller = {**seller, "share": float_value(
                    seller["share"], reading, source=source, column="sellers.share")}
            converted.append(seller)
        out.append(converted)
    return out


def _rows(plans: list[_FilePlan], what: str) -> Iterator[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for plan in plans:
        try:
            reader = pq.ParquetFile(plan.file)
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"cannot read {plan.source}: {_arrow_message(exc)}") from None
        try:
            if list(reader.schema_arrow.names) != plan.names:
                raise UsageError(f"{plan.source}: the file changed while it was read")
            batches = reader.iter_batches(batch_size=BATCH_ROWS, use_threads=False)
            names, partitions = plan.names, plan.partitions
            while True:
                try:
                    batch = next(batches)
                    columns = [convert(batch.column(i))
                               for i, convert in enumerate(plan.converters)]
                except StopIteration:
                    break
                except UsageError:
                    raise
                except (pa.ArrowException, OSError, ValueError) as exc:  # text not UTF-8...
                    raise UsageError(f"cannot read {plan.source}: {_arrow_message(exc)}"
                                     ) from None
                if partitions:
                    for values in zip(*columns, strict=True):
                        row = dict(zip(names, values, strict=True))
                        row.update(partitions)
                        yield row
                elif columns:
                    for values in zip(*columns, strict=True):
                        yield dict(zip(names, values, strict=True))
        finally:
            with contextlib.suppress(Exception):
                reader.close()


# ---------------------------------------------------------------------------- writing


def parquet_paths(path: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """The three files a sink to ``path`` writes: totals (``path`` itself), lines and
    errors (``NAME.lines.parquet``, ``NAME.errors.parquet`` next to it). ``path`` must
    end in ``.parquet`` (or ``.pq``, giving ``NAME.lines.pq``...).

    >>> [p.name for p in parquet_paths("out/pay.parquet")]
    ['pay.parquet', 'pay.lines.parquet', 'pay.errors.parquet']
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".pq") or not target.stem:
        raise UsageError(f"{str(path)!r}: a Parquet output is a file NAME.parquet (its lines "
                         "and errors go to NAME.lines.parquet and NAME.errors.parquet)")
    stem = target.name[: -len(target.suffix)]
    return (target, target.with_name(f"{stem}.lines{target.suffix}"),
            target.with_name(f"{stem}.errors{target.suffix}"))


def _arrow_type(column: Column, places: int) -> pa.DataType:
    import pyarrow as pa

    if column.kind == "money":
        return pa.decimal128(MAX_DIGITS, places)
    if column.kind == "int":
        return pa.int64()
    return pa.string()


def _arrow_schema(columns: Sequence[Column], tables: ResultTables, table: str,
                  write: str) -> pa.Schema:
    import pyarrow as pa

    fields = [pa.field(c.name, _arrow_type(c, tables.places), nullable=c.kind == "text?")
              for c in columns]
    return pa.schema(fields, metadata={
        META_PLAN: tables.plan.encode(), META_VERSION: tables.version.encode(),
        META_PLACES: str(tables.places).encode(), META_TABLE: table.encode(),
        META_WRITE: write.encode()})


class ParquetSink:
    """A run's tables to three Parquet files (see :func:`parquet_sink`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        _require()
        self.paths = parquet_paths(path)
        for target in self.paths:
            check_output(target, "Parquet output")
        self._files: StagedFiles | None = None
        self._writers: list[Any] = []
        self._schemas: list[pa.Schema] = []
        self._about: tuple[str, str, int] | None = None
        self._done = False

    def _open(self, tables: ResultTables) -> None:
        import pyarrow.parquet as pq

        if not 0 <= tables.places <= MAX_DIGITS:
            raise UsageError(f"Parquet output: amounts with {tables.places} places do not fit "
                             f"a decimal of {MAX_DIGITS} digits")
        write = uuid.uuid4().hex
        self._about = (tables.plan, tables.version, tables.places)
        self._schemas = [_arrow_schema(columns, tables, name, write) for columns, name in
                         ((TOTALS, "totals"), (LINES, "lines"), (ERRORS, "errors"))]
        files = StagedFiles()
        try:
            # lines and errors first: the totals file, the one named, is put in place last
            for i in (1, 2, 0):
                handle = files.open(self.paths[i], temp_for=self.paths[0])
                self._writers.append((i, pq.ParquetWriter(handle.buffer, self._schemas[i])))
        except BaseException:
            for _, writer in self._writers:
                with contextlib.suppress(Exception):
                    writer.close()
            self._writers = []
            files.discard()
            raise
        self._files = files

    def write(self, tables: ResultTables) -> None:
        """Add ``tables``' rows to the three files (a row group each)."""
        import pyarrow as pa

        if self._done:
            raise UsageError("Parquet output: already committed or discarded")
        if self._files is None:
            self._open(tables)
        elif self._about != (tables.plan, tables.version, tables.places):
            raise UsageError(f"Parquet output: rows of plan {tables.plan!r} {tables.version} "
                             f"({tables.places} places) added to those of plan "
                             f"{self._about!r}")
        batches = []
        for rows, columns, name, schema in ((tables.totals, TOTALS, "totals", self._schemas[0]),
                                            (tables.lines, LINES, "lines", self._schemas[1]),
                                            (tables.errors, ERRORS, "errors", self._schemas[2])):
            batches.append(_table(rows, columns, schema, name))
        try:
            for i, writer in self._writers:
                if batches[i].num_rows:
                    writer.write_table(batches[i])
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"Parquet output {str(self.paths[0])!r}: cannot write: "
                             f"{_arrow_message(exc)}") from None

    def commit(self) -> None:
        """Close the three files and put them in place (lines, errors, then totals);
        nothing is written when :meth:`write` was never called."""
        import pyarrow as pa

        if self._done:
            raise UsageError("Parquet output: already committed or discarded")
        self._done = True
        if self._files is None:
            return
        try:
            for _, writer in self._writers:
                writer.close()
            self._files.commit()
        except (pa.ArrowException, OSError) as exc:
            self._abandon()
            raise UsageError(f"Parquet output {str(self.paths[0])!r}: cannot write: "
                             f"{_arrow_message(exc)}") from None
        except BaseException:
            self._abandon()
            raise

    def discard(self) -> None:
        """Remove the temporary files; the targets stay as they were."""
        self._done = True
        self._abandon()

    def __del__(self) -> None:
        # dropped without a commit (an error the caller did not catch): nothing is written
        if not getattr(self, "_done", True):
            with contextlib.suppress(Exception):
                self.discard()

    def _abandon(self) -> None:
        for _, writer in self._writers:
            with contextlib.suppress(Exception):
                writer.close()
        self._writers = []
        if self._files is not None:
            self._files.discard()


def _table(rows: Sequence[tuple[Any, ...]], columns: Sequence[Column], schema: pa.Schema,
           name: str) -> pa.Table:
    """``rows`` as an Arrow table of ``schema``; a :class:`UsageError` naming the table,
    the row and the column when a value does not fit."""
    import pyarrow as pa

    arrays = []
    for j, column in enumerate(columns):
        values = [row[j] for row in rows]
        try:
            arrays.append(pa.array(values, type=schema.field(j).type,
                                   from_pandas=False, safe=True))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            arrays.append(_column_error(values, column, schema.field(j), name))
    try:
        return pa.Table.from_arrays(arrays, schema=schema)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise UsageError(f"Parquet output, table {name}: {_arrow_message(exc)}") from None


def _column_error(values: list[Any], column: Column, field: pa.Field, name: str) -> Any:
    """Raise the :class:`UsageError` naming the first value of ``values`` that does not
    fit ``field``."""
    import pyarrow as pa

    for i, value in enumerate(values, 1):
        if value is None and not field.nullable:
            raise UsageError(f"Parquet output, table {name}, row {i}, column {column.name!r}: "
                             "no value")
        try:
            pa.array([value], type=field.type, from_pandas=False, safe=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            if column.kind == "money":
                why = f"{value!r} does not fit {field.type}"
            else:
                why = f"{type(value).__name__} {value!r} is not {column.kind}"
            raise UsageError(f"Parquet output, table {name}, row {i}, column {column.name!r}: "
                             f"{why}") from None
    raise UsageError(f"Parquet output, table {name}, column {column.name!r}: cannot be "
                     "written")


def parquet_sink(path: str | os.PathLike[str]) -> ParquetSink:
    """A :class:`~incentives.tabular.Sink` writing ``path`` (the totals) and, next to it,
    ``NAME.lines.parquet`` and ``NAME.errors.parquet``.

    Each :meth:`~ParquetSink.write` adds a row group to each file, written to a
    temporary file next to it (``.NAME.parquet.incentives-tmp-PID-XXXXXXXX.tmp``);
    :meth:`~ParquetSink.commit` puts the three in place (lines, errors, then the
    totals), :meth:`~ParquetSink.discard` removes them. A run killed before the
    commit leaves the old files whole (and its temporary files, all three named
    after ``path``: :func:`incentives.fileio.clean_leftovers` of ``path`` removes
    them). Every file
    carries the plan, its version, the places and one id of the write in its
    metadata: :func:`read_result_parquet` refuses three files not written together.
    """
    return ParquetSink(path)


def read_result_parquet(path: str | os.PathLike[str]) -> ResultTables:
    """The tables a :func:`parquet_sink` wrote to ``path`` (and its lines and errors
    files), exactly: money as :class:`~decimal.Decimal` at the places written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _require()
    paths = parquet_paths(path)
    read: list[tuple[dict[bytes, bytes], list[tuple[Any, ...]]]] = []
    for target, columns, name in zip(paths, (TOTALS, LINES, ERRORS),
                                     ("totals", "lines", "errors"), strict=True):
        try:
            table = pq.read_table(target)
        except FileNotFoundError:
            raise UsageError(f"cannot read {str(target)!r}: no such file") from None
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"cannot read {str(target)!r}: {_arrow_message(exc)}") from None
        names = [c.name for c in columns]
        if table.column_names != names:
            raise UsageError(f"{str(target)!r}: its columns are {table.column_names}, not "
                             f"those of the {name} table ({names})")
        meta = table.schema.metadata or {}
        data = [table.column(i).to_pylist() for i in range(table.num_columns)]
        read.append((meta, list(zip(*data, strict=True)) if data and table.num_rows else []))
    metas = [meta for meta, _ in read]
    for key in (META_PLAN, META_VERSION, META_PLACES):
        if any(key not in meta for meta in metas):
            raise UsageError(f"{str(path)!r}: not written by incentives (no {key.decode()} in "
                             "its metadata)")
    if len({(m[META_PLAN], m[META_VERSION], m[META_PLACES], m.get(META_WRITE))
            for m in metas}) != 1:
        raise UsageError(f"{str(path)!r}: its three files ({', '.join(p.name for p in paths)}) "
                         "were not written together (a write interrupted while they were put "
                         "in place?); write them again")
    meta = metas[0]
    out = ResultTables(meta[META_PLAN].decode(), meta[META_VERSION].decode(),
                       int(meta[META_PLACES]), read[0][1], read[1][1], read[2][1])
    out.periods = periods_of(out)
    return out
