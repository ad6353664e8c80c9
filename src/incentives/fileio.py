"""Writing files atomically: a failed or interrupted write leaves no partial file.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.json"
>>> atomic_write(target, "{}\\n")
>>> target.read_text()
'{}\\n'
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .errors import UsageError

__all__ = [
    "DEFAULT_WAIT",
    "MAX_FILE_BYTES",
    "add_file_options",
    "add_transaction_options",
    "atomic_open",
    "atomic_write",
    "file_options",
    "quote",
    "size_option",
]

#: The most bytes read from a records source that is not a regular file (a FIFO, a
#: device, a pipe), unless told otherwise (``max_bytes``, ``--max-bytes``). A regular
#: file is read whole, whatever its size (``stream`` exists for large ones), and may
#: grow by at most this much while it is read. (Also ``incentives.records.MAX_FILE_BYTES``.)
MAX_FILE_BYTES = 1 << 28
#: The longest text a record or a transaction may hold in one field (payee, group, a text
#: attribute, an id...). (Also ``incentives.records.MAX_TEXT_FIELD``.)
MAX_TEXT_FIELD = 1000
#: How many seconds a run waits while another holds the state file's lock
#: (``--wait``; also ``incentives.ledger.DEFAULT_WAIT``).
DEFAULT_WAIT = 10.0


#: Temporary files of a write in progress are named ``.NAME.incentives-tmp-PID-XXXXXXXX.tmp``,
#: next to the file NAME they will replace (PID: the process writing them).
TEMP_TAG = ".incentives-tmp-"


def _temp_prefix(target: Path) -> str:
    return f".{target.name}{TEMP_TAG}"


def umask() -> int:
    """This process's umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode of a file this process creates: ``0o666`` less the umask (as ``open`` gives).

    >>> new_file_mode() == 0o666 & ~umask()
    True
    """
    return 0o666 & ~umask()


def try_lock(fd: int, *, shared: bool = False) -> bool:
    """Take an advisory lock on ``fd`` without waiting; whether it was taken."""
    if sys.platform == "win32":  # pragma: no cover - no flock there: process ids decide
        return True
    import fcntl

    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine, as this process sees it)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, under another account (or we cannot tell: keep it)
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and only waits for its parent to collect its status
    (a killed run whose parent has not yet waited for it: it writes nothing more)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat_line = handle.read()
    except OSError:
        return False  # no /proc (or it has just gone): judged by os.kill alone
    # "PID (NAME) STATE ...": NAME may hold spaces and parentheses, so read after the last ")"
    fields = stat_line[stat_line.rfind(b")") + 1:].split()
    return bool(fields) and fields[0] in (b"Z", b"X")


def _writer_pid(name: str, prefix: str) -> int:
    head = name[len(prefix):].split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def path_in_use(path: str | os.PathLike[str], pid: int) -> bool:
    """Whether the temporary file or folder ``path`` of process ``pid`` is still being written:
    its writer holds a lock on it (or on its ``.lock``), or the process still runs."""
    if process_alive(pid):
        return True
    lock_path = os.path.join(path, ".lock") if os.path.isdir(path) else os.fspath(path)
    try:  # not blocking: a FIFO put in its place would wait for a writer forever
        fd = os.open(lock_path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # not a file this library wrote (a FIFO, a device)
        return not try_lock(fd, shared=True)
    finally:
        os.close(fd)


def names_starting(folder: str | os.PathLike[str], prefix: str) -> list[str]:
    """The names in ``folder`` that start with ``prefix``, sorted (none if it cannot be read)."""
    try:
        return sorted(name for name in os.listdir(folder) if name.startswith(prefix))
    except OSError:
        return []


def clean_leftovers(path: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files that interrupted writes of ``path`` left next to it.

    A run killed while writing ``path`` (``kill -9``, a power cut) leaves its
    temporary file ``.NAME.incentives-tmp-PID-....tmp`` (the old ``path`` stays
    whole). This removes each one whose writer is gone and returns one note per
    file found: removed, or left in place because its writer still runs.
    """
    target = Path(path)
    folder = target.parent
    prefix = _temp_prefix(target)
    notes = []
    for name in names_starting(folder, prefix):
        if not name.endswith(".tmp"):
            continue
        leftover = folder / name
        pid = _writer_pid(name, prefix)
        if path_in_use(leftover, pid):
            notes.append(f"{leftover}: a temporary file of process {pid}, which is still "
                         f"writing {target}; left in place")
            continue
        try:
            leftover.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            notes.append(f"{leftover}: a temporary file left by an interrupted run (process "
                         f"{pid}); could not be removed: {exc.strerror or exc}")
        else:
            notes.append(f"{leftover}: removed, a temporary file left by an interrupted run "
                         f"(process {pid}) writing {target}")
    return notes


def check_output(path: str | os.PathLike[str], option: str) -> None:
    """Refuse an output file that cannot be written, before any work is done.

    :class:`~incentives.UsageError` when its folder does not exist, when it is a
    folder or not a regular file (a device, a pipe), or when it exists and is
    read-only (it is never replaced behind its owner's back).
    """
    target = Path(path)
    folder = target.parent
    where = f"{option} {path}"
    if not folder.exists():
        raise UsageError(f"{where}: the folder {folder} does not exist (create it first)")
    if not folder.is_dir():
        raise UsageError(f"{where}: {folder} is not a folder")
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UsageError(f"{where}: cannot use this file: {exc.strerror or exc}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{where}: is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{where}: not a regular file (a device or a pipe); it is "
                             "replaced whole when the output is complete, so give a file")
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise UsageError(f"{where}: the file is read-only; refusing to replace it "
                             "(make it writable, or give another file)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{where}: cannot write in the folder {folder}")


class StagedFile:
    """A new version of ``path``, written to a temporary file next to it, that replaces
    ``path`` only when :meth:`commit` is called.

    The temporary file is named ``.NAME.incentives-tmp-PID-XXXXXXXX.tmp`` and is
    locked while it is open, so :func:`clean_leftovers` can tell the file of a
    live writer from the leftover of a killed one. The new file keeps the mode
    (and, where allowed, the owner) of the file it replaces; a new file gets
    ``0o666`` less the umask, as any file this process creates would.
    """

    def __init__(self, path: str | os.PathLike[str], *, encoding: str = "utf-8",
                 temp_for: str | os.PathLike[str] | None = None) -> None:
        self.target = Path(path)
        folder = self.target.parent
        # named as a temporary file of ``temp_for`` (a file in the same folder written
        # with it): clean_leftovers(temp_for) then removes it too
        named = Path(temp_for) if temp_for is not None else self.target
        import tempfile  # (only a command that writes a file needs it)

        try:
            fd, self.tmp = tempfile.mkstemp(
                prefix=f"{_temp_prefix(named)}{os.getpid()}-", suffix=".tmp", dir=folder)
        except OSError as exc:
            why = "the folder does not exist" if not folder.is_dir() else exc.strerror or exc
            raise UsageError(f"{path}: cannot write this file: {why}") from None
        try_lock(fd)
        try:
            self.handle: TextIO = os.fdopen(fd, "w", encoding=encoding, newline="")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            raise
        self._finished = False

    @property
    def binary(self) -> BinaryIO:
        """The file for bytes (a Parquet writer, a zip archive): write either text to
        :attr:`handle` or bytes here, never both."""
        return self.handle.buffer

    def finish(self) -> None:
        """Flush the text to disk and give the file its final mode (not yet in place)."""
        if self._finished:
            return
        self.handle.flush()
        fd = self.handle.fileno()
        try:
            old = os.stat(self.target)
        except OSError:
            os.fchmod(fd, new_file_mode())
        else:
            if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):
                    os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
        os.fsync(fd)
        self._finished = True

    def commit(self) -> None:
        """Replace the target with the finished file (one rename: never half of it)."""
        self.finish()
        os.replace(self.tmp, self.target)
        self.handle.close()  # closed after the rename: the lock holds until it is in place

    def discard(self) -> None:
        """Remove the temporary file; the target stays as it was."""
        with contextlib.suppress(OSError, ValueError):
            self.handle.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


class StagedFiles:
    """Files written together: each to a :class:`StagedFile`; when the ``with`` block ends
    without an error, all replace their targets, one rename after another, in the order
    they were opened; on any error (or an interrupt) none does.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with StagedFiles() as files:
    ...     files.write(folder / "out.json", "{}\\n")
    ...     files.write(folder / "state.json", "[]\\n")
    >>> sorted(p.name for p in folder.iterdir())
    ['out.json', 'state.json']
    """

    def __init__(self) -> None:
        self.staged: list[StagedFile] = []

    def open(self, path: str | os.PathLike[str], *, encoding: str = "utf-8",
             temp_for: str | os.PathLike[str] | None = None) -> TextIO:
        staged = StagedFile(path, encoding=encoding, temp_for=temp_for)
        self.staged.append(staged)
        return staged.handle

    def write(self, path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
        self.open(path, encoding=encoding).write(text)

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def commit(self) -> None:
        """Finish every file, then replace each target in the order they were opened
        (what the ``with`` block does when it ends without an error). On an error
        the files not yet in place are removed."""
        try:
            for staged in self.staged:
                staged.finish()
            while self.staged:
                self.staged[0].commit()
                self.staged.pop(0)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Remove the temporary files not yet in place; their targets stay as they were."""
        for staged in self.staged:
            staged.discard()
        self.staged.clear()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> Iterator[TextIO]:
    """Open ``path`` for writing so that it appears only once complete.

    Text goes to a temporary file in the same folder (a :class:`StagedFile`),
    which replaces ``path`` when the ``with`` block ends without an error; on
    any error (or an interrupt) the temporary file is removed and the old file
    stays whole.
    """
    with StagedFiles() as files:
        yield files.open(path, encoding=encoding)


def atomic_write(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder, then rename.

    The old file (if any) stays whole until the new one is complete.
    """
    with atomic_open(path, encoding=encoding) as handle:
        handle.write(text)


def read_bytes_capped(path: str | os.PathLike[str], limit: int, what: str, *,
                      error: Callable[[str], Exception] | None = None) -> bytes:
    """The bytes of the file ``path``, which may hold at most ``limit`` of them.

    A file holding more (a device such as ``/dev/zero``, a FIFO whose writer never
    stops, a file far too large) is refused once ``limit + 1`` bytes are read,
    never read to its end: ``error(message)`` is raised (a :class:`UsageError` by
    default), the message naming ``what`` and the limit. ``OSError`` passes as is.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = p.write_bytes(b"12345")
    >>> read_bytes_capped(p, 5, "the file")
    b'12345'
    >>> read_bytes_capped(p, 4, "the file")
    Traceback (most recent call last):
    ...
    incentives.errors.UsageError: the file is larger than 4 bytes, the most it may hold
    """
    with open(path, "rb") as handle:
        try:
            info = os.fstat(handle.fileno())
        except OSError:
            info = None
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_size > limit:
            data, too_large = b"", True  # known too large: nothing is read
        else:
            data = handle.read(limit + 1)
            too_large = len(data) > limit
    if too_large:
        message = f"{what} is larger than {limit:,} bytes, the most it may hold"
        if error is None:
            from .errors import UsageError

            raise UsageError(message)
        raise error(message)
    return data


def read_text_capped(path: str | os.PathLike[str], limit: int, what: str, *,
                     encoding: str = "utf-8",
                     error: Callable[[str], Exception] | None = None) -> str:
    """:func:`read_bytes_capped`, decoded (``UnicodeDecodeError`` passes as is)."""
    return read_bytes_capped(path, limit, what, error=error).decode(encoding)


# ---------------------------------------------------------------------- command-line options
# How a records file is read, as the command line's subcommands take it. They live
# here, not in incentives.records, so that building the parser (``incentives --help``)
# imports nothing of the engine; ``incentives.records`` re-exports them
# (``incentives.transactions`` re-exports :func:`add_transaction_options`).


def add_file_options(parser: Any) -> None:
    """Add ``--encoding`` and ``--delimiter`` (how a records file is read) to a
    command's argparse parser."""
    parser.add_argument("--encoding",
                        help="the records file's text encoding (e.g. gb18030, utf-16, cp1252); "
                             "default: UTF-8, UTF-16 by its byte-order mark, or detected")
    parser.add_argument("--delimiter",
                        help="a CSV file's delimiter: one character, or comma, semicolon, "
                             "tab, pipe; default: sniffed from the header")
    parser.add_argument("--max-bytes", type=size_option, metavar="SIZE",
                        help=f"the most bytes read from the records, in bytes or with K, M, "
                             f"G (default: a file's size; {MAX_FILE_BYTES >> 20}M from a pipe "
                             "or a device)")


def add_transaction_options(parser: Any) -> None:
    """Add ``--transactions``, ``--hierarchy`` and ``--table`` to a command's parser."""
    parser.add_argument("--transactions", action="append", metavar="[KIND=]FILE", default=[],
                        help="transactions: .json, .jsonl or .csv, each row with its 'kind' "
                             "(or all of KIND); may be given several times")
    parser.add_argument("--hierarchy", metavar="FILE",
                        help="who manages whom, for roll-up rules: rows of payee, manager, "
                             "from, to")
    parser.add_argument("--table", action="append", metavar="NAME=FILE", default=[],
                        help="an assignment table (rows of key, payee, share, from, to) or a "
                             "classification table (rows of key, value); may be repeated")


def file_options(args: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`incentives.records.iter_raw_records` given on a command line
    (see :func:`add_file_options`)."""
    options = {"encoding": getattr(args, "encoding", None),
               "delimiter": getattr(args, "delimiter", None)}
    if getattr(args, "max_bytes", None) is not None:
        options["max_bytes"] = args.max_bytes
    return options


def size_option(text: str) -> int:
    """A size in bytes, as ``--max-bytes`` takes it: ``1000000``, ``512K``, ``300M``, ``2G``."""
    import argparse

    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    match = re.fullmatch(r"\s*(\d{1,15})\s*([KMG]?)(?:I?B)?\s*", text, re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a size such as 300M or 2G")
    return int(match[1]) * units[match[2].upper()]


def quote(value: object, limit: int = 40) -> str:
    """``value`` as a safe, short Python literal for a message: control characters
    escaped, at most ``limit`` characters of it, then ``…``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        return repr(text[:limit]) + "…"
    return repr(text)
