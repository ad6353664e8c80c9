"""Money inside line details is written at the plan's quantum, the same in JSON, in Python
and in statements; rates, bases and counts are left exactly as they are."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from incentives import load_plan
from incentives.records import read_records_file
from incentives.runtime import MONEY_DETAILS, Line, money_details

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _telecom() -> Any:
    plan = load_plan(EXAMPLES / "telecom/plan.yaml")
    return plan.evaluate(read_records_file(EXAMPLES / "telecom/records.jsonl"))


def test_json_details_show_money_at_the_quantum_and_rates_as_declared() -> None:
    x = json.loads(_telecom().to_json())["results"][0]
    lines = {line["id"]: line for line in x["lines"]}
    assert lines["new_business"]["details"] == {"items": [
        {"item": "new_fax", "label": "网络传真", "quantity": "3", "per_unit": "60",
         "amount": "180.00"}]}
    assert lines["churn_penalty"]["details"] == {
        "customers": [{"id": "c-88", "reason": "competitor",
                       "formula": "churn_multiple * monthly_value",
                       "substituted": "1.5 * 1000", "amount": "1500.00"}],
        "uncapped": "1500.00", "cap": "632.00", "cap_formula": "churn_cap_share * variable_pay",
        "cap_substituted": "0.4 * 1580.00", "above_cap": "868.00", "forgiven": "868.00"}
    assert lines["floor"]["details"] == {"floor": "700.00", "floor_formula": "floor_amount",
                                         "of": "total", "before": "948.00",
                                         "floor_substituted": "700"}
    assert lines["commission"]["details"]["slices"] == [
        {"from": "0", "to": "30000", "rate": "0.02", "amount": "600.00"},
        {"from": "30000", "to": "50000", "rate": "0.04", "amount": "800.00"}]
    assert lines["commission"]["details"]["basis"] == "50000"
    # totals and line amounts as they were
    assert [line["amount"] for line in x["lines"]] == ["1400.00", "180.00", "-632.00", "0.00"]
    assert x["total"] == "948.00"


def test_python_details_and_statements_show_the_same_figures() -> None:
    run = _telecom()
    churn = run["X"].line("churn_penalty").details
    assert str(churn["cap"]) == "632.00"
    assert str(churn["customers"][0]["amount"]) == "1500.00"
    assert str(run["X"].line("new_business").details["items"][0]["per_unit"]) == "60"
    text = run["X"].explain()
    assert "cap: churn_cap_share x variable_pay = 0.4 x 1,580.00 = 632.00" in text
    assert "-min(1,500.00, 632.00) = -632.00" in text


def test_details_given_as_they_are_are_written_at_the_quantum_too() -> None:
    line = Line("p", "P", Decimal("5.0"), "t", {"cap": Decimal("2"), "rate": Decimal("0.10"),
                                                "children": {"a": Decimal("3")},
                                                "spread_before": {"min": Decimal("1"),
                                                                  "ratio": Decimal("2")},
                                                "limit": 3})
    assert line.details == {"cap": Decimal("2.0"), "rate": Decimal("0.10"),
                            "children": {"a": Decimal("3.0")},
                            "spread_before": {"min": Decimal("1.0"), "ratio": Decimal("2")},
                            "limit": 3}
    assert str(line.details["cap"]) == "2.0"
    assert str(line.details["spread_before"]["ratio"]) == "2"
    # whole-unit plans: no exponent notation
    assert str(Line("p", "P", Decimal("120"), "t", {"cap": Decimal("1.2E+2")}).details["cap"]) \
        == "120"



@given(value=st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False,
                         allow_infinity=False),
       key=st.sampled_from(sorted(MONEY_DETAILS)), places=st.sampled_from([0, 1, 2, 3]))
@example(value=Decimal("999999999.9999999973160189117096189755567694704156374618"), key="cap",
         places=2)  # more digits than the arithmetic context: none may be lost
@example(value=Decimal("632.000"), key="cap", places=2)
@example(value=Decimal("1.2E+2"), key="amount", places=0)
def test_money_is_never_rounded_away(value: Decimal, key: str, places: int) -> None:
    amount = Decimal(1).scaleb(-places)
    shown = money_details({key: value, "rate": value}, amount)
    assert shown[key] == value                       # the same number
    assert str(shown["rate"]) == str(value)          # not money: untouched
    exp = shown[key].as_tuple().exponent
    assert isinstance(exp, int)
    if value == value.quantize(amount):
        assert exp == -places                        # at the quantum
    else:
        assert exp < -places                         # every digit kept
