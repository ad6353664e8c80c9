"""Pay runs and output files attacked again (issue 15, round two): each test is a bug
found by a hostile tester through the real command line, fixed, and asserted here.

Real processes on real files: ``python -m incentives`` started with ``subprocess``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PLAN_YAML = """\
name: payrun
inputs: {metrics: {sales: {}}}
policies:
  - {type: formula, id: commission, amount: sales * 0.1}
  - {type: accumulate, id: ytd, of: sales, over: year}
"""


def _cli(*args: Any, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "incentives", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def _records(path: Path, *periods: str) -> Path:
    path.write_text("".join(
        json.dumps({"payee": "a", "period": p, "metrics": {"sales": "100"}}) + "\n"
        for p in periods), encoding="utf-8")
    return path


def _many(path: Path, count: int) -> Path:
    """``count`` payees' June records: enough for a run to take a while."""
    path.write_text("".join(
        json.dumps({"payee": f"p{i}", "period": "2026-06", "metrics": {"sales": str(i)}})
        + "\n" for i in range(count)), encoding="utf-8")
    return path


def _june_paid_and_fixed(plan: Path, tmp_path: Path, paid_name: str) -> tuple[Path, Path, Path]:
    """June run on a new state (its JSON output kept as the paid run), and June's records
    corrected (sales 100 -> 300): the state, the paid run, the corrected records."""
    state = tmp_path / "state.json"
    paid = tmp_path / paid_name
    june = _records(tmp_path / "june.jsonl", "2026-06")
    assert _cli("run", plan, june, "--state", state, "--format", "json",
                "--out", paid).returncode == 0
    fixed = tmp_path / "june-fixed.jsonl"
    fixed.write_text(june.read_text(encoding="utf-8").replace('"100"', '"300"'),
                     encoding="utf-8")
    return state, paid, fixed


def _closed(state: Path) -> list[str]:
    return [c["period"] for c in json.loads(state.read_text(encoding="utf-8"))["closed"]]


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN_YAML, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- periods in order


@pytest.mark.parametrize("command", ["run", "stream"])
def test_a_quarter_and_the_month_after_it_close_in_calendar_order(
        plan: Path, tmp_path: Path, command: str) -> None:
    # "2026-10" sorts before "2026-Q3" as text: the run closed them in that order and
    # wrote a state the next run refused ("'closed' periods are not in order"); the
    # stream refused a good file with a gap that was not there
    state = tmp_path / "state.json"
    done = _cli("run", plan, _records(tmp_path / "june.jsonl", "2026-06"), "--state", state)
    assert done.returncode == 0, done.stderr
    both = _records(tmp_path / "q3-and-october.jsonl", "2026-10", "2026-Q3")
    done = _cli(command, plan, both, "--state", state)
    assert (done.returncode, done.stderr) == (0, "")
    assert _closed(state) == ["2026-06", "2026-Q3", "2026-10"]
    ytd = json.loads(state.read_text(encoding="utf-8"))["payees"]["a"]["ytd"]
    assert (ytd["sum"], ytd["periods"]) == ("300", 3)
    done = _cli("run", plan, _records(tmp_path / "november.jsonl", "2026-11"),
                "--state", state)
    assert (done.returncode, done.stderr) == (0, "")
    assert _closed(state) == ["2026-06", "2026-Q3", "2026-10", "2026-11"]


# ---------------------------------------------------------------------- CSV injection


def test_the_simulate_reports_csv_tables_neutralise_formulas_and_keep_amounts(
        tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: sim\ninputs: {metrics: {sales: {}}}\nparameters: {rate: 0.1}\n"
                    "policies:\n  - {type: formula, id: commission, amount: sales * rate}\n",
                    encoding="utf-8")
    population = tmp_path / "population.jsonl"
    population.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"payee": "=1+2", "period": "2026-05", "group": "@SUM(A1)",
         "metrics": {"sales": "100"}},
        {"payee": "-3+4", "period": "2026-05", "group": "+north",
         "metrics": {"sales": "200"}},
        {"payee": "\uff1d5", "period": "2026-05", "group": "\uff0dx",
         "metrics": {"sales": "300"}},
    ]), encoding="utf-8")
    done = _cli("simulate", plan, "--population", population, "--sweep", "rate=0.05",
                "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    changes = (tmp_path / "report" / "changes.csv").read_text(encoding="utf-8")
    assert changes == (
        "variant,payee,period,group,before,after,change\n"
        "rate=0.05,'\uff1d5,2026-05,'\uff0dx,30.00,15.00,-15.00\n"
        "rate=0.05,'-3+4,2026-05,'+north,20.00,10.00,-10.00\n"
        "rate=0.05,'=1+2,2026-05,'@SUM(A1),10.00,5.00,-5.00\n")
    groups = (tmp_path / "report" / "groups.csv").read_text(encoding="utf-8").splitlines()
    assert groups[0] == "variant,group,payees,total,min,max,max_min,cv,gini"
    assert sorted(line.split(",")[1] for line in groups[1:]) == sorted(
        ["'+north", "'@SUM(A1)", "'\uff0dx"] * 2)  # baseline, rate=0.05
    assert "'" not in (tmp_path / "report" / "summary.csv").read_text(encoding="utf-8")


# ---------------------------------------------------------------------- output files


@pytest.mark.parametrize(("command", "option"), [("run", "--out"), ("stream", "--out"),
                                                 ("stream", "--errors")])
def test_an_output_naming_the_state_lock_file_is_refused(
        plan: Path, tmp_path: Path, command: str, option: str) -> None:
    # renaming an output over STATE.lock while a run holds it let the next run take a
    # lock of its own on the new file: two writers on one state
    state = tmp_path / "state.json"
    records = _records(tmp_path / "june.jsonl", "2026-06")
    link = tmp_path / "link.json"
    link.symlink_to(state.name)
    for given in (state, link):
        done = _cli(command, plan, records, "--state", given, option,
                    tmp_path / "state.json.lock")
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == (f"error: {option} {tmp_path / 'state.json.lock'} is the lock "
                               f"file of the state file {given}: give another file for the "
                               "output\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["june.jsonl", "link.json",
                                                          "plan.yaml"]


def test_a_state_linked_into_a_missing_folder_is_refused_and_no_folder_made(
        plan: Path, tmp_path: Path) -> None:
    # the lock used to create the missing folders (filelock makes its parents), then
    # the run wrote the state there
    link = tmp_path / "state.json"
    link.symlink_to(tmp_path / "gone" / "deeper" / "state.json")
    done = _cli("run", plan, _records(tmp_path / "june.jsonl", "2026-06"), "--state", link)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"error: --state {link} (a link to) {tmp_path}/gone/deeper/"
                           f"state.json: the folder {tmp_path}/gone/deeper does not exist "
                           "(create it first)\n")
    assert not (tmp_path / "gone").exists()


# ---------------------------------------------------------------------- corrections


def test_a_correction_posted_twice_is_paid_once(plan: Path, tmp_path: Path) -> None:
    # a retried (or doubled) 'incentives correct' posted the same adjustment again:
    # the difference was paid twice by the next run
    state, paid, fixed = _june_paid_and_fixed(plan, tmp_path, "paid-2026-06.json")
    first = _cli("correct", plan, fixed, "--paid", paid, "--state", state)
    assert (first.returncode, first.stdout, first.stderr) == (
        0, "a 2026-06 commission: paid 10.00, corrected 30.00, adjustment 20.00\n", "")
    again = _cli("correct", plan, fixed, "--paid", paid, "--state", state)
    assert (again.returncode, again.stdout, again.stderr) == (
        0, "no differences: nothing to adjust\n", "")
    # a further correction posts only what the waiting adjustment does not cover
    fixed.write_text(fixed.read_text(encoding="utf-8").replace('"300"', '"350"'),
                     encoding="utf-8")
    third = _cli("correct", plan, fixed, "--paid", paid, "--state", state)
    assert third.stdout == "a 2026-06 commission: paid 30.00, corrected 35.00, adjustment 5.00\n"
    july = _cli("run", plan, _records(tmp_path / "july.jsonl", "2026-07"), "--state", state,
                "--format", "json")
    lines = json.loads(july.stdout)["results"][0]["lines"]
    assert [(li["id"], li["amount"]) for li in lines] == [
        ("commission", "10.00"), ("adjustment", "20.00"), ("adjustment", "5.00")]
    assert json.loads(july.stdout)["results"][0]["total"] == "35.00"


# ---------------------------------------------------------------------- signals


@pytest.mark.parametrize(("signal_name", "status", "said"), [
    ("SIGINT", 130, "interrupted\n"), ("SIGTERM", 143, "terminated\n")])
def test_a_signal_while_the_command_line_starts_is_no_traceback(
        signal_name: str, status: int, said: str) -> None:
    # importing the package takes a few tenths of a second: Ctrl-C then ended in a
    # KeyboardInterrupt traceback (SIGTERM in death by the signal). The child below is
    # what 'python -m incentives' is while the package is imported (sys.argv[0] is
    # '-m'), with the signal sent during the import, deterministically
    code = ("import os, signal, sys\n"
            "sys.argv[0] = '-m'\n"
            "sys.orig_argv = [sys.executable, '-m', 'incentives', 'run']\n"
            "import incentives._startup\n"
            f"os.kill(os.getpid(), signal.{signal_name})\n"
            "import incentives\n"
            "raise SystemExit(0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (status, "", said)


def test_the_start_up_guard_leaves_another_module_run_with_dash_m_alone() -> None:
    # 'python -m payroll_app', whose package imports incentives while sys.argv[0] is
    # still '-m': its Ctrl-C stays a KeyboardInterrupt of its own
    code = ("import signal, sys\n"
            "sys.argv[0] = '-m'\n"
            "sys.orig_argv = [sys.executable, '-m', 'payroll_app']\n"
            "import incentives\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_start_up_guard_leaves_a_library_user_s_signals_alone() -> None:
    code = ("import signal\n"
            "import incentives\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
            "from incentives.cli import main\n"
            "assert main(['validate', '/nonexistent.yaml']) == 2\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_command_still_cleans_up_on_sigint_after_the_start_up_guard(
        plan: Path, tmp_path: Path) -> None:
    # the guard hands the signals over: a run interrupted later removes its files
    import signal
    import time

    records = _many(tmp_path / "many.jsonl", 60000)
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, "-m", "incentives", "run", str(plan),
                             str(records), "--state", str(state), "--out",
                             str(tmp_path / "out.json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "state.json.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # the command holds the state's lock: it has taken the signals
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out, err) == (130, "", "interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "many.jsonl", "plan.yaml", "state.json.lock"]


#: Where a signal may land while a command runs: in code compiled from a string (as
#: dataclasses and namedtuple build their methods while a module is imported
#: lazily), and in a class being made (a field's ``__set_name__``).
_LANDINGS = {
    "exec": 'exec("import os, signal\\nos.kill(os.getpid(), SIGNAL)\\nwhile True: pass")',
    "set_name": ("class Field:\n"
                 "    def __set_name__(self, owner, name):\n"
                 "        os.kill(os.getpid(), SIGNAL)\n"
                 "        while True: pass\n"
                 "class Record:\n"
                 "    total = Field()"),
}


@pytest.mark.parametrize("landing", sorted(_LANDINGS))
@pytest.mark.parametrize(("name", "status", "caught"), [("SIGINT", 130, "Interrupted"),
                                                        ("SIGTERM", 143, "Terminated")])
def test_a_signal_landing_inside_python_s_machinery_still_ends_the_command_as_that_signal(
        tmp_path: Path, landing: str, name: str, status: int, caught: str) -> None:
    # Ctrl-C arriving while a module imported lazily made its dataclasses: the run
    # cleaned up and said "interrupted", then died by SIGINT (status -2), because
    # CPython takes a KeyboardInterrupt leaving exec() of a string for an unhandled
    # one; and one arriving in a __set_name__ came out as a RuntimeError (exit 1)
    body = _LANDINGS[landing].replace("SIGNAL", f"signal.{name}")
    (tmp_path / "landing.py").write_text(
        "import os, signal, sys\n"
        "from incentives.ledger_cli import Terminated, clean_exit_on_signals\n"
        "try:\n"
        "    with clean_exit_on_signals():\n"
        + "".join(f"        {line}\n" for line in body.splitlines()) +
        "except KeyboardInterrupt as exc:\n"
        "    print(type(exc).__name__)\n"
        "    raise SystemExit(130)\n"
        "except Terminated as exc:\n"
        "    print(type(exc).__name__)\n"
        "    raise SystemExit(143)\n", encoding="utf-8")
    # run with -m, as the command line is: the interpreter's exit then checks its mark
    done = subprocess.run([sys.executable, "-m", "landing"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert (done.returncode, done.stdout) == (status, caught + "\n"), done.stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_the_leftover_of_a_killed_run_not_yet_waited_for_is_removed(
        plan: Path, tmp_path: Path) -> None:
    # a run killed with SIGKILL whose parent has not waited for it yet (a zombie) was
    # taken for a live writer: its temporary file was "left in place"
    import signal
    import time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leftover = tmp_path / f".out.json.incentives-tmp-{child.pid}-k2j9x0aa.tmp"
        leftover.write_text("half a run", encoding="utf-8")
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until it is a zombie (not collected yet)
            with open(f"/proc/{child.pid}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        done = _cli("run", plan, _records(tmp_path / "june.jsonl", "2026-06"),
                    "--out", tmp_path / "out.json")
        assert done.returncode == 0
        assert done.stderr == (f"note: {leftover}: removed, a temporary file left by an "
                               f"interrupted run (process {child.pid}) writing "
                               f"{tmp_path / 'out.json'}\n")
        assert not leftover.exists()
    finally:
        child.kill()
        child.wait()


def test_a_simulate_report_folder_that_would_replace_an_input_is_refused(
        tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "report"
    report.mkdir()
    plan = report / "report.md"  # the report writes report.md: it would replace the plan
    plan.write_text(PLAN_YAML, encoding="utf-8")
    done = _cli("simulate", plan, "--synthetic", "5", "--out", report)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"error: --out {report}: the report would replace {plan}, the "
                           "plan file read by this command: give another folder\n")
    assert plan.read_text(encoding="utf-8") == PLAN_YAML
    assert sorted(p.name for p in report.iterdir()) == ["report.md"]


def test_schema_refuses_a_read_only_out(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    target.write_text("kept\n", encoding="utf-8")
    target.chmod(0o444)
    done = _cli("schema", "--out", target)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (f"error: --out {target}: the file is read-only; refusing to "
                           "replace it (make it writable, or give another file)\n")
    assert target.read_text(encoding="utf-8") == "kept\n"


@pytest.mark.parametrize("command", ["run", "stream"])
def test_a_state_with_two_names_is_refused(plan: Path, tmp_path: Path, command: str) -> None:
    # a hard link: the run replaced one name, the other kept the old state, and the same
    # period run on the other name was paid again (both runs exit 0)
    state = tmp_path / "state.json"
    june = _records(tmp_path / "june.jsonl", "2026-06")
    assert _cli("run", plan, _records(tmp_path / "may.jsonl", "2026-05"),
                "--state", state).returncode == 0
    other = tmp_path / "other.json"
    os.link(state, other)
    before = state.read_text(encoding="utf-8")
    for given in (state, other):
        done = _cli(command, plan, june, "--state", given)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == (
            f"error: --state {given}: the state file has 2 names (hard links); a run "
            "replaces the file it names, so the others would keep the old state and a "
            "period run on them would be paid again: keep one name (a symbolic link may "
            "point to it)\n")
    assert state.read_text(encoding="utf-8") == other.read_text(encoding="utf-8") == before
    other.unlink()
    done = _cli(command, plan, june, "--state", state)
    assert done.returncode == 0, done.stderr
    assert _closed(state) == ["2026-05", "2026-06"]


@pytest.mark.parametrize("wait", ["1_0", "\u0663", "\uff15", "0x10", "5 s"])
def test_wait_is_written_in_ascii_digits(plan: Path, tmp_path: Path, wait: str) -> None:
    # float() took "1_0" as 10 and "\u0663" (Arabic-Indic three) as 3
    state = tmp_path / "state.json"
    done = _cli("run", plan, _records(tmp_path / "june.jsonl", "2026-06"), "--state", state,
                "--wait", wait)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.endswith(
        f"incentives run: error: argument --wait: not a number of seconds: {wait!r}\n")
    assert not state.exists()


@pytest.mark.parametrize("wait", ["2.5", ".5", "1e1", " 5", "0"])
def test_wait_takes_ordinary_numbers(plan: Path, tmp_path: Path, wait: str) -> None:
    state = tmp_path / "state.json"
    done = _cli("run", plan, _records(tmp_path / "june.jsonl", "2026-06"), "--state", state,
                "--wait", wait)
    assert (done.returncode, done.stderr) == (0, "")
    assert _closed(state) == ["2026-06"]


@pytest.mark.parametrize(("command", "option"), [
    ("run", "--state"), ("run", "--out"), ("stream", "--state"), ("stream", "--out"),
    ("stream", "--errors"), ("correct", "--state")])
def test_an_empty_file_name_is_refused(plan: Path, tmp_path: Path, command: str,
                                       option: str) -> None:
    # "--state $STATE" with STATE unset: the run paid the period and closed it nowhere,
    # exit 0, so it could be paid again
    june = _records(tmp_path / "june.jsonl", "2026-06")
    extra = ["--paid", june, "--state", tmp_path / "state.json"] if command == "correct" \
        and option != "--state" else (["--paid", june] if command == "correct" else [])
    done = _cli(command, plan, june, *extra, option, "")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"error: {option} '' names no file: give a file name\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["june.jsonl", "plan.yaml"]


# ---------------------------------------------------------------------- leftovers


def test_a_fifo_named_like_a_leftover_does_not_hang_the_next_run(
        plan: Path, tmp_path: Path) -> None:
    # the leftover check opened it to test its lock: opening a FIFO waits for a writer
    fifo = tmp_path / ".out.json.incentives-tmp-999999999-aaaaaaaa.tmp"
    os.mkfifo(fifo)
    done = _cli("run", plan, _records(tmp_path / "june.jsonl", "2026-06"),
                "--out", tmp_path / "out.json")
    assert (done.returncode, done.stderr) == (
        0, f"note: {fifo}: removed, a temporary file left by an interrupted run "
           f"(process 999999999) writing {tmp_path / 'out.json'}\n")
    assert not os.path.lexists(fifo)


def test_a_fifo_as_the_lock_of_a_spill_folder_does_not_hang_the_next_stream(
        plan: Path, tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    left = spill / "incentives-stream-999999999-bbbbbbbb"
    left.mkdir(parents=True)
    os.mkfifo(left / ".lock")
    done = _cli("stream", plan, _records(tmp_path / "june.jsonl", "2026-06"),
                "--spill-dir", spill)
    assert (done.returncode, done.stderr) == (
        0, f"note: {left}: removed, the spill folder of an interrupted stream "
           "(process 999999999)\n")
    assert list(spill.iterdir()) == []


# ---------------------------------------------------------------------- standard output


def test_a_run_whose_reader_goes_away_does_not_close_the_period(
        plan: Path, tmp_path: Path) -> None:
    # 'incentives run ... --state S | consumer' with a consumer that stops reading: Python
    # cut the large write short without an error, exit 0, and the state closed a period
    # whose output nobody got
    records = _many(tmp_path / "many.jsonl", 20000)
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, "-m", "incentives", "run", str(plan),
                             str(records), "--state", str(state), "--format", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.read(8) == b"payee,pe"
    proc.stdout.close()  # the reader goes away: the rest (hundreds of KB) cannot be written
    err = proc.stderr.read().decode()
    assert (proc.wait(timeout=120), err) == (2, "error: Broken pipe\n")
    assert not state.exists()
    done = _cli("run", plan, records, "--state", state, "--format", "csv")
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 20001
    assert _closed(state) == ["2026-06"]


@pytest.mark.parametrize("command", ["run", "stream"])
def test_output_standard_output_cannot_encode_is_an_error_not_a_traceback(
        plan: Path, tmp_path: Path, command: str) -> None:
    records = tmp_path / "zh.jsonl"
    records.write_text('{"payee": "张三", "period": "2026-06", "metrics": {"sales": "1"}}\n',
                       encoding="utf-8")
    state = tmp_path / "state.json"
    done = subprocess.run([sys.executable, "-m", "incentives", command, str(plan),
                           str(records), "--state", str(state)], capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("error: the output holds '\\u5f20\\u4e09', which standard output "
                           "(ascii) cannot show: give --out FILE (written in UTF-8), or set "
                           "PYTHONIOENCODING=utf-8\n")
    assert not state.exists()


def test_save_state_file_refuses_a_read_only_state(tmp_path: Path) -> None:
    # the Python API replaced a state file its owner had made read-only (chmod a-w)
    from incentives import State, UsageError, load_plan
    from incentives.ledger import save_state_file

    path = tmp_path / "state.json"
    path.write_text("kept\n", encoding="utf-8")
    path.chmod(0o444)
    with pytest.raises(UsageError) as caught:
        save_state_file(State.empty(load_plan(PLAN_YAML)), path)
    assert str(caught.value) == (f"state file {path}: the file is read-only; refusing to "
                                 "replace it (make it writable, or give another file)")
    assert path.read_text(encoding="utf-8") == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_python_api_treats_a_linked_state_as_the_file_it_points_to(
        tmp_path: Path) -> None:
    # save_state_file replaced the link with a file (the real state kept the old
    # ledger), and locked_state locked LINK.lock while the command line locks REAL.lock
    from incentives import State, StateError, load_plan
    from incentives.ledger import load_state_file, locked_state, save_state_file

    plan = load_plan(PLAN_YAML)
    real = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(real.name)
    state = State.empty(plan)
    state.closed.append({"period": "2026-06", "plan_version": "1"})
    save_state_file(state, link)
    assert link.is_symlink()
    assert load_state_file(real, plan).periods == ["2026-06"]
    with locked_state(real), pytest.raises(StateError) as caught, locked_state(link, wait=0):
        pass
    assert str(caught.value) == (
        f"{link}: the state file is in use by another run (it holds {real}.lock); waited "
        "0 s. Run again once it has finished, or give --wait SECONDS to wait longer")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json",
                                                          "real.json.lock"]


def test_two_corrections_started_together_post_one_adjustment(plan: Path,
                                                               tmp_path: Path) -> None:
    state, paid, fixed = _june_paid_and_fixed(plan, tmp_path, "paid.json")
    command = [sys.executable, "-m", "incentives", "correct", str(plan), str(fixed),
               "--paid", str(paid), "--state", str(state), "--wait", "60"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = sorted((p.communicate(timeout=120)[0], p.returncode) for p in procs)
    assert outs == [
        ("a 2026-06 commission: paid 10.00, corrected 30.00, adjustment 20.00\n", 0),
        ("no differences: nothing to adjust\n", 0)]
    ledger = json.loads(state.read_text(encoding="utf-8"))["payees"]["a"]
    assert [a["amount"] for a in ledger["_adjustments"]] == ["20.00"]
