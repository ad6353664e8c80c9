"""Formulas: exact literals, checks at load, and the fast path agreeing with simpleeval."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives import FormulaError, FormulaLimitError, compile_formula
from incentives.money import CONTEXT

D = Decimal
NAMES = {"a": "number", "b": "number", "c": "number", "kind": "text", "flag": "bool"}


def test_literals_are_exact_decimals() -> None:
    f = compile_formula("0.1 + 0.2", {})
    assert f({}) == D("0.3")
    assert compile_formula("1000 * 0.05", {})({}) == D("50.00")
    # digit separators are refused, as in every number read (issue 15.4)
    with pytest.raises(FormulaError, match=r"number '1_000' has a digit separator \(write 1000\)"):
        compile_formula("1_000 * 0.05", {})


def test_typo_gets_a_suggestion() -> None:
    with pytest.raises(FormulaError) as info:
        compile_formula("trafic_revenue * 0.02", {"traffic_revenue": "number"})
    assert info.value.name == "trafic_revenue"
    assert info.value.suggestion == "did you mean 'traffic_revenue'?"


@pytest.mark.parametrize(
    ("source", "error", "fragment"),
    [
        ("a.__class__", FormulaError, "attribute access"),
        ("__import__('os')", FormulaError, "unknown function"),
        ("_secret", FormulaError, "may not start with '_'"),
        ("[x for x in (1, 2)]", FormulaError, "comprehensions"),
        ("lambda: 1", FormulaError, "lambda"),
        ("a[0]", FormulaError, "subscripts"),
        ("f'{a}'", FormulaError, "f-strings"),
        ("4000000 ** 4000000", FormulaLimitError, "exponent"),
        ("a ** b", FormulaLimitError, "exponent of **"),
        ("'x' * 3", FormulaError, "arithmetic on text"),
        ("kind + 1", FormulaError, "arithmetic on text"),
        ("min(a)", FormulaError, "takes at least 2"),
        ("max(a, b=1)", FormulaError, "keyword"),
        ("a if", FormulaError, "cannot parse"),
        ("'" + "x" * 500 + "'", FormulaLimitError, "string literal too long"),
        ("a + " * 600 + "a", FormulaLimitError, "too long"),
        ("", FormulaError, "empty"),
    ],
)
def test_refused_at_load(source: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as info:
        compile_formula(source, NAMES)
    assert fragment in str(info.value)


def test_functions() -> None:
    env = {"a": D("12.345"), "b": D("0"), "c": D("-3")}
    assert compile_formula("clamp(a, 0, 10)", NAMES)(env) == D("10")
    assert compile_formula("div(a, b, 7)", NAMES)(env) == D("7")
    assert compile_formula("round(a)", NAMES)(env) == D("12.35")
    assert compile_formula("round_to(a, 0.05)", NAMES)(env) == D("12.35")
    assert compile_formula("floor(c / 2)", NAMES)(env) == D("-2")
    assert compile_formula("ceil(c / 2)", NAMES)(env) == D("-1")
    assert compile_formula("abs(c)", NAMES)(env) == D("3")
    assert compile_formula("kind in ('x', 'y')", NAMES)({"kind": "y"}) is True


def test_substitute_shows_values() -> None:
    f = compile_formula("min(a * 0.03, 5000)", NAMES)
    assert f.substitute({"a": D("48000.50")}) == "min(48000.50 * 0.03, 5000)"


# ------------------------------------------------------------ differential test

_num_leaf = st.one_of(
    st.sampled_from(["a", "b", "c"]),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False,
                allow_infinity=False).map(lambda d: f"({d})"),
    st.integers(min_value=0, max_value=500).map(str),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "//", "%"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda x: f"(-{x})"),
        st.tuples(children, st.integers(min_value=0, max_value=3)).map(
            lambda t: f"({t[0]} ** {t[1]})"),
        st.tuples(st.sampled_from(["min", "max"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["abs", "floor", "ceil", "round"]), children).map(
            lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"div({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(children, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), children,
                  children, children).map(
            lambda t: f"({t[3]} if {t[0]} {t[1]} {t[2]} else {t[4]})"),
        st.tuples(children, children).map(
            lambda t: f"({t[0]} if kind in ('contract', 'temp') and flag else {t[1]})"),
    )


expressions = st.recursive(_num_leaf, _extend, max_leaves=12)
values = st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False,
                     allow_infinity=False)


def _outcome(fn, env):  # type: ignore[no-untyped-def]
    try:
        with decimal.localcontext(CONTEXT):
            return ("ok", fn(env))
    except (ArithmeticError, decimal.DecimalException) as exc:
        return ("error", type(exc).__name__)


@given(expressions, values, values, values, st.sampled_from(["contract", "staff"]),
       st.booleans())
def test_fast_path_agrees_with_simpleeval(source: str, a: D, b: D, c: D, kind: str,
                                          flag: bool) -> None:
    f = compile_formula(source, NAMES)
    env = {"a": a, "b": b, "c": c, "kind": kind, "flag": flag}
    fast = _outcome(f, env)
    ref = _outcome(f.reference, env)
    assert fast == ref, source
