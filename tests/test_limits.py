"""Every documented limit is enforced at its boundary, with its own error class."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from incentives import (
    EvaluationError,
    FormulaLimitError,
    PlanLimitError,
    RecordError,
    compile_formula,
    load_plan,
    yamlio,
)
from incentives.formulas import LIMITS
from incentives.money import MAX_DIGITS, MAX_NUMBER_TEXT, to_decimal
from incentives.records import MAX_TEXT_FIELD

NAMES: dict[str, Any] = {"a": "number"}


def accepts(source: str) -> bool:
    compile_formula(source, NAMES)
    return True


def refuses(source: str, fragment: str) -> bool:
    with pytest.raises(FormulaLimitError, match=fragment):
        compile_formula(source, NAMES)
    return True


def test_formula_length() -> None:
    assert accepts("a" + " " * (LIMITS.max_length - 1))
    assert refuses("a" + " " * LIMITS.max_length, "formula too long")
    assert refuses("a + " * 600 + "a", "formula too long")


def test_formula_depth() -> None:
    assert accepts("-" * LIMITS.max_depth + "a")
    assert refuses("-" * (LIMITS.max_depth + 1) + "a", "nested too deeply")
    # far beyond Python's own parser limits: still our error, not a RecursionError
    assert refuses("(" * 1500 + "a" + ")" * 1500, "nested too deeply|too long")


def test_formula_size() -> None:
    args = LIMITS.max_nodes - 1  # the call itself is one part
    assert accepts("max(" + ",".join(["1"] * args) + ")")
    assert refuses("max(" + ",".join(["1"] * (args + 1)) + ")", "formula too large")


def test_string_literal() -> None:
    assert accepts("a if '" + "x" * LIMITS.max_string + "' == 'y' else a")
    assert refuses("'" + "x" * (LIMITS.max_string + 1) + "'", "string literal too long")


def test_exponent() -> None:
    assert accepts(f"a ** {LIMITS.max_exponent}")
    assert accepts(f"a ** -{LIMITS.max_exponent}")
    assert refuses(f"a ** {LIMITS.max_exponent + 1}", "exponent 65 too large")
    assert refuses("a ** a", "exponent of \\*\\* must be a number")


def test_number_literal() -> None:
    assert accepts("9" * 18)
    assert refuses("1" + "0" * 18, "too large")
    assert accepts("0." + "0" * (LIMITS.max_literal_digits - 2) + "1")
    assert refuses("0." + "0" * (LIMITS.max_literal_digits - 1) + "1", "too large")


def _plan(body: str) -> str:
    return "name: p\npolicies:\n  - {type: formula, id: pay, amount: 1}\n" + body


def test_plan_text_size(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _plan("description: " + "x" * 100 + "\n")
    monkeypatch.setattr(yamlio, "MAX_TEXT", len(text))
    assert load_plan(text).name == "p"
    with pytest.raises(PlanLimitError, match="plan text too large"):
        load_plan(text + " ")


def test_plan_text_size_at_the_real_limit() -> None:
    text = _plan("description: " + "x" * (yamlio.MAX_TEXT - 200) + "\n")
    assert len(text) <= yamlio.MAX_TEXT
    assert load_plan(text).name == "p"
    with pytest.raises(PlanLimitError, match="plan text too large"):
        load_plan(text + "#" * 300)


def test_plan_nodes_and_alias_expansion() -> None:
    items = ", ".join(["x"] * 1000)
    # 9 aliases of a 1000-item list: about 10,000 nodes, accepted
    small = "a: &a [" + items + "]\nb: [" + ", ".join(["*a"] * 9) + "]\n"
    data, _ = yamlio.load_yaml(small)
    assert len(data["b"]) == 9
    big = "a: &a [" + items + "]\nb: [" + ", ".join(["*a"] * 60) + "]\n"
    with pytest.raises(PlanLimitError, match=f"more than {yamlio.MAX_NODES} nodes"):
        yamlio.load_yaml(big)


def test_plan_depth() -> None:
    ok = "x: " + "[" * (yamlio.MAX_DEPTH - 1) + "]" * (yamlio.MAX_DEPTH - 1) + "\n"
    yamlio.load_yaml(ok)
    deep = "x: " + "[" * (yamlio.MAX_DEPTH + 1) + "]" * (yamlio.MAX_DEPTH + 1) + "\n"
    with pytest.raises(PlanLimitError, match=f"nested more than {yamlio.MAX_DEPTH}"):
        yamlio.load_yaml(deep)


@pytest.mark.parametrize(("number", "accepted"), [
    ("9" * 18, True), ("1" + "0" * 18, False),
    ("1." + "1" * 33, True), ("1." + "1" * 34, False),
    ("123456789012345678.5", True), ("1234567890123456789.5", False),
])
def test_numbers_in_a_plan(number: str, accepted: bool) -> None:
    text = f"x: {number}\n"
    if accepted:
        assert yamlio.load_yaml(text)[0]["x"] == Decimal(number)
    else:
        with pytest.raises(PlanLimitError, match="too large"):
            yamlio.load_yaml(text)


@pytest.mark.parametrize(("value", "fragment"), [
    ("1" + "0" * MAX_DIGITS, "too large"),
    (10 ** 40, "too large"),
    ("1." + "1" * 34, "precision"),
    ("1e-999999999", "too small"),
    ("1" * (MAX_NUMBER_TEXT + 1), "too long"),
])
def test_numbers_in_a_record(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        to_decimal(value)


def test_largest_numbers_in_a_record_are_read_exactly() -> None:
    assert to_decimal("9" * MAX_DIGITS) == Decimal("9" * MAX_DIGITS)
    assert to_decimal("1." + "1" * 33) == Decimal("1." + "1" * 33)
    assert to_decimal("1.0000000000000000000000000000000000000") == Decimal(1)


def test_text_in_a_record() -> None:
    plan = load_plan("name: p\ninputs: {attributes: {kind: {}}}\n"
                     "policies: [{type: formula, id: pay, amount: 1}]\n")
    ok = {"payee": "p" * MAX_TEXT_FIELD, "period": "2026-05", "group": "g" * MAX_TEXT_FIELD,
          "attributes": {"kind": "k" * MAX_TEXT_FIELD}}
    assert plan.evaluate([ok]).results[0].total == Decimal("1.00")
    for key, where in (("payee", "payee"), ("group", "group"), ("kind", "attributes.kind")):
        bad: dict[str, Any] = {**ok, "attributes": dict(ok["attributes"])}
        if key == "kind":
            bad["attributes"]["kind"] += "!"
        else:
            bad[key] += "!"
        run = plan.evaluate([bad], errors="collect")
        assert not run.results
        assert [type(e) for e in run.errors] == [RecordError]
        assert run.errors[0].field == where
        assert "too long" in run.errors[0].message


@pytest.mark.parametrize("make", [
    lambda: Decimal("1" + "0" * MAX_DIGITS),
    lambda: Decimal("Infinity"),
    lambda: "a text",
    lambda: True,
])
def test_an_amount_a_policy_pays(make: Callable[[], object]) -> None:
    from incentives.policies.base import checked_amount

    with pytest.raises(EvaluationError):
        checked_amount(make())
    assert checked_amount(Decimal("9" * MAX_DIGITS)) == Decimal("9" * MAX_DIGITS)
