"""``incentives run`` writes period by period (src/incentives/output.py) and holds one
period's records when they come in order: the same bytes, rows, errors, exit codes and
state as the whole run rendered at once (what ``run`` did before), in every format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives import load_plan
from incentives.cli import main
from incentives.engine import OutOfOrder
from incentives.errors import UsageError
from incentives.fileio import StagedFiles
from incentives.output import CsvWriter, JsonWriter, SinkWriter
from incentives.records import MAX_ERRORS
from incentives.results import Run
from incentives.sources import open_sink, read_results
from incentives.tabular import result_tables

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TELECOM = EXAMPLES / "telecom" / "plan.yaml"

#: (plan, records, more arguments of run) for every example plan
CASES = [
    (EXAMPLES / "telecom" / "plan.yaml", EXAMPLES / "telecom" / "records.jsonl", []),
    (EXAMPLES / "bank" / "plan.yaml", EXAMPLES / "bank" / "records.json", []),
    (EXAMPLES / "tobacco" / "plan.yaml", EXAMPLES / "tobacco" / "records.jsonl", []),
    (EXAMPLES / "transactions" / "plan.yaml", EXAMPLES / "transactions" / "roster.jsonl",
     ["--transactions", str(EXAMPLES / "transactions" / "transactions.jsonl"),
      "--hierarchy", str(EXAMPLES / "transactions" / "hierarchy.csv")]),
]
IDS = ["telecom", "bank", "tobacco", "transactions"]


def whole_run(plan_path: Path, records: Any, *, period: str | None = None,
              state: Any = None, events: dict[str, str] | None = None, **given: Any) -> Run:
    """The run as ``incentives run`` evaluated it before: every record held, one Run."""
    plan = load_plan(plan_path)
    compiled = plan.compile()
    if period:
        compiled.reader.default_period = period
    compiled.reader.max_errors = MAX_ERRORS
    rows = compiled.source_records(records, events or {})
    return compiled.evaluate(rows, errors="collect", state=state, **given)


def transaction_kwargs(extra: list[str]) -> dict[str, Any]:
    if not extra:
        return {}
    return {"transactions": extra[1], "hierarchy": extra[3]}


def run_cli(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    import io

    out = io.StringIO()
    code = main([str(a) for a in args], out=out)
    captured = capsys.readouterr()
    return code, out.getvalue() + captured.out, captured.err


def telecom_records(path: Path, payees: int, months: int, *, by_payee: bool = False,
                    bad: bool = False) -> list[dict[str, Any]]:
    """Records of the telecom plan, by period (or each payee's months together)."""
    rows = []
    for m in range(months):
        for i in range(payees):
            rows.append({"payee": f"p{i:03d}", "period": f"2026-{m + 1:02d}",
                         "group": f"g{i % 3}",
                         "metrics": {"traffic_revenue": str(1000 * (i + 1) + 37 * m),
                                     "new_fax": i % 3}})
    if by_payee:
        rows.sort(key=lambda r: (r["payee"], r["period"]))
    if bad:
        rows.insert(3, {"payee": "broken", "period": "2026-01",
                        "metrics": {"traffic_revenue": "lots"}})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


# ---------------------------------------------------------------- every example plan

@pytest.mark.parametrize(("plan", "records", "extra"), CASES, ids=IDS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("details", ["full", "lines", "none"])
def test_text_output_is_the_whole_runs_bytes(plan: Path, records: Path, extra: list[str],
                                             fmt: str, details: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = whole_run(plan, str(records), **transaction_kwargs(extra))
    want = run.to_json(details=details) if fmt == "json" else run.to_csv(details=details)
    out = tmp_path / f"out.{fmt}"
    code, _, err = run_cli(capsys, "run", plan, records, *extra, "--out", out,
                           "--details", details)
    assert code == (1 if run.errors else 0), err
    assert out.read_text(encoding="utf-8") == want
    code, stdout, _ = run_cli(capsys, "run", plan, records, *extra, "--format", fmt,
                              "--details", details)
    assert stdout == want
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # nothing left over


@pytest.mark.parametrize(("plan", "records", "extra"), CASES, ids=IDS)
@pytest.mark.parametrize("sink", ["xlsx", "parquet", "sql"])
@pytest.mark.parametrize("details", ["full", "none"])
def test_sink_rows_are_the_whole_runs(plan: Path, records: Path, extra: list[str], sink: str,
                                      details: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip({"xlsx": "openpyxl", "parquet": "pyarrow", "sql": "sqlalchemy"}[sink])
    run = whole_run(plan, str(records), **transaction_kwargs(extra))
    target = (f"sqlite:///{tmp_path / 'pay.db'}?table=pay" if sink == "sql"
              else str(tmp_path / f"out.{sink}"))
    told = ["--pay-with-errors"] if sink == "sql" else []
    code, stdout, err = run_cli(capsys, "run", plan, records, *extra, "--out", target,
                                *told, "--details", details)
    assert code == (1 if run.errors else 0), err
    lines = sum(len(r.lines) for r in run.results) if details == "full" else 0
    assert stdout.endswith(f": wrote {len(run.results)} result(s), {lines} line(s), "
                           f"{len(run.errors)} error(s)\n")
    got, want = read_results(target), result_tables(run, details=details)
    assert (got.totals, got.lines, got.errors) == (want.totals, want.lines, want.errors)


# ---------------------------------------------------------------- records out of order

@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_records_out_of_period_order_give_the_same_output(
        fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ordered, shuffled = tmp_path / "ordered.jsonl", tmp_path / "shuffled.jsonl"
    telecom_records(ordered, 7, 3)
    telecom_records(shuffled, 7, 3, by_payee=True)
    # and a record of a passed period at the very end
    late = tmp_path / "late.jsonl"
    lines = ordered.read_text(encoding="utf-8").splitlines(keepends=True)
    late.write_text("".join(lines[1:] + lines[:1]), encoding="utf-8")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    outs = []
    for source in (ordered, shuffled, late):
        out = tmp_path / f"{source.stem}.{fmt}"
        code, _, err = run_cli(capsys, "run", TELECOM, source, "--out", out)
        assert (code, err) == (0, "")
        outs.append(read_results(out) if fmt == "parquet" else out.read_bytes())
    if fmt == "parquet":
        outs = [(t.totals, t.lines, t.errors) for t in outs]  # type: ignore[attr-defined]
    assert outs[0] == outs[1] == outs[2]
    run = whole_run(TELECOM, str(shuffled))
    if fmt == "json":
        assert outs[1] == run.to_json().encode()
    if fmt == "csv":
        assert outs[1] == run.to_csv().encode()


def test_in_order_reading_holds_a_period_and_says_when_it_cannot(tmp_path: Path) -> None:
    compiled = load_plan(TELECOM).compile()
    ordered = telecom_records(tmp_path / "r.jsonl", 4, 3)
    evaluation = compiled.periods(ordered, errors="collect", in_order=True)
    made = [(period, [r.payee for r in results]) for period, results in evaluation]
    assert made == [(f"2026-0{m}", ["p000", "p001", "p002", "p003"]) for m in (1, 2, 3)]
    assert evaluation.errors == []
    assert evaluation.state.periods == ["2026-01", "2026-02", "2026-03"]
    with pytest.raises(OutOfOrder):
        list(compiled.periods([*ordered, ordered[0]], errors="collect", in_order=True))
    # the run of the Python API is the same run, whatever the order
    by_payee = telecom_records(tmp_path / "s.jsonl", 4, 3, by_payee=True)
    assert compiled.evaluate(by_payee).to_json() == compiled.evaluate(ordered).to_json()


# ---------------------------------------------------------------- errors and duplicates

@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_errors_duplicates_and_their_sources_are_as_before(
        fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r.jsonl"
    rows = telecom_records(records, 5, 3, bad=True)
    # a duplicate in the second period, and a line that is not JSON
    text = records.read_text(encoding="utf-8")
    text += json.dumps(rows[-1]) + "\n" + "{not json\n"
    head = [json.dumps(rows[6]) + "\n"]  # p001 of 2026-02 again, among 2026-02's records
    lines = text.splitlines(keepends=True)
    lines[8:8] = head
    records.write_text("".join(lines), encoding="utf-8")
    run = whole_run(TELECOM, str(records))
    assert len(run.errors) == 4
    out = tmp_path / f"out.{fmt}"
    code, _, err = run_cli(capsys, "run", TELECOM, records, "--out", out)
    assert code == 1
    assert err == "".join(f"error: {e}\n" for e in run.errors)
    assert out.read_text(encoding="utf-8") == (run.to_json() if fmt == "json"
                                               else run.to_csv())


def test_errors_of_a_table_name_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sqlalchemy")
    import sqlite3

    db = tmp_path / "r.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE r (payee TEXT, period TEXT, traffic_revenue TEXT)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?)", [
        ("a", "2026-01", "100"), ("b", "2026-01", "x"), ("a", "2026-02", "5"),
        ("a", "2026-02", "6"), ("c", "2026-02", "7")])
    con.commit()
    con.close()
    source = f"sqlite:///{db}?table=r"
    run = whole_run(TELECOM, source)
    assert any("table" in str(e) for e in run.errors)
    code, stdout, err = run_cli(capsys, "run", TELECOM, source, "--format", "json")
    assert code == 1
    assert stdout == run.to_json()
    assert err == "".join(f"error: {e}\n" for e in run.errors)


def test_events_tables_and_a_default_period(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    records = tmp_path / "r.csv"
    records.write_text("payee,group,traffic_revenue\nX,g,50000\nY,g,1000\n", encoding="utf-8")
    events = tmp_path / "lost.csv"
    events.write_text("payee,period,id,monthly_value,reason,lost\n"
                      "X,2026-05,c-1,1000,competitor,2026-05-03\n"
                      "Q,2026-05,c-2,500,price,2026-05-04\n", encoding="utf-8")
    run = whole_run(TELECOM, str(records), period="2026-05",
                    events={"lost_customers": str(events)})
    assert run.errors
    assert run.results
    code, stdout, err = run_cli(capsys, "run", TELECOM, records, "--period", "2026-05",
                                "--events", f"lost_customers={events}", "--format", "json")
    assert code == 1
    assert stdout == run.to_json()
    assert err == "".join(f"error: {e}\n" for e in run.errors)


# ---------------------------------------------------------------- the state

def test_state_is_written_as_before_and_only_when_all_went_well(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = EXAMPLES / "telecom" / "plan-ledger.yaml"
    june = EXAMPLES / "telecom" / "records-2026-06.jsonl"
    july = EXAMPLES / "telecom" / "records-2026-07.jsonl"
    both = tmp_path / "both.jsonl"
    both.write_text(june.read_text(encoding="utf-8") + july.read_text(encoding="utf-8"),
                    encoding="utf-8")
    state = tmp_path / "state.json"
    run = whole_run(plan, str(both))
    out = tmp_path / "out.csv"
    code, _, err = run_cli(capsys, "run", plan, both, "--state", state, "--out", out)
    assert (code, err) == (0, "")
    assert out.read_text(encoding="utf-8") == run.to_csv()
    assert state.read_text(encoding="utf-8") == run.state.to_json()
    # the same months again: refused, nothing written, the state as it was
    before = state.read_bytes()
    out.unlink()
    code, _, err = run_cli(capsys, "run", plan, both, "--state", state, "--out", out)
    assert code == 2
    assert "is already closed in this state" in err
    assert not out.exists()
    assert state.read_bytes() == before
    # a record that fails: the output is written, the state is not
    later = tmp_path / "later.jsonl"
    later.write_text('{"payee": "X", "period": "2026-08", "metrics": {"traffic_revenue": "x"}}\n'
                     + july.read_text(encoding="utf-8").replace("2026-07", "2026-08"),
                     encoding="utf-8")
    code, _, err = run_cli(capsys, "run", plan, later, "--state", state, "--out", out)
    assert code == 1
    assert "state not written: 1 record(s) failed" in err
    assert state.read_bytes() == before
    assert out.exists()


def test_a_refused_period_is_said_after_the_records_are_read(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As when every record was read first: a file that is not records is said first."""
    plan = EXAMPLES / "telecom" / "plan-ledger.yaml"
    june = EXAMPLES / "telecom" / "records-2026-06.jsonl"
    state = tmp_path / "state.json"
    assert run_cli(capsys, "run", plan, june, "--state", state, "--format", "csv")[0] == 0
    records = tmp_path / "r.jsonl"
    records.write_text(june.read_text(encoding="utf-8")
                       + "not a record\n" * (MAX_ERRORS + 1), encoding="utf-8")
    code, stdout, err = run_cli(capsys, "run", plan, records, "--state", state,
                                "--format", "json")
    assert (code, stdout) == (2, "")
    with pytest.raises(UsageError) as refused:
        whole_run(plan, str(records))
    assert "cannot be read as records" in str(refused.value)
    assert err == f"error: {refused.value}\n"


# ---------------------------------------------------------------- sinks

def test_a_database_gets_only_the_errors_unless_told(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sqlalchemy")
    records = tmp_path / "r.jsonl"
    telecom_records(records, 5, 3, bad=True)
    url = f"sqlite:///{tmp_path / 'pay.db'}?table=pay"
    run = whole_run(TELECOM, str(records))
    code, stdout, _ = run_cli(capsys, "run", TELECOM, records, "--out", url)
    assert code == 1
    assert "pay not written: 1 record(s) failed" in stdout
    got, want = read_results(url), result_tables(run)
    assert (got.totals, got.lines, got.errors) == ([], [], want.errors)
    code, stdout, _ = run_cli(capsys, "run", TELECOM, records, "--out", url,
                              "--pay-with-errors")
    assert code == 1
    assert "wrote 15 result(s), 60 line(s), 1 error(s)" in stdout
    got = read_results(url)
    assert (got.totals, got.lines, got.errors) == (want.totals, want.lines, want.errors)


def test_a_workbook_too_large_is_refused_with_the_whole_runs_count(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openpyxl")
    import incentives.excel

    records = tmp_path / "r.jsonl"
    telecom_records(records, 5, 3)  # 15 results, 60 lines
    monkeypatch.setattr(incentives.excel, "EXCEL_ROWS", 30)
    out = tmp_path / "out.xlsx"
    code, stdout, err = run_cli(capsys, "run", TELECOM, records, "--out", out)
    assert (code, stdout) == (2, "")
    assert err == ("error: Excel output: the lines sheet would hold 60 rows, more than the 29 "
                   "a sheet holds; write Parquet or SQL instead\n")
    assert list(tmp_path.iterdir()) == [records]


def test_writers_make_the_whole_runs_output_from_periods(tmp_path: Path) -> None:
    """A policy that makes no line for anyone drops its CSV column; rows are written
    again then. A plan with group figures gets its groups at the end."""
    plan = load_plan("""
name: some-lines
inputs: {metrics: {sales: {}}}
policies:
  - {type: formula, id: base, amount: sales * 0.1}
  - {type: formula, id: bonus, amount: sales * 0.2, when: sales > 1000000}
  - {type: formula, id: big, amount: 5, when: sales > 500}
""")
    rows = [{"payee": f"p{i}", "period": f"2026-0{m}", "metrics": {"sales": str(100 * i)}}
            for m in (1, 2) for i in range(9)]
    run = plan.evaluate(rows)
    assert run.columns() == ["base", "big"]  # bonus made no line
    compiled = plan.compile()
    with StagedFiles() as files:
        handle = files.open(tmp_path / "out.csv")
        writer = CsvWriter(handle, plan)
        jhandle = files.open(tmp_path / "out.json")
        jwriter = JsonWriter(jhandle, plan)
        for _, results in compiled.periods(rows, errors="collect", in_order=True):
            writer.add(results)
            jwriter.add(results)
        writer.finish([])
        jwriter.finish([])
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == run.to_csv()
    assert (tmp_path / "out.json").read_text(encoding="utf-8") == run.to_json()


def test_a_sink_writer_discards_on_an_error(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    plan = load_plan(TELECOM)
    rows = telecom_records(tmp_path / "r.jsonl", 3, 2)
    writer = SinkWriter(open_sink(tmp_path / "out.parquet"), plan)
    for _, results in plan.compile().periods(rows, errors="collect", in_order=True):
        writer.add(results)  # written to the staged files
        assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    writer.discard()  # as on an error or an interrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl"]


# ---------------------------------------------------------------- killed mid-run

def _start(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "incentives", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _mid_run(proc: subprocess.Popen[bytes], folder: Path) -> None:
    """Wait until the run has started writing its output (a staged file), and a little
    more; it must still be running."""
    deadline = time.monotonic() + 120
    while not any(p.name.endswith(".tmp") for p in folder.iterdir()):
        assert proc.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it was stopped: give it more records"


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_a_run_stopped_mid_way_leaves_no_output_and_no_state(
        fmt: str, tmp_path: Path) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    records = tmp_path / "r.jsonl"
    telecom_records(records, 3000, 12)
    plan = EXAMPLES / "telecom" / "plan-ledger.yaml"
    state = tmp_path / "state.json"
    december = tmp_path / "december.jsonl"
    december.write_text('{"payee": "p000", "period": "2025-12", "metrics": '
                        '{"traffic_revenue": "100"}}\n', encoding="utf-8")
    assert main(["run", str(plan), str(december), "--state", str(state), "--format",
                 "csv", "--out", str(tmp_path / "december.csv")]) == 0
    for name in ("december.jsonl", "december.csv"):
        (tmp_path / name).unlink()
    before = state.read_bytes()
    out = tmp_path / f"out.{fmt}"
    proc = _start(["run", str(plan), str(records), "--state", str(state), "--out", str(out)])
    _mid_run(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.jsonl", "state.json",
                                                          "state.json.lock"]
    assert state.read_bytes() == before
    # killed outright: the output is not in place; the next run clears what was left
    proc = _start(["run", str(plan), str(records), "--state", str(state), "--out", str(out)])
    _mid_run(proc, tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert not out.exists()
    assert state.read_bytes() == before
    proc = _start(["run", str(plan), str(records), "--out", str(out)])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["r.jsonl", "state.json", "state.json.lock", out.name,
                            *([f"out.{x}.parquet" for x in ("errors", "lines")]
                              if fmt == "parquet" else [])])
    assert os.path.getsize(out) > 0


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_standard_output_that_cannot_show_the_text_gets_none_of_it(
        fmt: str, tmp_path: Path) -> None:
    records = tmp_path / "zh.jsonl"
    rows = [{"payee": f"p{i}", "period": "2026-06", "metrics": {"traffic_revenue": "1"}}
            for i in range(3000)]
    rows.append({"payee": "张三", "period": "2026-06", "metrics": {"traffic_revenue": "1"}})
    records.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    state = tmp_path / "state.json"
    done = subprocess.run([sys.executable, "-m", "incentives", "run", str(TELECOM),
                           str(records), "--state", str(state), "--format", fmt],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert (done.returncode, done.stdout) == (2, "")
    # the first characters ascii cannot write, as when the whole text was encoded at once
    run = whole_run(TELECOM, str(records))
    text = run.to_json() if fmt == "json" else run.to_csv()
    with pytest.raises(UnicodeEncodeError) as exc:
        text.encode("ascii")
    shown = exc.value.object[exc.value.start:exc.value.end]
    said = f"{shown!r}".encode("ascii", "backslashreplace").decode()  # stderr is ascii too
    assert done.stderr == (f"error: the output holds {said}, which standard output "
                           "(ascii) cannot show: give --out FILE (written in UTF-8), or set "
                           "PYTHONIOENCODING=utf-8\n")
    assert not state.exists()


# ---------------------------------------------------------------- any order (property)

@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(15)), duplicate=st.booleans(),
       fmt=st.sampled_from(["json", "csv"]), details=st.sampled_from(["full", "none"]))
def test_any_record_order_gives_the_whole_runs_bytes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], order: list[int],
        duplicate: bool, fmt: str, details: str) -> None:
    """Whatever order the records come in (period after period, or not: run then holds
    them all), with or without a payee twice in a period, ``run`` writes the bytes of
    the whole run evaluated at once, and ``stream`` the same amounts."""
    rows = telecom_records(tmp_path / "sorted.jsonl", 5, 3)
    if duplicate:
        rows.append({**rows[0], "group": "g9"})
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("".join(json.dumps(rows[i]) + "\n"
                                for i in [*order, *range(15, len(rows))]), encoding="utf-8")
    run = whole_run(TELECOM, str(tmp_path / "sorted.jsonl"))
    if duplicate:
        run = whole_run(TELECOM, str(shuffled))
    want = run.to_json(details=details) if fmt == "json" else run.to_csv(details=details)
    out = tmp_path / f"pay.{fmt}"
    code, _, _ = run_cli(capsys, "run", TELECOM, shuffled, "--format", fmt,
                         "--details", details, "--out", out)
    assert code == (1 if duplicate else 0)
    assert out.read_text(encoding="utf-8") == want
    if fmt == "csv":
        streamed = tmp_path / "stream.csv"
        run_cli(capsys, "stream", TELECOM, shuffled, "--format", "csv", "--details", details,
                "--out", streamed)
        assert streamed.read_text(encoding="utf-8") == want
