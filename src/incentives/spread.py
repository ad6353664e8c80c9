"""Spread figures of a set of amounts, in exact Decimal arithmetic.

How unequal are a team's bonuses? Three figures, each computed with the
library's decimal context (34 significant digits, no float anywhere):

- :func:`max_min_ratio`: the largest amount over the smallest (``None`` when
  the smallest is not positive: the ratio means nothing then);
- :func:`coefficient_of_variation`: the population standard deviation over
  the mean (``None`` when the mean is zero); the square root is Decimal's;
- :func:`gini`: the Gini coefficient, ``sum |x_i - x_j| / (2 n^2 mean)``,
  0 when everyone gets the same, towards 1 when one person gets everything
  (``None`` when the mean is zero).

>>> from decimal import Decimal as D
>>> xs = [D("1000"), D("2000"), D("6000")]
>>> max_min_ratio(xs)
Decimal('6')
>>> gini(xs)
Decimal('0.3703703703703703703703703703703704')
>>> spread_figures([D(5), D(5)])["cv"]
Decimal('0')

The same functions serve the ``spread`` policy (per group, in a run), the
``balance`` policy (before and after) and simulations.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal

from .money import CONTEXT, ZERO

__all__ = [
    "coefficient_of_variation",
    "gini",
    "max_min_ratio",
    "mean",
    "spread_figures",
]


def _values(values: Sequence[Decimal | int]) -> list[Decimal]:
    xs = [Decimal(v) for v in values]
    if not xs:
        raise ValueError("spread of no amounts")
    return xs


def mean(values: Sequence[Decimal | int]) -> Decimal:
    """The arithmetic mean.

    >>> mean([1, 2])
    Decimal('1.5')
    """
    xs = _values(values)
    with decimal.localcontext(CONTEXT):
        return sum(xs, ZERO) / len(xs)


def max_min_ratio(values: Sequence[Decimal | int]) -> Decimal | None:
    """The largest value over the smallest; ``None`` if the smallest is zero or less.

    >>> max_min_ratio([2900, 3000, 3100])
    Decimal('1.068965517241379310344827586206897')
    >>> max_min_ratio([0, 5]) is None
    True
    """
    xs = _values(values)
    lo, hi = min(xs), max(xs)
    if lo <= 0:
        return None
    with decimal.localcontext(CONTEXT):
        return hi / lo


def coefficient_of_variation(values: Sequence[Decimal | int]) -> Decimal | None:
    """Population standard deviation over the mean; ``None`` if the mean is zero.

    >>> coefficient_of_variation([1000, 2000, 6000])
    Decimal('0.7200822998230955812184408262319997')
    """
    xs = _values(values)
    with decimal.localcontext(CONTEXT):
        m = sum(xs, ZERO) / len(xs)
        if m == 0:
            return None
        var = sum(((x - m) ** 2 for x in xs), ZERO) / len(xs)
        return var.sqrt() / abs(m)


def gini(values: Sequence[Decimal | int]) -> Decimal | None:
    """The Gini coefficient; ``None`` if the mean is zero.

    Computed from the sorted values as ``(2 sum_i i x_(i) - (n + 1) sum x) / (n sum x)``
    (``i`` from 1), which equals ``sum_ij |x_i - x_j| / (2 n^2 mean)``.

    >>> gini([3, 3, 3])
    Decimal('0')
    >>> gini([0, 0, 0, 10])
    Decimal('0.75')
    """
    xs = sorted(_values(values))
    n = len(xs)
    with decimal.localcontext(CONTEXT):
        total = sum(xs, ZERO)
        if total == 0:
            return None
        weighted = sum((Decimal(i) * x for i, x in enumerate(xs, start=1)), ZERO)
        g = (2 * weighted - (n + 1) * total) / (n * total)
        return g.normalize() if g == 0 else g


def spread_figures(values: Sequence[Decimal | int]) -> dict[str, Decimal | None]:
    """Every spread figure at once: ``count``, ``total``, ``mean``, ``min``, ``max``,
    ``ratio`` (max/min), ``cv`` and ``gini``.

    >>> figs = spread_figures([1, 3])
    >>> figs["ratio"], figs["gini"]
    (Decimal('3'), Decimal('0.25'))
    """
    xs = _values(values)
    with decimal.localcontext(CONTEXT):
        total = sum(xs, ZERO)
        return {
            "count": Decimal(len(xs)),
            "total": total,
            "mean": total / len(xs),
            "min": min(xs),
            "max": max(xs),
            "ratio": max_min_ratio(xs),
            "cv": _tidy(coefficient_of_variation(xs)),
            "gini": gini(xs),
        }


def _tidy(x: Decimal | None) -> Decimal | None:
    return x.normalize() if x is not None and x == 0 else x
