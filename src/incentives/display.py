"""Text for a terminal: display width (CJK characters take two columns) and the terminal's width.

One helper for every table and statement the library prints:

>>> width("通信费 fee")
10
>>> width("e\\u0301")  # a combining accent takes no column
1
"""

from __future__ import annotations

import shutil
import unicodedata

from wcwidth import wcwidth

__all__ = ["FONT_STACK", "clean", "terminal_width", "width", "wrap"]

#: The CSS font stack of every HTML page (statements, the simulation report): fonts
#: for Latin and Chinese text alike, on every common system.
FONT_STACK = ('system-ui, -apple-system, "Segoe UI", "PingFang SC", "Hiragino Sans GB", '
              '"Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", '
              '"WenQuanYi Micro Hei", sans-serif')

#: the width a table fits when the terminal's width is unknown (output to a file or a pipe)
DEFAULT_WIDTH = 80


def width(text: str) -> int:
    """The number of terminal columns ``text`` takes: wide (CJK) characters 2, combining
    marks 0, others 1 (a control character, which :func:`clean` shows escaped, counts 1)."""
    total = 0
    for ch in text:
        w = wcwidth(ch)
        total += 1 if w < 0 else w
    return total


def clean(text: str) -> str:
    """``text`` with control characters (tabs, newlines, escapes) shown as ``\\xNN``, so a
    cell cannot break a table's lines or drive the terminal."""
    if text.isprintable():
        return text
    return "".join(f"\\x{ord(ch):02x}" if unicodedata.category(ch) == "Cc" else ch
                   for ch in text)


def cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` columns, ending in ``…`` when it was cut.

    >>> cut("张三丰-0001", 7), cut("short", 7)
    ('张三丰…', 'short')
    """
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def terminal_width(default: int = DEFAULT_WIDTH) -> int:
    """The terminal's width in columns: ``COLUMNS`` when it is set, else the terminal's own,
    else ``default`` (at least 20)."""
    return max(20, shutil.get_terminal_size((default, 24)).columns)


def wrap(text: str, limit: int, *, indent: str = "    ") -> list[str]:
    """``text`` broken at spaces into lines of at most ``limit`` columns (continuation lines
    start with ``indent``); a word longer than a line stays whole.

    >>> wrap("  one two three", 10)
    ['  one two', '    three']
    """
    body = text.lstrip(" ")
    lead = text[:len(text) - len(body)]  # the first line keeps its own indent
    words = body.split(" ")
    lines: list[str] = []
    current = lead
    for word in words:
        candidate = f"{current} {word}" if current.strip() else current + word
        if current.strip() and width(candidate) > limit:
            lines.append(current)
            current = indent + word
        else:
            current = candidate
    lines.append(current)
    return [line.rstrip() for line in lines]
