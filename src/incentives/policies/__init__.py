"""The policies a plan is made of: one module per mechanism.

:data:`PolicySpec` is the discriminated union of every policy type (by its
``type:`` tag); :data:`POLICY_TYPES` maps each tag to its class. A new
mechanism is a module here with a :class:`~.base.PolicyBase` subclass, added to
``_CLASSES`` below, and its statement working registered with
:func:`~.base.explains` (see :func:`working_for`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from ..wording import Working, generic_working
from .aggregate import Accumulate, PeriodQuota
from .balancing import Balance, MeanBounds, RatioBounds
from .base import CompileContext, Compiled, PolicyBase, explains, flatten_policies, policy_titles
from .base_pay import BasePay
from .cap import Cap
from .churn import ChurnPenalty
from .clawback import Clawback, ClawbackStep
from .combine import LargerOf, SmallerOf, SumOf
from .contest import Contest, PrizeBand
from .deferral import Deferral
from .floor import Floor
from .formula_line import FormulaLine, Value
from .group_values import GroupValues
from .honour import Honour
from .leader import LeaderBonus
from .modifier import Band, Modifier
from .per_transaction import PerTransaction, TransactionTier
from .pool import BonusPool
from .quota import Quota, QuotaSplit
from .ranking import RankingFlag
from .rate_table import RateItem, RateTable
from .scorecard import KPI, Gate, PayoutPoint, Scorecard
from .spread import SpreadFigures
from .tiers import Tier, Tiered

_CLASSES: tuple[type[PolicyBase], ...] = (
    BasePay,
    Tiered,
    RateTable,
    Quota,
    Scorecard,
    Modifier,
    FormulaLine,
    Value,
    ChurnPenalty,
    Clawback,
    Deferral,
    Accumulate,
    PeriodQuota,
    Floor,
    Cap,
    LargerOf,
    SmallerOf,
    SumOf,
    GroupValues,
    Contest,
    Honour,
    RankingFlag,
    BonusPool,
    Balance,
    LeaderBonus,
    SpreadFigures,
    PerTransaction,
)

#: Each policy ``type:`` tag and its class.
POLICY_TYPES: dict[str, type[PolicyBase]] = {
    cls.model_fields["type"].default: cls for cls in _CLASSES
}

if TYPE_CHECKING:
    PolicySpec = PolicyBase
else:
    PolicySpec = Annotated[Union[_CLASSES], Field(discriminator="type")]  # noqa: UP007

for _cls in (LargerOf, SmallerOf, SumOf):
    _cls.model_rebuild()


def working_for(spec: PolicyBase | None, details: Mapping[str, Any]) -> Working:
    """The statement working of a line: its policy's (``type(spec).statement``); for a
    line without its policy (a statement without a plan), that of the first policy type,
    in the order of :data:`POLICY_TYPES`, whose ``looks_like(details)`` holds; else the
    generic working (every key of the details, flattened)."""
    if spec is not None:
        return type(spec).statement
    for cls in _CLASSES:
        shape = cls.looks_like
        if shape is not None and shape(details):
            return cls.statement
    return generic_working


def group_names(policies: Sequence[PolicyBase]) -> list[str]:
    """The names ``policies`` publish that are figures of a whole group (not a payee's)."""
    names: list[str] = []
    for p in flatten_policies(policies):
        of_group = getattr(p, "group_names", None)
        if of_group is not None:
            names.extend(of_group())
    return names

__all__ = [
    "KPI",
    "POLICY_TYPES",
    "Accumulate",
    "Balance",
    "Band",
    "BasePay",
    "BonusPool",
    "Cap",
    "ChurnPenalty",
    "Clawback",
    "ClawbackStep",
    "CompileContext",
    "Compiled",
    "Contest",
    "Deferral",
    "Floor",
    "FormulaLine",
    "Gate",
    "GroupValues",
    "Honour",
    "LargerOf",
    "LeaderBonus",
    "MeanBounds",
    "Modifier",
    "PayoutPoint",
    "PerTransaction",
    "PeriodQuota",
    "PolicyBase",
    "PolicySpec",
    "PrizeBand",
    "Quota",
    "QuotaSplit",
    "RankingFlag",
    "RateItem",
    "RateTable",
    "RatioBounds",
    "Scorecard",
    "SmallerOf",
    "SpreadFigures",
    "SumOf",
    "Tier",
    "Tiered",
    "TransactionTier",
    "Value",
    "explains",
    "flatten_policies",
    "group_names",
    "policy_titles",
    "working_for",
]
