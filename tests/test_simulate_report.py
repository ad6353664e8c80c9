"""Simulation output: plots as PNG files, the ``incentives simulate`` report, the notebook."""

from __future__ import annotations

import struct
from decimal import Decimal
from pathlib import Path

import pytest

from incentives import load_plan
from incentives.populations import synthetic
from incentives.simulate import simulate, sweep, variant

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_real_png(path: Path) -> None:
    assert path.is_file()
    width, height = png_size(path)
    assert width >= 300, (width, height)
    assert height >= 300, (width, height)
    assert path.stat().st_size > 10_000  # axes, curves and text, not a blank canvas
    from matplotlib.image import imread

    pixels = imread(str(path))
    # more than one colour: something was drawn
    assert pixels.reshape(-1, pixels.shape[-1]).std(axis=0).max() > 0.05


def test_each_plot_is_a_non_empty_png(tmp_path: Path) -> None:
    from incentives import plots

    plan = load_plan(ROOT / "examples/telecom/plan.yaml")
    people = synthetic(plan, 300, seed=2)
    vs = sweep(plan, "floor_amount", [500, 900, 1300])
    sim = simulate(plan, vs, people, progress=False)
    figs = {
        "curve.png": plots.pay_curve([plan, vs[-1]], {"metrics": {"traffic_revenue": 0}},
                                     "traffic_revenue", range(0, 120001, 5000)),
        "distribution.png": plots.pay_distribution(sim),
        "lorenz.png": plots.lorenz(sim),
        "sweep.png": plots.sweep_cost(sim),
    }
    for name, fig in figs.items():
        assert type(fig).__name__ == "Figure"
        out = plots.save(fig, tmp_path / "figs" / name)
        assert_real_png(out)
    # the curves carry the numbers: the floor variant pays 1300 at zero revenue
    curve = figs["curve.png"].axes[0].lines
    assert [line.get_label() for line in curve] == ["telecom-key-account", "floor_amount=1300"]
    assert curve[0].get_ydata()[0] == 700.0
    assert curve[1].get_ydata()[0] == 1300.0
    sweep_line = figs["sweep.png"].axes[0].lines[0]
    assert list(sweep_line.get_xdata()) == [500.0, 900.0, 1300.0]
    assert list(sweep_line.get_ydata()) == [float(o.run.total) for o in sim.variants]


def test_sweep_cost_plots_one_swept_parameter() -> None:
    from incentives import plots

    plan = load_plan(ROOT / "examples/telecom/plan.yaml")
    people = synthetic(plan, 20, seed=4)
    other = variant(plan, "other", parameters={"churn_multiple": 2})
    floors = sweep(plan, "floor_amount", [600, 800])
    shares = sweep(plan, "churn_cap_share", ["0.2", "0.3", "0.5"])
    sim = simulate(plan, [other, *floors, *shares], people, progress=False)
    line = plots.sweep_cost(sim).axes[0].lines[0]
    assert list(line.get_xdata()) == [600.0, 800.0]
    fig = plots.sweep_cost(sim, parameter="churn_cap_share")
    assert list(fig.axes[0].lines[0].get_xdata()) == [0.2, 0.3, 0.5]
    assert fig.axes[0].get_xlabel() == "churn_cap_share"
    with pytest.raises(ValueError, match="no swept variants of 'rate'"):
        plots.sweep_cost(sim, parameter="rate")


def test_lorenz_points_by_hand() -> None:
    from incentives.plots import lorenz_points

    people, pay = lorenz_points([Decimal(6), Decimal(1), Decimal(3)])
    assert people == [0.0, 1 / 3, 2 / 3, 1.0]
    assert pay == [0.0, 0.1, 0.4, 1.0]


def test_importing_the_library_does_not_import_the_extras() -> None:
    import subprocess
    import sys

    code = ("import sys, incentives, incentives.simulate, incentives.populations, "
            "incentives.plots, incentives.cli\n"
            "incentives.cli.build_parser()\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- the command line


def test_simulate_command_writes_a_report_with_plots(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    v = tmp_path / "richer.yaml"
    v.write_text("name: richer tier 2\nchanges:\n  policies.commission.tiers[1].rate: 0.05\n",
                 encoding="utf-8")
    out = tmp_path / "report"
    res = cli("simulate", ROOT / "examples/telecom/plan.yaml", "--synthetic", "400",
              "--seed", "9", "--variant", v, "--sweep", "floor_amount=500,900",
              "--out", out, "--progress")
    assert res.code == 0, res.err
    assert "richer tier 2" in res.out
    assert "floor_amount=900" in res.out
    assert "4/4" in res.err  # the progress bar ran to the end
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<table>" in page  # inside a scrolling div
    from incentives.display import FONT_STACK

    assert f"body{{font-family:{FONT_STACK};" in page  # Chinese labels have their fonts too
    assert '"Noto Sans CJK SC"' in FONT_STACK
    assert "policies.commission.tiers[1].rate: 0.04 -&gt; 0.05" in page
    for name in ("distribution.png", "lorenz.png", "pay_curve.png", "sweep_cost.png"):
        assert f"src='{name}'" in page
        assert_real_png(out / name)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| variant |" in md
    assert "![Lorenz" in md
    summary = (out / "summary.csv").read_text(encoding="utf-8").splitlines()
    assert summary[0].startswith("variant,payees,total_cost")
    assert [row.split(",")[0] for row in summary[1:]] == [
        "baseline", "richer tier 2", "floor_amount=500", "floor_amount=900"]
    # the same seed gives the same report figures
    again = tmp_path / "again"
    assert cli("simulate", ROOT / "examples/telecom/plan.yaml", "--synthetic", "400",
               "--seed", "9", "--variant", v, "--sweep", "floor_amount=500,900",
               "--out", again, "--no-progress").code == 0
    assert (again / "summary.csv").read_text() == (out / "summary.csv").read_text()


def test_simulate_command_on_a_records_file_and_a_whole_plan_variant(tmp_path: Path,
                                                                     cli) -> None:  # type: ignore[no-untyped-def]
    plan = load_plan(ROOT / "examples/telecom/plan.yaml")
    other = variant(plan, "x", parameters={"floor_amount": 1000}).plan
    path = tmp_path / "floor-1000.yaml"
    path.write_text(other.to_yaml(), encoding="utf-8")
    res = cli("simulate", ROOT / "examples/telecom/plan.yaml", "--population",
              ROOT / "examples/telecom/records.jsonl", "--variant", path, "--out",
              tmp_path / "r", "--no-progress")
    assert res.code == 0, res.err
    rows = (tmp_path / "r/summary.csv").read_text(encoding="utf-8").splitlines()
    # E1: X 948.00, Y 700.00 (on the floor), Z 4060.00; a 1000 floor lifts Y by 300
    # and X by 52: 5708.00 + 352 = 6060.00
    assert rows[1].split(",")[:3] == ["baseline", "3", "5708.00"]
    assert rows[2].split(",")[:3] == ["floor-1000", "3", "6060.00"]


def test_simulate_command_errors(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    plan = ROOT / "examples/telecom/plan.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nchanges:\n  policies.comission.tiers[1].rate: 0.05\n",
                   encoding="utf-8")
    res = cli("simulate", plan, "--synthetic", "5", "--variant", bad, "--out", tmp_path / "o")
    assert res.code == 2
    assert "did you mean 'commission'" in res.err
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\nchange: {}\n", encoding="utf-8")
    res = cli("simulate", plan, "--synthetic", "5", "--variant", typo, "--out", tmp_path / "o")
    assert res.code == 2
    assert "did you mean 'changes'" in res.err
    res = cli("simulate", plan, "--synthetic", "5", "--sweep", "floor_amount", "--out",
              tmp_path / "o")
    assert res.code == 2
    assert "PARAM=v1,v2" in res.err
    res = cli("simulate", plan, "--out", tmp_path / "o")
    assert res.code == 2  # neither --population nor --synthetic


def test_sweep_of_20_values_on_10000_payees_finishes_with_a_progress_bar(tmp_path: Path,
                                                                          cli) -> None:  # type: ignore[no-untyped-def]
    values = ",".join(str(500 + 50 * i) for i in range(20))
    res = cli("simulate", ROOT / "examples/telecom/plan.yaml", "--synthetic", "10000",
              "--seed", "1", "--sweep", f"floor_amount={values}", "--out", tmp_path / "big",
              "--progress")
    assert res.code == 0, res.err
    assert "21/21" in res.err  # baseline and 20 variants
    rows = (tmp_path / "big/summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 22
    costs = [Decimal(r.split(",")[2]) for r in rows[2:]]
    assert costs == sorted(costs)
    assert costs[0] < costs[-1]
    assert_real_png(tmp_path / "big/sweep_cost.png")


# ---------------------------------------------------------------- the notebook


@pytest.mark.parametrize("folder", ["examples", "."], ids=["its-own-folder", "repo-root"])
def test_the_designing_a_floor_notebook_executes_cleanly(tmp_path: Path, folder: str) -> None:
    # JupyterLab starts the kernel in the notebook's own folder; a kernel started at the
    # repository root finds the plan too
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    path = ROOT / "examples/designing-a-floor.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / folder)}})
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "baseline" in text
