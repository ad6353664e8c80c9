"""The path users take: whole ``incentives`` processes against a hand-written program.

Run::

    python benchmarks/bench_cli.py                 # 10,000 payees x 12 months (about 2 minutes)
    BENCH_QUICK=1 python benchmarks/bench_cli.py   # 2,000 payees x 3 months

It writes one JSONL file of records for the bundled telecom plan
(``examples/telecom/plan.yaml``: marginal tiers, new business by product, a
capped churn penalty, a floor), then times, as whole processes and interleaved
in the same run, the least CPU time (user + system, from the operating system's
accounting of the finished child) of three runs each of:

- ``incentives run PLAN RECORDS --format csv --out FILE``;
- ``incentives stream PLAN RECORDS --format csv --out FILE``;
- ``incentives run PLAN RECORDS --format json --out FILE`` (every line's details);
- ``handwritten_telecom.py RECORDS FILE``: a careful hand-written Decimal program
  that writes the same CSV.

Both CSV outputs must be byte-identical to the hand-written program's; the script
exits 1 otherwise. The JSON run carries every line's working, which the
hand-written program does not write: its ratio is labelled as such. Each line
prints a ratio to the hand-written program and the peak memory of the process.
"""

from __future__ import annotations

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


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


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


def timed(cmd: list[str]) -> tuple[float, int]:
    """CPU seconds and peak RSS (KB) of one whole process."""
    pid = subprocess.Popen(cmd, stdout=subprocess.DEVNULL).pid
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> int:
    payees, months = (2_000, 3) if quick() else (10_000, 12)
    runs = 3
    cli = [sys.executable, "-m", "incentives"]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        records = d / "records.jsonl"
        make_records(records, payees, months)
        commands = {
            "handwritten": [sys.executable, str(HERE / "handwritten_telecom.py"), str(records),
                            str(d / "hand.csv")],
            "run csv": [*cli, "run", str(PLAN), str(records), "--format", "csv",
                        "--out", str(d / "run.csv")],
            "stream csv": [*cli, "stream", str(PLAN), str(records), "--format", "csv",
                           "--out", str(d / "stream.csv")],
            "run json": [*cli, "run", str(PLAN), str(records), "--format", "json",
                         "--out", str(d / "run.json")],
        }
        best: dict[str, tuple[float, int]] = {}
        for _ in range(runs):
            for name, cmd in commands.items():
                cpu, rss = timed(cmd)
                old = best.get(name, (float("inf"), 0))
                best[name] = (min(old[0], cpu), max(old[1], rss))
        hand = (d / "hand.csv").read_bytes()
        same = {name: (d / f"{name.replace(' ', '.')}").read_bytes() == hand
                for name in ("run csv", "stream csv")}
    base = best["handwritten"][0]
    n = payees * months
    print(f"{payees:,} payees x {months} months ({n:,} payee-periods), the least CPU time "
          f"of {runs} whole-process runs each:")
    for name, (cpu, rss) in best.items():
        note = ("  (every line's details, which the hand-written program does not write)"
                if name == "run json" else "")
        print(f"  {name:<12} {cpu:7.2f} s  {cpu / base:5.2f}x hand-written  "
              f"peak RSS {rss / 1024:,.0f} MB{note}")
    print(f"agreement: run csv = hand-written byte for byte: {same['run csv']}; "
          f"stream csv: {same['stream csv']}")
    for name in ("run csv", "stream csv", "run json"):
        print(f"ratio cli_{name.replace(' ', '_')}_vs_handwritten {best[name][0] / base:.2f}")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
