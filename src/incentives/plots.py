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
>>> fig.axes[0].get_xlabel()
'traffic_revenue'
"""

from __future__ import annotations

import os
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

__all__ = ["lorenz", "lorenz_points", "pay_curve", "pay_distribution", "save", "sweep_cost"]

Runs = Union["Simulation", Mapping[str, "Run"]]


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
) -> Figure:
    """Pay against one metric, the rest of ``record`` held as it is; one curve per plan.

    ``record`` is a nested record (``metrics``, ``attributes``, ``events``);
    ``payee`` and ``period`` may be left out. ``line`` plots one policy's
    amount instead of the total.
    """
    xs = [Decimal(str(v)) for v in values]
    fig = _figure()
    ax = fig.add_subplot()
    for name, plan in _plans(plans).items():
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
        ax.plot([float(x) for x in xs], ys, label=name, linewidth=1.8)
    ax.set_xlabel(metric)
    ax.set_ylabel(line or "pay")
    ax.set_title(title or f"Pay against {metric}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def pay_distribution(runs: Runs, *, bins: int = 40, title: str | None = None) -> Figure:
    """The distribution of payee totals: one histogram outline per outcome."""
    data = {name: [float(r.total) for r in run.results] for name, run in _runs(runs).items()}
    values = [v for vs in data.values() for v in vs]
    fig = _figure()
    ax = fig.add_subplot()
    if values:
        lo, hi = min(values), max(values)
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)] if hi > lo else bins
        for name, vs in data.items():
            ax.hist(vs, bins=edges, histtype="step", linewidth=1.6, label=name)
    ax.set_xlabel("pay")
    ax.set_ylabel("payees")
    ax.set_title(title or "Distribution of pay")
    ax.grid(True, alpha=0.3)
    ax.legend()
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
        ax.plot(people, pay, linewidth=1.8, label=label)
    ax.set_xlabel("share of payees (lowest paid first)")
    ax.set_ylabel("share of pay")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or "Lorenz curve of pay")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def sweep_cost(sim: Simulation, *, parameter: str | None = None,
               title: str | None = None) -> Figure:
    """Total cost against a swept parameter (the variants made by :func:`sweep`).

    Other variants are left out; with several swept parameters, ``parameter``
    names the one to plot (default: the first).
    """
    swept = [o for o in sim.variants if o.variant is not None and o.variant.parameter]
    if parameter is None and swept:
        parameter = swept[0].variant.parameter  # type: ignore[union-attr]
    points = [(o.variant.value, o.run.total, o.variant.parameter) for o in swept
              if o.variant is not None and o.variant.parameter == parameter]
    if not points:
        raise ValueError("the simulation has no swept variants"
                         + (f" of {parameter!r}" if parameter else "")
                         + " (make them with sweep())")
    points.sort(key=lambda p: p[0])
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([float(p[0]) for p in points], [float(p[1]) for p in points], marker="o",
            linewidth=1.8, label="total cost")
    ax.axhline(float(sim.baseline.run.total), color="grey", linestyle="--", linewidth=1,
               label="baseline")
    ax.set_xlabel(str(points[0][2]))
    ax.set_ylabel("total cost")
    ax.set_title(title or f"Cost against {points[0][2]}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def save(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` as a PNG; return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi)
    return out
