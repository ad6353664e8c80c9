"""The auditors' toolkit: invariants, hypothesis strategies, case files, audits.

- :mod:`incentives.testing.invariants`: ready checks to call from your own
  tests (``monotone``, ``no_cliff``, ``floor_holds``, ``cap_holds``,
  ``total_is_sum_of_lines``, ``pool_conserved``, ``order_independent``,
  ``equal_treatment``, ``deterministic``, ``penalties_never_pay``); each raises
  :class:`~incentives.testing.invariants.InvariantViolation` with a
  counterexample. They need nothing beyond the core.
- :mod:`incentives.testing.strategies`: hypothesis strategies for records,
  populations, periods and parameters that fit a plan (needs the ``testing``
  extra: ``pip install incentives[testing]``).
- :mod:`incentives.testing.cases`: YAML case files (``*.cases.yaml``), run by
  ``incentives test`` and collected by pytest.
- :mod:`incentives.testing.audit`: ``incentives audit PLAN`` checks the
  invariants a plan declares.

Importing this package imports neither hypothesis nor the plan machinery;
names are loaded on first use.

>>> from incentives import load_plan
>>> from incentives.testing import monotone, total_is_sum_of_lines
>>> plan = load_plan("examples/telecom/plan.yaml")
>>> records = [{"payee": "a", "period": "2026-05", "metrics": {"traffic_revenue": 50000}}]
>>> total_is_sum_of_lines(plan, records) > 0
True
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "InvariantViolation",
    "cap_holds",
    "deterministic",
    "equal_treatment",
    "floor_holds",
    "monotone",
    "no_cliff",
    "order_independent",
    "penalties_never_pay",
    "pool_conserved",
    "total_is_sum_of_lines",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".invariants", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
