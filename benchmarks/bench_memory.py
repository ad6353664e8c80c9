"""Peak memory of ``incentives run`` in each output format, as whole processes.

Run::

    python benchmarks/bench_memory.py                  # 50,000 payees x 12 months
    BENCH_QUICK=1 python benchmarks/bench_memory.py    # 2,000 payees x 3 months
    python benchmarks/bench_memory.py --baseline SRC   # also the code in SRC (a checkout's
                                                       # src folder), for before/after

It writes one JSONL file of records for the bundled telecom plan
(``examples/telecom/plan.yaml``, records sorted by period as an export is), then
runs ``incentives run`` once per output format: JSON (every line's details) and
CSV to a file and to standard output, Parquet, a SQLite database, and a workbook
(a workbook holds at most 1,048,575 rows a sheet: at 600,000 payee-periods the
lines sheet would hold 2,400,000, which ``run`` refuses, as it always has, once it
knows the count; the workbook is also written at 20,000 payees x 12 months, which
fits). Each line prints the peak resident memory (``ru_maxrss`` of the finished
child) and its CPU time (user + system). The goal: under 1 GB in every format.
With ``--baseline``, ``run --format csv`` is also timed with the other code, in the
same run, and its line says the CPU ratio (not JSON: the code before this change
holds about 10 GB for it at this size).

A last run reads the same records shuffled by payee (each payee's months
together): ``run`` then falls back to holding every record (the records are read
again); its output must be the same bytes, which the script checks.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLAN = ROOT / "examples" / "telecom" / "plan.yaml"
sys.path.insert(0, str(HERE))

from bench_cli import make_records  # noqa: E402

GB = 1 << 30


def timed(cmd: list[str], env: dict[str, str] | None = None, *,
          stdout: int | None = subprocess.DEVNULL) -> tuple[float, int, int]:
    """CPU seconds, peak RSS (bytes) and exit status of one whole process."""
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1, 2):
        sys.stderr.write(err.decode(errors="replace"))
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, code


def line(label: str, cpu: float, rss: int, code: int, note: str = "") -> None:
    mark = "ok" if rss < GB else "OVER 1 GB"
    print(f"{label:<44} cpu {cpu:7.1f} s  peak RSS {rss / (1 << 20):7.0f} MB  "
          f"exit {code}  {mark}{('  ' + note) if note else ''}", flush=True)


def by_payee(src: Path, dst: Path) -> None:
    """The same records, each payee's months together (not in period order)."""
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    months = 0
    first = lines[0].split('"period": ')[1][:10]
    while months < len(lines) and lines[months].split('"period": ')[1][:10] == first:
        months += 1
    per = months  # payees per month
    n = len(lines) // per
    with dst.open("w", encoding="utf-8") as f:
        for i in range(per):
            for m in range(n):
                f.write(lines[m * per + i])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", help="another checkout's src folder, timed too")
    opts = ap.parse_args()
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    payees, months = (2_000, 3) if quick else (50_000, 12)
    xlsx_payees = 2_000 if quick else 20_000
    cli = [sys.executable, "-m", "incentives"]
    base_env = None
    if opts.baseline:
        base_env = {**os.environ, "PYTHONPATH": os.path.abspath(opts.baseline),
                    "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        records = d / "records.jsonl"
        make_records(records, payees, months)
        size = f"{payees:,} x {months}"
        print(f"incentives run, {payees * months:,} payee-periods ({size}), "
              f"telecom plan, records sorted by period", flush=True)
        run = [*cli, "run", str(PLAN), str(records)]
        for fmt in ("csv", "json"):
            out = d / f"out.{fmt}"
            cpu, rss, code = timed([*run, "--format", fmt, "--out", str(out)])
            note = ""
            if base_env is not None and fmt == "csv":  # a json baseline holds ~10 GB here
                ref = d / f"base.{fmt}"
                bcpu, brss, _bcode = timed([*run, "--format", fmt, "--out", str(ref)], base_env)
                same = filecmp.cmp(out, ref, shallow=False)
                note = (f"baseline cpu {bcpu:.1f} s, peak RSS {brss / (1 << 20):.0f} MB, "
                        f"cpu ratio {cpu / bcpu:.2f}, output {'identical' if same else 'DIFFERS'}")
                ref.unlink()
            line(f"run --format {fmt} --out FILE", cpu, rss, code, note)
            out.unlink()
        for fmt in ("csv", "json"):
            cpu, rss, code = timed([*run, "--format", fmt])
            line(f"run --format {fmt} (to stdout)", cpu, rss, code)
        cpu, rss, code = timed([*run, "--out", str(d / "out.parquet")])
        line("run --out FILE.parquet", cpu, rss, code)
        cpu, rss, code = timed([*run, "--out", f"sqlite:///{d / 'pay.db'}?table=pay"])
        line("run --out sqlite:///pay.db?table=pay", cpu, rss, code)
        cpu, rss, code = timed([*run, "--out", str(d / "out.xlsx")])
        line("run --out FILE.xlsx", cpu, rss, code,
             "refused: the lines sheet would hold more rows than Excel's" if code == 2 else "")
        small = d / "small.jsonl"
        make_records(small, xlsx_payees, months)
        cpu, rss, code = timed([*cli, "run", str(PLAN), str(small), "--out",
                                str(d / "small.xlsx")])
        line(f"run --out FILE.xlsx ({xlsx_payees:,} x {months})", cpu, rss, code)
        sorted_out = d / "sorted.csv"
        timed([*run, "--format", "csv", "--out", str(sorted_out)])
        shuffled = d / "by-payee.jsonl"
        by_payee(records, shuffled)
        records.unlink()
        cpu, rss, code = timed([*cli, "run", str(PLAN), str(shuffled), "--format", "csv",
                                "--out", str(d / "shuffled.csv")])
        same = filecmp.cmp(sorted_out, d / "shuffled.csv", shallow=False)
        line("run --format csv, records by payee (held)", cpu, rss, code,
             "output identical to the sorted records'" if same else "OUTPUT DIFFERS")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
