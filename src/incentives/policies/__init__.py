"""The policies a plan is made of: one module per mechanism.

:data:`PolicySpec` is the discriminated union of every policy type (by its
``type:`` tag); :data:`POLICY_TYPES` maps each tag to its class. A new
mechanism is a module here with a :class:`~.base.PolicyBase` subclass, added to
``_CLASSES`` below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from .aggregate import Accumulate, PeriodQuota
from .balancing import Balance, MeanBounds, RatioBounds
from .base import CompileContext, Compiled, PolicyBase
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
    "Value",
]
