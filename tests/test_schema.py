"""The plan format's JSON Schema (``incentives schema``) and the reference page made from it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from incentives.docgen import main as docgen_main
from incentives.docgen import plan_schema, render_reference, schema_json

ROOT = Path(__file__).resolve().parent.parent


def _plain(value: Any) -> Any:
    """YAML as an editor's schema validator sees it: dates are text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def test_cli_schema_prints_the_schema(cli: Callable[..., Any]) -> None:
    r = cli("schema")
    assert r.code == 0
    assert r.out == schema_json()
    data = json.loads(r.out)
    assert data["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert data["additionalProperties"] is False
    tags = data["properties"]["policies"]["items"]["discriminator"]["mapping"]
    for tag in ("tiered", "base_pay", "rate_table", "scorecard", "floor", "cap", "churn_penalty"):
        assert tag in tags
    assert list(data["$defs"]) == sorted(data["$defs"])


def test_schema_is_byte_identical_across_processes() -> None:
    # another interpreter with another hash seed prints the same bytes as this one
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-m", "incentives", "schema"], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out == schema_json()


def test_cli_schema_out(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "plan.schema.json"
    r = cli("schema", "--out", out)
    assert r.code == 0
    assert r.out == ""
    assert out.read_text(encoding="utf-8") == schema_json()


@pytest.mark.parametrize("plan", sorted(p.relative_to(ROOT).as_posix()
                                        for p in (ROOT / "examples").glob("*/plan*.yaml")))
def test_example_plans_validate_against_the_schema(plan: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = _plain(yaml.safe_load((ROOT / plan).read_text(encoding="utf-8")))
    jsonschema.Draft202012Validator(plan_schema()).validate(data)


def test_schema_refuses_what_the_loader_refuses() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(plan_schema())
    good = {"name": "p", "policies": [{"type": "floor", "id": "f", "amount": 700}]}
    assert not list(validator.iter_errors(good))
    typo = {"name": "p", "policies": [{"type": "floor", "id": "f", "amont": 700}]}
    assert list(validator.iter_errors(typo))
    bad_type = {"name": "p", "policies": [{"type": "flor", "id": "f", "amount": 700}]}
    assert list(validator.iter_errors(bad_type))
    no_method = {"name": "p", "policies": [{"type": "tiered", "id": "t", "basis": "x",
                                            "tiers": [{"from": 0, "rate": 0.02}]}]}
    assert list(validator.iter_errors(no_method))


def test_reference_page_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(), (
        "docs/reference.md is out of date: run `python -m incentives.docgen`")


def test_reference_lists_every_policy_type() -> None:
    from incentives.policies import POLICY_TYPES

    text = render_reference()
    for tag in POLICY_TYPES:
        assert f"`type: {tag}`" in text


def test_docgen_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reference.md"
    assert docgen_main(["--out", str(out), "--check"]) == 1
    assert docgen_main(["--out", str(out)]) == 0
    assert docgen_main(["--out", str(out), "--check"]) == 0
    assert out.read_text(encoding="utf-8") == render_reference()
    capsys.readouterr()


CORE = ["BasePay", "Tiered", "Tier", "RateTable", "RateItem", "Quota", "QuotaSplit", "Scorecard",
        "KPI", "Gate", "PayoutPoint", "Modifier", "Band", "Cap", "FormulaLine", "Value",
        "ChurnPenalty", "LargerOf", "SmallerOf", "SumOf"]


@pytest.mark.parametrize("name", CORE)
def test_core_fields_are_described_for_editors(name: str) -> None:
    node = plan_schema()["$defs"][name]
    if "properties" not in node:
        node = next(o for o in node["anyOf"] if "properties" in o)
    undocumented = [f for f, prop in node["properties"].items() if not prop.get("description")]
    assert undocumented == [], f"{name}: add a '#:' comment above {undocumented}"


def test_decimal_fields_render_the_same_whatever_pydantic_prints() -> None:
    # pydantic 2.13 gave a Decimal's text branch a pattern and 2.14 none; the plan
    # schema states its own, so the reference page does not change with the release
    from incentives.docgen import DECIMAL_TEXT_PATTERN, plan_schema

    holdback = plan_schema()["$defs"]["Clawback"]["properties"]["holdback"]
    assert holdback["anyOf"] == [
        {"maximum": 1.0, "minimum": 0.0, "type": "number"},
        {"pattern": DECIMAL_TEXT_PATTERN, "type": "string"},
        {"type": "null"}]
