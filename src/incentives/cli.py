"""The command line: ``incentives validate | run | ...``.

Exit status: 0 ok; 1 some records failed (they are reported, the rest are
evaluated); 2 the plan, the state file (``--state``) or the command line is wrong,
or another run holds the state file; 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM): nothing is written then. With ``--state FILE`` the new state replaces
FILE only when every record was evaluated; otherwise FILE is left as it was.

Each subcommand is a small function; other modules add theirs through
:data:`EXTRA_COMMANDS` (imported lazily, so ``incentives --help`` stays light).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from .errors import IncentivesError, PlanError, StateError, UsageError

if TYPE_CHECKING:  # (imported when a parser is built: `incentives validate PLAN` builds none)
    import argparse

__all__ = ["main"]

EXIT_OK, EXIT_RECORDS, EXIT_USAGE = 0, 1, 2

#: Modules that add subcommands: each has ``register(subparsers) -> None``,
#: setting ``func`` on its parser with ``set_defaults(func=...)``.
EXTRA_COMMANDS: list[str] = ["incentives.cli_explain", "incentives.cli_schema", "incentives.simulate_cli",
                             "incentives.testing.audit", "incentives.testing.cases",
                             "incentives.cli_stream", "incentives.ledger_cli"]


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns`` (what argparse's help is wrapped to), read
    as :mod:`shutil` reads it, without importing it (and bz2, lzma... with it) when
    nothing else has."""
    if "shutil" in sys.modules:
        return sys.modules["shutil"].get_terminal_size().columns  # type: ignore[no-any-return]
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            size = os.get_terminal_size(sys.__stdout__.fileno())  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            size = os.terminal_size((80, 24))
        columns = size.columns or 80
    return columns


_PARSER_CLASS: list[type[argparse.ArgumentParser]] = []


def _parser_class() -> type[argparse.ArgumentParser]:
    """The command line's parser class (made, and argparse imported, when a parser is
    built)."""
    if _PARSER_CLASS:
        return _PARSER_CLASS[0]
    import argparse

    class _Formatter(argparse.HelpFormatter):
        """argparse's formatter, as wide as it always is (see :func:`_terminal_columns`)."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:
            super().__init__(prog, indent_increment, max_help_position,
                             _terminal_columns() - 2 if width is None else width)

    class _Parser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", _Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> None:  # type: ignore[override]
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
            raise SystemExit(EXIT_USAGE)

    _PARSER_CLASS.append(_Parser)
    return _Parser


#: The module of :data:`EXTRA_COMMANDS` that adds each built-in command (``validate`` and
#: ``run`` are this module's own).
COMMAND_MODULES = {"explain": "incentives.cli_explain", "schema": "incentives.cli_schema",
                   "simulate": "incentives.simulate_cli", "audit": "incentives.testing.audit",
                   "test": "incentives.testing.cases", "stream": "incentives.cli_stream",
                   "correct": "incentives.ledger_cli"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``command`` a built-in command (``"validate"``,
    ``"run"``, a name of :data:`COMMAND_MODULES`), only that command's: what ``incentives
    COMMAND ...`` parses (a command's arguments are parsed by its own parser alone), with
    the same usage, help and errors, without building every other command, whose options
    import more. Anything else (``None``, an option, an unknown name) builds them all."""
    parser_class = _parser_class()
    parser = parser_class(
        prog="incentives",
        description="Design, run, explain and audit incentive and commission pay plans.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    only = command if command in ("validate", "run") or (
        command in COMMAND_MODULES and COMMAND_MODULES[command] in EXTRA_COMMANDS) else None

    if only in (None, "validate"):
        p = sub.add_parser("validate",
                           help="check a plan file; exit 2 with the reason if it is wrong")
        p.add_argument("plan", help="the plan file (YAML)")
        p.set_defaults(func=cmd_validate)
    if only in (None, "run"):
        _add_run(sub)
    for name in EXTRA_COMMANDS:
        if only is None or COMMAND_MODULES.get(only) == name:
            importlib.import_module(name).register(sub)
    return parser


def _add_run(sub: Any) -> None:
    """Add ``incentives run``."""
    p = sub.add_parser("run", help="evaluate a plan on a period's records")
    p.add_argument("plan", help="the plan file (YAML)")
    add_source_options(p)
    add_output_options(p, ["table", "json", "csv"],
                       "table (the default), json or csv; xlsx, parquet and sql are told "
                       "by --out", ".json, .csv")
    p.add_argument("--period", type=period_option,
                   help="the period of records that name none (YYYY-MM, YYYY-Qn or YYYY)")
    p.add_argument("--columns", metavar="NAMES",
                   help="the table's columns: 'all', or names separated by commas (payee, "
                        "period, group, total, policy ids or labels); by default the table "
                        "fits the terminal's width (COLUMNS) and notes what it left out")
    from .ledger_cli import add_state_options

    add_state_options(p)
    from .fileio import add_file_options, add_transaction_options

    add_file_options(p)
    add_transaction_options(p)
    p.set_defaults(func=cmd_run)


def add_source_options(p: argparse.ArgumentParser) -> None:
    """The records source (positional or ``--records``) and ``--events NAME=SOURCE``."""
    p.add_argument("records", nargs="?", metavar="RECORDS",
                   help="records: .json, .jsonl, .csv, .parquet, .xlsx[#SHEET], or a "
                        "database URL with table=NAME or query=FILE")
    p.add_argument("--records", dest="records_option", metavar="SOURCE",
                   help="the records, as RECORDS (give one or the other)")
    p.add_argument("--events", action="append", metavar="NAME=SOURCE", default=[],
                   help="the rows of an event list the plan declares (each with payee, "
                        "period and the event's fields); may be repeated")


def source_options(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The records source and the event sources given on a command line."""
    given = [v for v in (args.records, args.records_option) if v is not None]
    if len(given) != 1:
        raise UsageError("give the records once: as RECORDS or as --records SOURCE"
                         if given else "give the records: RECORDS or --records SOURCE")
    events: dict[str, str] = {}
    for spec in args.events:
        name, sep, source = spec.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise UsageError(f"--events {spec!r}: give NAME=SOURCE")
        if name in events:
            raise UsageError(f"--events {name!r} is given twice")
        events[name.strip()] = source
    args.records = given[0]  # what check_outputs compares outputs with
    return given[0], events


def add_output_options(p: argparse.ArgumentParser, formats: list[str], format_help: str,
                       text_files: str) -> None:
    """``--format`` (``formats``, and the sinks), ``--out TARGET`` and ``--pay-with-errors``."""
    p.add_argument("--format", choices=[*formats, "xlsx", "parquet", "sql"],
                   help=format_help)
    p.add_argument("--out", metavar="TARGET",
                   help=f"write to this file (atomically) instead of stdout: {text_files}, "
                        ".xlsx, .parquet, or a database URL with table=NAME (one transaction)")
    p.add_argument("--pay-with-errors", action="store_true",
                   help="to a database: write the pay of the good records even when some "
                        "failed (by default only the errors are written then)")
    add_details_option(p)


#: ``--details`` levels (as :data:`incentives.results.DETAILS_LEVELS`, without importing it)
DETAILS_LEVELS = ("none", "lines", "full")


def add_details_option(p: argparse.ArgumentParser) -> None:
    """``--details none|lines|full``: how much of each result an output holds."""
    p.add_argument("--details", choices=DETAILS_LEVELS, default="full",
                   help="how much each result holds: full (every line with its details, "
                        "the default), lines (every line's id, label, amount and type; "
                        "no details), none (payee, period, group, total, titles, flags, "
                        "values; no lines). CSV never holds details; none drops its policy "
                        "columns. Errors are always written whole")


_SINK_FORMATS = {"excel": "xlsx", "parquet": "parquet", "sql": "sql"}


def output_format(args: argparse.Namespace, *, default: str = "table",
                  suffixes: dict[str, str] | None = None) -> str:
    """The output's format: a sink's (xlsx, parquet, sql) when ``--out`` names one, else
    ``--format``, else told by the ``--out`` file's suffix (``suffixes``: by default .json
    and .csv), else ``default``. A ``--format`` that contradicts ``--out`` is refused."""
    from .sources import sink_kind

    out = getattr(args, "out", None)
    kind = sink_kind(out) if out else None
    fmt: str | None = args.format
    if kind is not None:
        want = _SINK_FORMATS[kind]
        if fmt is not None and fmt != want:
            raise UsageError(f"--format {fmt} does not go with --out {_shown(out)}, which "
                             f"is written as {want}")
        return want
    if fmt is not None and fmt in _SINK_FORMATS.values():
        raise UsageError(f"--format {fmt} is told by --out: give --out " + {
            "xlsx": "FILE.xlsx", "parquet": "FILE.parquet",
            "sql": "a database URL such as sqlite:///pay.db?table=pay"}[fmt])
    if fmt is None and out:
        found = {".json": "json", ".csv": "csv"} if suffixes is None else suffixes
        fmt = found.get(os.path.splitext(out)[1].lower())
    return fmt or default


def _shown(target: str | None) -> str:
    from .sources import source_label

    return source_label(target or "")


def period_option(text: str) -> str:
    """An argparse ``type`` for ``--period``: a mistyped period is a usage error (exit 2).

    >>> period_option("2026-05")
    '2026-05'
    >>> period_option("2026-13")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: period '2026-13': month 13 does not exist
    """
    import argparse

    from .periods import parse_period

    try:
        parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _version() -> str:
    from . import __version__

    return f"incentives {__version__}"


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    from .plan import check_plan

    plan = check_plan(args.plan)
    n = len(plan.policies)
    out.write(f"{args.plan}: ok: plan {plan.name!r} version {plan.version}, {n} policies\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from ._startup import resume_collector
    from .engine import paused_gc
    from .fileio import StagedFiles, file_options
    from .ledger_cli import check_outputs, open_state, report_leftovers, state_lock
    from .plan import load_plan
    from .records import MAX_ERRORS

    records_source, events = source_options(args)
    fmt = output_format(args)
    sink = fmt in ("xlsx", "parquet", "sql")
    if args.columns is not None and fmt != "table":
        raise UsageError(f"--columns chooses the table's columns; --format {fmt} "
                         "gives every column")
    if args.pay_with_errors and fmt != "sql":
        raise UsageError("--pay-with-errors is for a database given with --out")
    # before any work (a database is checked when it is opened)
    check_outputs(args, *(("--state",) if fmt == "sql" else ("--out", "--state")))
    if fmt == "parquet":
        check_sibling_outputs(args.out)
    plan = load_plan(args.plan)
    target = open_output(args.out, pay_with_errors=args.pay_with_errors) if sink else None
    if args.columns is not None:  # an unknown name is refused before any work
        from .results import Run

        Run(plan, []).to_table(columns=args.columns, details=args.details)
    compiled = plan.compile()
    resume_collector()  # held while the modules were imported and the plan compiled
    if args.period:
        compiled.reader.default_period = args.period
    # one writer per state: locked from reading the state to replacing it
    compiled.reader.max_errors = MAX_ERRORS  # a file that is not records ends
    with state_lock(args):
        report_leftovers(args.out, args.state)
        state = open_state(args, plan) if args.state else None
        given: dict[str, Any] = {}
        if compiled.transaction_reader is not None or args.transactions or args.table \
                or args.hierarchy is not None:  # (else no module of transactions is needed)
            from .transactions import transaction_options

            with paused_gc():  # a million transactions hold no cycles either
                given = transaction_options(args, compiled.transaction_reader,
                                            floats=plan.reading.floats, **file_options(args))
        if fmt == "table":  # a terminal's table: the whole run, held
            rows = compiled.source_records(records_source, events, **file_options(args))
            run = compiled.evaluate(rows, errors="collect", state=state, **given)
            with paused_gc():  # the output's many small containers hold no cycles
                text = render(run, fmt, columns=args.columns, details=args.details)
            if not args.out:
                write_all(out, text)  # shown (all of it) before the state closes the period
            with StagedFiles() as files:
                if args.out:
                    files.write(args.out, text)
                _stage_state(files, args, run.state, run.errors)
            errors = run.errors
        else:
            errors = _run_by_period(args, out, compiled, records_source, events, state,
                                    given, fmt, target)
    for e in errors:
        sys.stderr.write(f"error: {e}\n")
    return EXIT_RECORDS if errors else EXIT_OK


def _stage_state(files: Any, args: argparse.Namespace, state: Any, errors: list[Any]) -> None:
    """The new state, staged with the output, when every record was evaluated."""
    if args.state and state is not None:
        if errors:
            sys.stderr.write(
                f"state not written: {len(errors)} record(s) failed; {args.state} "
                "is unchanged (fix them and run the period again)\n")
        else:
            files.write(args.state, state.to_json())


#: the order each output format writes a period's results in (see CompiledPlan.periods)
_PARTS: dict[str, Literal["payee", "group"]] = {"json": "payee", "csv": "group"}


def _run_by_period(args: argparse.Namespace, out: TextIO, compiled: Any, records_source: str,
                   events: dict[str, str], state: Any, given: dict[str, Any], fmt: str,
                   target: Any) -> list[Any]:
    """``incentives run`` to json, csv or a sink: the run evaluated a period at a time,
    each period's results written as they are made and dropped (see
    :mod:`incentives.output`). Records that come period after period are held a period
    at a time; a record for a period already passed starts the run again, every record
    held (the source is read again). Returns the run's errors."""
    import tempfile

    from .engine import OutOfOrder, paused_gc
    from .fileio import StagedFiles, file_options
    from .output import CsvWriter, JsonWriter, RunWriter, SinkWriter, copy_text

    plan = compiled.plan
    # the output and the state replace their files together, or neither does (a
    # database commits first: a state not replaced then only means a run again,
    # which replaces the period's rows)
    with StagedFiles() as files, contextlib.ExitStack() as stack:
        handle: Any = None
        if target is None:
            handle = (files.open(args.out) if args.out else stack.enter_context(
                tempfile.TemporaryFile("w+", encoding="utf-8", newline="")))
        folder = (os.path.dirname(os.path.abspath(args.out)) if args.out else None)

        def writer() -> RunWriter:
            if target is not None:
                return SinkWriter(target, plan, details=args.details)
            if fmt == "json":
                return JsonWriter(handle, plan, details=args.details)
            return CsvWriter(handle, plan, details=args.details, folder=folder)

        # a pipe or a device cannot be read twice: its records are held from the start
        for in_order in ((True, False) if all(map(_read_twice, (records_source,
                                                                *events.values())))
                         else (False,)):
            rows = compiled.source_records(records_source, events, **file_options(args))
            # a large period evaluated and written a part at a time, in the output's order
            evaluation = compiled.periods(rows, errors="collect", state=state,
                                          in_order=in_order, parts=_PARTS.get(fmt), **given)
            w = writer()
            try:
                with paused_gc():  # neither the results nor the output hold cycles
                    for _, results in evaluation:
                        w.add(results)
                        results.clear()  # gone before the next period is evaluated
                    w.finish(evaluation.errors)
                break
            except OutOfOrder:  # a record of a period already passed: again, holding all
                w.discard()
                if target is not None:
                    target = open_output(args.out, pay_with_errors=args.pay_with_errors)
                else:
                    handle.seek(0)
                    handle.truncate()
            except BaseException:
                w.discard()
                raise
        errors: list[Any] = evaluation.errors
        if target is not None:
            out.write(wrote(args.out, not errors or args.pay_with_errors or fmt != "sql",
                            w.results, len(errors), w.lines))
        elif not args.out:
            copy_text(handle, out)  # shown (all of it) before the state closes the period
        _stage_state(files, args, evaluation.state, errors)
    return errors


def _read_twice(source: str) -> bool:
    """Whether ``source`` can be read again from its start: a regular file, a folder
    (a dataset) or a database can; a pipe (a FIFO, ``/dev/stdin``) or a device cannot."""
    try:
        mode = os.stat(source).st_mode
    except (OSError, ValueError):  # a database URL, a sheet (book.xlsx#Sheet), or missing
        return True
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def open_output(target: str, *, pay_with_errors: bool) -> Any:
    """The sink ``--out`` names, opened before any work (a database that cannot be
    reached is found before the records are read)."""
    from .sources import open_sink

    return open_sink(target, pay_with_errors=pay_with_errors)


def wrote(target: str, pay: bool, results: int, errors: int, lines: int | None = None) -> str:
    """The line a run (or a stream) prints when it wrote to a sink."""
    where = _shown(target)
    if not pay:
        return (f"{where}: pay not written: {errors} record(s) failed; their errors are "
                "written and the pay rows are as they were (fix them and run again, or give "
                "--pay-with-errors)\n")
    counted = f"{lines} line(s), " if lines is not None else ""
    return f"{where}: wrote {results} result(s), {counted}{errors} error(s)\n"


def check_sibling_outputs(target: str) -> None:
    """A Parquet output's ``.lines`` and ``.errors`` files must be writable too."""
    from .fileio import check_output

    stem = target[: -len(os.path.splitext(target)[1])]
    for part in ("lines", "errors"):
        check_output(f"{stem}.{part}.parquet", "--out")


def write_all(out: TextIO, text: str) -> None:
    """Write ``text`` to ``out`` and flush it; an error if any of it could not be written.

    A large write to a pipe whose reader has gone (``incentives run ... | head``)
    may be cut short with no error from Python's buffered stream, so the output
    is written to the file descriptor here, piece by piece: a broken pipe is an
    ``OSError`` (exit 2), and a ``--state`` is then not replaced.
    """
    try:
        fd = out.fileno()
        encoding = out.encoding
        if sys.platform == "win32":  # pragma: no cover - the stream translates newlines
            raise ValueError
    except (AttributeError, OSError, ValueError):  # not a file (a StringIO)
        out.write(text)
        out.flush()
        return
    data = memoryview(text.encode(encoding, getattr(out, "errors", None) or "strict"))
    out.flush()
    while data:
        data = data[os.write(fd, data[:1 << 16]):]


def render(run: object, fmt: str, *, columns: str | None = None,
           details: str = "full") -> str:
    """Render a run in ``table``, ``json`` or ``csv`` format (``columns``: the table's;
    ``details``: ``full``, ``lines`` or ``none``)."""
    from .results import Run

    assert isinstance(run, Run)
    if fmt == "json":
        return run.to_json(details=details)
    if fmt == "csv":
        return run.to_csv(details=details)
    return run.to_table(columns=columns, details=details)


def load_state(plan: object, path: str) -> object:
    """The state file ``path`` of ``plan`` (see :func:`incentives.ledger.load_state_file`)."""
    try:
        ledger = importlib.import_module("incentives.ledger")
    except ImportError:
        raise UsageError("--state needs the ledger module") from None
    loader: Callable[..., object] = ledger.load_state_file
    return loader(path, plan)


def _validate_only(given: list[Any]) -> Any:
    """The arguments of ``incentives validate PLAN`` (a plan and nothing else: no option,
    nothing that looks like one) as argparse reads them, read without building a parser
    (argparse, the messages' gettext and the parser are a fiftieth of ``validate``'s
    time); None for any other command line, which the parser reads."""
    if len(given) == 2 and given[0] == "validate" and isinstance(given[1], str) \
            and not given[1].startswith("-"):
        from types import SimpleNamespace

        return SimpleNamespace(command="validate", plan=given[1], func=cmd_validate)
    return None


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; return the exit status."""
    given = sys.argv[1:] if argv is None else list(argv)
    args = _validate_only(given)
    if args is None:
        parser = build_parser(given[0] if given else None)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
    from ._startup import Terminated, clean_exit_on_signals, resume_collector

    # validate's few objects wait for the process's end; run and stream get the collector
    # back once their plan is compiled (their modules imported)
    if args.func not in (cmd_validate, cmd_run) and getattr(args, "command", None) != "stream":
        resume_collector()
    stream = out if out is not None else sys.stdout
    try:
        with clean_exit_on_signals():  # SIGTERM cleans up as Ctrl-C does
            code: int = args.func(args, stream)
    except (PlanError, UsageError, StateError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    except IncentivesError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_RECORDS
    except UnicodeEncodeError as exc:  # PYTHONIOENCODING=ascii, a terminal that cannot
        sys.stderr.write(f"error: the output holds {exc.object[exc.start:exc.end]!r}, "
                         f"which standard output ({exc.encoding}) cannot show: give --out "
                         "FILE (written in UTF-8), or set PYTHONIOENCODING=utf-8\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Terminated:
        sys.stderr.write("terminated\n")
        return 143
    except OSError as exc:  # a file that cannot be read or written, found late
        name = exc.filename2 or exc.filename  # os.replace: the file being replaced
        where = f"{name}: " if name else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
        return EXIT_USAGE
    return code


def entry() -> None:  # pragma: no cover - console script
    code = main()
    from ._startup import freeze_before_exit

    freeze_before_exit()
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
