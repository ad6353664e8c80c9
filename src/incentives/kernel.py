"""Payee kernels: a run of payee-scoped policies compiled into one Python function.

When a plan compiles, each run of consecutive payee-scoped policies (those
between two team policies) becomes a *kernel*: one function, written out for
this plan, that evaluates the whole run for one payee. Each policy that can
write itself out (:meth:`~incentives.policies.base.Compiled.emit`) contributes
its code with its formulas inlined (their checked expressions, over the
payee's environment ``e``); any other policy is called as it is
(``policy.apply(s)``). The kernel does what the policies' ``apply`` methods
would do, in the same order, with the same rounding, lines, lazy details
and errors; it only leaves out the calls between them. A test evaluates every
example plan both ways and compares the JSON byte for byte.

What goes into the generated source is safe by construction: formulas are
the checked trees of :mod:`incentives.formulas` (no attribute access, only
whitelisted calls), names and labels are string literals written with
``repr``, and every other value (numbers, functions, policies) is bound by
reference in the kernel's namespace, never written as text.
"""

from __future__ import annotations

import ast
import decimal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from .errors import EvaluationError, IncentivesError, describe_exception, located_error
from .formulas import ABSENT, RUNTIME_ERRORS, Formula, evaluation_error
from .money import CONTEXT, MAX_DIGITS, ZERO, Rounding
from .policies.base import Compiled, checked_amount
from .runtime import Line, PayeeState

__all__ = ["Kernel", "KernelWriter", "compile_kernel"]

Kernel = Callable[[PayeeState], None]

#: what a policy's arithmetic may raise for one payee (the payee fails, not the run)
EVAL_ERRORS = (ArithmeticError, ValueError, TypeError, KeyError, decimal.DecimalException)


class KernelWriter:
    """Collects the source of a kernel and the values its namespace binds."""

    def __init__(self, rounding: Rounding) -> None:
        self.lines: list[str] = []
        self.scope: dict[str, Any] = {"__builtins__": {}, "abs": abs, "len": len,
                                      "_Decimal": Decimal, "_MAXD": MAX_DIGITS,
                                      "_CTX": CONTEXT, "_Line": Line, "_ZERO": ZERO}
        self._consts: dict[int, str] = {}
        self._depth = 1
        self._temp = 0
        self.rounding = rounding
        self._lined: set[str] = set()  # the policies a line was written for

    # ------------------------------------------------------------ text
    def __call__(self, line: str) -> None:
        """Add one line of code at the current indentation."""
        self.lines.append("    " * self._depth + line)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        """``header:`` followed by an indented block (what is written inside it)."""
        self(header + ":")
        self._depth += 1
        mark = len(self.lines)
        try:
            yield
        finally:
            if len(self.lines) == mark:
                self("pass")
            self._depth -= 1

    def const(self, value: Any) -> str:
        """The name the kernel reads ``value`` by (bound once, by reference)."""
        found = self._consts.get(id(value))
        if found is not None and self.scope[found] is value:
            return found
        name = f"_c{len(self._consts)}"
        self._consts[id(value)] = name
        self.scope[name] = value
        return name

    def temp(self, stem: str = "v") -> str:
        """A fresh local variable name."""
        self._temp += 1
        return f"_{stem}{self._temp}"

    # ------------------------------------------------------------ formulas
    def inline(self, f: Formula) -> str | None:
        """The formula's checked expression as source over ``e`` (None: not inlinable)."""
        if f.inline is None:
            return None
        body, names = f.inline
        # the formula's own names are unique to it (see formulas._FastPath): bound as they are
        self.scope.update(names)
        return ast.unparse(body)

    def evaluate(self, f: Formula, var: str | None = None) -> str:
        """Write ``var = <formula>`` (errors as the formula's own); return ``var``."""
        var = var or self.temp()
        text = self.inline(f)
        if text is None:
            self(f"{var} = {self.const(f.fn)}(e)")
            return var
        with self.block("try"):
            self(f"{var} = {text}")
        with self.block("except _errors as exc"):
            self(f"raise _error({self.const(f.source)}, exc) from exc")
        return var

    def capture(self, f: Formula) -> str:
        """Write what ``f.capture(e)`` does; return the expression of the values taken
        (a local variable, or ``()`` for a formula without names)."""
        getter = f.capture_getter
        if getter is not None:
            var = self.temp("cap")
            with self.block("try"):
                self(f"{var} = {self.const(getter)}(e)")
            with self.block("except KeyError"):
                self(f"{var} = {self.const(f.capture)}(e)")
            return var
        if f.names:
            return f"(e.get({f.captured_names[0]!r}, {self.const(ABSENT)}),)"
        return "()"

    def record(self, kind: type[tuple[Any, ...]], **fields: str) -> str:
        """The expression capturing a record ``kind`` (a named tuple) from the
        expressions of its fields, given by name (every field, none other).

        What it makes is the record's values in the order of its fields, a plain
        tuple: the policy's ``details`` reads it as the record (``kind._make``) when
        the line's details are first read. Making the named tuple itself here
        (``tuple.__new__(kind, ...)``) costs about as much again as the tuple, on
        every line of every payee, for details most runs never read.
        """
        names: tuple[str, ...] = kind._fields  # type: ignore[attr-defined]
        if set(fields) != set(names):
            missing, extra = set(names) - set(fields), set(fields) - set(names)
            raise TypeError(f"{kind.__name__}: missing {sorted(missing)}, unknown {sorted(extra)}")
        return "(" + ", ".join(fields[n] for n in names) + ",)"

    # ------------------------------------------------------------ lines
    def line(self, policy: Compiled, amount: str, *, explain: Any = None,
             captured: str = "None", type: str | None = None) -> str:
        """Write what :meth:`Compiled.line` does for ``amount``; return the rounded amount."""
        r = self.temp("r")
        self(f"{r} = {amount}")
        with self.block(f"if {r}.__class__ is not _Decimal or not {r}.is_finite() "
                        f"or {r}.adjusted() >= _MAXD"):
            self(f"{r} = {self.const(checked_amount)}({r})")
        q = self.rounding.plain_quantum
        if q is not None:
            self(f"{r} = {r}.quantize({self.const(q)}, {self.rounding.decimal_mode!r}, _CTX)")
            with self.block(f"if not {r}"):  # zero, made once (never "-0.00")
                self(f"{r} = {self.const(Decimal(0).quantize(q))}")
        else:
            self(f"{r} = {self.const(policy.round)}({r})")
            with self.block(f"if not {r}"):
                self(f"{r} = abs({r})")
        details = "None" if explain is not None else "{}"
        ex = self.const(explain) if explain is not None else "None"
        self(f"lines.append(_Line({policy.id!r}, {self.const(policy.label)}, {r}, "
             f"{(type or policy.line_type)!r}, {details}, {ex}, {captured}))")
        self(f"total = e['total'] = total + {r}")
        pid = repr(policy.id)
        if policy.id in self._lined:
            self(f"e[{pid}] = e[{pid}] + {r} if {pid} in e else {r}")
        else:
            # a policy's first line here: nothing else makes its name (a plan's names
            # are unique, and its skip runs only where this line does not)
            self._lined.add(policy.id)
            self(f"e[{pid}] = {r}")
        return r


def compile_kernel(policies: Sequence[Compiled], rounding: Rounding) -> Kernel:
    """One function evaluating ``policies`` (payee-scoped, in order) for one payee.

    The kernel never raises for a payee's own failure: like the engine's
    policy-by-policy loop, it records the located error on ``s.error`` (and
    evaluates nothing further for that payee).
    """
    w = KernelWriter(rounding)
    # an inlined formula fails as the formula itself would (formulas' own handler)
    w.scope["_errors"] = RUNTIME_ERRORS
    w.scope["_error"] = evaluation_error
    w.scope["_fail"] = _failure(policies)
    body: list[str] = []
    w.lines = body
    def call(method: str) -> None:
        # a policy called as it is sees and keeps the running total on the state
        w("s.total = total")
        w(f"{p}.{method}(s)")
        w("total = s.total")

    for i, policy in enumerate(policies):
        w(f"step = {i}")
        p = w.const(policy)
        if policy.when is None:
            if not policy.emit(w):
                call("apply")
            continue
        cond = w.evaluate(policy.when)
        with w.block(f"if {cond}"):
            if not policy.emit(w):
                call("apply")
        with w.block("else"):
            call("skip")
    source = ["def kernel(s):",
              "    step = 0",
              "    try:",
              "        e = s.env",
              "        lines = s.lines",
              "        values = s.values",
              "        total = s.total",  # the running total, kept in a local
              *("    " + line for line in body),
              "        s.total = total",
              "    except _fail.catches as exc:",
              "        _fail(s, step, exc)"]
    text = "\n".join(source)
    code = compile(text, "<incentives kernel>", "exec")
    exec(code, w.scope)  # the source holds only checked formulas and literals (see above)
    kernel: Kernel = w.scope["kernel"]
    kernel.__doc__ = text  # what was compiled, for whoever debugs a plan
    return kernel


class _failure:
    """Records a payee's failure inside a kernel the way the engine's loop does."""

    catches = (IncentivesError, *EVAL_ERRORS)

    def __init__(self, policies: Sequence[Compiled]) -> None:
        self.policies = list(policies)

    def __call__(self, s: PayeeState, step: int, exc: BaseException) -> None:
        policy = self.policies[step]
        period = s.record.period
        if isinstance(exc, IncentivesError):
            s.error = located_error(exc, s.payee, period, policy.id)
        else:
            s.error = EvaluationError(describe_exception(exc), payee=s.payee, period=period,
                                      policy=policy.id)
