"""The policies a plan is made of: one module per mechanism.

:data:`POLICY_TYPES` maps each ``type:`` tag to its class, and
:data:`PolicySpec` is the type of a plan's policy (a mapping validated by the
class its ``type:`` tag names). A policy's module is imported the first time its
class is needed: a plan builds the models of the types it names, not all of them
(``incentives.policies.Tiered`` imports ``tiers``). A new mechanism is a module
here with a :class:`~.base.PolicyBase` subclass, added to ``_CLASSES`` below
(its tag, its module, its class), and its statement working registered with
:func:`~.base.explains` (see :func:`working_for`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..wording import Working, generic_working
from .base import (
    CompileContext,
    Compiled,
    PolicyBase,
    PolicySpec,
    explains,
    flatten_policies,
    policy_titles,
)

if TYPE_CHECKING:
    from .aggregate import Accumulate, PeriodQuota
    from .balancing import Balance, MeanBounds, RatioBounds
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

#: Each policy type: its ``type:`` tag, the module of this package that defines it
#: and its class, in the order statements guess a line's policy (see :func:`working_for`).
_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("base_pay", "base_pay", "BasePay"),
    ("tiered", "tiers", "Tiered"),
    ("rate_table", "rate_table", "RateTable"),
    ("quota", "quota", "Quota"),
    ("scorecard", "scorecard", "Scorecard"),
    ("modifier", "modifier", "Modifier"),
    ("formula", "formula_line", "FormulaLine"),
    ("value", "formula_line", "Value"),
    ("churn_penalty", "churn", "ChurnPenalty"),
    ("clawback", "clawback", "Clawback"),
    ("deferral", "deferral", "Deferral"),
    ("accumulate", "aggregate", "Accumulate"),
    ("period_quota", "aggregate", "PeriodQuota"),
    ("floor", "floor", "Floor"),
    ("cap", "cap", "Cap"),
    ("larger_of", "combine", "LargerOf"),
    ("smaller_of", "combine", "SmallerOf"),
    ("sum_of", "combine", "SumOf"),
    ("group_values", "group_values", "GroupValues"),
    ("contest", "contest", "Contest"),
    ("honour", "honour", "Honour"),
    ("ranking_flag", "ranking", "RankingFlag"),
    ("bonus_pool", "pool", "BonusPool"),
    ("balance", "balancing", "Balance"),
    ("leader_bonus", "leader", "LeaderBonus"),
    ("spread", "spread", "SpreadFigures"),
    ("per_transaction", "per_transaction", "PerTransaction"),
)

#: The other public names of the policy modules (parts of a policy's spec), by module.
_PARTS: dict[str, str] = {
    "MeanBounds": "balancing", "RatioBounds": "balancing", "ClawbackStep": "clawback",
    "PrizeBand": "contest", "Band": "modifier", "TransactionTier": "per_transaction",
    "QuotaSplit": "quota", "RateItem": "rate_table", "KPI": "scorecard", "Gate": "scorecard",
    "PayoutPoint": "scorecard", "Tier": "tiers",
}

#: Where each policy class and spec part lives: ``incentives.policies.Tiered`` imports
#: ``incentives.policies.tiers`` the first time it is read.
_HOMES: dict[str, str] = {**{name: module for _, module, name in _CLASSES}, **_PARTS}


def policy_class(tag: str) -> type[PolicyBase]:
    """The class of the policy type ``tag`` (its module imported on first use), or
    ``KeyError`` for a tag that is not a policy type."""
    cls = _LOADED.get(tag)
    if cls is None:
        module, name = _WHERE[tag]
        cls = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        if cls.model_fields["type"].default != tag:  # pragma: no cover - a registration slip
            raise TypeError(f"{name} has type {cls.model_fields['type'].default!r}, "
                            f"registered as {tag!r}")
        _LOADED[tag] = cls
    return cls


_WHERE: dict[str, tuple[str, str]] = {tag: (module, name) for tag, module, name in _CLASSES}
_LOADED: dict[str, type[PolicyBase]] = {}


class _PolicyTypes(Mapping[str, "type[PolicyBase]"]):
    """Each policy ``type:`` tag and its class: the tags are known without importing
    any policy; reading a class imports its module."""

    def __getitem__(self, tag: str) -> type[PolicyBase]:
        if not isinstance(tag, str) or tag not in _WHERE:
            raise KeyError(tag)
        return policy_class(tag)

    def __contains__(self, tag: object) -> bool:
        return tag in _WHERE

    def __iter__(self) -> Iterator[str]:
        return iter(_WHERE)

    def __len__(self) -> int:
        return len(_WHERE)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


#: Each policy ``type:`` tag and its class (a mapping that imports a policy's module
#: when its class is read).
POLICY_TYPES: Mapping[str, type[PolicyBase]] = _PolicyTypes()


def __getattr__(name: str) -> Any:
    """Import the module a policy class (or a part of one) lives in the first time it
    is read."""
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))


def working_for(spec: PolicyBase | None, details: Mapping[str, Any]) -> Working:
    """The statement working of a line: its policy's (``type(spec).statement``); for a
    line without its policy (a statement without a plan), that of the first policy type,
    in the order of :data:`POLICY_TYPES`, whose ``looks_like(details)`` holds; else the
    generic working (every key of the details, flattened)."""
    if spec is not None:
        return type(spec).statement
    for cls in POLICY_TYPES.values():
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
