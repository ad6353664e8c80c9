"""A careful hand-written program for the bundled telecom plan: the baseline of
``bench_cli.py``.

It reads the same JSONL records as ``incentives run examples/telecom/plan.yaml``
and writes what ``incentives`` writes for them, byte for byte, with Decimal
arithmetic written out by hand and no checks beyond what the arithmetic needs:

- ``--format csv`` (the default): the CSV of ``incentives run --format csv`` (one row
  a payee-period: each policy's line, the total);
- ``--format json``: the document of ``incentives run --format json --details X``;
- ``--format jsonl``: the lines of ``incentives stream --format jsonl --details X``;

with ``--details lines`` (each line's id, label, amount and type) or ``full`` (the
default: each line's details too, worked out here as the library shows them: the
tier slices, the items sold, each lost customer, the cap, the floor). Results are
written in the order the records come (the benchmark's records are sorted by period
and payee, as ``incentives`` sorts its results).

Usage: ``python handwritten_telecom.py RECORDS.jsonl OUT [--format csv|json|jsonl]
[--details lines|full]``.
"""

from __future__ import annotations

import argparse
import csv
import decimal
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal(0)
#: the marginal tiers: start, rate, and how the library writes them
TIERS = ((Decimal(0), Decimal("0.02")), (Decimal(30000), Decimal("0.04")),
         (Decimal(80000), Decimal("0.06")))
TIER_TEXT = tuple((str(start), str(rate)) for start, rate in TIERS)
#: the products of new business: metric, reward per unit, label
ITEMS = (("new_400", Decimal(120), "400号码"), ("new_fax", Decimal(60), "网络传真"),
         ("new_ipvpn", Decimal(260), "IP-VPN"))
FLOOR = Decimal(700)
MULTIPLE = Decimal("1.5")
CAP_SHARE = Decimal("0.4")
LABELS = {"commission": "通信费提成 (traffic commission)",
          "new_business": "新业务奖励 (new business)",
          "churn_penalty": "客户流失扣罚 (churn penalty)", "floor": "保底 (guaranteed floor)"}
TYPES = {"commission": "commission", "new_business": "new_business",
         "churn_penalty": "penalty", "floor": "floor_top_up"}


def cents(x: Decimal) -> Decimal:
    r = x.quantize(CENT, rounding=decimal.ROUND_HALF_UP)
    return r if r else abs(r)


def money(x: Decimal) -> str:
    """A money figure of the details: to the cent when that is exact, else every digit."""
    r = x.quantize(CENT)
    return str(r) if r == x else str(x)


def pay(record: dict[str, Any], details: bool = False
        ) -> tuple[list[Decimal], Decimal, list[dict[str, Any]] | None]:
    """The four lines' amounts and the total, variable pay, and (``details``) each
    line's details."""
    metrics = record.get("metrics", {})
    revenue = Decimal(str(metrics["traffic_revenue"]))
    commission = ZERO
    slices = []
    for i, (start, rate) in enumerate(TIERS):
        if revenue <= start:
            break
        end = TIERS[i + 1][0] if i + 1 < len(TIERS) else None
        top = revenue if end is None or revenue < end else end
        part = (top - start) * rate
        commission += part
        if details:
            slices.append({"from": TIER_TEXT[i][0], "to": str(top), "rate": TIER_TEXT[i][1],
                           "amount": money(part)})
    uncapped_commission = commission
    commission = cents(commission)
    sold = []
    new_business = ZERO
    for key, per_unit, label in ITEMS:
        quantity = Decimal(str(metrics.get(key, 0)))
        new_business += quantity * per_unit
        if details and quantity:
            sold.append({"item": key, "label": label, "quantity": str(quantity),
                         "per_unit": str(per_unit), "amount": money(quantity * per_unit)})
    new_business = cents(new_business)
    variable = commission + new_business
    lost = record.get("events", {}).get("lost_customers", [])
    uncapped = ZERO
    customers = []
    for c in lost:
        if c["reason"] == "closure":
            if details:
                customers.append({"id": c["id"], "reason": c["reason"], "amount": "0.00",
                                  "exempt": True})
            continue
        value = Decimal(str(c["monthly_value"]))
        cost = MULTIPLE * value
        uncapped += cost
        if details:
            customers.append({"id": c["id"], "reason": c["reason"],
                              "formula": "churn_multiple * monthly_value",
                              "substituted": f"{MULTIPLE} * {value}", "amount": money(cost)})
    limit = max(CAP_SHARE * variable, ZERO)
    penalty = -cents(min(uncapped, limit))
    before = commission + new_business + penalty
    floor = cents(max(FLOOR - before, ZERO))
    amounts = [commission, new_business, penalty, floor, before + floor]
    if not details:
        return amounts, variable, None
    tiered: dict[str, Any] = {"basis": str(revenue), "basis_formula": "traffic_revenue",
                              "method": "marginal", "slices": slices}
    for start, _ in TIERS:  # the next tier, when there is one
        if revenue < start:
            tiered["next_threshold"] = str(start)
            tiered["to_next_tier"] = str(start - revenue)
            break
    tiered["amount"] = money(uncapped_commission)
    churn: dict[str, Any] = {"customers": customers, "uncapped": money(uncapped),
                             "cap": money(limit), "cap_formula": "churn_cap_share * variable_pay",
                             "cap_substituted": f"{CAP_SHARE} * {variable}"}
    if uncapped > limit:
        churn["above_cap"] = churn["forgiven"] = money(uncapped - limit)
    floored = {"floor": money(FLOOR), "floor_formula": "floor_amount", "of": "total",
               "before": money(before), "floor_substituted": str(FLOOR)}
    return amounts, variable, [tiered, {"items": sold}, churn, floored]


def result(r: dict[str, Any], full: bool) -> dict[str, Any]:
    """One result as ``incentives`` writes it in JSON."""
    amounts, variable, details = pay(r, full)
    lines = []
    for k, policy in enumerate(("commission", "new_business", "churn_penalty", "floor")):
        line = {"id": policy, "label": LABELS[policy], "amount": str(amounts[k]),
                "type": TYPES[policy]}
        if details is not None:
            line["details"] = details[k]
        lines.append(line)
    return {"payee": r["payee"], "period": r["period"], "group": r.get("group"),
            "total": str(amounts[4]), "lines": lines, "titles": [], "flags": [],
            "values": {"variable_pay": str(variable)}}


def records(source: str) -> Iterator[dict[str, Any]]:
    with open(source, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line, parse_float=Decimal)


def main(source: str, target: str, format: str = "csv", details: str = "full") -> None:
    full = details == "full"
    with open(target, "w", encoding="utf-8", newline="") as out:
        if format == "csv":
            w = csv.writer(out, lineterminator="\n")
            w.writerow(["payee", "period", "group", "commission", "new_business",
                        "churn_penalty", "floor", "total", "titles", "flags"])
            for r in records(source):
                amounts = pay(r)[0]
                w.writerow([r["payee"], r["period"], r.get("group", ""),
                            *(str(a) for a in amounts), "", ""])
        elif format == "jsonl":
            for r in records(source):
                out.write(json.dumps(result(r, full), ensure_ascii=False) + "\n")
        else:
            out.write('{\n  "plan": {"name": "telecom-key-account", "version": "2026.1"},\n'
                      '  "results": ')
            sep = "[\n    "
            for r in records(source):
                out.write(sep + json.dumps(result(r, full), ensure_ascii=False))
                sep = ",\n    "
            out.write(("[]" if sep == "[\n    " else "\n  ]") + ',\n  "errors": []\n}\n')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records")
    parser.add_argument("out")
    parser.add_argument("--format", choices=["csv", "json", "jsonl"], default="csv")
    parser.add_argument("--details", choices=["lines", "full"], default="full")
    a = parser.parse_args()
    main(a.records, a.out, a.format, a.details)
