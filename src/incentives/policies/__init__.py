"""The policies a plan is made of: one module per mechanism.

:data:`PolicySpec` is the discriminated union of every policy type (by its
``type:`` tag); :data:`POLICY_TYPES` maps each tag to its class. A new
mechanism is a module here with a :class:`~.base.PolicyBase` subclass, added to
``_CLASSES`` below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field

from .base import CompileContext, Compiled, PolicyBase
from .base_pay import BasePay
from .cap import Cap
from .churn import ChurnPenalty
from .combine import LargerOf, SmallerOf, SumOf
from .floor import Floor
from .formula_line import FormulaLine, Value
from .modifier import Band, Modifier
from .quota import Quota, QuotaSplit
from .rate_table import RateItem, RateTable
from .scorecard import KPI, Gate, PayoutPoint, Scorecard
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
    Floor,
    Cap,
    LargerOf,
    SmallerOf,
    SumOf,
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
    "Band",
    "BasePay",
    "Cap",
    "ChurnPenalty",
    "CompileContext",
    "Compiled",
    "Floor",
    "FormulaLine",
    "Gate",
    "LargerOf",
    "Modifier",
    "PayoutPoint",
    "PolicyBase",
    "PolicySpec",
    "Quota",
    "QuotaSplit",
    "RateItem",
    "RateTable",
    "Scorecard",
    "SmallerOf",
    "SumOf",
    "Tier",
    "Tiered",
    "Value",
]
