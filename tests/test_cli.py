"""The command line: exit codes, formats, atomic output, located plan errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_misspelt_metric_in_formula_is_refused_with_location(tmp_path: Path, examples: Path,
                                                             cli) -> None:  # type: ignore[no-untyped-def]
    text = (examples / "telecom/plan.yaml").read_text(encoding="utf-8")
    bad = text.replace("per_customer: churn_multiple * monthly_value",
                       "per_customer: churn_multiple * monthly_valeu")
    assert bad != text
    plan = tmp_path / "plan.yaml"
    plan.write_text(bad, encoding="utf-8")
    line = next(i for i, t in enumerate(bad.splitlines(), start=1) if "monthly_valeu" in t)
    res = cli("validate", plan)
    assert res.code == 2
    assert f"plan.yaml:{line}" in res.err
    assert "policies[3].per_customer" in res.err
    assert "(policy 'churn_penalty')" in res.err
    assert "unknown name 'monthly_valeu'" in res.err
    assert "did you mean 'monthly_value'?" in res.err
    res = cli("run", plan, examples / "telecom/records.jsonl")
    assert res.code == 2


def test_validate_ok(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("validate", examples / "telecom/plan.yaml")
    assert res.code == 0
    assert "ok" in res.out


def test_bad_usage_exits_2(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run")
    assert res.code == 2
    res = cli("run", "missing-plan.yaml", "records.json")
    assert res.code == 2
    assert "cannot read the plan file" in res.err


def test_bad_record_exits_1_and_good_records_still_run(tmp_path: Path, examples: Path,
                                                        cli) -> None:  # type: ignore[no-untyped-def]
    records = tmp_path / "records.jsonl"
    records.write_text(
        (examples / "telecom/records.jsonl").read_text(encoding="utf-8")
        + '{"payee": "W", "period": "2026-05", "metrics": {"traffic_revenue": ""}}\n'
        + '{"payee": "V", "period": "2026-05", "metrics": {"traffic_revenue": "abc"}}\n',
        encoding="utf-8",
    )
    res = cli("run", examples / "telecom/plan.yaml", records, "--format", "json")
    assert res.code == 1
    data = json.loads(res.out)
    assert [r["payee"] for r in data["results"]] == ["X", "Y", "Z"]
    errors = {e["payee"]: e for e in data["errors"]}
    assert errors["W"]["field"] == "metrics.traffic_revenue"
    assert "blank" in errors["W"]["message"]
    assert errors["V"]["field"] == "metrics.traffic_revenue"
    assert "not a number" in errors["V"]["message"]
    assert "payee 'V' period 2026-05 field 'metrics.traffic_revenue'" in res.err


def test_out_file_and_byte_identical_json(tmp_path: Path, examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    outs = []
    for name in ("a.json", "b.json"):
        out = tmp_path / name
        res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
                  "--format", "json", "--out", out)
        assert res.code == 0
        assert res.out == ""
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert b'"total": "948.00"' in outs[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_table_is_readable(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl")
    assert res.code == 0
    lines = res.out.splitlines()
    assert lines[0].startswith("payee")
    assert "通信费提成" in lines[0]
    assert lines[2].split()[-1] == "948.00"
    assert lines[-1].split()[-1] == "5708.00"


def test_console_script_runs_as_a_module(examples: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "incentives", "run", str(examples / "bank/plan.yaml"),
         str(examples / "bank/records.json"), "--format", "csv"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "P,2026-05,gulou-branch,5000.00,3888.00,8888.00,," in proc.stdout
