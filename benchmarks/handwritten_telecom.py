"""A careful hand-written program for the bundled telecom plan: the baseline of
``bench_cli.py``.

It reads the same JSONL records as ``incentives run examples/telecom/plan.yaml``
and writes the same CSV (one row a payee-period: each policy's line, the total),
with Decimal arithmetic written out by hand and no checks beyond what the
arithmetic needs. Usage: ``python handwritten_telecom.py RECORDS.jsonl OUT.csv``.
"""

from __future__ import annotations

import csv
import decimal
import json
import sys
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal(0)
TIERS = ((Decimal(0), Decimal("0.02")), (Decimal(30000), Decimal("0.04")),
         (Decimal(80000), Decimal("0.06")))
ITEMS = (("new_400", Decimal(120)), ("new_fax", Decimal(60)), ("new_ipvpn", Decimal(260)))
FLOOR = Decimal(700)
MULTIPLE = Decimal("1.5")
CAP_SHARE = Decimal("0.4")


def cents(x: Decimal) -> Decimal:
    r = x.quantize(CENT, rounding=decimal.ROUND_HALF_UP)
    return r if r else abs(r)


def pay(record: dict) -> list[Decimal]:
    metrics = record.get("metrics", {})
    revenue = Decimal(str(metrics["traffic_revenue"]))
    commission = ZERO
    for i, (start, rate) in enumerate(TIERS):
        end = TIERS[i + 1][0] if i + 1 < len(TIERS) else None
        if revenue <= start:
            break
        top = revenue if end is None or revenue < end else end
        commission += (top - start) * rate
    commission = cents(commission)
    new_business = cents(sum((Decimal(str(metrics.get(k, 0))) * v for k, v in ITEMS), ZERO))
    variable = commission + new_business
    lost = record.get("events", {}).get("lost_customers", [])
    uncapped = sum((MULTIPLE * Decimal(str(c["monthly_value"])) for c in lost
                    if c["reason"] != "closure"), ZERO)
    penalty = -cents(min(uncapped, CAP_SHARE * variable))
    before = commission + new_business + penalty
    floor = cents(max(FLOOR - before, ZERO))
    return [commission, new_business, penalty, floor, before + floor]


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as f, open(target, "w", encoding="utf-8",
                                                    newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["payee", "period", "group", "commission", "new_business",
                    "churn_penalty", "floor", "total", "titles", "flags"])
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line, parse_float=Decimal)
            w.writerow([r["payee"], r["period"], r.get("group", ""),
                        *(str(a) for a in pay(r)), "", ""])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
