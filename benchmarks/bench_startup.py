"""Start-up: how long the command line takes before it does any work.

Run::

    python benchmarks/bench_startup.py            # the least of 20 runs each
    BENCH_QUICK=1 python benchmarks/bench_startup.py   # the least of 5
    BENCH_INSTRUCTIONS=1 python benchmarks/bench_startup.py   # and instructions counted

It times, as whole processes, interleaved in the same run, the least wall time
and the least CPU time (user + system, from the operating system's accounting of
the finished child) of N runs each of:

- ``python -c pass`` (the interpreter alone, the unit of the ratios);
- ``incentives --help``;
- ``incentives validate examples/telecom/plan.yaml``;
- ``python -c "import incentives"``;
- ``incentives run examples/telecom/plan.yaml examples/telecom/records.jsonl`` (the
  bundled example start to end, as a table: no goal, shown for what start-up costs a
  short run).

``incentives`` is run as ``python -m incentives`` with this interpreter, so the
figures do not depend on which ``incentives`` script is first on the ``PATH``.
The children run with ``PYTHONDONTWRITEBYTECODE`` unset, so the first (untimed)
run of each writes the modules' bytecode as an installed package has it: with
it set, every run would compile the package from source again.
Each line prints its ratio to ``python -c pass`` and whether it is within the
goal (0.15 s wall).

Then it prints where ``validate``'s time goes: in a fresh process each time, set
up as the command line's own process is (:mod:`incentives._startup`: the
collector held, pydantic's plugin search skipped when no plugin is declared), the
least of N of each step, in this order: ``validate``'s command line (the package,
its command-line module and what reads ``validate PLAN``: no parser is built for
it; on code before, the parser), pydantic (its
``fields`` and ``main``, which every model loads), PyYAML, simpleeval,
``incentives.plan`` (the plan's model and its parts' models, no policy's) and
the telecom plan loaded as ``validate`` loads it (``incentives.plan.check_plan``:
reading it, validating it, the models of the five policy types it names made then,
its formulas compiled; on code without ``check_plan``, ``load_plan``).

With ``BENCH_INSTRUCTIONS=1`` (and valgrind installed) it also prints the
instructions each command executes (valgrind's cachegrind, no cache simulation):
a count that other processes on a shared machine do not change, where times do.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLAN = ROOT / "examples" / "telecom" / "plan.yaml"
RECORDS = ROOT / "examples" / "telecom" / "records.jsonl"
GOAL = 0.15  # seconds of wall time, whole process

COMMANDS: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("incentives --help", [sys.executable, "-m", "incentives", "--help"]),
    ("incentives validate", [sys.executable, "-m", "incentives", "validate",
                             str(PLAN.relative_to(ROOT))]),
    ("import incentives", [sys.executable, "-c", "import incentives"]),
    ("incentives run", [sys.executable, "-m", "incentives", "run", str(PLAN.relative_to(ROOT)),
                        str(RECORDS.relative_to(ROOT))]),
]
#: the commands held to the goal (``run`` does work besides starting)
GOALED = ("incentives --help", "incentives validate", "import incentives")


def runs() -> int:
    return 5 if os.environ.get("BENCH_QUICK", "") not in ("", "0") else 20


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process (which must exit 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True, env=child_env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(n: int) -> dict[str, tuple[float, float]]:
    best: dict[str, tuple[float, float]] = {name: (float("inf"), float("inf"))
                                            for name, _ in COMMANDS}
    for name, argv in COMMANDS:  # once each first: the files are in the page cache
        check = subprocess.run(argv, cwd=ROOT, capture_output=True, check=False, env=child_env())
        if check.returncode != 0:
            raise SystemExit(f"{name} failed ({check.returncode}): "
                             f"{check.stderr.decode(errors='replace')}")
    for _ in range(n):
        for name, argv in COMMANDS:
            wall, cpu = time_once(argv)
            w, c = best[name]
            best[name] = (min(w, wall), min(c, cpu))
    return best


STEPS_CODE = """
import sys, time, importlib
t0 = time.perf_counter()
import incentives._startup as startup
for name in ("pause_collector", "skip_plugin_search"):  # as the command line's process
    getattr(startup, name, lambda: None)()
import incentives.cli as cli
if hasattr(cli, "_validate_only"):  # `validate PLAN` is read without a parser
    cli._validate_only(["validate", sys.argv[1]])
else:
    try:
        cli.build_parser("validate")
    except TypeError:  # a parser that builds every command
        cli.build_parser()
steps = [("validate's command line", time.perf_counter())]
for label, modules in (("pydantic", ("pydantic.fields", "pydantic.main")), ("PyYAML", ("yaml",)),
                       ("simpleeval", ("simpleeval",)),
                       ("the plan's model and its parts'", ("incentives.plan",))):
    for module in modules:
        importlib.import_module(module)
    steps.append((label, time.perf_counter()))
plan_module = importlib.import_module("incentives.plan")
getattr(plan_module, "check_plan", plan_module.load_plan)(sys.argv[1])  # as validate does
steps.append(("the plan read, validated, compiled", time.perf_counter()))
last = t0
for label, t in steps:
    print(f"{label}\\t{t - last}")
    last = t
"""


def validate_steps(n: int) -> list[tuple[str, float]]:
    """The least time of each step of ``validate`` over ``n`` fresh processes."""
    best: dict[str, float] = {}
    for _ in range(n):
        out = subprocess.run([sys.executable, "-c", STEPS_CODE, str(PLAN)], cwd=ROOT,
                             capture_output=True, text=True, check=True, env=child_env())
        for line in out.stdout.splitlines():
            label, seconds = line.split("\t")
            best[label] = min(best.get(label, float("inf")), float(seconds))
    return list(best.items())


def report(best: dict[str, tuple[float, float]], n: int) -> list[str]:
    base_wall, base_cpu = best["python -c pass"]
    lines = [f"start-up, the least of {n} whole-process runs each (goal: <= {GOAL:.2f} s wall):"]
    for name, _ in COMMANDS:
        wall, cpu = best[name]
        verdict = "" if name not in GOALED else (
            "  within the goal" if wall <= GOAL else "  over the goal")
        lines.append(f"  {name:<20} wall {wall:6.3f} s {wall / base_wall:5.1f}x   "
                     f"cpu {cpu:6.3f} s {cpu / base_cpu:5.1f}x{verdict}")
    return lines


def instructions(argv: list[str]) -> int:
    """The instructions one whole process executes (valgrind's count)."""
    done = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                           "--cachegrind-out-file=/dev/null", *argv], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=True, env=child_env())
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise SystemExit(f"valgrind gave no count: {done.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    n = runs()
    print("\n".join(report(measure(n), n)))
    if os.environ.get("BENCH_INSTRUCTIONS", "") not in ("", "0"):
        if shutil.which("valgrind") is None:
            raise SystemExit("BENCH_INSTRUCTIONS=1 needs valgrind")
        counts = {name: instructions(argv) for name, argv in COMMANDS}
        print("instructions executed (valgrind), whole process:")
        for name, _ in COMMANDS:
            print(f"  {name:<20} {counts[name] / 1e6:8.1f} M  "
                  f"{counts[name] / counts['python -c pass']:5.1f}x")
    print(f"where validate's time goes, the least of {n} fresh processes each step:")
    for label, seconds in validate_steps(n):
        print(f"  {label:<36} {seconds * 1000:6.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
