"""Formulas: checked once when a plan loads, evaluated many times, exactly.

This is the only module that knows simpleeval. A formula is a short Python
expression over declared names (inputs, parameters, earlier results) and a
small whitelist of functions. When a plan loads, each formula is

1. parsed and checked against :data:`LIMITS` (length, depth, size, powers,
   string literals) and a whitelist of syntax: no attribute access, no
   subscripts, no lambdas, comprehensions, imports or keyword arguments;
2. checked for names: every name must be declared, else a :class:`FormulaError`
   with a did-you-mean suggestion; names starting with ``_`` are refused;
3. type-checked lightly (numbers, text, booleans), so ``employment + 1`` fails
   at load rather than on the 40,000th record;
4. compiled twice: a *reference* evaluator (simpleeval walking the checked
   tree) and a *fast path* (the checked tree turned into one Python function,
   the way a person would write it by hand). A property test shows the two
   agree.

Numeric literals are exact decimals: ``0.05`` is five hundredths.

>>> f = compile_formula("min(traffic_revenue * 0.03, 5000)", {"traffic_revenue": "number"})
>>> f({"traffic_revenue": Decimal("48000.50")})
Decimal('1440.0150')
>>> f.reference({"traffic_revenue": Decimal("48000.50")})
Decimal('1440.0150')
"""

from __future__ import annotations

import ast
import decimal
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from typing import Any, Literal, NamedTuple

import simpleeval

from .errors import EvaluationError, FormulaError, FormulaLimitError, did_you_mean
from .money import CONTEXT, ZERO, Rounding, range_problem

__all__ = [
    "ABSENT",
    "FUNCTIONS",
    "LIMITS",
    "RUNTIME_ERRORS",
    "Formula",
    "NameType",
    "compile_formula",
    "evaluation_error",
]

NameType = Literal["number", "text", "bool", "date", "any"]


@dataclass(frozen=True)
class Limits:
    """The documented limits every formula is held to when a plan loads."""

    max_length: int = 2000
    max_depth: int = 40
    max_nodes: int = 400
    max_string: int = 200
    max_exponent: int = 64
    max_literal_digits: int = 24


LIMITS = Limits()

_DECIMAL_LITERAL = re.compile(r"^[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9_]+)?$|^\.[0-9_]+([eE][-+]?[0-9_]+)?$")
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


# --------------------------------------------------------------------------
# whitelisted functions


def _clamp(x: Decimal, lo: Decimal, hi: Decimal) -> Decimal:
    if lo > hi:
        raise ValueError(f"clamp: lower bound {lo} is above upper bound {hi}")
    return lo if x < lo else hi if x > hi else x


def _div(a: Decimal, b: Decimal, otherwise: Decimal) -> Decimal:
    return otherwise if b == 0 else a / b


def _floor(x: Decimal) -> Decimal:
    return x.to_integral_value(rounding=decimal.ROUND_FLOOR)


def _ceil(x: Decimal) -> Decimal:
    return x.to_integral_value(rounding=decimal.ROUND_CEILING)


def _pow(a: Decimal, b: Decimal) -> Decimal:
    # the exponent is a checked literal; the context bounds the digits
    if not a and b < 0:
        raise ZeroDivisionError("0 raised to a negative power")
    return a**b


class _Fn(NamedTuple):
    impl: Callable[..., Any]
    min_args: int
    max_args: int | None
    doc: str


#: The functions a formula may call, with their arity and meaning.
FUNCTIONS: dict[str, _Fn] = {
    # the builtins themselves: always called with two or more plain arguments
    "min": _Fn(min, 2, None, "the smallest of two or more numbers"),
    "max": _Fn(max, 2, None, "the largest of two or more numbers"),
    "abs": _Fn(abs, 1, 1, "the absolute value"),
    "clamp": _Fn(_clamp, 3, 3, "clamp(x, lo, hi): x held between lo and hi"),
    "div": _Fn(_div, 3, 3, "div(a, b, otherwise): a / b, or `otherwise` when b is 0"),
    "floor": _Fn(_floor, 1, 1, "round down to a whole number"),
    "ceil": _Fn(_ceil, 1, 1, "round up to a whole number"),
    "round": _Fn(abs, 1, 1, "round to the plan's quantum with the plan's mode"),
    "round_to": _Fn(abs, 2, 2, "round_to(x, q): round to quantum q with the plan's mode"),
}


def _functions_for(rounding: Rounding) -> dict[str, Callable[..., Any]]:
    def _round(x: Decimal) -> Decimal:
        return rounding.round(x)

    def _round_to(x: Decimal, q: Decimal) -> Decimal:
        if q <= 0:
            raise ValueError("round_to: the quantum must be positive")
        return Rounding(quantum=q, mode=rounding.mode).round(x)

    impls = {name: fn.impl for name, fn in FUNCTIONS.items()}
    impls["round"] = _round
    impls["round_to"] = _round_to
    return impls


_DEFAULT_ROUNDING = Rounding()
_DEFAULT_FUNCS = _functions_for(_DEFAULT_ROUNDING)


# --------------------------------------------------------------------------
# the compiled formula


@dataclass(eq=False)
class Formula:
    """A checked, compiled formula. Call it with a mapping of names to values."""

    source: str
    names: frozenset[str]
    result_type: NameType
    _fast: Callable[[Mapping[str, Any]], Any] = field(repr=False)
    _tree: ast.expr = field(repr=False)
    _funcs: dict[str, Callable[..., Any]] = field(repr=False)
    constant: Decimal | None = None
    _template: tuple[list[str], list[str]] | None = field(default=None, repr=False)
    _getter: Callable[[Mapping[str, Any]], Any] | None = field(default=None, repr=False)
    _sorted_names: tuple[str, ...] = field(default=(), repr=False)
    _substituter: Callable[[tuple[Any, ...]], str] | None = field(default=None, repr=False)
    #: the checked fast-path expression over ``e[...]`` and the values of its other names
    #: (unique to this formula), for :mod:`incentives.kernel` to inline (None: call the
    #: formula instead)
    inline: tuple[ast.expr, dict[str, Any]] | None = field(default=None, repr=False)

    def __call__(self, env: Mapping[str, Any]) -> Any:
        """Evaluate on the fast path.

        A failure (division by zero, a number too large, a missing name) is an
        :class:`~incentives.errors.EvaluationError` naming the formula.
        """
        return self._fast(env)

    @property
    def fn(self) -> Callable[[Mapping[str, Any]], Any]:
        """The compiled function itself (what calling the formula calls, one call
        cheaper for the hot loops of policies); it raises the same errors."""
        return self._fast

    def reference(self, env: Mapping[str, Any]) -> Any:
        """Evaluate with simpleeval walking the checked tree (the reference path)."""
        evaluator = simpleeval.EvalWithCompoundTypes(
            functions=self._funcs, names=dict(env)
        )
        evaluator.operators[ast.Pow] = _pow
        try:
            with decimal.localcontext(CONTEXT):
                return evaluator.eval(self.source, previously_parsed=self._tree)
        except (*RUNTIME_ERRORS, simpleeval.InvalidExpression) as exc:
            raise evaluation_error(self.source, exc) from exc

    def substitute(self, env: Mapping[str, Any]) -> str:
        """The formula with each name replaced by its value, for explanations.

        >>> compile_formula("a * 0.02", {"a": "number"}).substitute({"a": Decimal("300")})
        '300 * 0.02'
        """
        template = self._template
        if template is None:
            template = self._template = _substitution_template(self.source)
        texts, slots = template
        out = [texts[0]]
        for name, text in zip(slots, texts[1:], strict=True):
            if name in env:
                value = env[name]
                out.append(repr(value) if isinstance(value, str) else str(value))
            else:
                out.append(name)
            out.append(text)
        return "".join(out)

    def capture(self, env: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values of this formula's names in ``env`` (one per name, in sorted order;
        a name with no value is marked absent), taken cheaply when a line is made so
        that :meth:`substituted` can explain the formula later from them.

        >>> f = compile_formula("a * b", {"a": "number", "b": "number"})
        >>> values = f.capture({"a": Decimal("3"), "b": Decimal("0.5")})
        >>> values
        (Decimal('3'), Decimal('0.5'))
        >>> f.substituted(values)
        '3 * 0.5'
        """
        getter = self._getter
        if getter is not None:  # two names or more
            try:
                return getter(env)  # type: ignore[no-any-return]
            except KeyError:  # a name with no value (in a branch not taken)
                return tuple([env.get(n, ABSENT) for n in self._sorted_names])
        if self._sorted_names:
            return (env.get(self._sorted_names[0], ABSENT),)
        return ()

    def substituted(self, values: tuple[Any, ...]) -> str:
        """:meth:`substitute` on the ``values`` :meth:`capture` took."""
        return self.substitute({n: v for n, v in zip(self._sorted_names, values, strict=True)
                                if v is not ABSENT})

    def substituter(self) -> Callable[[tuple[Any, ...]], str]:
        """:meth:`substituted` as a function made once for this formula: each slot of the
        template knows the place of its name's value in what :meth:`capture` took, so a
        line's explanation builds no mapping per call.

        >>> f = compile_formula("a * b + a", {"a": "number", "b": "number"})
        >>> f.substituter()((Decimal("3"), Decimal("0.5")))
        '3 * 0.5 + 3'
        """
        made = self._substituter
        if made is not None:
            return made
        template = self._template
        if template is None:
            template = self._template = _substitution_template(self.source)
        texts, slots = template
        index = {n: i for i, n in enumerate(self._sorted_names)}
        first = texts[0]
        rest = tuple((index.get(name, -1), name, text)
                     for name, text in zip(slots, texts[1:], strict=True))

        def substituted(values: tuple[Any, ...]) -> str:
            out = [first]
            for i, name, text in rest:
                value = values[i] if i >= 0 else ABSENT
                if value is ABSENT:
                    out.append(name)
                elif isinstance(value, str):
                    out.append(repr(value))
                else:
                    out.append(str(value))
                out.append(text)
            return "".join(out)

        self._substituter = substituted
        return substituted

    @property
    def captured_names(self) -> tuple[str, ...]:
        """The names :meth:`capture` takes the values of, in the order it gives them."""
        return self._sorted_names

    @property
    def capture_getter(self) -> Callable[[Mapping[str, Any]], Any] | None:
        """:meth:`capture`'s fast path when the formula reads two names or more (an
        ``operator.itemgetter`` of :attr:`captured_names`, raising KeyError when one of
        them has no value), else None."""
        return self._getter

    def __post_init__(self) -> None:
        self._sorted_names = tuple(sorted(self.names))
        if len(self._sorted_names) > 1:
            self._getter = itemgetter(*self._sorted_names)

    def __str__(self) -> str:
        return self.source


#: The exceptions a formula may raise while it runs: each is reported as an
#: :class:`~incentives.errors.EvaluationError` (see :func:`evaluation_error`).
RUNTIME_ERRORS = (ArithmeticError, ValueError, TypeError, KeyError)
#: What a formula's captured values hold for a name that had no value.
ABSENT = object()
_SERIAL = itertools.count()  # tags the names each compiled formula binds


def evaluation_error(source: str, exc: BaseException) -> EvaluationError:
    """A runtime failure ``exc`` of the formula ``source`` as the library's own error.

    >>> str(evaluation_error("a / b", ZeroDivisionError()))
    "division by zero in formula 'a / b'"
    """
    if isinstance(exc, EvaluationError):
        return exc
    if isinstance(exc, (ZeroDivisionError, decimal.DivisionByZero)):
        what = "division by zero"
        if "negative power" in str(exc):
            what = "0 raised to a negative power"
    elif isinstance(exc, decimal.Overflow):
        what = "a number grew too large"
    elif isinstance(exc, decimal.InvalidOperation):
        what = "an invalid operation (such as 0 / 0, or a root of a negative number)"
    elif isinstance(exc, KeyError):
        what = f"no value for {exc.args[0]!r}" if exc.args else "a missing value"
    elif isinstance(exc, simpleeval.NameNotDefined):
        what = f"no value for {getattr(exc, 'name', '?')!r}"
    else:
        what = str(exc) or type(exc).__name__
    return EvaluationError(f"{what} in formula {source!r}")


def _substitution_template(source: str) -> tuple[list[str], list[str]]:
    """The formula unparsed once with a marker for each name: (texts, names).

    ``substitute`` joins the texts with each name's value, which gives what
    unparsing the tree with the values in place would (a name is written as
    its text, whatever it holds), without parsing again for every record.
    A NUL byte cannot occur in a formula's source (it does not parse), and
    ``ast.unparse`` escapes it inside string literals, so it marks safely.
    """
    slots: list[str] = []
    tree = _Substituter(source, slots).visit(_parse(source))
    parts = ast.unparse(tree).split("\x00")
    # unparsing may write the names in another order than the visit (``a if b else c``)
    return parts[0::2], [slots[int(i)] for i in parts[1::2]]


class _Substituter(ast.NodeTransformer):
    def __init__(self, source: str, slots: list[str]) -> None:
        self.source = source
        self.slots = slots

    def visit_Name(self, node: ast.Name) -> ast.AST:
        self.slots.append(node.id)
        return ast.Name(id=f"\x00{len(self.slots) - 1}\x00", ctx=ast.Load())

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            text = ast.get_source_segment(self.source, node) or repr(node.value)
            return ast.Name(id=text, ctx=ast.Load())
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node.args = [self.visit(a) for a in node.args]
        return node


def _parse(source: str) -> ast.expr:
    return ast.parse(source.strip(), mode="eval").body


def _literal(source: str, node: ast.Constant) -> Decimal:
    text = ast.get_source_segment(source, node)
    if text is None:  # pragma: no cover - ast always records positions here
        text = repr(node.value)
    return Decimal(text.replace("_", ""))


class _Checker:
    """Walks a parsed formula: whitelist, limits, names and light types."""

    def __init__(self, source: str, names: Mapping[str, NameType], where: dict[str, Any]):
        self.source = source
        self.names = names
        self.where = where
        self.used: set[str] = set()
        self.nodes = 0

    def fail(self, message: str, *, limit: bool = False, name: str | None = None,
             suggestion: str | None = None) -> FormulaError:
        cls = FormulaLimitError if limit else FormulaError
        shown = self.source if len(self.source) <= 120 else self.source[:100] + " ..."
        return cls(
            f"{message} in formula {shown!r}",
            formula=self.source,
            name=name,
            suggestion=suggestion,
            **self.where,
        )

    def check(self, node: ast.AST, depth: int = 0) -> NameType:
        self.nodes += 1
        if self.nodes > LIMITS.max_nodes:
            raise self.fail(f"formula too large (more than {LIMITS.max_nodes} parts)", limit=True)
        if depth > LIMITS.max_depth:
            raise self.fail(f"formula nested too deeply (more than {LIMITS.max_depth})", limit=True)
        d = depth + 1
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ARITH):
                raise self.fail(f"operator {type(node.op).__name__} is not allowed")
            if isinstance(node.op, ast.Pow):
                self._exponent(node.right)
            left = self.check(node.left, d)
            right = self.check(node.right, d)
            for side in (left, right):
                if side not in ("number", "any"):
                    raise self.fail(f"arithmetic on {side} values is not allowed")
            return "number"
        if isinstance(node, ast.UnaryOp):
            operand = self.check(node.operand, d)
            if isinstance(node.op, ast.Not):
                return "bool"
            if isinstance(node.op, (ast.USub, ast.UAdd)):
                if operand not in ("number", "any"):
                    raise self.fail(f"a sign on a {operand} value is not allowed")
                return "number"
            raise self.fail(f"operator {type(node.op).__name__} is not allowed")
        if isinstance(node, ast.BoolOp):
            kinds = {self.check(v, d) for v in node.values}
            self._no_mix(kinds, "and/or")
            return kinds.pop() if len(kinds) == 1 else "any"
        if isinstance(node, ast.Compare):
            return self._compare(node, d)
        if isinstance(node, ast.IfExp):
            self.check(node.test, d)
            a, b = self.check(node.body, d), self.check(node.orelse, d)
            self._no_mix({a, b}, "the two sides of 'x if c else y'")
            return a if a == b else "any"
        if isinstance(node, ast.Call):
            return self._call(node, d)
        what = {
            ast.Attribute: "attribute access (a.b)",
            ast.Subscript: "subscripts (a[b])",
            ast.Lambda: "lambda",
            ast.ListComp: "comprehensions",
            ast.SetComp: "comprehensions",
            ast.DictComp: "comprehensions",
            ast.GeneratorExp: "generator expressions",
            ast.JoinedStr: "f-strings",
            ast.NamedExpr: "assignment (:=)",
            ast.Starred: "star arguments",
            ast.Await: "await",
            ast.Yield: "yield",
            ast.YieldFrom: "yield",
            ast.Dict: "dict literals",
            ast.Set: "set literals",
            ast.List: "list literals outside 'in'",
            ast.Tuple: "tuples outside 'in'",
            ast.Slice: "slices",
        }.get(type(node), type(node).__name__)
        raise self.fail(f"{what} not allowed")

    def _constant(self, node: ast.Constant) -> NameType:
        v = node.value
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, (int, float)):
            text = ast.get_source_segment(self.source, node) or ""
            if not _DECIMAL_LITERAL.match(text):
                raise self.fail(f"number {text[:40]!r} is not written in decimal digits")
            if "_" in text:  # 4_8000 is not what it looks like: refused, as everywhere
                raise self.fail(f"number {text[:40]!r} has a digit separator "
                                f"(write {text[:40].replace('_', '')})")
            problem = range_problem(Decimal(text))
            if problem:
                raise self.fail(f"number {text[:40]} {problem}", limit=True)
            digits = len(text.replace("_", "").replace(".", ""))
            if digits > LIMITS.max_literal_digits or (isinstance(v, float) and (
                v != v or v in (float("inf"), float("-inf")) or abs(v) >= 1e18
            )) or (isinstance(v, int) and abs(v) >= 10**18):
                raise self.fail(f"number {text[:40]} is too large", limit=True)
            return "number"
        if isinstance(v, str):
            if len(v) > LIMITS.max_string:
                raise self.fail(
                    f"string literal too long ({len(v)} characters, at most {LIMITS.max_string})",
                    limit=True,
                )
            return "text"
        raise self.fail(f"literal {type(v).__name__} not allowed")

    def _name(self, node: ast.Name) -> NameType:
        name = node.id
        if name.startswith("_"):
            raise self.fail(f"name {name!r} is not allowed (names may not start with '_')",
                            name=name)
        if name not in self.names:
            hint = did_you_mean(name, self.names)
            if name in FUNCTIONS:
                hint = f"{name!r} is a function: call it as {name}(...)"
            raise self.fail(f"unknown name {name!r}", name=name, suggestion=hint)
        self.used.add(name)
        return self.names[name]

    def _exponent(self, node: ast.AST) -> None:
        inner = node.operand if isinstance(node, ast.UnaryOp) and isinstance(
            node.op, (ast.USub, ast.UAdd)) else node
        if not (isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float))
                and not isinstance(inner.value, bool)):
            raise self.fail("the exponent of ** must be a number written in the formula",
                            limit=True)
        if abs(inner.value) > LIMITS.max_exponent:
            raise self.fail(
                f"exponent {inner.value} too large (at most {LIMITS.max_exponent})", limit=True
            )

    def _compare(self, node: ast.Compare, d: int) -> NameType:
        left = self.check(node.left, d)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(comp, (ast.Tuple, ast.List)):
                    raise self.fail("'in' needs a literal list, e.g. reason in ('closure', 'moved')")
                for elt in comp.elts:
                    if not isinstance(elt, ast.Constant):
                        raise self.fail("the list after 'in' may hold only literals")
                    self.check(elt, d)
                left = "any"
                continue
            if isinstance(op, (ast.Is, ast.IsNot)):
                raise self.fail("'is' not allowed; use ==")
            right = self.check(comp, d)
            if isinstance(op, _ORDER) and "any" not in (left, right) and left != right:
                raise self.fail(f"cannot order {left} against {right}")
            if {left, right} == {"number", "text"}:
                raise self.fail("comparing a number with text is always false")
            left = right
        return "bool"

    def _call(self, node: ast.Call, d: int) -> NameType:
        if not isinstance(node.func, ast.Name):
            raise self.fail("only the listed functions may be called")
        fname = node.func.id
        fn = FUNCTIONS.get(fname)
        if fn is None:
            raise self.fail(
                f"unknown function {fname!r}", name=fname,
                suggestion=did_you_mean(fname, FUNCTIONS) or
                "functions: " + ", ".join(sorted(FUNCTIONS)),
            )
        if node.keywords:
            raise self.fail(f"{fname}() takes no keyword arguments")
        n = len(node.args)
        if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
            want = (str(fn.min_args) if fn.max_args == fn.min_args
                    else f"at least {fn.min_args}" if fn.max_args is None
                    else f"{fn.min_args} to {fn.max_args}")
            raise self.fail(f"{fname}() takes {want} arguments, got {n}")
        kinds = set()
        for a in node.args:
            kind = self.check(a, d)
            kinds.add(kind)
            if kind not in ("number", "any") and (fname not in ("min", "max") or kind == "bool"):
                raise self.fail(f"{fname}() needs numbers, got {kind}")
        if fname == "clamp" and all(isinstance(a, ast.Constant) for a in node.args[1:]):
            lo, hi = (_literal(self.source, a) for a in node.args[1:])  # type: ignore[arg-type]
            if lo > hi:
                raise self.fail(f"clamp(): the lower bound {lo} is above the upper bound {hi}")
        if (fname == "round_to" and isinstance(node.args[1], ast.Constant)
                and _literal(self.source, node.args[1]) <= 0):
            raise self.fail("round_to(): the quantum must be positive")
        if fname in ("min", "max"):
            self._no_mix(kinds, f"{fname}()")
            return kinds.pop() if len(kinds) == 1 else "any"
        return "number"

    def _no_mix(self, kinds: set[NameType], what: str) -> None:
        """Refuse mixing numbers and text (or conditions) where one value is chosen."""
        known = kinds - {"any"}
        if "text" in known and len(known) > 1:
            raise self.fail(f"{what}: text mixed with {sorted(known - {'text'})[0]} values")


class _FastPath(ast.NodeTransformer):
    """Turns a checked tree into an expression over ``e`` (the names' values).

    Numbers and functions are bound under names unique to this formula
    (``_K<n>_<i>``, ``_F<n>_<name>``), so that code inlining several formulas
    (:mod:`incentives.kernel`) can bind them all side by side.
    """

    def __init__(self, source: str, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.source = source
        self.funcs = funcs
        self.tag = next(_SERIAL)
        self.consts: dict[str, Any] = {}

    def _bind(self, value: Any) -> ast.Name:
        key = f"_K{self.tag}_{len(self.consts)}"
        self.consts[key] = value
        return ast.Name(id=key, ctx=ast.Load())

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Subscript(
            value=ast.Name(id="e", ctx=ast.Load()), slice=ast.Constant(node.id), ctx=ast.Load()
        )

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return self._bind(_literal(self.source, node))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Pow):
            self.consts["_POW"] = _pow
            return ast.Call(func=ast.Name(id="_POW", ctx=ast.Load()),
                            args=[node.left, node.right], keywords=[])
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        assert isinstance(node.func, ast.Name)
        name = f"_F{self.tag}_{node.func.id}"
        self.consts[name] = self.funcs[node.func.id]
        node.func = ast.Name(id=name, ctx=ast.Load())
        node.args = [self.visit(a) for a in node.args]
        return node


class _DecimalLiterals(ast.NodeTransformer):
    """For the reference path: numeric literals become exact Decimal constants."""

    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return ast.copy_location(ast.Constant(_literal(self.source, node)), node)  # type: ignore[arg-type]
        return node


#: the shape of every compiled formula; the checked expression replaces ``None``
def _plain_formula(body: ast.expr, consts: Mapping[str, Any], source: str
                   ) -> Callable[[Mapping[str, Any]], Any] | None:
    """The function of a formula that is one number or one name, made without compiling
    :data:`_FUNCTION` for it (what that function would do: the number; the name's value,
    a missing one reported as :func:`evaluation_error` reports it); None for any other
    formula."""
    if isinstance(body, ast.Name) and body.id in consts:
        value = consts[body.id]

        def constant(e: Mapping[str, Any]) -> Any:
            return value

        return constant
    if isinstance(body, ast.Subscript) and isinstance(body.value, ast.Name) \
            and body.value.id == "e" and isinstance(body.slice, ast.Constant) \
            and isinstance(body.slice.value, str):
        name = body.slice.value

        def named(e: Mapping[str, Any]) -> Any:
            try:
                return e[name]
            except RUNTIME_ERRORS as exc:
                raise evaluation_error(source, exc) from exc

        return named
    return None


_FUNCTION = """
def _formula(e):
    try:
        return None
    except _errors as exc:
        raise _error(_source, exc) from exc
"""


def compile_formula(
    source: str | int | Decimal,
    names: Mapping[str, NameType],
    *,
    rounding: Rounding | None = None,
    where: dict[str, Any] | None = None,
    expect: NameType | None = None,
) -> Formula:
    """Check and compile ``source`` against the declared ``names``.

    ``where`` holds location facts (file, line, path, policy) for errors.
    ``expect`` is the type the formula must produce (``"number"`` for an
    amount, ``"bool"`` for a condition).
    """
    loc = dict(where or {})
    if isinstance(source, (int, Decimal)) and not isinstance(source, bool):
        source = str(source)
    if not isinstance(source, str):
        raise FormulaError(f"a formula must be text or a number, not {type(source).__name__}",
                           **loc)
    if len(source) > LIMITS.max_length:
        raise FormulaLimitError(
            f"formula too long ({len(source)} characters, at most {LIMITS.max_length})",
            formula=source[:80] + "...", **loc,
        )
    if not source.strip():
        raise FormulaError("formula is empty", formula=source, **loc)
    text = source.strip()
    try:
        tree = _parse(text)
    except SyntaxError as exc:
        raise FormulaError(
            f"cannot parse formula {text!r}: {exc.msg}", formula=text, **loc
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaLimitError("formula nested too deeply", formula=text[:80], **loc) from None
    checker = _Checker(text, names, loc)
    kind = checker.check(tree)
    if expect == "number" and kind not in ("number", "any"):
        raise FormulaError(f"formula {text!r} gives {kind}, but a number is needed",
                           formula=text, **loc)
    rnd = rounding or _DEFAULT_ROUNDING
    funcs = _DEFAULT_FUNCS if rounding is None else _functions_for(rnd)

    constant: Decimal | None = None
    if isinstance(tree, ast.Constant) and kind == "number":
        constant = _literal(text, tree)

    fast_tr = _FastPath(text, funcs)
    body = fast_tr.visit(_parse(text))
    fast = _plain_formula(body, fast_tr.consts, text)
    if fast is None:
        module = ast.parse(_FUNCTION)
        module.body[0].body[0].body[0].value = body  # type: ignore[attr-defined]
        ast.fix_missing_locations(module)
        scope: dict[str, Any] = {"__builtins__": {}, "_errors": RUNTIME_ERRORS,
                                 "_error": evaluation_error, "_source": text}
        scope.update(fast_tr.consts)
        # The tree was built only from the whitelisted nodes checked above.
        exec(compile(module, "<formula>", "exec"), scope)
        fast = scope["_formula"]
    # the checked expression and the names it uses, for code that inlines it
    # (incentives.kernel); a formula whose type is only known when it runs is not inlined
    inline: tuple[ast.expr, dict[str, Any]] | None = (body, fast_tr.consts)
    if expect == "number" and kind == "any":
        fast = _numeric(fast, text)
        inline = None

    ref_tree = _DecimalLiterals(text).visit(_parse(text))
    return Formula(
        source=text,
        names=frozenset(checker.used),
        result_type=kind,
        _fast=fast,
        _tree=ref_tree,
        _funcs=funcs,
        constant=constant,
        inline=inline,
    )


def _numeric(fast: Callable[[Mapping[str, Any]], Any], source: str
             ) -> Callable[[Mapping[str, Any]], Any]:
    """Guard a formula whose type is only known at run time: it must give a number."""

    def checked(env: Mapping[str, Any]) -> Any:
        value = fast(env)
        if isinstance(value, Decimal):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        raise evaluation_error(source, TypeError(
            f"gives {type(value).__name__} {value!r}, but a number is needed"))

    return checked


def as_number(value: Any) -> Decimal:
    """Coerce a formula's result to a Decimal amount (booleans count as 0 or 1 only
    when a plan means it: they are refused here)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got a condition ({value})")
    if isinstance(value, int):
        return Decimal(value)
    raise TypeError(f"expected a number, got {type(value).__name__} {value!r}")


ZERO_FORMULA_RESULT = ZERO
