"""``incentives audit PLAN``: check the invariants a plan declares, with hypothesis.

For each invariant listed under ``invariants:`` in the plan, hypothesis draws
populations that fit the plan's inputs (:mod:`incentives.testing.strategies`)
and calls the invariant (:mod:`incentives.testing.invariants`). For each one
that breaks, the minimal (shrunk) counterexample is printed: the records, and
the two results that break the rule. Exit status 0 when every invariant
holds, 1 when one breaks, 2 when the plan or the command is wrong.

The search is reproducible: the same ``--seed`` and ``--examples`` find the
same counterexample. A plan that declares no invariants is audited for the
ones every plan should keep (see :data:`GENERIC`).

This module imports hypothesis only when an audit runs, so the command line
stays light.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import IncentivesError, UsageError

if TYPE_CHECKING:
    from ..plan import Plan
    from .declared import InvariantSpec
    from .invariants import InvariantViolation

__all__ = ["GENERIC", "Finding", "audit_plan", "register"]

#: What a plan that declares no invariants is audited for.
GENERIC: tuple[str, ...] = ("total_is_sum_of_lines", "floor_holds", "cap_holds",
                            "pool_conserved", "order_independent", "equal_treatment",
                            "deterministic", "penalties_never_pay")


@dataclass
class Finding:
    """The outcome of checking one invariant."""

    spec: InvariantSpec
    examples: int
    violation: InvariantViolation | None = None
    error: str | None = None
    records: list[dict[str, Any]] | None = None

    @property
    def holds(self) -> bool:
        return self.violation is None and self.error is None

    def report(self) -> str:
        """Text for the terminal."""
        if self.holds:
            return f"ok      {self.spec.title}  ({self.examples} examples)"
        head = f"BROKEN  {self.spec.title}"
        if self.violation is not None:
            body = self.violation.describe()
        else:
            import json

            from ..runtime import jsonable

            body = f"the plan fails on these records: {self.error}\n  records:\n" + "\n".join(
                "    " + json.dumps(jsonable(r), ensure_ascii=False) for r in self.records or [])
        return head + "\n  " + body.replace("\n", "\n  ")


def _check(plan: Plan, spec: InvariantSpec) -> Callable[[dict[str, Any]], int]:
    from . import invariants as inv

    kind = spec.type
    if kind == "monotone":
        assert spec.metric is not None
        metric = spec.metric
        return lambda d: inv.monotone(plan, metric, d["records"], spec.policy, by=d["by"])
    if kind == "no_cliff":
        assert spec.metric is not None
        assert spec.max_jump is not None
        metric, jump = spec.metric, spec.max_jump
        return lambda d: inv.no_cliff(plan, metric, d["records"], max_jump=jump,
                                      step=spec.step, policy=spec.policy)
    if kind == "floor_holds":
        return lambda d: inv.floor_holds(plan, d["records"], amount=spec.amount)
    if kind == "cap_holds":
        return lambda d: inv.cap_holds(plan, d["records"], amount=spec.amount)
    if kind == "order_independent":
        return lambda d: inv.order_independent(plan, d["records"], orders=[d["order"]])
    function: Callable[..., int] = getattr(inv, kind)
    return lambda d: function(plan, d["records"])


def _strategy(plan: Plan, spec: InvariantSpec, max_size: int) -> Any:
    from hypothesis import strategies as st

    from .invariants import DEFAULT_RISES
    from .strategies import populations

    pops = populations(plan, min_size=1, max_size=max_size)

    @st.composite
    def draw(draw: st.DrawFn) -> dict[str, Any]:
        records = draw(pops)
        out: dict[str, Any] = {"records": records}
        if spec.type == "monotone":
            out["by"] = draw(st.one_of(
                st.sampled_from(DEFAULT_RISES),
                st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2,
                            allow_nan=False, allow_infinity=False)))
        elif spec.type == "order_independent":
            out["order"] = draw(st.permutations(range(len(records))))
        elif spec.type == "equal_treatment":
            # a population where someone has a twin: equal records, another payee id
            twin = dict(records[draw(st.integers(0, len(records) - 1))])
            twin["payee"] = f"p{len(records) + 1:02d}"
            records.append(twin)
        return out

    return draw()


def _search(check: Callable[[dict[str, Any]], int],
            finding: Finding) -> Callable[[dict[str, Any]], None]:
    def search(data: dict[str, Any]) -> None:
        finding.records = data["records"]
        check(data)

    return search


def audit_plan(plan: Plan, *, examples: int = 100, seed: int = 0, max_size: int = 6,
               specs: list[InvariantSpec] | None = None) -> list[Finding]:
    """Check each invariant ``plan`` declares (or ``specs``) with hypothesis.

    >>> from incentives import load_plan
    >>> plan = load_plan("examples/telecom/plan.yaml")
    >>> [f.holds for f in audit_plan(plan, examples=5)]
    [True, True, True, True, True, True, True, True]
    """
    try:
        from hypothesis import HealthCheck, Verbosity, given, settings
        from hypothesis import seed as seeded
    except ImportError:  # pragma: no cover - the testing extra is installed in dev
        raise UsageError("auditing needs hypothesis: pip install 'incentives[testing]'") from None
    from .declared import InvariantSpec
    from .invariants import InvariantViolation

    if examples < 1:
        raise UsageError("--examples must be at least 1")
    if specs is None:
        specs = list(plan.invariants) or [InvariantSpec.model_validate({"type": t}) for t in GENERIC]
    findings = []
    for spec in specs:
        finding = Finding(spec, examples)
        search = _search(_check(plan, spec), finding)
        run: Callable[[], None] = settings(max_examples=examples, database=None, deadline=None,
                       suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                       verbosity=Verbosity.quiet, print_blob=False)(
            seeded(seed)(given(_strategy(plan, spec, max_size))(search)))  # type: ignore[no-untyped-call]
        try:
            run()
        except InvariantViolation as exc:
            finding.violation = exc
        except IncentivesError as exc:
            finding.error = str(exc)
        findings.append(finding)
    return findings


# ------------------------------------------------------------------ command


def register(sub: Any) -> None:
    """Add ``incentives audit`` to the command line."""
    p = sub.add_parser(
        "audit", help="check the invariants a plan declares, with a shrunk counterexample "
                      "for each that breaks (exit 1)")
    p.add_argument("plan", help="the plan file (YAML)")
    p.add_argument("--examples", type=int, default=100,
                   help="populations to try per invariant (default 100)")
    p.add_argument("--seed", type=int, default=0,
                   help="the random seed: the same seed finds the same counterexample")
    p.add_argument("--max-size", type=int, default=6,
                   help="the largest population drawn (default 6)")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace, out: TextIO) -> int:
    from ..extras import require

    require("testing", "incentives audit")  # before any work: one line, exit 2
    from ..plan import load_plan

    plan = load_plan(args.plan)
    if args.max_size < 1:
        raise UsageError("--max-size must be at least 1")
    declared = bool(plan.invariants)
    findings = audit_plan(plan, examples=args.examples, seed=args.seed,
                          max_size=args.max_size)
    out.write(f"audit of {args.plan}: plan {plan.name!r} version {plan.version}, "
              f"seed {args.seed}\n")
    if not declared:
        out.write("the plan declares no invariants; checking the ones every plan should "
                  "keep\n")
    for f in findings:
        out.write(f.report() + "\n")
    broken = sum(not f.holds for f in findings)
    out.write(f"{len(findings) - broken} held, {broken} broken\n")
    return 1 if broken else 0
