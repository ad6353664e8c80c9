"""The per_transaction policy: commission on each credited transaction of a measure, with
exact amounts (T1, T3, T4), running tiers, rates by product, pay on payment and write-offs.

The engine that credits transactions and fills in the measures is not needed here: each
state is built by hand (a record, an environment with its period, the payee's measure and
the run's transactions), as the engine will build it, and the policy is compiled from a plan
that declares the measure's name.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import Plan, PlanError
from incentives.errors import StateError, TransactionError
from incentives.explain import recompute
from incentives.ledger import State, check_entries
from incentives.money import ZERO
from incentives.policies import POLICY_TYPES, CompileContext, PerTransaction, working_for
from incentives.policies.tiers import TierTable
from incentives.results import PayeeResult
from incentives.runtime import (
    Credit,
    Line,
    MeasureValue,
    PayeeState,
    Record,
    Transaction,
    TransactionBook,
)

D = Decimal
#: the kind each kind refers to, as a plan declares it
REFERS = {"credit_notes": "invoices", "payments": "invoices", "write_offs": "invoices"}


def txn(kind: str, id: str, date: str, amount: Any, *, sellers: Any = None,
        refers_to: str | None = None, **fields: Any) -> Transaction:
    day = dt.date.fromisoformat(date)
    return Transaction(kind, id, day, D(amount),
                       {"id": id, "date": day, "amount": D(amount), **fields},
                       tuple((p, D(s)) for p, s in sellers) if sellers else None, refers_to)


def book_of(*transactions: Transaction) -> TransactionBook:
    book = TransactionBook()
    for t in transactions:
        book.add(t, REFERS.get(t.kind) if t.refers_to else None)
    return book


#: the transaction kinds, crediting and measure of the plans below
DECLARED: dict[str, Any] = {
    "transactions": {"invoices": {"fields": {"product": "text", "sku": "text"},
                                  "optional": ["product", "sku"]},
                     "credit_notes": {"refers_to": "invoices", "sign": "negative"},
                     "payments": {"refers_to": "invoices", "sign": "positive"},
                     "write_offs": {"refers_to": "invoices", "sign": "positive"}},
    "crediting": [{"id": "direct", "type": "direct", "kinds": ["invoices", "credit_notes"]}],
    "measures": {"revenue": {"kinds": ["invoices", "credit_notes"], "sum": "amount"}},
}


def plan_of(**spec: Any) -> Plan:
    return Plan.model_validate({
        "name": "p", **DECLARED,
        "policies": [PerTransaction(id="commission", measure="revenue", **spec)]})


class Payee:
    """One payee paid by a plan period after period, its ledger carried through a state
    written to JSON and read back (and checked) between periods."""

    def __init__(self, plan: Plan, payee: str = "A") -> None:
        self.plan = plan
        self.policy = plan.compile().policies[0]
        self.payee = payee
        self.state = State.empty(plan)

    def pay(self, period: str, credits: Sequence[tuple[Transaction, Any]],
            book: TransactionBook | None, *, rule: str = "direct") -> Line:
        s = PayeeState(Record(self.payee, period), {"period": period, "total": ZERO})
        items = [(Credit(self.payee, t, D(share), rule, t.amount * D(share)),
                  t.amount * D(share)) for t, share in credits]
        s.measures = {"revenue": MeasureValue("revenue", sum((v for _, v in items), ZERO),
                                              items)}
        s.book = book
        self.state.open_payee(s)
        self.policy.apply(s)
        self.state.close_period(period, [s], self.plan)
        self.state = State.from_json(self.state.to_json())
        check_entries(self.state, self.plan)
        assert len(s.lines) == 1
        return s.lines[0]

    @property
    def ledger(self) -> dict[str, Any]:
        return self.state.ledger(self.payee)


T3_TIERS = [{"up_to": 50000, "rate": "0.04"}, {"rate": "0.06"}]


# ------------------------------------------------------------------ worked examples
def test_t1_split_and_credit_note_at_five_percent_per_transaction() -> None:
    inv = txn("invoices", "inv-1", "2026-05-10", 10000, sellers=[("A", "0.6"), ("B", "0.4")])
    note = txn("credit_notes", "cn-1", "2026-05-20", -2000, refers_to="inv-1")
    book = book_of(inv, note)
    plan = plan_of(rate="0.05")
    a = Payee(plan, "A").pay("2026-05", [(inv, "0.6"), (note, "0.6")], book)
    b = Payee(plan, "B").pay("2026-05", [(inv, "0.4"), (note, "0.4")], book)
    assert (a.amount, b.amount) == (D("240.00"), D("160.00"))
    rows = a.details["transactions"]
    assert [(r["kind"], r["id"], r["date"], r["share"], r["rule"], r["value"], r["earned"],
             r["rate"]) for r in rows] == [
        ("invoices", "inv-1", dt.date(2026, 5, 10), D("0.6"), "direct", D("6000.0"),
         D("300.00"), D("0.05")),
        ("credit_notes", "cn-1", dt.date(2026, 5, 20), D("0.6"), "direct", D("-1200.0"),
         D("-60.00"), D("0.05"))]
    assert a.details["earned"] == D("240.00")


def test_t3_running_tiers_year_to_date_carried_in_the_ledger() -> None:
    payee = Payee(plan_of(tiers=T3_TIERS, method="marginal", running="year"))
    jan = txn("invoices", "i-1", "2026-01-15", 30000)
    feb = txn("invoices", "i-2", "2026-02-10", 30000)
    note = txn("credit_notes", "c-1", "2026-02-20", -5000, refers_to="i-2")
    book = book_of(jan, feb, note)
    assert payee.pay("2026-01", [(jan, 1)], book).amount == D("1200.00")
    assert payee.ledger == {"commission": {"year": "2026", "cumulative": "30000"}}
    line = payee.pay("2026-02", [(note, 1), (feb, 1)], book)  # given out of order
    assert line.amount == D("1100.00")
    rows = line.details["transactions"]
    assert [(r["id"], r["cumulative_before"], r["cumulative_after"], r["earned"])
            for r in rows] == [("i-2", D(30000), D(60000), D("1400.00")),
                               ("c-1", D(60000), D(55000), D("-300.00"))]
    assert (line.details["cumulative_start"], line.details["cumulative_end"]) == (
        D(30000), D(55000))
    assert line.details["year"] == 2026
    assert payee.ledger == {"commission": {"year": "2026", "cumulative": "55000"}}
    # a new calendar year starts the cumulative again
    jan27 = txn("invoices", "i-3", "2027-01-05", 60000)
    line = payee.pay("2027-01", [(jan27, 1)], book_of(jan27))
    assert line.amount == D("2600.00")  # 50,000 x 4% + 10,000 x 6%, not all at 6%
    assert line.details["cumulative_start"] == 0


def test_t3_statement_rows_add_up_in_english_and_chinese() -> None:
    payee = Payee(plan_of(tiers=T3_TIERS, method="marginal", running="year"))
    jan = txn("invoices", "i-1", "2026-01-15", 30000)
    feb = txn("invoices", "i-2", "2026-02-10", 30000)
    note = txn("credit_notes", "c-1", "2026-02-20", -5000, refers_to="i-2")
    book = book_of(jan, feb, note)
    payee.pay("2026-01", [(jan, 1)], book)
    line = payee.pay("2026-02", [(feb, 1), (note, 1)], book)
    result = PayeeResult("A", "2026-02", None, [line], line.amount, plan=payee.plan)
    text = result.explain()
    assert ("invoices i-2 of 2026-02-10, share 1, cumulative 30,000 to 60,000: "
            "2,600.00 - 1,200.00 = 1,400.00") in text
    assert ("credit_notes c-1 of 2026-02-20, share 1, cumulative 60,000 to 55,000: "
            "2,300.00 - 2,600.00 = -300.00") in text
    assert "earned: 1,400.00 - 300.00 = 1,100.00" in text
    assert recompute(text) == D("1100.00")
    zh = result.explain(lang="zh")
    assert "累计 30,000 至 60,000" in zh
    assert recompute(zh, lang="zh") == D("1100.00")


def test_t4_pay_on_payment_in_proportion_held_in_the_ledger() -> None:
    inv = txn("invoices", "inv-1", "2026-05-10", 10000)
    june = txn("payments", "pay-1", "2026-06-15", 6000, refers_to="inv-1")
    august = txn("payments", "pay-2", "2026-08-03", 4000, refers_to="inv-1")
    book = book_of(inv, june, august)
    payee = Payee(plan_of(rate="0.05", payable="on_payment", payments="payments"))
    may = payee.pay("2026-05", [(inv, 1)], book)
    assert may.amount == D("0.00")
    assert (may.details["earned"], may.details["paid"], may.details["held"]) == (
        D("500.00"), D("0.00"), D("500.00"))
    assert payee.ledger == {"commission": {"transactions": {
        "invoices/inv-1": {"earned": "500.00", "amount": "10000", "paid": "0.00"}}}}
    jun = payee.pay("2026-06", [], book)
    assert jun.amount == D("300.00")
    (row,) = jun.details["settled"]
    assert {k: row[k] for k in ("kind", "id", "earned", "customer_paid", "paid_before", "paid",
                                "paid_to_date", "held", "status")} == {
        "kind": "invoices", "id": "inv-1", "earned": D("500.00"), "customer_paid": D(6000),
        "paid_before": D(0), "paid": D("300.00"), "paid_to_date": D("300.00"),
        "held": D("200.00"), "status": "held"}
    assert jun.details["held"] == D("200.00")
    assert payee.pay("2026-07", [], book).amount == D("0.00")
    aug = payee.pay("2026-08", [], book)
    assert aug.amount == D("200.00")
    assert aug.details["held"] == D("0.00")
    assert aug.details["settled"][0]["status"] == "paid"
    assert payee.ledger == {}  # fully paid: closed
    result = PayeeResult("A", "2026-06", None, [jun], jun.amount, plan=payee.plan)
    text = result.explain()
    assert "invoices inv-1 paid 6,000 of 10,000: 500.00 x 6,000 / 10,000 - 0.00 = 300.00" \
        in text
    assert "held for later payments: 200.00" in text
    assert recompute(text) == D("300.00")
    assert recompute(result.explain(lang="zh"), lang="zh") == D("300.00")


def test_on_payment_a_credit_note_lowers_what_its_invoice_needs_paid() -> None:
    inv = txn("invoices", "inv-1", "2026-05-10", 10000)
    note = txn("credit_notes", "cn-1", "2026-05-20", -2000, refers_to="inv-1")
    pay = txn("payments", "p-1", "2026-06-02", 8000, refers_to="inv-1")
    book = book_of(inv, note, pay)
    payee = Payee(plan_of(rate="0.05", payable="on_payment", payments="payments"))
    may = payee.pay("2026-05", [(inv, 1), (note, 1)], book)
    assert may.amount == D("0.00")
    assert payee.ledger["commission"]["transactions"] == {
        "invoices/inv-1": {"earned": "400.00", "amount": "8000", "paid": "0.00"}}
    assert payee.pay("2026-06", [], book).amount == D("400.00")  # 8,000 of 8,000 paid
    assert payee.ledger == {}


@pytest.mark.parametrize(("how", "july", "ledger"), [("forgive", D("0.00"), {}),
                                                     ("claw_back", D("-200.00"), {})])
def test_a_write_off_forgives_or_claws_back(how: str, july: Decimal, ledger: Any) -> None:
    inv = txn("invoices", "inv-1", "2026-05-10", 10000)
    pay = txn("payments", "p-1", "2026-06-15", 4000, refers_to="inv-1")
    off = txn("write_offs", "w-1", "2026-07-01", 6000, refers_to="inv-1")
    book = book_of(inv, pay, off)
    payee = Payee(plan_of(rate="0.05", payable="on_payment", payments="payments",
                          write_offs="write_offs", write_off=how))
    assert payee.pay("2026-05", [(inv, 1)], book).amount == D("0.00")
    assert payee.pay("2026-06", [], book).amount == D("200.00")
    line = payee.pay("2026-07", [], book)
    assert line.amount == july
    (row,) = line.details["settled"]
    assert row["status"] == {"forgive": "forgiven", "claw_back": "clawed_back"}[how]
    assert line.details["held"] == D("0.00")
    assert payee.ledger == ledger
    result = PayeeResult("A", "2026-07", None, [line], line.amount, plan=payee.plan)
    text = result.explain()
    assert recompute(text) == july
    if how == "forgive":
        assert "invoices inv-1 written off, 300.00 forgiven: 0.00" in text
    else:
        assert "invoices inv-1 written off, commission paid taken back: 0 - 200.00 = -200.00" \
            in text
    assert payee.pay("2026-08", [], book).amount == D("0.00")


# ------------------------------------------------------------------ rates and tiers
def test_rates_by_product_through_an_inline_table() -> None:
    plan = plan_of(rates_by="sku", table={"sku-1": "mobile", "sku-2": "ipvpn", 7: "ipvpn"},
                   rates={"mobile": "0.02", "ipvpn": "0.08"})
    one = txn("invoices", "i-1", "2026-05-02", 10000, sku="sku-1")
    two = txn("invoices", "i-2", "2026-05-03", 5000, sku="sku-2")
    three = txn("invoices", "i-3", "2026-05-04", 1000, sku=D(7))
    note = txn("credit_notes", "c-1", "2026-05-09", -1000, refers_to="i-2")  # no sku
    line = Payee(plan).pay("2026-05", [(one, 1), (two, 1), (three, "0.5"), (note, 1)],
                           book_of(one, two, three, note))
    assert line.amount == D("560.00")  # 200 + 400 + 500 x 0.08 - 1,000 x 0.08 (its invoice's)
    assert [(r["sku"], r["rate"], r["earned"]) for r in line.details["transactions"]] == [
        ("mobile", D("0.02"), D("200.00")), ("ipvpn", D("0.08"), D("400.00")),
        ("ipvpn", D("0.08"), D("40.000")), ("ipvpn", D("0.08"), D("-80.00"))]


def test_a_value_without_a_rate_is_an_error_naming_the_transaction() -> None:
    plan = plan_of(rates_by="product", rates={"mobile": "0.02"})
    odd = txn("invoices", "i-9", "2026-05-02", 100, product="fax")
    with pytest.raises(TransactionError) as caught:
        Payee(plan).pay("2026-05", [(odd, 1)], book_of(odd))
    e = caught.value
    assert (e.kind, e.id, e.field, e.payee, e.period) == ("invoices", "i-9", "product", "A",
                                                          "2026-05")
    assert "product 'fax' has no rate" in str(e)
    with_default = plan_of(rates_by="product", rates={"mobile": "0.02"}, default_rate="0.01")
    assert Payee(with_default).pay("2026-05", [(odd, 1)], book_of(odd)).amount == D("1.00")


def test_tiers_each_transaction_on_its_own_and_a_credit_note_at_its_invoices_rate() -> None:
    plan = plan_of(tiers=[{"from": 0, "rate": "0.04"}, {"from": 5000, "rate": "0.06"}],
                   method="marginal")
    inv = txn("invoices", "i-1", "2026-05-02", 10000)
    small = txn("invoices", "i-2", "2026-05-03", 2000)
    note = txn("credit_notes", "c-1", "2026-05-09", -2000, refers_to="i-1")
    loose = txn("credit_notes", "c-2", "2026-05-09", -2000)
    line = Payee(plan).pay("2026-05", [(inv, 1), (small, 1), (note, 1), (loose, 1)],
                           book_of(inv, small, note, loose))
    # 500 + 80 - 2,000 x 500 / 10,000 - f(2,000)
    assert line.amount == D("400.00")
    earned = {r["id"]: r["earned"] for r in line.details["transactions"]}
    assert earned == {"i-1": D("500.00"), "i-2": D("80.00"), "c-1": D("-100.00"),
                      "c-2": D("-80.00")}
    text = PayeeResult("A", "2026-05", None, [line], line.amount, plan=plan).explain()
    assert "at the rate of invoices i-1: -2,000 x 500.00 / 10,000 = -100.00" in text
    assert recompute(text) == D("400.00")
    # the invoice credited in an earlier period: found in the book, at the payee's share
    line = Payee(plan).pay("2026-06", [(note, "0.5")],
                           book_of(txn("invoices", "i-1", "2026-05-02", 10000,
                                       sellers=[("A", "0.5"), ("B", "0.5")]), note))
    assert line.amount == D("-40.00")  # -1,000 x f(5,000) / 5,000 = -1,000 x 200 / 5,000


def test_running_period_starts_again_each_period() -> None:
    payee = Payee(plan_of(tiers=T3_TIERS, method="marginal", running="period"))
    one = txn("invoices", "i-1", "2026-05-02", 40000)
    two = txn("invoices", "i-2", "2026-05-20", 20000)
    assert payee.pay("2026-05", [(one, 1), (two, 1)], book_of()).amount == D("2600.00")
    assert payee.ledger == {}
    three = txn("invoices", "i-3", "2026-06-02", 20000)
    assert payee.pay("2026-06", [(three, 1)], book_of()).amount == D("800.00")


def test_the_line_is_the_exact_sum_rounded_once() -> None:
    plan = plan_of(rate="0.015")
    items = [(txn("invoices", f"i-{k}", "2026-05-02", "0.30"), 1) for k in range(3)]
    line = Payee(plan).pay("2026-05", items, book_of())
    # each earns 0.0045 (0.00 rounded one by one); together 0.0135 -> 0.01
    assert line.amount == D("0.01")
    assert line.details["earned"] == D("0.0135")


def test_no_credits_is_a_zero_line() -> None:
    line = Payee(plan_of(rate="0.05")).pay("2026-05", [], None)
    assert line.amount == D("0.00")
    assert line.details["transactions"] == []
    text = PayeeResult("A", "2026-05", None, [line], line.amount).explain()
    assert "no credited transactions: 0.00" in text


# ------------------------------------------------------------------ the plan
def test_the_spec_is_checked() -> None:
    def bad(message: str, **spec: Any) -> None:
        with pytest.raises(PlanError, match=message):
            PerTransaction(id="c", measure="revenue", **spec)

    bad("give one of 'rate', 'tiers' or 'rates_by'")
    bad("not 'rate' and 'tiers'", rate="0.05", tiers=T3_TIERS, method="marginal")
    bad("tiers need a 'method'", tiers=T3_TIERS)
    bad("needs 'on_threshold", tiers=T3_TIERS, method="retroactive")
    bad("every tier but the last needs 'up_to'",
        tiers=[{"up_to": 5, "rate": 1}, {"rate": 2}, {"rate": 3}], method="marginal")
    bad("give 'from'", tiers=[{"rate": 1}, {"rate": 2}], method="marginal")
    bad("not both", tiers=[{"up_to": 5, "rate": 1}, {"from": 9, "rate": 2}], method="marginal")
    bad("'rates_by' needs 'rates'", rates_by="product")
    bad("'running' is for 'tiers' or a 'rate'", rates_by="product", rates={"a": 1},
        running="year")
    bad("needs 'payments'", rate="0.05", payable="on_payment")
    bad("'write_off' is only for", rate="0.05", write_off="claw_back")
    bad("rate -0.05 is negative", rate="-0.05")
    bad("unknown key 'rate_by'", rate_by="product")


def test_an_unknown_measure_or_table_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match="unknown measure 'revenu'; did you mean 'revenue'"):
        Plan.model_validate({"name": "p", **DECLARED, "policies": [
            PerTransaction(id="c", measure="revenu", rate="0.05")]}).compile()
    # a metric is not a measure: it has no transactions behind it
    with pytest.raises(PlanError, match="unknown measure 'sales'"):
        Plan(name="p", inputs={"metrics": {"sales": {}}}, policies=[
            PerTransaction(id="c", measure="sales", rate="0.05")]).compile()
    spec = PerTransaction(id="c", measure="revenue", rates_by="sku", table="categories",
                          rates={"mobile": 1})
    ctx = CompileContext(names={"revenue": "number"}, rounding=plan_of(rate=1).rounding)
    with pytest.raises(PlanError, match="unknown table 'categories'"):
        spec.compile(ctx)
    ctx = CompileContext(names={"revenue": "number"}, rounding=plan_of(rate=1).rounding,
                         tables={"categories": {"sku-1": "mobile"}})
    compiled = spec.compile(ctx)
    assert compiled.classes == {"sku-1": "mobile"}  # type: ignore[attr-defined]


def test_the_plan_round_trips_through_yaml() -> None:
    from incentives import load_plan

    plan = plan_of(tiers=T3_TIERS, method="marginal", running="year", payable="on_payment",
                   payments="payments", write_offs="write_offs", write_off="claw_back")
    again = load_plan(plan.to_yaml())
    assert again == plan
    assert "per_transaction" in POLICY_TYPES


def test_a_malformed_ledger_entry_is_refused() -> None:
    plan = plan_of(rate="0.05", payable="on_payment", payments="payments")
    for entry in ({"year": "2026"}, {"transactions": {"inv-1": {"earned": "1", "amount": "1",
                                                               "paid": "0"}}},
                  {"transactions": {"invoices/i": {"earned": "x", "amount": "1",
                                                   "paid": "0"}}},
                  {"cumulative": "1", "year": "26"}, {"other": 1}, {}):
        state = State("p", payees={"A": {"commission": entry}})
        with pytest.raises(StateError, match="malformed"):
            check_entries(state, plan)


# ------------------------------------------------------------------ properties
values = st.lists(st.decimals(min_value=1, max_value=10**6, places=2), min_size=1,
                  max_size=12)
tier_tables = st.lists(st.tuples(st.integers(1, 200000),
                                 st.decimals(min_value=0, max_value=1, places=3)),
                       min_size=1, max_size=4)


def _tiers(table: list[tuple[int, Decimal]]) -> list[dict[str, Any]]:
    ups = sorted({u for u, _ in table})
    rates = [r for _, r in table]
    out: list[dict[str, Any]] = [{"up_to": u, "rate": rates[i % len(rates)]}
                                 for i, u in enumerate(ups)]
    out.append({"rate": rates[-1]})
    return out


def _credits(amounts: Sequence[Decimal]) -> list[tuple[Transaction, int]]:
    return [(txn("invoices", f"i-{k:02}", f"2026-05-{k % 28 + 1:02}", a), 1)
            for k, a in enumerate(amounts)]


@settings(max_examples=60, deadline=None)
@given(values, tier_tables)
def test_running_tiers_sum_to_the_marginal_amount_on_the_net_total(
        amounts: list[Decimal], table: list[tuple[int, Decimal]]) -> None:
    tiers = _tiers(table)
    plan = plan_of(tiers=tiers, method="marginal", running="period")
    line = Payee(plan).pay("2026-05", _credits(amounts), book_of())
    marginal = TierTable("marginal", plan.policies[0].tier_list())  # type: ignore[attr-defined]
    exact = sum((r["earned"] for r in line.details["transactions"]), ZERO)
    total = sum(amounts, ZERO)
    # the same as the slices of `tiered` on the total, exactly, before rounding
    assert exact == marginal.amount(total) == marginal(total)
    assert line.amount == exact.quantize(D("0.01"), rounding=ROUND_HALF_UP)


@settings(max_examples=60, deadline=None)
@given(values, tier_tables, st.data())
def test_a_refund_and_an_identical_rebill_net_to_zero(
        amounts: list[Decimal], table: list[tuple[int, Decimal]], data: st.DataObject) -> None:
    plan = plan_of(tiers=_tiers(table), method="marginal", running="year")
    credits = _credits(amounts)
    k = data.draw(st.integers(0, len(credits) - 1))
    sale = credits[k][0]
    refund = txn("credit_notes", "c-1", "2026-05-29", -sale.amount, refers_to=sale.id)
    rebill = txn("invoices", "z-rebill", "2026-05-30", sale.amount)
    plain = Payee(plan).pay("2026-05", credits, book_of())
    both = Payee(plan).pay("2026-05", [*credits, (refund, 1), (rebill, 1)],
                           book_of(refund, *(t for t, _ in credits)))
    assert both.amount == plain.amount
    rows = {r["id"]: r["earned"] for r in both.details["transactions"]}
    assert rows["c-1"] + rows["z-rebill"] == 0


@settings(max_examples=40, deadline=None)
@given(values, tier_tables, st.randoms(use_true_random=False),
       st.sampled_from(["none", "period", "year"]))
def test_credit_order_never_changes_the_line(amounts: list[Decimal],
                                              table: list[tuple[int, Decimal]],
                                              rnd: random.Random, running: str) -> None:
    plan = plan_of(tiers=_tiers(table), method="marginal", running=running)
    credits = _credits(amounts)
    shuffled = list(credits)
    rnd.shuffle(shuffled)
    one = Payee(plan).pay("2026-05", credits, book_of())
    two = Payee(plan).pay("2026-05", shuffled, book_of())
    assert one.amount == two.amount
    assert one.details == two.details


# ------------------------------------------------------------------ statements
def test_a_line_without_its_plan_is_worked_as_per_transaction() -> None:
    inv = txn("invoices", "inv-1", "2026-05-10", 10000)
    line = Payee(plan_of(rate="0.05")).pay("2026-05", [(inv, 1)], book_of(inv))
    assert working_for(None, line.details) is PerTransaction.statement
    text = PayeeResult("A", "2026-05", None, [line], line.amount).explain()
    assert "invoices inv-1 of 2026-05-10, share 1: 10,000 x 0.05 = 500.00" in text
    zh = PayeeResult("A", "2026-05", None, [line], line.amount).explain(lang="zh")
    assert "invoices inv-1，2026-05-10，份额 1: 10,000 x 0.05 = 500.00" in zh


# ------------------------------------------------------------------ through the engine
def transaction_plan(policy: str) -> Plan:
    from incentives import load_plan

    return load_plan(f"""
name: per-transaction
period: month
transactions:
  invoices: {{fields: {{product: text}}, optional: [product]}}
  credit_notes: {{refers_to: invoices, sign: negative}}
  payments: {{refers_to: invoices, sign: positive}}
  write_offs: {{refers_to: invoices, sign: positive}}
crediting:
  - {{id: direct, type: direct, kinds: [invoices, credit_notes]}}
measures:
  revenue: {{kinds: [invoices, credit_notes], sum: amount}}
policies:
  - {{type: per_transaction, id: commission, measure: revenue, {policy}}}
""")


def by_period(plan: Plan, periods: Sequence[str], transactions: list[dict[str, Any]],
              payees: Sequence[str] = ("A",)) -> dict[tuple[str, str], Decimal]:
    """Each (payee, period)'s commission, one period a run, the state carried as JSON."""
    state = State.empty(plan)
    out = {}
    for period in periods:
        run = plan.evaluate([{"payee": p, "period": period} for p in payees],
                            transactions=transactions, state=State.from_json(state.to_json()))
        state = run.state
        for r in run.results:
            out[(r.payee, period)] = r.total
    return out


def test_t1_through_the_engine() -> None:
    plan = transaction_plan("rate: 0.05")
    paid = by_period(plan, ["2026-05"], [
        {"kind": "invoices", "id": "inv-1", "date": "2026-05-10", "amount": 10000,
         "sellers": {"A": 0.6, "B": 0.4}},
        {"kind": "credit_notes", "id": "cn-1", "date": "2026-05-20", "amount": -2000,
         "refers_to": "inv-1"}], payees=("A", "B"))
    assert paid == {("A", "2026-05"): D("240.00"), ("B", "2026-05"): D("160.00")}


def test_t3_through_the_engine_period_by_period() -> None:
    plan = transaction_plan("tiers: [{up_to: 50000, rate: 0.04}, {rate: 0.06}], "
                            "method: marginal, running: year")
    paid = by_period(plan, ["2026-01", "2026-02"], [
        {"kind": "invoices", "id": "i-1", "date": "2026-01-15", "amount": 30000, "seller": "A"},
        {"kind": "invoices", "id": "i-2", "date": "2026-02-10", "amount": 30000, "seller": "A"},
        {"kind": "credit_notes", "id": "c-1", "date": "2026-02-20", "amount": -5000,
         "refers_to": "i-2"}])
    assert paid == {("A", "2026-01"): D("1200.00"), ("A", "2026-02"): D("1100.00")}


def test_t4_through_the_engine_period_by_period() -> None:
    plan = transaction_plan("rate: 0.05, payable: on_payment, payments: payments")
    paid = by_period(plan, ["2026-05", "2026-06", "2026-07", "2026-08"], [
        {"kind": "invoices", "id": "inv-1", "date": "2026-05-10", "amount": 10000,
         "seller": "A"},
        {"kind": "payments", "id": "p-1", "date": "2026-06-15", "amount": 6000,
         "refers_to": "inv-1"},
        {"kind": "payments", "id": "p-2", "date": "2026-08-03", "amount": 4000,
         "refers_to": "inv-1"}])
    assert list(paid.values()) == [D("0.00"), D("300.00"), D("0.00"), D("200.00")]


def test_write_off_claw_back_through_the_engine_in_one_run() -> None:
    plan = transaction_plan("rate: 0.05, payable: on_payment, payments: payments, "
                            "write_offs: write_offs, write_off: claw_back")
    run = plan.evaluate(
        [{"payee": "A", "period": p} for p in ("2026-05", "2026-06", "2026-07")],
        transactions=[
            {"kind": "invoices", "id": "inv-1", "date": "2026-05-10", "amount": 10000,
             "seller": "A"},
            {"kind": "payments", "id": "p-1", "date": "2026-06-15", "amount": 4000,
             "refers_to": "inv-1"},
            {"kind": "write_offs", "id": "w-1", "date": "2026-07-01", "amount": 6000,
             "refers_to": "inv-1"}],
        state=State.empty(plan))
    assert [r.total for r in run.results] == [D("0.00"), D("200.00"), D("-200.00")]
    assert run.state.payees == {}


def test_rates_by_product_category_through_the_plans_table() -> None:
    from incentives import load_plan

    plan = load_plan("""
name: by-category
transactions:
  invoices: {fields: {sku: text}}
crediting: [{id: direct, type: direct}]
tables:
  categories: {sku-1: mobile, sku-2: ipvpn}
measures:
  revenue: {sum: amount}
policies:
  - type: per_transaction
    id: commission
    measure: revenue
    rates_by: sku
    table: categories
    rates: {mobile: 0.02, ipvpn: 0.08}
""")
    run = plan.evaluate([{"payee": "A", "period": "2026-05"}], errors="collect", transactions=[
        {"id": "i-1", "date": "2026-05-02", "amount": 10000, "seller": "A", "sku": "sku-1"},
        {"id": "i-2", "date": "2026-05-03", "amount": 5000, "seller": "A", "sku": "sku-2"}])
    assert run["A"].total == D("600.00")
    bad = plan.evaluate([{"payee": "A", "period": "2026-05"}], errors="collect", transactions=[
        {"id": "i-3", "date": "2026-05-02", "amount": 100, "seller": "A", "sku": "sku-9"}])
    # the transaction with no rate is reported and not credited; the payee's others are paid
    assert [str(r.total) for r in bad.results] == ["0.00"]
    (error,) = bad.errors
    assert isinstance(error, TransactionError)
    assert (error.kind, error.id, error.field) == ("invoices", "i-3", "sku")
    assert "sku 'sku-9' is not in the table" in str(error)


def test_the_payment_kinds_and_the_measure_are_checked_against_the_plan() -> None:
    with pytest.raises(PlanError, match="unknown transaction kind 'paymnts'; did you mean "
                                        "'payments'"):
        plan_of(rate="0.05", payable="on_payment", payments="paymnts").compile()
    with pytest.raises(PlanError, match="kind 'invoices' refers to no transaction"):
        plan_of(rate="0.05", payable="on_payment", payments="invoices").compile()
    with pytest.raises(PlanError, match="unknown transaction kind 'lost'"):
        plan_of(rate="0.05", payable="on_payment", payments="payments",
                write_offs="lost").compile()
    events = Plan.model_validate({
        "name": "p", **DECLARED,
        "inputs": {"events": {"lost_customers": {"fields": {"id": "text",
                                                            "monthly_value": "number"}}}},
        "measures": {**DECLARED["measures"],
                     "lost_value": {"events": "lost_customers", "sum": "monthly_value"}},
        "policies": [PerTransaction(id="c", measure="lost_value", rate="0.05")]})
    with pytest.raises(PlanError, match="made of the records' events, not of transactions"):
        events.compile()


def test_a_statement_from_json_details_without_the_plan() -> None:
    from incentives.runtime import jsonable

    inv = txn("invoices", "inv-1", "2026-05-10", 10000)
    pay = txn("payments", "p-1", "2026-06-15", 6000, refers_to="inv-1")
    book = book_of(inv, pay)
    payee = Payee(plan_of(tiers=T3_TIERS, method="marginal", running="year",
                          payable="on_payment", payments="payments"))
    payee.pay("2026-05", [(inv, 1)], book)
    line = payee.pay("2026-06", [], book)
    assert line.amount == D("240.00")  # 10,000 x 4% x 6,000 / 10,000
    again = Line(line.policy, line.label, line.amount, line.type, jsonable(line.details))
    assert working_for(None, again.details) is PerTransaction.statement
    for lang in ("en", "zh"):
        text = PayeeResult("A", "2026-06", None, [again], again.amount).explain(lang=lang)
        assert recompute(text, lang=lang) == D("240.00")
    assert "invoices inv-1 paid 6,000 of 10,000: 400.00 x 6,000 / 10,000 - 0.00 = 240.00" \
        in PayeeResult("A", "2026-06", None, [again], again.amount).explain()


def test_two_credits_of_one_invoice_are_held_once_against_its_payments() -> None:
    inv = txn("invoices", "inv-1", "2026-05-10", 10000)
    pay = txn("payments", "p-1", "2026-06-15", 5000, refers_to="inv-1")
    book = book_of(inv, pay)
    payee = Payee(plan_of(rate="0.05", payable="on_payment", payments="payments"))
    s = PayeeState(Record("A", "2026-05"), {"period": "2026-05", "total": ZERO})
    items = [(Credit("A", inv, D(1), "direct", inv.amount), inv.amount),
             (Credit("A", inv, D(1), "overlay", inv.amount), inv.amount)]
    s.measures = {"revenue": MeasureValue("revenue", D(20000), items)}
    s.book = book
    payee.policy.apply(s)
    assert s.ledger == {"commission": {"transactions": {
        "invoices/inv-1": {"earned": "1000.00", "amount": "10000", "paid": "0.00"}}}}
    payee.state.close_period("2026-05", [s], payee.plan)
    assert payee.pay("2026-06", [], book).amount == D("500.00")  # half of 1,000 earned
