"""The path users take: whole ``incentives`` processes against a hand-written program.

Run::

    python benchmarks/bench_cli.py                  # 1,000 / 10,000 / 100,000 payees x 12
    BENCH_QUICK=1 python benchmarks/bench_cli.py    # 300 / 1,000 / 3,000 payees x 3
    BENCH_SIZES=1000,10000 python benchmarks/bench_cli.py   # the sizes named
    BENCH_RUNS=1 python benchmarks/bench_cli.py     # one run of each (default 3; 1 past
                                                    # 200,000 payee-periods)

At each size it writes one JSONL file of records for the bundled telecom plan
(``examples/telecom/plan.yaml``: marginal tiers, new business by product, a
capped churn penalty, a floor), then times, as whole processes and interleaved
in the same run, the least CPU time (user + system, from the operating system's
accounting of the finished child) of each command, and its peak memory:

- the hand-written program (``handwritten_telecom.py``: a careful hand-written
  Decimal program for this one plan) writing CSV, then JSON and JSON Lines at
  ``--details lines`` and ``full`` (every line's details, worked out by hand);
- ``incentives run --format csv``, ``stream --format csv``;
- ``incentives run --format json --details lines``, ``stream --format jsonl
  --details lines``;
- ``incentives run --format json`` (``--details full``, the default), ``stream
  --format jsonl``.

Each ``incentives`` command is compared with the hand-written program writing the
same output (its *baseline*), which it must match byte for byte: the script
prints an agreement line for each and exits 1 on any difference. It prints,
per size, each command's CPU seconds, its ratio to its baseline and its peak
RSS; then each command's cost per payee-period at each size and the spread of
those costs (largest over smallest, minus one); then ``ratio ...`` lines
(``ratio NAME@PAYEES VALUE``: a command over its baseline, and ``stream`` over
``run`` for the same output).
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLAN = ROOT / "examples" / "telecom" / "plan.yaml"

#: name: (its arguments: the subcommand first for incentives; its baseline; its output file)
COMMANDS: dict[str, tuple[list[str], str, str]] = {
    "hand csv": (["--format", "csv"], "hand csv", "hand.csv"),
    "run csv": (["run", "--format", "csv"], "hand csv", "run.csv"),
    "stream csv": (["stream", "--format", "csv"], "hand csv", "stream.csv"),
    "hand json lines": (["--format", "json", "--details", "lines"], "hand json lines",
                        "hand-lines.json"),
    "run json lines": (["run", "--format", "json", "--details", "lines"], "hand json lines",
                       "run-lines.json"),
    "hand jsonl lines": (["--format", "jsonl", "--details", "lines"], "hand jsonl lines",
                         "hand-lines.jsonl"),
    "stream jsonl lines": (["stream", "--format", "jsonl", "--details", "lines"],
                           "hand jsonl lines", "stream-lines.jsonl"),
    "hand json full": (["--format", "json", "--details", "full"], "hand json full",
                       "hand-full.json"),
    "run json full": (["run", "--format", "json", "--details", "full"], "hand json full",
                      "run-full.json"),
    "hand jsonl full": (["--format", "jsonl", "--details", "full"], "hand jsonl full",
                        "hand-full.jsonl"),
    "stream jsonl full": (["stream", "--format", "jsonl", "--details", "full"],
                          "hand jsonl full", "stream-full.jsonl"),
}
#: ``stream`` against ``run`` writing the same output (a JSONL line is a JSON entry)
STREAM_VS_RUN = (("stream csv", "run csv"), ("stream jsonl lines", "run json lines"),
                 ("stream jsonl full", "run json full"))


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def sizes() -> list[tuple[int, int]]:
    """(payees, months) of each size."""
    given = os.environ.get("BENCH_SIZES", "").strip()
    months = 3 if quick() else 12
    if given:
        return [(int(x.replace("_", "")), months) for x in given.split(",") if x.strip()]
    return [(300, 3), (1_000, 3), (3_000, 3)] if quick() else [
        (1_000, 12), (10_000, 12), (100_000, 12)]


def make_records(path: Path, payees: int, months: int, *, seed: int = 5) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for m in range(months):
            period = f"2026-{m + 1:02d}"
            for i in range(payees):
                rec: dict[str, object] = {
                    "payee": f"m-{i:06d}", "period": period, "group": f"g{i // 25:04d}",
                    "metrics": {"traffic_revenue": f"{rnd.randint(0, 12_000_000) / 100:.2f}",
                                "new_fax": rnd.randint(0, 3), "new_ipvpn": rnd.randint(0, 2)}}
                if rnd.random() < 0.3:
                    rec["events"] = {"lost_customers": [
                        {"id": f"c-{i}-{k}", "monthly_value": rnd.randint(100, 3000),
                         "reason": rnd.choice(["competitor", "closure", "price"]),
                         "lost": f"{period}-03"}
                        for k in range(rnd.randint(1, 2))]}
                f.write(json.dumps(rec) + "\n")


#: the children's environment: bytecode written as an installed package has it (with
#: PYTHONDONTWRITEBYTECODE set, each run would compile the modules changed since their
#: bytecode was last written again)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str]) -> tuple[float, int]:
    """CPU seconds and peak RSS (KB) of one whole process."""
    pid = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=ENV).pid
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def command(name: str, records: Path, out: Path) -> list[str]:
    args = COMMANDS[name][0]
    if name.startswith("hand "):
        return [sys.executable, str(HERE / "handwritten_telecom.py"), str(records), str(out),
                *args]
    return [sys.executable, "-m", "incentives", args[0], str(PLAN), str(records), *args[1:],
            "--out", str(out)]


def fixed_costs(folder: Path, runs: int = 5) -> dict[str, float]:
    """Each command's fixed cost: the least CPU time of ``runs`` whole processes on a
    file of one record (start-up: the interpreter, the imports, the plan loaded and
    compiled; for the hand-written program, the interpreter and its imports)."""
    one = folder / "one.jsonl"
    make_records(one, 1, 1)
    least: dict[str, float] = {}
    for _ in range(runs):
        for name, (_, _, out) in COMMANDS.items():
            cpu, _ = timed(command(name, one, folder / out))
            least[name] = min(least.get(name, float("inf")), cpu)
    for _, _, out in COMMANDS.values():
        (folder / out).unlink()
    one.unlink()
    return least


def measure(payees: int, months: int, folder: Path
            ) -> tuple[dict[str, tuple[float, int]], dict[str, bool], int]:
    """The least CPU time and the largest peak RSS of each command; whether each
    output equals its baseline's; the number of runs."""
    records = folder / "records.jsonl"
    make_records(records, payees, months)
    n = payees * months
    runs = int(os.environ.get("BENCH_RUNS", "0") or 0) or (3 if n <= 200_000 else 1)
    best: dict[str, tuple[float, int]] = {}
    for _ in range(runs):
        for name, (_, _, out) in COMMANDS.items():
            cpu, rss = timed(command(name, records, folder / out))
            old = best.get(name, (float("inf"), 0))
            best[name] = (min(old[0], cpu), max(old[1], rss))
    same = {}
    for name, (_, baseline, out) in COMMANDS.items():
        if name != baseline:  # compared piece by piece: this process stays small (a
            # child's peak RSS counts what it was when forked from it)
            same[name] = filecmp.cmp(folder / out, folder / COMMANDS[baseline][2],
                                     shallow=False)
    for _, _, out in COMMANDS.values():
        (folder / out).unlink()
    records.unlink()
    return best, same, runs


def main() -> int:
    every: dict[int, dict[str, tuple[float, int]]] = {}
    periods: dict[int, int] = {}
    agree = True
    for payees, months in sizes():
        n = payees * months
        with tempfile.TemporaryDirectory() as tmp:
            best, same, runs = measure(payees, months, Path(tmp))
        every[payees], periods[payees] = best, n
        print(f"{payees:,} payees x {months} months ({n:,} payee-periods), the least CPU "
              f"time of {runs} whole-process run(s) each:", flush=True)
        for name, (cpu, rss) in best.items():
            base = COMMANDS[name][1]
            ratio = cpu / best[base][0]
            what = "" if name == base else f" (vs {base})"
            print(f"  {name:<19} {cpu:7.2f} s  {ratio:5.2f}x{what:<20}  peak RSS "
                  f"{rss / 1024:,.0f} MB  {cpu / n * 1e6:6.1f} us/payee-period")
        for name, ok in same.items():
            print(f"agreement: {name} = {COMMANDS[name][1]} byte for byte: {ok}")
            agree = agree and ok
    if len(every) > 1:
        print("cost per payee-period (CPU microseconds) at each size, and its spread "
              "(largest / smallest - 1):")
        for name in COMMANDS:
            costs = [every[p][name][0] / periods[p] * 1e6 for p in every]
            shown = ", ".join(f"{p:,}: {c:.1f}" for p, c in zip(every, costs, strict=True))
            print(f"  {name:<19} {shown}  spread {max(costs) / min(costs) - 1:.0%}")
        with tempfile.TemporaryDirectory() as tmp:
            fixed = fixed_costs(Path(tmp))
        print("the same, net of each command's fixed cost (its least CPU time on a file of "
              "one record: start-up, imports, the plan compiled):")
        for name in COMMANDS:
            costs = [(every[p][name][0] - fixed[name]) / periods[p] * 1e6 for p in every]
            shown = ", ".join(f"{p:,}: {c:.1f}" for p, c in zip(every, costs, strict=True))
            print(f"  {name:<19} fixed {fixed[name]:5.2f} s  {shown}  spread "
                  f"{max(costs) / min(costs) - 1:.0%}")
    for p, best in every.items():
        for name, (_, baseline, _) in COMMANDS.items():
            if name != baseline:
                print(f"ratio {name.replace(' ', '_')}_vs_handwritten@{p} "
                      f"{best[name][0] / best[baseline][0]:.2f}")
        for stream, run in STREAM_VS_RUN:
            print(f"ratio {stream.replace(' ', '_')}_vs_{run.replace(' ', '_')}@{p} "
                  f"{best[stream][0] / best[run][0]:.2f}")
    print(f"agreement: every output byte-identical to its hand-written baseline: {agree}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
