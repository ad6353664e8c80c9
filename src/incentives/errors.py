"""The exception tree of ``incentives``.

Every error the library raises on purpose is one of these; each subclasses the
built-in it resembles, so ``except ValueError`` keeps working, and each carries
its facts as attributes, not only as prose::

    IncentivesError(Exception)
    ├── PlanError(ValueError)            .file .line .path .policy .suggestion
    │   ├── FormulaError                 .formula .name
    │   │   └── FormulaLimitError        a documented limit was exceeded
    │   └── PlanLimitError               the plan text itself is too large / deep
    ├── RecordError(ValueError)          .payee .period .field
    ├── EvaluationError(ArithmeticError) .payee .period .policy
    │   └── InfeasibleError              bounds that cannot be met (pools, balancing)
    ├── StateError(ValueError)           a ledger / state document is wrong
    └── UsageError(ValueError)           the command line or an API call is wrong

Errors never paste tracebacks into their message; third-party errors are
translated at the boundary and chained with ``from``.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "CONTROL_CHARACTERS",
    "EvaluationError",
    "FormulaError",
    "FormulaLimitError",
    "IncentivesError",
    "InfeasibleError",
    "PlanError",
    "PlanLimitError",
    "RecordError",
    "StateError",
    "TransactionError",
    "UsageError",
    "describe_exception",
    "did_you_mean",
    "error_dict",
    "format_path",
    "located_error",
]

#: What ids and text read from outside may not hold: C0 and C1 control characters
#: (NUL, ESC, tab, newlines...), DEL, the line and paragraph separators U+2028/U+2029,
#: the bidirectional embeddings, overrides and isolates, and lone surrogates. Shown
#: on a terminal or in a spreadsheet, they could hide or rewrite what is displayed.
#: (Every one of them is unprintable: text whose ``str.isprintable()`` holds has
#: none. Compiled the first time it is read: see :func:`__getattr__`.)
CONTROL_CHARACTERS: re.Pattern[str]
_CONTROL_CHARACTERS = "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"


def __getattr__(name: str) -> Any:
    """:data:`CONTROL_CHARACTERS`, compiled the first time it is read (a class this wide
    takes half a millisecond to compile; ``incentives validate`` of a plan whose text is
    all printable never needs it)."""
    if name == "CONTROL_CHARACTERS":
        found = globals()[name] = re.compile(_CONTROL_CHARACTERS)
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return a ``did you mean 'x'?`` hint, or ``None`` if nothing is close.

    >>> did_you_mean("trafic_revenue", ["traffic_revenue", "new_fax"])
    "did you mean 'traffic_revenue'?"
    """
    from difflib import get_close_matches  # (only a mistake needs it)

    matches = get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def format_path(path: Sequence[str | int]) -> str:
    """Render a path inside a plan the way people write it.

    >>> format_path(("policies", 2, "tiers", 1, "rate"))
    'policies[2].tiers[1].rate'
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class IncentivesError(Exception):
    """Base class of every error ``incentives`` raises on purpose."""


class PlanError(IncentivesError, ValueError):
    """A plan is malformed: it is refused when it loads.

    The message reads like ``plan.yaml:41 policies[2] (tiered 'traffic'):
    tiers[1].rate: unknown name 'trafic_revenue'; did you mean 'traffic_revenue'?``
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: Sequence[str | int] = (),
        policy: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = tuple(path)
        self.policy = policy
        self.suggestion = suggestion
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<plan>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.path:
            parts.append(format_path(self.path))
        if self.policy:
            parts.append(f"(policy {self.policy!r})")
        text = " ".join(parts) + ": " + self.message
        if self.suggestion:
            text += f"; {self.suggestion}"
        return text

    def located(
        self,
        *,
        file: str | None = None,
        line: int | None = None,
        path: Sequence[str | int] | None = None,
        policy: str | None = None,
    ) -> PlanError:
        """Return a copy of this error with missing location facts filled in."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone.file = self.file or file
        clone.line = self.line if self.line is not None else line
        clone.path = self.path or tuple(path or ())
        clone.policy = self.policy or policy
        Exception.__init__(clone, clone._render())
        return clone


class FormulaError(PlanError):
    """A formula in a plan cannot be accepted (unknown name, forbidden construct)."""

    def __init__(
        self,
        message: str,
        *,
        formula: str | None = None,
        name: str | None = None,
        **where: Any,
    ) -> None:
        self.formula = formula
        self.name = name
        super().__init__(message, **where)


class FormulaLimitError(FormulaError):
    """A formula exceeds a documented limit (length, depth, power, string size)."""


class PlanLimitError(PlanError):
    """A plan file exceeds a documented limit (size, nesting, alias expansion)."""


class RecordError(IncentivesError, ValueError):
    """A performance record is wrong: reported with its payee, period and field."""

    def __init__(
        self,
        message: str,
        *,
        payee: str | None = None,
        period: str | None = None,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        self.message = message
        self.payee = payee
        self.period = period
        self.field = field
        self.index = index
        #: where the row came from, when it is a table of a database, a Parquet file or
        #: a workbook's sheet (see :meth:`from_source`)
        self.source: str | None = None
        super().__init__(self._render())

    def from_source(self, source: str) -> None:
        """Say which table (or sheet, or file) the row came from: its message then starts
        with ``source`` and its JSON has a ``source`` key. Set once."""
        if self.source is None:
            self.source = source
            self.args = (f"{source}: {self._render()}",)

    def _who(self) -> str:
        """Whose error it is, as a message starts."""
        who = f"payee {self.payee!r}" if self.payee is not None else "record"
        if self.index is not None and self.payee is None:
            who += f" #{self.index + 1}"
        return who

    def _render(self) -> str:
        who = self._who()
        if self.period:
            who += f" period {self.period}"
        if self.field:
            who += f" field {self.field!r}"
        return f"{who}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The error as it appears in the ``errors`` list of JSON output."""
        return {
            "kind": "record",
            "payee": self.payee,
            "period": self.period,
            "field": self.field,
            "message": self.message,
            **({"source": self.source} if self.source is not None else {}),
        }


class TransactionError(RecordError):
    """A transaction (or a hierarchy or assignment row) is wrong: reported with its kind,
    its id and the field, and the payee and period where they are known. The transaction
    is not credited at all; the others are still paid.

    >>> str(TransactionError("shares sum to 0.9, not 1", kind="invoices", id="inv-1",
    ...                      field="sellers"))
    "invoices 'inv-1' field 'sellers': shares sum to 0.9, not 1"
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        id: str | None = None,
        payee: str | None = None,
        period: str | None = None,
        field: str | None = None,
        index: int | None = None,
    ) -> None:
        self.kind = kind
        self.id = id
        super().__init__(message, payee=payee, period=period, field=field, index=index)

    def _who(self) -> str:
        who = self.kind or "transaction"
        if self.id is not None:
            who += f" {self.id!r}"
        elif self.index is not None:
            who += f" #{self.index + 1}"
        if self.payee is not None:
            who += f" payee {self.payee!r}"
        return who

    def to_dict(self) -> dict[str, Any]:
        """The error as it appears in the ``errors`` list of JSON output."""
        return {**super().to_dict(), "kind": "transaction", "transaction_kind": self.kind,
                "id": self.id}


class EvaluationError(IncentivesError, ArithmeticError):
    """A record is valid but a policy cannot be evaluated for it (e.g. division by zero)."""

    def __init__(
        self,
        message: str,
        *,
        payee: str | None = None,
        period: str | None = None,
        policy: str | None = None,
        group: str | None = None,
    ) -> None:
        self.message = message
        self.payee = payee
        self.period = period
        self.policy = policy
        self.group = group
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.payee is not None:
            parts.append(f"payee {self.payee!r}")
        elif self.group is not None:
            parts.append(f"group {self.group!r}")
        if self.period:
            parts.append(f"period {self.period}")
        if self.policy:
            parts.append(f"policy {self.policy!r}")
        return (" ".join(parts) + ": " if parts else "") + self.message

    def to_dict(self) -> dict[str, Any]:
        """The error as it appears in the ``errors`` list of JSON output."""
        return {
            "kind": "evaluation",
            "payee": self.payee,
            "period": self.period,
            "group": self.group,
            "policy": self.policy,
            "message": self.message,
        }


class InfeasibleError(EvaluationError):
    """Bounds that cannot all be met (a pool's floors exceed the pool, and so on)."""


class StateError(IncentivesError, ValueError):
    """A state (ledger) document is malformed, foreign, or from another plan."""


class UsageError(IncentivesError, ValueError):
    """The command line, or an API call, is used wrongly."""


def describe_exception(exc: BaseException) -> str:
    """What went wrong, in words, for an exception raised while evaluating a policy.

    >>> describe_exception(decimal.DivisionByZero())
    'division by zero'
    >>> describe_exception(EvaluationError("no value for 'x'"))
    "no value for 'x'"
    """
    if isinstance(exc, decimal.DivisionByZero | ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, decimal.Overflow):
        return "a number grew too large"
    if isinstance(exc, decimal.InvalidOperation):
        return "an invalid operation (such as 0 / 0)"
    if isinstance(exc, IncentivesError) and hasattr(exc, "message"):
        return str(exc.message)
    return str(exc) or type(exc).__name__


def located_error(exc: IncentivesError, payee: str, period: str,
                  policy: str | None) -> IncentivesError:
    """``exc`` (raised by ``policy`` for ``payee`` in ``period``) with those facts filled in.

    Facts the error already holds are kept; its message is rendered again.

    >>> str(located_error(EvaluationError("division by zero"), "ann", "2026-05", "bonus"))
    "payee 'ann' period 2026-05 policy 'bonus': division by zero"
    """
    if isinstance(exc, EvaluationError):
        exc.payee = exc.payee or payee
        exc.period = exc.period or period
        exc.policy = exc.policy or policy
        exc.args = (exc._render(),)
        return exc
    if isinstance(exc, RecordError):
        exc.payee = exc.payee or payee
        exc.period = exc.period or period
        exc.args = (exc._render(),)
    return exc


def error_dict(e: BaseException) -> dict[str, Any]:
    """An error as it appears in the ``errors`` list of JSON output.

    >>> error_dict(ValueError("bad"))
    {'kind': 'ValueError', 'message': 'bad'}
    """
    to_dict = getattr(e, "to_dict", None)
    if to_dict is not None:
        return to_dict()  # type: ignore[no-any-return]
    return {"kind": type(e).__name__, "message": str(e)}
