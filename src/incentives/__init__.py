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

from typing import TYPE_CHECKING, Any

from . import _startup  # noqa: F401  (first: Ctrl-C while the command line starts)

if TYPE_CHECKING:  # the public names, imported when first used (see __getattr__)
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
    from .sources import read_results, read_rows

__version__ = "0.1.0"

#: Where each public name lives: ``incentives.Plan`` imports ``incentives.plan`` the
#: first time it is read, so ``import incentives`` (and the command line's
#: ``--help``) loads none of pydantic, simpleeval or PyYAML until they are needed.
_HOMES: dict[str, str] = {
    "EvaluationError": "errors",
    "FormulaError": "errors",
    "FormulaLimitError": "errors",
    "IncentivesError": "errors",
    "InfeasibleError": "errors",
    "PlanError": "errors",
    "PlanLimitError": "errors",
    "RecordError": "errors",
    "StateError": "errors",
    "UsageError": "errors",
    "Formula": "formulas",
    "compile_formula": "formulas",
    "AttributeSpec": "inputs",
    "DatedValue": "inputs",
    "EventSpec": "inputs",
    "Inputs": "inputs",
    "MetricSpec": "inputs",
    "State": "ledger",
    "VersionedPlan": "ledger",
    "Rounding": "money",
    "split": "money",
    "to_decimal": "money",
    "Plan": "plan",
    "load_plan": "plan",
    "KPI": "policies",
    "Accumulate": "policies",
    "Balance": "policies",
    "Band": "policies",
    "BasePay": "policies",
    "BonusPool": "policies",
    "Cap": "policies",
    "ChurnPenalty": "policies",
    "Clawback": "policies",
    "ClawbackStep": "policies",
    "Contest": "policies",
    "Deferral": "policies",
    "Floor": "policies",
    "FormulaLine": "policies",
    "Gate": "policies",
    "GroupValues": "policies",
    "Honour": "policies",
    "LargerOf": "policies",
    "LeaderBonus": "policies",
    "MeanBounds": "policies",
    "Modifier": "policies",
    "PayoutPoint": "policies",
    "PeriodQuota": "policies",
    "PerTransaction": "policies",
    "PolicyBase": "policies",
    "PrizeBand": "policies",
    "Quota": "policies",
    "QuotaSplit": "policies",
    "RankingFlag": "policies",
    "RateItem": "policies",
    "RateTable": "policies",
    "RatioBounds": "policies",
    "Scorecard": "policies",
    "SmallerOf": "policies",
    "SpreadFigures": "policies",
    "SumOf": "policies",
    "Tier": "policies",
    "Tiered": "policies",
    "Value": "policies",
    "RecordReader": "records",
    "read_records_file": "records",
    "read_results": "sources",
    "read_rows": "sources",
    "PayeeResult": "results",
    "Run": "results",
    "Line": "runtime",
    "Record": "runtime",
}

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
    "read_results",
    "read_rows",
    "split",
    "to_decimal",
]


def __getattr__(name: str) -> Any:
    """Import the module a public name lives in the first time the name is read."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'incentives' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"incentives.{home}"), name)
    globals()[name] = value  # read once: later reads are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
