"""incentives: a rules engine for incentive and commission pay.

Exact (Decimal money, stated rounding), explainable (every line carries its
working) and auditable (property-tested plans).

>>> import incentives
>>> plan = incentives.load_plan("examples/telecom/plan.yaml")
>>> run = plan.evaluate(incentives.read_records_file("examples/telecom/records.jsonl"))
>>> str(run["X"].total), str(run.total)
('948.00', '5708.00')
"""

from __future__ import annotations

from . import _startup  # noqa: F401  (first: Ctrl-C while the command line starts)
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
from .ledger import State, VersionedPlan
from .money import Rounding, split, to_decimal
from .plan import Plan, load_plan
from .policies import (
    KPI,
    Accumulate,
    Balance,
    Band,
    BasePay,
    BonusPool,
    Cap,
    ChurnPenalty,
    Clawback,
    ClawbackStep,
    Contest,
    Deferral,
    Floor,
    FormulaLine,
    Gate,
    GroupValues,
    Honour,
    LargerOf,
    LeaderBonus,
    MeanBounds,
    Modifier,
    PayoutPoint,
    PeriodQuota,
    PerTransaction,
    PolicyBase,
    PrizeBand,
    Quota,
    QuotaSplit,
    RankingFlag,
    RateItem,
    RateTable,
    RatioBounds,
    Scorecard,
    SmallerOf,
    SpreadFigures,
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
    "Accumulate",
    "AttributeSpec",
    "Balance",
    "Band",
    "BasePay",
    "BonusPool",
    "Cap",
    "ChurnPenalty",
    "Clawback",
    "ClawbackStep",
    "Contest",
    "DatedValue",
    "Deferral",
    "EvaluationError",
    "EventSpec",
    "Floor",
    "Formula",
    "FormulaError",
    "FormulaLimitError",
    "FormulaLine",
    "Gate",
    "GroupValues",
    "Honour",
    "IncentivesError",
    "InfeasibleError",
    "Inputs",
    "LargerOf",
    "LeaderBonus",
    "Line",
    "MeanBounds",
    "MetricSpec",
    "Modifier",
    "PayeeResult",
    "PayoutPoint",
    "PerTransaction",
    "PeriodQuota",
    "Plan",
    "PlanError",
    "PlanLimitError",
    "PolicyBase",
    "PrizeBand",
    "Quota",
    "QuotaSplit",
    "RankingFlag",
    "RateItem",
    "RateTable",
    "RatioBounds",
    "Record",
    "RecordError",
    "RecordReader",
    "Rounding",
    "Run",
    "Scorecard",
    "SmallerOf",
    "SpreadFigures",
    "State",
    "StateError",
    "SumOf",
    "Tier",
    "Tiered",
    "UsageError",
    "Value",
    "VersionedPlan",
    "compile_formula",
    "load_plan",
    "read_records_file",
    "split",
    "to_decimal",
]
