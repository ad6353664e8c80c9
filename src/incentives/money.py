"""Money: exact decimals, a plan's rounding rule, and exact splits.

Every amount is a :class:`decimal.Decimal`. A float never touches an amount:
numbers from YAML, JSON and CSV are read from their text, and a Python float
handed in by a caller is read from its shortest ``repr`` (``0.1`` is exactly
one tenth), never from its binary value.

>>> r = Rounding(quantum=Decimal("0.01"), mode="half_up")
>>> r.round(Decimal("2.345"))
Decimal('2.35')
>>> split(Decimal("100.00"), [1, 1, 1])
[Decimal('33.34'), Decimal('33.33'), Decimal('33.33')]
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "CONTEXT",
    "MAX_DIGITS",
    "MAX_PLACES",
    "ZERO",
    "Rounding",
    "RoundingMode",
    "amount_of",
    "split",
    "to_decimal",
]

ZERO = Decimal(0)
#: The whole numbers 0..255 as Decimals, made once: counts, ranks and small
#: quantities are read from here rather than made per payee (a Decimal never changes).
SMALL = tuple(Decimal(n) for n in range(256))


def whole(n: int) -> Decimal:
    """``Decimal(n)``, one made once when ``n`` is small.

    >>> whole(3), whole(1000)
    (Decimal('3'), Decimal('1000'))
    """
    return SMALL[n] if 0 <= n < 256 else Decimal(n)

#: The arithmetic context every evaluation runs in: 34 significant digits
#: (IEEE decimal128), and overflow, invalid operations and division by zero
#: raise instead of producing infinities or NaN.
CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

#: The largest number of digits before the decimal point an input may have.
MAX_DIGITS = 18
#: The longest text read as a number (digits, sign, point and exponent).
MAX_NUMBER_TEXT = 100
#: The furthest place after the decimal point an input's first digit may be in
#: (``1e-34`` is accepted, ``1e-35`` is not; a zero written ``0.000...`` likewise).
MAX_PLACES = 34

#: A number as text: ASCII digits, an optional point, an optional exponent. No
#: digit separators (``1_000``), no other digits, no ``Infinity``/``NaN``.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_ONE = Decimal(1)


def short(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters, with ``…`` when it was longer (for messages).

    >>> short("1" * 50)
    '1111111111111111111111111111111111111111…'
    """
    return text if len(text) <= limit else text[:limit] + "\u2026"


def range_problem(value: Decimal) -> str | None:
    """Why ``value`` is outside what an input may be, or ``None``; cheap (no arithmetic,
    so ``Decimal("1e999999")`` costs nothing here).

    Accepted: a finite number below 10^18 in magnitude (at most :data:`MAX_DIGITS`
    digits before the point) whose first digit is at most :data:`MAX_PLACES` places
    after the point, or zero.

    >>> range_problem(Decimal("1e18")), range_problem(Decimal("1e-35"))
    ('is too large: at most 18 digits before the point', 'is too small: its first digit is more than 34 places after the point')
    >>> range_problem(Decimal("-999999999999999999.5")) is None
    True
    """
    if not value.is_finite():
        return "must be a finite number"
    if value:
        adjusted = value.adjusted()
        if adjusted >= MAX_DIGITS:
            return f"is too large: at most {MAX_DIGITS} digits before the point"
        if adjusted < -MAX_PLACES:
            return (f"is too small: its first digit is more than {MAX_PLACES} places "
                    "after the point")
    elif value.as_tuple().exponent < -MAX_PLACES:  # type: ignore[operator]
        return f"has more than {MAX_PLACES} digits after the point"
    return None


def plain(value: Decimal) -> Decimal:
    """``value`` without a positive exponent (``1E+5`` is ``100000``), for a value
    :func:`range_problem` accepts.

    >>> plain(Decimal("1E+5")), plain(Decimal("0E+9")), plain(Decimal("2.50"))
    (Decimal('100000'), Decimal('0'), Decimal('2.50'))
    """
    if value.as_tuple().exponent > 0:  # type: ignore[operator]
        return value.quantize(_ONE, context=CONTEXT)
    return value


def parse_number_text(text: str, *, what: str = "value") -> Decimal:
    """Read ``text`` (already stripped) as a number, or raise ``ValueError``: the
    text is at most :data:`MAX_NUMBER_TEXT` characters of :data:`NUMBER_TEXT`, and
    the number is in range (:func:`range_problem`) and has at most the arithmetic's
    34 significant digits. Checked in that order, so no work is done on a number
    before it is known to be small.

    >>> parse_number_text("1E5"), parse_number_text("-0.25")
    (Decimal('100000'), Decimal('-0.25'))
    """
    if len(text) > MAX_NUMBER_TEXT:
        raise ValueError(f"{what} is too long to be a number ({len(text)} characters, "
                         f"at most {MAX_NUMBER_TEXT})")
    # what Decimal() reads beyond NUMBER_TEXT is other digits, '_' and the specials
    # (infinities, NaN: not finite), so these checks are NUMBER_TEXT, only faster
    try:
        if not text.isascii() or "_" in text:
            raise decimal.InvalidOperation
        result = Decimal(text)
    except (decimal.InvalidOperation, ValueError):
        if "_" in text and NUMBER_TEXT.fullmatch(text.replace("_", "")):
            raise ValueError(f"{what} has a digit separator: {text!r} "
                             f"(write {text.replace('_', '')})") from None
        raise ValueError(f"{what} is not a number: {text!r}") from None
    _check_number(result, what, text)
    return plain(result) if "e" in text or "E" in text else result


def _check_number(result: Decimal, what: str, text: str | None = None) -> None:
    """Raise ``ValueError`` unless ``result`` is finite, in range (:func:`range_problem`)
    and within the arithmetic's precision; the message quotes ``text`` it was read
    from, or else the number cut short."""
    if not result.is_finite():
        raise ValueError(f"{what} must be a finite number, not {_shown(result, text, True)}")
    if result:
        adjusted = result.adjusted()
        problem = None if -MAX_PLACES <= adjusted < MAX_DIGITS else range_problem(result)
    else:
        problem = range_problem(result)
    if problem:
        raise ValueError(f"{what} {problem} ({_shown(result, text, False)})")
    if CONTEXT.plus(result) != result:
        raise ValueError(f"{what} has more digits than the arithmetic's precision holds "
                         f"({_shown(result, text, False)}): at most {CONTEXT.prec} "
                         "significant digits")


def _shown(result: Decimal, text: str | None, quoted: bool) -> str:
    """How a refused number is quoted: the text it was read from, or itself cut short."""
    if text is not None:
        return repr(text)
    cut = short(str(result))
    return repr(cut) if quoted else cut


RoundingMode = Literal["half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"]

_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}


def to_decimal(value: Any, *, what: str = "value") -> Decimal:
    """Read ``value`` as an exact, finite decimal, or raise ``ValueError``.

    Accepts Decimal, int, str (``"1,200.50"`` is refused: commas are ambiguous;
    so are digit separators ``"1_000"`` and digits other than ASCII 0-9) and float
    (read from its shortest repr). Booleans, blanks, NaN and infinities are
    refused, and so is a number out of range (see :func:`range_problem`), whether
    written out or with an exponent (``"1e20"`` like ``"100000000000000000000"``).

    >>> to_decimal("48000.50")
    Decimal('48000.50')
    >>> to_decimal(0.1)
    Decimal('0.1')
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not a boolean ({value})")
    elif isinstance(value, int):
        if value.bit_length() > 64:
            raise ValueError(f"{what} is too large: at most {MAX_DIGITS} digits before the point")
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{what} is blank")
        return parse_number_text(text, what=what)
    else:
        raise ValueError(f"{what} must be a number, not {type(value).__name__}")
    _check_number(result, what)
    # a Decimal handed in is kept as it is; one read from a float is written out
    return result if value is result else plain(result)


class Rounding(BaseModel):
    """A plan's rounding rule: a quantum and a mode.

    Each line is rounded once, when it is made; a total is the sum of rounded
    lines, so a statement always adds up.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantum: Decimal = Decimal("0.01")
    mode: RoundingMode = "half_up"

    @field_validator("quantum")
    @classmethod
    def _positive_power_of_ten(cls, q: Decimal) -> Decimal:
        if not q.is_finite() or q <= 0:
            raise ValueError("quantum must be a positive number such as 0.01 or 1")
        problem = range_problem(q)
        if problem:
            raise ValueError(f"quantum {problem}")
        return q

    def round(self, amount: Decimal) -> Decimal:
        """Round ``amount`` to this rule."""
        q = self.quantum
        if _power_of_ten(q):
            return amount.quantize(q, rounding=_MODES[self.mode], context=CONTEXT)
        # A quantum such as 0.05 or 5: round the multiple, then scale back.
        units = (amount / q).quantize(Decimal(1), rounding=_MODES[self.mode], context=CONTEXT)
        return (units * q).quantize(
            Decimal(1).scaleb(q.as_tuple().exponent)  # type: ignore[arg-type]
        )

    def rounder(self) -> Callable[[Decimal], Decimal]:
        """A function rounding to this rule, made once (what policies call per line).

        >>> Rounding().rounder()(Decimal("2.345"))
        Decimal('2.35')
        """
        q, mode = self.quantum, _MODES[self.mode]
        if not _power_of_ten(q):
            return self.round
        context = CONTEXT

        def rounded(amount: Decimal) -> Decimal:
            return amount.quantize(q, mode, context)

        return rounded

    @property
    def plain_quantum(self) -> Decimal | None:
        """The quantum when rounding to it is one ``quantize`` (1, 10, 0.01...), else None."""
        return self.quantum if _power_of_ten(self.quantum) else None

    @property
    def decimal_mode(self) -> str:
        """The :mod:`decimal` rounding constant of this rule."""
        return _MODES[self.mode]


_POWERS: dict[Decimal, bool] = {}


def _power_of_ten(q: Decimal) -> bool:
    """Whether the quantum ``q`` is 1, 10, 0.01...: a plain quantize (cached per quantum)."""
    found = _POWERS.get(q)
    if found is None:
        found = _POWERS[q] = bool(q == 1 or q.as_tuple().digits == (1,))
    return found


def split(
    amount: Decimal,
    weights: Sequence[Decimal | int],
    *,
    quantum: Decimal = Decimal("0.01"),
    order: Sequence[Any] | None = None,
) -> list[Decimal]:
    """Split ``amount`` by ``weights`` into shares that sum to it exactly.

    Each share is first rounded down to ``quantum`` (towards zero); the cents
    left over go one each to the largest remainders. Ties in the remainder
    are broken by ``order`` (a sort key per share, smallest first; by default
    the position in ``weights``), so the result is deterministic.

    >>> split(Decimal("10.00"), [1, 2])
    [Decimal('3.33'), Decimal('6.67')]
    >>> split(Decimal("0.02"), [1, 1, 1], order=["c", "b", "a"])
    [Decimal('0.00'), Decimal('0.01'), Decimal('0.01')]
    """
    ws = [Decimal(w) for w in weights]
    if not ws:
        raise ValueError("cannot split among nobody")
    if any(w < 0 for w in ws):
        raise ValueError("weights must not be negative")
    total_w = sum(ws, ZERO)
    if total_w == 0:
        raise ValueError("weights sum to zero")
    exp = quantum.as_tuple().exponent
    sign = -1 if amount < 0 else 1
    units_total = int((abs(amount) / quantum).to_integral_value(rounding=decimal.ROUND_DOWN))
    if Decimal(units_total) * quantum != abs(amount):
        raise ValueError(f"{amount} is not a whole number of {quantum}")
    with decimal.localcontext(CONTEXT):
        exact = [Decimal(units_total) * w / total_w for w in ws]
    floors = [int(e.to_integral_value(rounding=decimal.ROUND_DOWN)) for e in exact]
    left = units_total - sum(floors)
    keys = list(order) if order is not None else list(range(len(ws)))
    ranking = sorted(range(len(ws)), key=lambda i: (-(exact[i] - floors[i]), keys[i]))
    for i in ranking[:left]:
        floors[i] += 1
    return [(sign * Decimal(u) * quantum).quantize(Decimal(1).scaleb(exp)) for u in floors]  # type: ignore[arg-type]


def amount_of(entry: Mapping[str, Any], key: str) -> Decimal:
    """Read the decimal string ``entry[key]`` (``ValueError`` when it is not one).

    >>> amount_of({"balance": "12.50"}, "balance")
    Decimal('12.50')

    An amount obeys the limits of a record's numbers
    (:func:`incentives.money.parse_number_text`): at most 100 characters, ASCII
    digits with no separators, below 10^18, the first digit at most 34 places
    after the point, at most 34 significant digits.

    >>> amount_of({"carried": "1e999999"}, "carried")
    Traceback (most recent call last):
    ...
    ValueError: 'carried' is too large: at most 18 digits before the point ('1e999999')
    """
    text = entry[key]
    if not isinstance(text, str):
        raise ValueError(f"{key!r} must be a decimal string, not {short(repr(text))}")
    return parse_number_text(text, what=repr(key))


def money_text(amount: Decimal) -> str:
    """An amount as it is stored in a ledger entry (never ``-0``).

    >>> money_text(Decimal("-0.00"))
    '0.00'
    """
    return str(amount if amount else abs(amount))
