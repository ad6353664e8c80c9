"""``incentives correct``, and what every command that keeps a state file shares.

``incentives correct PLAN CORRECTED_RECORDS --paid PAID.json [--opening OPENING_STATE]
--state STATE`` evaluates the corrected records again from the state that opened
their period, compares them with what was paid (the JSON output of ``incentives
run``), and writes the differences into STATE (atomically), where the next
``incentives run ... --state STATE`` pays them as ``adjustment`` lines. Without
``--opening`` the corrected periods are opened from an empty state: that is
how the first period a state closed is corrected.

Exit status: 0 ok (the adjustments are listed); 1 a corrected record failed
(nothing is written); 2 the plan, a state file, the paid file or the command
line is wrong, or another run holds the state file (nothing is written).

``run``, ``stream`` and ``correct`` share the handling of ``--state``: the file
is locked (``STATE.lock``) from reading it to replacing it, so runs on one
state file take turns (``--wait``); periods close in order (``--allow-gap``);
output files are checked before any work and written together at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._startup import Interrupted, Terminated, clean_exit_on_signals
from .errors import StateError, UsageError

if TYPE_CHECKING:
    from .ledger import State
    from .plan import Plan

__all__ = ["Interrupted", "Terminated", "add_state_options", "check_outputs",
           "clean_exit_on_signals", "register"]

#: The longest ``--wait`` accepted (a day).
MAX_WAIT = 86400.0


#: A number of seconds as people write it: ASCII digits, no separators (``1_0``) and
#: no other digits (``٣``), which ``float`` would take.
_SECONDS = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _seconds(text: str) -> float:
    try:
        if not _SECONDS.fullmatch(text.strip()):
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_WAIT:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a number of seconds from 0 to {MAX_WAIT:g}")
    return value


def add_state_options(p: argparse.ArgumentParser, *, required: bool = False,
                      gaps: bool = True, help: str | None = None) -> None:
    """Add ``--state``, ``--wait`` (and ``--allow-gap``) to a subcommand's parser."""
    from .fileio import DEFAULT_WAIT

    p.add_argument("--state", required=required,
                   help=help or "the state (ledger) file: read, then replaced with the new one "
                                "when every record was evaluated")
    p.add_argument("--wait", type=_seconds, default=DEFAULT_WAIT, metavar="SECONDS",
                   help="how long to wait while another run holds the state file "
                        f"(default {DEFAULT_WAIT:g}); then exit 2")
    if gaps:
        p.add_argument("--allow-gap", action="store_true",
                       help="accept a period that does not follow the last closed one "
                            "(e.g. 2026-07 after 2026-05); the gap is recorded in the state")


def check_outputs(args: argparse.Namespace, *options: str) -> None:
    """Refuse, before any work, output files (``--out``, ``--state``...) that cannot be
    written, and two options naming one file."""
    from .fileio import check_output

    inputs = {os.path.realpath(value): name for name in _INPUTS
              if isinstance(value := getattr(args, name, None), str) and value}
    state = getattr(args, "state", None)
    lock = f"{os.path.realpath(state)}.lock" if isinstance(state, str) and state else None
    seen: dict[str, str] = {}
    for option in options:
        attr = option.lstrip("-").replace("-", "_")
        value = getattr(args, attr, None)
        if value is None:
            continue
        if not value.strip():  # an unset variable ("--state $STATE"): never run without
            raise UsageError(f"{option} {value!r} names no file: give a file name")
        check_output(value, option)
        key = os.path.realpath(value)
        if key != os.path.abspath(value):  # a link: where it points must do too
            check_output(key, f"{option} {value} (a link to)")
        if key == lock:
            raise UsageError(f"{option} {value} is the lock file of the state file {state}: "
                             "give another file for the output")
        if option == "--state":
            _check_one_name(value, key)
        if key in seen:
            raise UsageError(f"{seen[key]} and {option} name the same file: {value}")
        if key in inputs:
            raise UsageError(f"{option} {value} is the {inputs[key]} file read by this "
                             "command: give another file for the output")
        seen[key] = option
        if key != os.path.abspath(value):
            # a link: the file it points to is locked, read and replaced, not the link
            setattr(args, attr, key)


def _check_one_name(value: str, path: str) -> None:
    """Refuse a state file with more than one name (hard links): a run replaces the file
    it names, so the other name would keep the old state, and a period run again there
    would be paid twice."""
    try:
        links = os.stat(path).st_nlink
    except OSError:
        return  # a new state file
    if links > 1:
        raise UsageError(
            f"--state {value}: the state file has {links} names (hard links); a run "
            "replaces the file it names, so the others would keep the old state and a "
            "period run on them would be paid again: keep one name (a symbolic link may "
            "point to it)")


#: The options naming files a command reads, which no output may replace.
_INPUTS = ("plan", "records", "population", "opening", "paid", "variant_file")


def report_leftovers(*paths: str | None) -> None:
    """Clean the temporary files interrupted runs left next to ``paths``; say so on stderr."""
    from .fileio import clean_leftovers

    for path in paths:
        if path:
            for note in clean_leftovers(path):
                sys.stderr.write(f"note: {note}\n")


@contextlib.contextmanager
def state_lock(args: argparse.Namespace) -> Iterator[None]:
    """Hold the lock of ``args.state`` (nothing without ``--state``)."""
    if not getattr(args, "state", None):
        yield
        return
    from .ledger import locked_state

    with locked_state(args.state, wait=args.wait):
        yield


def open_state(args: argparse.Namespace, plan: Plan) -> State:
    """The state in ``args.state`` (call it holding the lock), gaps refused unless
    ``--allow-gap``."""
    from .ledger import load_state_file

    state = load_state_file(args.state, plan)
    state.gaps = "allow" if getattr(args, "allow_gap", False) else "refuse"
    return state


# ---------------------------------------------------------------------- incentives correct


def register(sub: Any) -> None:
    """Add the ``correct`` subcommand to the ``incentives`` parser."""
    p = sub.add_parser("correct", help="post a correction of a closed period into the state, "
                                       "paid as adjustment lines in the next run")
    p.add_argument("plan", help="the plan file (YAML) the period was evaluated with")
    p.add_argument("records", help="the corrected records of the closed period(s)")
    p.add_argument("--paid", required=True,
                   help="what was paid: the JSON output of 'incentives run' for those periods")
    p.add_argument("--opening",
                   help="the state file those periods were opened with (read only); leave "
                        "it out to correct the first period the state closed")
    add_state_options(p, required=True, gaps=False,
                      help="the current state file: the adjustments are added to it")
    from .fileio import add_file_options

    add_file_options(p)
    p.set_defaults(func=cmd_correct)


def _paid(path: str) -> dict[str, Any]:
    from .ledger import amount_of

    try:
        from .fileio import MAX_FILE_BYTES, read_text_capped

        # numbers are kept as their text (amounts are decimal strings in a run's output)
        data = json.loads(read_text_capped(path, MAX_FILE_BYTES, "the paid run"),
                          parse_float=str, parse_int=str, parse_constant=str)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{path}: cannot read the paid run: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise UsageError(f"{path}: not the JSON output of 'incentives run' (no 'results')")
    for r in data["results"]:
        try:
            for line in r["lines"]:
                amount_of(line, "amount")
            str(r["payee"]), str(r["period"])
        except (KeyError, TypeError, ArithmeticError):
            raise UsageError(f"{path}: a result is missing payee, period or lines "
                             "with amounts") from None
        except ValueError as exc:
            raise UsageError(f"{path}: the paid amount of payee {str(r['payee'])[:40]!r}, "
                             f"period {str(r['period'])[:40]!r}: {exc}") from None
    return data


def _first_period_opening(plan: Plan, state: State, records: list[Any], state_path: str) -> State:
    """The opening state of a correction given without ``--opening``: an empty state,
    allowed only when the corrected periods start at the first one ``state`` closed."""
    from .ledger import State, period_key

    first = state.periods[0] if state.periods else None
    periods = sorted({str(r.get("period")) for r in records if isinstance(r, dict)
                      and r.get("period") is not None}, key=period_key)
    if first is None:
        raise StateError(f"{state_path}: no period is closed in this state, so there is "
                         "nothing to correct; run the period normally")
    if periods and periods[0] != first:
        raise UsageError(
            f"--opening is needed: period {periods[0]} was opened with the state closed by "
            f"the period before it, not an empty one; give --opening with the state file kept "
            f"from before its run (only {first}, the first period of {state_path}, can be "
            "corrected without --opening)")
    return State.empty(plan)


def cmd_correct(args: argparse.Namespace, out: TextIO) -> int:
    from .cli import EXIT_OK, EXIT_RECORDS
    from .fileio import StagedFiles, file_options
    from .ledger import ADJUSTMENTS, correct, load_state_file
    from .plan import load_plan
    from .records import MAX_ERRORS, iter_raw_records

    check_outputs(args, "--state")
    plan = load_plan(args.plan)
    if args.opening and not Path(args.opening).exists():
        raise StateError(f"{args.opening}: no such state file (the opening state is needed; "
                         "leave --opening out only to correct the first period)")
    plan.compile().reader.max_errors = MAX_ERRORS  # a file that is not records ends
    paid = _paid(args.paid)
    records = list(iter_raw_records(args.records, **file_options(args)))
    with state_lock(args):
        report_leftovers(args.state)
        state = load_state_file(args.state, plan)
        if args.opening:
            opening = load_state_file(args.opening, plan)
        else:
            opening = _first_period_opening(plan, state, records, args.state)
        check = plan.evaluate(records, errors="collect", state=opening)
        if check.errors:
            for e in check.errors:
                sys.stderr.write(f"error: {e}\n")
            sys.stderr.write(f"nothing written: {len(check.errors)} corrected record(s) "
                             "failed\n")
            return EXIT_RECORDS
        new = correct(plan, records, paid=paid, opening=opening, state=state)
        posted = []
        for payee in sorted(new.payees):
            before = len(state.payees.get(payee, {}).get(ADJUSTMENTS, []))
            for item in new.payees[payee].get(ADJUSTMENTS, [])[before:]:
                posted.append((payee, item))
        with StagedFiles() as files:
            files.write(args.state, new.to_json())
    if not posted:
        out.write("no differences: nothing to adjust\n")
    for payee, item in posted:
        out.write(f"{payee} {item['period']} {item['policy']}: paid {item['paid']}, "
                  f"corrected {item['corrected']}, adjustment {item['amount']}\n")
    return EXIT_OK
