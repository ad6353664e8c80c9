"""``incentives schema``: the JSON Schema of the plan format (see :mod:`incentives.docgen`)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from .fileio import atomic_write
from .ledger_cli import check_outputs

__all__ = ["cmd_schema", "register"]


def register(sub: Any) -> None:
    """Add ``incentives schema`` to the command line."""
    p = sub.add_parser("schema", help="print the JSON Schema of the plan format")
    p.add_argument("--out", help="write the schema to this file (atomically)")
    p.set_defaults(func=cmd_schema)


def cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    """``incentives schema``: print (or write with ``--out``) the JSON Schema of the plan format."""
    from .docgen import schema_json  # pydantic and every policy: not for ``--help``

    check_outputs(args, "--out")  # a read-only file, a missing folder: before any work
    text = schema_json()
    if args.out:
        atomic_write(args.out, text)
    else:
        out.write(text)
    return 0
