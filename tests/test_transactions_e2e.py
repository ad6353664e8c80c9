"""Issue 17 end to end: transactions -> credits -> measures -> policies -> lines.

Acceptance tests written from the issue 17 spec, independently of the code:
T1-T4 of WORKED-EXAMPLES.md through the Python API and through the command line
(a real ``python -m incentives`` process), every input form of transactions,
the error corpus (each bad transaction named by kind, id and field, the others
still paid), every measure form, order independence and statements.

Plans and data live in ``tests/transactions/``. Where the spec says nothing, a
test states what a payroll user would expect and says so: ``# spec silent: ...``.
"""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import State, load_plan
from incentives.errors import RecordError, TransactionError
from incentives.records import read_records_file
from incentives.results import Run

D = Decimal
DATA = Path(__file__).resolve().parent / "transactions"
T1, T2, T3, T4 = DATA / "t1", DATA / "t2", DATA / "t3", DATA / "t4"
MEASURES, ERRORS = DATA / "measures", DATA / "errors"


# ------------------------------------------------------------------ helpers


@dataclass
class Proc:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data


def incentives(*args: object) -> Proc:
    """Run ``incentives ARGS...`` in a real process (``python -m incentives``)."""
    proc = subprocess.run([sys.executable, "-m", "incentives", *(str(a) for a in args)],
                          capture_output=True, check=False, timeout=300)
    return Proc(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file as a Python user reads them (plain ``json.loads``: floats)."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def roster(folder: Path) -> list[Any]:
    return list(read_records_file(folder / "roster.jsonl"))


def hierarchy_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def totals(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["payee"], r["period"]): r["total"] for r in data["results"]}


def line_amounts(result: dict[str, Any]) -> dict[str, str]:
    return {li["id"]: li["amount"] for li in result["lines"]}


def result_of(data: dict[str, Any], payee: str, period: str | None = None) -> dict[str, Any]:
    found = [r for r in data["results"]
             if r["payee"] == payee and (period is None or r["period"] == period)]
    assert len(found) == 1, (payee, period, [(r["payee"], r["period"]) for r in data["results"]])
    return found[0]


def measure_rows(measure: dict[str, Any]) -> list[tuple[str, str, Decimal, str, Decimal]]:
    """A measure's transactions in the JSON output as (kind, id, share, rule, value)."""
    return sorted((t["kind"], t["id"], D(t["share"]), t["rule"], D(t["value"]))
                  for t in measure["transactions"])


def no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


def next_month_start(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    return f"{year + (month == 12)}-{month % 12 + 1:02d}-01"


def up_to(rows: list[dict[str, Any]], period: str) -> list[dict[str, Any]]:
    """The transactions dated on or before the last day of ``period``."""
    end = next_month_start(period)
    return [r for r in rows if r["date"] < end]


# ====================================================================== T1


def _check_t1_run(run: Run) -> None:
    assert run.errors == []
    assert run["A"].amount("commission") == D("240.00")
    assert run["B"].amount("commission") == D("160.00")
    assert run["A"].total == D("240.00")
    assert run["B"].total == D("160.00")


def _check_t1_json(data: dict[str, Any]) -> None:
    assert data["errors"] == []
    assert totals(data) == {("A", "2026-05"): "240.00", ("B", "2026-05"): "160.00"}
    a = result_of(data, "A")
    assert line_amounts(a) == {"commission": "240.00"}
    assert D(a["measures"]["revenue"]["value"]) == D("4800")
    assert measure_rows(a["measures"]["revenue"]) == [
        ("credit_notes", "cn-1", D("0.6"), "direct", D("-1200")),
        ("invoices", "inv-1", D("0.6"), "direct", D("6000"))]
    b = result_of(data, "B")
    assert D(b["measures"]["revenue"]["value"]) == D("3200")
    assert measure_rows(b["measures"]["revenue"]) == [
        ("credit_notes", "cn-1", D("0.4"), "direct", D("-800")),
        ("invoices", "inv-1", D("0.4"), "direct", D("4000"))]


def test_t1_api() -> None:
    plan = load_plan(T1 / "plan.yaml")
    run = plan.evaluate(roster(T1), transactions=read_jsonl(T1 / "transactions.jsonl"))
    _check_t1_run(run)
    _check_t1_json(json.loads(run.to_json()))


def test_t1_measure_keeps_its_credits_api() -> None:
    """The credits behind A's revenue: which transaction, share, rule, exact amount."""
    run = load_plan(T1 / "plan.yaml").evaluate(
        roster(T1), transactions=read_jsonl(T1 / "transactions.jsonl"))
    data = run["A"].to_dict()
    revenue = data["measures"]["revenue"]
    by_id = {t["id"]: t for t in revenue["transactions"]}
    assert by_id["inv-1"]["date"] == "2026-05-10"
    assert D(by_id["inv-1"]["amount"]) == D("10000")
    assert by_id["cn-1"]["date"] == "2026-05-20"
    assert D(by_id["cn-1"]["amount"]) == D("-2000")


def test_t1_cli() -> None:
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "transactions.jsonl", "--format", "json")
    assert res.code == 0, res.err
    _check_t1_json(res.json())


def test_t1_per_transaction_api_and_cli() -> None:
    """The same 5% as a per_transaction policy: a credit note that refers to an invoice
    earns at the rate its invoice earned: A 300.00 - 60.00, B 200.00 - 40.00."""
    plan = load_plan(T1 / "plan-per-transaction.yaml")
    run = plan.evaluate(roster(T1), transactions=read_jsonl(T1 / "transactions.jsonl"))
    _check_t1_run(run)
    details = run["A"].line("commission").details["transactions"]
    earned = {t["id"]: D(t["earned"]) for t in details}
    assert earned == {"inv-1": D("300"), "cn-1": D("-60")}
    res = incentives("run", T1 / "plan-per-transaction.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "transactions.jsonl", "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    assert totals(data) == {("A", "2026-05"): "240.00", ("B", "2026-05"): "160.00"}
    rows = {t["id"]: t for t in result_of(data, "B")["lines"][0]["details"]["transactions"]}
    assert (rows["inv-1"]["kind"], rows["inv-1"]["rule"]) == ("invoices", "direct")
    assert D(rows["inv-1"]["share"]) == D("0.4")
    assert D(rows["inv-1"]["value"]) == D("4000")
    assert D(rows["inv-1"]["earned"]) == D("200")
    assert D(rows["cn-1"]["value"]) == D("-800")
    assert D(rows["cn-1"]["earned"]) == D("-40")


# ====================================================================== T2


def _t2_check(data: dict[str, Any], m_amount: str, m_value: str, m_share: str) -> None:
    assert data["errors"] == []
    assert totals(data) == {("A", "2026-05"): "0.00", ("S", "2026-05"): "0.00",
                            ("M", "2026-05"): m_amount}
    m = result_of(data, "M")
    assert line_amounts(m) == {"override": m_amount}
    assert D(m["measures"]["rolled"]["value"]) == D(m_value)
    assert measure_rows(m["measures"]["rolled"]) == [
        ("invoices", "inv-1", D(m_share), "managers", D(m_value))]
    # M's own direct credits are not part of the roll-up, and A and S roll up nothing
    assert D(m["measures"]["revenue"]["value"]) == 0
    for payee in ("A", "S"):
        r = result_of(data, payee)
        assert D(r["measures"]["revenue"]["value"]) == D("10000")
        assert D(r["measures"]["rolled"]["value"]) == 0


@pytest.mark.parametrize(("plan", "m_amount", "m_value", "m_share"), [
    ("plan.yaml", "100.00", "10000", "1"),
    ("plan-each-credit.yaml", "200.00", "20000", "2"),
])
def test_t2_api(plan: str, m_amount: str, m_value: str, m_share: str) -> None:
    run = load_plan(T2 / plan).evaluate(
        roster(T2), transactions=read_jsonl(T2 / "transactions.jsonl"),
        hierarchy=hierarchy_rows(T2 / "hierarchy.csv"))
    assert run["M"].amount("override") == D(m_amount)
    assert run["A"].amount("override") == D("0.00")
    assert run["S"].amount("override") == D("0.00")
    _t2_check(json.loads(run.to_json()), m_amount, m_value, m_share)


@pytest.mark.parametrize(("plan", "m_amount", "m_value", "m_share"), [
    ("plan.yaml", "100.00", "10000", "1"),
    ("plan-each-credit.yaml", "200.00", "20000", "2"),
])
def test_t2_cli(plan: str, m_amount: str, m_value: str, m_share: str) -> None:
    res = incentives("run", T2 / plan, T2 / "roster.jsonl",
                     "--transactions", T2 / "transactions.jsonl",
                     "--hierarchy", T2 / "hierarchy.csv", "--format", "json")
    assert res.code == 0, res.err
    _t2_check(res.json(), m_amount, m_value, m_share)


def test_t2_hierarchy_in_force_on_the_transaction_date() -> None:
    """A and S joined M on 2026-01-01: an invoice dated before that does not roll up to M,
    one after does."""
    rows = read_jsonl(T2 / "transactions.jsonl")
    early = {**rows[0], "id": "inv-0", "date": "2025-12-20"}
    records = [*read_jsonl(T2 / "roster.jsonl"),
               *({"payee": p, "period": "2025-12"} for p in ("A", "S", "M"))]
    hierarchy = [{"payee": "A", "manager": "M", "from": "2026-01-01"},
                 {"payee": "S", "manager": "M", "from": "2026-01-01", "to": None}]
    run = load_plan(T2 / "plan.yaml").evaluate(
        records, transactions=[*rows, early], hierarchy=hierarchy)
    assert run.errors == []
    assert run.get("M", "2025-12").amount("override") == D("0.00")
    assert run.get("M", "2026-05").amount("override") == D("100.00")


# ====================================================================== T3


def _t3_check_feb(feb: dict[str, Any]) -> None:
    assert line_amounts(feb) == {"commission": "1100.00"}
    rows = {t["id"]: t for t in feb["lines"][0]["details"]["transactions"]}
    assert set(rows) == {"inv-feb", "cn-feb"}
    assert D(rows["inv-feb"]["earned"]) == D("1400")
    assert D(rows["cn-feb"]["earned"]) == D("-300")
    assert D(rows["cn-feb"]["value"]) == D("-5000")


def test_t3_api_one_run() -> None:
    run = load_plan(T3 / "plan.yaml").evaluate(
        roster(T3), transactions=read_jsonl(T3 / "transactions.jsonl"))
    assert run.errors == []
    assert run.get("A", "2026-01").amount("commission") == D("1200.00")
    assert run.get("A", "2026-02").amount("commission") == D("1100.00")
    earned = {t["id"]: D(t["earned"]) for t in
              run.get("A", "2026-02").line("commission").details["transactions"]}
    assert earned == {"inv-feb": D("1400"), "cn-feb": D("-300")}


def test_t3_api_month_by_month_with_state() -> None:
    plan = load_plan(T3 / "plan.yaml")
    rows = read_jsonl(T3 / "transactions.jsonl")
    records = roster(T3)
    jan = plan.evaluate(records[:1], transactions=up_to(rows, "2026-01"))
    assert jan["A"].amount("commission") == D("1200.00")
    state = State.from_json(jan.state.to_json())
    feb = plan.evaluate(records[1:], transactions=up_to(rows, "2026-02"), state=state)
    assert feb.errors == []
    assert feb["A"].amount("commission") == D("1100.00")


def test_t3_cli_one_run() -> None:
    res = incentives("run", T3 / "plan.yaml", T3 / "roster.jsonl",
                     "--transactions", T3 / "transactions.jsonl", "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    assert totals(data) == {("A", "2026-01"): "1200.00", ("A", "2026-02"): "1100.00"}
    jan = result_of(data, "A", "2026-01")
    assert [(t["id"], D(t["earned"])) for t in jan["lines"][0]["details"]["transactions"]] == [
        ("inv-jan", D("1200"))]
    _t3_check_feb(result_of(data, "A", "2026-02"))


def test_t3_cli_month_by_month_with_state(tmp_path: Path) -> None:
    rows = read_jsonl(T3 / "transactions.jsonl")
    records = read_jsonl(T3 / "roster.jsonl")
    state = tmp_path / "state.json"
    want = {"2026-01": "1200.00", "2026-02": "1100.00"}
    for record in records:
        period = record["period"]
        res = incentives("run", T3 / "plan.yaml", write_jsonl(tmp_path / f"r-{period}.jsonl",
                                                              [record]),
                         "--transactions", write_jsonl(tmp_path / f"t-{period}.jsonl",
                                                       up_to(rows, period)),
                         "--state", state, "--format", "json")
        assert res.code == 0, res.err
        assert totals(res.json()) == {("A", period): want[period]}
    _t3_check_feb(result_of(res.json(), "A", "2026-02"))


def test_t3_cli_month_by_month_each_month_its_own_transactions(tmp_path: Path) -> None:
    # spec silent: whether a month's run may be given only that month's transactions;
    # the year-to-date cumulative is "carried in the ledger", so it should not need
    # January's invoice again in February.
    rows = read_jsonl(T3 / "transactions.jsonl")
    state = tmp_path / "state.json"
    for record, want in zip(read_jsonl(T3 / "roster.jsonl"), ["1200.00", "1100.00"],
                            strict=True):
        period = record["period"]
        mine = [r for r in rows if r["date"].startswith(period)]
        res = incentives("run", T3 / "plan.yaml", write_jsonl(tmp_path / f"r-{period}.jsonl",
                                                              [record]),
                         "--transactions", write_jsonl(tmp_path / f"t-{period}.jsonl", mine),
                         "--state", state, "--format", "json")
        assert res.code == 0, res.err
        assert totals(res.json()) == {("A", period): want}


# ====================================================================== T4

T4_PAID = {"2026-05": "0.00", "2026-06": "300.00", "2026-07": "0.00", "2026-08": "200.00"}
T4_HELD = {"2026-05": D("500"), "2026-06": D("200"), "2026-07": D("200"), "2026-08": D("0")}


def _t4_check(result: dict[str, Any]) -> None:
    period = result["period"]
    assert line_amounts(result) == {"commission": T4_PAID[period]}
    details = result["lines"][0]["details"]
    assert D(details["held"]) == T4_HELD[period], (period, details)
    if period == "2026-05":
        assert (D(details["earned"]), D(details["paid"])) == (D(500), D(0)), details


def test_t4_api_one_run() -> None:
    run = load_plan(T4 / "plan.yaml").evaluate(
        roster(T4), transactions=read_jsonl(T4 / "transactions.jsonl"))
    assert run.errors == []
    assert {r.period: str(r.amount("commission")) for r in run} == T4_PAID
    may = run.get("A", "2026-05").line("commission").details
    assert (D(may["earned"]), D(may["paid"]), D(may["held"])) == (D(500), D(0), D(500))
    for r in json.loads(run.to_json())["results"]:
        _t4_check(r)


def test_t4_cli_one_run() -> None:
    res = incentives("run", T4 / "plan.yaml", T4 / "roster.jsonl",
                     "--transactions", T4 / "transactions.jsonl", "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    assert {p: t for (_, p), t in totals(data).items()} == T4_PAID
    for r in data["results"]:
        _t4_check(r)


def test_t4_cli_month_by_month_with_state(tmp_path: Path) -> None:
    """Each month a separate run with the transactions to date and the state file."""
    rows = read_jsonl(T4 / "transactions.jsonl")
    state = tmp_path / "state.json"
    for record in read_jsonl(T4 / "roster.jsonl"):
        period = record["period"]
        res = incentives("run", T4 / "plan.yaml", write_jsonl(tmp_path / f"r-{period}.jsonl",
                                                              [record]),
                         "--transactions", write_jsonl(tmp_path / f"t-{period}.jsonl",
                                                       up_to(rows, period)),
                         "--state", state, "--format", "json")
        assert res.code == 0, (period, res.err)
        data = res.json()
        assert totals(data) == {("A", period): T4_PAID[period]}, period
        _t4_check(data["results"][0])
    # what is earned and unpaid is carried in the ledger: nothing is left after August
    saved = json.loads(state.read_text("utf-8"))
    assert saved["format"] == "incentives.state"
    assert [c["period"] for c in saved["closed"]] == list(T4_PAID)


def test_t4_cli_month_by_month_the_whole_file_each_month(tmp_path: Path) -> None:
    # spec silent: a payroll export usually holds every transaction, later ones too;
    # a payment dated after the period's end is not paid yet (spec: "payments dated up
    # to the period's end"), and the May invoice is not credited again in June.
    state = tmp_path / "state.json"
    for record in read_jsonl(T4 / "roster.jsonl"):
        period = record["period"]
        res = incentives("run", T4 / "plan.yaml", write_jsonl(tmp_path / f"r-{period}.jsonl",
                                                              [record]),
                         "--transactions", T4 / "transactions.jsonl",
                         "--state", state, "--format", "json")
        assert res.code == 0, (period, res.err)
        assert totals(res.json()) == {("A", period): T4_PAID[period]}, period


def test_t4_api_month_by_month_with_state() -> None:
    plan = load_plan(T4 / "plan.yaml")
    rows = read_jsonl(T4 / "transactions.jsonl")
    state = State.empty(plan)
    for record in read_jsonl(T4 / "roster.jsonl"):
        period = record["period"]
        run = plan.evaluate([record], transactions=up_to(rows, period),
                            state=State.from_json(state.to_json()))
        assert run.errors == []
        assert str(run["A"].amount("commission")) == T4_PAID[period]
        assert D(run["A"].line("commission").details["held"]) == T4_HELD[period]
        state = run.state


# ====================================================================== input forms


def _t1_amounts(run: Run) -> tuple[Decimal, Decimal]:
    assert run.errors == [], [str(e) for e in run.errors]
    return run["A"].amount("commission"), run["B"].amount("commission")


T1_WANT = (D("240.00"), D("160.00"))


def test_input_python_dicts_with_kind() -> None:
    rows = [{"kind": "invoices", "id": "inv-1", "date": "2026-05-10", "amount": D("10000"),
             "sellers": [{"payee": "A", "share": D("0.6")}, {"payee": "B", "share": D("0.4")}]},
            {"kind": "credit_notes", "id": "cn-1", "date": "2026-05-20", "amount": -2000,
             "refers_to": "inv-1"}]
    assert _t1_amounts(load_plan(T1 / "plan.yaml").evaluate(roster(T1), transactions=rows)) \
        == T1_WANT


def test_input_python_dates_and_floats() -> None:
    import datetime as dt
    rows = [{"kind": "invoices", "id": "inv-1", "date": dt.date(2026, 5, 10), "amount": 10000.0,
             "sellers": {"A": 0.6, "B": 0.4}},
            {"kind": "credit_notes", "id": "cn-1", "date": dt.date(2026, 5, 20),
             "amount": -2000.0, "refers_to": "inv-1"}]
    assert _t1_amounts(load_plan(T1 / "plan.yaml").evaluate(roster(T1), transactions=rows)) \
        == T1_WANT


def test_input_mapping_kind_to_rows() -> None:
    rows = read_jsonl(T1 / "transactions.jsonl")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        kind = r.pop("kind")
        by_kind.setdefault(kind, []).append(r)
    assert _t1_amounts(load_plan(T1 / "plan.yaml").evaluate(roster(T1), transactions=by_kind)) \
        == T1_WANT


def test_input_one_kind_needs_no_kind_key() -> None:
    rows = [{"id": "inv-1", "date": "2026-05-10", "amount": "10000", "seller": "A",
             "specialist": "S"}]
    run = load_plan(T2 / "plan.yaml").evaluate(
        roster(T2), transactions=rows, hierarchy=hierarchy_rows(T2 / "hierarchy.csv"))
    assert run["M"].amount("override") == D("100.00")


def test_input_dataframes() -> None:
    pd = pytest.importorskip("pandas")
    invoices = pd.DataFrame({"id": ["inv-1"], "date": ["2026-05-10"], "amount": [10000],
                             "customer": ["c-1"], "sellers": ["A:0.6;B:0.4"]})
    credit_notes = pd.DataFrame({"id": ["cn-1"], "date": ["2026-05-20"], "amount": [-2000],
                                 "refers_to": ["inv-1"]})
    # spec silent: `sellers` in a DataFrame column written as in CSV ("A:0.6;B:0.4")
    run = load_plan(T1 / "plan.yaml").evaluate(
        roster(T1), transactions={"invoices": invoices, "credit_notes": credit_notes})
    assert _t1_amounts(run) == T1_WANT


def test_input_dataframe_hierarchy_and_roster() -> None:
    pd = pytest.importorskip("pandas")
    hierarchy = pd.DataFrame({"payee": ["A", "S"], "manager": ["M", "M"],
                              "from": [None, None], "to": [None, None]})
    invoices = pd.DataFrame({"id": ["inv-1"], "date": ["2026-05-10"], "amount": [10000.0],
                             "seller": ["A"], "specialist": ["S"]})
    run = load_plan(T2 / "plan.yaml").evaluate(
        pd.DataFrame({"payee": ["A", "S", "M"], "period": ["2026-05"] * 3}),
        transactions={"invoices": invoices}, hierarchy=hierarchy)
    assert run.errors == []
    assert run["M"].amount("override") == D("100.00")


@pytest.mark.parametrize("args", [
    ["--transactions", "transactions.jsonl"],
    ["--transactions", "transactions.json"],
    ["--transactions", "invoices=invoices.csv", "--transactions", "credit_notes=credit_notes.csv"],
], ids=["jsonl", "json-array", "csv-per-kind"])
def test_input_files_cli(args: list[str]) -> None:
    paths = []
    for a in args:
        if a.startswith("--"):
            paths.append(a)
        elif "=" in a:
            kind, name = a.split("=")
            paths.append(f"{kind}={T1 / name}")
        else:
            paths.append(str(T1 / a))
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl", *paths, "--format", "json")
    assert res.code == 0, res.err
    _check_t1_json(res.json())


def test_input_one_csv_of_two_kinds_cli() -> None:
    # spec silent: one CSV holding two kinds (a `kind` column); a blank cell is an
    # absent field (an invoice's blank `refers_to`, a credit note's blank `sellers`)
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "transactions.csv", "--format", "json")
    assert res.code == 0, res.err
    _check_t1_json(res.json())


def test_input_kind_file_of_jsonl_without_kind_keys(tmp_path: Path) -> None:
    inv = write_jsonl(tmp_path / "inv.jsonl", [
        {"id": "inv-1", "date": "2026-05-10", "amount": "10000", "sellers": "A:0.6;B:0.4"}])
    cn = write_jsonl(tmp_path / "cn.jsonl", [
        {"id": "cn-1", "date": "2026-05-20", "amount": "-2000", "refers_to": "inv-1"}])
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", f"invoices={inv}", "--transactions", f"credit_notes={cn}",
                     "--format", "json")
    assert res.code == 0, res.err
    _check_t1_json(res.json())


def test_credit_note_with_its_own_sellers_keeps_them() -> None:
    """The issue: a negative transaction is credited with the shares of the one it
    references, "or with its own"."""
    rows = read_jsonl(T1 / "transactions.jsonl")
    rows[1]["seller"] = "A"
    run = load_plan(T1 / "plan.yaml").evaluate(roster(T1), transactions=rows)
    assert _t1_amounts(run) == (D("200.00"), D("200.00"))


def test_negate_reads_positive_credit_notes(tmp_path: Path) -> None:
    text = (T1 / "plan.yaml").read_text("utf-8").replace(
        "    sign: negative\n", "    sign: negative\n    negate: true\n")
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(text, encoding="utf-8")
    rows = read_jsonl(T1 / "transactions.jsonl")
    rows[1]["amount"] = 2000
    assert _t1_amounts(load_plan(plan_path).evaluate(roster(T1), transactions=rows)) == T1_WANT
    # and a negative one under negate: true is the wrong sign once negated
    rows[1]["amount"] = -2000
    run = load_plan(plan_path).evaluate(roster(T1), transactions=rows, errors="collect")
    assert [(e.kind, e.id, e.field) for e in run.errors] == [  # type: ignore[attr-defined]
        ("credit_notes", "cn-1", "amount")]


def test_float_looking_amounts_are_exact(tmp_path: Path) -> None:
    rows = [{"kind": "invoices", "id": "i1", "date": "2026-05-01", "amount": 0.1, "seller": "A"},
            {"kind": "invoices", "id": "i2", "date": "2026-05-02", "amount": 0.2, "seller": "A"}]
    text = (T1 / "plan.yaml").read_text("utf-8").replace("revenue * 0.05", "revenue")
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(text, encoding="utf-8")
    run = load_plan(plan_path).evaluate([{"payee": "A", "period": "2026-05"}],
                                        transactions=rows)
    assert D(run["A"].to_dict()["measures"]["revenue"]["value"]) == D("0.3")
    assert run["A"].amount("commission") == D("0.30")
    tx = write_jsonl(tmp_path / "tx.jsonl", rows)  # JSON numbers 0.1 and 0.2
    res = incentives("run", plan_path, write_jsonl(tmp_path / "r.jsonl",
                                                   [{"payee": "A", "period": "2026-05"}]),
                     "--transactions", tx, "--format", "json")
    assert res.code == 0, res.err
    a = res.json()["results"][0]
    assert D(a["measures"]["revenue"]["value"]) == D("0.3")
    assert a["total"] == "0.30"


# ====================================================================== errors

#: what the good transactions pay in every error case
GOOD = {("A", "2026-05"): "100.00", ("B", "2026-05"): "200.00", ("M", "2026-05"): "30.00",
        ("C", "2026-06"): "50.00"}

INV = {"kind": "invoices", "date": "2026-05-07", "amount": 100}


@dataclass
class Case:
    name: str
    rows: list[dict[str, Any]]
    kind: str | None
    id: str | None
    fields: tuple[str | None, ...]
    message: str
    #: the good payees whose pay is not touched by the bad transaction
    unchanged: tuple[tuple[str, str], ...] = tuple(GOOD)
    hierarchy: str | None = None


CASES = [
    Case("unknown_seller", [{**INV, "id": "bad-1", "seller": "Z"}],
         "invoices", "bad-1", ("seller", "sellers"), "'Z'"),
    Case("shares_sum_to_0_9", [{**INV, "id": "bad-2", "sellers": {"A": "0.5", "B": "0.4"}}],
         "invoices", "bad-2", ("sellers",), "0.9"),
    Case("shares_sum_to_1_1", [{**INV, "id": "bad-2b", "sellers": "A:0.6;B:0.5"}],
         "invoices", "bad-2b", ("sellers",), "1.1"),
    Case("missing_invoice", [{"kind": "credit_notes", "id": "cn-x", "date": "2026-05-08",
                              "amount": -10, "refers_to": "inv-404"}],
         "credit_notes", "cn-x", ("refers_to",), "inv-404"),
    # spec silent: what happens to the first of two transactions with one id; neither is
    # credited (so A's and M's pay are not checked here), the id is reported once
    Case("duplicate_id", [{**INV, "id": "inv-a", "seller": "A"}],
         "invoices", "inv-a", ("id",), "same id",
         unchanged=(("B", "2026-05"), ("C", "2026-06"))),
    Case("positive_credit_note", [{"kind": "credit_notes", "id": "cn-p", "date": "2026-05-08",
                                   "amount": 200, "refers_to": "inv-b"}],
         "credit_notes", "cn-p", ("amount",), "negate: true"),
    Case("credited_to_nobody", [{**INV, "id": "bad-3"}],
         "invoices", "bad-3", ("seller", "sellers"), "credit"),
    # the spec asks for a field; the payee and period say more here (the payee may come
    # from a roll-up or an assignment table): no field is accepted
    Case("no_record_in_that_period", [{**INV, "id": "bad-4", "seller": "C"}],
         "invoices", "bad-4", ("seller", "sellers", None), "2026-05"),
    Case("date_not_a_date", [{**INV, "id": "bad-5", "date": "2026-13-40", "seller": "A"}],
         "invoices", "bad-5", ("date",), "2026-13-40"),
    Case("missing_amount", [{"kind": "invoices", "id": "bad-6", "date": "2026-05-07",
                             "seller": "A"}],
         "invoices", "bad-6", ("amount",), "amount"),
    Case("amount_not_a_number", [{**INV, "id": "bad-7", "amount": "12,5x", "seller": "A"}],
         "invoices", "bad-7", ("amount",), "12,5x"),
    # an unknown kind is not a kind: the error's kind may be empty, its message names it
    Case("undeclared_kind", [{**INV, "kind": "orders", "id": "bad-8", "seller": "A"}],
         None, "bad-8", ("kind",), "'orders'"),
    Case("currency_differs", [{**INV, "id": "bad-9", "currency": "USD", "seller": "A"}],
         "invoices", "bad-9", ("currency",), "USD"),
    Case("refers_to_on_a_kind_without_it", [{**INV, "id": "bad-10", "seller": "A",
                                             "refers_to": "inv-a"}],
         "invoices", "bad-10", ("refers_to",), "refers_to"),
    Case("missing_id", [{**INV, "seller": "A"}], "invoices", None, ("id",), "id"),
    # spec silent: a negative share is refused even when the shares sum to 1
    Case("negative_share", [{**INV, "id": "bad-11", "sellers": {"A": "1.5", "B": "-0.5"}}],
         "invoices", "bad-11", ("sellers",), "-0.5"),
    # spec silent: which transactions a hierarchy cycle stops; those of the payees in the
    # cycle's subtrees cannot be rolled up, C (outside it) is still paid
    Case("hierarchy_cycle", [], None, None, (None, "manager", "payee"), "cycle",
         unchanged=(("C", "2026-06"),), hierarchy="payee,manager,from,to\nA,M,,\nB,M,,\nM,A,,\n"),
    Case("hierarchy_overlap", [], None, None, (None, "from", "to", "manager", "payee"),
         "overlap", unchanged=(("C", "2026-06"),),
         hierarchy="payee,manager,from,to\nA,M,,\nB,M,,\nA,B,2026-05-01,2026-05-31\n"),
]


def _case_files(tmp_path: Path, case: Case) -> tuple[Path, Path]:
    tx = write_jsonl(tmp_path / "tx.jsonl",
                     [*read_jsonl(ERRORS / "transactions.jsonl"), *case.rows])
    hier = tmp_path / "hierarchy.csv"
    hier.write_text(case.hierarchy or (ERRORS / "hierarchy.csv").read_text("utf-8"),
                    encoding="utf-8")
    return tx, hier


def test_the_error_base_is_good() -> None:
    run = load_plan(ERRORS / "plan.yaml").evaluate(
        roster(ERRORS), transactions=read_jsonl(ERRORS / "transactions.jsonl"),
        hierarchy=hierarchy_rows(ERRORS / "hierarchy.csv"))
    assert run.errors == []
    assert {(r.payee, r.period): str(r.total) for r in run} == GOOD


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_transaction_api(case: Case, tmp_path: Path) -> None:
    tx, hier = _case_files(tmp_path, case)
    run = load_plan(ERRORS / "plan.yaml").evaluate(
        roster(ERRORS), transactions=read_jsonl(tx), hierarchy=hierarchy_rows(hier),
        errors="collect")
    assert run.errors, "the bad transaction was not reported"
    err = run.errors[0]
    assert isinstance(err, TransactionError), repr(err)
    assert isinstance(err, RecordError)
    if case.rows:
        assert len(run.errors) == 1, [str(e) for e in run.errors]
        assert err.id == case.id, str(err)
    if case.kind is not None:
        assert err.kind == case.kind, str(err)
    assert err.field in case.fields, str(err)
    assert case.message in str(err), str(err)
    got = {(r.payee, r.period): str(r.total) for r in run}
    for key in case.unchanged:
        assert got.get(key) == GOOD[key], (key, got)
    # raise mode: the first error is raised, as a TransactionError
    with pytest.raises(TransactionError):
        load_plan(ERRORS / "plan.yaml").evaluate(
            roster(ERRORS), transactions=read_jsonl(tx), hierarchy=hierarchy_rows(hier))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_transaction_cli(case: Case, tmp_path: Path) -> None:
    tx, hier = _case_files(tmp_path, case)
    res = incentives("run", ERRORS / "plan.yaml", ERRORS / "roster.jsonl", "--transactions", tx,
                     "--hierarchy", hier, "--format", "json")
    assert res.code == 1, (res.code, res.err)
    no_traceback(res.err)
    data = res.json()
    assert data["errors"]
    err = data["errors"][0]
    assert err["kind"] == "transaction", err
    if case.rows:
        assert len(data["errors"]) == 1, data["errors"]
        assert err["id"] == case.id, err
    if case.kind is not None:
        assert err["transaction_kind"] == case.kind, err
        assert case.id is None or f"{case.kind} '{case.id}'" in res.err, res.err
    assert err["field"] in case.fields, err
    assert case.message in res.err
    got = totals(data)
    for key in case.unchanged:
        assert got.get(key) == GOOD[key], (key, got)


def test_no_record_in_that_period_names_payee_and_period() -> None:
    rows = [*read_jsonl(ERRORS / "transactions.jsonl"), {**INV, "id": "bad-4", "seller": "C"}]
    run = load_plan(ERRORS / "plan.yaml").evaluate(
        roster(ERRORS), transactions=rows, hierarchy=hierarchy_rows(ERRORS / "hierarchy.csv"),
        errors="collect")
    [err] = run.errors
    assert isinstance(err, TransactionError)
    assert (err.payee, err.period) == ("C", "2026-05")


def test_undeclared_kind_suggests_the_declared_one() -> None:
    # spec silent: a misspelt kind in the data says which kinds the plan declares
    rows = [*read_jsonl(ERRORS / "transactions.jsonl"), {**INV, "kind": "invoice", "id": "x",
                                                         "seller": "A"}]
    run = load_plan(ERRORS / "plan.yaml").evaluate(
        roster(ERRORS), transactions=rows, hierarchy=hierarchy_rows(ERRORS / "hierarchy.csv"),
        errors="collect")
    [err] = run.errors
    assert "invoices" in str(err)


def test_several_bad_transactions_are_all_reported_in_a_stable_order(tmp_path: Path) -> None:
    # (a transaction without an id is known by its file and row, which move with the order)
    bad = [c.rows[0] for c in CASES if c.rows and c.name not in ("duplicate_id", "missing_id")]
    outs = []
    for seed in (1, 2, 3):
        rows = [*read_jsonl(ERRORS / "transactions.jsonl"), *bad]
        random.Random(seed).shuffle(rows)
        res = incentives("run", ERRORS / "plan.yaml", ERRORS / "roster.jsonl",
                         "--transactions", write_jsonl(tmp_path / "tx.jsonl", rows),
                         "--hierarchy", ERRORS / "hierarchy.csv", "--format", "json")
        assert res.code == 1
        no_traceback(res.err)
        data = res.json()
        assert len(data["errors"]) == len(bad), data["errors"]
        assert totals(data) == GOOD
        outs.append(res.out)
    # spec silent: the error list, like the results, does not depend on the file order
    assert outs[0] == outs[1] == outs[2]


# ------------------------------------------------------------- plan errors (exit 2)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, t in enumerate(text.splitlines(), start=1) if needle in t)


PLAN_TYPOS = [
    # (name, plan file, old, new, path in the message, suggestion)
    ("measure_kind", T1 / "plan.yaml", "kinds: [invoices, credit_notes], rules",
     "kinds: [invoice, credit_notes], rules", "measures.revenue.kinds", "invoices"),
    ("rule_kind", T1 / "plan.yaml", "{id: direct, type: direct, kinds: [invoices, credit_notes]}",
     "{id: direct, type: direct, kinds: [invoices, credit_note]}", "crediting[0].kinds",
     "credit_notes"),
    ("measure_rule", T1 / "plan.yaml", "rules: [direct]", "rules: [drect]",
     "measures.revenue.rules", "direct"),
    ("roll_up_of", T2 / "plan.yaml", "of: [direct, overlay]", "of: [direct, overlya]",
     "crediting[2].of", "overlay"),
    ("formula_measure", T1 / "plan.yaml", "amount: revenue * 0.05", "amount: revenu * 0.05",
     "policies[0].amount", "revenue"),
    ("refers_to_kind", T1 / "plan.yaml", "refers_to: invoices", "refers_to: invoice",
     "transactions.credit_notes.refers_to", "invoices"),
    ("crediting_type", T1 / "plan.yaml", "type: direct, kinds", "type: directt, kinds",
     "crediting[0]", "direct"),
    ("measure_table", MEASURES / "plan.yaml", "table: categories", "table: categries",
     "measures.by_cat.table", "categories"),
    ("measure_events", MEASURES / "plan.yaml", "events: lost_customers, sum",
     "events: lost_customer, sum", "measures.lost_value.events", "lost_customers"),
    ("measure_where", MEASURES / "plan.yaml", "product == 'sku2'", "prodcut == 'sku2'",
     "measures.big_ones.where", "product"),
    ("per_transaction_measure", T3 / "plan.yaml", "measure: revenue", "measure: revenu",
     "policies[0].measure", "revenue"),
]


@pytest.mark.parametrize(("plan", "old", "new", "path", "suggestion"),
                         [t[1:] for t in PLAN_TYPOS], ids=[t[0] for t in PLAN_TYPOS])
def test_misspelt_name_in_plan_exits_2_with_location(tmp_path: Path, plan: Path, old: str,
                                                     new: str, path: str,
                                                     suggestion: str) -> None:
    text = plan.read_text("utf-8")
    assert old in text
    bad = text.replace(old, new, 1)
    target = tmp_path / "plan.yaml"
    target.write_text(bad, encoding="utf-8")
    res = incentives("validate", target)
    assert res.code == 2, (res.code, res.out, res.err)
    no_traceback(res.err)
    assert f"plan.yaml:{_line_of(bad, new)}" in res.err, res.err
    assert path in res.err, res.err
    assert f"did you mean '{suggestion}'" in res.err, res.err


BAD_SECTIONS = [
    ("crediting_not_a_list", "crediting:\n  direct: {type: direct}\n", "crediting"),
    ("rule_without_id", "crediting:\n  - {type: direct, kinds: [invoices]}\n", "crediting[0]"),
    ("duplicate_rule_id", "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n  - {id: d, type: direct, kinds: [invoices]}\n",
     "crediting[1]"),
    ("roll_up_bad_levels",
     "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n  - {id: m, type: roll_up, of: [d], levels: 0}\n",
     "crediting[1].levels"),
    ("roll_up_bad_count",
     "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n  - {id: m, type: roll_up, of: [d], count: twice}\n",
     "crediting[1].count"),
    ("measure_two_aggregations", "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n"
     "measures:\n  revenue: {sum: amount, count: transactions}\n", "measures.revenue"),
    ("measure_sum_of_text", "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n"
     "measures:\n  revenue: {sum: customer}\n", "measures.revenue.sum"),
    ("measure_unknown_key", "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n"
     "measures:\n  revenue: {sum: amount, wher: 'amount > 0'}\n", "measures.revenue"),
    # spec silent: a measure named like a parameter is a clash, as two policies are
    ("measure_shadows_parameter", "parameters: {revenue: 1}\ncrediting:\n"
     "  - {id: d, type: direct, kinds: [invoices]}\nmeasures:\n  revenue: {sum: amount}\n", "measures.revenue"),
    ("field_type_unknown", "", "transactions.invoices.fields.customer"),
    ("sign_bad", "", "transactions.credit_notes.sign"),
]


@pytest.mark.parametrize(("section", "path"), [b[1:] for b in BAD_SECTIONS],
                         ids=[b[0] for b in BAD_SECTIONS])
def test_malformed_section_exits_2_naming_file_line_path(tmp_path: Path, section: str,
                                                         path: str) -> None:
    head = ("name: bad\nperiod: month\ntransactions:\n"
            "  invoices: {fields: {customer: text}, optional: [customer]}\n"
            "  credit_notes: {refers_to: invoices, sign: negative}\n")
    if path.endswith("fields.customer"):
        head = head.replace("customer: text}", "customer: txt}")
        section = "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n"
    if path.endswith("sign"):
        head = head.replace("sign: negative", "sign: minus")
        section = "crediting:\n  - {id: d, type: direct, kinds: [invoices]}\n"
    text = head + section + "policies:\n  - {type: formula, id: p, amount: '1'}\n"
    target = tmp_path / "plan.yaml"
    target.write_text(text, encoding="utf-8")
    res = incentives("validate", target)
    assert res.code == 2, (res.code, res.out, res.err)
    no_traceback(res.err)
    assert re.search(r"plan\.yaml:\d+", res.err), res.err
    assert path in res.err, res.err


def test_run_with_transactions_for_a_plan_without_kinds_exits_2(tmp_path: Path) -> None:
    # spec silent: --transactions given to a plan that declares no transaction kinds is a
    # command-line mistake (exit 2), not silently ignored
    res = incentives("run", DATA.parent.parent / "examples/telecom/plan.yaml",
                     DATA.parent.parent / "examples/telecom/records.jsonl",
                     "--transactions", T1 / "transactions.jsonl")
    assert res.code == 2, (res.code, res.err)
    no_traceback(res.err)


def test_missing_transactions_file_exits_2() -> None:
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "no-such-file.jsonl")
    assert res.code == 2
    no_traceback(res.err)
    assert "no-such-file.jsonl" in res.err


def test_transactions_file_of_an_undeclared_kind_exits_2() -> None:
    # spec silent: `--transactions KIND=FILE` naming a kind the plan does not declare is a
    # command-line mistake (exit 2)
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", f"orders={T1 / 'invoices.csv'}")
    assert res.code == 2
    no_traceback(res.err)
    assert "orders" in res.err


# ====================================================================== measures

#: each value policy's value, per payee and period (exact)
MEASURE_VALUES = {
    ("A", "2026-05"): {"v_revenue": "11900", "v_deals": "4", "v_customers": "3",
                       "v_biggest": "5000", "v_smallest": "400",
                       "v_sku1": "2000", "v_sku2": "9500", "v_sku_other": "400",
                       "v_mobile": "2000", "v_ipvpn": "9500", "v_cat_other": "400",
                       "v_big_ones": "5000", "v_over_param": "5000",
                       "v_paid_revenue": "5400", "v_lost_value": "450.5"},
    ("A", "2026-04"): {"v_revenue": "2000", "v_deals": "1", "v_customers": "1",
                       "v_sku1": "2000", "v_sku2": "0", "v_mobile": "2000",
                       "v_paid_revenue": "0", "v_lost_value": "0"},
    # spec silent: min and max of no credits are 0, as sum, count and distinct are
    ("A", "2026-06"): {"v_revenue": "0", "v_deals": "0", "v_customers": "0",
                       "v_paid_revenue": "5000", "v_biggest": "0", "v_smallest": "0"},
    ("B", "2026-05"): {"v_revenue": "5000", "v_deals": "1", "v_customers": "1",
                       "v_biggest": "5000", "v_sku2": "5000",
                       "v_ipvpn": "5000", "v_big_ones": "5000", "v_over_param": "5000",
                       "v_paid_revenue": "0"},
    ("B", "2026-06"): {"v_revenue": "800", "v_paid_revenue": "5800", "v_mobile": "800"},
}
MEASURE_PAY = {("A", "2026-04"): "20.00", ("A", "2026-05"): "119.00", ("A", "2026-06"): "0.00",
               ("B", "2026-04"): "0.00", ("B", "2026-05"): "50.00", ("B", "2026-06"): "8.00"}


def _measures_run() -> Run:
    return load_plan(MEASURES / "plan.yaml").evaluate(
        roster(MEASURES), transactions=read_jsonl(MEASURES / "transactions.jsonl"))


@pytest.mark.parametrize("key", sorted(MEASURE_VALUES), ids=lambda k: f"{k[0]}-{k[1]}")
def test_measure_values_api(key: tuple[str, str]) -> None:
    run = _measures_run()
    assert run.errors == [], [str(e) for e in run.errors]
    values = run.get(*key).values
    for name, want in MEASURE_VALUES[key].items():
        assert values[name] == D(want), (name, values[name], want)


def test_measures_pay_api_and_cli() -> None:
    run = _measures_run()
    assert {(r.payee, r.period): str(r.total) for r in run} == MEASURE_PAY
    res = incentives("run", MEASURES / "plan.yaml", MEASURES / "roster.jsonl",
                     "--transactions", MEASURES / "transactions.jsonl", "--format", "json")
    assert res.code == 0, res.err
    data = res.json()
    assert totals(data) == MEASURE_PAY
    a = result_of(data, "A", "2026-05")
    m = a["measures"]
    assert D(m["revenue"]["value"]) == D("11900")
    assert measure_rows(m["revenue"]) == [
        ("credit_notes", "cn-1", D(1), "direct", D("-1000")),
        ("invoices", "inv-1", D("0.5"), "direct", D("5000")),
        ("invoices", "inv-2", D(1), "direct", D("3000")),
        ("invoices", "inv-3", D(1), "direct", D("4500")),
        ("invoices", "inv-4", D(1), "direct", D("400"))]
    # `date: paid_on`: inv-5 (April) counts in May, inv-1 (May, paid in June) does not
    assert sorted(t["id"] for t in m["paid_revenue"]["transactions"]) == ["inv-2", "inv-4",
                                                                          "inv-5"]
    assert sorted(t["id"] for t in m["big_ones"]["transactions"]) == ["inv-1"]
    for name in ("by_product_sku1", "by_product_sku2", "by_product_other", "by_cat_mobile",
                 "by_cat_ipvpn", "by_cat_other"):
        assert name in m, sorted(m)
    assert sorted(t["id"] for t in m["by_cat_mobile"]["transactions"]) == ["cn-1", "inv-2"]


QUANTITY_PLAN = """\
name: units
period: month
transactions:
  invoices: {}
crediting:
  - {id: direct, type: direct, kinds: [invoices]}
measures:
  units: {sum: quantity}
policies:
  - {type: formula, id: unit_bonus, amount: units * 5}
"""


def test_sum_of_quantity() -> None:
    """The spec: `sum: F` with F "usually `amount` or `quantity`" (quantity is a built-in,
    optional field): every transaction here has one; 4 x 0.5 + 3 = 5 units -> 25.00."""
    plan = load_plan(QUANTITY_PLAN)
    run = plan.evaluate([{"payee": "A", "period": "2026-05"}, {"payee": "B", "period": "2026-05"}],
                        transactions=[
        {"id": "i1", "date": "2026-05-03", "amount": 100, "quantity": 4,
         "sellers": "A:0.5;B:0.5"},
        {"id": "i2", "date": "2026-05-04", "amount": 100, "quantity": 3, "seller": "A"}])
    assert run.errors == []
    assert run["A"].amount("unit_bonus") == D("25.00")
    assert run["B"].amount("unit_bonus") == D("10.00")


def test_measure_over_events_lists_the_events() -> None:
    run = _measures_run()
    lost = run.get("A", "2026-05").to_dict()["measures"]["lost_value"]
    assert D(lost["value"]) == D("450.5")
    # the relocation (c8) is left out by `where`; the others are listed with their value
    assert [(e["id"], D(e["value"])) for e in lost["events"]] == [("c7", D(300)),
                                                                   ("c9", D("150.5"))]


def test_by_measure_itself_is_the_sum_of_its_buckets() -> None:
    # spec silent: `by_product` (named by the spec next to its buckets) is the whole sum
    m = _measures_run().get("A", "2026-05").to_dict()["measures"]
    for name in ("by_product", "by_cat"):
        parts = [m[f"{name}_{v}"]["value"] for v in
                 (("sku1", "sku2", "other") if name == "by_product" else
                  ("mobile", "ipvpn", "other"))]
        assert D(m[name]["value"]) == sum(D(x) for x in parts) == D("11900")


def test_credit_note_takes_its_invoice_fields() -> None:
    """cn-1 names no customer or product: it takes inv-2's (c2, sku1)."""
    run = _measures_run()
    values = run.get("A", "2026-05").values
    assert values["v_sku1"] == D("2000")  # 3,000 - 1,000
    assert values["v_customers"] == D("3")


def test_measure_of_classification_table_passed_at_run_time() -> None:
    """`tables=` overrides an inline classification table (spec: Python API)."""
    run = load_plan(MEASURES / "plan.yaml").evaluate(
        roster(MEASURES), transactions=read_jsonl(MEASURES / "transactions.jsonl"),
        tables={"categories": {"sku1": "ipvpn", "sku2": "mobile", "sku9": "mobile"}})
    values = run.get("A", "2026-05").values
    assert (values["v_mobile"], values["v_ipvpn"], values["v_cat_other"]) == (
        D("9900"), D("2000"), D("0"))


def test_measure_classification_table_from_cli_file(tmp_path: Path) -> None:
    table = tmp_path / "categories.csv"
    table.write_text("key,value\nsku1,ipvpn\nsku2,mobile\nsku9,mobile\n", encoding="utf-8")
    # spec silent: the columns of a classification table file (key, value)
    res = incentives("run", MEASURES / "plan.yaml", MEASURES / "roster.jsonl",
                     "--transactions", MEASURES / "transactions.jsonl",
                     "--table", f"categories={table}", "--format", "json")
    assert res.code == 0, res.err
    m = result_of(res.json(), "A", "2026-05")["measures"]
    assert (D(m["by_cat_mobile"]["value"]), D(m["by_cat_ipvpn"]["value"])) == (
        D("9900"), D("2000"))


ASSIGN_PLAN = """\
name: assign
period: month
transactions:
  invoices: {fields: {customer: text}}
crediting:
  - {id: territory, type: assignment, kinds: [invoices], by: customer, table: territories}
measures:
  revenue: {sum: amount}
policies:
  - {type: formula, id: commission, amount: revenue * 0.1}
"""


def test_assignment_table_effective_dated(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(ASSIGN_PLAN, encoding="utf-8")
    tx = write_jsonl(tmp_path / "tx.jsonl", [
        {"id": "i1", "date": "2026-05-05", "amount": 1000, "customer": "k1"},
        {"id": "i2", "date": "2026-05-25", "amount": 2000, "customer": "k1"},
        {"id": "i3", "date": "2026-05-25", "amount": 500, "customer": "k2"}])
    table = tmp_path / "territories.csv"
    table.write_text("key,payee,share,from,to\nk1,A,,,2026-05-15\nk1,B,,2026-05-16,\n"
                     "k2,A,0.5,,\nk2,B,0.5,,\n", encoding="utf-8")
    roster_file = write_jsonl(tmp_path / "r.jsonl", [{"payee": "A", "period": "2026-05"},
                                                     {"payee": "B", "period": "2026-05"}])
    res = incentives("run", plan, roster_file, "--transactions", tx,
                     "--table", f"territories={table}", "--format", "json")
    assert res.code == 0, res.err
    # k1: A until 15 May (i1 1,000), B from 16 May (i2 2,000); k2 half each (i3 500)
    assert totals(res.json()) == {("A", "2026-05"): "125.00", ("B", "2026-05"): "225.00"}
    rows = [{"key": "k1", "payee": "A", "to": "2026-05-15"},
            {"key": "k1", "payee": "B", "from": "2026-05-16"},
            {"key": "k2", "payee": "A", "share": "0.5"}, {"key": "k2", "payee": "B", "share": 0.5}]
    run = load_plan(plan).evaluate(
        [{"payee": "A", "period": "2026-05"}, {"payee": "B", "period": "2026-05"}],
        transactions=read_jsonl(tx), tables={"territories": rows})
    assert (run["A"].total, run["B"].total) == (D("125.00"), D("225.00"))


def test_assignment_shares_not_summing_to_1_name_the_transaction(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(ASSIGN_PLAN, encoding="utf-8")
    rows = [{"key": "k1", "payee": "A"}, {"key": "k2", "payee": "A", "share": "0.5"},
            {"key": "k2", "payee": "B", "share": "0.4"}]
    run = load_plan(plan).evaluate(
        [{"payee": "A", "period": "2026-05"}, {"payee": "B", "period": "2026-05"}],
        transactions=[{"id": "i1", "date": "2026-05-05", "amount": 1000, "customer": "k1"},
                      {"id": "i3", "date": "2026-05-25", "amount": 500, "customer": "k2"}],
        tables={"territories": rows}, errors="collect")
    assert [(type(e).__name__, getattr(e, "id", None)) for e in run.errors] == [
        ("TransactionError", "i3")]
    assert "0.9" in str(run.errors[0])
    assert run["A"].total == D("100.00")


ROLL_PLAN = """\
name: rollup
period: month
transactions:
  invoices: {}
crediting:
  - {id: direct, type: direct, kinds: [invoices]}
  - {id: managers, type: roll_up, of: [direct], levels: 1}
measures:
  rolled: {rules: [managers], sum: amount}
policies:
  - {type: formula, id: override, amount: rolled * 0.01}
"""


def test_roll_up_two_levels_and_all(tmp_path: Path) -> None:
    """R reports to M1, M1 to M2, M2 to M3: levels 2 reaches M2, not M3; all reaches M3."""
    text = ROLL_PLAN
    rows = [{"id": "i1", "date": "2026-05-10", "amount": 10000, "seller": "R"}]
    hierarchy = [{"payee": "R", "manager": "M1"}, {"payee": "M1", "manager": "M2"},
                 {"payee": "M2", "manager": "M3"}]
    records = [{"payee": p, "period": "2026-05"} for p in ("R", "M1", "M2", "M3")]
    got = {}
    for levels in ("2", "all"):
        path = tmp_path / f"plan-{levels}.yaml"
        path.write_text(text.replace("levels: 1", f"levels: {levels}"), encoding="utf-8")
        run = load_plan(path).evaluate(records, transactions=rows, hierarchy=hierarchy)
        assert run.errors == []
        got[levels] = [str(run[p].total) for p in ("R", "M1", "M2", "M3")]
    assert got == {"2": ["0.00", "100.00", "100.00", "0.00"],
                   "all": ["0.00", "100.00", "100.00", "100.00"]}


def test_roll_up_of_two_reps_sharing_counts_once() -> None:
    """Two reps of M share one invoice 60/40: M's roll-up is the invoice once (10,000)."""
    rows = [{"id": "i1", "date": "2026-05-10", "amount": 10000,
             "sellers": [{"payee": "A", "share": "0.6"}, {"payee": "B", "share": "0.4"}]}]
    records = [{"payee": p, "period": "2026-05"} for p in ("A", "B", "M")]
    run = load_plan(ROLL_PLAN).evaluate(
        records, transactions=rows, hierarchy=[{"payee": "A", "manager": "M"},
                                               {"payee": "B", "manager": "M"}])
    assert run.errors == []
    assert run["M"].amount("override") == D("100.00")
    assert D(run["M"].to_dict()["measures"]["rolled"]["value"]) == D("10000")


# ====================================================================== determinism


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_transaction_order_never_changes_output_cli(seed: int, tmp_path: Path) -> None:
    rows = read_jsonl(MEASURES / "transactions.jsonl")
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    assert seed == 0 or shuffled != rows
    a = incentives("run", MEASURES / "plan.yaml", MEASURES / "roster.jsonl",
                   "--transactions", MEASURES / "transactions.jsonl", "--format", "json")
    b = incentives("run", MEASURES / "plan.yaml", MEASURES / "roster.jsonl",
                   "--transactions", write_jsonl(tmp_path / "tx.jsonl", shuffled),
                   "--format", "json")
    assert a.code == b.code == 0, (a.err, b.err)
    assert a.out == b.out


def test_transaction_order_never_changes_output_api() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    plan = load_plan(MEASURES / "plan.yaml")
    records = roster(MEASURES)
    rows = read_jsonl(MEASURES / "transactions.jsonl")
    want = plan.evaluate(records, transactions=rows).to_json()

    @given(st.permutations(rows))
    def check(order: list[dict[str, Any]]) -> None:
        assert plan.evaluate(records, transactions=order).to_json() == want

    check()


def test_hierarchy_and_transaction_order_never_change_t2_output(tmp_path: Path) -> None:
    rows = [{"kind": "invoices", "id": f"i{n}", "date": f"2026-05-{n:02d}", "amount": 100 * n,
             "seller": "A" if n % 2 else "S", "specialist": "S"} for n in range(1, 21)]
    outs = set()
    for seed in range(3):
        random.Random(seed).shuffle(rows)
        hier = tmp_path / f"h{seed}.csv"
        lines = ["A,M,2026-01-01,", "S,M,,"]
        random.Random(seed).shuffle(lines)
        hier.write_text("payee,manager,from,to\n" + "\n".join(lines) + "\n", encoding="utf-8")
        res = incentives("run", T2 / "plan.yaml", T2 / "roster.jsonl",
                         "--transactions", write_jsonl(tmp_path / f"t{seed}.jsonl", rows),
                         "--hierarchy", hier, "--format", "json")
        assert res.code == 0, res.err
        outs.add(res.out)
    assert len(outs) == 1


# ====================================================================== statements


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_explain_lists_the_transactions_behind_the_commission(lang: str) -> None:
    res = incentives("explain", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "transactions.jsonl", "--payee", "A",
                     "--lang", lang)
    assert res.code == 0, res.err
    text = res.out
    assert "240.00" in text
    for needle in ("inv-1", "cn-1", "direct", "6,000", "-1,200", "4,800"):
        assert needle in text, (needle, text)
    assert "0.6" in text or "60%" in text, text
    if lang == "zh":
        assert re.search(r"[\u4e00-\u9fff]", text), text
        en = incentives("explain", T1 / "plan.yaml", T1 / "roster.jsonl",
                        "--transactions", T1 / "transactions.jsonl", "--payee", "A")
        assert en.out != text


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_explain_per_transaction_line(lang: str) -> None:
    res = incentives("explain", T3 / "plan.yaml", T3 / "roster.jsonl",
                     "--transactions", T3 / "transactions.jsonl", "--payee", "A",
                     "--period", "2026-02", "--lang", lang)
    assert res.code == 0, res.err
    for needle in ("inv-feb", "cn-feb", "1,400", "-300", "1,100.00"):
        assert needle in res.out, (needle, res.out)


def test_explain_roll_up_names_its_rule() -> None:
    res = incentives("explain", T2 / "plan.yaml", T2 / "roster.jsonl",
                     "--transactions", T2 / "transactions.jsonl",
                     "--hierarchy", T2 / "hierarchy.csv", "--payee", "M")
    assert res.code == 0, res.err
    for needle in ("inv-1", "managers", "10,000", "100.00"):
        assert needle in res.out, (needle, res.out)


def test_explain_api_matches_cli() -> None:
    run = load_plan(T1 / "plan.yaml").evaluate(
        roster(T1), transactions=read_jsonl(T1 / "transactions.jsonl"))
    text = run.explain("A")
    assert "inv-1" in text
    assert "cn-1" in text
    res = incentives("explain", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "transactions.jsonl", "--payee", "A")
    assert res.out.rstrip("\n") == text.rstrip("\n")


# ====================================================================== per_transaction forms

PT_PLAN = """\
name: pt
period: month
transactions:
  invoices: {{fields: {{product: text}}, optional: [product]}}
  credit_notes: {{refers_to: invoices, sign: negative}}
  payments: {{refers_to: invoices, sign: positive}}
  write_offs: {{refers_to: invoices}}
crediting:
  - {{id: direct, type: direct, kinds: [invoices, credit_notes]}}
tables:
  categories: {{sku1: mobile, sku2: ipvpn}}
measures:
  revenue: {{kinds: [invoices, credit_notes], sum: amount}}
policies:
  - {{type: per_transaction, id: commission, label: Commission, measure: revenue, {policy}}}
"""
TIERS = "method: marginal, tiers: [{from: 0, rate: 0.04}, {from: 50000, rate: 0.06}]"


def pt_plan(policy: str) -> Any:
    return load_plan(PT_PLAN.format(policy=policy))


def _inv(id: str, date: str, amount: object, **more: object) -> dict[str, Any]:
    return {"kind": "invoices", "id": id, "date": date, "amount": amount, "seller": "A", **more}


def _months(*periods: str) -> list[dict[str, str]]:
    return [{"payee": "A", "period": p} for p in periods]


@pytest.mark.parametrize(("table", "default", "want", "errors"), [
    ("categories", "null", "100.00", ["sku3"]),
    ("categories", "0.01", "110.00", []),
    ("{sku1: mobile, sku2: ipvpn}", "null", "100.00", ["sku3"]),
    ("{sku1: mobile, sku2: ipvpn}", "0.01", "110.00", []),
], ids=["plan-table-null", "plan-table-default", "inline-table-null", "inline-table-default"])
def test_rates_by_product_category(table: str, default: str, want: str,
                                   errors: list[str]) -> None:
    plan = pt_plan(f"rates_by: product, table: {table}, "
                   f"rates: {{mobile: 0.02, ipvpn: 0.08}}, default_rate: {default}")
    rows = [_inv("i1", "2026-05-02", 1000, product="sku1"),
            _inv("i2", "2026-05-03", 1000, product="sku2"),
            _inv("i3", "2026-05-04", 1000, product="sku3")]
    run = plan.evaluate(_months("2026-05"), transactions=rows, errors="collect")
    # spec: "default_rate: null: an error naming the transaction"; spec silent on what
    # happens to the payee's other transactions: "a bad transaction is not credited at all;
    # the others are still paid" (crediting) read here as: i1 and i2 are still paid
    assert [e.id for e in run.errors] == ["i3" for _ in errors]  # type: ignore[attr-defined]
    assert all("sku3" in str(e) for e in run.errors)
    assert str(run["A"].amount("commission")) == want


@pytest.mark.parametrize(("running", "feb"), [
    ("none", "2400.00"),     # 30,000 x 4% twice
    ("period", "2600.00"),   # f(60,000) = 2,000 + 600
    ("year", "3200.00"),     # f(90,000) - f(30,000) = 4,400 - 1,200
])
def test_running_none_period_year(running: str, feb: str) -> None:
    plan = pt_plan(f"{TIERS}, running: {running}")
    rows = [_inv("j1", "2026-01-20", 30000), _inv("f1", "2026-02-03", 30000),
            _inv("f2", "2026-02-17", 30000)]
    run = plan.evaluate(_months("2026-01", "2026-02"), transactions=rows)
    assert run.get("A", "2026-01").amount("commission") == D("1200.00")
    assert str(run.get("A", "2026-02").amount("commission")) == feb


def test_running_year_restarts_in_january() -> None:
    plan = pt_plan(f"{TIERS}, running: year")
    rows = [_inv("d1", "2025-12-20", 60000), _inv("j1", "2026-01-20", 30000)]
    run = plan.evaluate(_months("2025-12", "2026-01"), transactions=rows)
    assert run.get("A", "2025-12").amount("commission") == D("2600.00")
    assert run.get("A", "2026-01").amount("commission") == D("1200.00")


@pytest.mark.parametrize(("write_off", "july"), [("forgive", "0.00"), ("claw_back", "-300.00")])
def test_write_off_forgives_or_claws_back(write_off: str, july: str) -> None:
    plan = pt_plan("rate: 0.05, payable: on_payment, payments: payments, "
                   f"write_offs: write_offs, write_off: {write_off}")
    rows = [_inv("inv-1", "2026-05-10", 10000),
            {"kind": "payments", "id": "pay-1", "date": "2026-06-15", "amount": 6000,
             "refers_to": "inv-1"},
            {"kind": "write_offs", "id": "wo-1", "date": "2026-07-05", "amount": 4000,
             "refers_to": "inv-1"}]
    run = plan.evaluate(_months("2026-05", "2026-06", "2026-07", "2026-08"), transactions=rows)
    assert run.errors == []
    got = [str(run.get("A", p).amount("commission"))
           for p in ("2026-05", "2026-06", "2026-07", "2026-08")]
    assert got == ["0.00", "300.00", july, "0.00"]
    assert D(run.get("A", "2026-07").line("commission").details["held"]) == 0


def test_on_payment_partial_payments_round_once_per_period() -> None:
    """Three payments of a third: each period pays round(earned x paid to date / amount) -
    paid before: 33.33, then 66.67 - 33.33 = 33.34, then 100.00 - 66.67 = 33.33; the
    lines add up to what was earned exactly (100.00)."""
    plan = pt_plan("rate: 0.01, payable: on_payment, payments: payments")
    rows = [_inv("inv-1", "2026-05-10", 10000)] + [
        {"kind": "payments", "id": f"p{m}", "date": f"2026-0{m}-10", "amount": "3333.33",
         "refers_to": "inv-1"} for m in (6, 7)] + [
        {"kind": "payments", "id": "p8", "date": "2026-08-10", "amount": "3333.34",
         "refers_to": "inv-1"}]
    run = plan.evaluate(_months("2026-05", "2026-06", "2026-07", "2026-08"), transactions=rows)
    got = [run.get("A", p).amount("commission") for p in ("2026-05", "2026-06", "2026-07",
                                                          "2026-08")]
    assert got == [D("0.00"), D("33.33"), D("33.34"), D("33.33")]
    assert sum(got) == D("100.00")


# ====================================================================== properties (issue 17)

PROP_PLAN = """\
name: props
period: month
transactions:
  invoices: {fields: {specialist: text}, optional: [specialist]}
  credit_notes: {refers_to: invoices, sign: negative}
crediting:
  - {id: direct, type: direct, kinds: [invoices, credit_notes]}
  - {id: overlay, type: direct, kinds: [invoices], field: specialist, overlay: true}
  - {id: managers, type: roll_up, of: [direct, overlay], levels: all}
measures:
  revenue: {rules: [direct], sum: amount}
  rolled: {rules: [managers], sum: amount}
policies:
  - {type: value, id: v_revenue, value: revenue}
  - {type: value, id: v_rolled, value: rolled}
  - type: per_transaction
    id: running
    measure: revenue
    method: marginal
    tiers: [{from: 0, rate: 0.04}, {from: 50000, rate: 0.06}, {from: 120000, rate: 0.09}]
    running: period
  - type: tiered
    id: marginal
    basis: revenue
    method: marginal
    tiers: [{from: 0, rate: 0.04}, {from: 50000, rate: 0.06}, {from: 120000, rate: 0.09}]
"""
REPS = ("R1", "R2", "R3", "X")  # R1-R3 report to M (R3 via R2); X reports to nobody
PROP_HIERARCHY = [{"payee": "R1", "manager": "M"}, {"payee": "R2", "manager": "M"},
                  {"payee": "R3", "manager": "R2"}]
PROP_ROSTER = [{"payee": p, "period": "2026-05"} for p in (*REPS, "M")]


def _prop_plan() -> Any:
    return load_plan(PROP_PLAN)


def _invoices_strategy() -> Any:
    from hypothesis import strategies as st

    @st.composite
    def invoice(draw: Any, n: int) -> dict[str, Any]:
        amount = draw(st.integers(1, 9_000_000)) / D(100)
        k = draw(st.integers(1, 3))
        payees = draw(st.lists(st.sampled_from(REPS), min_size=k, max_size=k, unique=True))
        cuts = sorted(draw(st.lists(st.integers(1, 99), min_size=k - 1, max_size=k - 1,
                                    unique=True)))
        bounds = [0, *cuts, 100]
        shares = {p: str(D(bounds[i + 1] - bounds[i]) / 100) for i, p in enumerate(payees)}
        row = {"kind": "invoices", "id": f"i{n:03d}", "date": f"2026-05-{1 + n % 28:02d}",
               "amount": str(amount), "sellers": shares}
        if draw(st.booleans()):
            row["specialist"] = draw(st.sampled_from(REPS))
        return row

    return st.integers(1, 12).flatmap(
        lambda size: st.tuples(*(invoice(n) for n in range(size))).map(list))


def test_property_direct_credits_sum_to_the_amount() -> None:
    from hypothesis import given

    plan = _prop_plan()

    @given(_invoices_strategy())
    def check(rows: list[dict[str, Any]]) -> None:
        run = plan.evaluate(PROP_ROSTER, transactions=rows, hierarchy=PROP_HIERARCHY)
        assert run.errors == []
        credited = sum((run[p].values["v_revenue"] for p in REPS), D(0))
        assert credited == sum(D(r["amount"]) for r in rows)

    check()


def test_property_roll_up_counts_each_subtree_transaction_once() -> None:
    from hypothesis import given

    plan = _prop_plan()
    subtree = {"R1", "R2", "R3"}

    @given(_invoices_strategy())
    def check(rows: list[dict[str, Any]]) -> None:
        run = plan.evaluate(PROP_ROSTER, transactions=rows, hierarchy=PROP_HIERARCHY)
        want = D(0)
        for r in rows:
            inside = sum((D(s) for p, s in r["sellers"].items() if p in subtree), D(0))
            if r.get("specialist") in subtree:
                inside += 1
            want += D(r["amount"]) * min(D(1), inside)
        assert run["M"].values["v_rolled"] == want

    check()


def test_property_running_tiers_sum_to_the_marginal_amount_on_the_total() -> None:
    from hypothesis import given

    plan = _prop_plan()

    @given(_invoices_strategy())
    def check(rows: list[dict[str, Any]]) -> None:
        run = plan.evaluate(PROP_ROSTER, transactions=rows, hierarchy=PROP_HIERARCHY)
        for p in REPS:
            assert run[p].amount("running") == run[p].amount("marginal"), p

    check()


@pytest.mark.parametrize("running", ["none", "period", "year"])
def test_property_a_refund_and_an_identical_rebill_net_to_zero(running: str) -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    plan = pt_plan(f"{TIERS}, running: {running}")

    @given(st.lists(st.integers(1, 8_000_000), min_size=1, max_size=6), st.data())
    def check(cents: list[int], data: Any) -> None:
        rows = [_inv(f"i{n}", f"2026-05-{1 + n:02d}", str(D(c) / 100))
                for n, c in enumerate(cents)]
        base = plan.evaluate(_months("2026-05"), transactions=rows)["A"].amount("commission")
        k = data.draw(st.integers(0, len(rows) - 1))
        refund = {"kind": "credit_notes", "id": "cn-1", "date": "2026-05-20",
                  "amount": "-" + rows[k]["amount"], "refers_to": rows[k]["id"]}
        rebill = {**rows[k], "id": "rebill", "date": "2026-05-21"}
        again = plan.evaluate(_months("2026-05"), transactions=[*rows, refund, rebill])
        assert again["A"].amount("commission") == base

    check()


# ====================================================================== details of the spec


def test_per_transaction_line_is_rounded_once() -> None:
    """Spec: "the line amount is the sum of the credits' exact earnings, rounded once":
    three credits earning 0.005 each make 0.015 -> 0.02 (half-up), not 3 x 0.01."""
    run = pt_plan("rate: 0.05").evaluate(_months("2026-05"), transactions=[
        _inv(f"i{n}", f"2026-05-0{n}", "0.10") for n in (1, 2, 3)])
    assert run["A"].amount("commission") == D("0.02")


def test_count_transactions_counts_each_transaction_once_per_payee(tmp_path: Path) -> None:
    """A is both the seller and the overlay specialist of one invoice: two credits (sum
    20,000, each credit's value) but one transaction (count 1). Measures without `rules`
    read every rule: M's is the roll-up."""
    text = (T2 / "plan.yaml").read_text("utf-8").replace(
        "  rolled: {rules: [managers], sum: amount}\n",
        "  rolled: {rules: [managers], sum: amount}\n"
        "  deals: {count: transactions}\n  everything: {sum: amount}\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    rows = [{"id": "inv-1", "date": "2026-05-10", "amount": 10000, "seller": "A",
             "specialist": "A"}]
    run = load_plan(plan).evaluate(
        read_jsonl(T2 / "roster.jsonl")[::2], transactions=rows,
        hierarchy=[{"payee": "A", "manager": "M"}])
    a = run["A"].to_dict()["measures"]
    assert (D(a["revenue"]["value"]), D(a["deals"]["value"])) == (D(20000), D(1))
    assert D(a["everything"]["value"]) == D(20000)
    m = run["M"].to_dict()["measures"]
    assert (D(m["rolled"]["value"]), D(m["deals"]["value"])) == (D(10000), D(1))
    assert D(m["everything"]["value"]) == D(10000)
    assert run["M"].amount("override") == D("100.00")


def test_running_details_show_the_cumulative_before_and_after() -> None:
    run = load_plan(T3 / "plan.yaml").evaluate(
        roster(T3), transactions=read_jsonl(T3 / "transactions.jsonl"))
    rows = run.get("A", "2026-02").to_dict()["lines"][0]["details"]["transactions"]
    got = [(t["id"], D(t["cumulative_before"]), D(t["cumulative_after"])) for t in rows]
    assert got == [("inv-feb", D(30000), D(60000)), ("cn-feb", D(60000), D(55000))]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_explain_pay_on_payment(lang: str) -> None:
    res = incentives("explain", T4 / "plan.yaml", T4 / "roster.jsonl",
                     "--transactions", T4 / "transactions.jsonl", "--payee", "A",
                     "--period", "2026-06", "--lang", lang)
    assert res.code == 0, res.err
    for needle in ("inv-1", "6,000", "10,000", "300.00", "200.00"):
        assert needle in res.out, (needle, res.out)


def test_transactions_outside_the_run_are_neither_paid_nor_errors() -> None:
    # spec silent: a run of May given an export that also holds April and June invoices
    # pays May only and reports nothing (they belong to other runs); T4 month by month
    # with the whole file relies on this too
    rows = [*read_jsonl(T1 / "transactions.jsonl"),
            {"kind": "invoices", "id": "inv-0", "date": "2026-04-10", "amount": 500,
             "seller": "A"},
            {"kind": "invoices", "id": "inv-9", "date": "2026-06-10", "amount": 700,
             "seller": "A"}]
    run = load_plan(T1 / "plan.yaml").evaluate(roster(T1), transactions=rows)
    assert _t1_amounts(run) == T1_WANT


def test_a_credit_in_a_gap_month_of_the_run_is_reported() -> None:
    """A has records for May and July; an invoice of A dated in June is inside the run
    but A has no June record: the spec's "credit to a payee with no record in the period
    it counts in" - reported, never silently dropped."""
    rows = [_inv(f"i{m}", f"2026-0{m}-10", 100) for m in (5, 6, 7)]
    run = load_plan(T1 / "plan.yaml").evaluate(_months("2026-05", "2026-07"),
                                               transactions=rows, errors="collect")
    assert [(e.id, e.period) for e in run.errors] == [("i6", "2026-06")]  # type: ignore[attr-defined]
    assert [str(r.total) for r in run] == ["5.00", "5.00"]


def test_a_manager_without_a_record_loses_only_their_credit(tmp_path: Path) -> None:
    # spec silent: a roll-up credit to a manager with no record is reported (one error per
    # transaction) and not paid; the reps' and the first manager's credits still are
    hier = tmp_path / "h.csv"
    hier.write_text("payee,manager,from,to\nA,M,,\nB,M,,\nM,BOSS,,\n", encoding="utf-8")
    res = incentives("run", ERRORS / "plan.yaml", ERRORS / "roster.jsonl",
                     "--transactions", ERRORS / "transactions.jsonl", "--hierarchy", hier,
                     "--format", "json")
    assert res.code == 1
    data = res.json()
    assert totals(data) == GOOD
    assert sorted((e["id"], e["payee"], e["period"]) for e in data["errors"]) == [
        ("inv-a", "BOSS", "2026-05"), ("inv-b", "BOSS", "2026-05")]


def test_hierarchy_dates_are_inclusive() -> None:
    """A moves from M (to 15 May) to N (from 16 May): an invoice of the 15th rolls up to
    M, one of the 16th to N."""
    records = [{"payee": p, "period": "2026-05"} for p in ("A", "M", "N")]
    rows = [{"id": "i15", "date": "2026-05-15", "amount": 1000, "seller": "A"},
            {"id": "i16", "date": "2026-05-16", "amount": 3000, "seller": "A"}]
    hierarchy = [{"payee": "A", "manager": "M", "from": "2026-01-01", "to": "2026-05-15"},
                 {"payee": "A", "manager": "N", "from": "2026-05-16", "to": ""}]
    run = load_plan(ROLL_PLAN).evaluate(records, transactions=rows, hierarchy=hierarchy)
    assert run.errors == []
    assert (run["M"].amount("override"), run["N"].amount("override")) == (D("10.00"),
                                                                           D("30.00"))


def test_a_negative_payment_is_the_wrong_sign() -> None:
    rows = [*read_jsonl(T4 / "transactions.jsonl"),
            {"kind": "payments", "id": "pay-x", "date": "2026-06-20", "amount": -100,
             "refers_to": "inv-1"}]
    run = load_plan(T4 / "plan.yaml").evaluate(roster(T4), transactions=rows, errors="collect")
    assert [(e.kind, e.id, e.field) for e in run.errors] == [  # type: ignore[attr-defined]
        ("payments", "pay-x", "amount")]
    assert {r.period: str(r.amount("commission")) for r in run} == T4_PAID


def test_t1_json_measure_strings_as_in_the_spec() -> None:
    """The spec's Output section writes A's T1 measure as "value": "4800" and the invoice's
    credited value as "6000" (exact, without a trailing ".0" from the share's digits)."""
    res = incentives("run", T1 / "plan.yaml", T1 / "roster.jsonl",
                     "--transactions", T1 / "transactions.jsonl", "--format", "json")
    revenue = result_of(res.json(), "A")["measures"]["revenue"]
    assert revenue["value"] == "4800"
    inv = next(t for t in revenue["transactions"] if t["id"] == "inv-1")
    assert (inv["kind"], inv["date"], inv["amount"], inv["share"], inv["rule"], inv["value"]) \
        == ("invoices", "2026-05-10", "10000", "0.6", "direct", "6000")


def test_chinese_payees_crlf_csv_and_numeric_ids(tmp_path: Path) -> None:
    """Payee ids in Chinese inside `sellers`, a CSV with CRLF line ends, and an id written
    as a number in one file and as text in the reference: all the same T1 amounts."""
    records = write_jsonl(tmp_path / "r.jsonl", [{"payee": "张三", "period": "2026-05"},
                                                 {"payee": "李四", "period": "2026-05"}])
    tx = tmp_path / "t.csv"
    tx.write_bytes("kind,id,date,amount,sellers,refers_to\r\n"
                   "invoices,123,2026-05-10,10000,张三:0.6;李四:0.4,\r\n"
                   "credit_notes,9,2026-05-20,-2000,,123\r\n".encode())
    js = write_jsonl(tmp_path / "t.jsonl", [
        {"kind": "invoices", "id": 123, "date": "2026-05-10", "amount": 10000,
         "sellers": {"张三": 0.6, "李四": 0.4}},
        {"kind": "credit_notes", "id": 9, "date": "2026-05-20", "amount": -2000,
         "refers_to": "123"}])
    for path in (tx, js):
        res = incentives("run", T1 / "plan.yaml", records, "--transactions", path,
                         "--format", "json")
        assert res.code == 0, res.err
        assert totals(res.json()) == {("张三", "2026-05"): "240.00",
                                      ("李四", "2026-05"): "160.00"}


def test_a_missing_quantity_that_is_summed_is_reported() -> None:
    # spec silent: `sum: quantity` over a transaction without a quantity is never a silent
    # zero: that transaction is reported (field quantity) and the others are still paid
    run = load_plan(QUANTITY_PLAN).evaluate(
        [{"payee": "A", "period": "2026-05"}],
        transactions=[{"id": "i1", "date": "2026-05-03", "amount": 100, "quantity": 4,
                       "seller": "A"},
                      {"id": "i2", "date": "2026-05-04", "amount": 100, "seller": "A"}],
        errors="collect")
    assert [(e.kind, e.id, e.field) for e in run.errors] == [  # type: ignore[attr-defined]
        ("invoices", "i2", "quantity")]
    assert run["A"].amount("unit_bonus") == D("20.00")
