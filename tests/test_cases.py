"""Case files: `incentives test` and the pytest plugin run the worked examples, and a
failing case shows a readable difference (issue 7)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import PlanError
from incentives.testing.cases import find_case_files, load_cases, run_case

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests/cases"
WORKED = ["e1_telecom", "e2_scorecard", "e3_contest", "e4_pool", "e5_balance", "e6_draw",
          "e7_clawback", "e8_honour", "e9_proration"]


def test_every_worked_example_has_a_case_file() -> None:
    names = [p.name.removesuffix(".cases.yaml") for p in find_case_files([CASES])]
    assert names == WORKED


def test_incentives_test_runs_the_worked_examples(cli: Any) -> None:
    res = cli("test", CASES)
    assert res.code == 0, res.out + res.err
    assert res.out.splitlines()[-1] == "13 passed, 0 failed"
    assert "  ok      E1 telecom key-account managers X, Y, Z" in res.out
    assert "  ok      E6 recoverable draw over three months" in res.out


def test_pytest_collects_the_worked_examples() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--collect-only", str(CASES)], cwd=ROOT, capture_output=True, text=True).stdout
    assert "13 tests collected" in out, out
    assert "e1_telecom.cases.yaml::E1 telecom key-account managers X, Y, Z" in out


def _case_file(tmp_path: Path, name: str, text: str) -> Path:
    plan = tmp_path / "plan.yaml"
    if not plan.exists():
        plan.write_text((ROOT / "examples/telecom/plan.yaml").read_text(encoding="utf-8"),
                        encoding="utf-8")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


CASE_OK = """
name: Y is topped up to the floor
plan: plan.yaml
period: 2026-05
input:
  Y: {metrics: {traffic_revenue: 10000}}
output:
  Y: {commission: 200.00, floor: 500.00, total: 700.00}
"""

CASE_WRONG = """
- name: wrong on purpose
  plan: plan.yaml
  period: 2026-05
  input:
    - {payee: X, metrics: {traffic_revenue: 50000, new_fax: 3}}
    - {payee: Y, metrics: {traffic_revenue: 10000}}
  output:
    X: {total: 1579.00, titles: [Star]}
    Y: {floor: 500.00, values: {variable_pay: 199}}
"""


def test_a_failing_case_shows_each_difference(tmp_path: Path, cli: Any) -> None:
    path = _case_file(tmp_path, "wrong.cases.yaml", CASE_WRONG)
    res = cli("test", path)
    assert res.code == 1
    lines = res.out.splitlines()
    assert lines[1] == f"  FAILED  wrong on purpose  ({path}:2)"
    assert lines[2:] == [
        f"    X 2026-05 total: expected 1579.00, got 1580.00 (off by 1.00)  [{path}:9]",
        f"    X 2026-05 titles: expected [Star], got []  [{path}:9]",
        f"    Y 2026-05 value variable_pay: expected 199, got 200.00 (off by 1.00)  [{path}:10]",
        "0 passed, 1 failed",
    ]


def test_margin_parameters_errors_and_periods(tmp_path: Path) -> None:
    path = _case_file(tmp_path, "more.cases.yaml", """
- name: within the margin
  plan: plan.yaml
  period: 2026-05
  absolute_error_margin: 0.5
  input: {Y: {metrics: {traffic_revenue: 10000}}}
  output: {Y: {total: 700.40}}
- name: parameters override the plan's
  plan: plan.yaml
  period: 2026-05
  parameters: {floor_amount: 1000}
  input: {Y: {metrics: {traffic_revenue: 10000}}}
  output: {Y: {total: 1000.00}}
- name: a record that must fail
  plan: plan.yaml
  period: 2026-05
  input:
    Y: {metrics: {traffic_revenue: 10000}}
    Q: {metrics: {traffic_revenue: -5}}
  output:
    Y: {total: 700.00}
    Q: {error: below the minimum 0}
- name: several periods
  plan: plan.yaml
  input:
    - {payee: Y, period: 2026-05, metrics: {traffic_revenue: 10000}}
    - {payee: Y, period: 2026-06, metrics: {traffic_revenue: 40000}}
  output:
    - {payee: Y, period: 2026-05, total: 700.00}
    - {payee: Y, period: 2026-06, commission: 1000.00}
""")
    cases = load_cases(path)
    assert [run_case(c).ok for c in cases] == [True, True, True, True]
    tight = cases[0]
    tight.margin = D("0.3")
    result = run_case(tight)
    assert [m.describe() for m in result.mismatches] == [
        f"Y 2026-05 total: expected 700.40, got 700.00 (off by -0.40)  [{path}:7]"]


def test_an_unexpected_error_is_a_difference(tmp_path: Path) -> None:
    path = _case_file(tmp_path, "err.cases.yaml", """
name: Q's record is wrong
plan: plan.yaml
period: 2026-05
input: {Q: {metrics: {traffic_revenue: abc}}}
output: {Q: {total: 0}}
""")
    (case,) = load_cases(path)
    result = run_case(case)
    assert not result.ok
    assert "Q result: expected a result, got error: payee 'Q' period 2026-05 field " \
        "'metrics.traffic_revenue': value is not a number: 'abc'" in result.report()


@pytest.mark.parametrize(("text", "message"), [
    ("name: x\nplan: plan.yaml\ninput: {}\nouptut: {}\n",
     "x.cases.yaml:4 ouptut: unknown key 'ouptut'; did you mean 'output'?"),
    ("name: x\nplan: plan.yaml\ninput: {}\n", "x.cases.yaml:1: missing required key 'output'"),
    ("name: x\nplan: plan.yaml\ninput: []\noutput: {Y: {comission: 1}}\n",
     "x.cases.yaml:4 output.Y.comission: 'comission' is not a policy of the plan nor one of "
     "total, values, titles, flags, error; did you mean 'commission'?"),
    ("name: x\nplan: nowhere.yaml\ninput: []\noutput: {}\n", "x.cases.yaml:2 plan: no plan file"),
    ("name: x\nplan: plan.yaml\nparameters: {floor: 1}\ninput: []\noutput: {}\n",
     "x.cases.yaml:3 parameters: unknown parameter 'floor'"),
])
def test_malformed_case_files_exit_2_with_file_and_line(tmp_path: Path, cli: Any, text: str,
                                                         message: str) -> None:
    path = _case_file(tmp_path, "x.cases.yaml", text)
    res = cli("test", path)
    assert res.code == 2, res.out
    assert message in res.err
    def load_and_run() -> None:
        for case in load_cases(path):
            run_case(case)

    with pytest.raises(PlanError):
        load_and_run()


def test_incentives_test_needs_case_files(tmp_path: Path, cli: Any) -> None:
    assert cli("test", tmp_path / "missing.cases.yaml").code == 2
    assert "no case files found" in cli("test", tmp_path).err


def test_pytest_plugin_reports_a_failing_case_without_a_traceback(tmp_path: Path) -> None:
    _case_file(tmp_path, "good.cases.yaml", CASE_OK)
    _case_file(tmp_path, "wrong.cases.yaml", CASE_WRONG)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 1
    out = proc.stdout
    assert "1 failed, 1 passed" in out
    assert "X 2026-05 total: expected 1579.00, got 1580.00 (off by 1.00)" in out
    assert "Traceback" not in out
