"""A careful hand-written program for the plan of ``bench_transactions.py``: its baseline.

It reads the same files as ``incentives run plan.yaml roster.jsonl --transactions
transactions.jsonl --hierarchy hierarchy.csv --format csv`` and writes the same
CSV (one row a payee and month: the commission, the override, the total), with
Decimal arithmetic written out by hand for this one plan:

- each invoice is credited to its seller (share 1) or sellers (their shares);
  a credit note is credited with the shares of the invoice it refers to;
- each credit rolls up two levels (the seller's manager and that manager's
  manager) along the hierarchy in force on the transaction's date (a credit
  note's: its invoice's); a manager
  counts a transaction once: their share is min(1, the sum of the shares of
  the credits of their subtree);
- the commission: each credit, taken per payee in (date, kind, id) order, earns
  f(year-to-date revenue after it) - f(before it), f being 3% up to 100,000 and
  5% above; a month's line is the sum of its credits' exact earnings, rounded
  half up to the cent;
- the override: 1% of the month's rolled-up revenue, rounded half up to the cent.

Checks go no further than the arithmetic needs. Dates stay ISO text (they sort
as dates do, and a month is the first seven characters).

Usage: ``python handwritten_transactions.py ROSTER.jsonl TRANSACTIONS.jsonl
HIERARCHY.csv OUT.csv``.
"""

from __future__ import annotations

import csv
import decimal
import json
import sys
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)
ONE = Decimal(1)
THRESHOLD = Decimal(100000)
LOW = Decimal("0.03")
HIGH = Decimal("0.05")
AT_THRESHOLD = THRESHOLD * LOW  # f(100,000)
OVERRIDE = Decimal("0.01")
LEVELS = 2
OPEN_END = "9999-12-31"


def tiers(x: Decimal) -> Decimal:
    """f: 3% of revenue up to 100,000, 5% above (marginal)."""
    if x <= THRESHOLD:
        return x * LOW if x > 0 else ZERO
    return AT_THRESHOLD + (x - THRESHOLD) * HIGH


def cents(x: Decimal) -> Decimal:
    r = x.quantize(CENT, rounding=decimal.ROUND_HALF_UP)
    return r if r else abs(r)


def read_hierarchy(path: str) -> tuple[dict[str, str], dict[str, list[tuple[str, str, str]]]]:
    """Who reports to whom: payees with one open-ended row, and those with dated rows."""
    rows: dict[str, list[tuple[str, str, str]]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(r["payee"], []).append(
                (r["from"] or "", r["to"] or OPEN_END, r["manager"]))
    fixed: dict[str, str] = {}
    dated: dict[str, list[tuple[str, str, str]]] = {}
    for payee, spans in rows.items():
        if len(spans) == 1 and spans[0][0] == "" and spans[0][1] == OPEN_END:
            fixed[payee] = spans[0][2]
        else:
            dated[payee] = spans
    return fixed, dated


def main(roster: str, transactions: str, hierarchy: str, target: str) -> None:
    fixed, dated = read_hierarchy(hierarchy)

    def manager_on(payee: str, day: str) -> str | None:
        m = fixed.get(payee)
        if m is not None:
            return m
        for start, end, manager in dated.get(payee, ()):
            if start <= day <= end:
                return manager
        return None

    # every transaction: (date, kind, id, amount, sellers), sellers resolved below
    loads = json.JSONDecoder(parse_float=Decimal).decode  # one decoder for every line
    invoices: dict[str, tuple[tuple[str, Decimal], ...]] = {}
    invoice_day: dict[str, str] = {}  # a credit note rolls up as of its invoice's date
    rows: list[tuple[str, str, str, Decimal, object]] = []
    with open(transactions, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            t = loads(line)
            amount = t["amount"]
            if amount.__class__ is not Decimal:
                amount = Decimal(amount)
            kind = t["kind"]
            if kind == "invoices":
                seller = t.get("seller")
                if seller is not None:
                    sellers: tuple[tuple[str, Decimal], ...] = ((seller, ONE),)
                else:
                    sellers = tuple((p, s if s.__class__ is Decimal else Decimal(s))
                                    for p, s in t["sellers"].items())
                invoices[t["id"]] = sellers
                invoice_day[t["id"]] = t["date"]
                rows.append((t["date"], kind, t["id"], amount, sellers))
            else:  # a credit note: the shares of the invoice it refers to
                rows.append((t["date"], kind, t["id"], amount, t["refers_to"]))
    rows.sort()  # by (date, kind, id): unique, so the amounts are never compared

    commission: dict[tuple[str, str], Decimal] = {}  # (payee, period) -> exact earnings
    team: dict[tuple[str, str], Decimal] = {}  # (manager, period) -> rolled-up revenue
    # payee -> (year, revenue year to date, f of it)
    running: dict[str, tuple[str, Decimal, Decimal]] = {}
    for day, _kind, _id, amount, found in rows:
        if found.__class__ is tuple:
            sellers, as_of = found, day  # type: ignore[assignment]
        else:  # a credit note: its invoice's shares, and managers, as of the invoice
            sellers, as_of = invoices[found], invoice_day[found]  # type: ignore[index]
        period, year = day[:7], day[:4]
        shares: dict[str, Decimal] = {}
        for payee, share in sellers:
            value = amount * share
            ytd = running.get(payee)
            if ytd is None or ytd[0] != year:
                ytd = (year, ZERO, ZERO)
            after = ytd[1] + value
            paid = tiers(after)
            running[payee] = (year, after, paid)
            key = (payee, period)
            commission[key] = commission.get(key, ZERO) + (paid - ytd[2])
            above = payee
            for _ in range(LEVELS):
                above = manager_on(above, as_of)  # type: ignore[assignment]
                if above is None:
                    break
                shares[above] = shares.get(above, ZERO) + share
        for manager, share in shares.items():
            key = (manager, period)
            team[key] = team.get(key, ZERO) + amount * (share if share < ONE else ONE)

    with open(roster, encoding="utf-8") as f:
        records = [(r["period"], r.get("group") or "", r["payee"])
                   for r in map(loads, filter(str.strip, f))]
    records.sort()
    zero = cents(ZERO)
    with open(target, "w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["payee", "period", "group", "commission", "override", "total", "titles",
                    "flags"])
        for period, group, payee in records:
            key = (payee, period)
            earned = commission.get(key)
            c = cents(earned) if earned is not None else zero
            rolled = team.get(key)
            o = cents(rolled * OVERRIDE) if rolled is not None else zero
            w.writerow([payee, period, group, c, o, c + o, "", ""])


if __name__ == "__main__":
    main(*sys.argv[1:5])
