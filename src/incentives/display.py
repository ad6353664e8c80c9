"""Text for a terminal: display width (CJK characters take two columns), the terminal's
width, and the one text-table renderer.

One width helper for every table and statement the library prints:

>>> width("通信费 fee")
10
>>> width("e\\u0301")  # a combining accent takes no column
1

and one table renderer (:func:`table`, built on :func:`row`) for the run table
(``incentives run --format table``), the simulation's headline figures and the
statement's text lines:

>>> print("\\n".join(table([["payee", "total"]], [["张三", "1,400.00"], ["bo", "5.00"]],
...                         right=[False, True])))
payee     total
-----  --------
张三   1,400.00
bo         5.00
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Sequence

from wcwidth import wcwidth

__all__ = ["FONT_STACK", "clean", "cut", "pad", "row", "rule", "table", "terminal_width",
           "width", "widths", "wrap"]

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


# ------------------------------------------------------------------ text tables
#: the space between two columns of a text table
GAP = "  "


def pad(text: str, size: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``size`` display columns: on the right (left-aligned
    text), or on the left when ``right`` (numbers). Text already wider stays whole.

    >>> pad("张三", 6) + "|", pad("5.00", 6, right=True)
    ('张三  |', '  5.00')
    """
    fill = " " * max(0, size - width(text))
    return fill + text if right else text + fill


def widths(rows: Sequence[Sequence[str]]) -> list[int]:
    """The display width of each column of ``rows``: its widest cell."""
    out: list[int] = []
    for cells in rows:
        for i, cell in enumerate(cells):
            w = width(cell)
            if i == len(out):
                out.append(w)
            elif w > out[i]:
                out[i] = w
    return out


def row(cells: Sequence[str], sizes: Sequence[int], right: Sequence[bool], *,
        gap: str = GAP) -> str:
    """One line of a text table: each cell padded to its column's display width
    (right-aligned where ``right``), joined by ``gap``, with no trailing spaces.

    >>> row(["1. fee", "60.00"], [6, 12], [False, True])
    '1. fee         60.00'
    """
    return gap.join(pad(c, w, right=r)
                    for c, w, r in zip(cells, sizes, right, strict=True)).rstrip()


def rule(sizes: Sequence[int], *, gap: str = GAP, char: str = "-") -> str:
    """The line under a table's header: ``char`` across each column."""
    return gap.join(char * w for w in sizes)


def table(head: Sequence[Sequence[str]], body: Sequence[Sequence[str]], *,
          right: Sequence[bool], head_right: Sequence[bool] | None = None,
          sizes: Sequence[int] | None = None, gap: str = GAP,
          underline: bool = True) -> list[str]:
    """A text table's lines: the ``head`` rows (a column's header may take several), a
    rule under them (``underline``), then the ``body`` rows. Columns are as wide as
    their widest cell in display columns (``sizes`` gives them instead); ``right``
    aligns a column's body cells right (numbers), ``head_right`` its header cells
    (default: as ``right``)."""
    sizes = list(sizes) if sizes is not None else widths([*head, *body])
    lines = [row(cells, sizes, right if head_right is None else head_right, gap=gap)
             for cells in head]
    if underline:
        lines.append(rule(sizes, gap=gap))
    lines += [row(cells, sizes, right, gap=gap) for cells in body]
    return lines


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]{}<>|#])")


def markdown_text(text: str) -> str:
    r"""``text`` for a Markdown page, every character Markdown (or HTML inside it) would
    read as markup escaped: it shows as written, never as a link, a tag or a table cell
    boundary.

    >>> print(markdown_text("<script>|*x*"))
    \<script\>\|\*x\*
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


_MARKUP_START = re.compile(r"([\\`*<>|\[\]])")


def markdown_plain(text: str) -> str:
    r"""``text`` for a Markdown report line or table cell: what could start markup there
    (an HTML tag, a link, code, ``*`` emphasis, a cell boundary) is escaped, and the rest
    (``_`` inside names such as ``total_cost``, ``#`` after a line's start) is left as
    written, so ordinary names keep their bytes.

    >>> print(markdown_plain("<script>|cost_per_revenue"))
    \<script\>\|cost_per_revenue
    """
    return _MARKUP_START.sub(r"\\\1", text)


def markdown_fence(lines: list[str]) -> str:
    """A code fence for ``lines``: longer than any run of backticks they hold."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)
