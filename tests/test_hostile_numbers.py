"""Hostile input, round two (issue 15): numbers are what they look like, event fields
have limits, a penalty never pays, and a plan's size is refused while it is read."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import load_plan
from incentives.errors import PlanError, PlanLimitError, RecordError
from incentives.inputs import Inputs
from incentives.money import MAX_PLACES, to_decimal
from incentives.policies.churn import PenaltyError
from incentives.records import RecordReader
from incentives.testing.audit import audit_plan
from incentives.testing.declared import InvariantSpec
from incentives.testing.invariants import InvariantViolation, penalties_never_pay
from incentives.yamlio import MAX_NODES, load_yaml

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
LEDGER_PLAN = ROOT / "examples" / "telecom" / "plan-ledger.yaml"


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``incentives ARGS`` in a real process."""
    return subprocess.run([sys.executable, "-m", "incentives", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


# ------------------------------------------------------------- numbers in records


@pytest.mark.parametrize(("text", "message"), [
    ("1e20", "value is too large: at most 18 digits before the point ('1e20')"),
    ("1E18", "value is too large: at most 18 digits before the point ('1E18')"),
    ("1e999999", "value is too large: at most 18 digits before the point ('1e999999')"),
    ("-1e999999999", "value is too large: at most 18 digits before the point ('-1e999999999')"),
    ("1e-999999", "value is too small: its first digit is more than 34 places after the "
                  "point ('1e-999999')"),
    ("1e-35", "value is too small: its first digit is more than 34 places after the "
              "point ('1e-35')"),
    ("0e-999999", "value has more than 34 digits after the point ('0e-999999')"),
    ("4_8000", "value has a digit separator: '4_8000' (write 48000)"),
    ("1_000.50", "value has a digit separator: '1_000.50' (write 1000.50)"),
    ("\u0661\u0662", "value is not a number: '\u0661\u0662'"),  # Arabic-Indic digits
    ("\uff11\uff12", "value is not a number: '\uff11\uff12'"),  # full-width digits
    ("Infinity", "value must be a finite number, not 'Infinity'"),
    ("-nan", "value must be a finite number, not '-nan'"),
    ("0x10", "value is not a number: '0x10'"),
    ("1" * 101, "value is too long to be a number (101 characters, at most 100)"),
])
def test_numbers_as_text_obey_one_rule_written_out_or_with_an_exponent(
        text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        to_decimal(text)
    assert str(info.value) == message


@pytest.mark.parametrize(("value", "message"), [
    (D("1E+999999"), "value is too large: at most 18 digits before the point (1E+999999)"),
    (D("1E-999999"), "value is too small: its first digit is more than 34 places after "
                     "the point (1E-999999)"),
    (D("0E-50"), "value has more than 34 digits after the point (0E-50)"),
])
def test_decimals_handed_in_obey_the_same_rule(value: Decimal, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        to_decimal(value)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "value"), [
    ("1E5", "100000"), ("1e17", "100000000000000000"), ("2.5e3", "2500"), ("+1e0", "1"),
    ("1e-34", "1E-34"), ("-0.0", "-0.0"), ("0E+9", "0"), ("999999999999999999.5", None),
])
def test_exponent_forms_in_range_are_read_and_written_out(text: str, value: str | None) -> None:
    got = to_decimal(text)
    assert got == D(text)
    assert str(got) == (value if value is not None else text)


def test_the_smallest_place_is_the_documented_one() -> None:
    assert MAX_PLACES == 34
    assert to_decimal("0." + "0" * 33 + "1") == D("1e-34")
    with pytest.raises(ValueError, match="too small"):
        to_decimal("0." + "0" * 34 + "1")


def test_huge_exponents_cost_nothing_before_they_are_refused() -> None:
    """A record of 1e999999 (or 1e-999999) is refused before any arithmetic: quantizing
    or formatting it would build a million digits."""
    plan = load_plan("name: p\ninputs: {metrics: [sales]}\n"
                     "policies: [{type: formula, id: pay, amount: sales * 0.1}]\n")
    population = [{"payee": f"p{i}", "period": "2026-05",
                   "metrics": {"sales": v}}
                  for i, v in enumerate(["1e999999", "1e-999999", "-1E999999", "0e-999999",
                                         D("1e999999"), D("1e-999999")] * 300)]
    start = time.process_time()
    run = plan.evaluate(population, errors="collect")
    assert time.process_time() - start < 2.0
    assert run.results == []
    assert len(run.errors) == 1800


def test_json_numbers_with_exponents_are_read_as_written(tmp_path: Path) -> None:
    plan = load_plan("name: p\ninputs: {metrics: [sales]}\n"
                     "policies: [{type: formula, id: pay, amount: sales * 0.1}]\n")
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"payee": "a", "period": "2026-05", "metrics": {"sales": 1E3}}\n'
        '{"payee": "b", "period": "2026-05", "metrics": {"sales": 2.5e2}}\n'
        '{"payee": "c", "period": "2026-05", "metrics": {"sales": 1e999999}}\n'
        '{"payee": "d", "period": "2026-05", "metrics": {"sales": 1e-999999}}\n', "utf-8")
    plan_file = tmp_path / "p.yaml"
    plan_file.write_text("name: p\ninputs: {metrics: [sales]}\n"
                         "policies: [{type: formula, id: pay, amount: sales * 0.1}]\n", "utf-8")
    res = _run("run", plan_file, path, "--format", "json")
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    assert {r["payee"]: r["total"] for r in data["results"]} == {"a": "100.00", "b": "25.00"}
    assert [(e["payee"], e["message"]) for e in data["errors"]] == [
        ("c", "value is too large: at most 18 digits before the point ('1e999999')"),
        ("d", "value is too small: its first digit is more than 34 places after the point "
              "('1e-999999')"),
    ]
    # the same through the library, to the same records
    run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": "1E3"}}])
    assert run.results[0].total == D("100.00")


# ---------------------------------------------------------------- numbers in plans


@pytest.mark.parametrize(("value", "message"), [
    ("0x258", "0x258 is a hexadecimal number, which YAML readers read differently; "
              "write the number in decimal, or quote it if text is meant"),
    ("+0x1", "+0x1 is a hexadecimal number, which YAML readers read differently; "
             "write the number in decimal, or quote it if text is meant"),
    ("0o17", "0o17 is an octal number, which YAML readers read differently; "
             "write the number in decimal, or quote it if text is meant"),
    ("017", "017 is a number with a leading zero (octal in YAML 1.1), which YAML readers "
            "read differently; write the number in decimal, or quote it if text is meant"),
    ("08", "08 is a number with a leading zero (octal in YAML 1.1), which YAML readers "
           "read differently; write the number in decimal, or quote it if text is meant"),
    ("0b101", "0b101 is a binary number, which YAML readers read differently; "
              "write the number in decimal, or quote it if text is meant"),
    ("10:00", "10:00 is a base-60 (sexagesimal) number in YAML 1.1, which YAML readers read "
              "differently; write the number in decimal, or quote it if text is meant"),
    ("4_8000", "4_8000 has a digit separator '_'; write 48000, or quote it if text is meant"),
    ("1_000.5", "1_000.5 has a digit separator '_'; write 1000.5, or quote it if text is "
                "meant"),
    (".inf", ".inf is not a finite number; write a number, or quote it if text is meant"),
    ("-.Inf", "-.Inf is not a finite number; write a number, or quote it if text is meant"),
    (".NaN", ".NaN is not a finite number; write a number, or quote it if text is meant"),
    ("1e20", "number 1e20 is too large (at most 18 digits before the point, the first digit "
             "at most 34 places after it, 34 significant digits)"),
    ("1e999999", "number 1e999999 is too large (at most 18 digits before the point, the "
                 "first digit at most 34 places after it, 34 significant digits)"),
    ("1e-999999", "number 1e-999999 is too small (at most 18 digits before the point, the "
                  "first digit at most 34 places after it, 34 significant digits)"),
    ("1.0e-999999", "number 1.0e-999999 is too small (at most 18 digits before the point, "
                    "the first digit at most 34 places after it, 34 significant digits)"),
])
def test_plan_numbers_are_yaml_1_2_numbers_or_refused_with_line_and_path(
        value: str, message: str) -> None:
    text = f"name: p\nparameters:\n  rate: {value}\n"
    with pytest.raises(PlanError) as info:
        load_yaml(text, file="plan.yaml")
    assert str(info.value) == f"plan.yaml:3 parameters.rate: {message}"
    assert info.value.line == 3


@pytest.mark.parametrize(("value", "read"), [
    ("1e5", D(100000)), ("1E5", D(100000)), ("1.0e+5", D(100000)), ("+12", 12), ("-7", -7),
    ("0", 0), (".5", D("0.5")), ("-0.25", D("-0.25")), ("017.5", D("17.5")),
    ("'0x258'", "0x258"), ('"017"', "017"), ("'10:00'", "10:00"), ("'1_000'", "1_000"),
    ("0:30", "0:30"), ("v1.2", "v1.2"),
])
def test_plan_numbers_that_are_read(value: str, read: Any) -> None:
    data, _ = load_yaml(f"x: {value}\n")
    assert data["x"] == read
    assert type(data["x"]) is type(read)


def test_a_quoted_number_in_a_number_field_obeys_the_same_rule() -> None:
    base = "name: p\ninputs:\n  metrics:\n    sales: {{max: {}}}\n" \
           "policies: [{{type: formula, id: pay, amount: sales}}]\n"
    with pytest.raises(PlanError) as info:
        load_plan(base.format('"1e999999"'))
    assert str(info.value) == ("<plan>:4 inputs.metrics.sales.max: number is too large: at most "
                               "18 digits before the point ('1e999999')")
    with pytest.raises(PlanError, match=r"number has a digit separator: '4_8000' \(write 48000\)"):
        load_plan(base.format("'4_8000'"))
    assert load_plan(base.format('"1e5"')).inputs.metrics["sales"].max == D(100000)


def test_a_long_value_is_quoted_short_in_a_message() -> None:
    with pytest.raises(PlanError) as info:
        load_yaml("x: 0x" + "f" * 100_000 + "\n", file="plan.yaml")
    assert str(info.value) == ("plan.yaml:1 x: 0x" + "f" * 38 + "\u2026 is a hexadecimal number, "
                               "which YAML readers read differently; write the number in "
                               "decimal, or quote it if text is meant")


# --------------------------------------------------------------- numbers in state


def test_state_amounts_obey_the_record_limits(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    may = ROOT / "examples" / "telecom" / "records.jsonl"
    june = ROOT / "examples" / "telecom" / "records-2026-06.jsonl"
    first = _run("run", LEDGER_PLAN, may, "--state", state)
    assert first.returncode == 0, first.stderr
    good = json.loads(state.read_text("utf-8"))
    assert good["payees"]["X"]["churn_penalty"] == {"carried": "868.00"}
    cases = {
        "1e999999": "'carried' is too large: at most 18 digits before the point ('1e999999')",
        "1E-999999": "'carried' is too small: its first digit is more than 34 places after "
                     "the point ('1E-999999')",
        "8_68.00": "'carried' has a digit separator: '8_68.00' (write 868.00)",
        "\u0668\u0666\u0668": "'carried' is not a number: '\u0668\u0666\u0668'",
        "NaN": "'carried' must be a finite number, not 'NaN'",
    }
    for amount, message in cases.items():
        good["payees"]["X"]["churn_penalty"]["carried"] = amount
        state.write_text(json.dumps(good), "utf-8")
        before = state.read_bytes()
        res = _run("run", LEDGER_PLAN, june, "--state", state)
        assert res.returncode == 2, (amount, res.stderr)
        assert res.stderr == (f"error: {state}: the entry of payee 'X', policy "
                              f"'churn_penalty', is malformed: {message}\n")
        assert res.stdout == ""
        assert state.read_bytes() == before
    state.write_text(json.dumps(good).replace('"NaN"', "9" * 5000), "utf-8")
    res = _run("run", LEDGER_PLAN, june, "--state", state)
    assert res.returncode == 2
    assert res.stderr == (f"error: {state}: the whole number {'9' * 40}\u2026 is too large for "
                          "a state file (at most 18 digits)\n")


# ---------------------------------------------------------- event field limits

EVENT_PLAN = """\
name: events
inputs:
  metrics: [sales]
  events:
    lost_customers:
      fields:
        id: text
        monthly_value: {type: number, min: 0, max: 100000}
        seats: {type: number, integer: true, min: 1}
        note: text
      optional: [note]
policies:
  - {type: formula, id: pay, amount: sales * 0.1}
"""


def _lost(**fields: Any) -> dict[str, Any]:
    event = {"id": "c-88", "monthly_value": D(100), "seats": D(2), **fields}
    return {"payee": "m-1", "period": "2026-05", "metrics": {"sales": D(1000)},
            "events": {"lost_customers": [event]}}


def test_event_limits_are_declared_in_place_or_under_limits() -> None:
    plan = load_plan(EVENT_PLAN)
    spec = plan.inputs.events["lost_customers"]
    assert spec.fields == {"id": "text", "monthly_value": "number", "seats": "number",
                           "note": "text"}
    assert (spec.limits["monthly_value"].min, spec.limits["monthly_value"].max) == (0, 100000)
    assert spec.limits["seats"].integer
    same = load_plan(EVENT_PLAN.replace(
        "        monthly_value: {type: number, min: 0, max: 100000}\n"
        "        seats: {type: number, integer: true, min: 1}\n",
        "        monthly_value: number\n        seats: number\n").replace(
        "      optional: [note]\n",
        "      optional: [note]\n      limits:\n        monthly_value: {min: 0, max: 100000}\n"
        "        seats: {integer: true, min: 1}\n"))
    assert same.inputs.events == plan.inputs.events


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"monthly_value": D(-5)}, "monthly_value",
     "lost_customers event 'c-88': monthly_value -5 is below the minimum 0"),
    ({"monthly_value": "100000.01"}, "monthly_value",
     "lost_customers event 'c-88': monthly_value 100000.01 is above the maximum 100000"),
    ({"seats": D("2.5")}, "seats",
     "lost_customers event 'c-88': seats must be a whole number, not 2.5"),
    ({"seats": 0}, "seats", "lost_customers event 'c-88': seats 0 is below the minimum 1"),
    ({"id": 17, "seats": 0}, "seats", "lost_customers event '17': seats 0 is below the minimum 1"),
])
def test_an_event_out_of_its_limits_is_a_record_error(fields: dict[str, Any], field: str,
                                                      message: str) -> None:
    plan = load_plan(EVENT_PLAN)
    good = {"payee": "ok", "period": "2026-05", "metrics": {"sales": "200"}}
    run = plan.evaluate([_lost(**fields), good], errors="collect")
    (err,) = run.errors
    assert type(err) is RecordError
    assert (err.payee, err.period, err.field) == ("m-1", "2026-05",
                                                   f"events.lost_customers[0].{field}")
    assert err.message == message
    assert [(r.payee, r.total) for r in run.results] == [("ok", D("20.00"))]


limit_values = st.one_of(
    st.sampled_from([D(0), D(-1), D("0.5"), D(1), D(2), D("100000"), D("100000.01"),
                     D("1E+5"), D("1E+999999"), D("1E-999999"), D("NaN"), "3", "-3", "2.5",
                     "1e5", "1e-40", "4_0", 7, -7, 10**30, None, True, "x"]),
    st.decimals(min_value=-10, max_value=200000, places=2),
)


@settings(max_examples=300)
@given(value=limit_values, seats=limit_values, sales=limit_values)
def test_the_fast_reader_and_the_full_check_agree_on_limits(value: Any, seats: Any,
                                                             sales: Any) -> None:
    plan = load_plan(EVENT_PLAN)
    reader = RecordReader(plan.inputs)
    raw = _lost(monthly_value=value, seats=seats)
    raw["metrics"]["sales"] = sales

    def outcome(fn: Any) -> str:
        try:
            return "ok " + repr(fn(raw))
        except RecordError as exc:
            return f"error {exc}"

    assert outcome(reader.read) == outcome(reader._read)


def test_limits_only_for_number_fields_of_the_list() -> None:
    with pytest.raises(PlanError, match="limits are given for 'nope', which is not a field"):
        Inputs(events={"e": {"fields": {"v": "number"}, "limits": {"nope": {"min": 0}}}})
    with pytest.raises(PlanError, match="the limits of field 'v' are given twice"):
        Inputs(events={"e": {"fields": {"v": {"type": "number", "min": 0}},
                             "limits": {"v": {"max": 1}}}})


# ------------------------------------------------------------ penalties never pay

CHURN_PLAN = """\
name: churny
inputs:
  metrics: [sales]
  events:
    lost_customers:
      fields: {{id: text, monthly_value: number, reason: text}}
policies:
  - {{type: formula, id: commission, amount: sales * 0.1}}
  - type: churn_penalty
    id: churn
    per_customer: {per_customer}
    exempt_reasons: [closure]
{extra}"""


def _customer(payee: str, *values: str, reason: str = "price") -> dict[str, Any]:
    return {"payee": payee, "period": "2026-05", "metrics": {"sales": "1000"},
            "events": {"lost_customers": [{"id": f"c-{i}", "monthly_value": v,
                                           "reason": reason} for i, v in enumerate(values)]}}


@pytest.mark.parametrize("extra", ["", "    cap: 500\n    above_cap: carry_forward\n"],
                         ids=["written-kernel", "ledger"])
def test_a_negative_lost_customer_is_an_error_not_a_bonus(extra: str) -> None:
    plan = load_plan(CHURN_PLAN.format(per_customer="1.5 * monthly_value", extra=extra))
    run = plan.evaluate([_customer("a", "100"), _customer("b", "100", "-100"),
                         _customer("c", "-100", reason="closure")], errors="collect")
    (err,) = run.errors
    assert type(err) is PenaltyError
    assert isinstance(err, RecordError)
    assert (err.payee, err.period, err.field) == ("b", "2026-05", "events.lost_customers[1]")
    assert err.message == ("penalty 'churn': lost_customers event 'c-1' would cost -150.0 "
                           "(per_customer '1.5 * monthly_value'), below zero; a penalty never "
                           "raises pay")
    # the others are paid: a loses 150, c's exempt loss costs nothing
    assert {r.payee: r.total for r in run.results} == {"a": D("-50.00"), "c": D("100.00")}


def test_the_command_line_reports_the_penalty_and_pays_the_others(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(CHURN_PLAN.format(per_customer="1.5 * monthly_value", extra=""), "utf-8")
    records = tmp_path / "records.json"
    records.write_text(json.dumps([_customer("a", "100"), _customer("b", "-10")]), "utf-8")
    res = _run("run", plan, records, "--format", "json")
    assert res.returncode == 1
    assert res.stderr == ("error: payee 'b' period 2026-05 field 'events.lost_customers[0]': "
                          "penalty 'churn': lost_customers event 'c-0' would cost -15.0 "
                          "(per_customer '1.5 * monthly_value'), below zero; a penalty never "
                          "raises pay\n")
    assert [r["payee"] for r in json.loads(res.stdout)["results"]] == ["a"]


def test_the_audit_finds_a_penalty_that_can_pay_with_a_counterexample(tmp_path: Path) -> None:
    broken = load_plan(CHURN_PLAN.format(per_customer="monthly_value - 5000", extra=""))
    (finding,) = audit_plan(broken, examples=60, seed=0,
                            specs=[InvariantSpec(type="penalties_never_pay")])
    assert not finding.holds
    violation = finding.violation
    assert violation is not None
    assert violation.invariant == "penalties_never_pay"
    # the counterexample reproduces by hand: its records make a penalty that would pay
    (record,) = violation.records
    with pytest.raises(PenaltyError):
        broken.evaluate([record])
    assert D(record["events"]["lost_customers"][0]["monthly_value"]) < 5000
    # and through the command line, as a generic invariant of a plan declaring none
    path = tmp_path / "plan.yaml"
    path.write_text(CHURN_PLAN.format(per_customer="monthly_value - 5000", extra=""), "utf-8")
    res = _run("audit", path, "--examples", "30")
    assert res.returncode == 1
    assert "BROKEN  penalties_never_pay\n  penalties_never_pay broken: " in res.stdout
    assert "a penalty never raises pay" in res.stdout


def test_the_invariant_names_the_line_that_pays() -> None:
    """A penalty line above zero (not reachable through churn_penalty, which refuses it) is a
    break too: checked on the lines of any policy type named penalties."""
    plan = load_plan("name: p\ninputs: {metrics: [sales]}\npolicies:\n"
                     "  - {type: formula, id: pay, amount: sales}\n")
    records = [{"payee": "a", "period": "2026-05", "metrics": {"sales": "12"}}]
    assert penalties_never_pay(plan, records) == 0
    with pytest.raises(InvariantViolation) as info:
        penalties_never_pay(plan, records, types=("formula",))
    assert info.value.message == "penalty 'pay' pays a (2026-05) 12.00"


@pytest.mark.parametrize("name", ["telecom/plan.yaml", "telecom/plan-ledger.yaml",
                                  "bank/plan.yaml"])
def test_the_bundled_plans_keep_penalties_never_pay(name: str) -> None:
    plan = load_plan(ROOT / "examples" / name)
    (finding,) = audit_plan(plan, examples=40, seed=0,
                            specs=[InvariantSpec(type="penalties_never_pay")])
    assert finding.holds, finding.report()


# ------------------------------------------------------- limits while reading


def test_a_600000_item_plan_is_refused_while_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: big\ninputs:\n  metrics: [sales]\npolicies: ["
                    + ", ".join(["1"] * 600_000) + "]\n", "utf-8")
    assert 1_700_000 < path.stat().st_size < 1_900_000
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = _run("validate", path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the child's CPU time, not the wall clock: a loaded machine does not stretch it
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert res.returncode == 2
    assert res.stderr == (f"error: {path}:4: the plan has more than {MAX_NODES} nodes "
                          "(values, lists and mappings)\n")
    assert res.stdout == ""
    assert cpu < 5.0  # about 0.7 s of CPU; reading the whole document first takes far more


@pytest.mark.parametrize("shape", ["flow", "block", "mapping", "rates", "aliases"])
def test_wide_plans_are_refused_after_the_limit_not_after_the_document(shape: str) -> None:
    if shape == "flow":
        text = "policies: [" + ", ".join(["1"] * 600_000) + "]\n"
    elif shape == "block":
        text = "policies:\n" + "- 1\n" * 450_000
    elif shape == "mapping":
        text = "parameters:\n" + "".join(f"  p{i}: {i}\n" for i in range(120_000))
    elif shape == "aliases":
        text = "a: &a 1\nb: [" + ", ".join(["*a"] * 400_000) + "]\n"
    else:
        text = ("policies:\n  - type: rate_table\n    id: r\n    items: {"
                + ", ".join(f"m{i}: 1" for i in range(150_000)) + "}\n")
    start = time.process_time()
    with pytest.raises(PlanLimitError) as info:
        load_yaml(text, file="wide.yaml")
    refused = time.process_time() - start
    if shape == "aliases":  # a short document: libyaml reads it without expanding them
        assert refused < 1.0
    else:
        # against reading the whole document with libyaml in the same process (a loaded
        # machine slows both alike): the refusal comes well before the end
        start = time.process_time()
        yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        assert refused < 0.6 * (time.process_time() - start)
    assert info.value.message == (f"the plan has more than {MAX_NODES} nodes (values, lists "
                                  "and mappings)")
    assert info.value.line is not None
    assert info.value.line > 1 or shape in ("flow", "rates", "aliases")


def test_block_nesting_is_refused_while_it_is_read() -> None:
    text = "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "x: 1\n"
    with pytest.raises(PlanLimitError) as info:
        load_yaml(text, file="deep.yaml")
    assert str(info.value) == "deep.yaml:61: nested more than 60 levels deep"


YAML_DOCS = [
    "a: \x85b\n", "a: 1\n---\nb: 2\n", "a: &x [1]\nb: *x\n", "a: *nope\n", "a: !!binary aGk=\n",
    "a: !foo 1\n", "? [1]\n: 2\n", "a: |\n  x\n  y\n", "a: >-\n  x\n  y\n", 'a: "\\u263a"\n',
    "%YAML 1.1\n---\na: 1\n", "a: 2026-05-03\n", "a: 2026-05-03T10:00:00Z\n", "a: yes\n",
    "a: ~\n", "a: 1\na: 2\n", "<<: {a: 1}\nb: 2\n", "[a, b]: 1\n", 'a: "x\n', "a: 1 # c\n",
    "a: !!python/object:os.system x\n", 'a: !!int "0x10"\n', 'a: !!float "1e999999"\n',
    "a: !!str 0x10\n", "a: b\x00c\n", "a: \ud800\n", "\ufeffa: 1\n", "a: [[[[1]]]]\n",
    "a: 0o17\n", "a: 1e5\n", "a: '1e5'\n", "a: 10:00\n",
]


@pytest.mark.parametrize("text", YAML_DOCS, ids=range(len(YAML_DOCS)))
def test_libyaml_and_pure_python_reading_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan reads the same (data or error) on libyaml's parser and on PyYAML's own."""
    from incentives import yamlio

    def read() -> str:
        try:
            return repr(yamlio.load_yaml(text, file="p.yaml"))
        except PlanError as exc:
            return f"{type(exc).__name__}: {exc}"

    got = read()
    monkeypatch.setattr(yamlio, "_Loader", yamlio._PyLoader)
    assert read() == got


def test_audits_and_simulations_draw_events_within_their_limits() -> None:
    from hypothesis import given as given_

    from incentives.populations import _event
    from incentives.testing.strategies import populations

    plan = load_plan(EVENT_PLAN.replace("max: 100000", "max: 40"))
    seen: list[Decimal] = []

    @settings(max_examples=40, deadline=None)
    @given_(populations(plan, min_size=1, max_size=3))
    def check(records: list[dict[str, Any]]) -> None:
        for r in records:
            for e in r.get("events", {}).get("lost_customers", []):
                seen.append(D(e["monthly_value"]))
                assert D(0) <= D(e["monthly_value"]) <= D(40)
                assert D(e["seats"]) == D(e["seats"]).to_integral_value() >= 1
        assert plan.evaluate(records, errors="collect").errors == []

    check()
    assert seen
    import datetime as dt
    import random

    rng = random.Random(1)
    spec = plan.inputs.events["lost_customers"]
    rows = [_event(rng, spec, k, 0, 50000.0, dt.date(2026, 5, 1), dt.date(2026, 5, 31))
            for k in range(50)]
    assert all(0 <= D(r["monthly_value"]) <= 40 for r in rows)
    assert all(D(r["seats"]) == D(r["seats"]).to_integral_value() >= 1 for r in rows)


@pytest.mark.parametrize(("body", "message"), [
    ("policies: [{{type: {v}, id: pay, amount: 1}}]", "unknown policy type 'xxxx"),
    ("inputs: {{metrics: [sales]}}\npolicies: [{{type: tiered, id: pay, basis: sales, "
     "method: {v}, tiers: [{{from: 0, rate: 1}}]}}]", "policies[0].method (policy 'pay'): 'xx"),
    ("policies: [{{type: formula, id: {v}, amount: 1}}]", "policies[0].id (policy 'xxx"),
    ("policies: [{{type: formula, id: pay, amount: 1, ? y{v} : 2}}]", "unknown key 'yxxx"),
    ("inputs: {{metrics: {{sales: {{min: {v}}}}}}}\npolicies: []", "must be a number, not 'xx"),
])
def test_a_plan_error_quotes_at_most_40_characters_of_a_value(body: str, message: str) -> None:
    text = "name: p\n" + body.format(v="x" * 100_000) + "\n"
    with pytest.raises(PlanError) as info:
        load_plan(text)
    assert message in str(info.value)
    assert "x" * 41 not in str(info.value)
    assert len(str(info.value)) < 600


@pytest.mark.parametrize(("amount", "message"), [
    ('"1e999999"', "'amount' is too large: at most 18 digits before the point ('1e999999')"),
    ('"4_8000.00"', "'amount' has a digit separator: '4_8000.00' (write 48000.00)"),
    ("9" * 5000, "'amount' is too long to be a number (5000 characters, at most 100)"),
    ('"NaN"', "'amount' must be a finite number, not 'NaN'"),
])
def test_a_paid_run_obeys_the_number_rule_too(tmp_path: Path, amount: str, message: str) -> None:
    """``incentives correct --paid``: the amounts of the paid run are read like a state's."""
    from incentives.ledger import State, save_state_file

    may = ROOT / "examples" / "telecom" / "records.jsonl"
    opening, state, paid = tmp_path / "opening.json", tmp_path / "state.json", tmp_path / "p.json"
    save_state_file(State.empty(load_plan(LEDGER_PLAN)), opening)
    res = _run("run", LEDGER_PLAN, may, "--state", state, "--format", "json", "--out", paid)
    assert res.returncode == 0, res.stderr
    data = json.loads(paid.read_text("utf-8"))
    first = data["results"][0]
    text = paid.read_text("utf-8").replace(
        json.dumps(first["lines"][0]["amount"]), amount, 1)
    paid.write_text(text, "utf-8")
    before = state.read_bytes()
    res = _run("correct", LEDGER_PLAN, may, "--paid", paid, "--opening", opening,
               "--state", state)
    assert res.returncode == 2
    assert res.stderr == (f"error: {paid}: the paid amount of payee {first['payee']!r}, period "
                          f"{first['period']!r}: {message}\n")
    assert state.read_bytes() == before


def test_yes_no_on_off_are_text_as_in_yaml_1_2() -> None:
    """YAML 1.1 read `on:` and `yes:` as the key True: `fields: {on: date}` failed with
    'must be text, not True', two such keys with 'duplicate key True'."""
    plan = load_plan("""
name: t
inputs:
  metrics:
    on: {min: 0}
    yes: {}
  attributes:
    senior: {type: bool, default: yes}
    flag: {type: text, allowed: [yes, no], default: no}
  events:
    r:
      fields: {amount: number, off: date}
policies:
  - {type: formula, id: f, amount: "1", when: "senior and flag == 'no'"}
  - {type: formula, id: g, amount: "2", when: "senior"}
""")
    assert list(plan.inputs.metrics) == ["on", "yes"]
    assert plan.inputs.attributes["senior"].default is True
    assert plan.inputs.attributes["flag"].allowed == ["yes", "no"]
    assert list(plan.inputs.events["r"].fields) == ["amount", "off"]
    run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"on": 1, "yes": 2},
                          "events": {"r": [{"amount": 1, "off": "2026-05-02"}]}}])
    assert str(run["a"].total) == "3.00"


def test_a_bool_attributes_text_default_false_is_false() -> None:
    """``default: "false"`` (quoted) stayed the text 'false', which a formula takes as true."""
    plan = load_plan("""
name: t
inputs:
  attributes:
    senior: {type: bool, default: "false"}
policies:
  - {type: formula, id: f, amount: "1", when: "senior"}
  - {type: formula, id: g, amount: "2"}
""")
    assert plan.inputs.attributes["senior"].default is False
    assert str(plan.evaluate([{"payee": "a", "period": "2026-05"}])["a"].total) == "2.00"
