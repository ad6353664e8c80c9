"""Excel: a sheet read below its titles with typed cells converted exactly, header
problems named by cell, error cells reported per row, and a run's tables written
(never a formula), re-read and compared exactly."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import textwrap
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives import load_plan
from incentives.errors import RecordError, TransactionError, UsageError
from incentives.excel import (
    EXCEL_CELL_CHARACTERS,
    escape_text,
    excel_number,
    excel_sink,
    read_excel,
    read_result_excel,
    unescape_text,
)
from incentives.fileio import TEMP_TAG, clean_leftovers
from incentives.tabular import ResultTables, result_tables

ROOT = Path(__file__).resolve().parent.parent
TELECOM = ROOT / "examples" / "telecom"
HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-east", "@SUM(A1)", "\t=1+1", "\r=1+1",
           "＝1+1", "=1+1"]


def raw_number(ws: Any, coordinate: str, text: str) -> None:
    """Store the number ``text`` in a cell as Excel stores it (openpyxl would write a
    float with 16 digits): ``<v>0.30000000000000004</v>``."""
    ws[coordinate]._value = text
    ws[coordinate].data_type = "n"


def book(path: Path, rows: list[list[Any]], title: str = "Sheet1", **extra: list[list[Any]]
         ) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for row in rows:
        ws.append(row)
    for name, more in extra.items():
        other = wb.create_sheet(name)
        for row in more:
            other.append(row)
    wb.save(path)
    return path


def sheet_xml(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]


def telecom_tables() -> ResultTables:
    plan = load_plan(TELECOM / "plan.yaml")
    records = [json.loads(line) for line in (TELECOM / "records.jsonl").read_text().splitlines()]
    records.append({"payee": "W", "period": "2026-05", "metrics": {"traffic_revenue": "abc"}})
    return result_tables(plan.evaluate(records, errors="collect"))


def temporary_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_TAG in p.name)


# ------------------------------------------------------------------ numbers


def test_the_number_rule() -> None:
    assert excel_number(0.1) == Decimal("0.1")
    assert str(excel_number(0.1)) == "0.1"
    assert str(excel_number(0.1 + 0.2)) == "0.3"  # computed 0.30000000000000004: what Excel shows
    assert str(excel_number(1234.5)) == "1234.5"
    assert excel_number(3.0) == 3
    assert type(excel_number(3.0)) is int
    assert str(excel_number(0.05)) == "0.05"
    assert str(excel_number(1 / 3)) == "0.333333333333333"  # 15 significant digits
    assert str(excel_number(2 / 3)) == "0.666666666666667"
    assert excel_number(1.2345678901234567e17) == 123456789012346000
    assert str(excel_number(-1.5e-10)) == "-1.5E-10"
    with pytest.raises(ValueError, match="not a finite number"):
        excel_number(float("inf"))


def _significant(d: Decimal) -> int:
    """Its significant digits, counted without rounding (``normalize`` rounds to the
    context's 28 digits, which let a 46-digit value through)."""
    return len("".join(map(str, d.as_tuple().digits)).strip("0")) or 1


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=Decimal("-1e15"),
                   max_value=Decimal("1e15")).filter(lambda d: _significant(d) <= 15))
def test_a_number_of_15_significant_digits_is_read_as_written(value: Decimal) -> None:
    assert excel_number(float(value)) == value


def test_significant_digits_are_counted_without_rounding() -> None:
    assert _significant(Decimal("15258789062.49999999999999999550000000000000000")) == 30
    assert (_significant(Decimal("1.50")), _significant(Decimal("0")),
            _significant(Decimal("-120"))) == (2, 1, 2)


# ------------------------------------------------------------------ reading a sheet


@pytest.fixture
def records_book(tmp_path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "my records"
    ws.append(["Traffic report, May 2026"])
    ws.merge_cells("A1:D1")  # a merged title above the header is fine
    ws.append(["Fuzhou branch"])
    ws.append([])
    ws.append(["payee", "period", "traffic_revenue", "lost", "active", "share", "ratio",
               "big", "exact", "when", "at", "note"])
    ws.append(["X", "2026-05", None, dt.date(2026, 5, 3), True, 0.05, 1234.5, None,
               123456789012345, dt.datetime(2026, 5, 3, 10, 30), dt.time(10, 30), "   "])
    raw_number(ws, "C5", "0.30000000000000004")
    raw_number(ws, "H5", "123456789012345678")
    ws["F5"].number_format = "0%"
    ws.append([])  # a blank row: skipped
    ws.append(["Y", "2026-05", "#DIV/0!", None, False, None, None, None, None, None, None,
               "ok"])
    ws.append(["Z", "2026-05", 3.0, None, None, None, None, None, None, None, None, "=1+1"])
    ws.append([" W ", "2026-05", "1234.50", None, None, None, None, None, None, None, None,
               "x" * EXCEL_CELL_CHARACTERS])
    other = wb.create_sheet("other")
    other.append(["payee"])
    wb.save(tmp_path / "records.xlsx")
    return tmp_path / "records.xlsx"


def test_a_sheet_is_read_below_its_titles_with_typed_cells(records_book: Path) -> None:
    rows = list(read_excel(records_book, sheet="my records"))
    assert rows[0] == {
        "payee": "X", "period": "2026-05", "traffic_revenue": Decimal("0.3"),
        "lost": "2026-05-03", "active": True, "share": Decimal("0.05"),
        "ratio": Decimal("1234.5"), "big": 123456789012346000, "exact": 123456789012345,
        "when": "2026-05-03T10:30:00", "at": "10:30:00", "note": None}
    assert str(rows[0]["traffic_revenue"]) == "0.3"
    assert type(rows[0]["exact"]) is int
    error = rows[1]
    assert isinstance(error, RecordError)
    assert not isinstance(error, TransactionError)
    assert error.message == ("sheet 'my records', cell C7 ('traffic_revenue'): the cell holds "
                             "the error #DIV/0!")
    assert (error.payee, error.period, error.field) == ("Y", "2026-05", "traffic_revenue")
    assert str(error) == ("payee 'Y' period 2026-05 field 'traffic_revenue': sheet 'my "
                          "records', cell C7 ('traffic_revenue'): the cell holds the error "
                          "#DIV/0!")
    # a formula with no value saved (written by a program, never opened in Excel): the
    # row's error, naming the cell (never a blank, which a default would fill)
    unsaved = rows[2]
    assert isinstance(unsaved, RecordError)
    assert (unsaved.payee, unsaved.field) == ("Z", "note")
    assert "a formula with no saved value" in unsaved.message
    # text is as written (the records reader trims ids), and a full cell is whole
    assert rows[3]["payee"] == " W "
    assert rows[3]["traffic_revenue"] == "1234.50"
    assert rows[3]["note"] == "x" * 32_767
    assert len(rows) == 4


def test_the_sheet_is_found_by_name(records_book: Path) -> None:
    assert next(read_excel(records_book))["payee"] == "X"  # type: ignore[index]
    assert next(read_excel(records_book, sheet="MY RECORDS"))["payee"] == "X"  # type: ignore[index]
    assert list(read_excel(records_book, sheet="other")) == []
    with pytest.raises(UsageError) as caught:
        read_excel(records_book, sheet="my record")
    assert str(caught.value) == (f"records file {str(records_book)!r} has no sheet 'my record'; "
                                 "did you mean 'my records'? (its sheets: 'my records', "
                                 "'other')")


def test_the_evaluation_reads_the_rows(tmp_path: Path) -> None:
    plan = load_plan(TELECOM / "plan.yaml")
    path = book(tmp_path / "r.xlsx", [["payee", "period", "group", "traffic_revenue"],
                                      ["A", "2026-05", "g", 50000],
                                      ["B", "2026-05", "g", "#N/A"]])
    ws_path = path
    wb = openpyxl.load_workbook(ws_path)
    wb.active["D3"] = "#N/A"
    wb.save(ws_path)
    run = plan.evaluate(read_excel(path), errors="collect")
    assert [(r.payee, r.total) for r in run.results] == [("A", Decimal("1400.00"))]
    assert [str(e) for e in run.errors] == [
        "payee 'B' period 2026-05 field 'traffic_revenue': sheet 'Sheet1', cell D3 "
        "('traffic_revenue'): the cell holds the error #N/A"]


def test_an_error_cell_in_transactions_is_a_transaction_error(tmp_path: Path) -> None:
    path = book(tmp_path / "t.xlsx", [["id", "kind", "date", "amount", "seller"],
                                      ["inv-1", "invoices", "2026-05-03", "#REF!", "A"]])
    (error,) = list(read_excel(path, what="transactions", expect=("id",)))
    assert isinstance(error, TransactionError)
    assert (error.kind, error.id, error.field) == ("invoices", "inv-1", "amount")
    assert error.message == "sheet 'Sheet1', cell D2 ('amount'): the cell holds the error #REF!"
    no_kind = book(tmp_path / "k.xlsx", [["id", "amount"], ["inv-2", "#N/A"]])
    wb = openpyxl.load_workbook(no_kind)
    wb.active["B2"] = "#N/A"
    wb.save(no_kind)
    (error,) = list(read_excel(no_kind, what="transactions invoices", expect=("id",)))
    assert isinstance(error, TransactionError)
    assert str(error) == ("invoices 'inv-2' field 'amount': sheet 'Sheet1', cell B2 ('amount'): "
                          "the cell holds the error #N/A")


def test_a_number_excel_cannot_hold_is_that_rows_error(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["payee", "traffic_revenue"])
    ws.append(["A", None])
    ws.append(["B", 5])
    raw_number(ws, "B2", "1e999")  # a program's overflow: a double read as infinity
    wb.save(tmp_path / "inf.xlsx")
    error, good = list(read_excel(tmp_path / "inf.xlsx"))
    assert isinstance(error, RecordError)
    assert str(error) == ("payee 'A' field 'traffic_revenue': sheet 'Sheet', cell B2 "
                          "('traffic_revenue'): the cell holds 'inf', not a number Excel can "
                          "hold")
    assert good == {"payee": "B", "traffic_revenue": 5}


def test_a_merged_header_is_refused_naming_the_range(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Title"])
    ws.append(["payee", "revenue", None, "period"])
    ws.merge_cells("B2:C2")
    ws.append(["A", 1, 2, "2026-05"])
    wb.save(tmp_path / "m.xlsx")
    with pytest.raises(UsageError) as caught:
        read_excel(tmp_path / "m.xlsx")
    assert str(caught.value) == (f"records file {str(tmp_path / 'm.xlsx')!r}, sheet 'Sheet': "
                                 "the header cells B2:C2 are merged; unmerge them and give "
                                 "each column its own header")


def test_merged_cells_below_the_header_are_refused(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["group", "payee"])
    ws.append(["north", "A"])
    ws.append([None, "B"])
    ws.merge_cells("A2:A3")
    wb.save(tmp_path / "m.xlsx")
    with pytest.raises(UsageError, match=r"sheet 'Sheet': the cells A2:A3 are merged \(only "
                                         r"the first holds a value\)"):
        read_excel(tmp_path / "m.xlsx")


def test_a_blank_header_cell_with_values_below_is_refused(tmp_path: Path) -> None:
    path = book(tmp_path / "b.xlsx", [["payee", None, "period"],
                                      ["A", None, "2026-05"],
                                      ["B", 17, "2026-05"]])
    rows = read_excel(path)
    assert next(rows) == {"payee": "A", "period": "2026-05"}
    with pytest.raises(UsageError) as caught:
        next(rows)
    assert str(caught.value) == (f"records file {str(path)!r}, sheet 'Sheet1': column B has no "
                                 "header (cell B1 is blank) but cell B3 below it holds a value; "
                                 "give the column a header, or delete it")
    # a blank header over a blank column, and notes beyond the table, are no trouble when empty
    fine = book(tmp_path / "f.xlsx", [["payee", "  ", "period"], ["A", None, "2026-05"]])
    assert list(read_excel(fine)) == [{"payee": "A", "period": "2026-05"}]


def test_a_duplicate_header_is_refused_naming_both_cells(tmp_path: Path) -> None:
    path = book(tmp_path / "d.xlsx", [["note"], ["payee", "period", " payee "]])
    with pytest.raises(UsageError, match=r"sheet 'Sheet1': the header 'payee' appears twice, "
                                         r"in cells A2 and C2$"):
        read_excel(path)


def test_no_header_row_is_one_clear_error(tmp_path: Path) -> None:
    path = book(tmp_path / "n.xlsx", [["name", "period"], ["A", "2026-05"]])
    with pytest.raises(UsageError) as caught:
        read_excel(path)
    assert str(caught.value) == (f"records file {str(path)!r}, sheet 'Sheet1': no header row "
                                 "(a row with a column 'payee') in its first 50 rows")
    late = book(tmp_path / "late.xlsx", [[f"title {i}"] for i in range(50)] + [["payee"], ["A"]])
    with pytest.raises(UsageError, match="no header row"):
        read_excel(late)
    tables = book(tmp_path / "t.xlsx", [["key", "value"], ["k", "v"]])
    assert list(read_excel(tables, what="table regions", expect=("key",))) == [
        {"key": "k", "value": "v"}]


def test_a_wrong_dimension_does_not_cut_the_sheet(tmp_path: Path) -> None:
    path = book(tmp_path / "d.xlsx", [["payee"], ["A"], ["B"], ["C"]])
    patched = tmp_path / "p.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1"', data)
            dst.writestr(item, data)
    assert [r["payee"] for r in read_excel(patched)] == ["A", "B", "C"]  # type: ignore[index]


def test_unreadable_workbooks_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read records file .*nope.xlsx': no such file"):
        read_excel(tmp_path / "nope.xlsx")
    fake = tmp_path / "fake.xlsx"
    fake.write_text("payee,period\n")
    with pytest.raises(UsageError, match=r"records file .*fake.xlsx' is not an Excel workbook"):
        read_excel(fake)
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(damaged, "w") as z:
        z.writestr("[Content_Types].xml", "<nope")
    with pytest.raises(UsageError, match=r"is not an Excel workbook"):
        read_excel(damaged)


def test_escapes_are_read_as_excel_writes_them() -> None:
    assert unescape_text("a_x000D_b") == "a\rb"
    assert unescape_text(escape_text("_x0041_ and \x01 and \ud83d")) == "_x0041_ and \x01 and \ud83d"
    assert unescape_text("_xD83D__xDE00_") == "😀"


# ------------------------------------------------------------------ the sink


def test_the_telecom_run_round_trips_exactly(tmp_path: Path) -> None:
    tables = telecom_tables()
    assert tables.errors
    assert tables.lines
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(tables)
    sink.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["pay.xlsx"]
    back = read_result_excel(tmp_path / "pay.xlsx")
    assert back == tables
    assert [str(r[9]) for r in back.lines] == [str(r[9]) for r in tables.lines]
    wb = openpyxl.load_workbook(tmp_path / "pay.xlsx")
    assert wb.sheetnames == ["totals", "lines", "errors"]
    totals = wb["totals"]
    assert [c.value for c in totals[1]] == ["plan", "plan_version", "period", "group", "payee",
                                            "total", "titles", "flags"]
    assert totals["F2"].data_type == "n"
    assert totals["F2"].number_format == "#,##0.00"
    assert totals["F2"].value == 948
    assert re.search(r'<c r="F2" s="\d+" t="n"><v>948.00</v></c>', sheet_xml(
        tmp_path / "pay.xlsx")[0])  # the Decimal's own digits, never a float's


def test_text_is_never_a_formula(tmp_path: Path) -> None:
    rows = [("p", "1", "2026-05", "g", payee, Decimal("1.00"), payee, "") for payee in HOSTILE]
    lines = [("p", "1", "2026-05", "g", "A", 1, "x", "=cmd|' /C calc'!A0", "@x", Decimal("1.00"),
              '{"note":"=1+1"}')]
    errors = [("p", "1", None, "record", "-2+3", "=f", None, None, "+message")]
    tables = ResultTables("p", "1", 2, [*rows], lines, errors, ["2026-05"])
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(tables)
    sink.commit()
    for xml in sheet_xml(tmp_path / "pay.xlsx"):
        assert not re.search(r"<(\w+:)?f[\s>/]", xml), xml
    wb = openpyxl.load_workbook(tmp_path / "pay.xlsx")
    for i, payee in enumerate(HOSTILE, 2):
        c = wb["totals"][f"E{i}"]
        assert (unescape_text(c.value), c.data_type, c.quotePrefix) == (payee, "s", True)
    assert wb["lines"]["H2"].quotePrefix
    assert wb["lines"]["H2"].data_type == "s"
    plain = wb["totals"]["A2"]
    assert (plain.value, plain.quotePrefix) == ("p", False)
    assert read_result_excel(tmp_path / "pay.xlsx") == tables


def test_characters_xml_cannot_hold_are_escaped_and_read_back(tmp_path: Path) -> None:
    odd = ["a\x01b", "_x0041_", "bell\x07", "tab\tand\nline", "cr\r", "nul\x00", "\ufffe"]
    tables = ResultTables("p\x02", "1", 2, [
        ("p\x02", "1", "2026-05", "g", f"A{i}", Decimal("1.00"), text, "")
        for i, text in enumerate(odd)], [], [], ["2026-05"])
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(tables)
    sink.commit()
    xml = sheet_xml(tmp_path / "pay.xlsx")[0]
    assert "<t>a_x0001_b</t>" in xml
    assert "<t>_x005F_x0041_</t>" in xml
    assert read_result_excel(tmp_path / "pay.xlsx") == tables


def test_amounts_beyond_15_digits_are_exact_text(tmp_path: Path) -> None:
    amounts = [Decimal("123456789012345.67"), Decimal("1234567890123.45"), Decimal("-0.00"),
               Decimal("10000000000000000000.00")]
    tables = ResultTables("p", "1", 2, [("p", "1", "2026-05", "g", f"A{i}", a, "", "")
                                        for i, a in enumerate(amounts)], [], [], ["2026-05"])
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(tables)
    sink.commit()
    xml = sheet_xml(tmp_path / "pay.xlsx")[0]
    assert '<c r="F2" t="inlineStr"><is><t>123456789012345.67</t></is></c>' in xml
    assert re.search(r'<c r="F3" s="\d+" t="n"><v>1234567890123.45</v></c>', xml)
    assert re.search(r'<c r="F5" s="\d+" t="n"><v>10000000000000000000.00</v></c>', xml)
    back = read_result_excel(tmp_path / "pay.xlsx")
    assert back == tables
    assert [str(r[5]) for r in back.totals] == [str(a) for a in amounts]


@pytest.mark.parametrize(("places", "shown"), [(0, "#,##0"), (3, "#,##0.000")])
def test_the_number_format_shows_the_plans_places(tmp_path: Path, places: int,
                                                  shown: str) -> None:
    amount = Decimal("1234.5").quantize(Decimal(1).scaleb(-places))
    tables = ResultTables("p", "1", places, [("p", "1", "2026-05", "g", "A", amount, "", "")],
                          [], [], ["2026-05"])
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(tables)
    sink.commit()
    assert openpyxl.load_workbook(tmp_path / "pay.xlsx")["totals"]["F2"].number_format == shown
    back = read_result_excel(tmp_path / "pay.xlsx")
    assert back == tables
    assert str(back.totals[0][5]) == str(amount)


def test_details_too_long_for_a_cell_become_a_note(tmp_path: Path) -> None:
    details = json.dumps({"items": ["x" * 100] * 400})
    label = "L" * 40_000
    tables = ResultTables("p", "1", 2, [], [
        ("p", "1", "2026-05", "g", "A", 1, "x", label, "x", Decimal("1.00"), details)], [],
        ["2026-05"])
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(tables)
    sink.commit()
    (line,) = read_result_excel(tmp_path / "pay.xlsx").lines
    assert json.loads(line[10]) == {
        "truncated": True, "characters": len(details),
        "note": "too long for an Excel cell: the JSON, CSV, SQL and Parquet outputs hold the "
                "details whole"}
    assert len(line[7]) == EXCEL_CELL_CHARACTERS
    assert line[7].endswith("… [cut: 40,000 characters in all]")


def test_more_rows_than_a_sheet_holds_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import incentives.excel

    monkeypatch.setattr(incentives.excel, "EXCEL_ROWS", 3)
    sink = excel_sink(tmp_path / "pay.xlsx")
    rows = [("p", "1", "2026-05", "g", f"A{i}", Decimal("1.00"), "", "") for i in range(3)]
    with pytest.raises(UsageError, match=r"the totals sheet would hold 3 rows, more than the 2 "
                                         r"a sheet holds; write Parquet or SQL instead"):
        sink.write(ResultTables("p", "1", 2, rows))
    sink.discard()
    assert list(tmp_path.iterdir()) == []


def write_version(path: Path, total: str) -> ResultTables:
    tables = ResultTables("p", "1", 2, [("p", "1", "2026-05", "g", "A", Decimal(total), "", "")],
                          periods=["2026-05"])
    sink = excel_sink(path)
    sink.write(tables)
    sink.commit()
    return tables


def fail_then_discard(sink: Any) -> None:
    """What a caller does when its run fails before the commit."""
    try:
        raise RuntimeError("boom")
    except BaseException:
        sink.discard()
        raise


def test_an_exception_before_commit_leaves_the_old_workbook(tmp_path: Path) -> None:
    path = tmp_path / "pay.xlsx"
    old = write_version(path, "100.00")
    before = path.read_bytes()
    sink = excel_sink(path)
    sink.write(ResultTables("p", "1", 2, [
        ("p", "1", "2026-05", "g", "A", Decimal("999.00"), "", "")]))
    assert len(temporary_files(tmp_path)) == 4  # three sheets and the workbook
    with pytest.raises(RuntimeError, match="boom"):
        fail_then_discard(sink)
    assert path.read_bytes() == before
    assert temporary_files(tmp_path) == []
    assert read_result_excel(path) == old


def test_a_killed_writer_leaves_the_old_workbook_and_its_leftovers_are_cleaned(
        tmp_path: Path) -> None:
    path = tmp_path / "pay.xlsx"
    old = write_version(path, "100.00")
    before = path.read_bytes()
    child = textwrap.dedent(f"""
        import time
        from decimal import Decimal
        from incentives.excel import excel_sink
        from incentives.tabular import ResultTables
        sink = excel_sink({str(path)!r})
        rows = [("p", "1", "2026-05", "g", f"A{{i}}", Decimal("999.00"), "", "")
                for i in range(2_000)]
        sink.write(ResultTables("p", "1", 2, rows))
        print("writing", flush=True)
        while True:
            sink.write(ResultTables("p", "1", 2, rows))
            time.sleep(0.01)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "writing\n"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    leftovers = temporary_files(tmp_path)
    assert len(leftovers) == 4
    assert all(f".pay.xlsx{TEMP_TAG}{proc.pid}-" in n for n in leftovers)
    assert path.read_bytes() == before
    assert read_result_excel(path) == old
    notes = clean_leftovers(path)
    assert len(notes) == 4
    assert all("removed, a temporary file left by an interrupted run" in n
                                   for n in notes)
    assert temporary_files(tmp_path) == []


def test_a_sink_dropped_without_commit_writes_nothing(tmp_path: Path) -> None:
    sink = excel_sink(tmp_path / "pay.xlsx")
    sink.write(ResultTables("p", "1", 2, [("p", "1", "2026-05", "g", "A", Decimal("1.00"), "",
                                           "")]))
    assert len(temporary_files(tmp_path)) == 4
    del sink
    assert list(tmp_path.iterdir()) == []


def test_only_xlsx_is_written_and_foreign_workbooks_are_not_results(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"an Excel output is a file NAME\.xlsx"):
        excel_sink(tmp_path / "pay.xlsm")
    foreign = book(tmp_path / "f.xlsx", [["payee"]])
    with pytest.raises(UsageError, match="not written by incentives"):
        read_result_excel(foreign)


@given(st.integers(min_value=0, max_value=6).flatmap(lambda places: st.tuples(
    st.just(places),
    st.lists(st.decimals(min_value=Decimal(-10) ** 22, max_value=Decimal(10) ** 22,
                         places=places, allow_nan=False, allow_infinity=False),
             min_size=1, max_size=5))))
def test_any_amount_at_the_plans_places_round_trips(tmp_path_factory: pytest.TempPathFactory,
                                                     case: tuple[int, list[Decimal]]) -> None:
    places, amounts = case
    path = tmp_path_factory.mktemp("xl") / "pay.xlsx"
    tables = ResultTables("p", "1", places, [("p", "1", "2026-05", "g", f"A{i}", a, "", "")
                                             for i, a in enumerate(amounts)], [], [],
                          ["2026-05"])
    sink = excel_sink(path)
    sink.write(tables)
    sink.commit()
    back = read_result_excel(path)
    assert back == tables
    assert [str(r[5]) for r in back.totals] == [str(a) for a in amounts]  # digits, scale, sign
    # within Excel's 15 significant digits a number, beyond it exact text
    ws = openpyxl.load_workbook(path)["totals"]
    for i, amount in enumerate(amounts, 2):
        significant = len(amount.normalize().as_tuple().digits) if amount else 1
        assert ws[f"F{i}"].data_type == ("n" if significant <= 15 else "s")


# ---------------------------------------------------------------- a workbook that inflates

def _inflating_book(path: Path, strings: int, sheet_rows: int = 1) -> Path:
    """A small workbook of telecom records whose strings part (or sheet) inflates to
    many bytes: ``strings`` shared strings of 80 characters, ``sheet_rows`` rows."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["payee", "period", "traffic_revenue"])
    for i in range(sheet_rows):
        ws.append([f"p{i}", "2026-01", 100 + i])
    plain = path.with_name("plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as zin, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "[Content_Types].xml":
                data = data.replace(b"</Types>", (
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                    b"</Types>"))
            if name == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", (
                    b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/'
                    b'officeDocument/2006/relationships/sharedStrings" '
                    b'Target="sharedStrings.xml"/></Relationships>'))
            z.writestr(name, data)
        z.writestr("xl/sharedStrings.xml", b'<?xml version="1.0" encoding="UTF-8"?><sst '
                   b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                   + (b"<si><t>" + b"A" * 80 + b"</t></si>") * strings + b"</sst>")
    return path


def test_a_workbook_that_inflates_past_the_limit_is_refused_before_it_is_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A "zip bomb": a small file whose parts inflate to much more. Refused at once,
    with what it holds and how to allow it; --max-bytes allows it."""
    import incentives.excel as excel
    from incentives.sources import read_rows

    bomb = _inflating_book(tmp_path / "bomb.xlsx", strings=40_000)  # 3.6 MB of strings
    assert bomb.stat().st_size < 100_000
    monkeypatch.setattr(excel, "MAX_WORKBOOK_BYTES", 4_000_000)  # strings: a quarter
    with pytest.raises(UsageError, match=r"its strings hold 3,[0-9,]+ bytes once "
                       r"uncompressed, more than the 1,000,000 a workbook may .*--max-bytes"):
        list(read_rows(bomb))
    rows = list(read_rows(bomb, max_bytes=20_000_000))
    assert rows == [{"payee": "p0", "period": "2026-01", "traffic_revenue": Decimal(100)}]
    big = _inflating_book(tmp_path / "big.xlsx", strings=0, sheet_rows=20_000)
    with pytest.raises(UsageError, match=r"it holds [0-9,]+ bytes once uncompressed, more "
                       r"than the 100,000 a workbook may"):
        list(read_rows(big, max_bytes=100_000))
    assert len(list(read_rows(big))) == 20_000  # under the default


def test_the_command_line_refuses_an_inflating_workbook_and_its_limit_can_be_raised(
        tmp_path: Path) -> None:
    bomb = _inflating_book(tmp_path / "bomb.xlsx", strings=40_000)
    plan = Path(__file__).resolve().parent.parent / "examples" / "telecom" / "plan.yaml"
    run = [sys.executable, "-m", "incentives", "run", str(plan), str(bomb), "--format", "csv"]
    refused = subprocess.run([*run, "--max-bytes", "8M"], capture_output=True, text=True,
                             check=False)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert "Traceback" not in refused.stderr
    assert "its strings hold 3,8" in refused.stderr
    assert "once uncompressed, more than the 2,097,152 a workbook may" in refused.stderr
    allowed = subprocess.run([*run, "--max-bytes", "20M"], capture_output=True, text=True,
                             check=False)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.splitlines()[1].startswith("p0,2026-01,")
