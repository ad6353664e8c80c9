"""A parameter sweep against a single evaluation of the baseline.

Run::

    python benchmarks/bench_sweep.py                 # 10,000 payees, 20 floor values
    BENCH_QUICK=1 python benchmarks/bench_sweep.py   # 1,000 payees, well under a minute

On one seeded synthetic population of the telecom plan (E1), it times

- a single evaluation of the baseline (``plan.evaluate(records)``, checks included;
  the best of three);
- the sweep: 20 variants of ``floor_amount`` built with ``sweep()`` and
  ``simulate()`` of the baseline and the 20 variants on the same population (with
  the tqdm progress bar on stderr);
- ``compare()`` of the 21 outcomes (every figure, spread per group, winners and
  losers).

Times are CPU seconds of this process (``time.process_time``), steadier than
wall time when other work shares the machine. A sweep should cost about one
evaluation per plan: the last line is
``ratio sweep20_vs_single <value>`` (sweep time over single time; about 21 is
proportional: the baseline is evaluated again with the 20 variants). The line
before it, ``ratio compare21_vs_single``, is the comparison's time on the same
scale (a fraction of one evaluation per outcome). The
script also checks that each swept floor's cost matches a direct evaluation of
that variant, and that a higher floor never costs less; it exits 1 if not.
"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import best_time, quick

from incentives import load_plan
from incentives.populations import synthetic
from incentives.simulate import simulate, sweep

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    n = 1_000 if quick() else 10_000
    plan = load_plan(ROOT / "examples/telecom/plan.yaml")
    people = synthetic(plan, n, seed=2026)
    values = [500 + 50 * i for i in range(20)]

    single, run = best_time(lambda: plan.evaluate(people), 3)

    gc.collect()
    start = time.process_time()
    variants = sweep(plan, "floor_amount", values)
    sim = simulate(plan, variants, people, progress=True)
    swept = time.process_time() - start
    start = time.process_time()
    comparison = sim.compare(revenue="traffic_revenue")
    compared = time.process_time() - start

    problems = []
    if sim.baseline.run.total != run.total:
        problems.append("the baseline's cost differs from a direct evaluation")
    costs = [comparison[v.name].total_cost for v in variants]
    if costs != sorted(costs):
        problems.append("a higher floor costs less")
    check = variants[len(variants) // 2]
    if check.plan.evaluate(people).total != comparison[check.name].total_cost:
        problems.append(f"{check.name}: the sweep's cost differs from a direct evaluation")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)

    print(f"payees {n}")
    print("plans 21 (baseline and 20 values of floor_amount)")
    print(f"single_evaluation_cpu_s {single:.3f}")
    print(f"sweep20_cpu_s {swept:.3f}")
    print(f"compare21_cpu_s {compared:.3f}")
    print(f"cost_at_500 {costs[0]}  cost_at_1450 {costs[-1]}")
    print(f"ratio compare21_vs_single {compared / single:.2f}")
    print(f"ratio sweep20_vs_single {swept / single:.2f}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
