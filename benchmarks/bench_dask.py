"""Dask that scales: one process against two worker processes of a dask.distributed cluster.

Run::

    python benchmarks/bench_dask.py                 # 100,000 payees x 12 months (2-4 minutes)
    BENCH_QUICK=1 python benchmarks/bench_dask.py   # 20,000 payees x 3 months

It writes the records of the bundled telecom plan (``examples/telecom/plan.yaml``),
generated as ``benchmarks/bench_cli.make_records`` makes them (event lists
included), as JSON Lines parts: four parts a period, each holding whole groups
(``p2026-01-0.jsonl`` ...), so each (period, group) is whole in one partition.
Then, each in a child process of its own:

- **one process**: plain ``incentives``: for each part, ``plan.evaluate(part)``
  and its results written as a Parquet part (``incentives.parquet.parquet_sink``
  of ``result_tables``: amounts decimal128, lines without their details), one
  part after another; no Dask imported;
- **two workers**: ``incentives.dask.run_partitioned`` on a
  ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``: each
  worker reads its parts, evaluates them and writes the same Parquet parts; the
  client gets back counts and paths.

It prints the wall time of each (the cluster's with and without its start),
the speed-up, ``ratio dask_speedup_2_workers X.XX``, the CPU cost per
partition and per payee-period measured on the workers, an estimate for
10,000,000 payee-periods on N workers derived from it, and the agreement: every
part's tables (totals, lines, errors) read back and compared; exit 1 if any
differs. ``BENCH_RUNS`` (default 2; 1 with ``BENCH_QUICK``): runs of each, the
least wall time kept. The machine's load matters: wall time on a shared
machine is noisy.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLAN = ROOT / "examples" / "telecom" / "plan.yaml"
PARTS_PER_PERIOD = 4
GROUP_SIZE = 25


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def make_parts(folder: Path, payees: int, months: int, *, seed: int = 5) -> int:
    """The records of bench_cli.make_records (same generator, same order), written as
    ``PARTS_PER_PERIOD`` JSON Lines parts a period, each holding whole groups."""
    per_part = payees // PARTS_PER_PERIOD
    assert per_part % GROUP_SIZE == 0, "a part must hold whole groups"
    rnd = random.Random(seed)
    folder.mkdir(parents=True)
    count = 0
    for m in range(months):
        period = f"2026-{m + 1:02d}"
        for k in range(PARTS_PER_PERIOD):
            with (folder / f"p{period}-{k}.jsonl").open("w", encoding="utf-8") as f:
                for i in range(k * per_part, (k + 1) * per_part):
                    rec: dict[str, object] = {
                        "payee": f"m-{i:06d}", "period": period,
                        "group": f"g{i // GROUP_SIZE:04d}",
                        "metrics": {"traffic_revenue": f"{rnd.randint(0, 12_000_000) / 100:.2f}",
                                    "new_fax": rnd.randint(0, 3), "new_ipvpn": rnd.randint(0, 2)}}
                    if rnd.random() < 0.3:
                        rec["events"] = {"lost_customers": [
                            {"id": f"c-{i}-{j}", "monthly_value": rnd.randint(100, 3000),
                             "reason": rnd.choice(["competitor", "closure", "price"]),
                             "lost": f"{period}-03"}
                            for j in range(rnd.randint(1, 2))]}
                    f.write(json.dumps(rec) + "\n")
                    count += 1
    return count


# ---------------------------------------------------------------- the two children


def one_process(source: str, out: str) -> dict[str, Any]:
    """Plain incentives, one part after another: evaluate, write the Parquet part."""
    started = time.perf_counter()
    from incentives import load_plan
    from incentives.dask import partitions  # the listing only (no dask is imported)
    from incentives.parquet import parquet_sink
    from incentives.tabular import result_tables

    plan = load_plan(PLAN)
    compiled = plan.compile()
    Path(out).mkdir()
    results = errors = 0
    for index, part in enumerate(partitions(source)):
        run = compiled.evaluate(part.files[0], errors="collect")
        sink = parquet_sink(Path(out, f"part-{index:05d}.parquet"))
        sink.write(result_tables(run, details=False))
        sink.commit()
        results += len(run.results)
        errors += len(run.errors)
    assert "dask" not in sys.modules
    return {"wall": time.perf_counter() - started, "results": results, "errors": errors}


def two_workers(source: str, out: str) -> dict[str, Any]:
    started = time.perf_counter()
    from distributed import Client, LocalCluster

    from incentives import load_plan
    from incentives.dask import run_partitioned

    plan = load_plan(PLAN)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        ready = time.perf_counter()
        done = run_partitioned(plan, source, out, client=client, format="parquet",
                               details="lines")
        ran = time.perf_counter() - ready
    return {"wall": ran, "wall_with_start": time.perf_counter() - started,
            "start": ready - started, "results": done.results, "errors": len(done.errors),
            "parts": len(done.parts), "cpu": [p["cpu_seconds"] for p in done.parts],
            "pids": [p["pid"] for p in done.parts]}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child(kind: str, source: Path, out: Path) -> dict[str, Any]:
    """Run one side in a child process; its summary, with ``cpu_all``: the CPU time of
    the child and every process it started (the cluster's scheduler, nannies and
    workers), from the operating system's accounting."""
    before = _children_cpu()
    proc = subprocess.run([sys.executable, __file__, f"--{kind}", str(source), str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench_dask: the {kind} run failed")
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["cpu_all"] = _children_cpu() - before
    return summary


def same_parts(a: Path, b: Path) -> tuple[bool, int]:
    """Every Parquet file of ``a`` and ``b`` (totals, lines, errors), read back: equal?"""
    import pyarrow.parquet as pq

    names = sorted(p.name for p in a.glob("part-*.parquet"))
    if names != sorted(p.name for p in b.glob("part-*.parquet")):
        return False, 0
    for name in names:
        if not pq.read_table(a / name).equals(pq.read_table(b / name)):
            return False, 0
    return True, len([n for n in names if n.count(".") == 1])


def main() -> int:
    payees, months = (20_000, 3) if quick() else (100_000, 12)
    runs = int(os.environ.get("BENCH_RUNS", "1" if quick() else "2"))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        count = make_parts(d / "records", payees, months)
        print(f"records: {payees:,} payees x {months} months = {count:,} payee-periods, "
              f"{months * PARTS_PER_PERIOD} JSON Lines parts (whole groups), written in "
              f"{time.perf_counter() - t:.1f} s")
        ones: list[dict[str, Any]] = []
        duos: list[dict[str, Any]] = []
        for r in range(runs):  # interleaved: the machine's load falls on both alike
            ones.append(child("one", d / "records", d / f"one-{r}"))
            duos.append(child("dask", d / "records", d / f"dask-{r}"))
        one = min(ones, key=lambda x: x["wall"])
        duo = min(duos, key=lambda x: x["wall"])
        start = min(x["wall_with_start"] for x in duos)
        print(f"one process (plain incentives, parts one after another): "
              f"{one['wall']:.2f} s wall, {one['cpu_all']:.2f} s CPU")
        print(f"two worker processes (LocalCluster, run_partitioned): {duo['wall']:.2f} s wall; "
              f"{start:.2f} s with the cluster's start ({duo['start']:.2f} s); "
              f"{duo['cpu_all']:.2f} s CPU in all its processes")
        print(f"speed-up: {one['wall'] / duo['wall']:.2f}x; "
              f"{one['wall'] / start:.2f}x counting the cluster's start")
        print(f"ratio dask_speedup_2_workers {one['wall'] / duo['wall']:.2f}")
        workers: dict[int, float] = {}
        for pid, seconds in zip(duo["pids"], duo["cpu"], strict=True):
            workers[pid] = workers.get(pid, 0.0) + seconds
        busiest = max(workers.values())
        print(f"workers' CPU: {', '.join(f'{v:.2f} s' for v in workers.values())} "
              f"({len(duo['cpu'])} partitions); one process's CPU / the busier worker's: "
              f"{one['cpu_all'] / busiest:.2f}x (the speed-up two idle cores would give, "
              "before the client's and scheduler's share; not a wall-time measurement)")
        cpu = sorted(duo["cpu"])
        size = count // len(cpu)
        median = cpu[len(cpu) // 2]
        per_pp = median / size  # a worker's steady cost (its first partition pays its imports)
        print(f"per partition ({size:,} payee-periods): {median:.2f} s CPU on a worker "
              f"(median; least {cpu[0]:.2f}, most {cpu[-1]:.2f}: a worker's first partition "
              f"imports and compiles); {per_pp * 1e6:.0f} us per payee-period; "
              f"{sum(cpu):.1f} s CPU in all")
        for n in (2, 8, 32, 128):
            # 10M payee-periods in partitions of the size measured: each worker takes
            # its share of the CPU; the cluster's start is paid once
            estimate = 10_000_000 * per_pp / n + duo["start"]
            print(f"estimate 10,000,000 payee-periods on {n} workers: {estimate:,.0f} s "
                  f"({10_000_000 * per_pp:,.0f} s CPU / {n} + {duo['start']:.1f} s start)")
        ok = all(x["results"] == one["results"] and x["errors"] == one["errors"]
                 for x in (*ones, *duos))
        for r in range(runs):
            same, parts = same_parts(d / f"one-{r}", d / f"dask-{r}")
            ok = ok and same
        print(f"agreement: {'identical' if ok else 'DIFFERENT'} ({one['results']:,} results, "
              f"{one['errors']} errors, {parts} Parquet parts of totals, lines and errors, "
              f"each read back and compared)")
        return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("--one", "--dask"):
        run = one_process if sys.argv[1] == "--one" else two_workers
        print(json.dumps(run(sys.argv[2], sys.argv[3])))
        raise SystemExit(0)
    raise SystemExit(main())
