"""The designing-a-floor notebook runs the way people run notebooks: ``jupyter nbconvert
--execute`` started in the notebook's own folder (as JupyterLab starts its kernel there)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from incentives import load_plan
from incentives.populations import synthetic

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "examples"
NOTEBOOK = FOLDER / "designing-a-floor.ipynb"


def _jupyter() -> list[str]:
    """The jupyter command of this Python's environment."""
    script = Path(sys.executable).with_name("jupyter")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "jupyter"]


def _text(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for o in outputs:
        text = o.get("text", "")
        plain = o.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
        parts.append("".join(plain) if isinstance(plain, list) else plain)
    return "\n".join(parts)


def test_the_committed_notebook_carries_no_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) >= 10
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    # it names its plan relative to its own folder
    source = "".join(code[0]["source"])
    assert 'Path("telecom/plan.yaml")' in source


def test_jupyter_nbconvert_execute_from_the_notebooks_folder(tmp_path: Path) -> None:
    pytest.importorskip("nbconvert")
    pytest.importorskip("ipykernel")
    before = NOTEBOOK.read_bytes()
    listing = sorted(p.name for p in FOLDER.iterdir())
    done = subprocess.run(
        [*_jupyter(), "nbconvert", "--to", "notebook", "--execute", NOTEBOOK.name,
         "--output-dir", str(tmp_path), "--ExecutePreprocessor.timeout=600"],
        cwd=FOLDER, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    # the executed copy went to the temporary folder; the repository is untouched
    assert NOTEBOOK.read_bytes() == before
    assert sorted(p.name for p in FOLDER.iterdir()) == listing
    executed = json.loads((tmp_path / NOTEBOOK.name).read_text(encoding="utf-8"))
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in cells for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert all(c["execution_count"] for c in cells)  # every cell ran
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 5  # pay curve, sweep cost, Lorenz, distribution, two curves
    text = _text(outputs)
    # the plan was found from the notebook's folder, and the figures are the library's own
    assert "telecom-key-account version 2026.1" in text
    plan = load_plan(FOLDER / "telecom/plan.yaml")
    total = plan.evaluate(synthetic(plan, 2000, seed=2026)).total
    assert f"total cost {total} | dtype of the amounts: object" in text
    found = re.search(r"winners (\d+), losers (\d+), unchanged (\d+)", text)
    assert found is not None, text[:2000]
    winners, losers, unchanged = map(int, found.groups())
    assert losers == 0
    assert winners > 0
    assert winners + unchanged == 2000
    assert "floor 1000 alone: +" in text
