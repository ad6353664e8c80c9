"""The bad-record corpus: every bad record is reported, every good one still paid.

``tests/bad_records/cases.yaml`` lists each file of the corpus with the errors
it must produce (payee, period, field and a key part of the message) and the
payees whose records are good. Each case is checked through the API (collect
mode) and through the command line (exit 1, the report on stderr, the errors in
the JSON ``errors`` list). Nothing is ever a silent zero: a bad record gives no
result at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from incentives import load_plan
from incentives.errors import RecordError
from incentives.records import iter_raw_records

CORPUS = Path(__file__).parent / "bad_records"
PLAN = CORPUS / "plan.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text("utf-8"))["cases"]
#: what each good payee earns in every file (exact): 10% of sales, 50 per new account
GOOD_TOTALS = {"a": Decimal("100.00"), "c": Decimal("20.00")}


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    files = {p.name for p in CORPUS.iterdir()} - {"plan.yaml", "cases.yaml"}
    assert files == {c["file"] for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_bad_records_are_reported_and_good_ones_still_paid(case: dict[str, Any]) -> None:
    plan = load_plan(PLAN)
    run = plan.evaluate(iter_raw_records(CORPUS / case["file"]), errors="collect")
    assert len(run.errors) == len(case["errors"]), [str(e) for e in run.errors]
    for err, want in zip(run.errors, case["errors"], strict=True):
        assert type(err) is RecordError, str(err)
        assert (err.payee, err.period, err.field) == (want["payee"], want["period"], want["field"])
        assert want["message"] in err.message
    # the good records are evaluated, exactly; the bad ones give no result (never a zero)
    assert sorted(r.payee for r in run.results) == sorted(case["good"])
    for r in run.results:
        assert r.total == GOOD_TOTALS[r.payee]


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_raise_mode_raises_the_first_error(case: dict[str, Any]) -> None:
    plan = load_plan(PLAN)
    with pytest.raises(RecordError) as info:
        plan.evaluate(iter_raw_records(CORPUS / case["file"]))
    assert case["errors"][0]["message"] in info.value.message


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_cli_exits_1_with_the_report(case: dict[str, Any], cli: Callable[..., Any]) -> None:
    result = cli("run", PLAN, CORPUS / case["file"], "--format", "json")
    assert result.code == 1
    data = json.loads(result.out)
    assert len(data["errors"]) == len(case["errors"])
    for err, want in zip(data["errors"], case["errors"], strict=True):
        assert err["kind"] == "record"
        assert (err["payee"], err["period"], err["field"]) == (want["payee"], want["period"],
                                                              want["field"])
        assert want["message"] in err["message"]
        assert want["message"] in result.err
    assert result.err.count("error: ") == len(case["errors"])
    assert sorted(r["payee"] for r in data["results"]) == sorted(case["good"])
    for r in data["results"]:
        assert r["total"] == str(GOOD_TOTALS[r["payee"]])


def test_an_unknown_customer_in_a_loss_event_is_reported_not_silently_zero() -> None:
    """A clawback event about a customer with no recorded commission claws nothing back,
    and says so in the line's details (the clawback policy's documented rule)."""
    plan = load_plan(PLAN)
    record = {"payee": "a", "period": "2026-05", "group": "north", "metrics": {"sales": "1000"},
              "attributes": {"grade": "A"},
              "events": {"lost_customers": [{"id": "ghost", "monthly_value": "100",
                                             "reason": "competitor", "acquired": "2026-04-01",
                                             "lost": "2026-05-03"}]}}
    line = plan.evaluate([record])["a"].line("clawback")
    assert line.amount == Decimal("0.00")
    assert line.details["lost"][0]["id"] == "ghost"
    assert line.details["lost"][0]["note"] == "no commission recorded for this customer"


def test_groups_are_optional() -> None:
    plan = load_plan("name: p\ninputs: {metrics: {sales: {}}}\n"
                     "policies: [{type: formula, id: pay, amount: sales}]\n")
    run = plan.evaluate([{"payee": "x", "period": "2026-05", "group": "anything",
                          "metrics": {"sales": "1"}}, {"payee": "y", "period": "2026-05",
                                                       "metrics": {"sales": "2"}}])
    assert [r.group for r in run] == ["anything", None]
