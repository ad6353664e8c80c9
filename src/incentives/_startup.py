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

import gc
import itertools
import os
import signal
import sys
from types import FrameType, ModuleType
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


#: pydantic's plugin loader, stood in for by :func:`skip_plugin_search`
_LOADER = "pydantic.plugin._loader"


def _declares_no_pydantic_plugin() -> bool:
    """Whether no installed distribution declares a pydantic plugin: no
    ``entry_points.txt`` of a ``*.dist-info`` or ``*.egg-info`` folder on ``sys.path``
    names the ``[pydantic]`` group. ``False`` whenever that cannot be told from the
    folders alone (a zip on ``sys.path``, a finder that lists distributions of its own)."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is not None and finder is not PathFinder:
            return False
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return False  # a zip file, an egg: distributions inside it
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            return False
        for name in names:
            if not name.lower().endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), "rb") as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            except OSError:
                return False
            if b"pydantic" in text and any(  # a [pydantic] section, as importlib.metadata
                    line.startswith(b"[") and line.endswith(b"]")  # reads one
                    and line.strip(b"[]") == b"pydantic"
                    for line in map(bytes.strip, text.splitlines())):
                return False
    return True


def skip_plugin_search() -> None:
    """When no installed distribution declares a pydantic plugin, stand in for
    pydantic's plugin loader with one that finds none, as the real one would: the
    real one imports ``importlib.metadata`` (and ``email``, ``zipfile``...) and reads
    every distribution's entry points the first time a model is built, a tenth of
    ``incentives validate``'s time. Only in the command line's own process, and only
    before pydantic loaded its loader."""
    if _LOADER in sys.modules or not _declares_no_pydantic_plugin():
        return
    loader = ModuleType(_LOADER, "pydantic's plugin loader, standing in: no plugin is "
                                 "installed (see incentives._startup.skip_plugin_search)")

    def get_plugins() -> tuple[()]:
        return ()

    loader.get_plugins = get_plugins  # type: ignore[attr-defined]
    sys.modules[_LOADER] = loader


_paused: list[bool] = []


def pause_collector() -> None:
    """Hold the cyclic garbage collector while the command line imports its modules and
    validates its plan (thousands of objects made, none of them garbage): its passes
    are a sixth of ``incentives validate``'s time. Only in the command line's process;
    a command that does more work gets it back from :func:`resume_collector`."""
    if gc.isenabled():
        gc.disable()
        _paused.append(True)


def resume_collector() -> None:
    """Give the collector back if :func:`pause_collector` held it."""
    if _paused:
        _paused.clear()
        gc.enable()


def freeze_before_exit() -> None:
    """At the end of a command that ran with the collector held (``validate``): the
    objects left are moved out of the collector's way, so that the interpreter's last
    collection does not walk them all again as the process ends."""
    if _paused:
        gc.freeze()


guard()
if started_as_command():
    pause_collector()
    skip_plugin_search()
