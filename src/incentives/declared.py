"""The invariants a plan may declare that it keeps (``invariants:`` in a plan file).

A plan lists the promises it makes; ``incentives audit PLAN`` checks each one
with hypothesis and prints a shrunk counterexample for each that breaks::

    invariants:
      - {type: monotone, metric: traffic_revenue}
      - {type: no_cliff, metric: traffic_revenue, max_jump: 50, step: 1}
      - {type: floor_holds}

This module only describes the declarations (it never imports hypothesis), so
a plan can be loaded without the ``testing`` extra; the auditors' toolkit
(:mod:`incentives.testing`) checks them and re-exports these names as
``incentives.testing.declared``.

>>> InvariantSpec(type="no_cliff", metric="sales", max_jump=50).step
Decimal('1')
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from .errors import did_you_mean
from .policies.base import Identifier, StrictModel, flatten_policies

if TYPE_CHECKING:
    from .inputs import Inputs
    from .policies.base import PolicyBase

__all__ = ["INVARIANT_TYPES", "InvariantSpec", "check_declared", "varying_names"]

InvariantType = Literal[
    "monotone",
    "no_cliff",
    "floor_holds",
    "cap_holds",
    "total_is_sum_of_lines",
    "pool_conserved",
    "penalties_never_pay",
    "order_independent",
    "equal_treatment",
    "deterministic",
]

#: Every invariant a plan may declare.
INVARIANT_TYPES: tuple[str, ...] = InvariantType.__args__  # type: ignore[attr-defined]

_NEEDS_METRIC = ("monotone", "no_cliff")
_TAKES_POLICY = ("monotone", "no_cliff")
_TAKES_AMOUNT = ("floor_holds", "cap_holds")


class InvariantSpec(StrictModel):
    """One declared invariant.

    ``metric`` (``monotone``, ``no_cliff``): the input that varies.
    ``policy``: check that policy's amount instead of the total.
    ``max_jump`` and ``step`` (``no_cliff``): raising ``metric`` by ``step``
    never changes pay by more than ``max_jump``.
    ``amount`` (``floor_holds``, ``cap_holds``): a fixed floor or cap on every
    total; without it, each floor / cap policy of the plan is checked.
    """

    type: InvariantType
    label: str | None = None
    metric: Identifier | None = None
    policy: Identifier | None = None
    max_jump: Decimal | None = Field(default=None, ge=0)
    step: Decimal = Field(default=Decimal(1), gt=0)
    amount: Decimal | None = None

    @model_validator(mode="after")
    def _fields(self) -> InvariantSpec:
        if self.type in _NEEDS_METRIC and self.metric is None:
            raise ValueError(f"invariant {self.type!r} needs 'metric' (the input that varies)")
        if self.type not in _NEEDS_METRIC and self.metric is not None:
            raise ValueError(f"invariant {self.type!r} takes no 'metric'")
        if self.type == "no_cliff" and self.max_jump is None:
            raise ValueError("invariant 'no_cliff' needs 'max_jump' (the largest change in pay "
                             "allowed when the metric rises by 'step')")
        if self.type != "no_cliff" and self.max_jump is not None:
            raise ValueError(f"'max_jump' is only for 'no_cliff', not {self.type!r}")
        if self.policy is not None and self.type not in _TAKES_POLICY:
            raise ValueError(f"'policy' is only for {' and '.join(_TAKES_POLICY)}")
        if self.amount is not None and self.type not in _TAKES_AMOUNT:
            raise ValueError(f"'amount' is only for {' and '.join(_TAKES_AMOUNT)}")
        return self

    @property
    def title(self) -> str:
        """A short description: the label, or the type and its arguments."""
        if self.label:
            return self.label
        args = []
        if self.metric:
            args.append(f"metric={self.metric}")
        if self.policy:
            args.append(f"policy={self.policy}")
        if self.type == "no_cliff":
            args.append(f"max_jump={self.max_jump}")
            args.append(f"step={self.step}")
        if self.amount is not None:
            args.append(f"amount={self.amount}")
        return self.type + (f"({', '.join(args)})" if args else "")


def varying_names(inputs: Inputs) -> list[str]:
    """The inputs an invariant may vary: metrics and number attributes."""
    return [*inputs.metrics,
            *(a for a, spec in inputs.attributes.items() if spec.type == "number")]


def check_declared(specs: Sequence[InvariantSpec], inputs: Inputs,
                   policies: Sequence[PolicyBase]) -> list[tuple[str, tuple[str | int, ...]]]:
    """Problems with declared invariants: ``(message, path below 'invariants')``."""
    problems: list[tuple[str, tuple[str | int, ...]]] = []
    names = varying_names(inputs)
    ids = [p.id for p in flatten_policies(list(policies))]
    for i, spec in enumerate(specs):
        if spec.metric is not None and spec.metric not in names:
            hint = did_you_mean(spec.metric, names)
            problems.append((f"unknown metric {spec.metric!r}"
                             + (f"; {hint}" if hint else
                                f"; metrics and number attributes: {', '.join(names) or 'none'}"),
                             (i, "metric")))
        if spec.policy is not None and spec.policy not in ids:
            hint = did_you_mean(spec.policy, ids)
            problems.append((f"unknown policy {spec.policy!r}"
                             + (f"; {hint}" if hint else f"; policies: {', '.join(ids)}"),
                             (i, "policy")))
    return problems
