"""Sharing an amount by weights within per-person bounds, exactly to the cent.

Two steps, used by bonus pools and by bonus balancing:

1. :func:`fill` ("water-filling") finds the one common factor ``f`` such that
   the shares ``clamp(f * w_i, lower_i, upper_i)`` add up to the total: every
   share is proportional to its weight with the same factor, except those
   held at a bound.
2. :func:`round_to_total` rounds those exact shares to the quantum so that
   they add up to the total exactly (largest remainder, ties broken by a
   stated order) without leaving any bound (bounds are first rounded inwards
   to the quantum: a floor up, a cap down).

>>> from decimal import Decimal as D
>>> shares = fill(D(9000), [D(70), D(20), D(10)], lower=[D(1500)] * 3, upper=[D(4500)] * 3)
>>> shares.amounts
[Decimal('4500'), Decimal('3000'), Decimal('1500')]
>>> shares.held
['upper', None, None]
>>> round_to_total([D("3.335"), D("3.335"), D("3.33")], D("10.00"), D("0.01"), order=["a", "b", "c"])
[Decimal('3.34'), Decimal('3.33'), Decimal('3.33')]
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import repeat
from operator import neg, sub
from typing import Any

from .errors import InfeasibleError
from .money import CONTEXT, ZERO

__all__ = ["Fill", "fill", "round_to_total"]


@dataclass(frozen=True)
class Fill:
    """The result of :func:`fill`: exact shares, the common factor, who is held."""

    amounts: list[Decimal]
    #: the common factor (``None`` when no share is free to move)
    factor: Decimal | None
    #: per share: ``"lower"``, ``"upper"`` or ``None`` (free, proportional)
    held: list[str | None]


def _clamp(x: Decimal, lo: Decimal | None, hi: Decimal | None) -> Decimal:
    if lo is not None and x < lo:
        return lo
    if hi is not None and x > hi:
        return hi
    return x


def _held(raw: Decimal, lo: Decimal | None, hi: Decimal | None) -> str | None:
    if lo is not None and raw < lo:
        return "lower"
    if hi is not None and raw > hi:
        return "upper"
    return None


def fill(
    total: Decimal,
    weights: Sequence[Decimal],
    *,
    lower: Sequence[Decimal | None] | None = None,
    upper: Sequence[Decimal | None] | None = None,
) -> Fill:
    """Share ``total`` by ``weights`` with one common factor, within the bounds.

    ``lower`` and ``upper`` hold one bound per share (``None``: no bound).
    Raises :class:`~incentives.InfeasibleError` (with the numbers) when the
    bounds cannot hold: floors above the total, caps below it, a floor above
    a cap, or no weight to share by.

    >>> from decimal import Decimal as D
    >>> fill(D(100), [D(1), D(3)]).amounts
    [Decimal('25'), Decimal('75')]
    """
    n = len(weights)
    if n == 0:
        raise InfeasibleError(f"cannot share {total} among nobody")
    if _unbounded(lower, n) and _unbounded(upper, n):
        return _fill_unbounded(total, weights)
    los: list[Decimal | None] = list(lower) if lower is not None else [None] * n
    his: list[Decimal | None] = list(upper) if upper is not None else [None] * n
    if len(los) != n or len(his) != n:
        raise ValueError("one lower and one upper bound per weight")
    for i, (w, lo, hi) in enumerate(zip(weights, los, his, strict=True)):
        if w < 0:
            raise InfeasibleError(f"weight {w} of share {i + 1} is negative")
        if lo is not None and hi is not None and lo > hi:
            raise InfeasibleError(f"share {i + 1}: floor {lo} is above cap {hi}")
    with decimal.localcontext(CONTEXT):
        fixed = ZERO  # shares of zero weight: clamp(0, lo, hi)
        min_sum: Decimal | None = ZERO
        max_sum: Decimal | None = ZERO
        for w, lo, hi in zip(weights, los, his, strict=True):
            if w == 0:
                fixed += _clamp(ZERO, lo, hi)
                continue
            min_sum = None if lo is None or min_sum is None else min_sum + lo
            max_sum = None if hi is None or max_sum is None else max_sum + hi
        if min_sum is not None and total < min_sum + fixed:
            raise InfeasibleError(
                f"the floors add up to {min_sum + fixed}, more than the {total} to share")
        if max_sum is not None and total > max_sum + fixed:
            raise InfeasibleError(
                f"the caps add up to {max_sum + fixed}, less than the {total} to share")
        free = [i for i in range(n) if weights[i] > 0]
        if not free:
            if fixed != total:
                raise InfeasibleError(f"every weight is zero: nothing to share {total} by")
            return Fill([_clamp(ZERO, los[i], his[i]) for i in range(n)], None,
                        [_held(ZERO, los[i], his[i]) for i in range(n)])
        points: set[Decimal] = set()
        for i in free:
            lo, hi = los[i], his[i]
            if lo is not None:
                points.add(lo / weights[i])
            if hi is not None:
                points.add(hi / weights[i])
        bps = sorted(points)

        def at(f: Decimal) -> Decimal:
            return fixed + sum((_clamp(f * weights[i], los[i], his[i]) for i in free), ZERO)

        # find the interval (a, b) of f where S(f) crosses the total: S is
        # non-decreasing, so bisect for the first breakpoint where S reaches it
        lo_i, hi_i = 0, len(bps)
        while lo_i < hi_i:
            mid = (lo_i + hi_i) // 2
            if at(bps[mid]) >= total:
                hi_i = mid
            else:
                lo_i = mid + 1
        a: Decimal | None = bps[lo_i - 1] if lo_i > 0 else None
        b: Decimal | None = bps[lo_i] if lo_i < len(bps) else None
        factor = _solve(total, weights, los, his, free, fixed, a, b)
        amounts = [_clamp(factor * weights[i], los[i], his[i]) if weights[i] > 0
                   else _clamp(ZERO, los[i], his[i]) for i in range(n)]
    held = [_held(factor * weights[i], los[i], his[i]) for i in range(n)]
    return Fill(amounts, factor, held)


def _unbounded(bounds: Sequence[Decimal | None] | None, n: int) -> bool:
    """Whether ``bounds`` (one per share, or None) bound nothing."""
    if bounds is None:
        return True
    if len(bounds) != n:
        return False
    if isinstance(bounds, list):
        # at C speed: bounds are most often all None (or none of them is)
        return n == 0 or (bounds[0] is None and bounds.count(None) == n)
    return all(b is None for b in bounds)


def _fill_unbounded(total: Decimal, weights: Sequence[Decimal]) -> Fill:
    """:func:`fill` with no bounds: the same arithmetic, without the bound checks."""
    n = len(weights)
    lowest = min(weights)
    if lowest < 0:
        i = next(i for i, w in enumerate(weights) if w < 0)
        raise InfeasibleError(f"weight {weights[i]} of share {i + 1} is negative")
    with decimal.localcontext(CONTEXT):
        slope = sum(weights, ZERO) if lowest > 0 else sum((w for w in weights if w > 0), ZERO)
        if slope == 0:
            if total != ZERO:
                raise InfeasibleError(f"every weight is zero: nothing to share {total} by")
            return Fill([ZERO] * n, None, [None] * n)
        factor = (total - ZERO) / slope
        if lowest > 0:
            amounts = list(map(factor.__mul__, weights))
        else:
            amounts = [factor * w if w > 0 else ZERO for w in weights]
    return Fill(amounts, factor, [None] * n)


def _solve(total: Decimal, weights: Sequence[Decimal], los: Sequence[Decimal | None],
           his: Sequence[Decimal | None], free: list[int], fixed: Decimal,
           a: Decimal | None, b: Decimal | None) -> Decimal:
    """The factor in the interval (a, b) where the sum is linear in it."""
    const = fixed
    slope = ZERO
    for i in free:
        w, lo, hi = weights[i], los[i], his[i]
        lo_f = None if lo is None else lo / w
        hi_f = None if hi is None else hi / w
        if lo_f is not None and (b is not None and lo_f >= b):
            const += lo  # type: ignore[operator]
        elif hi_f is not None and (a is not None and hi_f <= a):
            const += hi  # type: ignore[operator]
        else:
            slope += w
    if slope == 0:  # the sum is flat here: any factor in the interval will do
        if a is not None:
            return a
        return b if b is not None else ZERO
    f = (total - const) / slope
    # guard the interval against the last digit of a 34-digit division
    if a is not None and f < a:
        f = a
    if b is not None and f > b:
        f = b
    return f


def round_to_total(
    values: Sequence[Decimal],
    total: Decimal,
    quantum: Decimal,
    *,
    lower: Sequence[Decimal | None] | None = None,
    upper: Sequence[Decimal | None] | None = None,
    order: Sequence[Any] | None = None,
) -> list[Decimal]:
    """Round ``values`` to ``quantum`` so that they add up to ``total`` exactly.

    Each value is rounded down; the units left over go one each to the
    largest remainders (ties: smallest ``order`` key first), never past a
    bound (floors rounded up, caps rounded down to the quantum first). When
    the values add up to a little more than the total, units are taken back
    from the smallest remainders. ``total`` must be a whole number of
    quanta. Raises :class:`~incentives.InfeasibleError` when the rounded
    bounds leave no room.
    """
    n = len(values)
    keys = list(order) if order is not None else list(range(n))
    q = quantum
    shift, exp = _shape(q)
    if _unbounded(lower, n):
        lower = None
    if _unbounded(upper, n):
        upper = None
    with decimal.localcontext(CONTEXT):
        t_units = total.scaleb(shift) if shift is not None else total / q
        if t_units != t_units.to_integral_value():
            raise ValueError(f"{total} is not a whole number of {q}")
        target = int(t_units)

        def units(bounds: Sequence[Decimal | None],
                  rounding: Callable[[Decimal], int]) -> tuple[list[int | None], bool]:
            """The bounds in whole quanta; and whether they are one bound for all."""
            first = bounds[0]
            if first is not None and isinstance(bounds, list) and bounds.count(first) == n:
                # one bound for all (the common case): worked out once
                return [rounding(first.scaleb(shift) if shift is not None
                                 else first / q)] * n, True
            # else bounds may still repeat: each distinct one is worked out once
            seen: dict[Decimal, int] = {}
            out: list[int | None] = []
            for b in bounds:
                if b is None:
                    out.append(None)
                    continue
                u = seen.get(b)
                if u is None:
                    u = seen[b] = rounding(b.scaleb(shift) if shift is not None else b / q)
                out.append(u)
            return out, False

        # C-level maps: this runs for every member of every pool and balanced group
        scaled = (list(map(Decimal.scaleb, values, repeat(shift))) if shift is not None
                  else [v / q for v in values])
        base = [math.floor(x) for x in scaled]  # exact: a Decimal floors to an int
        lo_u: list[int | None] = [None] * n
        hi_u: list[int | None] = [None] * n
        cap: int | None = None  # the one cap of all, when there is one
        if lower is not None or upper is not None:
            lo_same = hi_same = True
            if lower is not None:
                lo_u, lo_same = units(lower, math.ceil)
            if upper is not None:
                hi_u, hi_same = units(upper, math.floor)
            for i in range(1 if lo_same and hi_same else n):
                lo, hi = lo_u[i], hi_u[i]
                if lo is not None and hi is not None and lo > hi:
                    raise InfeasibleError(
                        f"no multiple of {q} lies between the floor {lower[i]} and "  # type: ignore[index]
                        f"the cap {upper[i]}")  # type: ignore[index]
            if lo_same and hi_same:
                lo, cap = lo_u[0], hi_u[0]
                if lo is not None:
                    base = [lo if b < lo else b for b in base]
                if cap is not None:
                    base = [cap if b > cap else b for b in base]
            else:
                for i in range(n):
                    lo, hi = lo_u[i], hi_u[i]
                    if lo is not None and base[i] < lo:
                        base[i] = lo
                    if hi is not None and base[i] > hi:
                        base[i] = hi
        rem = list(map(sub, scaled, base))
        left = target - sum(base)
        while left > 0:
            # one unit each to the largest remainders (ties: smallest key), below the caps
            if upper is None or (cap is not None and max(base) < cap):  # nobody at a cap
                can = sorted(zip(map(neg, rem), keys, range(n), strict=True))
            else:
                can = sorted((-rem[i], keys[i], i) for i in range(n)
                             if hi_u[i] is None or base[i] < hi_u[i])  # type: ignore[operator]
            if not can:
                raise InfeasibleError(f"the caps (rounded to {q}) leave no room for {total}")
            for _, _, i in can[:left]:
                base[i] += 1
                rem[i] -= 1
            left = target - sum(base)
        while left < 0:
            # one unit back from each of the smallest remainders (ties: largest key)
            back = [i for i in range(n) if lo_u[i] is None or base[i] > lo_u[i]]  # type: ignore[operator]
            if not back:
                raise InfeasibleError(f"the floors (rounded to {q}) need more than {total}")
            back.sort(key=lambda i: (rem[i], _Rev(keys[i])))
            for i in back[:-left]:
                base[i] -= 1
                rem[i] += 1
            left = target - sum(base)
        if shift is not None:
            # u units times a quantum of one digit: u written with the quantum's
            # exponent (exact, as scaleb would give)
            return list(map(q.__rmul__, map(Decimal, base)))
        quant = Decimal(1).scaleb(exp)
        return [(Decimal(u) * q).quantize(quant) if exp < 0 else Decimal(u) * q
                for u in base]


def _shape(q: Decimal) -> tuple[int | None, int]:
    """A quantum's exponent, and the shift that makes a value a count of quanta when
    the quantum is a power of ten (0.01, 1, 10...: moving the point), else None."""
    t = q.as_tuple()
    if not isinstance(t.exponent, int):
        raise ValueError(f"the quantum {q} is not a finite number")
    return (-t.exponent if t.digits == (1,) else None), t.exponent


class _Rev:
    """Reverses the order of a sort key (units are taken back from the last first)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Rev) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and bool(self.key == other.key)

    __hash__ = None  # type: ignore[assignment]
