"""The transactions benchmark's generator and hand-written program are right.

``benchmarks/bench_transactions.py`` times ``incentives run`` against
``benchmarks/handwritten_transactions.py`` and requires the same CSV bytes;
here the hand-written program is checked on its own: against a small case
worked out by hand (year-to-date tiers across a threshold, a credit note
reversing at the top rate, a split counted once by a manager, a rep moving
team mid-year, rounding half up) and, on generated data, against the same pay
computed another way (the month's commission as f(year to date at its end) -
f(at the previous month's end); each manager's roll-up from the top down, over
the subtree in force on each transaction's date).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

D = Decimal

HIERARCHY = """\
payee,manager,from,to
r-a,m-1,,
r-b,m-1,,
r-c,m-2,,2026-02-14
r-c,m-1,2026-02-15,
m-1,d-1,,
m-2,d-1,,
"""

TRANSACTIONS = [
    {"kind": "invoices", "id": "inv-1", "date": "2026-01-10", "amount": "80000.00",
     "customer": "c1", "seller": "r-a"},
    {"kind": "invoices", "id": "inv-3", "date": "2026-01-20", "amount": "10000.00",
     "customer": "c1", "sellers": {"r-a": "0.6", "r-b": "0.4"}},
    {"kind": "invoices", "id": "inv-2", "date": "2026-02-05", "amount": "40000.00",
     "customer": "c2", "seller": "r-a"},
    {"kind": "invoices", "id": "inv-7", "date": "2026-02-14", "amount": "200.00",
     "customer": "c6", "seller": "r-c"},
    {"kind": "invoices", "id": "inv-4", "date": "2026-02-10", "amount": "5000.00",
     "customer": "c3", "sellers": {"r-b": "0.5", "r-c": "0.5"}},
    {"kind": "credit_notes", "id": "cn-1", "date": "2026-02-20", "amount": "-10000.00",
     "refers_to": "inv-2"},
    {"kind": "invoices", "id": "inv-5", "date": "2026-02-20", "amount": "3000.00",
     "customer": "c4", "seller": "r-c"},
    {"kind": "credit_notes", "id": "cn-2", "date": "2026-03-01", "amount": "-1000.00",
     "refers_to": "inv-4"},
    {"kind": "invoices", "id": "inv-6", "date": "2026-03-15", "amount": "100.50",
     "customer": "c5", "seller": "r-c"},
]

# Worked by hand (3% of year-to-date revenue up to 100,000, 5% above; override 1%):
# r-a  Jan: 80,000 -> 2,400; inv-3 6,000 -> 180                      2,580.00
#      Feb: inv-2 86,000 -> 126,000: 14,000 x 3% + 26,000 x 5% = 1,720;
#           cn-1 126,000 -> 116,000: -10,000 x 5% = -500               1,220.00
# r-b  Jan: inv-3 4,000 x 3% = 120; Feb: inv-4 2,500 -> 75; Mar: cn-2 -500 -> -15
# r-c  Feb: inv-4 2,500 + inv-7 200 + inv-5 3,000 -> 171; Mar: cn-2 -500 -> -15, inv-6 100.50 -> 3.015:
#           -11.985, half up -> -11.99
# m-1  Jan: 80,000 + inv-3 once (0.6 + 0.4 of it) 10,000 = 90,000 -> 900.00
#      Feb: 40,000 - 10,000 + inv-4 half 2,500 (r-c is still m-2's) + inv-5 3,000 (r-c moved)
#           = 35,500 -> 355.00
#      Mar: cn-2 rolls up as of inv-4 (10 Feb, r-c still m-2's): half -500 + inv-6 100.50
#           = -399.50 -> -3.995 -> -4.00
# m-2  Feb: inv-4 half 2,500 + inv-7 200 (r-c's last day in m-2's team) -> 27.00
#      Mar: cn-2's other half -500 -> -5.00 (it reverses what m-2 was credited)
# d-1  Jan: 900.00; Feb: 40,000 - 10,000 + 5,000 once + 200 + 3,000 = 38,200 -> 382.00;
#      Mar: -9.00
EXPECTED = """\
payee,period,group,commission,override,total,titles,flags
d-1,2026-01,d-1,0.00,900.00,900.00,,
m-1,2026-01,m-1,0.00,900.00,900.00,,
r-a,2026-01,m-1,2580.00,0.00,2580.00,,
r-b,2026-01,m-1,120.00,0.00,120.00,,
m-2,2026-01,m-2,0.00,0.00,0.00,,
r-c,2026-01,m-2,0.00,0.00,0.00,,
d-1,2026-02,d-1,0.00,382.00,382.00,,
m-1,2026-02,m-1,0.00,355.00,355.00,,
r-a,2026-02,m-1,1220.00,0.00,1220.00,,
r-b,2026-02,m-1,75.00,0.00,75.00,,
m-2,2026-02,m-2,0.00,27.00,27.00,,
r-c,2026-02,m-2,171.00,0.00,171.00,,
d-1,2026-03,d-1,0.00,-9.00,-9.00,,
m-1,2026-03,m-1,0.00,-4.00,-4.00,,
r-a,2026-03,m-1,0.00,0.00,0.00,,
r-b,2026-03,m-1,-15.00,0.00,-15.00,,
r-c,2026-03,m-1,-11.99,0.00,-11.99,,
m-2,2026-03,m-2,0.00,-5.00,-5.00,,
"""


def write_hand_case(folder: Path) -> list[str]:
    """The worked case's files, in ``folder``: roster, transactions, hierarchy."""
    groups = {"r-a": "m-1", "r-b": "m-1", "r-c": "m-2", "m-1": "m-1", "m-2": "m-2",
              "d-1": "d-1"}
    roster = folder / "roster.jsonl"
    with roster.open("w", encoding="utf-8") as f:
        for period in ("2026-01", "2026-02", "2026-03"):
            for payee, group in groups.items():
                if payee == "r-c" and period == "2026-03":
                    group = "m-1"
                f.write(json.dumps({"payee": payee, "period": period, "group": group}) + "\n")
    transactions = folder / "transactions.jsonl"
    # amounts and shares as JSON numbers, in an order that is not the date order
    text = "".join(json.dumps(t) + "\n" for t in reversed(TRANSACTIONS))
    for t in TRANSACTIONS:
        for value in (t["amount"], *t.get("sellers", {}).values()):
            text = text.replace(f'"{value}"', value)
    transactions.write_text(text, encoding="utf-8")
    hierarchy = folder / "hierarchy.csv"
    hierarchy.write_text(HIERARCHY, encoding="utf-8")
    return [str(roster), str(transactions), str(hierarchy)]


def test_handwritten_program_pays_the_case_worked_by_hand(
        load_bench: Any, tmp_path: Path) -> None:
    hand = load_bench("handwritten_transactions")
    files = write_hand_case(tmp_path)
    assert '"amount": 100.50' in Path(files[1]).read_text(encoding="utf-8")
    hand.main(*files, str(tmp_path / "hand.csv"))
    assert (tmp_path / "hand.csv").read_text(encoding="utf-8") == EXPECTED


# ----------------------------------------------------------------------------- generated data

TINY_TRANSACTIONS = 4000


def tiny(load_bench: Any, folder: Path, seed: int = 3) -> dict[str, Path]:
    bench = load_bench("bench_transactions")
    return bench.make_inputs(folder, bench.Sizes(directors=1, transactions=TINY_TRANSACTIONS),  # type: ignore[no-any-return]
                             seed=seed)


def test_generator_is_deterministic_and_has_what_the_benchmark_needs(
        load_bench: Any, tmp_path: Path) -> None:
    paths = tiny(load_bench, tmp_path / "a")
    again = tiny(load_bench, tmp_path / "b")
    other = tiny(load_bench, tmp_path / "c", seed=4)
    for name, path in paths.items():
        assert path.read_bytes() == again[name].read_bytes(), name
    assert paths["transactions.jsonl"].read_bytes() != other["transactions.jsonl"].read_bytes()

    roster = [json.loads(x) for x in paths["roster.jsonl"].read_text().splitlines()]
    assert len(roster) == 100 * 12
    assert {r["period"] for r in roster} == {f"2026-{m:02d}" for m in range(1, 13)}
    assert sum(r["payee"].startswith("r-") for r in roster) == 90 * 12

    hierarchy = list(csv.DictReader(paths["hierarchy.csv"].open(encoding="utf-8")))
    moved = [h for h in hierarchy if h["to"]]
    assert moved
    for h in moved:  # the next row of a mover starts the day after
        nxt = next(x for x in hierarchy if x["payee"] == h["payee"] and x["from"])
        assert dt.date.fromisoformat(nxt["from"]) - dt.date.fromisoformat(h["to"]) == dt.timedelta(1)
        assert nxt["manager"] != h["manager"]

    text = paths["transactions.jsonl"].read_text(encoding="utf-8")
    rows = [json.loads(x, parse_float=Decimal) for x in text.splitlines()]
    assert len(rows) == TINY_TRANSACTIONS
    assert [(r["date"], r["id"]) for r in rows] == sorted((r["date"], r["id"]) for r in rows)
    invoices = {r["id"]: r for r in rows if r["kind"] == "invoices"}
    notes = [r for r in rows if r["kind"] == "credit_notes"]
    assert len(notes) == round(TINY_TRANSACTIONS * 0.03)
    for n in notes:
        inv = invoices[n["refers_to"]]
        assert "seller" not in n
        assert "sellers" not in n
        assert n["date"] > inv["date"]
        assert -inv["amount"] <= n["amount"] < 0
    assert len({n["refers_to"] for n in notes}) == len(notes)
    splits = [r["sellers"] for r in invoices.values() if "sellers" in r]
    assert 0.10 < len(splits) / len(invoices) < 0.20
    assert {tuple(sorted(s.values())) for s in splits} == {(D("0.5"), D("0.5")),
                                                          (D("0.4"), D("0.6"))}
    assert all(isinstance(r["amount"], Decimal) and r["amount"].as_tuple().exponent == -2
               for r in rows)


def independent_pay(paths: dict[str, Path]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """The plan's pay computed another way than the hand-written program computes it.

    Commission: a month's running earnings telescope, so they are
    f(revenue year to date at the month's end) - f(at the previous month's end).
    Override: for each manager and transaction, the subtree (two levels) in
    force on the transaction's date, found from the top down; the manager's
    share is min(1, the sum of the subtree's shares).
    """
    def f(x: Decimal) -> Decimal:
        return D("0.03") * min(x, D(100000)) + D("0.05") * max(x - D(100000), D(0))

    spans: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for h in csv.DictReader(paths["hierarchy.csv"].open(encoding="utf-8")):
        spans[h["manager"]].append((h["payee"], h["from"] or "0000", h["to"] or "9999"))

    def reports(manager: str, day: str) -> set[str]:
        return {p for p, start, end in spans.get(manager, []) if start <= day <= end}

    rows = [json.loads(x, parse_float=Decimal)
            for x in paths["transactions.jsonl"].read_text(encoding="utf-8").splitlines()]
    shares: dict[str, dict[str, Decimal]] = {}
    dates: dict[str, str] = {}
    for r in rows:
        if r["kind"] == "invoices":
            shares[r["id"]] = ({r["seller"]: D(1)} if "seller" in r
                               else dict(r["sellers"].items()))
            dates[r["id"]] = r["date"]
    monthly: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    team: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    managers = set(spans)
    for r in rows:
        s = shares[r["id"] if r["kind"] == "invoices" else r["refers_to"]]
        month = r["date"][:7]
        for payee, share in s.items():
            monthly[(payee, month)] += r["amount"] * share
        # a credit note rolls up as of its invoice: to the managers the invoice went to
        as_of = r["date"] if r["kind"] == "invoices" else dates[r["refers_to"]]
        for m in managers:
            level1 = reports(m, as_of)
            subtree = level1.union(*(reports(x, as_of) for x in level1))
            counted = sum((share for payee, share in s.items() if payee in subtree), D(0))
            if counted:
                team[(m, month)] += r["amount"] * min(D(1), counted)

    def cents(x: Decimal) -> Decimal:
        return x.quantize(D("0.01"), rounding=ROUND_HALF_UP) + 0

    pay: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    payees = {p for p, _ in monthly} | {m for m, _ in team}
    for payee in payees:
        ytd = D(0)
        for month in (f"2026-{m:02d}" for m in range(1, 13)):
            before, ytd = ytd, ytd + monthly.get((payee, month), D(0))
            pay[(payee, month)] = (cents(f(ytd) - f(before)),
                                   cents(team.get((payee, month), D(0)) * D("0.01")))
    return pay


def test_handwritten_program_agrees_with_pay_computed_another_way(
        load_bench: Any, tmp_path: Path) -> None:
    hand = load_bench("handwritten_transactions")
    paths = tiny(load_bench, tmp_path)
    out = tmp_path / "hand.csv"
    hand.main(str(paths["roster.jsonl"]), str(paths["transactions.jsonl"]),
              str(paths["hierarchy.csv"]), str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1200
    expected = independent_pay(paths)
    checked = 0
    for row in rows:
        commission, override = expected.get((row["payee"], row["period"]), (D(0), D(0)))
        got = (D(row["commission"]), D(row["override"]))
        assert got == (commission, override), row
        assert D(row["total"]) == commission + override
        checked += bool(commission or override)
    assert checked > 1000
    # the data reaches what the benchmark is meant to exercise
    assert any(D(r["commission"]) < 0 for r in rows)  # a month of credit notes
    ytd: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        ytd[r["payee"]] += D(r["commission"])
    assert any(v > D(3000) for p, v in ytd.items() if p.startswith("r-"))  # past 100,000
    assert any(D(r["override"]) for r in rows if r["payee"].startswith("d-"))
    # rows in the order incentives writes them: period, group, payee
    keys = [(r["period"], r["group"], r["payee"]) for r in rows]
    assert keys == sorted(keys)


# ----------------------------------------------------------------------------- the library


def test_incentives_run_writes_what_the_handwritten_program_writes(
        load_bench: Any, tmp_path: Path) -> None:
    """The benchmark compares whole processes on their bytes: here on the worked case
    and on generated data, through the command line."""
    from incentives.cli import main

    bench = load_bench("bench_transactions")
    hand = load_bench("handwritten_transactions")
    plan = tmp_path / "plan.yaml"
    plan.write_text(bench.PLAN, encoding="utf-8")
    worked = tmp_path / "worked"
    worked.mkdir()
    paths = tiny(load_bench, tmp_path / "generated")
    cases = [write_hand_case(worked),
             [str(paths[n]) for n in ("roster.jsonl", "transactions.jsonl", "hierarchy.csv")]]
    written = []
    for roster, transactions, hierarchy in cases:
        ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
        assert main(["run", str(plan), roster, "--transactions", transactions,
                     "--hierarchy", hierarchy, "--format", "csv", "--out", str(ours)]) == 0
        hand.main(roster, transactions, hierarchy, str(theirs))
        written.append(ours.read_text(encoding="utf-8"))
        assert written[-1] == theirs.read_text(encoding="utf-8")
    assert written[0] == EXPECTED
    assert written[1].count("\n") == 1201
