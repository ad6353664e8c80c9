"""Helpers shared by the benchmark scripts: timing, memory, the re-parsing baseline.

The benchmarks compare the library with two baselines computing the same pay:

- a *hand-written* Python program (Decimal arithmetic written out by hand: the
  pure-Python limit);
- the same formulas evaluated by simpleeval *re-parsing each formula for every
  record* (what a naive rules engine does).

``ratio vs_handwritten`` is the library's time divided by the hand-written
program's time, measured in the same run; ``ratio vs_reparse`` likewise.
"""

from __future__ import annotations

import ast
import decimal
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import simpleeval

from incentives.money import CONTEXT

__all__ = [
    "CENT",
    "ReparseEvaluator",
    "amounts",
    "best_time",
    "clock",
    "compare",
    "peak_memory",
    "quick",
    "round_cent",
]

CENT = Decimal("0.01")


def quick() -> bool:
    """Whether ``BENCH_QUICK=1`` asks for the reduced sizes."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def round_cent(x: Decimal) -> Decimal:
    """Half-up to the cent: the plans' rounding rule, written by hand."""
    r = x.quantize(CENT, rounding=decimal.ROUND_HALF_UP, context=CONTEXT)
    return r if r else abs(r)


def clock() -> float:
    """The CPU time of this process (user + system), in seconds.

    Every benchmark times with it: on a shared machine, wall time also counts
    the time other programs hold the CPU, and that noise is larger than the
    differences measured. Both sides of every ratio are timed alike.
    """
    return time.process_time()


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The least CPU time (:func:`clock`) of ``repeat`` calls of ``fn``, and the last result.

    The previous result is dropped before each call, so no call is charged
    for freeing the one before.
    """
    best = float("inf")
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def peak_memory(fn: Callable[[], Any]) -> int:
    """The peak of memory allocated by Python while ``fn`` runs (tracemalloc), in bytes."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


class ReparseEvaluator(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval re-parsing the formula text on every call, with exact decimal literals.

    This is the naive baseline: the formula is parsed for each record.
    """

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        funcs = {
            "min": lambda *xs: min(xs),
            "max": lambda *xs: max(xs),
            "abs": abs,
            "clamp": lambda x, lo, hi: lo if x < lo else hi if x > hi else x,
        }
        funcs.update(functions or {})
        super().__init__(functions=funcs, names={})

    @staticmethod
    def _eval_constant(node: ast.Constant) -> Any:
        v = node.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return Decimal(repr(v))
        return v

    def __call__(self, text: str, env: Mapping[str, Any]) -> Any:
        self.names = env
        return self.eval(text)


def amounts(library: Iterable[Any]) -> dict[tuple[str, str], dict[str, Decimal]]:
    """The library's results in a baseline's shape: per (period, payee), each line's
    amount (policy id -> amount) plus ``"total"``.

    The benchmarks keep this, not the run, while the baseline is timed: a baseline
    running with the library's run alive would pay for the collector walking it.
    """
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    for r in library:
        got: dict[str, Decimal] = {}
        for line in r.lines:
            got[line.policy] = got.get(line.policy, Decimal(0)) + line.amount
        got["total"] = r.total
        out[(r.period, r.payee)] = got
    return out


def compare(library: Iterable[Any] | Mapping[tuple[str, str], dict[str, Decimal]],
            expected: Mapping[tuple[str, str], dict[str, Decimal]]) -> list[str]:
    """Differences between the library's results (or their :func:`amounts`) and a
    baseline's, to the cent.

    ``expected`` maps (period, payee) to the amount of each line (policy id ->
    amount) plus ``"total"``. Returns one message per difference (empty: agree).
    """
    problems: list[str] = []
    seen = set()
    found = library if isinstance(library, Mapping) else amounts(library)
    for key, got in found.items():
        seen.add(key)
        want = expected.get(key)
        if want is None:
            problems.append(f"{key}: not in the baseline")
            continue
        for name in sorted(set(got) | set(want)):
            a, b = got.get(name, Decimal(0)), want.get(name, Decimal(0))
            if a != b:
                problems.append(f"{key} {name}: library {a}, baseline {b}")
    for key in expected:
        if key not in seen:
            problems.append(f"{key}: missing from the library's results")
    return problems
