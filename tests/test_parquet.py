"""Parquet: records read exactly (decimals, dates, partitions), floats and nested
columns refused by name, and a run's tables written, re-read and compared exactly."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives import load_plan
from incentives.errors import UsageError
from incentives.fileio import TEMP_TAG, clean_leftovers
from incentives.parquet import (
    parquet_paths,
    parquet_sink,
    read_parquet,
    read_result_parquet,
)
from incentives.tabular import ResultTables, result_tables

ROOT = Path(__file__).resolve().parent.parent
TELECOM = ROOT / "examples" / "telecom"


def write(path: Path, columns: dict[str, Any], schema: pa.Schema | None = None,
          **options: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path, **options)
    return path


def telecom_run() -> Any:
    plan = load_plan(TELECOM / "plan.yaml")
    records = [json.loads(line) for line in (TELECOM / "records.jsonl").read_text().splitlines()]
    records.append({"payee": "W", "period": "2026-05", "metrics": {"traffic_revenue": "abc"}})
    records.append({"period": "2026-05", "metrics": {"traffic_revenue": "1"}})
    return plan.evaluate(records, errors="collect")


def temporary_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_TAG in p.name)


# ------------------------------------------------------------------ reading values


def test_decimals_arrive_exact(tmp_path: Path) -> None:
    path = write(tmp_path / "r.parquet", {
        "payee": ["A", "B", "C"],
        "traffic_revenue": pa.array([Decimal("1234.56"), Decimal("-0.01"), None],
                                    pa.decimal128(18, 2)),
        "big": pa.array([Decimal("123456789012345678901234567890.0123456789"),
                         Decimal("0E-10"), Decimal("1.5")], pa.decimal256(40, 10)),
        "units": pa.array([3, None, -7], pa.int32()),
        "flag": [True, False, None],
    })
    rows = list(read_parquet(path))
    assert rows == [
        {"payee": "A", "traffic_revenue": Decimal("1234.56"),
         "big": Decimal("123456789012345678901234567890.0123456789"), "units": 3,
         "flag": True},
        {"payee": "B", "traffic_revenue": Decimal("-0.01"), "big": Decimal("0E-10"),
         "units": None, "flag": False},
        {"payee": "C", "traffic_revenue": None, "big": Decimal("1.5000000000"), "units": -7,
         "flag": None},
    ]
    assert str(rows[0]["traffic_revenue"]) == "1234.56"  # the scale is kept
    assert type(rows[0]["big"]) is Decimal
    assert type(rows[0]["units"]) is int


def test_a_float_column_is_refused_before_any_row_naming_file_and_column(
        tmp_path: Path) -> None:
    path = write(tmp_path / "r.parquet", {"payee": ["A"], "traffic_revenue": [0.1]})
    with pytest.raises(UsageError) as caught:
        read_parquet(path)  # refused when called, from the schema: not a row is read
    message = str(caught.value)
    assert message.startswith(f"records file {str(path)!r}, column 'traffic_revenue': holds "
                              "floating-point numbers, which are not exact")
    assert "reading: {floats: shortest}" in message
    with pytest.raises(UsageError, match=r"transactions file .*column 'x'"):
        read_parquet(write(tmp_path / "f32.parquet", {"x": pa.array([1.5], pa.float32())}),
                     what="transactions")


def test_floats_read_as_the_plan_says(tmp_path: Path) -> None:
    path = write(tmp_path / "r.parquet", {
        "a": [0.1, 0.1 + 0.2, 2.675, None], "b": pa.array([1.5, 2, 3, 4], pa.float32())})
    assert [(r["a"], r["b"]) for r in read_parquet(path, floats="shortest")] == [
        (Decimal("0.1"), Decimal("1.5")), (Decimal("0.30000000000000004"), Decimal("2.0")),
        (Decimal("2.675"), Decimal("3.0")), (None, Decimal("4.0"))]
    assert [r["a"] for r in read_parquet(path, floats=Decimal("0.01"))] == [
        Decimal("0.10"), Decimal("0.30"), Decimal("2.68"), None]
    with pytest.raises(UsageError, match="is not 'refuse', 'shortest' or a positive quantum"):
        read_parquet(path, floats="round")  # type: ignore[arg-type]


def test_dates_timestamps_and_times(tmp_path: Path) -> None:
    utc = dt.timezone.utc
    path = write(tmp_path / "r.parquet", {
        "lost": pa.array([dt.date(2026, 5, 3), None], pa.date32()),
        "d64": pa.array([dt.date(2026, 5, 31), dt.date(1999, 12, 31)], pa.date64()),
        "at": pa.array([dt.datetime(2026, 5, 3), dt.datetime(2026, 5, 3, 10, 30, 0, 5)],
                       pa.timestamp("us")),
        "utc": pa.array([dt.datetime(2026, 5, 3, 10, 30, tzinfo=utc), None],
                        pa.timestamp("ms", tz="UTC")),
        "ns": pa.array([dt.datetime(2026, 5, 3, 1, 2, 3), dt.datetime(2026, 5, 4)],
                       pa.timestamp("ns")),
        "t": pa.array([dt.time(10, 30), dt.time(0, 0, 1, 500)], pa.time64("us")),
    })
    assert list(read_parquet(path)) == [
        {"lost": "2026-05-03", "d64": "2026-05-31", "at": "2026-05-03",
         "utc": "2026-05-03T10:30:00+00:00", "ns": "2026-05-03T01:02:03", "t": "10:30:00"},
        {"lost": None, "d64": "1999-12-31", "at": "2026-05-03T10:30:00.000005", "utc": None,
         "ns": "2026-05-04", "t": "00:00:01.000500"},
    ]
    nanos = write(tmp_path / "n.parquet", {
        "at": pa.array([1_000_000_000_000_000_001], pa.int64()).cast(pa.timestamp("ns"))})
    with pytest.raises(UsageError, match=r"column 'at': holds times with nanoseconds"):
        list(read_parquet(nanos))


def test_a_dictionary_encoded_string_column(tmp_path: Path) -> None:
    path = write(tmp_path / "r.parquet", {
        "payee": pa.array(["A", "B", "A", None]).dictionary_encode(),
        "n": [1, 2, 3, 4]})
    assert pq.read_schema(path).field("payee").type == pa.dictionary(pa.int32(), pa.string())
    assert [r["payee"] for r in read_parquet(path)] == ["A", "B", "A", None]


def test_nested_columns_are_refused_except_sellers(tmp_path: Path) -> None:
    lists = write(tmp_path / "l.parquet", {"payee": ["A"], "tags": [[1, 2]]})
    with pytest.raises(UsageError, match=r"column 'tags': holds nested values \(list<"):
        read_parquet(lists)
    structs = write(tmp_path / "s.parquet", {"payee": ["A"], "who": [{"x": 1}]})
    with pytest.raises(UsageError, match=r"column 'who': holds nested values \(struct<"):
        read_parquet(structs)
    seller = pa.struct([("payee", pa.string()), ("share", pa.decimal128(5, 2))])
    good = write(tmp_path / "t.parquet", {
        "id": ["inv-1", "inv-2"],
        "sellers": pa.array([[{"payee": "A", "share": Decimal("0.60")},
                              {"payee": "B", "share": Decimal("0.40")}], None],
                            pa.list_(seller))})
    assert list(read_parquet(good, what="transactions")) == [
        {"id": "inv-1", "sellers": [{"payee": "A", "share": Decimal("0.60")},
                                    {"payee": "B", "share": Decimal("0.40")}]},
        {"id": "inv-2", "sellers": None}]
    float_share = write(tmp_path / "fs.parquet", {"sellers": pa.array(
        [[{"payee": "A", "share": 0.6}]],
        pa.list_(pa.struct([("payee", pa.string()), ("share", pa.float64())])))})
    with pytest.raises(UsageError, match=r"column 'sellers.share': holds floating-point"):
        read_parquet(float_share)
    assert list(read_parquet(float_share, floats="shortest")) == [
        {"sellers": [{"payee": "A", "share": Decimal("0.6")}]}]
    other = write(tmp_path / "o.parquet", {"sellers": pa.array(
        [[{"payee": "A", "note": "x"}]],
        pa.list_(pa.struct([("payee", pa.string()), ("note", pa.string())])))})
    with pytest.raises(UsageError, match=r"column 'sellers': holds nested values"):
        read_parquet(other)


def test_binary_and_unknown_types_are_refused(tmp_path: Path) -> None:
    binary = write(tmp_path / "b.parquet", {"payee": [b"A"]})
    with pytest.raises(UsageError, match=r"column 'payee': holds binary data"):
        read_parquet(binary)
    durations = write(tmp_path / "d.parquet", {"wait": pa.array([5], pa.duration("s"))})
    with pytest.raises(UsageError, match=r"column 'wait': its type duration\[s\] is not read"):
        read_parquet(durations)


def test_unreadable_sources_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read records .*nope.parquet'?: no such file"):
        read_parquet(tmp_path / "nope.parquet")
    garbage = tmp_path / "bad.parquet"
    garbage.write_bytes(b"this is not parquet at all")
    with pytest.raises(UsageError, match=r"cannot read records file .*bad.parquet'"):
        read_parquet(garbage)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    with pytest.raises(UsageError, match=r"records folder .*empty' holds no Parquet files"):
        read_parquet(empty)


def test_text_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    raw = pa.array([b"\xff\xfeA"], pa.binary())
    broken = pa.Array.from_buffers(pa.string(), 1, raw.buffers())  # a writer's bug
    path = write(tmp_path / "bad.parquet", {"payee": broken})
    with pytest.raises(UsageError, match=r"cannot read records file .*bad.parquet': 'utf-8' "
                                         r"codec can't decode"):
        list(read_parquet(path))


# ------------------------------------------------------------------ datasets


def test_a_hive_partitioned_folder_is_read_in_order_with_partitions_as_text(
        tmp_path: Path) -> None:
    root = tmp_path / "data"
    write(root / "period=2026-06" / "group=007" / "part-0.parquet", {"payee": ["C"]})
    write(root / "period=2026-05" / "group=a%20b" / "part-1.parquet", {"payee": ["B"]})
    write(root / "period=2026-05" / "group=a%20b" / "part-0.parquet", {"payee": ["A"]})
    write(root / "period=__HIVE_DEFAULT_PARTITION__" / "group=x" / "p.parquet",
          {"payee": ["D"]})
    (root / "_SUCCESS").write_text("")  # markers and hidden files are not data
    (root / "period=2026-05" / ".part-0.parquet.crc").write_bytes(b"\0")
    assert list(read_parquet(root)) == [
        {"payee": "A", "period": "2026-05", "group": "a b"},
        {"payee": "B", "period": "2026-05", "group": "a b"},
        {"payee": "C", "period": "2026-06", "group": "007"},
        {"payee": "D", "period": None, "group": "x"},
    ]


def test_a_partition_that_is_also_a_column_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write(root / "period=2026-05" / "p.parquet", {"payee": ["A"], "period": ["2026-06"]})
    with pytest.raises(UsageError, match=r"'period' is both a column of the file and a "
                                         r"partition folder"):
        read_parquet(root)


def test_partitions_are_read_lazily_one_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for month in range(1, 5):
        write(root / f"period=2026-0{month}" / "part-0.parquet",
              {"payee": [f"p{month}-{i}" for i in range(3)]})
    rows = read_parquet(root)
    first = next(rows)
    assert first == {"payee": "p1-0", "period": "2026-01"}
    # the last partition is not read yet: break it now, and the error comes when it is reached
    (root / "period=2026-04" / "part-0.parquet").write_bytes(b"broken")
    seen = [first]
    with pytest.raises(UsageError, match=r"period=2026-04.*part-0.parquet"):
        seen.extend(rows)
    assert len(seen) == 9
    assert seen[-1] == {"payee": "p3-2", "period": "2026-03"}


def test_memory_holds_a_batch_not_the_dataset(tmp_path: Path) -> None:
    root = tmp_path / "data"
    n = 40_000
    for region in range(12):
        write(root / f"region=r{region:02d}" / "part-0.parquet", {
            "payee": [f"payee-{i:07d}" for i in range(n)],
            "amount": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(18, 2))},
            row_group_size=10_000)
    base = pa.total_allocated_bytes()
    peak = count = 0
    last: dict[str, Any] = {}
    for count, row in enumerate(read_parquet(root), 1):
        last = row
        if count % 2_000 == 0:
            peak = max(peak, pa.total_allocated_bytes() - base)
    whole = pq.read_table(root).nbytes  # what reading it all at once would hold
    assert count == 12 * n
    assert last == {"payee": "payee-0039999", "amount": Decimal("399.99"),
                                       "region": "r11"}
    assert 0 < peak < whole / 6, (peak, whole)


# ------------------------------------------------------------------ the sink


def test_paths_of_the_sink(tmp_path: Path) -> None:
    assert [p.name for p in parquet_paths(tmp_path / "pay.parquet")] == [
        "pay.parquet", "pay.lines.parquet", "pay.errors.parquet"]
    assert [p.name for p in parquet_paths(tmp_path / "pay.pq")] == [
        "pay.pq", "pay.lines.pq", "pay.errors.pq"]
    with pytest.raises(UsageError, match=r"a Parquet output is a file NAME\.parquet"):
        parquet_sink(tmp_path / "pay.csv")
    with pytest.raises(UsageError, match=r"the folder .* does not exist"):
        parquet_sink(tmp_path / "no" / "pay.parquet")


def test_the_telecom_run_round_trips_exactly(tmp_path: Path) -> None:
    run = telecom_run()
    tables = result_tables(run)
    assert tables.errors
    assert tables.totals
    assert tables.lines
    sink = parquet_sink(tmp_path / "pay.parquet")
    sink.write(tables)
    sink.commit()
    back = read_result_parquet(tmp_path / "pay.parquet")
    assert back == tables
    assert [str(row[5]) for row in back.totals] == [str(row[5]) for row in tables.totals]
    assert temporary_files(tmp_path) == []
    totals = pq.read_schema(tmp_path / "pay.parquet")
    assert totals.field("total").type == pa.decimal128(38, 2)
    assert not totals.field("payee").nullable
    assert totals.metadata[b"incentives.plan"] == b"telecom-key-account"
    assert totals.metadata[b"incentives.plan_version"] == b"2026.1"
    errors = pq.read_schema(tmp_path / "pay.errors.parquet")
    assert errors.field("payee").nullable
    assert errors.field("payee").type == pa.string()
    assert pq.read_schema(tmp_path / "pay.lines.parquet").field("line").type == pa.int64()


def test_each_write_is_a_row_group(tmp_path: Path) -> None:
    tables = result_tables(telecom_run())
    sink = parquet_sink(tmp_path / "pay.parquet")
    halves = []
    for part in (tables.totals[:1], tables.totals[1:]):
        payees = {row[4] for row in part}
        half = ResultTables(tables.plan, tables.version, tables.places, part,
                            [r for r in tables.lines if r[4] in payees], [], tables.periods)
        halves.append(half)
        sink.write(half)
    sink.commit()
    assert pq.ParquetFile(tmp_path / "pay.parquet").num_row_groups == 2
    back = read_result_parquet(tmp_path / "pay.parquet")
    assert back.totals == tables.totals
    assert back.lines == tables.lines
    assert back.errors == []


def test_values_that_do_not_fit_are_refused_naming_them(tmp_path: Path) -> None:
    sink = parquet_sink(tmp_path / "pay.parquet")
    bad = ResultTables("p", "1", 2, totals=[
        ("p", "1", "2026-05", "g", "A", Decimal("1.234"), "", "")])
    with pytest.raises(UsageError, match=r"table totals, row 1, column 'total': "
                                         r"Decimal\('1.234'\) does not fit decimal128\(38, 2\)"):
        sink.write(bad)
    sink.discard()
    assert list(tmp_path.iterdir()) == []


def write_version(path: Path, total: str) -> ResultTables:
    tables = ResultTables("p", "1", 2, totals=[
        ("p", "1", "2026-05", "g", "A", Decimal(total), "", "")], periods=["2026-05"])
    sink = parquet_sink(path)
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


def test_an_exception_before_commit_leaves_the_old_files(tmp_path: Path) -> None:
    path = tmp_path / "pay.parquet"
    old = write_version(path, "100.00")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    sink = parquet_sink(path)
    sink.write(ResultTables("p", "1", 2, totals=[
        ("p", "1", "2026-05", "g", "A", Decimal("999.00"), "", "")]))
    assert len(temporary_files(tmp_path)) == 3
    with pytest.raises(RuntimeError, match="boom"):
        fail_then_discard(sink)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert read_result_parquet(path) == old


def test_a_killed_writer_leaves_the_old_files_and_its_leftovers_are_cleaned(
        tmp_path: Path) -> None:
    path = tmp_path / "pay.parquet"
    old = write_version(path, "100.00")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    child = textwrap.dedent(f"""
        import sys, time
        from decimal import Decimal
        from incentives.parquet import parquet_sink
        from incentives.tabular import ResultTables
        sink = parquet_sink({str(path)!r})
        rows = [("p", "1", "2026-05", "g", f"A{{i}}", Decimal("999.00"), "", "")
                for i in range(10_000)]
        sink.write(ResultTables("p", "1", 2, totals=rows))
        print("writing", flush=True)
        while True:
            sink.write(ResultTables("p", "1", 2, totals=rows))
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
    assert len(leftovers) == 3
    assert all(f"{TEMP_TAG}{proc.pid}-" in n for n in leftovers)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if TEMP_TAG not in p.name} \
        == before
    assert read_result_parquet(path) == old
    assert all(n.startswith(f".pay.parquet{TEMP_TAG}") for n in leftovers)
    notes = clean_leftovers(path)  # the three are named after the totals file
    assert len(notes) == 3
    assert all("removed, a temporary file left by an interrupted run"
                                   in note for note in notes)
    assert temporary_files(tmp_path) == []


def test_a_sink_dropped_without_commit_writes_nothing(tmp_path: Path) -> None:
    sink = parquet_sink(tmp_path / "pay.parquet")
    sink.write(ResultTables("p", "1", 2, totals=[
        ("p", "1", "2026-05", "g", "A", Decimal("1.00"), "", "")]))
    assert len(temporary_files(tmp_path)) == 3
    del sink
    assert list(tmp_path.iterdir()) == []


def test_files_not_written_together_are_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "pay.parquet", tmp_path / "b" / "pay.parquet"
    first.parent.mkdir()
    second.parent.mkdir()
    write_version(first, "1.00")
    write_version(second, "2.00")
    os.replace(second.parent / "pay.lines.parquet", first.parent / "pay.lines.parquet")
    with pytest.raises(UsageError, match="were not written together"):
        read_result_parquet(first)
    with pytest.raises(UsageError, match=r"cannot read .*pay.lines.parquet'?: no such file"):
        read_result_parquet(second)


def test_a_negative_zero_is_written_as_zero(tmp_path: Path) -> None:
    tables = write_version(tmp_path / "pay.parquet", "-0.00")
    back = read_result_parquet(tmp_path / "pay.parquet")
    assert back == tables
    assert str(back.totals[0][5]) == "0.00"


def test_a_sink_is_used_once(tmp_path: Path) -> None:
    sink = parquet_sink(tmp_path / "pay.parquet")
    sink.commit()  # nothing written: no files
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError, match="already committed or discarded"):
        sink.write(ResultTables("p", "1", 2))


@given(st.integers(min_value=0, max_value=12).flatmap(lambda places: st.tuples(
    st.just(places),
    st.lists(st.decimals(min_value=Decimal(-10) ** 25, max_value=Decimal(10) ** 25,
                         places=places, allow_nan=False, allow_infinity=False),
             min_size=1, max_size=5))))
def test_any_amount_at_the_plans_places_round_trips(tmp_path_factory: pytest.TempPathFactory,
                                                     case: tuple[int, list[Decimal]]) -> None:
    places, amounts = case
    folder = tmp_path_factory.mktemp("pq")
    tables = ResultTables("p", "1", places, totals=[
        ("p", "1", "2026-05", "g", f"A{i}", amount, "", "") for i, amount in enumerate(amounts)],
        lines=[("p", "1", "2026-05", "g", f"A{i}", 1, "x", "x", "x", amount, "{}")
               for i, amount in enumerate(amounts)], periods=["2026-05"])
    sink = parquet_sink(folder / "pay.parquet")
    sink.write(tables)
    sink.commit()
    back = read_result_parquet(folder / "pay.parquet")
    assert back == tables
    # digits and scale kept; a negative zero is zero (a Parquet decimal has no signed zero)
    assert [str(row[5]) for row in back.totals] == [str(abs(a) if a.is_zero() else a)
                                                    for a in amounts]
    assert all(row[5].as_tuple().exponent == -places for row in back.totals)
