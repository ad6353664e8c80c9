"""A missing extra is one line naming the extra to install, before any work: run for real
in a Python whose import of the extra's module fails (a meta path finder blocks it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLAN = str(ROOT / "examples/telecom/plan.yaml")

BLOCKER = """
import sys

BLOCKED = {blocked!r}


class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Block())
"""


def _python(blocked: set[str], code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=blocked) + code],
                          capture_output=True, text=True, cwd=cwd, timeout=300,
                          stdin=subprocess.DEVNULL)


def _cli(blocked: set[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return _python(blocked, f"from incentives.cli import main\nsys.exit(main({args!r}))\n", cwd)


SIMULATE = "error: incentives simulate needs the 'simulate' extra: pip install 'incentives[simulate]'\n"


@pytest.mark.parametrize("module", ["pandas", "matplotlib", "tqdm"])
def test_simulate_without_its_extra_is_one_line_and_exit_2(module: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = _cli({module}, ["simulate", PLAN, "--synthetic", "50", "--out", str(out)], tmp_path)
    assert done.returncode == 2
    assert done.stderr == SIMULATE
    assert done.stdout == ""
    assert not out.exists()  # nothing written
    assert list(tmp_path.iterdir()) == []


def test_simulate_checks_its_extra_before_reading_anything(tmp_path: Path) -> None:
    # the plan file does not exist: the extra is still what is reported, first
    done = _cli({"matplotlib"}, ["simulate", str(tmp_path / "missing.yaml"), "--synthetic",
                                 "5", "--out", str(tmp_path / "o")], tmp_path)
    assert (done.returncode, done.stderr) == (2, SIMULATE)


def test_the_same_command_with_the_extra_works(tmp_path: Path) -> None:
    # the blocker itself is harmless: block a module nobody needs and the report is written
    done = _cli({"no_such_module"}, ["simulate", PLAN, "--synthetic", "30", "--out",
                                     str(tmp_path / "o"), "--no-progress"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o/report.html").is_file()


def test_audit_without_hypothesis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = _cli({"hypothesis"}, ["audit", PLAN, "--examples", "3"], tmp_path)
    assert done.returncode == 2
    assert done.stderr == ("error: incentives audit needs the 'testing' extra: "
                           "pip install 'incentives[testing]'\n")
    assert done.stdout == ""


PYTHON_CASES = {
    "to_dataframe": ({"pandas"}, """
from incentives import load_plan
plan = load_plan(PLAN)
run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"traffic_revenue": 1000}}])
run.to_dataframe()
""", "to_dataframe() needs the 'simulate' extra: pip install 'incentives[simulate]'"),
    "comparison": ({"pandas"}, """
from incentives import load_plan
from incentives.populations import synthetic
from incentives.simulate import simulate
plan = load_plan(PLAN)
simulate(plan, [], synthetic(plan, 5), progress=False).compare().to_dataframe()
""", "a DataFrame view of a comparison needs the 'simulate' extra: pip install 'incentives[simulate]'"),
    "plots": ({"matplotlib"}, """
from incentives import load_plan, plots
plots.pay_curve(load_plan(PLAN), {"metrics": {}}, "traffic_revenue", [0, 1000])
""", "incentives.plots needs the 'simulate' extra: pip install 'incentives[simulate]'"),
    "dask": ({"dask"}, """
from incentives import load_plan
from incentives.dask import evaluate_bag
evaluate_bag(load_plan(PLAN), None)
""", "incentives.dask needs the 'dask' extra: pip install 'incentives[dask]'"),
    "strategies": ({"hypothesis"}, """
import incentives.testing.strategies
""", "incentives.testing.strategies needs the 'testing' extra: "
     "pip install 'incentives[testing]'"),
}


@pytest.mark.parametrize("case", sorted(PYTHON_CASES))
def test_python_entry_points_name_their_extra(case: str, tmp_path: Path) -> None:
    blocked, code, message = PYTHON_CASES[case]
    wrapped = (f"PLAN = {PLAN!r}\n"
               "from incentives.extras import MissingExtraError\n"
               "from incentives.errors import UsageError\n"
               "try:\n" + "".join(f"    {line}\n" for line in code.strip().splitlines())
               + "except MissingExtraError as exc:\n"
               "    assert isinstance(exc, ImportError) and isinstance(exc, UsageError)\n"
               "    print(exc)\n"
               "    sys.exit(2)\n")
    done = _python(blocked, wrapped, tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == message + "\n"
    assert done.stderr == ""
