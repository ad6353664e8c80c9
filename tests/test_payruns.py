"""Pay runs that cannot be lost or paid twice (issue 15.1, 15.2, 15.8; issue 14.5).

Real processes on real files: ``python -m incentives`` started with
``subprocess.Popen``, several at once on one state file, killed with SIGKILL,
interrupted with SIGINT and SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from hypothesis import given
from hypothesis import strategies as st

from incentives import State, StateError, load_plan
from incentives.fileio import TEMP_TAG

PLAN_YAML = """\
name: payrun
inputs: {metrics: {sales: {}}}
policies:
  - {type: formula, id: commission, amount: sales * 0.1}
  - {type: accumulate, id: ytd, of: sales, over: year}
"""
PLAN = load_plan(PLAN_YAML)
SALES = {"2026-05": 1000, "2026-06": 2000, "2026-07": 4000}
ENV = dict(os.environ)


def _records(period: str, payees: int = 3) -> list[dict[str, Any]]:
    return [{"payee": f"p{i}", "period": period, "metrics": {"sales": str(SALES[period] + i)}}
            for i in range(payees)]


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _state_after(*periods: str, gaps: str = "refuse") -> str:
    """The state file's text after running ``periods`` one after another."""
    state = State.empty(PLAN)
    for p in periods:
        opening = State.from_json(state.to_json())
        opening.gaps = gaps
        state = PLAN.evaluate(_records(p), state=opening).state
    return state.to_json()


def _cli(*args: Any) -> list[str]:
    return [sys.executable, "-m", "incentives", *map(str, args)]


def _start(*args: Any, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, **kw)


def _finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN_YAML, encoding="utf-8")
    files = {"plan": plan, "state": tmp_path / "state.json"}
    for p in SALES:
        files[p] = _write(tmp_path / f"records-{p}.jsonl", _records(p))
    return files


# ---------------------------------------------------------------------- one writer per state

TRIALS = 20


def test_two_runs_of_the_same_period_at_once_pay_it_once(setup: dict[str, Path],
                                                          tmp_path: Path) -> None:
    """20 trials: two processes run 2026-06 on one state at the same moment. Exactly one
    pays it (exit 0, its output, the state closes 2026-06 once); the other is refused
    (exit 2, naming the period and `incentives correct`) and writes nothing."""
    after_may, after_june = _state_after("2026-05"), _state_after("2026-05", "2026-06")
    state = setup["state"]
    outcomes = []
    for trial in range(TRIALS):
        state.write_text(after_may, encoding="utf-8")
        outs = [tmp_path / f"paid-{trial}-{i}.json" for i in range(2)]
        procs = [_start("run", setup["plan"], setup["2026-06"], "--state", state,
                        "--format", "json", "--out", out, "--wait", "60") for out in outs]
        results = [_finish(p) for p in procs]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 2], results
        winner = next(i for i, r in enumerate(results) if r[0] == 0)
        loser = 1 - winner
        err = results[loser][2]
        assert "period 2026-06 is already closed" in err, err
        assert "incentives correct" in err
        assert "incentives.ledger" not in err
        assert not outs[loser].exists()  # the refused run wrote no output
        paid = json.loads(outs[winner].read_text(encoding="utf-8"))
        assert [r["total"] for r in paid["results"]] == ["200.00", "200.10", "200.20"]
        assert state.read_text(encoding="utf-8") == after_june  # closed once, counted once
        outcomes.append(winner)
    assert len(outcomes) == TRIALS
    assert not list(tmp_path.glob(f"*{TEMP_TAG}*"))


def test_two_runs_of_different_periods_at_once_lose_no_update(setup: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """20 trials: 2026-06 and 2026-07 (with --allow-gap, so that either may close from the
    state closed at 2026-05) started at the same moment on one state file. Without the
    lock both read the same state and the last to write loses the other's period. With
    it they take turns: every run that exits 0 is in the final state, which is byte for
    byte the state of running them one after another in the order they got the lock.
    June first: both close. July first: it closes with its gap recorded, and June is
    refused (exit 2, nothing written) as coming before July."""
    after_may = _state_after("2026-05")
    june_then_july = _state_after("2026-05", "2026-06", "2026-07", gaps="allow")
    july_first = _state_after("2026-05", "2026-07", gaps="allow")
    state = setup["state"]
    orders = {"june first": 0, "july first": 0}
    for trial in range(TRIALS):
        state.write_text(after_may, encoding="utf-8")
        june_out, july_out = tmp_path / f"june-{trial}.json", tmp_path / f"july-{trial}.json"
        june = _start("run", setup["plan"], setup["2026-06"], "--state", state,
                      "--format", "json", "--out", june_out, "--wait", "60")
        july = _start("run", setup["plan"], setup["2026-07"], "--state", state,
                      "--format", "json", "--out", july_out, "--wait", "60", "--allow-gap")
        (june_code, _, june_err), (july_code, _, july_err) = _finish(june), _finish(july)
        assert july_code == 0, july_err
        assert json.loads(july_out.read_text())["results"][0]["total"] == "400.00"
        ytd = json.loads(state.read_text())["payees"]["p0"]["ytd"]
        if june_code == 0:
            orders["june first"] += 1
            assert json.loads(june_out.read_text())["results"][0]["total"] == "200.00"
            assert state.read_text(encoding="utf-8") == june_then_july
            assert ytd == {"periods": 3, "span": "2026", "sum": "7000"}  # 1000 + 2000 + 4000
        else:
            orders["july first"] += 1
            assert june_code == 2, june_err
            assert "period 2026-06 comes before 2026-07" in june_err
            assert not june_out.exists()
            assert state.read_text(encoding="utf-8") == july_first
            assert ytd == {"periods": 2, "span": "2026", "sum": "5000"}  # 1000 + 4000
    assert sum(orders.values()) == TRIALS


def test_a_gap_refused_in_a_race_lands_when_run_again(setup: dict[str, Path],
                                                      tmp_path: Path) -> None:
    """2026-06 and 2026-07 at once, no --allow-gap: June always closes; July closes after
    it, or (when it got the lock first) is refused as a gap and closes when run again."""
    after_june = _state_after("2026-05", "2026-06")
    after_july = _state_after("2026-05", "2026-06", "2026-07")
    state = setup["state"]
    for _ in range(5):
        state.write_text(_state_after("2026-05"), encoding="utf-8")
        june = _start("run", setup["plan"], setup["2026-06"], "--state", state, "--wait", "60")
        july = _start("run", setup["plan"], setup["2026-07"], "--state", state, "--wait", "60")
        (june_code, _, june_err), (july_code, _, july_err) = _finish(june), _finish(july)
        assert june_code == 0, june_err
        if july_code != 0:
            assert july_code == 2, july_err
            assert "period 2026-07 would leave a gap after 2026-05" in july_err
            assert "2026-06 has not been run" in july_err
            assert state.read_text(encoding="utf-8") == after_june
            code, _, err = _finish(_start("run", setup["plan"], setup["2026-07"],
                                          "--state", state))
            assert code == 0, err
        assert state.read_text(encoding="utf-8") == after_july


def test_a_second_run_waits_for_the_lock_or_refuses(setup: dict[str, Path],
                                                    tmp_path: Path) -> None:
    state = setup["state"]
    state.write_text(_state_after("2026-05"), encoding="utf-8")
    before = state.read_bytes()
    lock = FileLock(f"{state}.lock")
    with lock:
        started = time.monotonic()
        code, out, err = _finish(_start("run", setup["plan"], setup["2026-06"], "--state", state,
                                        "--wait", "0.5", "--out", tmp_path / "out.txt"))
        assert time.monotonic() - started >= 0.5
        assert code == 2
        assert err == (f"error: {state}: the state file is in use by another run (it holds "
                       f"{state}.lock); waited 0.5 s. Run again once it has finished, or give "
                       "--wait SECONDS to wait longer\n")
        assert state.read_bytes() == before
        assert not (tmp_path / "out.txt").exists()
        # a run that may wait long enough goes on when the lock is let go
        waiting = _start("run", setup["plan"], setup["2026-06"], "--state", state,
                         "--wait", "60", "--format", "csv")
        time.sleep(1.5)
        assert waiting.poll() is None  # still waiting
    code, out, err = _finish(waiting)
    assert code == 0, err
    assert out.splitlines()[1] == "p0,2026-06,,200.00,200.00,,"
    assert json.loads(state.read_text())["closed"][-1]["period"] == "2026-06"


@pytest.mark.parametrize("command", ["run", "stream", "correct"])
def test_every_command_that_writes_a_state_takes_its_lock(
        cli: Callable[..., Any], setup: dict[str, Path], tmp_path: Path, command: str) -> None:
    """run, stream and correct each refuse (exit 2, nothing written) while another
    process holds the state file's lock."""
    state = setup["state"]
    paid = tmp_path / "paid.json"
    assert cli("run", setup["plan"], setup["2026-05"], "--state", state, "--format", "json",
               "--out", paid).code == 0
    before = state.read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; "
         "lock = FileLock(sys.argv[1]); lock.acquire(); print('held', flush=True); "
         "time.sleep(60)", f"{state}.lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        records = setup["2026-05"] if command == "correct" else setup["2026-06"]
        extra = ["--paid", paid] if command == "correct" else []
        res = cli(command, setup["plan"], records, "--state", state, "--wait", "0.2", *extra)
        assert res.code == 2
        assert res.err == (f"error: {state}: the state file is in use by another run (it "
                           f"holds {state}.lock); waited 0.2 s. Run again once it has "
                           "finished, or give --wait SECONDS to wait longer\n")
        assert state.read_bytes() == before
    finally:
        holder.kill()
        holder.communicate()
    # the holder is gone (killed): its lock went with it
    res = cli(command, setup["plan"], records, "--state", state, "--wait", "5", *extra)
    assert res.code == 0, res.err


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "soon", "100000"])
def test_wait_must_be_a_number_of_seconds(setup: dict[str, Path], wait: str) -> None:
    code, _, err = _finish(_start("run", setup["plan"], setup["2026-06"], "--state",
                                  setup["state"], "--wait", wait))
    assert code == 2
    assert "argument --wait" in err
    assert not setup["state"].exists()


# ---------------------------------------------------------------------- periods in order


def test_periods_close_in_order_and_a_gap_must_be_meant(cli: Callable[..., Any],
                                                        setup: dict[str, Path]) -> None:
    state = setup["state"]
    assert cli("run", setup["plan"], setup["2026-05"], "--state", state).code == 0
    before = state.read_bytes()
    res = cli("run", setup["plan"], setup["2026-07"], "--state", state)
    assert res.code == 2
    assert res.out == ""
    assert res.err == (
        "error: period 2026-07 would leave a gap after 2026-05, the last period closed in "
        "this state (2026-06 has not been run): periods close in order; run the missing "
        "period(s) first, or give --allow-gap if the gap is meant (it is recorded in the "
        "state)\n")
    assert state.read_bytes() == before
    # stream refuses it too, before writing any result
    res = cli("stream", setup["plan"], setup["2026-07"], "--state", state)
    assert (res.code, res.out) == (2, "")
    assert "would leave a gap after 2026-05" in res.err
    assert state.read_bytes() == before
    # meant: recorded in the state
    res = cli("run", setup["plan"], setup["2026-07"], "--state", state, "--allow-gap")
    assert res.code == 0, res.err
    closed = json.loads(state.read_text())["closed"]
    assert closed == [{"period": "2026-05", "plan_version": "1"},
                      {"period": "2026-07", "plan_version": "1", "gap_after": "2026-05"}]
    # the state reads back, and the skipped period cannot be run after the later one
    res = cli("run", setup["plan"], setup["2026-06"], "--state", state)
    assert res.code == 2
    assert res.err.startswith("error: period 2026-06 comes before 2026-07, the last period "
                              "closed in this state: periods close in order")
    res = cli("run", setup["plan"], setup["2026-07"], "--state", state)
    assert res.code == 2
    assert "period 2026-07 is already closed" in res.err
    assert "'incentives correct'" in res.err


def test_a_gap_inside_one_run_is_refused(cli: Callable[..., Any], setup: dict[str, Path],
                                         tmp_path: Path) -> None:
    both = _write(tmp_path / "both.jsonl", _records("2026-05") + _records("2026-07"))
    res = cli("run", setup["plan"], both, "--state", setup["state"])
    assert res.code == 2
    assert "period 2026-07 would leave a gap after 2026-05, the period before it here" in res.err
    assert not setup["state"].exists()
    res = cli("run", setup["plan"], both, "--state", setup["state"], "--allow-gap")
    assert res.code == 0, res.err
    assert json.loads(setup["state"].read_text())["closed"][1]["gap_after"] == "2026-05"
    # without a state there is nothing to close: no order to keep
    assert cli("run", setup["plan"], both).code == 0


def test_a_quarter_over_closed_months_is_refused(cli: Callable[..., Any],
                                                 setup: dict[str, Path],
                                                 tmp_path: Path) -> None:
    assert cli("run", setup["plan"], setup["2026-05"], "--state", setup["state"]).code == 0
    quarter = _write(tmp_path / "q.jsonl", [{"payee": "p0", "period": "2026-Q2",
                                             "metrics": {"sales": "1"}}])
    res = cli("run", setup["plan"], quarter, "--state", setup["state"], "--allow-gap")
    assert res.code == 2
    assert "period 2026-Q2 overlaps period 2026-05" in res.err


def test_a_state_with_a_bad_gap_record_is_refused(cli: Callable[..., Any],
                                                  setup: dict[str, Path]) -> None:
    data = json.loads(_state_after("2026-05"))
    data["closed"][0]["gap_after"] = "2026-03"
    setup["state"].write_text(json.dumps(data), encoding="utf-8")
    res = cli("run", setup["plan"], setup["2026-06"], "--state", setup["state"])
    assert res.code == 2
    assert "closed[0]: 'gap_after' must name the period closed before it" in res.err


# ---------------------------------------------------------------------- read-only, folders


@pytest.mark.parametrize("command", ["run", "stream", "correct"])
def test_a_read_only_state_is_refused_before_any_work(cli: Callable[..., Any],
                                                      setup: dict[str, Path],
                                                      tmp_path: Path, command: str) -> None:
    state = setup["state"]
    state.write_text(_state_after("2026-05"), encoding="utf-8")
    state.chmod(0o444)
    before = state.read_bytes()
    extra = ["--paid", tmp_path / "paid.json"] if command == "correct" else []
    # the plan does not even exist: the state is refused before anything is read
    res = cli(command, tmp_path / "no-plan.yaml", setup["2026-06"], "--state", state, *extra)
    assert res.code == 2
    assert res.err == (f"error: --state {state}: the file is read-only; refusing to replace "
                       "it (make it writable, or give another file)\n")
    assert state.read_bytes() == before
    assert oct(state.stat().st_mode & 0o777) == oct(0o444)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(("command", "option"), [
    ("run", "--out"), ("run", "--state"), ("stream", "--out"), ("stream", "--state"),
    ("stream", "--errors"), ("correct", "--state")])
def test_an_output_in_a_missing_folder_is_refused_before_any_work(
        cli: Callable[..., Any], setup: dict[str, Path], tmp_path: Path,
        command: str, option: str) -> None:
    target = tmp_path / "no-such-folder" / "file.json"
    extra = ["--paid", tmp_path / "paid.json"] if command == "correct" else []
    res = cli(command, tmp_path / "no-plan.yaml", setup["2026-06"], option, target, *extra)
    assert res.code == 2
    assert res.err == (f"error: {option} {target}: the folder {target.parent} does not exist "
                       "(create it first)\n")


@pytest.mark.parametrize("target", ["folder", "/dev/null", "same"])
def test_an_output_that_is_not_a_file_is_refused(cli: Callable[..., Any],
                                                 setup: dict[str, Path], tmp_path: Path,
                                                 target: str) -> None:
    if target == "folder":
        res = cli("run", setup["plan"], setup["2026-05"], "--out", tmp_path)
        assert res.err == f"error: --out {tmp_path}: is a folder, not a file\n"
    elif target == "same":
        res = cli("run", setup["plan"], setup["2026-05"], "--out", setup["state"],
                  "--state", setup["state"])
        assert res.err == f"error: --out and --state name the same file: {setup['state']}\n"
    else:
        res = cli("run", setup["plan"], setup["2026-05"], "--out", target)
        assert "not a regular file" in res.err
        assert Path("/dev/null").is_char_device()
    assert res.code == 2
    assert not setup["state"].exists()


# ---------------------------------------------------------------------- modes


def _umask_run(mask: int, *args: Any) -> tuple[int, str, str]:
    proc = subprocess.run(_cli(*args), capture_output=True, text=True, env=ENV,
                          preexec_fn=lambda: os.umask(mask), check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_output_files_follow_the_umask(setup: dict[str, Path], tmp_path: Path,
                                           mask: int, mode: int) -> None:
    out, errors, state = tmp_path / "out.csv", tmp_path / "errors.jsonl", setup["state"]
    code, _, err = _umask_run(mask, "run", setup["plan"], setup["2026-05"], "--format", "csv",
                              "--out", out, "--state", state)
    assert code == 0, err
    assert oct(out.stat().st_mode & 0o777) == oct(mode)
    assert oct(state.stat().st_mode & 0o777) == oct(mode)
    stream_out = tmp_path / "stream.csv"
    code, _, err = _umask_run(mask, "stream", setup["plan"], setup["2026-06"], "--format", "csv",
                              "--out", stream_out, "--errors", errors, "--state", state)
    assert code == 0, err
    for path in (stream_out, errors):
        assert oct(path.stat().st_mode & 0o777) == oct(mode)
    assert oct(state.stat().st_mode & 0o777) == oct(mode)


@pytest.mark.parametrize("command", ["run", "stream"])
def test_a_replaced_state_or_output_keeps_its_mode(setup: dict[str, Path], tmp_path: Path,
                                                   command: str) -> None:
    state, out = setup["state"], tmp_path / "out.txt"
    state.write_text(_state_after("2026-05"), encoding="utf-8")
    out.write_text("old\n", encoding="utf-8")
    state.chmod(0o640)
    out.chmod(0o604)
    code, _, err = _umask_run(0o022, command, setup["plan"], setup["2026-06"], "--state", state,
                              "--out", out)
    assert code == 0, err
    assert json.loads(state.read_text())["closed"][-1]["period"] == "2026-06"
    assert oct(state.stat().st_mode & 0o777) == oct(0o640)
    assert oct(out.stat().st_mode & 0o777) == oct(0o604)
    assert out.read_text() != "old\n"


def test_correct_keeps_the_state_mode_and_corrects_the_first_period(
        cli: Callable[..., Any], setup: dict[str, Path], tmp_path: Path) -> None:
    """The first period has no opening state: `incentives correct` without --opening."""
    state, paid = setup["state"], tmp_path / "paid-2026-05.json"
    res = cli("run", setup["plan"], setup["2026-05"], "--state", state, "--format", "json",
              "--out", paid)
    assert res.code == 0, res.err
    assert cli("run", setup["plan"], setup["2026-06"], "--state", state).code == 0
    state.chmod(0o640)
    fixed = _write(tmp_path / "fixed.jsonl", [{"payee": "p0", "period": "2026-05",
                                               "metrics": {"sales": "1500"}}])
    res = cli("correct", setup["plan"], fixed, "--paid", paid, "--state", state)
    assert res.code == 0, res.err
    assert res.out == "p0 2026-05 commission: paid 100.00, corrected 150.00, adjustment 50.00\n"
    assert oct(state.stat().st_mode & 0o777) == oct(0o640)
    res = cli("run", setup["plan"], setup["2026-07"], "--state", state, "--format", "csv")
    assert res.code == 0, res.err
    assert res.out.splitlines()[:2] == [
        "payee,period,group,commission,adjustment,total,titles,flags",
        "p0,2026-07,,400.00,50.00,450.00,,"]
    # a later period needs the state that opened it
    june = _write(tmp_path / "june-fixed.jsonl", [{"payee": "p0", "period": "2026-06",
                                                   "metrics": {"sales": "2500"}}])
    before = state.read_bytes()
    res = cli("correct", setup["plan"], june, "--paid", paid, "--state", state)
    assert res.code == 2
    assert res.err.startswith("error: --opening is needed: period 2026-06 was opened with the "
                              "state closed by the period before it")
    assert state.read_bytes() == before


# ---------------------------------------------------------------------- crashes


def _big_records(path: Path, period: str, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(f'{{"payee": "p{i:06d}", "period": "{period}", '
                    f'"metrics": {{"sales": "{1000 + i}"}}}}\n')
    return path


def _kill_when_a_temp_file_appears(args: list[Any], folder: Path, name: str) -> tuple[int, Path]:
    """Start a run; SIGKILL it the moment a temporary file for ``name`` appears in
    ``folder``; return its pid and the temporary file."""
    proc = _start(*args)
    prefix = f".{name}{TEMP_TAG}{proc.pid}-"
    deadline = time.monotonic() + 120
    found = None
    while found is None and time.monotonic() < deadline and proc.poll() is None:
        found = next((folder / n for n in os.listdir(folder) if n.startswith(prefix)), None)
    proc.kill()
    proc.communicate()
    assert found is not None, f"no temporary file for {name} was seen"
    return proc.pid, found


@pytest.mark.parametrize("during", ["out", "state.json"])
def test_a_run_killed_while_writing_leaves_the_old_files_and_the_next_run_cleans_up(
        setup: dict[str, Path], tmp_path: Path, during: str) -> None:
    """SIGKILL during a large --out (8 MB) or --state (2 MB) write: the old output and
    state are intact, the temporary file is recognisable, and the next run removes it
    and says so."""
    n = 25000
    big05 = _big_records(tmp_path / "big-05.jsonl", "2026-05", n)
    big06 = _big_records(tmp_path / "big-06.jsonl", "2026-06", n)
    out, state = tmp_path / "out", setup["state"]
    code, _, err = _finish(_start("run", setup["plan"], big05, "--state", state,
                                  "--format", "json", "--out", out))
    assert code == 0, err
    old_out, old_state = out.read_bytes(), state.read_bytes()
    assert len(old_out) > 7_000_000
    assert len(old_state) > 2_000_000
    args = ["run", setup["plan"], big06, "--state", state, "--format", "json", "--out", out]
    for _ in range(3):  # the kill must land before the rename: it does, nearly always
        pid, temp = _kill_when_a_temp_file_appears(args, tmp_path, during)
        if temp.exists():
            break
    else:
        pytest.fail("the run was never caught before its files were in place")
    assert out.read_bytes() == old_out
    assert state.read_bytes() == old_state
    leftovers = sorted(p.name for p in tmp_path.iterdir() if TEMP_TAG in p.name)
    assert temp.name in leftovers
    assert all(f"{TEMP_TAG}{pid}-" in name for name in leftovers)
    # the next run: not blocked by the dead run's lock, and it cleans up and says so
    code, _, err = _finish(_start(*args))
    assert code == 0, err
    for name in leftovers:
        assert (f"note: {tmp_path / name}: removed, a temporary file left by an interrupted "
                f"run (process {pid}) writing ") in err
    assert not [p for p in tmp_path.iterdir() if TEMP_TAG in p.name]
    assert json.loads(state.read_text())["closed"][-1]["period"] == "2026-06"
    assert json.loads(out.read_text())["results"][0]["period"] == "2026-06"


def test_a_live_writers_temporary_file_is_left_alone(tmp_path: Path) -> None:
    from incentives.fileio import StagedFile, clean_leftovers

    target = tmp_path / "out.json"
    staged = StagedFile(target)
    staged.handle.write("half")
    try:
        assert Path(staged.tmp).name.startswith(f".out.json{TEMP_TAG}{os.getpid()}-")
        notes = clean_leftovers(target)
        assert notes == [f"{staged.tmp}: a temporary file of process {os.getpid()}, which is "
                         f"still writing {target}; left in place"]
        assert Path(staged.tmp).exists()
    finally:
        staged.discard()
    assert list(tmp_path.iterdir()) == []


def _spill_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith("incentives-stream-")]


def _stream_args(setup: dict[str, Path], records: Path, spill: Path, out: Path) -> list[Any]:
    return ["stream", setup["plan"], records, "--spill-dir", spill, "--out", out,
            "--state", setup["state"]]


def _start_spilling(args: list[Any], spill: Path) -> subprocess.Popen[str]:
    """Start a stream and return once it is spilling records to bucket files."""
    proc = _start(*args, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        folders = _spill_folders(spill)
        if folders and any(p.name != ".lock" for f in folders for p in f.iterdir()):
            return proc
        time.sleep(0.005)
    proc.kill()
    raise AssertionError(f"the stream never spilled: {proc.communicate()}")


@pytest.mark.parametrize(("sig", "code", "message"), [
    (signal.SIGINT, 130, "interrupted\n"), (signal.SIGTERM, 143, "terminated\n")])
def test_stream_removes_its_spill_files_on_sigint_and_sigterm(
        setup: dict[str, Path], tmp_path: Path, sig: int, code: int, message: str) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    records = _big_records(tmp_path / "big.jsonl", "2026-05", 200000)
    out = tmp_path / "out.jsonl"
    proc = _start_spilling(_stream_args(setup, records, spill, out), spill)
    proc.send_signal(sig)
    got, _, err = _finish(proc)
    assert (got, err) == (code, message)
    assert list(spill.iterdir()) == []
    assert not out.exists()
    assert not setup["state"].exists()
    assert not [p for p in tmp_path.iterdir() if TEMP_TAG in p.name]


def test_stream_removes_its_spill_files_on_a_normal_exit_and_a_killed_streams_later(
        setup: dict[str, Path], tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    records = _big_records(tmp_path / "big.jsonl", "2026-05", 200000)
    out = tmp_path / "out.jsonl"
    args = _stream_args(setup, records, spill, out)
    proc = _start_spilling(args, spill)
    proc.kill()
    proc.communicate()
    left = _spill_folders(spill)  # the bucket files and the (period, payee) keys
    assert len(left) == 2
    assert all(f.name.startswith(f"incentives-stream-{proc.pid}-") for f in left)
    # a stream running meanwhile does not touch it... once its writer is gone it goes
    small = _write(tmp_path / "small.jsonl", _records("2026-05"))
    code, _, err = _finish(_start(*_stream_args(setup, small, spill, out)))
    assert code == 0, err
    for folder in left:
        assert (f"note: {folder}: removed, the spill folder of an interrupted stream "
                f"(process {proc.pid})") in err
    assert list(spill.iterdir()) == []
    assert len(out.read_text().splitlines()) == 3


# ---------------------------------------------------------------------- order, as a property


@given(st.lists(st.integers(1, 12), max_size=8), st.booleans())
def test_periods_close_once_and_in_order_whatever_is_run(months: list[int], allow: bool) -> None:
    """Whatever months are run, in whatever order: each accepted month comes after the
    last closed one, none is closed twice, a refused one changes nothing; without
    --allow-gap the closed months follow each other, with it every gap is recorded."""
    state = State.empty(PLAN)
    state.gaps = "allow" if allow else "refuse"
    for m in months:
        period = f"2026-{m:02d}"
        last = int(state.periods[-1][5:]) if state.periods else None
        before = state.to_json()
        try:
            state = PLAN.evaluate([{"payee": "a", "period": period,
                                    "metrics": {"sales": "1"}}], state=state).state
            message = None
        except StateError as exc:
            message = str(exc)
        if message is None:
            assert last is None or m > last
            assert allow or last is None or m == last + 1
            continue
        assert state.to_json() == before
        if last is not None and m <= last:
            assert (f"period {period} is already closed" in message) == (period in state.periods)
        else:
            assert not allow
            assert last is not None
            assert m > last + 1
            assert f"would leave a gap after 2026-{last:02d}" in message
    closed = [int(p[5:]) for p in state.periods]
    assert closed == sorted(set(closed))
    for before, entry in zip(state.closed, state.closed[1:], strict=False):
        gap = int(entry["period"][5:]) > int(before["period"][5:]) + 1
        assert entry.get("gap_after") == (before["period"] if gap else None)
    assert State.from_json(state.to_json()).to_json() == state.to_json()


@pytest.mark.parametrize(("command", "option", "read"), [
    ("run", "--out", "records"), ("run", "--state", "records"), ("run", "--out", "plan"),
    ("stream", "--out", "records"), ("stream", "--errors", "records")])
def test_an_output_naming_a_file_the_command_reads_is_refused(
        cli: Callable[..., Any], setup: dict[str, Path], command: str, option: str,
        read: str) -> None:
    records = setup["2026-05"]
    before = {p: p.read_bytes() for p in (records, setup["plan"])}
    target = records if read == "records" else setup["plan"]
    res = cli(command, setup["plan"], records, option, target)
    assert res.code == 2
    assert res.err == (f"error: {option} {target} is the {read} file read by this command: "
                       "give another file for the output\n")
    assert {p: p.read_bytes() for p in before} == before  # nothing was replaced


def test_a_state_given_through_a_link_is_the_file_it_points_to(
        cli: Callable[..., Any], setup: dict[str, Path], tmp_path: Path) -> None:
    # the link is followed: the state it points to is locked, read and replaced (keeping
    # its mode); the link stays a link, so the next run through either name sees June
    real = tmp_path / "ledger" / "state.json"
    real.parent.mkdir()
    assert cli("run", setup["plan"], setup["2026-05"], "--state", real).code == 0
    real.chmod(0o640)
    link = tmp_path / "state-link.json"
    link.symlink_to(real)
    assert cli("run", setup["plan"], setup["2026-06"], "--state", link).code == 0
    assert link.is_symlink()
    assert real.stat().st_mode & 0o777 == 0o640
    assert real.read_text(encoding="utf-8") == _state_after("2026-05", "2026-06")
    again = cli("run", setup["plan"], setup["2026-06"], "--state", real)
    assert again.code == 2
    assert "2026-06" in again.err
