"""``incentives explain``: one payee's statement, which the payee can recompute by hand.

Exit status: 0 ok; 1 the payee's record failed (the error is printed); 2 the
plan or the command line is wrong (an unknown payee is a usage error).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .errors import UsageError, did_you_mean

__all__ = ["FORMATS", "register"]

#: The statement formats ``--format`` offers: :data:`incentives.explain.FORMATS`, written
#: out here so that building the parser (``incentives --help``) does not import the
#: statements' module and the engine under it (a test keeps the two equal).
FORMATS: tuple[str, ...] = ("text", "markdown", "html")


def register(sub: Any) -> None:
    """Add the ``explain`` subcommand to the ``incentives`` parser."""
    from .i18n import languages

    p = sub.add_parser("explain", help="one payee's statement, line by line, ending in the total")
    p.add_argument("plan", help="the plan file (YAML)")
    p.add_argument("records", help="records: .json, .jsonl or .csv")
    p.add_argument("--payee", required=True, help="the payee to explain")
    from .cli import period_option

    p.add_argument("--period", type=period_option,
                   help="the period to explain (and of records that name none)")
    p.add_argument("--format", choices=list(FORMATS), default="text")
    p.add_argument("--lang", choices=list(languages()), default="en",
                   help="the language of the statement's own phrases (labels come from the plan)")
    p.add_argument("--state", help="the state (ledger) file to start from (read only)")
    p.add_argument("--out", help="write the statement to this file (atomically)")
    p.add_argument("--templates", metavar="DIR",
                   help="a folder of HTML templates overriding the bundled ones "
                        "(--format html; see docs/statements.md)")
    from .fileio import add_file_options, add_transaction_options

    add_file_options(p)
    add_transaction_options(p)
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    from .cli import EXIT_OK, EXIT_RECORDS, load_state
    from .explain import explain
    from .fileio import atomic_write, file_options
    from .ledger_cli import check_outputs, report_leftovers
    from .plan import load_plan
    from .records import MAX_ERRORS, iter_raw_records
    from .transactions import transaction_options

    check_outputs(args, "--out")  # before any work
    if args.templates is not None:
        if args.format != "html":
            raise UsageError(f"--templates restyles HTML statements: give --format html "
                             f"(not {args.format})")
        from .templating import check

        for name in ("statement.html.j2", "statement_fragment.html.j2"):
            check(name, args.templates)  # a missing folder or a syntax error: before any work
    report_leftovers(args.out)
    plan = load_plan(args.plan)
    compiled = plan.compile()
    if args.period:
        compiled.reader.default_period = args.period
    compiled.reader.max_errors = MAX_ERRORS  # a file that is not records ends
    state = load_state(plan, args.state) if args.state else None
    given = transaction_options(args, compiled.transaction_reader, **file_options(args))
    run = compiled.evaluate(iter_raw_records(args.records, **file_options(args)),
                            errors="collect", state=state, **given)
    found = [r for r in run.results
             if r.payee == args.payee and (args.period is None or r.period == args.period)]
    failed = [e for e in run.errors if getattr(e, "payee", None) == args.payee
              and (args.period is None or getattr(e, "period", None) in (None, args.period))]
    if failed and not found:
        for e in failed:
            sys.stderr.write(f"error: {e}\n")
        return EXIT_RECORDS
    shown = repr(args.payee[:40]) + ("…" if len(args.payee) > 40 else "")  # quoted short
    if not found:
        payees = sorted({r.payee for r in run.results})
        hint = did_you_mean(args.payee, payees) or (
            "payees: " + ", ".join(p if len(p) <= 40 else p[:40] + "…" for p in payees[:10])
            + (" ..." if len(payees) > 10 else ""))
        where = f" in period {args.period}" if args.period else ""
        raise UsageError(f"no result for payee {shown}{where}; {hint}")
    if len(found) > 1:
        periods = ", ".join(sorted(r.period for r in found))
        raise UsageError(f"payee {shown} has results in several periods ({periods}); "
                         "name one with --period")
    text = explain(found[0], format=args.format, lang=args.lang, plan=plan,
                   templates=args.templates)
    if args.out:
        atomic_write(args.out, text)
    else:
        out.write(text)
    return EXIT_OK
