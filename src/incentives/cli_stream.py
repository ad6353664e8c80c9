"""``incentives stream``: evaluate a large records file as a stream (see :mod:`incentives.streaming`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from .cli import add_output_options, add_source_options, period_option
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
                    "need not be grouped: from a file, records that come bucket after bucket "
                    "(or a period at a time) are read once; otherwise they are sorted into "
                    "temporary files first. --grouped says they already are (from a pipe, "
                    "too).")
    p.add_argument("plan", help="the plan file (YAML)")
    add_source_options(p)
    add_output_options(p, ["jsonl", "csv"],
                       "jsonl: one result per line (default); csv: one row per payee; xlsx, "
                       "parquet and sql are told by --out", ".jsonl, .csv")
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
    from ._startup import resume_collector
    from .cli import check_sibling_outputs, open_output, output_format, source_options, wrote
    from .fileio import StagedFiles
    from .ledger_cli import check_outputs, open_state, report_leftovers, state_lock
    from .plan import load_plan
    from .records import MAX_ERRORS
    from .streaming import clean_spill_leftovers, evaluate_stream

    records_source, events = source_options(args)
    fmt = output_format(args, default="jsonl", suffixes={".csv": "csv"})
    if args.pay_with_errors and fmt != "sql":
        raise UsageError("--pay-with-errors is for a database given with --out")
    # before any work (a database is checked when it is opened)
    check_outputs(args, *(("--errors", "--state") if fmt == "sql"
                          else ("--out", "--errors", "--state")))
    if fmt == "parquet":
        check_sibling_outputs(args.out)
    if args.spill_dir and not os.path.isdir(args.spill_dir):
        raise UsageError(f"--spill-dir {args.spill_dir}: no such folder")
    plan = load_plan(args.plan)
    if plan.transactions:
        raise UsageError("stream does not read transactions yet (a manager's roll-up needs "
                         "every team's credits at once): use incentives run --transactions")
    sink = (open_output(args.out, pay_with_errors=args.pay_with_errors)
            if fmt in ("xlsx", "parquet", "sql") else None)

    def show(exc: IncentivesError) -> None:
        sys.stderr.write(f"error: {exc}\n")

    compiled = plan.compile()
    resume_collector()  # held while the modules were imported and the plan compiled
    compiled.reader.max_errors = MAX_ERRORS  # a file that is not records ends
    if args.period:
        compiled.reader.default_period = args.period
    source = compiled.source_records(records_source, events, **file_options(args))

    def read_again() -> Any:  # the same records again, from the start
        return compiled.source_records(records_source, events, **file_options(args))

    # a regular file (not a pipe, not a database) can be read again: records in order
    # are then evaluated as they are read, others read again and sorted
    again = isinstance(records_source, str) and records_source != "-" and all(
        isinstance(v, str) and os.path.isfile(v) for v in (records_source, *events.values()))
    reopen = read_again if again else None
    with state_lock(args):
        report_leftovers(args.out, args.errors, args.state)
        for note in clean_spill_leftovers(args.spill_dir):
            sys.stderr.write(f"note: {note}\n")
        state = open_state(args, plan) if args.state else None
        with StagedFiles() as files:
            target = sink if sink is not None else files.open(args.out) if args.out else out
            summary = evaluate_stream(plan, source, target, format=fmt, reopen=reopen,
                                      grouped=args.grouped, default_period=args.period,
                                      spill_dir=args.spill_dir, on_error=show, state=state,
                                      details=args.details,
                                      # a staged --out goes if the stream fails
                                      direct=sink is None and bool(args.out))
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
    if sink is not None:
        pay = not summary.errors or args.pay_with_errors or fmt != "sql"
        out.write(wrote(args.out, pay, summary.results, len(summary.errors)))
    return 1 if summary.errors else 0
