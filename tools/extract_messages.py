"""Write the catalogue template ``src/incentives/locale/incentives.pot`` (a ``pybabel extract``).

    python tools/extract_messages.py          # write the template
    python tools/extract_messages.py --check  # exit 1 when the committed one is out of date

The template is what a translator starts a language from (see docs/statements.md,
"Languages and translations"). Its messages are:

- every phrase the sources look up: the first argument, a string literal, of a call to
  one of ``KEYWORDS`` (``c.t("slice {lo} to {hi}", ...)``, ``N_("marginal (...)")``),
  found by Babel's extraction with an ``ast`` method (Babel's own ``python`` method does
  not see a call nested in another call's arguments, such as ``c.t("a {b}", b=g(c.t("c")))``);
- every message of the English catalogue, with its context: the free-text sentences
  (msgctxt "free text") and tie rules (msgctxt "tie rule") match text the code makes,
  so no call names them.

Locations are file names without line numbers, and the header carries no date, so the
output changes only when the messages do.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "incentives"
TEMPLATE = PACKAGE / "locale" / "incentives.pot"
ENGLISH = PACKAGE / "locale" / "en" / "LC_MESSAGES" / "incentives.po"
HEADER = """\
# The phrases of incentives' statements: copy to <lang>/LC_MESSAGES/incentives.po and
# translate (docs/statements.md, "Languages and translations").
# Written by tools/extract_messages.py; do not edit."""
#: the functions whose first argument is a msgid
KEYWORDS: dict[str, Any] = {"t": None, "N_": None}


def extract_calls(fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
                  options: Mapping[str, Any]) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extraction method: calls ``name("literal", ...)`` or ``x.name("literal", ...)``."""
    tree = ast.parse(fileobj.read())
    for node in sorted(ast.walk(tree), key=lambda n: (getattr(n, "lineno", 0),
                                                     getattr(n, "col_offset", 0))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else None)
        first = node.args[0]
        if name in keywords and isinstance(first, ast.Constant) and isinstance(first.value, str):
            yield node.lineno, name, first.value, []


def extracted(package: Path = PACKAGE) -> list[tuple[str, str]]:
    """``(msgid, file)`` of every phrase the sources look up, in file order."""
    found = []
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(package), method_map=[("**.py", extract_calls)], keywords=KEYWORDS):
        found.append((str(message), f"incentives/{filename}"))
    return found


def template() -> bytes:
    """The template's text."""
    catalog = Catalog(project="incentives", version="0.1.0", domain="incentives",
                      header_comment=HEADER, charset="utf-8", fuzzy=False)
    for msgid, where in extracted():
        catalog.add(msgid, locations=[(where, None)])
    with ENGLISH.open("rb") as f:
        english = read_po(f)
    for message in english:
        if message.id and (message.id, message.context) not in {(m.id, m.context) for m in catalog}:
            catalog.add(message.id, context=message.context)
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, include_lineno=False)
    text = buf.getvalue().decode("utf-8")
    lines = [line for line in text.split("\n")
             if not line.startswith(('"POT-Creation-Date:', '"PO-Revision-Date:',
                                     '"Report-Msgid-Bugs-To:', '"Generated-By:'))]
    return "\n".join(lines).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when the committed template is out of date")
    args = parser.parse_args(argv)
    wanted = template()
    if args.check:
        if not TEMPLATE.is_file() or TEMPLATE.read_bytes() != wanted:
            print(f"{TEMPLATE.relative_to(ROOT)} is out of date: run python "
                  "tools/extract_messages.py", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_bytes(wanted)
    print(f"wrote {TEMPLATE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
