"""Pydantic's validation errors as located plan errors (:class:`~incentives.errors.PlanError`).

A plan loaded from YAML and a policy built in Python (``Tiered(id=..., ...)``)
report a bad value the same way: in words, with its path, line and policy.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import PlanError, did_you_mean
from ..money import short

if TYPE_CHECKING:
    from ..yamlio import LineMap

__all__ = ["plan_error"]

_BOUND_WORDS = {
    "greater_than_equal": "at least",
    "greater_than": "above",
    "less_than_equal": "at most",
    "less_than": "below",
}

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "date_type": "a date like 2026-05-01",
    "date_parsing": "a date like 2026-05-01",
    "date_from_datetime_parsing": "a date like 2026-05-01",
}


def _describe_input(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"{value}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (int, Decimal)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"{value[:40]!r}"
    return type(value).__name__


def _union_of(loc: list[str | int], ctx: dict[str, Any],
              policy_types: Any) -> tuple[str, list[str]]:
    """What a discriminated union at ``loc`` holds (a policy, a crediting rule) and its
    types."""
    if loc and loc[0] == "crediting":
        found = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        return "crediting rule", found or ["direct", "assignment", "roll_up"]
    return "policy", list(policy_types)


def plan_error(exc: ValidationError, data: Any, lines: LineMap, file: str | None) -> PlanError:
    """The first error of ``exc`` (pydantic's, validating ``data``) as a located :class:`PlanError`.

    ``lines`` maps a path in ``data`` to its line in ``file`` (empty when the data
    was built in Python): the error names the line of the deepest path it knows.
    """
    from . import POLICY_TYPES  # the package, fully loaded once a model validates
    err = exc.errors(include_url=False)[0]
    loc: list[str | int] = []
    node: Any = data
    policy: str | None = None
    for part in err["loc"]:
        if (isinstance(node, dict) and part not in node and isinstance(part, str)
                and (part in POLICY_TYPES or part == node.get("type") or "[" in part
                     or part.startswith("function-"))):
            continue  # pydantic's name for a union member, not a key of the data
        loc.append(part)
        if isinstance(node, dict) and isinstance(node.get("type"), str) and "id" in node:
            policy = short(node["id"]) if isinstance(node["id"], str) else None
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    if isinstance(node, dict) and isinstance(node.get("type"), str) and "id" in node:
        policy = short(node["id"]) if isinstance(node["id"], str) else None
    kind = err["type"]
    ctx = err.get("ctx") or {}
    message = err["msg"]
    suggestion = None
    if kind == "unknown_key":
        loc.append(short(ctx["key"]) if isinstance(ctx["key"], str) else ctx["key"])
        message = f"unknown key {short(str(ctx['key']))!r}"
        suggestion = ctx.get("hint")
    elif kind == "union_tag_invalid":
        tag = str(ctx.get("tag"))
        loc.append("type")
        what, types = _union_of(loc, ctx, POLICY_TYPES)
        message = f"unknown {what} type {short(tag)!r}"
        suggestion = did_you_mean(tag, types) or ("types: " + ", ".join(sorted(types)))
    elif kind == "union_tag_not_found":
        what, types = _union_of(loc, ctx, POLICY_TYPES)
        message = f"a {what} needs 'type:'"
        suggestion = "types: " + ", ".join(sorted(types))
    elif kind == "missing":
        message = f"missing required key {loc[-1]!r}" if loc else "missing a required key"
    elif kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = err.get("input")
        message = (f"{short(got) if isinstance(got, str) else got!r} is not one of "
                   f"{', '.join(expected)}" if expected else message)
        suggestion = did_you_mean(str(got), expected) if expected else None
    elif kind == "string_pattern_mismatch":
        message = (f"{short(str(err.get('input')))!r} is not a valid name: a name starts "
                   "with a letter "
                   "and holds letters, digits and '_'")
    elif kind in _BOUND_WORDS:
        bound = next(iter(ctx.values()), "?") if ctx else "?"
        message = f"must be {_BOUND_WORDS[kind]} {bound}, not {_describe_input(err.get('input'))}"
    elif kind == "too_short":
        message = f"needs at least {ctx.get('min_length', 1)} item(s)"
    elif kind in _TYPE_WORDS:
        message = f"must be {_TYPE_WORDS[kind]}, not {_describe_input(err.get('input'))}"
    elif kind in ("value_error", "assertion_error"):
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        extra = getattr(ctx.get("error"), "path", None)
        if extra:
            loc.extend(extra)
    line = None
    probe = tuple(loc)
    while probe:
        if probe in lines:
            line = lines[probe]
            break
        probe = probe[:-1]
    if line is None and () in lines:
        line = lines[()]
    return PlanError(message, file=file, line=line, path=loc, policy=policy,
                     suggestion=suggestion)
