"""Determinism: the same inputs give the same JSON bytes, whatever the record order
or the hash seed; a failed or interrupted run leaves no partial output file."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import incentives.cli
import incentives.output
from incentives import load_plan
from incentives.fileio import atomic_write
from incentives.records import read_records_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [
    ("telecom", "records.jsonl"),
    ("bank", "records.json"),
    ("tobacco", "records.jsonl"),
]
SEVERAL_PERIODS = ("telecom", "records.jsonl+records-2026-06.jsonl+records-2026-07.jsonl")


def _json(example: str, records: list[Any]) -> str:
    plan = load_plan(ROOT / "examples" / example / "plan.yaml")
    return plan.evaluate(records, errors="collect").to_json()


@pytest.mark.parametrize(("example", "records"), [*EXAMPLES, SEVERAL_PERIODS])
def test_same_bytes_across_runs_and_record_orders(example: str, records: str) -> None:
    rows = [r for name in records.split("+")
            for r in read_records_file(ROOT / "examples" / example / name)]
    assert len(rows) >= 2
    first = _json(example, rows)
    assert json.loads(first)["results"]
    assert _json(example, rows) == first
    rng = random.Random(20260501)
    for _ in range(5):
        shuffled = list(rows)
        rng.shuffle(shuffled)
        assert _json(example, shuffled) == first
    assert _json(example, list(reversed(rows))) == first


def test_same_bytes_across_record_orders_with_errors() -> None:
    """Error reports are part of the bytes: they are listed by period, payee and field,
    not in the order the records arrived in."""
    plan = load_plan(ROOT / "examples" / "telecom" / "plan.yaml")
    rows = read_records_file(ROOT / "examples" / "telecom" / "records.jsonl")
    bad = [{"payee": "zz", "period": "2026-05", "metrics": {"traffic_revenue": "NaN"}},
           {"payee": "aa", "period": "2026-05", "metrics": {"traffic_revenue": "-1"}},
           {"payee": "mm", "period": "2026-05", "metrics": {}},
           {"period": "2026-05", "metrics": {}},
           "not a record"]
    first = plan.evaluate([*rows, *bad], errors="collect").to_json()
    rng = random.Random(7)
    for _ in range(30):
        mixed = [*rows, *bad]
        rng.shuffle(mixed)
        assert plan.evaluate(mixed, errors="collect").to_json() == first
    payees = [e["payee"] for e in json.loads(first)["errors"]]
    assert payees[-3:] == ["aa", "mm", "zz"]


@pytest.mark.parametrize(("example", "records"), EXAMPLES)
def test_same_bytes_across_hash_seeds(example: str, records: str, tmp_path: Path) -> None:
    outputs = set()
    for seed in ("0", "1", "42", "4242", "987654321"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-m", "incentives", "run",
             str(ROOT / "examples" / example / "plan.yaml"),
             str(ROOT / "examples" / example / records), "--format", "json"],
            capture_output=True, env=env, cwd=tmp_path, check=False, timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode()
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop())["results"]


# ------------------------------------------------------------------ no partial output


def _args(tmp_path: Path, out: Path) -> list[str]:
    return ["run", str(ROOT / "examples" / "telecom" / "plan.yaml"),
            str(ROOT / "examples" / "telecom" / "records.jsonl"), "--format", "json",
            "--out", str(out)]


def test_a_failed_render_leaves_no_out_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             cli: Callable[..., Any]) -> None:
    out = tmp_path / "pay.json"

    def broken(*args: Any, **options: Any) -> None:
        raise RuntimeError("rendering failed")

    # a run to a file writes each period as it is made (incentives.output)
    monkeypatch.setattr(incentives.output.JsonWriter, "add", broken)
    with pytest.raises(RuntimeError):
        cli(*_args(tmp_path, out))
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_write_keeps_the_old_out_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    cli: Callable[..., Any]) -> None:
    out = tmp_path / "pay.json"
    out.write_text("the previous run\n", encoding="utf-8")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    result = cli(*_args(tmp_path, out))
    assert result.code == 130
    assert out.read_text(encoding="utf-8") == "the previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pay.json"]


def test_a_full_disk_keeps_the_old_out_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           cli: Callable[..., Any]) -> None:
    out = tmp_path / "pay.json"
    out.write_text("the previous run\n", encoding="utf-8")
    real_replace = os.replace

    def no_space(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    result = cli(*_args(tmp_path, out))  # a message and exit 2, not a traceback
    monkeypatch.setattr(os, "replace", real_replace)
    assert (result.code, result.err) == (2, "error: No space left on device\n")
    assert out.read_text(encoding="utf-8") == "the previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pay.json"]


def test_a_successful_run_writes_the_whole_file(tmp_path: Path, cli: Callable[..., Any]) -> None:
    out = tmp_path / "pay.json"
    result = cli(*_args(tmp_path, out))
    assert result.code == 0
    assert json.loads(out.read_text(encoding="utf-8"))["results"]
    assert [p.name for p in tmp_path.iterdir()] == ["pay.json"]


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError, MemoryError])
def test_atomic_write_never_leaves_a_half_written_state_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]) -> None:
    """The ledger's state file is written with atomic_write: a failure part way leaves the
    old state whole and no temporary file behind."""
    state = tmp_path / "state.json"
    atomic_write(state, '{"version": 1, "payees": {}}\n')
    old = state.read_bytes()
    written: list[str] = []

    class Half:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Half:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, text: str) -> int:
            self.handle.write(text[: len(text) // 2])
            written.append(text)
            raise failure()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Half(real_fdopen(*a, **k)))
    with pytest.raises(failure):
        atomic_write(state, '{"version": 1, "payees": {"a": {"draw": "100.00"}}}\n')
    assert written  # the failure happened part way through the write
    assert state.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
