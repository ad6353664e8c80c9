"""Reading transactions: the quick path reads exactly what the field-by-field path reads,
hostile values are refused with the transaction named, and the run refuses to pay a plan
of transactions without them."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import incentives
from incentives.errors import TransactionError, UsageError
from incentives.transactions import TransactionKind, TransactionReader, parse_sellers

ROOT = Path(__file__).resolve().parent.parent
KINDS = {
    "invoices": TransactionKind(fields={"customer": "text", "product": "text"},
                                optional=["product"]),
    "credit_notes": TransactionKind(refers_to="invoices", sign="negative"),
}
READER = TransactionReader(KINDS)

texts = st.one_of(
    st.sampled_from(["c-1", "A", "ana", " padded ", "", "x:y", "a;b", "\u200bzw", "tab\tin",
                     "é", "名字", "=cmd|' /C calc'!A0", "1e3", "-0"]),
    st.text(max_size=8))
amounts = st.one_of(
    st.sampled_from(["10000", "-2000.50", "0.1", "1e3", "1,000", " 5 ", "NaN", "", "00012",
                     "12345678901234567890", "-0.000000000000000000001"]),
    st.integers(min_value=-10**20, max_value=10**20),
    st.decimals(allow_nan=False, allow_infinity=False, places=3, max_value=10**9,
                min_value=-10**9),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none())
dates = st.one_of(st.sampled_from(["2026-05-10", "2026-02-30", "2026-5-1", "20260510",
                                   " 2026-05-10", "2026-05-10T08:00", ""]),
                  st.dates().map(dt.date.isoformat), st.dates())


def _outcome(read, raw):
    try:
        t = read(raw)
    except TransactionError as exc:
        return ("error", exc.kind, exc.id, exc.field)
    return ("ok", t.kind, t.id, t.date, t.amount, t.sellers, t.refers_to, t.fields)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["invoices", "credit_notes", "payments", None]),
       ident=texts, day=dates, amount=amounts, seller=st.one_of(texts, st.none()),
       customer=st.one_of(texts, st.none()), refers=st.one_of(texts, st.none()))
def test_the_quick_path_reads_what_the_full_path_reads(kind, ident, day, amount, seller,
                                                       customer, refers):
    raw = {"kind": kind, "id": ident, "date": day, "amount": amount, "seller": seller,
           "customer": customer, "refers_to": refers}
    raw = {k: v for k, v in raw.items() if v is not None}
    quick = READER._plain(raw, 0, None)
    if quick is None:
        return  # the full path reads it (and is what the other tests check)
    full = _outcome(lambda r: READER._read(r, 0, None), raw)
    assert full == ("ok", quick.kind, quick.id, quick.date, quick.amount, quick.sellers,
                    quick.refers_to, quick.fields)


def test_amounts_are_exact_and_a_float_is_read_by_its_digits() -> None:
    rows = [{"kind": "invoices", "id": str(i), "date": "2026-05-01", "amount": a,
             "seller": "A", "customer": "c"} for i, a in enumerate(["0.1", 0.2, Decimal("0.3")])]
    assert [READER.read(r).amount for r in rows] == [Decimal("0.1"), Decimal("0.2"),
                                                      Decimal("0.3")]
    assert sum(READER.read(r).amount for r in rows) == Decimal("0.6")


@pytest.mark.parametrize(("row", "field", "words"), [
    ({"amount": "1,000"}, "amount", "not a number"),
    ({"amount": "NaN"}, "amount", "amount"),
    ({"amount": None}, "amount", "missing amount"),
    ({"date": "2026-02-30"}, "date", "not a date"),
    ({"kind": "invoice"}, "kind", "did you mean 'invoices'"),
    ({"seller": "A:0.6;B:0.6"}, None, None),  # shares are checked by the crediting rule
    ({"seller": "A:-1"}, "seller", "more than 0"),
    ({"seller": None, "sellers": [{"payee": "A", "share": "0.5"},
                                  {"payee": "A", "share": "0.5"}]}, "sellers", "named twice"),
    ({"seller": "A", "sellers": "B"}, "sellers", "not both"),
    ({"customer": "a\u202eb"}, "customer", "control"),
    ({"customer": "x" * 1001}, "customer", "too long"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"id": "x" * 1001}, "id", "too long"),
    ({"id": "  "}, "id", "missing id"),
    ({"id": "a\x1bb"}, "id", "control"),
    ({"id": True}, "id", "text or a whole number"),
])
def test_a_bad_transaction_is_named(row, field, words) -> None:
    raw = {"kind": "invoices", "id": "inv-9", "date": "2026-05-01", "amount": "10",
           "seller": "A", "customer": "c", **row}
    raw = {k: v for k, v in raw.items() if v is not None}
    if field is None:
        assert READER.read(raw).sellers == ((("A", Decimal("0.6")), ("B", Decimal("0.6"))))
        return
    with pytest.raises(TransactionError) as caught:
        READER.read(raw, 4)
    assert caught.value.field == field
    assert words.lower() in caught.value.message.lower()
    assert "inv-9" in str(caught.value) or field == "id"


def test_a_credit_note_above_zero_says_how_to_read_positive_credit_notes() -> None:
    with pytest.raises(TransactionError, match="negate: true") as caught:
        READER.read({"kind": "credit_notes", "id": "cn-1", "date": "2026-05-20",
                     "amount": "2000", "refers_to": "inv-1"})
    assert (caught.value.kind, caught.value.id, caught.value.field) == (
        "credit_notes", "cn-1", "amount")
    negated = TransactionReader({**KINDS, "credit_notes": TransactionKind(
        refers_to="invoices", sign="negative", negate=True)})
    assert negated.read({"kind": "credit_notes", "id": "cn-1", "date": "2026-05-20",
                         "amount": "2000", "refers_to": "inv-1"}).amount == Decimal("-2000")


def test_sellers_in_every_written_form() -> None:
    want = (("A", Decimal("0.6")), ("B", Decimal("0.4")))
    for form in ["A:0.6;B:0.4", " A : 0.6 ; B:0.4 ", {"A": "0.6", "B": "0.4"},
                 [{"payee": "A", "share": "0.6"}, {"payee": "B", "share": "0.4"}]]:
        assert parse_sellers(form) == want, form


PLAN = """
name: t
transactions: {invoices: {}}
crediting: [{id: direct, type: direct}]
measures: {revenue: {sum: amount}}
policies: [{type: formula, id: c, amount: revenue * 0.05}]
"""


def test_a_plan_of_transactions_is_not_paid_without_them() -> None:
    plan = incentives.load_plan(PLAN)
    roster = [{"payee": "A", "period": "2026-05"}]
    with pytest.raises(UsageError, match="give them"):
        plan.evaluate(roster)
    assert plan.evaluate(roster, transactions=[]).results[0].total == Decimal("0.00")


def test_errors_are_listed_in_one_order_whatever_the_order_transactions_arrive_in() -> None:
    plan = incentives.load_plan(PLAN)
    rows = [{"kind": "invoices", "id": f"i{i}", "date": "2026-05-01", "amount": "x",
             "seller": "A"} for i in range(5)]
    roster = [{"payee": "A", "period": "2026-05"}]
    first = plan.evaluate(roster, transactions=rows, errors="collect").to_json()
    again = plan.evaluate(roster, transactions=rows[::-1], errors="collect").to_json()
    assert first == again


def test_stream_refuses_a_plan_of_transactions(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN, encoding="utf-8")
    (tmp_path / "roster.jsonl").write_text('{"payee": "A", "period": "2026-05"}\n',
                                           encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "incentives", "stream",
                           str(tmp_path / "plan.yaml"), str(tmp_path / "roster.jsonl")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "stream does not read transactions" in done.stderr
    assert "Traceback" not in done.stderr


TABLED = """
name: tabled
transactions: {invoices: {fields: {sku: text}}}
crediting: [{id: direct, type: direct}]
tables: {families: {sku-1: network, sku-2: voice}}
measures:
  revenue: {sum: amount}
  family: {sum: amount, by: sku, table: families, values: [network, voice]}
policies:
  - {type: per_transaction, id: commission, measure: revenue, rates_by: sku, table: families,
     rates: {network: 0.1, voice: 0.01}}
"""


def test_a_classification_table_given_for_the_run_replaces_the_plans(tmp_path: Path) -> None:
    plan = incentives.load_plan(TABLED)
    rows = [{"id": "i1", "date": "2026-05-02", "amount": "1000", "seller": "A", "sku": "sku-1"},
            {"id": "i2", "date": "2026-05-03", "amount": "1000", "seller": "A", "sku": "sku-2"}]
    roster = [{"payee": "A", "period": "2026-05"}]
    as_planned = plan.evaluate(roster, transactions=rows).results[0]
    assert as_planned.total == Decimal("110.00")
    assert as_planned.measures["family_network"].value == Decimal("1000")
    # this run's table says sku-2 is network too: both the measure and the rates follow it
    table = tmp_path / "families.csv"
    table.write_text("key,value\nsku-1,network\nsku-2,network\n", encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(TABLED, encoding="utf-8")
    (tmp_path / "roster.jsonl").write_text('{"payee": "A", "period": "2026-05"}\n',
                                           encoding="utf-8")
    (tmp_path / "tx.jsonl").write_text(
        "".join(json.dumps({"kind": "invoices", **r}) + "\n" for r in rows), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "incentives", "run", str(tmp_path / "plan.yaml"),
                           str(tmp_path / "roster.jsonl"), "--transactions",
                           str(tmp_path / "tx.jsonl"), "--table", f"families={table}",
                           "--format", "json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert result["total"] == "200.00"
    assert result["measures"]["family_network"]["value"] == "2000"


@pytest.mark.parametrize("path", sorted([*ROOT.glob("examples/transactions/*.yaml"),
                                         *ROOT.glob("tests/transactions/*/plan*.yaml")]),
                         ids=lambda p: p.parent.name + "/" + p.name)
def test_a_plan_paid_from_transactions_dumps_to_yaml_and_loads_back_equal(path: Path) -> None:
    plan = incentives.load_plan(path)
    assert plan.transactions
    assert incentives.load_plan(plan.to_yaml()) == plan


ON_PAYMENT = """
name: on-payment
transactions:
  invoices: {}
  payments: {refers_to: invoices, sign: positive}
crediting: [{id: direct, type: direct, kinds: [invoices]}]
measures: {revenue: {sum: amount, kinds: [invoices]}}
policies:
  - {type: per_transaction, id: c, measure: revenue, rate: 0.05, payable: on_payment,
     payments: payments}
"""


def test_pay_on_payment_pays_in_whole_cents_what_is_due_to_date_rounded_once() -> None:
    """Half-cent commissions (2.50 x 5% = 0.125) paid invoice by invoice never pay a cent
    more than the exact total due: the rounding is carried, and fully paid the payee has
    what pay-when-earned pays."""
    from incentives.explain import recompute
    from incentives.ledger import State

    plan = incentives.load_plan(ON_PAYMENT)
    invoices = [{"kind": "invoices", "id": f"i{i}", "date": "2026-05-02", "amount": "2.50",
                 "seller": "A"} for i in range(7)]
    payments = [{"kind": "payments", "id": f"p{i}", "date": f"2026-0{6 + i % 3}-01",
                 "amount": "2.50", "refers_to": f"i{i}"} for i in range(7)]
    state, paid = State.empty(plan), []
    for period in ("2026-05", "2026-06", "2026-07", "2026-08"):
        run = plan.evaluate([{"payee": "A", "period": period}],
                            transactions=invoices + payments, state=state)
        state = run.state
        result = run.results[0]
        paid.append(result.total)
        assert recompute(result.explain()) == result.total
        assert recompute(result.explain(lang="zh"), lang="zh") == result.total
    # due to date exactly: 0, 3 x 0.125, 5 x 0.125, 7 x 0.125; paid: each rounded once
    assert paid == [Decimal("0.00"), Decimal("0.38"), Decimal("0.25"), Decimal("0.25")]
    assert sum(paid) == Decimal("0.88")  # 7 x 0.125 = 0.875, rounded half-up once


REFUNDS = """
name: refunds
transactions:
  invoices: {}
  credit_notes: {refers_to: invoices, sign: negative}
crediting:
  - {id: direct, type: direct}
  - {id: up, type: roll_up, of: [direct]}
measures:
  revenue: {sum: amount, rules: [direct]}
  team: {sum: amount, rules: [up]}
policies:
  - {type: per_transaction, id: c, measure: revenue, running: period, method: marginal,
     tiers: [{from: 0, rate: 0.04}, {from: 50000, rate: 0.06}]}
  - {type: formula, id: o, amount: team * 0.01}
"""


def _refund_run(rows: list[dict[str, object]], hierarchy: list[dict[str, str]] | None = None
                ) -> incentives.Run:
    roster = [{"payee": p, "period": m} for m in ("2026-01", "2026-02")
              for p in ("A", "M1", "M2")]
    return incentives.load_plan(REFUNDS).evaluate(
        roster, transactions=rows, errors="collect",
        hierarchy=hierarchy or [{"payee": "A", "manager": "M1"}])


def test_a_refund_in_a_later_period_reverses_at_the_rate_at_zero() -> None:
    run = _refund_run([
        {"kind": "invoices", "id": "i", "date": "2026-01-10", "amount": 60000, "seller": "A"},
        {"kind": "credit_notes", "id": "c", "date": "2026-02-10", "amount": -60000,
         "refers_to": "i"}])
    assert [(r.period, str(r.amount("c"))) for r in run if r.payee == "A"] == [
        ("2026-01", "2600.00"), ("2026-02", "-2400.00")]


def test_a_credit_note_rolls_up_to_the_managers_its_invoice_went_to() -> None:
    run = _refund_run([
        {"kind": "invoices", "id": "i", "date": "2026-01-10", "amount": 10000, "seller": "A"},
        {"kind": "credit_notes", "id": "c", "date": "2026-02-10", "amount": -10000,
         "refers_to": "i"}],
        hierarchy=[{"payee": "A", "manager": "M1", "to": "2026-01-31"},
                   {"payee": "A", "manager": "M2", "from": "2026-02-01"}])
    overrides = {(r.payee, r.period): str(r.amount("o")) for r in run if r.payee != "A"}
    assert overrides == {("M1", "2026-01"): "100.00", ("M1", "2026-02"): "-100.00",
                         ("M2", "2026-01"): "0.00", ("M2", "2026-02"): "0.00"}


def test_credit_notes_before_their_invoice_or_beyond_its_amount_are_refused() -> None:
    run = _refund_run([
        {"kind": "invoices", "id": "i", "date": "2026-01-10", "amount": 1000, "seller": "A"},
        {"kind": "credit_notes", "id": "early", "date": "2026-01-05", "amount": -100,
         "refers_to": "i"},
        {"kind": "credit_notes", "id": "c1", "date": "2026-01-20", "amount": -800,
         "refers_to": "i"},
        {"kind": "credit_notes", "id": "c2", "date": "2026-01-25", "amount": -300,
         "refers_to": "i"}])
    found = sorted((e.id, e.field) for e in run.errors)  # type: ignore[attr-defined]
    assert found == [("c2", "amount"), ("early", "date")]
    assert run.get("A", "2026-01").amount("c") == Decimal("8.00")  # 1,000 - 800 at 4%


def test_a_where_that_fails_on_a_transaction_is_reported_not_dropped() -> None:
    plan = incentives.load_plan(PLAN.replace("revenue: {sum: amount}",
                                             "revenue: {sum: amount, where: 'amount / "
                                             "(amount - 100) > 0'}"))
    run = plan.evaluate([{"payee": "A", "period": "2026-05"}], errors="collect", transactions=[
        {"kind": "invoices", "id": "i1", "date": "2026-05-10", "amount": "100", "seller": "A"}])
    [error] = run.errors
    assert (error.kind, error.id, error.payee) == ("invoices", "i1", "A")  # type: ignore[attr-defined]
    assert "division by zero" in str(error)


def test_per_transaction_refuses_a_measure_that_is_not_a_sum() -> None:
    with pytest.raises(incentives.PlanError, match="is a count"):
        incentives.load_plan(PLAN.replace(
            "measures: {revenue: {sum: amount}}",
            "measures: {revenue: {sum: amount}, deals: {count: transactions}}").replace(
            "policies: [{type: formula, id: c, amount: revenue * 0.05}]",
            "policies: [{type: per_transaction, id: c, measure: deals, rate: 0.05}]"))


def test_a_hierarchy_without_transactions_is_not_zero_pay(tmp_path: Path) -> None:
    folder = ROOT / "examples" / "transactions"
    done = subprocess.run([sys.executable, "-m", "incentives", "run",
                           str(folder / "plan.yaml"), str(folder / "roster.jsonl"),
                           "--hierarchy", str(folder / "hierarchy.csv")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "give them" in done.stderr
    assert done.stdout == ""


def test_a_classification_table_naming_a_key_twice_is_refused(tmp_path: Path) -> None:
    plan = incentives.load_plan(TABLED)
    with pytest.raises(UsageError, match="given twice"):
        plan.evaluate([{"payee": "A", "period": "2026-05"}], transactions=[], tables={
            "families": [{"key": "sku-1", "value": "voice"},
                         {"key": "sku-1", "value": "network"}]})


def test_a_currency_code_is_read_whatever_its_case() -> None:
    reader = TransactionReader(KINDS, currency="CNY")
    row = {"kind": "invoices", "id": "i", "date": "2026-05-01", "amount": "10", "seller": "A",
           "customer": "c"}
    assert reader.read({**row, "currency": "cny"}).amount == Decimal("10")
    with pytest.raises(TransactionError, match="plan pays in CNY"):
        reader.read({**row, "currency": "USD"})


def test_a_negated_kind_names_the_amount_as_written_and_as_read() -> None:
    negated = TransactionReader({**KINDS, "credit_notes": TransactionKind(
        refers_to="invoices", sign="negative", negate=True)})
    with pytest.raises(TransactionError) as caught:
        negated.read({"kind": "credit_notes", "id": "cn-1", "date": "2026-05-20",
                      "amount": "-200", "refers_to": "inv-1"})
    assert caught.value.message == ("amount -200 (read as 200: credit_notes declare "
                                    "'negate: true') is above zero, but credit_notes are "
                                    "negative")
