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
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_open", "atomic_write"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, encoding: str = "utf-8") -> Iterator[TextIO]:
    """Open ``path`` for writing so that it appears only once complete.

    Text goes to a temporary file in the same folder, which replaces ``path``
    when the ``with`` block ends without an error; on any error (or an
    interrupt) the temporary file is removed and the old file stays whole.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
