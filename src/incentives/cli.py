"""The command line: ``incentives validate | run | ...``.

Exit status: 0 ok; 1 some records failed (they are reported, the rest are
evaluated); 2 the plan, the state file (``--state``) or the command line is wrong.
With ``--state FILE`` the new state replaces FILE only when every record was
evaluated; otherwise FILE is left as it was.

Each subcommand is a small function; other modules add theirs through
:data:`EXTRA_COMMANDS` (imported lazily, so ``incentives --help`` stays light).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from .errors import IncentivesError, PlanError, StateError, UsageError

__all__ = ["main"]

EXIT_OK, EXIT_RECORDS, EXIT_USAGE = 0, 1, 2

#: Modules that add subcommands: each has ``register(subparsers) -> None``,
#: setting ``func`` on its parser with ``set_defaults(func=...)``.
EXTRA_COMMANDS: list[str] = ["incentives.cli_explain", "incentives.docgen", "incentives.simulate_cli",
                             "incentives.testing.audit", "incentives.testing.cases",
                             "incentives.streaming", "incentives.ledger_cli"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="incentives",
        description="Design, run, explain and audit incentive and commission pay plans.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("validate", help="check a plan file; exit 2 with the reason if it is wrong")
    p.add_argument("plan", help="the plan file (YAML)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="evaluate a plan on a period's records")
    p.add_argument("plan", help="the plan file (YAML)")
    p.add_argument("records", help="records: .json, .jsonl or .csv")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--out", help="write the output to this file (atomically) instead of stdout")
    p.add_argument("--period", help="the period of records that name none (YYYY-MM)")
    p.add_argument("--state", help="the state (ledger) file: read, then replaced with the new one")
    from .records import add_file_options

    add_file_options(p)
    p.set_defaults(func=cmd_run)

    for name in EXTRA_COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"incentives {__version__}"


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    from .plan import load_plan

    plan = load_plan(args.plan)
    n = len(plan.policies)
    out.write(f"{args.plan}: ok: plan {plan.name!r} version {plan.version}, {n} policies\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from .fileio import atomic_write
    from .plan import load_plan
    from .records import MAX_ERRORS, file_options, iter_raw_records

    plan = load_plan(args.plan)
    compiled = plan.compile()
    if args.period:
        compiled.reader.default_period = args.period
    compiled.reader.max_errors = MAX_ERRORS  # a file that is not records ends
    state = None
    if args.state:
        state = _load_state(plan, args.state)
    run = compiled.evaluate(iter_raw_records(args.records, **file_options(args)),
                            errors="collect", state=state)
    text = render(run, args.format)
    if args.out:
        atomic_write(args.out, text)
    else:
        out.write(text)
    if args.state and run.state is not None:
        if run.errors:
            sys.stderr.write(f"state not written: {len(run.errors)} record(s) failed; "
                             f"{args.state} is unchanged (fix them and run the period again)\n")
        else:
            _save_state(run, args.state)
    for e in run.errors:
        sys.stderr.write(f"error: {e}\n")
    return EXIT_RECORDS if run.errors else EXIT_OK


def render(run: object, fmt: str) -> str:
    """Render a run in ``table``, ``json`` or ``csv`` format."""
    from .results import Run

    assert isinstance(run, Run)
    if fmt == "json":
        return run.to_json()
    if fmt == "csv":
        return run.to_csv()
    return run.to_table()


def _load_state(plan: object, path: str) -> object:
    try:
        ledger = importlib.import_module("incentives.ledger")
    except ImportError:
        raise UsageError("--state needs the ledger module") from None
    loader: Callable[..., object] = ledger.load_state_file
    return loader(path, plan)


def _save_state(run: object, path: str) -> None:
    ledger = importlib.import_module("incentives.ledger")
    ledger.save_state_file(run.state, path)  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    stream = out if out is not None else sys.stdout
    try:
        code: int = args.func(args, stream)
    except (PlanError, UsageError, StateError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except IncentivesError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_RECORDS
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return code


def entry() -> None:  # pragma: no cover - console script
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
