"""Ctrl-C or SIGTERM while the command line is starting.

Importing the library takes a few tenths of a second; a Ctrl-C then used to end
in a ``KeyboardInterrupt`` traceback (and a SIGTERM in death by the signal).
When the package is started as the command line (``python -m incentives`` or
the ``incentives`` script), :func:`guard` makes either signal end the process
at once with the command line's statuses (130, 143) and one line on stderr:
nothing has been written yet. :func:`release` gives the signals back when the
command takes them over (see :func:`incentives.ledger_cli.clean_exit_on_signals`).
Imported as a library, nothing is changed. The package imports this module
first, so the guard is in place while the rest is imported.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
from types import FrameType
from typing import Any

_saved: dict[int, Any] = {}


def _quit(signum: int, frame: FrameType | None) -> None:
    interrupted = signum == signal.SIGINT
    os.write(2, b"interrupted\n" if interrupted else b"terminated\n")
    os._exit(130 if interrupted else 143)


def started_as_command() -> bool:
    """Whether this process is the command line (``python -m incentives``, whose
    ``sys.argv[0]`` is ``-m`` while the package is imported, or the script)."""
    first = sys.argv[0] if getattr(sys, "argv", None) else ""
    if os.path.basename(first) in ("incentives", "incentives.exe", "incentives-script.py"):
        return True
    # ``python -m incentives`` itself, not another module run with -m that imports the
    # package (``python -m payroll_app``, ``python -m incentives.docgen``)
    original = list(getattr(sys, "orig_argv", []))
    return first == "-m" and any(
        a == "-m" and b == "incentives" for a, b in itertools.pairwise(original))


def guard() -> None:
    """End the process quietly on SIGINT or SIGTERM until :func:`release` (only
    when started as the command line, and only for signals left at their default)."""
    if not started_as_command():
        return
    try:
        for s, default in ((signal.SIGINT, signal.default_int_handler),
                           (signal.SIGTERM, signal.SIG_DFL)):
            if signal.getsignal(s) is default:
                signal.signal(s, _quit)
                _saved[s] = default
    except ValueError:  # pragma: no cover - not the main thread
        pass


def release() -> None:
    """Give back the signals :func:`guard` took."""
    for s, handler in _saved.items():
        if signal.getsignal(s) is _quit:
            signal.signal(s, handler)
    _saved.clear()


guard()
