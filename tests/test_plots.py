"""Plots: each figure's axis labels, tick formatters and legend entries, exactly.

Figures are drawn (Agg) before they are inspected, so the tick labels and the
offset text are the ones a reader would see.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from matplotlib.ticker import FuncFormatter, PercentFormatter

from incentives import FormulaLine, Plan, load_plan, plots
from incentives.populations import synthetic
from incentives.simulate import Simulation, simulate, summarize, sweep, variant
from incentives.spread import gini

# this machine may have no font with Chinese glyphs; the labels are checked as text
pytestmark = pytest.mark.filterwarnings("ignore:Glyph .* missing from font")

ROOT = Path(__file__).resolve().parent.parent
TELECOM = ROOT / "examples" / "telecom" / "plan.yaml"


@pytest.fixture(scope="module")
def sim() -> Simulation:
    plan = load_plan(TELECOM)
    people = synthetic(plan, 120, seed=5)
    higher = variant(plan, "floor 1000", parameters={"floor_amount": 1000})
    return simulate(plan, [higher, *sweep(plan, "floor_amount", [700, 900, 1100])], people,
                    progress=False)


def _drawn(fig: Any) -> Any:
    fig.canvas.draw()
    return fig


def _legend(ax: Any) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


def _plain(axis: Any) -> None:
    """Ticks written out in full: our formatter, no offset text, no exponent."""
    formatter = axis.get_major_formatter()
    assert isinstance(formatter, FuncFormatter)
    assert formatter(1_234_567.0, 0) == "1,234,567"
    assert axis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
    assert labels
    assert not any("e" in x.lower() or "×" in x for x in labels), labels


def test_plain_number_writes_ticks_in_full() -> None:
    assert plots.plain_number(1e6) == "1,000,000"
    assert plots.plain_number(2_500_000.0) == "2,500,000"
    assert plots.plain_number(0.1 + 0.2) == "0.3"
    assert plots.plain_number(-0.0) == "0"
    assert plots.plain_number(-1500.5) == "-1,500.5"


def test_pay_curve_labels_currency_and_plain_ticks() -> None:
    plan = load_plan(TELECOM)
    higher = variant(plan, "floor 1000", parameters={"floor_amount": 1000})
    # revenue up to 50 million: pay in the millions, where matplotlib would write 1e6
    fig = _drawn(plots.pay_curve({"baseline": plan, "floor 1000": higher.plan},
                                 {"metrics": {"traffic_revenue": 0}}, "traffic_revenue",
                                 range(0, 50_000_001, 1_000_000)))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "通信费收入"
    assert ax.get_ylabel() == "pay (CNY)"
    assert ax.get_title() == "Pay against 通信费收入"
    assert _legend(ax) == ["baseline", "floor 1000"]
    _plain(ax.xaxis)
    _plain(ax.yaxis)
    assert max(ax.get_ylim()) > 1_000_000
    assert any("," in t.get_text() for t in ax.get_yticklabels())

    one = _drawn(plots.pay_curve(plan, {"metrics": {"traffic_revenue": 0}}, "traffic_revenue",
                                 [0, 50000, 100000], line="commission", currency="EUR"))
    assert one.axes[0].get_ylabel() == "通信费提成 (traffic commission) (EUR)"
    assert _legend(one.axes[0]) == ["telecom-key-account"]


def test_a_plan_without_currency_or_labels_gets_neutral_names() -> None:
    plan = Plan(name="plain", inputs={"metrics": {"sales": {}}},
                policies=[FormulaLine(id="bonus", amount="sales * 0.1")])
    fig = _drawn(plots.pay_curve(plan, {"metrics": {}}, "sales", [0, 10, 20]))
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("sales", "pay (amount)")
    labelled = Plan(name="labelled", currency="USD",
                    inputs={"metrics": {"sales": {"label": "Net sales"}}},
                    policies=[FormulaLine(id="bonus", label="Sales bonus", amount="sales")])
    fig = _drawn(plots.pay_curve([plan, labelled], {"metrics": {}}, "sales", [0, 10],
                                 line="bonus"))
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Net sales", "Sales bonus (USD)")
    assert _legend(ax) == ["plain", "labelled"]


def test_pay_distribution_one_panel_per_outcome_each_seen_whole(sim: Simulation) -> None:
    fig = _drawn(plots.pay_distribution(sim))
    names = ["baseline", "floor 1000", "floor_amount=700", "floor_amount=900",
             "floor_amount=1100"]
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == names
    assert len(fig.axes) == 6  # a 3 x 2 grid; the sixth panel is hidden
    assert fig.get_suptitle() == "Distribution of pay"
    assert _legend(visible[0]) == ["baseline"]
    for ax, name in zip(visible[1:], names[1:], strict=True):
        assert _legend(ax) == [name, "baseline (outline)"]
    # the lowest panel of each column names the money axis; the left column counts payees
    assert [ax.get_xlabel() for ax in visible] == ["", "", "", "pay (CNY)", "pay (CNY)"]
    assert [ax.get_ylabel() for ax in visible] == ["payees", "", "payees", "", "payees"]
    for ax in visible[3:]:
        _plain(ax.xaxis)
    # each outcome drawn filled and translucent, with the same bins
    for ax in visible:
        filled = [p for p in ax.patches if p.get_fill()]
        assert len(filled) == 1
        assert filled[0].get_alpha() == pytest.approx(0.45)
    few = _drawn(plots.pay_distribution({"a": sim.baseline.run}, currency="EUR"))
    assert [ax.get_xlabel() for ax in few.axes] == ["pay (EUR)"]
    assert _legend(few.axes[0]) == ["a"]


def test_lorenz_shares_as_percentages_with_each_gini(sim: Simulation) -> None:
    fig = _drawn(plots.lorenz(sim))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "share of payees (lowest paid first)"
    assert ax.get_ylabel() == "share of pay"
    expected = ["equality"] + [f"{o.name} (Gini {gini([r.total for r in o.run]):.3f})"
                               for o in sim.outcomes]
    assert _legend(ax) == expected
    # curves that coincide (the baseline and a floor below every total) stay visible
    styles = [line.get_linestyle() for line in ax.get_lines()[1:]]
    assert styles == ["-", "--", "-.", ":", "-"]
    for axis in (ax.xaxis, ax.yaxis):
        assert isinstance(axis.get_major_formatter(), PercentFormatter)
        assert axis.get_offset_text().get_text() == ""
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "100%"


def test_sweep_cost_with_cost_per_revenue_as_a_percentage(sim: Simulation) -> None:
    fig = _drawn(plots.sweep_cost(sim, revenue="traffic_revenue"))
    cost, share = fig.axes
    assert cost.get_title() == "Cost against floor_amount"
    assert cost.get_ylabel() == "total cost (CNY)"
    assert share.get_ylabel() == "cost per 通信费收入 (%)"
    assert (cost.get_xlabel(), share.get_xlabel()) == ("", "floor_amount")
    assert _legend(cost) == ["total cost", "baseline"]
    assert _legend(share) == ["cost per revenue", "baseline"]
    _plain(cost.yaxis)
    _plain(share.xaxis)
    assert isinstance(share.yaxis.get_major_formatter(), PercentFormatter)
    assert share.yaxis.get_offset_text().get_text() == ""
    swept = sorted((o for o in sim.variants if o.variant and o.variant.parameter),
                   key=lambda o: o.variant.value)  # type: ignore[union-attr]
    line = share.get_lines()[0]
    assert list(line.get_xdata()) == [700.0, 900.0, 1100.0]
    assert list(line.get_ydata()) == [
        float(summarize(o.run, revenue="traffic_revenue").cost_per_revenue * 100)  # type: ignore[operator]
        for o in swept]
    plain = _drawn(plots.sweep_cost(sim, currency="EUR"))
    assert [ax.get_ylabel() for ax in plain.axes] == ["total cost (EUR)"]


def test_a_swept_policy_path_is_named_by_the_policys_label() -> None:
    plan = load_plan(TELECOM)
    people = synthetic(plan, 40, seed=2)
    rates = sweep(plan, "policies.commission.tiers[2].rate", ["0.05", "0.07"])
    fig = _drawn(plots.sweep_cost(simulate(plan, rates, people, progress=False)))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "通信费提成 (traffic commission): tiers[2].rate"
    assert ax.get_title() == "Cost against 通信费提成 (traffic commission): tiers[2].rate"
    _plain(ax.xaxis)


def test_cost_per_revenue_bars_are_labelled_percentages(sim: Simulation) -> None:
    fig = _drawn(plots.cost_per_revenue(sim, "traffic_revenue"))
    (ax,) = fig.axes
    assert ax.get_xlabel() == "cost per 通信费收入 (%)"
    assert ax.get_title() == "Cost per 通信费收入"
    top_down = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in top_down] == [o.name for o in sim.outcomes]
    expected = []
    for o in sim.outcomes:
        ratio = summarize(o.run, revenue="traffic_revenue").cost_per_revenue
        assert ratio is not None
        expected.append(f"{(ratio * 100).quantize(Decimal('0.01'))}%")
    assert [t.get_text() for t in ax.texts] == expected
    assert isinstance(ax.xaxis.get_major_formatter(), PercentFormatter)


def test_save_writes_a_png(sim: Simulation, tmp_path: Path) -> None:
    out = plots.save(plots.lorenz(sim), tmp_path / "sub" / "lorenz.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labels_no_font_can_draw_give_one_warning_a_figure(tmp_path: Path) -> None:
    # matplotlib warns once per missing character; a saved figure warns once, by name
    import warnings

    from matplotlib.figure import Figure

    from incentives.plots import MissingGlyphsWarning, save

    fig = Figure()
    ax = fig.add_subplot()
    ax.set_xlabel("\ue000\ue001 private-use characters no font has")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save(fig, tmp_path / "tags.png")
    assert [(w.category, str(w.message).split(":")[0]) for w in caught] == [
        (MissingGlyphsWarning, "tags.png")]
    assert (tmp_path / "tags.png").stat().st_size > 0
