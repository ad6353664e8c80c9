"""Plots for simulations: pay curve, pay distribution, Lorenz curve, cost of a sweep.

Each function returns a :class:`matplotlib.figure.Figure` drawn with the Agg
renderer (no window, no pyplot state), and :func:`save` writes one to a PNG.
matplotlib is an extra (``pip install 'incentives[simulate]'``); importing
:mod:`incentives` never imports it. Amounts become floats only here, for
drawing.

>>> from incentives import load_plan
>>> plan = load_plan("examples/telecom/plan.yaml")
>>> fig = pay_curve(plan, {"metrics": {"traffic_revenue": 0}}, "traffic_revenue",
...                 range(0, 120001, 10000))
>>> fig.axes[0].get_xlabel()   # the metric's label, as the plan declares it
'通信费收入'
>>> fig.axes[0].get_ylabel()   # the plan's currency on a money axis
'pay (CNY)'

Axes are labelled with the plan's labels (a metric's or a policy's ``label``;
its id when it has none). A money axis names the currency: the ``currency=``
argument, else the plan's ``currency``, else the neutral ``amount``. Numbers
on the axes are written out in full with thousands separators (``1,200,000``,
never ``1.2`` beside a ``1e6`` offset); shares are percentages.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .money import ZERO
from .plan import Plan

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import Run
    from .simulate import Simulation, Variant

__all__ = ["MissingGlyphsWarning", "cost_per_revenue", "lorenz", "lorenz_points", "pay_curve", "pay_distribution",
           "plain_number", "save", "sweep_cost"]

Runs = Union["Simulation", Mapping[str, "Run"]]

#: fonts with Chinese glyphs, tried after the default one (the first installed is used)
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Hiragino Sans GB",
             "Microsoft YaHei", "SimHei", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "Noto Sans SC", "Droid Sans Fallback", "AR PL UMing CN")


#: line styles taken in turn, so that curves that coincide can still all be seen
_STYLES = ("-", "--", "-.", ":")


def plain_number(x: float, pos: int | None = None) -> str:
    """A tick label written out in full, with thousands separators.

    >>> plain_number(1200000.0), plain_number(0.25), plain_number(-1500.0)
    ('1,200,000', '0.25', '-1,500')
    """
    text = f"{x:,.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _plain_axis(axis: Any) -> None:
    """Write ``axis``'s ticks out in full: no ``1e6`` offset, no scientific notation."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(plain_number))


def _percent_axis(axis: Any, whole: float) -> None:
    """Ticks as percentages of ``whole`` (``1.0`` for shares, ``100`` for percents)."""
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(whole, decimals=None))


def _fonts() -> Any:
    """Font settings: the default sans-serif, then an installed CJK font for labels in Chinese."""
    from matplotlib import font_manager, rcParams

    installed = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [name for name in CJK_FONTS if name in installed]
    return {"font.family": ["sans-serif"],
            "font.sans-serif": [*rcParams["font.sans-serif"][:1], *cjk,
                                *rcParams["font.sans-serif"][1:]]}


def _label(plans: Sequence[Plan], name: str) -> str:
    """What the plans call ``name`` (a metric, attribute, event or policy): the first label
    one of them declares, else ``name``."""
    from .plan import flatten_policies

    for plan in plans:
        for table in (plan.inputs.metrics, plan.inputs.attributes, plan.inputs.events):
            spec = table.get(name)
            if spec is not None and spec.label:
                return spec.label
        for p in flatten_policies(plan.policies):
            if p.id == name and p.label:
                return p.label
    return name


def _parameter_label(plans: Sequence[Plan], parameter: str) -> str:
    """A swept parameter for people: a path into a policy names the policy by its label
    (``policies.commission.tiers[2].rate`` is ``通信费提成: tiers[2].rate``); a plan
    parameter has no label and keeps its name."""
    head, _, rest = parameter.partition(".")
    if head == "policies" and rest:
        pid, dot, tail = rest.partition(".")
        label = _label(plans, pid)
        if label != pid:
            return f"{label}: {tail}" if dot else label
    return parameter


def _currency(plans: Sequence[Plan], currency: str | None) -> str:
    """The currency of money axes: the argument, else the (first) plan's, else "amount"."""
    if currency:
        return currency
    for plan in plans:
        if plan.currency:
            return plan.currency
    return "amount"


def _money(what: str, currency: str) -> str:
    return f"{what} ({currency})"


def _require() -> None:
    """matplotlib, or a one-line error naming the extra to install (before any work)."""
    from .extras import require

    require("simulate", "incentives.plots", modules=("matplotlib",))


def _figure(width: float = 7.0, height: float = 4.2) -> Figure:
    _require()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _runs(runs: Runs) -> dict[str, Run]:
    if hasattr(runs, "runs") and callable(runs.runs):
        return dict(runs.runs())
    return dict(runs)  # type: ignore[arg-type]


def _plans(plans: Plan | Variant | Mapping[str, Plan] | Sequence[Plan | Variant]
           ) -> dict[str, Plan]:
    if isinstance(plans, Plan):
        return {plans.name: plans}
    if isinstance(plans, Mapping):
        return dict(plans)
    from .simulate import Variant

    items: list[Plan | Variant] = [plans] if isinstance(plans, Variant) else list(plans)
    out: dict[str, Plan] = {}
    for i, p in enumerate(items):
        if isinstance(p, Plan):
            out[p.name if p.name not in out else f"{p.name} ({i + 1})"] = p
        else:
            out[p.name] = p.plan
    return out


def pay_curve(
    plans: Plan | Variant | Mapping[str, Plan] | Sequence[Plan | Variant],
    record: Mapping[str, Any],
    metric: str,
    values: Iterable[Any],
    *,
    line: str | None = None,
    period: str = "2026-05",
    title: str | None = None,
    currency: str | None = None,
) -> Figure:
    """Pay against one metric, the rest of ``record`` held as it is; one curve per plan.

    ``record`` is a nested record (``metrics``, ``attributes``, ``events``);
    ``payee`` and ``period`` may be left out. ``line`` plots one policy's
    amount instead of the total. The x axis is the metric's label, the y axis
    pay (or the policy's label) in the currency; the legend names the plans.
    """
    xs = [Decimal(str(v)) for v in values]
    named = _plans(plans)
    fig = _figure()
    ax = fig.add_subplot()
    for name, plan in named.items():
        people = []
        for i, x in enumerate(xs):
            rec = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in record.items()}
            rec.setdefault("period", period)
            rec["payee"] = f"x{i}"
            rec.setdefault("metrics", {})[metric] = x
            people.append(rec)
        run = plan.evaluate(people)
        by_payee = {r.payee: r for r in run.results}
        ys = []
        for i in range(len(xs)):
            r = by_payee[f"x{i}"]
            ys.append(float(r.amount(line) if line else r.total))
        ax.plot([float(x) for x in xs], ys, label=name, linewidth=1.8,
                linestyle=_STYLES[len(ax.lines) % len(_STYLES)])
    declared = list(named.values())
    shown = _label(declared, metric)
    ax.set_xlabel(shown)
    ax.set_ylabel(_money(_label(declared, line) if line else "pay", _currency(declared, currency)))
    ax.set_title(title or f"Pay against {shown}")
    _plain_axis(ax.xaxis)
    _plain_axis(ax.yaxis)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def pay_distribution(runs: Runs, *, bins: int = 40, title: str | None = None,
                     currency: str | None = None) -> Figure:
    """The distribution of payee totals: one small panel per outcome, on shared axes.

    Each panel shows its outcome filled; the panels after the first also show
    the first outcome (the baseline) as an outline, so every distribution can
    be seen whole and compared with the baseline. Up to 4 outcomes stack in
    one column, more go in two or three columns.
    """
    import math

    named = _runs(runs)
    data = {name: [float(r.total) for r in run.results] for name, run in named.items()}
    values = [v for vs in data.values() for v in vs]
    n = max(1, len(data))
    ncols = 1 if n <= 4 else 2 if n <= 8 else 3
    nrows = math.ceil(n / ncols)
    fig = _figure(7.0 if ncols == 1 else 4.2 * ncols, 1.2 + 1.9 * nrows)
    grid = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    axes = [ax for row in grid for ax in row]
    edges: Any = bins
    if values:
        lo, hi = min(values), max(values)
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)] if hi > lo else bins
    money = _money("pay", _currency([run.plan for run in named.values()], currency))
    colors = [f"C{i % 10}" for i in range(n)]
    names = list(data)
    for i, ax in enumerate(axes):
        if i >= len(names):
            ax.set_visible(False)
            continue
        name = names[i]
        if data[name]:
            ax.hist(data[name], bins=edges, histtype="stepfilled", alpha=0.45,
                    color=colors[i], edgecolor=colors[i], linewidth=1.2, label=name)
        if i > 0 and data[names[0]]:
            ax.hist(data[names[0]], bins=edges, histtype="step", color="0.25",
                    linestyle="--", linewidth=1.1, label=f"{names[0]} (outline)")
        ax.set_title(name, fontsize="medium")
        ax.grid(True, alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("payees")
        if i + ncols >= len(names):  # the lowest panel of its column
            ax.set_xlabel(money)
            ax.tick_params(labelbottom=True)
        _plain_axis(ax.xaxis)
        _plain_axis(ax.yaxis)
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize="small")
    fig.suptitle(title or "Distribution of pay")
    return fig


def lorenz_points(amounts: Sequence[Decimal]) -> tuple[list[float], list[float]]:
    """The Lorenz curve of ``amounts``: cumulative share of payees and of pay.

    >>> lorenz_points([Decimal(1), Decimal(3)])
    ([0.0, 0.5, 1.0], [0.0, 0.25, 1.0])
    """
    xs = sorted(amounts)
    total = sum(xs, ZERO)
    n = len(xs)
    if n == 0:
        return [0.0, 1.0], [0.0, 1.0]
    people = [i / n for i in range(n + 1)]
    acc = ZERO
    pay = [0.0]
    for x in xs:
        acc += x
        pay.append(float(acc / total) if total else 0.0)
    return people, pay


def lorenz(runs: Runs, *, title: str | None = None) -> Figure:
    """Lorenz curves of payee totals, one per outcome, with each Gini in the legend."""
    from .spread import gini

    fig = _figure(5.6, 5.0)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="equality")
    for name, run in _runs(runs).items():
        totals = [r.total for r in run.results]
        people, pay = lorenz_points(totals)
        g = gini(totals) if totals else None
        label = f"{name} (Gini {g:.3f})" if g is not None else name
        ax.plot(people, pay, linewidth=1.8, label=label,
                linestyle=_STYLES[(len(ax.lines) - 1) % len(_STYLES)])
    ax.set_xlabel("share of payees (lowest paid first)")
    ax.set_ylabel("share of pay")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _percent_axis(ax.xaxis, 1.0)
    _percent_axis(ax.yaxis, 1.0)
    ax.set_title(title or "Lorenz curve of pay")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def sweep_cost(sim: Simulation, *, parameter: str | None = None,
               revenue: str | None = None, title: str | None = None,
               currency: str | None = None) -> Figure:
    """Total cost against a swept parameter (the variants made by :func:`sweep`).

    Other variants are left out; with several swept parameters, ``parameter``
    names the one to plot (default: the first). With ``revenue`` (a metric), a
    second panel shows cost per revenue as a percentage.
    """
    swept = [o for o in sim.variants if o.variant is not None and o.variant.parameter]
    if parameter is None and swept:
        parameter = swept[0].variant.parameter  # type: ignore[union-attr]
    chosen = [o for o in swept if o.variant is not None and o.variant.parameter == parameter]
    if not chosen:
        raise ValueError("the simulation has no swept variants"
                         + (f" of {parameter!r}" if parameter else "")
                         + " (make them with sweep())")
    chosen.sort(key=lambda o: o.variant.value)  # type: ignore[union-attr]
    xs = [float(o.variant.value) for o in chosen]  # type: ignore[union-attr]
    plans = [sim.baseline.plan, *(o.plan for o in chosen)]
    money = _money("total cost", _currency(plans, currency))
    fig = _figure(7.0, 6.4 if revenue else 4.2)
    axes = fig.subplots(2 if revenue else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    ax.plot(xs, [float(o.run.total) for o in chosen], marker="o", linewidth=1.8,
            label="total cost")
    ax.axhline(float(sim.baseline.run.total), color="grey", linestyle="--", linewidth=1,
               label=f"{sim.baseline.name}")
    ax.set_ylabel(money)
    swept_name = _parameter_label(plans, str(parameter))
    ax.set_title(title or f"Cost against {swept_name}")
    if revenue:
        share = axes[1]
        ys = [_cost_per_revenue(o.run, revenue) for o in chosen]
        share.plot(xs, [float(y) if y is not None else float("nan") for y in ys], marker="o",
                   linewidth=1.8, color="C1", label="cost per revenue")
        base = _cost_per_revenue(sim.baseline.run, revenue)
        if base is not None:
            share.axhline(float(base), color="grey", linestyle="--", linewidth=1,
                          label=f"{sim.baseline.name}")
        share.set_ylabel(f"cost per {_label(plans, revenue)} (%)")
        _percent_axis(share.yaxis, 100.0)
    _plain_axis(ax.yaxis)
    for a in axes:
        a.grid(True, alpha=0.3)
        a.legend()
        _plain_axis(a.xaxis)
    axes[-1].set_xlabel(swept_name)
    return fig


def _cost_per_revenue(run: Run, revenue: str) -> Decimal | None:
    """``run``'s total cost over its payees' total ``revenue``, as a percentage."""
    from .simulate import summarize

    ratio = summarize(run, revenue=revenue).cost_per_revenue
    return None if ratio is None else ratio * 100


def cost_per_revenue(runs: Runs, revenue: str, *, title: str | None = None) -> Figure:
    """Cost per revenue of each outcome, as a percentage: one bar per outcome, first at the
    top, each bar labelled with its percentage (to 2 places)."""
    named = _runs(runs)
    plans = [run.plan for run in named.values()]
    shares = {name: _cost_per_revenue(run, revenue) for name, run in named.items()}
    fig = _figure(7.0, 1.4 + 0.45 * max(1, len(shares)))
    ax = fig.add_subplot()
    names = list(shares)
    ys = list(range(len(names)))[::-1]
    widths = [float(v) if v is not None else 0.0 for v in shares.values()]
    bars = ax.barh(ys, widths, color=[f"C{i % 10}" for i in range(len(names))], height=0.6)
    ax.bar_label(bars, labels=[f"{v.quantize(Decimal('0.01'))}%" if v is not None else "-"
                               for v in shares.values()], padding=3)
    ax.set_yticks(ys, labels=names)
    ax.set_xlabel(f"cost per {_label(plans, revenue)} (%)")
    _percent_axis(ax.xaxis, 100.0)
    ax.margins(x=0.15)
    ax.set_title(title or f"Cost per {_label(plans, revenue)}")
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` as a PNG; return the path."""
    from matplotlib import rc_context

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught, rc_context(_fonts()):
        warnings.simplefilter("always")
        fig.savefig(out, format="png", dpi=dpi)
    missing = False
    for w in caught:
        if "missing from font" in str(w.message):
            missing = True  # one warning a figure, not one a character
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:
        warnings.warn(MissingGlyphsWarning(
            f"{out.name}: no installed font has every character of its labels (Chinese "
            "labels need a CJK font such as Noto Sans CJK SC, Debian's fonts-noto-cjk); "
            "those characters are drawn as boxes"), stacklevel=2)
    return out


class MissingGlyphsWarning(UserWarning):
    """A saved figure has characters that no installed font can draw."""
