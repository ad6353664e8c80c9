"""``incentives stream``: evaluate a large records file as a stream (see :mod:`incentives.streaming`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from .cli import period_option
from .errors import IncentivesError, UsageError, error_dict
from .fileio import add_file_options, file_options
from .ledger_cli import add_state_options

__all__ = ["cmd_stream", "register"]


def register(subparsers: Any) -> None:
    """Add ``incentives stream`` to the command line."""
    p = subparsers.add_parser(
        "stream", help="evaluate a large records file as a stream (memory bounded by a group)",
        description="Evaluate records as a stream: results are written bucket by bucket "
                    "(period and group), so memory holds one group, not the file. Records "
                    "need not be grouped: they are sorted into temporary files first, unless "
                    "--grouped says they already are.")
    p.add_argument("plan", help="the plan file (YAML)")
    p.add_argument("records", help="records: .jsonl, .csv or .json")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl",
                   help="jsonl: one result per line (default); csv: one row per payee")
    p.add_argument("--out", help="write to this file (atomically) instead of stdout")
    p.add_argument("--grouped", action="store_true",
                   help="the records are already grouped by period and group: one pass, "
                        "no temporary files")
    p.add_argument("--spill-dir", help="where the temporary bucket files go")
    p.add_argument("--errors", help="also write the errors to this file, one JSON per line")
    p.add_argument("--period", type=period_option,
                   help="the period of records that name none (YYYY-MM, YYYY-Qn or YYYY)")
    add_state_options(p)
    add_file_options(p)
    p.set_defaults(func=cmd_stream)


def cmd_stream(args: argparse.Namespace, out: TextIO) -> int:
    """``incentives stream``: exit 0 ok, 1 some records failed (reported), 2 usage.

    With ``--state`` the state file is locked for the whole stream; the output
    (``--out``), the errors (``--errors``) and the state replace their files
    together at the end, or none does. The spill files go on a normal exit, on
    an error, on Ctrl-C (SIGINT) and on SIGTERM; those a killed stream left are
    removed by the next one.
    """
    from .fileio import StagedFiles
    from .ledger_cli import check_outputs, open_state, report_leftovers, state_lock
    from .plan import load_plan
    from .records import MAX_ERRORS, iter_raw_records
    from .streaming import clean_spill_leftovers, evaluate_stream

    check_outputs(args, "--out", "--errors", "--state")  # before any work
    if args.spill_dir and not os.path.isdir(args.spill_dir):
        raise UsageError(f"--spill-dir {args.spill_dir}: no such folder")
    plan = load_plan(args.plan)
    if plan.transactions:
        raise UsageError("stream does not read transactions yet (a manager's roll-up needs "
                         "every team's credits at once): use incentives run --transactions")

    def show(exc: IncentivesError) -> None:
        sys.stderr.write(f"error: {exc}\n")

    source = iter_raw_records(args.records, **file_options(args))
    plan.compile().reader.max_errors = MAX_ERRORS  # a file that is not records ends
    with state_lock(args):
        report_leftovers(args.out, args.errors, args.state)
        for note in clean_spill_leftovers(args.spill_dir):
            sys.stderr.write(f"note: {note}\n")
        state = open_state(args, plan) if args.state else None
        with StagedFiles() as files:
            target = files.open(args.out) if args.out else out
            summary = evaluate_stream(plan, source, target, format=args.format,
                                      grouped=args.grouped, default_period=args.period,
                                      spill_dir=args.spill_dir, on_error=show, state=state)
            if args.errors:
                files.write(args.errors, "".join(
                    json.dumps(error_dict(e), ensure_ascii=False) + "\n"
                    for e in summary.errors))
            if args.state:
                if summary.errors:
                    sys.stderr.write(f"state not written: {len(summary.errors)} record(s) "
                                     f"failed; {args.state} is unchanged (fix them and run "
                                     "again)\n")
                else:
                    files.write(args.state, summary.state.to_json())
    return 1 if summary.errors else 0
