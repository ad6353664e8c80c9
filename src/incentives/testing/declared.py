"""The invariants a plan may declare (``invariants:`` in a plan file).

The declarations are part of a plan, so they live in the core
(:mod:`incentives.declared`); this module keeps ``incentives.testing.declared``
working for the auditors' toolkit and for code written against it.

>>> InvariantSpec(type="monotone", metric="sales").title
'monotone(metric=sales)'
"""

from __future__ import annotations

from ..declared import INVARIANT_TYPES, InvariantSpec, check_declared, varying_names

__all__ = ["INVARIANT_TYPES", "InvariantSpec", "check_declared", "varying_names"]
