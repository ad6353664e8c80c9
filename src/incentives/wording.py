"""The statement toolkit: what a policy uses to word its lines on a pay statement.

A policy explains one of its lines as a list of :class:`Step` rows
(``what: expression = result``) made by its *statement working*, a function
``working(c, line, spec) -> list[Step]`` registered on its spec class (see
:class:`incentives.policies.PolicyBase`). The working gets a :class:`Wording`
``c``: the statement's phrases (:meth:`Wording.t`, gettext messages whose msgid
is the English text), its number formats (:attr:`Wording.fmt`, a
:class:`NumberFormat`), the names of inputs and policies for people
(:meth:`Wording.name`), free text from details worded in the statement's
language (:meth:`Wording.say`), and the next steps it may add to
(:attr:`Wording.hints`).

>>> from decimal import Decimal
>>> f = NumberFormat(Decimal("0.01"))
>>> f.money(Decimal("1400")), f.num(Decimal("0.040")), f.expr("0.4 * 1580")
('1,400.00', '0.04', '0.4 x 1,580')
>>> Step("slice 0 to 30,000", "30,000 x 0.02", "600.00").text()
'slice 0 to 30,000: 30,000 x 0.02 = 600.00'
>>> translator("zh")("slice {lo} to {hi}").format(lo="0", hi="30,000")
'分段 0 至 30,000'

This module is at the bottom of the package: it imports nothing above it at
run time (the plan, the result and the policy types are only type hints).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from .runtime import Line

if TYPE_CHECKING:
    from .plan import Plan
    from .results import PayeeResult

__all__ = [
    "N_",
    "Approx",
    "NumberFormat",
    "Shape",
    "Step",
    "Wording",
    "Working",
    "dec",
    "flatten_detail",
    "formula_shown",
    "generic_working",
    "is_name",
    "needs_rounding",
    "plain",
    "round_like_plan",
    "signed_sum",
    "translator",
    "uncapped",
]

def N_(msgid: str) -> str:
    """Mark a phrase for the catalogues where it is written, translated later: ``msgid``
    (:func:`incentives.i18n.N_`, here so that a policy's module, imported to validate a
    plan, does not load the catalogues' module)."""
    return msgid


def translator(lang: str, context: str | None = None) -> Callable[[str], str]:
    """The function that translates a phrase (its English text, the msgid) into a
    language: :func:`incentives.i18n.translation` (an unknown language is a UsageError),
    imported when a statement is first worded."""
    from .i18n import translation

    return translation(lang, context)


# ---------------------------------------------------------------------- rows
@dataclass
class Step:
    """One row of a line's working: ``label: expr = result`` (each part optional)."""

    label: str
    expr: str | None = None
    result: str | None = None
    #: a figure of the whole group (a pool's size, the group's mean, who else is tied),
    #: shown as labelled context after the payee's own lines, not in the line's working
    team: bool = False

    def text(self) -> str:
        """The row as one line of text (``≈`` in place of ``=`` for a rounded result)."""
        sep = " " if self.result is not None and self.result.startswith("≈ ") else " = "
        body = sep.join(p for p in (self.expr, self.result) if p is not None)
        return f"{self.label}: {body}" if body else self.label


# ------------------------------------------------------------------ numbers
class NumberFormat:
    """How a statement prints numbers: amounts at the plan's quantum, plain numbers
    without trailing zeros, both with thousands separators."""

    def __init__(self, quantum: Decimal) -> None:
        self.quantum = quantum

    def money(self, value: Any) -> str:
        """An amount: at the plan's quantum when it is exact there, else every digit."""
        d = dec(value)
        if d is None:
            return str(value)
        q = self.quantum.normalize()
        exp = q.as_tuple().exponent
        places = Decimal(1).scaleb(exp) if isinstance(exp, int) and exp < 0 else Decimal(1)
        if d == d.quantize(places):
            return format(d.quantize(places), ",f")
        return format(d.normalize(), ",f")

    def num(self, value: Any) -> str:
        """A plain number, without trailing zeros, with thousands separators."""
        d = dec(value)
        if d is None:
            return str(value)
        if d == d.to_integral_value():
            return format(d.quantize(Decimal(1)), ",f")
        return format(d.normalize(), ",f")

    def approx(self, value: Any, places: int = 4) -> tuple[str, bool]:
        """A number rounded for display to ``places``; whether it was rounded."""
        d = dec(value)
        if d is None:
            return str(value), False
        shown = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if shown == d:
            return self.num(d), False
        return self.num(shown.normalize()), True

    def expr(self, text: str) -> str:
        """A substituted formula, for people: ``*`` as ``x``, numbers with separators."""
        text = re.sub(r"\s*\*\s*", " x ", text)
        return re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])",
                      lambda m: format(Decimal(m.group()), ",f"), text)


def dec(value: Any) -> Decimal | None:
    """``value`` as a Decimal (from a Decimal, an int or number text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return None
    return None


def signed_sum(amounts: Sequence[str]) -> str:
    """``a + b - c`` from formatted amounts (a leading minus becomes a subtraction)."""
    if not amounts:
        return "0"
    out = amounts[0]
    for a in amounts[1:]:
        out += f" - {a[1:]}" if a.startswith("-") else f" + {a}"
    return out


def plain(f: NumberFormat, value: Any) -> str:
    """Any value of a line's details as text: numbers plainly, dates in ISO form."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (Decimal, int)):
        return f.num(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


class Approx:
    """Numbers for working rows: exact when short, else to 6 places, remembering that."""

    def __init__(self, f: NumberFormat) -> None:
        self.f = f
        self.rounded = False

    def __call__(self, value: Any) -> str:
        text, rounded = self.f.approx(value, 6)
        self.rounded = self.rounded or rounded
        return text

    def result(self, value: Any) -> str:
        """A row's result: ``≈ value`` when this row showed a rounded number (then forgotten)."""
        text = self(value)
        if self.rounded:
            self.rounded = False
            return "≈ " + text
        return text


# ------------------------------------------------------------- the context
class Wording:
    """What a line's working needs: phrases, formatting, the plan and the result.

    ``c.t(msgid, **fields)`` is a phrase (msgid: its English text) in the statement's
    language; ``c.fmt`` formats numbers; ``c.name(id)`` names an input or a policy;
    ``c.say(text)`` words free text from details; ``c.hints`` collects next steps.
    """

    def __init__(self, lang: str, fmt: NumberFormat, plan: Plan | None, result: PayeeResult,
                 labels: Mapping[str, str],
                 working_for: Callable[[Any, Mapping[str, Any]], Working] | None = None) -> None:
        #: the statement's language (``"en"``, ``"zh"``)
        self.lang = lang
        self.fmt = fmt
        #: the plan (None for a statement without one), used through its attributes only
        self.plan = plan
        #: the payee's result the statement is of
        self.result = result
        #: labels of inputs and policies, by id
        self.labels = labels
        #: next steps for the payee (``"<line label>: <hint>"``), shown after the total
        self.hints: list[str] = []
        self._translate = translator(lang)
        self._working_for = working_for

    def working_for(self, spec: Any, details: Mapping[str, Any]) -> Working:
        """The statement working of a line of ``spec`` (a policy, or None: then guessed
        from ``details``), for a policy whose lines hold other policies' (a combination)."""
        if self._working_for is None:
            return generic_working
        return self._working_for(spec, details)

    def t(self, msgid: str, /, **kw: Any) -> str:
        """The phrase ``msgid`` (its English text) in the statement's language, filled."""
        return self._translate(msgid).format(**kw)

    def t_in(self, context: str, msgid: str, /, **kw: Any) -> str:
        """The phrase ``msgid`` of gettext context ``context`` (e.g.
        :data:`incentives.i18n.TIE_RULE`) in the statement's language, filled."""
        return translator(self.lang, context)(msgid).format(**kw)

    def name(self, ident: str) -> str:
        """An input or policy named for people: its label and id, or the id."""
        if ident == "total":
            return self.t("total")
        label = self.labels.get(ident)
        return f"{label} ({ident})" if label and label != ident else ident

    def say(self, text: Any) -> str:
        """Free text from a policy's details, in the statement's language."""
        from .i18n import reword

        return reword(str(text), self.lang)


#: a policy's statement working: ``working(c, line, spec)`` gives the rows under the line
#: (``spec`` is the line's policy, or None when the statement has no plan)
Working = Callable[[Wording, Line, Any], list[Step]]
#: whether a line's details have a policy's shape (for statements without a plan)
Shape = Callable[[Mapping[str, Any]], bool]


# ------------------------------------------------------------ shared helpers
def uncapped(d: Mapping[str, Any]) -> Any:
    """A line's amount before its cap (its amount when it was not capped)."""
    capped = d.get("capped")
    if isinstance(capped, Mapping):
        return capped.get("uncapped")
    return d.get("amount")


def formula_shown(c: Wording, formula: Any, substituted: Any) -> str | None:
    """A formula beside its value: a single name with its label, else the substituted text."""
    if not is_name(formula):
        return None
    text = str(formula).strip()
    if re.fullmatch(r"[^\W\d]\w*", text):
        return c.name(text)
    if substituted is not None:
        return f"{c.fmt.expr(text)} = {c.fmt.expr(str(substituted))}"
    return c.fmt.expr(text)


def is_name(formula: Any) -> bool:
    """Whether a formula is worth showing beside its value (not a plain number)."""
    return bool(formula) and dec(str(formula).strip()) is None


def needs_rounding(steps: list[Step], amount: str) -> bool:
    """Whether the working does not already end in the line's amount."""
    return not steps or steps[-1].result != amount


def round_like_plan(c: Wording, amount: Decimal) -> Decimal:
    """``amount`` rounded by the plan's rule (the quantum, half-up when no plan is known)."""
    if c.plan is not None:
        return c.plan.rounding.round(amount)
    return amount.quantize(Decimal("0.01"))


def flatten_detail(c: Wording, key: str, value: Any, steps: list[Step], depth: int = 0) -> None:
    """Add ``key: value`` rows to ``steps``, nested mappings and lists flattened
    (``key.sub``, ``key[1]``), at most four levels deep."""
    if depth > 3:
        steps.append(Step(key, None, str(value)))
        return
    if isinstance(value, Mapping):
        if all(not isinstance(v, (Mapping, list)) for v in value.values()):
            inner = ", ".join(f"{k} {plain(c.fmt, v)}" for k, v in value.items())
            steps.append(Step(key, None, inner or "-"))
        else:
            for k, v in value.items():
                flatten_detail(c, f"{key}.{k}", v, steps, depth + 1)
    elif isinstance(value, list):
        if not value:
            steps.append(Step(key, None, "-"))
        for i, v in enumerate(value):
            flatten_detail(c, f"{key}[{i + 1}]", v, steps, depth + 1)
    else:
        steps.append(Step(key, None, plain(c.fmt, value)))


def generic_working(c: Wording, line: Line, spec: Any) -> list[Step]:
    """The working of a policy that has none of its own: every key of its details,
    flattened, in order (a formula and its substitution first)."""
    f = c.fmt
    steps: list[Step] = []
    d = line.details
    if "formula" in d and "substituted" in d:
        steps.append(Step(c.t("formula"), f.expr(str(d["formula"]))))
        steps.append(Step(c.t("amount"), f.expr(str(d["substituted"])), f.money(line.amount)))
    for key, value in d.items():
        if key in ("formula", "substituted"):
            continue
        flatten_detail(c, str(key), value, steps)
        if any(w in str(key) for w in ("to_next", "gap", "next_")) and not isinstance(
                value, (Mapping, list)):
            c.hints.append(f"{line.label}: {key} {plain(f, value)}")
    return steps
