"""``incentives correct``: post a correction of a closed period into a state file.

``incentives correct PLAN CORRECTED_RECORDS --paid PAID.json --opening OPENING_STATE
--state STATE`` evaluates the corrected records again from the state that opened
their period, compares them with what was paid (the JSON output of ``incentives
run``), and writes the differences into STATE (atomically), where the next
``incentives run ... --state STATE`` pays them as ``adjustment`` lines.

Exit status: 0 ok (the adjustments are listed); 1 a corrected record failed
(nothing is written); 2 the plan, a state file, the paid file or the command
line is wrong (nothing is written).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from .errors import StateError, UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add the ``correct`` subcommand to the ``incentives`` parser."""
    p = sub.add_parser("correct", help="post a correction of a closed period into the state, "
                                       "paid as adjustment lines in the next run")
    p.add_argument("plan", help="the plan file (YAML) the period was evaluated with")
    p.add_argument("records", help="the corrected records of the closed period(s)")
    p.add_argument("--paid", required=True,
                   help="what was paid: the JSON output of 'incentives run' for those periods")
    p.add_argument("--opening", required=True,
                   help="the state file those periods were opened with (read only)")
    p.add_argument("--state", required=True,
                   help="the current state file: the adjustments are added to it")
    from .records import add_file_options

    add_file_options(p)
    p.set_defaults(func=cmd_correct)


def _paid(path: str) -> dict[str, Any]:
    try:
        from .fileio import read_text_capped
        from .records import MAX_FILE_BYTES

        data = json.loads(read_text_capped(path, MAX_FILE_BYTES, "the paid run"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{path}: cannot read the paid run: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise UsageError(f"{path}: not the JSON output of 'incentives run' (no 'results')")
    for r in data["results"]:
        try:
            for line in r["lines"]:
                Decimal(line["amount"])
            str(r["payee"]), str(r["period"])
        except (KeyError, TypeError, ArithmeticError):
            raise UsageError(f"{path}: a result is missing payee, period or lines "
                             "with amounts") from None
    return data


def cmd_correct(args: argparse.Namespace, out: TextIO) -> int:
    from .cli import EXIT_OK, EXIT_RECORDS
    from .ledger import ADJUSTMENTS, correct, load_state_file, save_state_file
    from .plan import load_plan
    from .records import MAX_ERRORS, file_options, iter_raw_records

    plan = load_plan(args.plan)
    plan.compile().reader.max_errors = MAX_ERRORS  # a file that is not records ends
    if not Path(args.opening).exists():
        raise StateError(f"{args.opening}: no such state file (the opening state is needed)")
    opening = load_state_file(args.opening, plan)
    state = load_state_file(args.state, plan)
    paid = _paid(args.paid)
    records = list(iter_raw_records(args.records, **file_options(args)))
    check = plan.evaluate(records, errors="collect", state=opening)
    if check.errors:
        for e in check.errors:
            sys.stderr.write(f"error: {e}\n")
        sys.stderr.write(f"nothing written: {len(check.errors)} corrected record(s) failed\n")
        return EXIT_RECORDS
    new = correct(plan, records, paid=paid, opening=opening, state=state)
    posted = []
    for payee in sorted(new.payees):
        before = len(state.payees.get(payee, {}).get(ADJUSTMENTS, []))
        for item in new.payees[payee].get(ADJUSTMENTS, [])[before:]:
            posted.append((payee, item))
    save_state_file(new, args.state)
    if not posted:
        out.write("no differences: nothing to adjust\n")
    for payee, item in posted:
        out.write(f"{payee} {item['period']} {item['policy']}: paid {item['paid']}, "
                  f"corrected {item['corrected']}, adjustment {item['amount']}\n")
    return EXIT_OK
