"""``incentives simulate``: a baseline and its variants on a population, as a report.

::

    incentives simulate plan.yaml --synthetic 5000 --seed 7 \\
        --variant higher-floor.yaml --sweep floor_amount=500,700,900 --out report/

writes ``report/report.html`` (and ``report.md``) with the comparison tables
and PNG plots beside them, plus ``summary.csv``, ``groups.csv`` and
``changes.csv`` with exact figures. A variant file is either a whole plan
(it has ``policies``) or a list of changes to the baseline::

    name: higher floor
    parameters: {floor_amount: 900}
    changes:
      policies.commission.tiers[1].rate: 0.05
    remove: [churn_penalty]
    add:
      - {type: cap, id: ceiling, limit: 8000}

Needs the ``simulate`` extra (pandas is not needed; matplotlib and tqdm are).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import warnings
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .errors import IncentivesError, UsageError, did_you_mean

if TYPE_CHECKING:
    from .plan import Plan
    from .simulate import Comparison, Simulation, Variant

__all__ = ["cmd_simulate", "load_variant", "register", "report_context", "write_report"]

_VARIANT_KEYS = ("name", "parameters", "changes", "remove", "add")


def register(sub: Any) -> None:
    """Add the ``simulate`` subcommand."""
    p = sub.add_parser(
        "simulate",
        help="run a plan and its variants on a population; write a report with plots",
        description="Evaluate a baseline plan and its variants on the same population "
                    "(a records file or a seeded synthetic one) and write a report "
                    "(HTML and Markdown, with PNG plots and CSV tables) to --out.",
    )
    p.add_argument("plan", help="the baseline plan file (YAML)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--population", metavar="FILE", help="records: .json, .jsonl or .csv")
    src.add_argument("--synthetic", metavar="N", type=int,
                     help="make N synthetic payees fitting the plan's inputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic population")
    from .cli import period_option

    p.add_argument("--period", default="2026-05", type=period_option,
                   help="period of the synthetic population")
    p.add_argument("--groups", type=int, default=None,
                   help="groups in the synthetic population (default: the plan's declared "
                        "groups, else 4)")
    p.add_argument("--variant", metavar="FILE", action="append", default=[],
                   help="a variant file (a plan, or changes to the baseline); repeatable")
    p.add_argument("--sweep", metavar="PARAM=v1,v2,...",
                   help="one variant per value of a parameter (or a path such as "
                        "policies.commission.tiers[1].rate)")
    p.add_argument("--revenue", metavar="METRIC",
                   help="the metric cost is measured against (default: one named like "
                        "revenue or sales)")
    p.add_argument("--top", type=int, default=10, help="biggest per-payee changes to list")
    p.add_argument("--out", required=True, metavar="DIR", help="the report's folder")
    p.add_argument("--templates", metavar="DIR",
                   help="a folder of HTML templates overriding the bundled report template "
                        "(see docs/simulation.md)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar (default: on a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    from .fileio import add_file_options

    add_file_options(p)
    p.set_defaults(func=cmd_simulate)


def load_variant(path: str | Path, base: Plan) -> Variant:
    """Read a variant file: a whole plan, or changes to ``base``."""
    from .plan import load_plan
    from .simulate import Variant, variant
    from .yamlio import load_yaml

    p = Path(path)
    from .fileio import read_text_capped
    from .yamlio import MAX_TEXT

    try:  # a device or an endless FIFO is cut off
        text = read_text_capped(p, 4 * MAX_TEXT + 3, f"the variant file {str(path)!r}")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the variant file {str(path)!r}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    data, _ = load_yaml(text, file=str(path))
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a variant file is a mapping (a plan, or name/changes)")
    if "policies" in data or "plan" in data:
        plan = load_plan(p)
        return Variant(p.stem if plan.name == base.name else plan.name, plan, base)
    for key in data:
        if key not in _VARIANT_KEYS:
            hint = did_you_mean(str(key), _VARIANT_KEYS)
            raise UsageError(f"{path}: unknown key {key!r}" + (f"; {hint}" if hint else "")
                             + f"; a variant file has {', '.join(_VARIANT_KEYS)}")
    remove = data.get("remove") or []
    add = data.get("add") or []
    if not isinstance(remove, list) or not isinstance(add, list):
        raise UsageError(f"{path}: 'remove' and 'add' are lists")
    return variant(base, str(data.get("name") or p.stem),
                   parameters=data.get("parameters") or {},
                   changes=data.get("changes") or {}, remove=[str(x) for x in remove], add=add)


def _parse_sweep(text: str) -> tuple[str, list[str]]:
    name, sep, values = text.partition("=")
    items = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name.strip() or not items:
        raise UsageError(f"--sweep {text!r}: write it as PARAM=v1,v2,...")
    return name.strip(), items


#: The files a report writes in its folder.
REPORT_FILES = ("report.html", "report.md", "summary.csv", "groups.csv", "changes.csv",
                "distribution.png", "lorenz.png", "pay_curve.png", "sweep_cost.png",
                "cost_per_revenue.png")


def _check_report_folder(args: argparse.Namespace) -> None:
    """Refuse, before any work, a report folder where the report would replace a file
    the command reads (the plan, the population, a variant)."""
    import os

    folder = os.path.realpath(args.out)
    inputs = [("plan", args.plan), ("population", args.population),
              *(("variant", v) for v in args.variant)]
    for what, path in inputs:
        if path and os.path.realpath(path) in {os.path.join(folder, n) for n in REPORT_FILES}:
            raise UsageError(f"--out {args.out}: the report would replace {path}, the {what} "
                             "file read by this command: give another folder")


def cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    from .extras import require

    require("simulate", "incentives simulate")  # before any work: one line, exit 2
    _check_report_folder(args)
    from .templating import check

    check("simulation_report.html.j2", args.templates)  # before any work
    from .fileio import file_options
    from .plan import load_plan
    from .populations import revenue_metric, synthetic
    from .records import read_records_file
    from .simulate import simulate, sweep

    plan = load_plan(args.plan)
    if plan.transactions:
        raise UsageError("simulate does not read transactions yet: it compares variants on "
                         "payee records (use incentives run --transactions for each variant)")
    if args.synthetic is not None:
        if args.synthetic < 1:
            raise UsageError("--synthetic needs at least 1 payee")
        population: list[Any] = synthetic(plan, args.synthetic, seed=args.seed,
                                          period=args.period, groups=args.groups)
        source = f"{args.synthetic} synthetic payees (seed {args.seed}, period {args.period})"
    else:
        population = read_records_file(args.population, **file_options(args))
        source = f"{len(population)} records from {Path(args.population).name}"
    variants = [load_variant(v, plan) for v in args.variant]
    if args.sweep:
        param, values = _parse_sweep(args.sweep)
        variants += sweep(plan, param, values)
    revenue = args.revenue or revenue_metric(plan, None)
    if args.revenue:
        revenue_metric(plan, args.revenue)  # a clear error for an unknown metric
    sim = simulate(plan, variants, population, progress=args.progress)
    comparison = sim.compare(revenue=revenue, top=args.top)
    from .plots import MissingGlyphsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingGlyphsWarning)
        files = write_report(sim, comparison, args.out, source=source, revenue=revenue,
                             templates=args.templates)
    missing = [w for w in caught if issubclass(w.category, MissingGlyphsWarning)]
    for w in caught:
        if w not in missing:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if missing:  # one line for the report, not one a plot
        sys.stderr.write(f"note: {len(missing)} plot(s) have characters no installed font "
                         "can draw (Chinese labels need a CJK font such as Noto Sans CJK SC, "
                         "Debian's fonts-noto-cjk); they are drawn as boxes\n")
    out.write(comparison.to_text())
    errors = len(sim.baseline.run.errors)
    if errors:
        out.write(f"\n{errors} record(s) could not be evaluated under the baseline; "
                  "see the report\n")
    out.write(f"\nreport: {files[0]}\n")
    return 1 if errors else 0


# ---------------------------------------------------------------- the report


def _cell(value: Any, key: str) -> str:
    from .simulate import format_figure

    if isinstance(value, Decimal) or value is None:
        return format_figure(value, key=key)
    return str(value)


def _table_rows(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    if not rows:
        return [], []
    header = list(rows[0])
    return header, [[_cell(r[k], k) for k in header] for r in rows]


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    header, body = _table_rows(rows)
    if not header:
        return "(none)\n"

    from .display import markdown_plain as esc  # ids, groups, variants shown, never markup

    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict[str, Any]]) -> str:
    """A report table as CSV: text cells (variant, payee, group names) neutralised as
    ``incentives run --format csv`` does (:func:`~incentives.results.csv_text`); numbers
    written as they are (``-5.00`` stays a number)."""
    from .results import csv_text

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else (format(v, "f") if isinstance(v, Decimal)
                                                 else csv_text(v) if isinstance(v, str)
                                                 else str(v)) for k, v in r.items()})
    return buf.getvalue()


def _held_record(sim: Simulation, revenue: str) -> dict[str, Any]:
    """A typical record for the pay curve: every other metric at its median (whole
    where the plan says ``integer``), each attribute and the group at their most common
    value, no events."""
    from collections import Counter

    from .simulate import percentile

    records = sim.records
    if not records:
        return {"metrics": {}, "period": "2026-05"}
    declared = sim.baseline.plan.inputs.metrics
    metrics: dict[str, Decimal] = {}
    for name in records[0].metrics:
        if name != revenue:
            median = percentile([r.metrics[name] for r in records], "0.5")
            spec = declared.get(name)
            if spec is not None and spec.integer:
                median = median.to_integral_value()
            metrics[name] = median
    attributes = {name: Counter(r.attributes[name] for r in records).most_common(1)[0][0]
                  for name in records[0].attributes}
    held: dict[str, Any] = {"metrics": metrics, "attributes": attributes,
                            "period": records[0].period}
    group = Counter(r.group for r in records).most_common(1)[0][0]
    if group is not None and sim.baseline.plan.inputs.groups is not None:
        held["group"] = group  # the plan declares its groups: a record names one
    return held


def _curve_values(sim: Simulation, revenue: str) -> list[Decimal]:
    """About 60 values of ``revenue`` from its lowest allowed value to the population's
    99th percentile, inside the metric's declared bounds and whole where it is ``integer``."""
    from .simulate import percentile

    top = percentile([r.metrics[revenue] for r in sim.records], "0.99")
    spec = sim.baseline.plan.inputs.metrics.get(revenue)
    lo = spec.min if spec is not None and spec.min is not None else Decimal(0)
    hi = spec.max if spec is not None else None
    step = max((top - lo) / 60, Decimal(1))
    if spec is not None and spec.integer:
        step = step.to_integral_value(rounding=ROUND_CEILING)
        lo = lo.to_integral_value(rounding=ROUND_CEILING)
    values = [lo + step * i for i in range(61)]
    return [v for v in values if hi is None or v <= hi] or [lo]


def report_context(sim: Simulation, comparison: Comparison, *, source: str = "",
                   revenue: str | None = None,
                   figures: list[tuple[str, str]] | None = None,
                   notes: list[str] | None = None) -> dict[str, Any]:
    """What the report's template (``simulation_report.html.j2``) is given: plain text,
    lists and mappings (see docs/simulation.md, "Restyling the report")."""
    from .display import FONT_STACK

    def table(rows: list[dict[str, Any]]) -> dict[str, Any]:
        header, body = _table_rows(rows)
        return {"header": header, "rows": body}

    return {
        "title": f"Simulation of {sim.baseline.plan.name}",
        "population": source or f"{len(sim.records)} records",
        "revenue": revenue or "",
        "variants": [o.variant.summary() if o.variant is not None else o.name
                     for o in sim.variants],
        "headline": table(comparison.rows()),
        "groups": table(comparison.group_rows()),
        "changes": table(comparison.change_rows()),
        "figures": [{"file": name, "caption": caption} for name, caption in figures or []],
        "notes": list(notes or []),
        "errors": [{"variant": o.name, "message": str(e)}
                   for o in sim.outcomes for e in o.run.errors][:50],
        "font_stack": FONT_STACK,
    }


def write_report(sim: Simulation, comparison: Comparison, out_dir: str | Path, *,
                 source: str = "", revenue: str | None = None,
                 templates: str | Path | None = None) -> list[Path]:
    """Write the report (HTML, Markdown, CSV tables, PNG plots) to ``out_dir``.

    The HTML page comes from the template ``simulation_report.html.j2``; ``templates``
    is a folder of one's own overriding it (see docs/simulation.md). The page is
    rendered before any file is written: a template that fails leaves no file behind.
    Returns the files written, the HTML page first.
    """
    from .extras import require

    require("simulate", "the simulation report", modules=("matplotlib",))
    from . import plots
    from .fileio import atomic_write
    from .templating import check as check_template
    from .templating import render as render_template

    check_template("simulation_report.html.j2", templates)  # before drawing anything
    folder = Path(out_dir)
    drawn: list[tuple[str, str, Any]] = []
    notes: list[str] = []

    def figure(name: str, caption: str, fig: Any) -> None:
        drawn.append((name, caption, fig))

    figure("distribution.png", "Distribution of pay", plots.pay_distribution(sim))
    figure("lorenz.png", "Lorenz curve of pay (with each Gini)", plots.lorenz(sim))
    if revenue and sim.records:
        plans = {o.name: o.plan for o in sim.outcomes}
        if len(plans) > 8:  # a long sweep: the baseline and the two ends
            names = [sim.outcomes[0].name, sim.outcomes[1].name, sim.outcomes[-1].name]
            plans = {n: plans[n] for n in names}
        try:
            curve = plots.pay_curve(plans, _held_record(sim, revenue), revenue,
                                    _curve_values(sim, revenue))
        except IncentivesError as exc:  # a plan that pays teams may pay no lone payee
            notes.append(f"The pay curve is not drawn: {exc}")
        else:
            figure("pay_curve.png", f"Pay against {revenue}, other metrics at their median",
                   curve)
    swept = [o for o in sim.variants if o.variant is not None and o.variant.parameter]
    if swept:
        figure("sweep_cost.png", "Total cost against the swept parameter"
               + (f", and cost per {revenue} (%)" if revenue else ""),
               plots.sweep_cost(sim, revenue=revenue))
    if revenue:
        figure("cost_per_revenue.png", f"Cost per {revenue} (%)",
               plots.cost_per_revenue(sim, revenue))
    figures = [(name, caption) for name, caption, _ in drawn]
    context = report_context(sim, comparison, source=source, revenue=revenue,
                             figures=figures, notes=notes)
    page = render_template("simulation_report.html.j2", context, templates)
    if not page.endswith("\n"):
        page += "\n"

    folder.mkdir(parents=True, exist_ok=True)
    written = [plots.save(fig, folder / name) for name, _, fig in drawn]
    tables = {
        "summary.csv": comparison.rows(),
        "groups.csv": comparison.group_rows(),
        "changes.csv": comparison.change_rows(),
    }
    for name, rows in tables.items():
        atomic_write(folder / name, _csv(rows))
        written.append(folder / name)

    variants_text = context["variants"]
    errors = [(o.name, e) for o in sim.outcomes for e in o.run.errors]
    title = context["title"]
    from .display import markdown_fence, markdown_plain

    listed = list(variants_text or ["(no variants)"])
    fence = markdown_fence(listed)  # a variant's name cannot close the block early
    population = source or f"{len(sim.records)} records"
    md = [f"# {markdown_plain(title)}", "", f"Population: {markdown_plain(population)}.",
          f"Cost is measured against `{revenue}`." if revenue else "", "",
          "## Variants", ""]
    md += [fence, *listed, fence, "",
           "## Headline figures", "", _markdown_table(comparison.rows()),
           "Shares are of payees; `cost_per_revenue` is total cost over total revenue; "
           "winners and losers are payees whose total rose or fell against the baseline.", "",
           "## Spread per group", "", _markdown_table(comparison.group_rows()),
           "## Biggest per-payee changes", "", _markdown_table(comparison.change_rows()),
           "## Plots", ""]
    for name, caption in figures:
        md += [f"![{markdown_plain(caption)}]({name})", "", f"*{markdown_plain(caption)}*", ""]
    md += [*(markdown_plain(note) for note in notes), *([""] if notes else [])]
    if errors:
        md += ["## Records not evaluated", ""]
        md += [f"- {markdown_plain(name)}: {markdown_plain(str(e))}" for name, e in errors[:50]]
    atomic_write(folder / "report.md", "\n".join(md) + "\n")
    atomic_write(folder / "report.html", page)
    return [folder / "report.html", folder / "report.md", *written]
