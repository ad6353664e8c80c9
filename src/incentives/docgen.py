"""The plan format's JSON Schema, and the reference page generated from it.

``incentives schema`` prints the JSON Schema of a plan file, so editors can
validate and complete plans (in VS Code, with the YAML extension, put
``# yaml-language-server: $schema=plan.schema.json`` at the top of a plan).
``python -m incentives.docgen`` writes ``docs/reference.md`` from the same
schema; ``python -m incentives.docgen --check`` exits 1 when the committed page
is out of date.

The schema is deterministic: the same code gives byte-identical text.

>>> schema = plan_schema()
>>> schema["properties"]["policies"]["items"]["discriminator"]["propertyName"]
'type'
>>> "Tiered" in schema["$defs"]
True
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

__all__ = ["field_docs", "main", "plan_schema", "render_reference", "schema_json"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: A decimal written as text in a plan: digits with an optional sign and point. The
#: schema states it itself, so that it does not change with how one pydantic release
#: prints a ``Decimal`` (2.13 gave its string branch this pattern, 2.14 none).
DECIMAL_TEXT_PATTERN = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"


class _PlanSchema(GenerateJsonSchema):
    """Pydantic's schema generator with one stable rendering of ``Decimal`` fields:
    a JSON number (with the field's bounds) or decimal text."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        node = super().decimal_schema(schema)
        for branch in node.get("anyOf", [node]):
            if branch.get("type") == "string":
                branch["pattern"] = DECIMAL_TEXT_PATTERN
        return node

#: The user-guide page of each policy type, when there is one.
GUIDE: dict[str, str] = {
    "base_pay": "base-pay.md",
    "tiered": "tiers.md",
    "rate_table": "rate-tables.md",
    "quota": "quota.md",
    "scorecard": "scorecard.md",
    "modifier": "modifiers.md",
    "floor": "floor-and-cap.md",
    "cap": "floor-and-cap.md",
    "formula": "formulas.md",
    "value": "formulas.md",
    "larger_of": "composition.md",
    "smaller_of": "composition.md",
    "sum_of": "composition.md",
    "contest": "team.md",
    "honour": "team.md",
    "ranking_flag": "team.md",
    "bonus_pool": "team.md",
    "balance": "team.md",
    "clawback": "periods.md",
    "deferral": "periods.md",
    "accumulate": "periods.md",
    "period_quota": "periods.md",
}

#: What the fields every policy has mean.
COMMON: dict[str, str] = {
    "type": "the policy type (the tag this section is about)",
    "id": "unique in the plan; later formulas read the policy's result by this name",
    "label": "shown on statements and tables (any language)",
    "when": "a condition: the policy applies only to payees for whom it holds",
}


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``root`` through its fields, by class name."""
    from .plan import Later
    from .policies import POLICY_TYPES

    found: dict[str, type[BaseModel]] = {}
    todo: list[Any] = [root, *POLICY_TYPES.values()]  # a plan's policies: every type
    while todo:
        item = todo.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item.__name__ in found:
                continue
            found[item.__name__] = item
            todo += [f.annotation for f in item.model_fields.values()]
        elif isinstance(item, Later):  # a part of the plan whose model is imported later
            todo.append(item.target())
        else:
            todo += list(get_args(item))
    return found


_FIELD = re.compile(r"^\s+(\w+)\s*:")


@functools.cache
def _class_sources(path: str) -> dict[str, list[str]]:
    """The source lines of every class in the module file ``path`` (parsed once)."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    return {node.name: lines[node.lineno - 1:node.end_lineno]
            for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ClassDef)}


def field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comments written right above each field of ``cls`` (and its bases).

    >>> from incentives import Tiered
    >>> field_docs(Tiered)["method"].startswith("how the tiers turn the basis")
    True
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        path = getattr(module, "__file__", None)
        if not path or klass.__module__.split(".")[0] != "incentives":
            continue
        comment: list[str] = []
        for line in _class_sources(path).get(klass.__name__, []):
            stripped = line.strip()
            if stripped.startswith("#:"):
                comment.append(stripped[2:].strip())
                continue
            m = _FIELD.match(line)
            if m and comment:
                docs[m.group(1)] = " ".join(comment)
            comment = []
    return docs


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of a plan file, as a dict (``$defs`` in name order).

    Fields documented with a ``#:`` comment in the code get it as their
    ``description``, so editors show it.
    """
    result: dict[str, Any] = json.loads(_schema_text())
    return result


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    from .plan import Plan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # defaults that are not JSON (computed ones) are left out
        schema = Plan.model_json_schema(schema_generator=_PlanSchema)
    models = _models(Plan)
    _describe(schema, field_docs(Plan))
    defs = schema.pop("$defs", {})
    for name, node in defs.items():
        cls = models.get(name)
        if cls is not None:
            target = node
            if "properties" not in node:  # a shorthand wrapper: anyOf [..., the mapping]
                target = next((o for o in node.get("anyOf", []) if "properties" in o), node)
            docs = field_docs(cls)
            for fname, finfo in cls.model_fields.items():
                if finfo.alias and fname in docs:
                    docs.setdefault(finfo.alias, docs[fname])
            _describe(target, docs)
    out: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://incentives.invalid/plan.schema.json",
        "title": "incentives plan",
    }
    out.update(schema)
    out["title"] = "incentives plan"
    out["$defs"] = {k: defs[k] for k in sorted(defs)}
    return json.dumps(out, ensure_ascii=False)


def _describe(node: dict[str, Any], docs: dict[str, str]) -> None:
    for name, prop in node.get("properties", {}).items():
        if name in docs and "description" not in prop:
            prop["description"] = docs[name]


def schema_json() -> str:
    """The plan schema as JSON text (UTF-8, two-space indents, a final newline)."""
    return json.dumps(plan_schema(), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ reference
def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return name.lower()


def _type(node: dict[str, Any], defs: dict[str, Any]) -> str:
    """A short, human type for a schema node."""
    if node.get("x-formula"):
        return "formula"
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        return f"[{name}](#{_anchor(name)})"
    if "const" in node:
        return f"`{json.dumps(node['const'], ensure_ascii=False)}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in node["enum"])
    if "anyOf" in node or "oneOf" in node:
        options = node.get("anyOf") or node.get("oneOf") or []
        kinds = [o for o in options if o.get("type") != "null"]
        if (len(kinds) == 2 and {o.get("type") for o in kinds} == {"number", "string"}
                and any("pattern" in o for o in kinds)):
            return "number"
        parts: list[str] = []
        for o in kinds:
            shown = _type(o, defs)
            if shown not in parts:
                parts.append(shown)
        if len(parts) > 1 and "text" in parts and "number" in parts:
            parts.remove("text")
            parts[parts.index("number")] = "number or text"
        return " or ".join(parts) or "null"
    t = node.get("type")
    if t == "array":
        return f"list of {_type(node.get('items', {}), defs)}"
    if t == "object":
        if "patternProperties" in node:
            inner = next(iter(node["patternProperties"].values()))
            return f"map of name to {_type(inner, defs)}"
        if isinstance(node.get("additionalProperties"), dict):
            return f"map of text to {_type(node['additionalProperties'], defs)}"
        return "mapping"
    if t == "string":
        if node.get("format") == "date":
            return "date (YYYY-MM-DD)"
        if "pattern" in node and node["pattern"].startswith("^[A-Za-z"):
            return "name"
        return "text"
    if t == "number":
        return "number"
    if t == "integer":
        return "integer"
    if t == "boolean":
        return "true/false"
    return "any"


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    value = node["default"]
    if value is None:
        return "none"
    if value in ({}, []):
        return "empty"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _doc(text: str | None) -> str:
    """A docstring as Markdown: ``x`` becomes `x`, doctest examples are left out."""
    if not text:
        return ""
    kept = []
    for para in text.strip().split("\n\n"):
        if para.lstrip().startswith(">>>"):
            continue
        kept.append(" ".join(line.strip() for line in para.splitlines()))
    text = re.sub(r":[a-z]+:`~?\.*([^`]+)`", r"`\1`", "\n\n".join(kept))
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fields_table(node: dict[str, Any], defs: dict[str, Any], *, policy: bool = False) -> list[str]:
    props: dict[str, Any] = node.get("properties", {})
    if not props:
        return ["(no fields)", ""]
    required = set(node.get("required", []))
    out = ["| field | type | required | default | meaning |", "|---|---|---|---|---|"]
    for name, prop in props.items():
        req = "yes" if name in required else ""
        desc = _doc(prop.get("description")) or (COMMON.get(name, "") if policy else "")
        out.append(f"| `{name}` | {_cell(_type(prop, defs))} | {req} | {_cell(_default(prop))} "
                   f"| {_cell(desc)} |")
    out.append("")
    return out


def render_reference() -> str:
    """``docs/reference.md``: every plan key and policy type, from the schema."""
    schema = plan_schema()
    defs: dict[str, Any] = schema["$defs"]
    mapping: dict[str, str] = schema["properties"]["policies"]["items"]["discriminator"]["mapping"]
    policy_defs = {_ref_name(ref): tag for tag, ref in mapping.items()}
    out = [
        "# Plan reference",
        "",
        "<!-- Generated by `python -m incentives.docgen` from the plan's JSON Schema. "
        "Do not edit by hand. -->",
        "",
        "This page lists every key of a plan file and every policy type, generated from "
        "the JSON Schema that `incentives schema` prints. A *formula* is a short expression "
        "(see [formulas](formulas.md)) or a plain number; a *name* is an identifier "
        "(letters, digits and `_`, Chinese allowed); a *number* may be written as a YAML "
        "number or as text and is read as an exact decimal.",
        "",
        "To have an editor check and complete plan files, save the schema and point the "
        "YAML language server at it:",
        "",
        "```sh",
        "incentives schema > plan.schema.json",
        "```",
        "",
        "and put `# yaml-language-server: $schema=plan.schema.json` on the first line of a plan.",
        "",
        "## Plan",
        "",
        _doc(schema.get("description")),
        "",
        *_fields_table(schema, defs),
        "## Policy types",
        "",
        "Each policy is a mapping with a `type:` tag. Every policy has `type`, `id` (a name, "
        "unique in the plan; later formulas read the policy's result by it), an optional "
        "`label` (shown on statements; any language) and an optional `when` (a condition: "
        "the policy applies only to payees for whom it holds).",
        "",
        "| type | policy | guide |",
        "|---|---|---|",
    ]
    for tag in sorted(mapping):
        name = _ref_name(mapping[tag])
        guide = f"[{GUIDE[tag]}]({GUIDE[tag]})" if tag in GUIDE else ""
        out.append(f"| `{tag}` | [{name}](#{_anchor(name)}) | {guide} |")
    out.append("")
    for tag in sorted(mapping):
        name = _ref_name(mapping[tag])
        node = defs[name]
        out += [f"### {name}", "", f"`type: {tag}`", ""]
        doc = _doc(node.get("description"))
        if doc:
            out += [doc, ""]
        if tag in GUIDE:
            out += [f"Guide: [{GUIDE[tag]}]({GUIDE[tag]}).", ""]
        out += _fields_table(node, defs, policy=True)
    out += ["## Other parts", ""]
    for name, node in defs.items():
        if name in policy_defs:
            continue
        out += [f"### {name}", ""]
        doc = _doc(node.get("description"))
        if doc:
            out += [doc, ""]
        if "enum" in node:
            out += ["One of " + ", ".join(f"`{v}`" for v in node["enum"]) + ".", ""]
        elif "anyOf" in node:
            objects = [o for o in node["anyOf"] if "properties" in o]
            if objects:
                doc = _doc(objects[0].get("description"))
                if doc:
                    out += [doc, ""]
                out += ["A mapping, or the shorthand: a formula or a number alone.", ""]
                out += _fields_table(objects[0], defs)
            else:
                out += [f"A {_type(node, defs)}.", ""]
        else:
            out += _fields_table(node, defs)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.rstrip("\n") + "\n"


# ------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m incentives.docgen [--check] [--out PATH]``: write the reference page."""
    parser = argparse.ArgumentParser(prog="python -m incentives.docgen",
                                     description="generate docs/reference.md from the schema")
    parser.add_argument("--out", default="docs/reference.md")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the file differs from what would be generated")
    args = parser.parse_args(argv)
    text = render_reference()
    path = Path(args.out)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            sys.stderr.write(f"{path} is out of date: run python -m incentives.docgen\n")
            return 1
        return 0
    from .fileio import atomic_write

    atomic_write(path, text)
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
