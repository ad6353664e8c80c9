"""Records, transactions and tables from Excel workbooks, and a run's tables to one
(the ``excel`` extra: ``pip install 'incentives[excel]'``, which brings openpyxl).

Reading (:func:`read_excel`): one sheet of an ``.xlsx``/``.xlsm`` workbook, read
row by row (openpyxl's read-only mode: memory does not grow with the sheet).
The header row is found below any title rows: the first of the first 50 rows
with a cell equal to an expected column (``payee``). A blank, merged or
repeated header cell is refused, naming the cells. Cells are typed as Excel
stores them:

- numbers: Excel stores doubles. A number is read as the shortest decimal that
  reads back as the stored double, rounded to Excel's 15 significant digits
  (what Excel shows), trailing zeros dropped; an integral value is an ``int``
  (:func:`excel_number`): ``0.1`` -> ``Decimal('0.1')``, a computed
  ``0.30000000000000004`` -> ``Decimal('0.3')``, ``3.0`` -> ``3``, ``5%`` ->
  ``Decimal('0.05')``;
- dates: ``YYYY-MM-DD``; dates with a time: ISO text; times: ``HH:MM:SS``;
- booleans: ``bool``; text: ``str`` (a cell of only spaces is blank);
- an error cell (``#DIV/0!``, ``#N/A``...): its row is a
  :class:`~incentives.errors.RecordError` naming the sheet and the cell, in
  place of the row (the row is reported, the others are read);
- a formula without a value saved with it (a workbook written by a program
  and never opened in Excel): that row's error, naming the cell (found in the
  sheet's XML: openpyxl reads such a cell as a blank, which a default would fill).

Writing (:func:`excel_sink`): an ``.xlsx`` with the sheets ``totals``,
``lines`` and ``errors`` (the columns of :mod:`incentives.tabular`). Text is
always a text cell, never a formula; money is a number shown with the plan's
places (text when it has more than 15 significant digits, which a double
cannot hold).

>>> excel_number(0.1 + 0.2), excel_number(3.0), excel_number(1234.5)
(Decimal('0.3'), 3, Decimal('1234.5'))
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .errors import IncentivesError, RecordError, TransactionError, UsageError, did_you_mean
from .fileio import MAX_FILE_BYTES, StagedFile, check_output, quote
from .tabular import ERRORS, LINES, TOTALS, Column, ResultTables, cell, periods_of

__all__ = [
    "EXCEL_CELL_CHARACTERS",
    "EXCEL_DIGITS",
    "EXCEL_ROWS",
    "HEADER_SEARCH_ROWS",
    "check_sheet_rows",
    "escape_text",
    "excel_number",
    "excel_sink",
    "read_excel",
    "read_result_excel",
    "sheet_names",
    "unescape_text",
]

#: How many significant digits Excel keeps (and shows) of a number.
EXCEL_DIGITS = 15
#: The most characters a cell holds.
EXCEL_CELL_CHARACTERS = 32_767
#: The most rows a sheet holds (the header row included).
EXCEL_ROWS = 1_048_576
#: The header row is looked for in this many rows at the top of the sheet.
HEADER_SEARCH_ROWS = 50
#: The most a workbook read as records may hold once its parts are uncompressed,
#: unless told otherwise (``max_bytes``, ``--max-bytes``): a small file can inflate to
#: gigabytes (a "zip bomb"), and the workbook's strings are read whole when it is
#: opened (they may hold a quarter of it). Zip itself holds each part to the size its
#: directory declares.
MAX_WORKBOOK_BYTES = MAX_FILE_BYTES
#: Sheets the sink writes, with their columns.
SHEETS: tuple[tuple[str, tuple[Column, ...]], ...] = (
    ("totals", TOTALS), ("lines", LINES), ("errors", ERRORS))
#: Custom document properties the sink writes.
PROP_PLAN = "incentives.plan"
PROP_VERSION = "incentives.plan_version"
PROP_PLACES = "incentives.places"

_FIFTEEN = Context(prec=EXCEL_DIGITS, rounding=ROUND_HALF_UP)
_WIDE = Context(prec=1000)


def _require() -> None:
    from .extras import require

    require("excel", "reading or writing Excel workbooks", modules=("openpyxl",))


def excel_number(value: float) -> int | Decimal:
    """A number as Excel stores it (a double) read as Excel shows it: the shortest
    decimal that reads back as ``value``, rounded half up to 15 significant digits,
    trailing zeros dropped; an ``int`` when it is integral. ``ValueError`` when it
    is not finite.

    >>> excel_number(0.05), excel_number(1e20), excel_number(-0.0)
    (Decimal('0.05'), 100000000000000000000, 0)
    >>> excel_number(1.2345678901234567e17)
    123456789012346000
    """
    number = Decimal(repr(value))
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    number = _FIFTEEN.plus(number)
    if number == number.to_integral_value(context=_WIDE):
        return int(number)
    return number.normalize(_FIFTEEN)


# OOXML text (ST_Xstring) escapes characters XML cannot hold as _xHHHH_, and a
# literal "_xHHHH_" by escaping its underscore (_x005F_); Excel reads both back.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\ufffe\uffff\ud800-\udfff]|_(?=x[0-9A-Fa-f]{4}_)")
_ESCAPED = re.compile("_x([0-9A-Fa-f]{4})_")
_SURROGATES = re.compile("[\ud800-\udfff]")


def escape_text(text: str) -> str:
    """``text`` as an Excel cell stores it: control characters (and characters XML
    cannot hold) as ``_xHHHH_``, a literal ``_xHHHH_`` with its ``_`` escaped.

    >>> escape_text("a\\x01b"), escape_text("_x0041_"), escape_text("plain")
    ('a_x0001_b', '_x005F_x0041_', 'plain')
    """
    if "_" not in text and text.isprintable():
        return text
    return _UNSAFE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def unescape_text(text: str) -> str:
    """The text of a cell that :func:`escape_text` (or Excel) wrote.

    >>> unescape_text("a_x0001_b"), unescape_text("_x005F_x0041_")
    ('a\\x01b', '_x0041_')
    """
    if "_x" not in text:
        return text
    text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    if _SURROGATES.search(text):  # a pair written as two escapes: one character again
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return text


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(index))


# ---------------------------------------------------------------------------- reading


def read_excel(path: str | os.PathLike[str], *, sheet: str | None = None,
               what: str = "records", expect: Sequence[str] = ("payee",),
               max_bytes: int | None = None) -> Iterator[dict[str, Any] | RecordError]:
    """The rows of a sheet of the workbook ``path``, one dict per row (header ->
    value), or a :class:`RecordError` in place of a row holding an error cell.

    ``sheet``: the sheet's name (default: the first sheet). The header row is the
    first of the first :data:`HEADER_SEARCH_ROWS` rows holding a cell equal (spaces
    trimmed) to one of ``expect``; the rows above it (titles) are skipped, and so
    are wholly blank rows below it. The workbook, the sheet and the header are
    checked at once (a :class:`UsageError`); the rows are read as the iterator is
    consumed. ``what`` names the source in messages. A workbook holding more than
    ``max_bytes`` bytes once uncompressed (default :data:`MAX_WORKBOOK_BYTES`) is
    refused before it is opened.
    """
    _require()
    book = _open_book(Path(path), what, max_bytes)
    try:
        ws = _pick_sheet(book, sheet, path, what)
        reader = _SheetReader(ws, str(path), what, tuple(expect))
    except BaseException:
        with contextlib.suppress(Exception):
            book.close()
        raise
    return reader.rows(book)


def sheet_names(path: str | os.PathLike[str], *, what: str = "records",
                max_bytes: int | None = None) -> list[str]:
    """The names of the sheets of cells of the workbook ``path``, in order (charts left
    out); a :class:`UsageError` when it cannot be read (or holds more than
    ``max_bytes`` once uncompressed: see :func:`read_excel`)."""
    _require()
    book = _open_book(Path(path), what, max_bytes)
    try:
        return [str(ws.title) for ws in book.worksheets]
    finally:
        with contextlib.suppress(Exception):
            book.close()


def _open_book(path: Path, what: str, max_bytes: int | None = None) -> Any:
    import openpyxl

    where = f"{what} file {str(path)!r}"
    _check_inflated(path, where, MAX_WORKBOOK_BYTES if max_bytes is None else max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(path, read_only=True, data_only=True,
                                          keep_links=False)
    except FileNotFoundError:
        raise UsageError(f"cannot read {where}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"cannot read {where}: it is a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot read {where}: {exc.strerror or exc}") from None
    except Exception as exc:  # a zip that is not a workbook, a broken part: openpyxl's many errors
        old = " (an old .xls workbook? save it as .xlsx)" if path.suffix.lower() == ".xls" else ""
        raise UsageError(f"{where} is not an Excel workbook (.xlsx){old}: "
                         f"{_short(exc)}") from None


def _check_inflated(path: Path, where: str, limit: int) -> None:
    """Refuse a workbook whose parts hold more than ``limit`` bytes once uncompressed
    (as its zip directory declares them, which zip holds each part to). A file that
    cannot be read as a zip is left to openpyxl to report."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            parts = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return
    inflated = sum(info.file_size for info in parts)
    # the strings are read whole when the workbook is opened (its sheets a row at a
    # time): they may take a quarter
    strings = sum(info.file_size for info in parts
                  if info.filename.lower().endswith("sharedstrings.xml"))
    if inflated > limit or strings > limit // 4:
        what, most = (("its strings hold", limit // 4) if inflated <= limit
                      else ("it holds", limit))
        size = strings if inflated <= limit else inflated
        raise UsageError(f"{where}: {what} {size:,} bytes once uncompressed, more than "
                         f"the {most:,} a workbook may (a file that inflates so much may "
                         "be built to exhaust memory; --max-bytes raises the limit)")


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 200 else first[:200] + "…"


def _pick_sheet(book: Any, sheet: str | None, path: str | os.PathLike[str], what: str) -> Any:
    sheets = {ws.title: ws for ws in book.worksheets}
    where = f"{what} file {str(path)!r}"
    if sheet is None:
        if not sheets:
            raise UsageError(f"{where} holds no sheet of cells")
        return book.worksheets[0]
    if sheet in sheets:
        return sheets[sheet]
    folded = [ws for title, ws in sheets.items() if title.casefold() == sheet.casefold()]
    if len(folded) == 1:
        return folded[0]  # Excel's sheet names ignore case
    if sheet in book.sheetnames:
        raise UsageError(f"{where}: sheet {sheet!r} is a chart, not a sheet of cells")
    hint = did_you_mean(sheet, sheets)
    listed = ", ".join(repr(t) for t in sheets) or "none"
    raise UsageError(f"{where} has no sheet {sheet!r}" + (f"; {hint}" if hint else "")
                     + f" (its sheets: {listed})")


#: a formula in a cell's XML (``<f>...</f>``, ``<f t="shared" .../>``)
_FORMULA = re.compile(rb"<f[\s>/]")
#: a saved value (``<v>...</v>``; openpyxl writes ``<v />`` for none)
_SAVED = re.compile(rb"<v(?:\s[^>/]*)?>")
_CELL_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]{1,7})"')
_MERGE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?mergeCell\b[^>]*?\bref\s*=\s*[\"']([^\"']*)[\"']")


def _merged_ranges(ws: Any, unsaved: set[tuple[int, int]] | None = None
                   ) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The merged ranges of a read-only sheet (``A1:D1`` and its bounds), found by
    scanning the sheet's XML (read-only sheets do not load them); ``unsaved`` gets the
    (row, column) of each formula cell with no saved value, which openpyxl reads as a
    blank."""
    from openpyxl.utils import column_index_from_string, range_boundaries

    get_source = getattr(ws, "_get_source", None)
    if get_source is None:  # pragma: no cover - a sheet loaded whole has them
        return [(str(r.coord), tuple(r.bounds)) for r in ws.merged_cells.ranges]
    found: list[tuple[str, tuple[int, int, int, int]]] = []

    def formulas(data: bytes) -> None:
        for match in _FORMULA.finditer(data):
            start = data.rfind(b"<c ", 0, match.start())
            end = data.find(b"</c>", match.end())
            if start < 0 or end < 0 or _SAVED.search(data, match.end(), end) is not None:
                continue  # (a value saved, or not a cell we can place)
            ref = _CELL_REF.search(data, start, data.find(b">", start) + 1)
            if ref is not None and unsaved is not None:
                with contextlib.suppress(ValueError):
                    unsaved.add((int(ref.group(2)),
                                 column_index_from_string(ref.group(1).decode("ascii"))))

    def scan(data: bytes) -> None:
        if unsaved is not None and b"<f" in data:
            formulas(data)
        for match in _MERGE.finditer(data):
            ref = match.group(1).decode("ascii", "replace")
            with contextlib.suppress(ValueError, TypeError):
                bounds = range_boundaries(ref)
                if None not in bounds:
                    found.append((ref, bounds))

    with get_source() as source:
        tail = b""
        while True:
            chunk = source.read(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            cut = data.rfind(b"<")
            if cut < 0 or len(data) - cut > 4096:
                cut = len(data)  # no tag left open at the end (or a long text, not a tag)
            scan(data[:cut])
            tail = data[cut:]
        scan(tail)
    return found


def _translate(exc: Exception, where: str) -> UsageError:
    return UsageError(f"cannot read {where}: the workbook is damaged: {_short(exc)}")


class _SheetReader:
    """A sheet's header, found and checked, and its rows after it."""

    def __init__(self, ws: Any, path: str, what: str, expect: tuple[str, ...]) -> None:
        self.title = str(ws.title)
        self.where = f"{what} file {path!r}, sheet {self.title!r}"
        self.sheet = f"sheet {self.title!r}"
        self.what = what
        with contextlib.suppress(AttributeError):
            ws.reset_dimensions()  # a wrong <dimension> would cut the sheet short
        try:
            self.iterator = iter(ws.iter_rows())
            header = None
            number = 0
            for number, row in enumerate(self.iterator, 1):
                if any(type(c.value) is str and c.data_type != "e"
                       and unescape_text(c.value).strip() in expect for c in row):
                    header = row
                    break
                if number >= HEADER_SEARCH_ROWS:
                    break
            self.unsaved: set[tuple[int, int]] = set()
            merged = _merged_ranges(ws, self.unsaved)
        except IncentivesError:
            raise
        except Exception as exc:
            raise _translate(exc, self.where) from None
        if header is None:
            names = " or ".join(repr(e) for e in expect)
            raise UsageError(f"{self.where}: no header row (a row with a column {names}) "
                             f"in its first {HEADER_SEARCH_ROWS} rows")
        self.header_row = number
        for ref, (_, _, _, max_row) in merged:
            if max_row >= number:
                self._merged_error(ref, merged)
        self.names = self._names(header)
        self.payee = self._column_of("payee")
        self.period = self._column_of("period")

    def _merged_error(self, ref: str, merged: list[tuple[str, tuple[int, int, int, int]]]
                      ) -> None:
        top = [r for r, (_, min_row, _, max_row) in merged
               if min_row <= self.header_row <= max_row]
        if top:
            raise UsageError(f"{self.where}: the header cells {', '.join(top)} are merged; "
                             "unmerge them and give each column its own header")
        raise UsageError(f"{self.where}: the cells {ref} are merged (only the first holds a "
                         "value); unmerge them and fill in each cell")

    def _names(self, header: Sequence[Any]) -> dict[int, str]:
        names: dict[int, str] = {}
        where_name: dict[str, str] = {}
        for index, c in enumerate(header, 1):
            coordinate = f"{_column_letter(index)}{self.header_row}"
            if c.data_type == "e" and c.value is not None:
                raise UsageError(f"{self.where}: the header cell {coordinate} holds the error "
                                 f"{c.value}")
            try:
                value = self._value(c.value)
            except (ValueError, OverflowError):
                value = str(c.value)
            if value is None:
                continue
            name = value.strip() if isinstance(value, str) else str(value)
            if not name:
                continue
            if name in where_name:
                raise UsageError(f"{self.where}: the header {name!r} appears twice, in cells "
                                 f"{where_name[name]} and {coordinate}")
            where_name[name] = coordinate
            names[index] = name
        return names

    def _column_of(self, name: str) -> int | None:
        return next((i for i, n in self.names.items() if n == name), None)

    @staticmethod
    def _value(value: Any) -> Any:
        """A cell's value as the readers take it (``ValueError``: a number that is not
        finite)."""
        kind = type(value)
        if kind is str:
            text = unescape_text(value)
            return text if text.strip() else None
        if value is None or kind is bool:
            return value
        if kind is float:
            return excel_number(value)
        if kind is int:
            return value if -10**EXCEL_DIGITS < value < 10**EXCEL_DIGITS else \
                excel_number(float(value))
        if isinstance(value, (datetime, date)):
            return cell(value, "refuse", source="", column="")
        if isinstance(value, time):
            return value.isoformat()
        if isinstance(value, timedelta):
            return excel_number(value / timedelta(days=1))
        return str(value)

    def rows(self, book: Any) -> Iterator[dict[str, Any] | RecordError]:
        names = self.names
        order = [names[i] for i in sorted(names)]
        value_of = self._value
        unsaved = self.unsaved
        try:
            number = self.header_row
            while True:
                try:
                    row = next(self.iterator)
                except StopIteration:
                    return
                except Exception as exc:
                    raise _translate(exc, self.where) from None
                number += 1
                values: dict[str, Any] = {}
                bad: list[tuple[int, str]] = []
                for index, c in enumerate(row, 1):
                    raw = c.value
                    if raw is None:
                        if (number, index) in unsaved and index in names:
                            bad.append((index, "the cell holds a formula with no saved "
                                               "value (a workbook written by a program and "
                                               "never calculated): open and save it in "
                                               "Excel, or give the value"))
                        continue
                    if c.data_type == "e":
                        bad.append((index, f"the cell holds the error {raw}"))
                        value: Any = raw
                    else:
                        try:
                            value = value_of(raw)
                        except (ValueError, OverflowError):
                            bad.append((index, f"the cell holds {quote(str(raw))}, not a "
                                               "number Excel can hold"))
                            value = raw
                        if value is None:
                            continue
                    name = names.get(index)
                    if name is None:
                        letter = _column_letter(index)
                        raise UsageError(
                            f"{self.where}: column {letter} has no header (cell "
                            f"{letter}{self.header_row} is blank) but cell {letter}{number} "
                            "below it holds a value; give the column a header, or delete it")
                    values[name] = value
                if bad:
                    yield self._error(bad[0], number, values)
                elif values:
                    yield {name: values.get(name) for name in order}
        finally:
            with contextlib.suppress(Exception):
                book.close()

    def _error(self, bad: tuple[int, str], number: int, values: dict[str, Any]) -> RecordError:
        index, why = bad
        column = self.names.get(index)
        coordinate = f"{_column_letter(index)}{number}"
        message = f"{self.sheet}, cell {coordinate} ({column!r}): {why}"

        def text(name: str) -> str | None:
            value = values.get(name)
            if isinstance(value, str):
                return value.strip() or None
            if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
                return str(value)
            return None

        if self.what.startswith("transaction"):
            # the kind: the row's, else the one the source was given for ("transactions invoices")
            given = self.what.split(" ", 1)[1].strip() if " " in self.what else None
            return TransactionError(message, kind=text("kind") or given or None, id=text("id"),
                                    payee=text("payee"), period=text("period"), field=column)
        return RecordError(message, payee=text("payee"), period=text("period"), field=column)


# ---------------------------------------------------------------------------- writing

#: A text starting with one of these could be taken for a formula by a spreadsheet:
#: it is written as a text cell with Excel's quote prefix (shown, never evaluated).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def _utf16_length(text: str) -> int:
    """The length Excel counts (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _cut(text: str, limit: int) -> str:
    while _utf16_length(text) > limit:
        over = _utf16_length(text) - limit
        text = text[: len(text) - max(1, over // 2)]
    return text


def fit_cell(text: str, kind: str) -> str:
    """``text`` as it fits one cell (:data:`EXCEL_CELL_CHARACTERS`): whole when it
    fits; a line's details (``json``) too long for a cell become a JSON note saying
    so; other text is cut, ending with a note of its length.

    >>> fit_cell("{}", "json")
    '{}'
    >>> fit_cell("{" + "x" * 40_000 + "}", "json")
    '{"truncated":true,"characters":40002,"note":"too long for an Excel cell: the JSON, CSV, SQL and Parquet outputs hold the details whole"}'
    """
    length = _utf16_length(text) if len(text) > EXCEL_CELL_CHARACTERS // 2 else len(text)
    if length <= EXCEL_CELL_CHARACTERS:
        return text
    if kind == "json":
        return json.dumps({"truncated": True, "characters": len(text),
                           "note": "too long for an Excel cell: the JSON, CSV, SQL and Parquet "
                                   "outputs hold the details whole"}, separators=(",", ":"))
    note = f"… [cut: {len(text):,} characters in all]"
    return _cut(text, EXCEL_CELL_CHARACTERS - _utf16_length(note)) + note


def _money_format(places: int) -> str:
    return "#,##0" + ("." + "0" * places if places > 0 else "")


def _fits_double(value: Decimal) -> bool:
    """Whether ``value`` is read back exactly from a double (15 significant digits
    at most, in the normal range)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    if value.is_zero():
        return True
    return significant <= EXCEL_DIGITS and -300 <= exponent + significant <= 300


class _Cells:
    """Makes the cells of one sheet (openpyxl's WriteOnlyCell, typed by hand: a text is
    never bound as a formula, a Decimal is written with its own digits)."""

    def __init__(self, ws: Any, places: int) -> None:
        from openpyxl.cell import WriteOnlyCell

        self.ws = ws
        self.new = WriteOnlyCell
        self.money_format = _money_format(places)

    def text(self, value: str, kind: str = "text") -> Any:
        c = self.new(self.ws)
        text = fit_cell(value, kind)
        c._value = escape_text(text)
        c.data_type = "s"
        if text.startswith(FORMULA_STARTS):
            c.quotePrefix = True
        return c

    def number(self, value: Decimal | int, number_format: str | None) -> Any:
        c = self.new(self.ws)
        c._value = format(value, "f") if isinstance(value, Decimal) else str(value)
        c.data_type = "n"
        if number_format:
            c.number_format = number_format
        return c

    def row(self, row: Sequence[Any], columns: Sequence[Column], sheet: str,
            number: int) -> list[Any]:
        if len(row) != len(columns):
            raise UsageError(f"Excel output, sheet {sheet}, row {number}: {len(row)} values "
                             f"for {len(columns)} columns")
        out: list[Any] = []
        for value, column in zip(row, columns, strict=True):
            if value is None:
                if column.kind != "text?":
                    raise UsageError(f"Excel output, sheet {sheet}, row {number}, column "
                                     f"{column.name!r}: no value")
                out.append(None)
            elif column.kind == "money" or column.kind == "int":
                if isinstance(value, bool) or not isinstance(value, (Decimal, int)) or (
                        isinstance(value, Decimal) and not value.is_finite()):
                    raise UsageError(f"Excel output, sheet {sheet}, row {number}, column "
                                     f"{column.name!r}: {value!r} is not a number")
                exact = value if isinstance(value, Decimal) else Decimal(value)
                if _fits_double(exact):
                    out.append(self.number(value, self.money_format
                                           if column.kind == "money" else None))
                else:  # more digits than a double holds: text, exact
                    out.append(self.text(format(exact, "f")))
            elif isinstance(value, str):
                out.append(self.text(value, column.kind))
            else:
                raise UsageError(f"Excel output, sheet {sheet}, row {number}, column "
                                 f"{column.name!r}: {type(value).__name__} {value!r} is not "
                                 "text")
        return out


def _sheet_writer(ws: Any, out: str) -> Any:
    """openpyxl's writer of a write-only sheet, writing to ``out`` (a staged temporary
    file next to the workbook, removed by us) rather than to a file of its own in the
    system's temporary folder."""
    from openpyxl.worksheet._writer import WorksheetWriter

    class SheetWriter(WorksheetWriter):  # type: ignore[misc]
        def cleanup(self) -> None:
            pass  # the staged file is removed by ExcelSink

    writer = SheetWriter(ws, out=out)
    writer.write_top()
    return writer


def check_sheet_rows(counts: Sequence[int]) -> None:
    """Refuse a workbook whose sheets (totals, lines, errors) would hold ``counts`` rows
    (besides their header) when one holds more than a sheet can."""
    for (name, _), n in zip(SHEETS, counts, strict=True):
        if n > EXCEL_ROWS - 1:
            raise UsageError(f"Excel output: the {name} sheet would hold {n:,} rows, more "
                             f"than the {EXCEL_ROWS - 1:,} a sheet holds; write Parquet or "
                             "SQL instead")


class ExcelSink:
    """A run's tables to an ``.xlsx`` workbook (see :func:`excel_sink`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        _require()
        self.path = Path(path)
        if self.path.suffix.lower() != ".xlsx":
            raise UsageError(f"{str(path)!r}: an Excel output is a file NAME.xlsx")
        check_output(self.path, "Excel output")
        self._book: Any = None
        self._sheets: list[tuple[Any, _Cells, int]] = []
        self._parts: list[StagedFile] = []
        self._out: StagedFile | None = None
        self._about: tuple[str, str, int] | None = None
        self._done = False

    def _open(self, tables: ResultTables) -> None:
        from openpyxl import Workbook
        from openpyxl.packaging.custom import StringProperty

        self._about = (tables.plan, tables.version, tables.places)
        book = Workbook(write_only=True)
        for name, value in ((PROP_PLAN, tables.plan), (PROP_VERSION, tables.version),
                            (PROP_PLACES, str(tables.places))):
            book.custom_doc_props.append(StringProperty(name=name, value=escape_text(value)))
        self._book = book
        try:
            for name, columns in SHEETS:
                ws = book.create_sheet(name)
                ws.freeze_panes = "A2"
                part = StagedFile(self.path)
                self._parts.append(part)
                ws._writer = _sheet_writer(ws, part.tmp)
                cells = _Cells(ws, tables.places)
                ws.append([cells.text(c.name) for c in columns])
                self._sheets.append((ws, cells, 1))
            self._out = StagedFile(self.path)
        except BaseException:
            self._abandon()
            raise

    def write(self, tables: ResultTables) -> None:
        """Add ``tables``' rows to the three sheets."""
        if self._done:
            raise UsageError("Excel output: already committed or discarded")
        if self._book is None:
            self._open(tables)
        elif self._about != (tables.plan, tables.version, tables.places):
            raise UsageError(f"Excel output: rows of plan {tables.plan!r} {tables.version} "
                             f"({tables.places} places) added to those of plan "
                             f"{self._about!r}")
        batches = (tables.totals, tables.lines, tables.errors)
        check_sheet_rows([count - 1 + len(rows) for (_, _, count), rows in
                          zip(self._sheets, batches, strict=True)])
        converted = [[cells.row(row, columns, name, count + i) for i, row in enumerate(rows, 1)]
                     for (name, columns), (_, cells, count), rows in
                     zip(SHEETS, self._sheets, batches, strict=True)]
        try:
            for i, sheet_rows in enumerate(converted):
                ws, cells, count = self._sheets[i]
                for cells_of_row in sheet_rows:
                    ws.append(cells_of_row)
                self._sheets[i] = (ws, cells, count + len(sheet_rows))
        except OSError as exc:
            raise UsageError(f"Excel output {str(self.path)!r}: cannot write: "
                             f"{exc.strerror or exc}") from None

    def commit(self) -> None:
        """Save the workbook to a temporary file next to the target and put it in place
        (nothing is written when :meth:`write` was never called)."""
        if self._done:
            raise UsageError("Excel output: already committed or discarded")
        self._done = True
        if self._book is None:
            return
        assert self._out is not None
        try:
            self._book.save(self._out.binary)
            self._out.commit()
        except OSError as exc:
            self._abandon()
            raise UsageError(f"Excel output {str(self.path)!r}: cannot write: "
                             f"{exc.strerror or exc}") from None
        except BaseException:
            self._abandon()
            raise
        self._out = None
        self._abandon()

    def discard(self) -> None:
        """Remove the temporary files; the target stays as it was."""
        self._done = True
        self._abandon()

    def __del__(self) -> None:
        # dropped without a commit (an error the caller did not catch): nothing is written
        if not getattr(self, "_done", True):
            with contextlib.suppress(Exception):
                self.discard()

    def _abandon(self) -> None:
        for ws, _, _ in self._sheets:
            if not ws.closed:
                with contextlib.suppress(Exception):
                    ws.close()  # ends its rows and its writer (files closed, then removed)
            rows, writer = getattr(ws, "_rows", None), getattr(ws, "_writer", None)
            for part in (rows, writer):
                if part is not None:
                    with contextlib.suppress(Exception):
                        part.close()
        self._sheets = []
        for part in self._parts:
            part.discard()
        self._parts = []
        if self._out is not None:
            self._out.discard()
            self._out = None
        self._book = None


def excel_sink(path: str | os.PathLike[str]) -> ExcelSink:
    """A :class:`~incentives.tabular.Sink` writing the workbook ``path`` (``.xlsx``):
    the sheets ``totals``, ``lines`` and ``errors``, each with a header row.

    - text is always a text cell, never a formula (``=HYPERLINK(...)`` stays text;
      a text starting with ``=``, ``+``, ``-``, ``@``, a tab or a line break also
      gets Excel's quote prefix); characters XML cannot hold are written as
      Excel's ``_xHHHH_`` escapes;
    - money is a number with the plan's places shown, written with its own digits
      (never through a float); an amount of more than 15 significant digits, more
      than Excel holds, is written as text, exact;
    - a line's details too long for a cell (32,767 characters) become a note saying
      so (the JSON, CSV, SQL and Parquet outputs hold them whole);
    - more rows than a sheet holds (1,048,575 under the header): a
      :class:`UsageError` (write Parquet or SQL).

    The sheets are written as rows come, to temporary files next to ``path``;
    :meth:`~ExcelSink.commit` saves the workbook to a temporary file next to
    ``path`` and renames it into place; :meth:`~ExcelSink.discard` (or a run
    killed before the commit) leaves ``path`` as it was (the temporary files of a
    killed run are removed by :func:`incentives.fileio.clean_leftovers`).
    """
    return ExcelSink(path)


def read_result_excel(path: str | os.PathLike[str]) -> ResultTables:
    """The tables an :func:`excel_sink` wrote to ``path``, exactly: money back to
    :class:`~decimal.Decimal` at the places written (a detail or text cut to fit a
    cell stays as written: see :func:`fit_cell`)."""
    _require()
    book = _open_book(Path(path), "Excel output", 1 << 34)  # a run's own workbook
    where = f"{str(path)!r}"
    try:
        props = {p.name: p.value for p in book.custom_doc_props.props}
        missing = [n for n in (PROP_PLAN, PROP_VERSION, PROP_PLACES) if n not in props]
        if missing:
            raise UsageError(f"{where}: not written by incentives (no {missing[0]} property)")
        try:
            places = int(props[PROP_PLACES])
        except (TypeError, ValueError):
            raise UsageError(f"{where}: its {PROP_PLACES} property is not a number") from None
        out = ResultTables(unescape_text(str(props[PROP_PLAN])),
                           unescape_text(str(props[PROP_VERSION])), places)
        titles = {ws.title: ws for ws in book.worksheets}
        for name, columns in SHEETS:
            if name not in titles:
                raise UsageError(f"{where}: has no sheet {name!r}")
            rows = _result_rows(titles[name], columns, places, f"{where}, sheet {name!r}")
            if name == "totals":
                out.totals = rows
            elif name == "lines":
                out.lines = rows
            else:
                out.errors = rows
    except IncentivesError:
        raise
    except Exception as exc:
        raise _translate(exc, where) from None
    finally:
        with contextlib.suppress(Exception):
            book.close()
    out.periods = periods_of(out)
    return out


def _result_rows(ws: Any, columns: Sequence[Column], places: int, where: str
                 ) -> list[tuple[Any, ...]]:
    with contextlib.suppress(AttributeError):
        ws.reset_dimensions()
    rows = iter(ws.iter_rows())
    header = [c.value for c in next(rows, ())]
    names = [c.name for c in columns]
    if header[: len(names)] != names or any(v is not None for v in header[len(names):]):
        raise UsageError(f"{where}: its header is {header}, not {names}")
    quantum = Decimal(1).scaleb(-places)
    out: list[tuple[Any, ...]] = []
    for number, row in enumerate(rows, 2):
        cells = list(row)[: len(columns)]
        cells += [None] * (len(columns) - len(cells))
        if all(c is None or (c.value is None and c.data_type != "inlineStr") for c in cells):
            continue
        values: list[Any] = []
        for c, column in zip(cells, columns, strict=True):
            raw = None if c is None else c.value
            empty_text = c is not None and raw is None and c.data_type == "inlineStr"
            if c is not None and c.data_type == "e":
                raise UsageError(f"{where}, row {number}, column {column.name!r}: holds the "
                                 f"error {raw}")
            if column.kind == "money":
                values.append(_money(raw, quantum, f"{where}, row {number}, column "
                                                   f"{column.name!r}"))
            elif column.kind == "int":
                if type(raw) is int:
                    values.append(raw)
                elif isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
                    values.append(int(raw))
                else:
                    raise UsageError(f"{where}, row {number}, column {column.name!r}: "
                                     f"{raw!r} is not a whole number")
            elif isinstance(raw, str):
                values.append(unescape_text(raw))
            elif raw is None:
                values.append("" if empty_text or column.kind != "text?" else None)
            else:
                raise UsageError(f"{where}, row {number}, column {column.name!r}: {raw!r} is "
                                 "not text")
        out.append(tuple(values))
    return out


def _money(raw: Any, quantum: Decimal, where: str) -> Decimal:
    if type(raw) is float:
        number = Decimal(repr(raw))
    elif type(raw) is int:
        number = Decimal(raw)
    elif isinstance(raw, str):
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            raise UsageError(f"{where}: {raw!r} is not an amount") from None
    else:
        raise UsageError(f"{where}: {raw!r} is not an amount")
    if not number.is_finite():
        raise UsageError(f"{where}: {raw!r} is not an amount")
    exact = number.quantize(quantum, context=_WIDE)
    if exact != number:
        raise UsageError(f"{where}: {raw!r} has more places than the {quantum} of the plan")
    return exact
