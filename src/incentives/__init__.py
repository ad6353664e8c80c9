"""incentives: a rules engine for incentive and commission pay.

Exact (Decimal money, stated rounding), explainable (every line carries its
working) and auditable (property-tested plans).

>>> import incentives
>>> plan = incentives.load_plan("examples/telecom/plan.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

from .errors import (
    EvaluationError,
    FormulaError,
    FormulaLimitError,
    IncentivesError,
    InfeasibleError,
    PlanError,
    PlanLimitError,
    RecordError,
    StateError,
    UsageError,
)
from .formulas import Formula, compile_formula
from .inputs import AttributeSpec, DatedValue, EventSpec, Inputs, MetricSpec
from .money import Rounding, split, to_decimal
from .plan import Plan, load_plan
from .policies import (
    KPI,
    Band,
    BasePay,
    Cap,
    ChurnPenalty,
    Floor,
    FormulaLine,
    Gate,
    LargerOf,
    Modifier,
    PayoutPoint,
    PolicyBase,
    Quota,
    QuotaSplit,
    RateItem,
    RateTable,
    Scorecard,
    SmallerOf,
    SumOf,
    Tier,
    Tiered,
    Value,
)
from .records import RecordReader, read_records_file
from .results import PayeeResult, Run
from .runtime import Line, Record

__version__ = "0.1.0"

__all__ = [
    "KPI",
    "AttributeSpec",
    "Band",
    "BasePay",
    "Cap",
    "ChurnPenalty",
    "DatedValue",
    "EvaluationError",
    "EventSpec",
    "Floor",
    "Formula",
    "FormulaError",
    "FormulaLimitError",
    "FormulaLine",
    "Gate",
    "IncentivesError",
    "InfeasibleError",
    "Inputs",
    "LargerOf",
    "Line",
    "MetricSpec",
    "Modifier",
    "PayeeResult",
    "PayoutPoint",
    "Plan",
    "PlanError",
    "PlanLimitError",
    "PolicyBase",
    "Quota",
    "QuotaSplit",
    "RateItem",
    "RateTable",
    "Record",
    "RecordError",
    "RecordReader",
    "Rounding",
    "Run",
    "Scorecard",
    "SmallerOf",
    "StateError",
    "SumOf",
    "Tier",
    "Tiered",
    "UsageError",
    "Value",
    "compile_formula",
    "load_plan",
    "read_records_file",
    "split",
    "to_decimal",
]
