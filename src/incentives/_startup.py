"""Ctrl-C or SIGTERM while the command line is starting.

Importing the library takes a few tenths of a second; a Ctrl-C then used to end
in a ``KeyboardInterrupt`` traceback (and a SIGTERM in death by the signal).
When the package is started as the command line (``python -m incentives`` or
the ``incentives`` script), :func:`guard` makes either signal end the process
at once with the command line's statuses (130, 143) and one line on stderr:
nothing has been written yet. :func:`release` gives the signals back when the
command takes them over (:func:`clean_exit_on_signals`, here so that a command that
needs nothing else of :mod:`incentives.ledger_cli` does not import it).
Imported as a library, nothing is changed. The package imports this module
first, so the guard is in place while the rest is imported.
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import sys
from types import FrameType, ModuleType, TracebackType
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


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that a run cleans up as on Ctrl-C."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while a command runs: a ``KeyboardInterrupt`` (``except KeyboardInterrupt``
    catches it), but not that class itself.

    CPython marks a ``KeyboardInterrupt`` that leaves code compiled from a string
    (``exec``/``eval`` of text, as :mod:`dataclasses` and ``namedtuple`` build their
    methods while a module is imported) as unhandled, even when a caller then
    handles it, and at exit kills the process with SIGINT: the run cleaned up and
    said "interrupted", then died by the signal instead of exiting 130. The mark is
    made for that exact class only, so the handler raises this subclass."""


class clean_exit_on_signals:  # (a class used as a function: with clean_exit_on_signals())
    """While the block runs, SIGTERM raises :class:`Terminated` and SIGINT
    :class:`Interrupted` (a ``KeyboardInterrupt``), so temporary files and locks are
    let go; further signals are ignored while that cleaning runs.

    The exception is raised wherever the block is when the signal comes, which may
    be inside Python's own machinery: a class being made while a module is imported
    (Python 3.11 turns an exception from a ``__set_name__`` into a ``RuntimeError``).
    So an exception that leaves the block after one of these signals came is
    replaced by the signal's own: the command says "interrupted" (130) or
    "terminated" (143) whatever the signal's exception became on its way up.

    Off the main thread (where signals cannot be handled) it does nothing."""

    def __init__(self) -> None:
        self.came: list[int] = []
        self.old: dict[int, Any] = {}
        self.installed: list[int] = []

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.came.append(signum)
        if signum == signal.SIGINT:
            raise Interrupted  # not KeyboardInterrupt itself: see Interrupted
        raise Terminated

    def __enter__(self) -> None:
        threading = sys.modules.get("threading")  # not imported for this alone: signal.signal
        if threading is not None and (  # says it, below, off the main thread
                threading.current_thread() is not threading.main_thread()):
            return
        try:
            release()  # the start-up guard hands the signals over
            self.old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            for s in self.old:
                if s == signal.SIGINT and self.old[s] is not signal.default_int_handler:
                    continue  # SIGINT ignored (a background job) or handled by the caller
                signal.signal(s, self._stop)
                self.installed.append(s)
        except ValueError:  # not the main thread: signals are not this thread's to handle
            self._restore()

    def _restore(self) -> None:
        for s in self.installed:
            signal.signal(s, self.old[s])
        self.installed.clear()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if isinstance(exc, Exception) and self.came:
                if self.came[0] == signal.SIGINT:
                    raise Interrupted from exc
                raise Terminated from exc
        finally:
            self._restore()


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
    a command that does more work gets it back from :func:`resume_collector` (``run``
    and ``stream`` once their plan is compiled, the others before they start)."""
    if gc.isenabled():
        gc.disable()
        _paused.append(True)


def resume_collector() -> None:
    """Give the collector back if :func:`pause_collector` held it. What was made
    meanwhile (the modules, the plan: long-lived) is handed to the collector's oldest
    generation, as :func:`incentives.runtime.paused_gc` does, rather than left in the
    youngest, where the collector would walk all of it once as young objects, then
    again as middle-aged ones (unless the process froze objects itself)."""
    if _paused:
        _paused.clear()
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
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
