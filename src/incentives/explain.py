"""Statements a payee can recompute by hand: text, Markdown and HTML, in English and Chinese.

A statement lists a payee's lines in plan order. Under each line is its
*working*: rows of the form ``what: expression = result``, where the
expression holds only numbers the statement prints, so a person with a
calculator (or a spreadsheet) can check every figure. The last row of a line
ends in the line's amount, and the statement ends in the total, written as the
sum of the lines. Labels come from the plan (in any language); the
statement's own phrases exist in English (``lang="en"``) and Chinese
(``lang="zh"``), and a Chinese statement words in Chinese what policies
report as free text too.

Each policy words its own lines: its *statement working*, in its module beside its
evaluation, is registered on its class with :func:`incentives.policies.explains` and
built from the toolkit in :mod:`incentives.wording`. This module assembles the
statement (header, inputs, the lines in plan order, named values, team context,
total), lays it out as text, Markdown or HTML, and checks a text statement by hand
(:func:`recompute`).

The payee's own lines come first. Figures of the whole group (a pool's size
and sums, the group's mean and spread, who else is tied, a head's team,
per-group figures) are not in the lines' working: they close the statement,
in a section labelled as team context (``Statement.context``).

>>> from incentives import Plan, Tiered
>>> plan = Plan(name="demo", inputs={"metrics": {"revenue": {}}}, policies=[
...     Tiered(id="commission", basis="revenue", method="marginal",
...            tiers=[{"from": 0, "rate": "0.02"}, {"from": 30000, "rate": "0.04"}])])
>>> result = plan.evaluate([{"payee": "a", "period": "2026-05",
...                          "metrics": {"revenue": 50000}}]).results[0]
>>> print(result.explain())  # doctest: +NORMALIZE_WHITESPACE
Pay statement: a, 2026-05
Plan: demo (version 1)
<BLANKLINE>
Inputs
  revenue: 50,000
<BLANKLINE>
1. commission                                                           1,400.00
   basis: revenue = 50,000
   method: marginal (each slice earns its own tier's rate)
   slice 0 to 30,000: 30,000 x 0.02 = 600.00
   slice 30,000 to 50,000: 20,000 x 0.04 = 800.00
   sum: 600.00 + 800.00 = 1,400.00
<BLANKLINE>
Total: 1,400.00 = 1,400.00
<BLANKLINE>
>>> "薪酬对账单" in result.explain(lang="zh")
True
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .display import FONT_STACK, GAP, markdown_text
from .display import row as _table_row
from .display import width as _width
from .errors import IncentivesError, UsageError
from .i18n import languages
from .money import ZERO
from .policies import flatten_policies, group_names, policy_titles, working_for
from .runtime import Line
from .wording import (
    N_,
    NumberFormat,
    Step,
    Wording,
    generic_working,
    plain,
    signed_sum,
    translator,
)

if TYPE_CHECKING:
    from .plan import Plan
    from .policies.base import PolicyBase
    from .results import PayeeResult, Run

__all__ = ["FORMATS", "Statement", "Step", "build_statement", "explain", "recompute",
           "render"]

Format = Literal["text", "markdown", "html"]
Lang = Literal["en", "zh"]
FORMATS: tuple[str, ...] = ("text", "markdown", "html")


def __getattr__(name: str) -> Any:
    # ``LANGS``: the languages statements are worded in, the catalogues present
    # (see incentives.i18n), looked up when read
    if name == "LANGS":
        return languages()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_lang(lang: str) -> None:
    """Refuse an unknown language (a UsageError naming the languages there are)."""
    translator(lang)


# ---------------------------------------------------------------------- model
@dataclass
class StatementLine:
    """A line of the statement: a pay line (numbered) or a named value (unnumbered)."""

    label: str
    policy: str
    amount: str | None
    steps: list[Step] = field(default_factory=list)
    number: int | None = None
    #: the line's team figures (shown in the statement's team context)
    context: list[Step] = field(default_factory=list)


@dataclass
class Statement:
    """Everything a statement shows, already worded and formatted."""

    lang: str
    title: str
    header: list[tuple[str, str]]
    inputs: list[tuple[str, str]]
    lines: list[StatementLine]
    total: str
    total_working: str
    hints: list[str]
    titles: list[str]
    flags: list[str]
    #: lines whose details were not in the shape their policy's renderer expects
    #: (listed generically instead)
    fallbacks: list[str] = field(default_factory=list)
    #: team figures, after the payee's own lines: (what they belong to, rows)
    context: list[tuple[str, list[Step]]] = field(default_factory=list)


# ---------------------------------------------------------------- the builder
def build_statement(result: PayeeResult, *, plan: Plan | None = None,
                    lang: str = "en") -> Statement:
    """Word and format ``result``'s statement (the renderers only lay it out)."""
    _check_lang(lang)
    plan = plan if plan is not None else result.plan
    t = translator(lang)
    quantum = plan.rounding.quantum if plan is not None else Decimal("0.01")
    fmt = NumberFormat(quantum)
    specs, labels, order = _plan_index(plan)
    c = Wording(lang, fmt, plan, result, labels, working_for)
    of_group = set(group_names(plan.policies)) if plan is not None else set()

    header: list[tuple[str, str]] = []
    if plan is not None:
        header.append((t("Plan"), f"{plan.name} ({t('version')} {plan.version})"))
    if result.group:
        header.append((t("Group"), result.group))
    if plan is not None and plan.currency:
        header.append((t("Amounts in"), plan.currency))

    inputs = _inputs(result, plan, fmt, c)
    env = _env(result, plan)

    lines: list[StatementLine] = _measure_lines(c, result, plan)
    by_policy: dict[str, list[Line]] = {}
    for line in result.lines:
        by_policy.setdefault(line.policy, []).append(line)
    n = 0
    fallbacks: list[str] = []
    for pid in [*order, *[x for x in by_policy if x not in order]]:
        spec = specs.get(pid)
        for line in by_policy.get(pid, []):
            n += 1
            working = working_for(spec, line.details)
            try:
                steps = working(c, line, spec)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
                steps = generic_working(c, line, spec)  # details not in the shape expected
                fallbacks.append(line.policy)
            label = c.say(line.label) if line.type == "adjustment" else line.label
            lines.append(StatementLine(label, line.policy, fmt.money(line.amount),
                                       [x for x in steps if not x.team], n,
                                       [x for x in steps if x.team]))
        # add each line's amount to the environment, for later named values
        for line in by_policy.get(pid, []):
            env[pid] = env.get(pid, ZERO) + line.amount if isinstance(
                env.get(pid, ZERO), Decimal) else line.amount
            env["total"] = env.get("total", ZERO) + line.amount
        if spec is not None and spec.type == "value" and pid in result.values:
            lines.append(_value_line(c, spec, result.values[pid], env, plan))
        elif spec is not None and pid not in by_policy:
            published = [n for n in spec.publishes() if n in result.values]
            if published:
                rows = [Step(c.name(n), None, _value_text(fmt, result.values[n]),
                             team=n in of_group) for n in published]
                lines.append(StatementLine(spec.title, pid, None,
                                           [x for x in rows if not x.team], None,
                                           [x for x in rows if x.team]))
                env.update({n: result.values[n] for n in published})
    context = [(line.label, line.context) for line in lines if line.context]
    # a named value made only of team figures is context alone
    lines = [line for line in lines if line.number is not None or line.steps]
    amounts = [fmt.money(line.amount) for line in result.lines]
    total = fmt.money(result.total)
    total_working = f"{signed_sum(amounts)} = {total}" if amounts else f"{t('no lines')}: {total}"
    return Statement(
        lang=lang,
        title=f"{t('Pay statement')}: {result.payee}, {result.period}",
        header=header,
        inputs=inputs,
        lines=lines,
        total=total,
        total_working=total_working,
        hints=c.hints,
        titles=list(result.titles),
        flags=list(result.flags),
        fallbacks=fallbacks,
        context=context,
    )


def _measure_lines(c: Wording, result: PayeeResult, plan: Plan | None) -> list[StatementLine]:
    """Each measure as a named value, the transactions (or events) behind it listed."""
    out: list[StatementLine] = []
    specs = plan.measures if plan is not None else {}
    for name, value in result.measures.items():
        spec = specs.get(name)
        if spec is None:  # one value of a measure 'by' a field
            base = next((m for m in specs if name.startswith(m + "_")
                         and specs[m].by is not None), None)
            if base is None or not (value.items or value.events):
                continue
            spec = specs[base]
        out.append(StatementLine(c.name(name), name, None, spec.working(c, value)))
    return out


def _plan_index(plan: Plan | None) -> tuple[dict[str, PolicyBase], dict[str, str], list[str]]:
    if plan is None:
        return {}, {}, []
    specs = {s.id: s for s in flatten_policies(plan.policies)}
    labels: dict[str, str] = {}
    for name, m in plan.inputs.metrics.items():
        if m.label:
            labels[name] = m.label
    for name, a in plan.inputs.attributes.items():
        if a.label:
            labels[name] = a.label
    for name, e in plan.inputs.events.items():
        if e.label:
            labels[name] = e.label
    for name, prm in plan.parameters.items():
        label = getattr(prm, "label", None)
        if label:
            labels[name] = label
    for s in specs.values():
        if s.label:
            labels[s.id] = s.label
    for name, measure in plan.measures.items():
        if measure.label:
            labels[name] = measure.label
    for rule in plan.crediting:
        if rule.label:
            labels[rule.id] = rule.label
    return specs, labels, [s.id for s in plan.policies]


def _inputs(result: PayeeResult, plan: Plan | None, fmt: NumberFormat,
            c: Wording) -> list[tuple[str, str]]:
    rec = result.record
    if rec is None:
        return []
    out: list[tuple[str, str]] = []
    for k, v in rec.attributes.items():
        out.append((c.name(k), plain(fmt, v)))
    for k, v in rec.metrics.items():
        out.append((c.name(k), fmt.num(v)))
    for k, events in rec.events.items():
        out.append((c.name(k), f"{len(events)}"))
    return out


def _env(result: PayeeResult, plan: Plan | None) -> dict[str, Any]:
    env: dict[str, Any] = {}
    if plan is not None:
        with contextlib.suppress(IncentivesError, ValueError):  # only to word named values
            env.update(plan.compile().period(result.period).base_env)
    rec = result.record
    if rec is not None:
        env.update(rec.attributes)
        env.update(rec.metrics)
        for k, events in rec.events.items():
            env[f"{k}_count"] = Decimal(len(events))
    env["total"] = ZERO
    return env


def _value_text(f: NumberFormat, value: Any) -> str:
    """A named value: money-like at the quantum, long decimals to 10 places."""
    if isinstance(value, Decimal):
        text, rounded = f.approx(value, 10)
        if rounded:
            return text
        exp = value.as_tuple().exponent
        return f.num(value) if isinstance(exp, int) and exp >= 0 else f.money(value)
    return plain(f, value)


def _value_line(c: Wording, spec: PolicyBase, value: Any, env: dict[str, Any],
                plan: Plan | None) -> StatementLine:
    f = c.fmt
    steps: list[Step] = []
    formula = None
    if plan is not None:
        for compiled in plan.compile().policies:
            if compiled.id == spec.id:
                formula = getattr(compiled, "value", None)
    shown = _value_text(f, value)
    source = getattr(spec, "value", None)
    if formula is not None and hasattr(formula, "substitute"):
        sub = f.expr(formula.substitute(env))
        steps.append(Step(c.t("formula"), f.expr(str(source))))
        steps.append(Step(c.t("value"), sub, shown))
    else:
        steps.append(Step(c.t("value"), None, shown))
    env[spec.id] = value
    return StatementLine(spec.title, spec.id, None, steps, None)


# ------------------------------------------------------------------ renderers
#: the note under the team context
_TEAM_NOTE = N_("figures of the whole group, for reference; they are not lines of this pay")


def _text_row(label: str, amount: str, width: int) -> str:
    """A statement line's head: ``label``, then ``amount`` right-aligned to end at column
    ``width`` (at least two spaces between them), by the run table's renderer."""
    size = _width(label)
    return _table_row([label, amount], [size, width - size - len(GAP)], [False, True])


def render_text(st: Statement, width: int = 80) -> str:
    t = translator(st.lang)
    out = [st.title]
    out += [f"{k}: {v}" for k, v in st.header]
    if st.inputs:
        out += ["", t("Inputs")]
        out += [f"  {k}: {v}" for k, v in st.inputs]
    out.append("")
    for line in st.lines:
        if line.number is None:
            out.append(f"-- {line.label}: {t('a named value, not a pay line')}")
        else:
            # a two-column row across ``width``: the label, then the amount aligned right
            head = f"{line.number}. {line.label}"
            out.append(_text_row(head, line.amount or "", width))
        out += [f"   {s.text()}" for s in line.steps]
    if not st.lines:
        out.append(t("no lines"))
    out += ["", f"{t('Total')}: {st.total_working}"]
    if st.titles:
        out += ["", f"{t('Titles')}: {', '.join(st.titles)}"]
    if st.flags:
        out += ["", f"{t('Flags')}: {', '.join(st.flags)}"]
    if st.hints:
        out += ["", t("Next steps")]
        out += [f"  - {h}" for h in st.hints]
    if st.context:
        head, note = t("Team context"), t(_TEAM_NOTE)
        out += ["", f"{head} ({note})" if st.lang == "en" else f"{head}（{note}）"]
        for label, rows in st.context:
            out.append(f"  {label}")
            out += [f"    {s.text()}" for s in rows]
    return "\n".join(out) + "\n"


_md = markdown_text


def render_markdown(st: Statement) -> str:
    t = translator(st.lang)
    out = [f"# {_md(st.title)}", ""]
    for k, v in st.header:
        out.append(f"- **{_md(k)}**: {_md(v)}")
    if st.header:
        out.append("")
    if st.inputs:
        out += [f"## {t('Inputs')}", ""]
        out += [f"- {_md(k)}: {_md(v)}" for k, v in st.inputs]
        out.append("")
    out += [f"## {t('Lines')}", "", f"| # | {t('Line')} | {t('Amount')} |", "|---:|---|---:|"]
    for line in st.lines:
        if line.number is not None:
            out.append(f"| {line.number} | {_md(line.label)} | {_md(line.amount or '')} |")
    out.append(f"| | **{t('Total')}** | **{_md(st.total)}** |")
    out.append("")
    for line in st.lines:
        if line.number is None:
            out.append(f"### {_md(line.label)} ({t('a named value, not a pay line')})")
        else:
            out.append(f"### {line.number}. {_md(line.label)}: {_md(line.amount or '')}")
        out.append("")
        out += [f"- {_md(s.text())}" for s in line.steps]
        out.append("")
    out += [f"**{t('Total')}**: {_md(st.total_working)}", ""]
    if st.titles:
        out += [f"**{t('Titles')}**: {_md(', '.join(st.titles))}", ""]
    if st.flags:
        out += [f"**{t('Flags')}**: {_md(', '.join(st.flags))}", ""]
    if st.hints:
        out += [f"## {t('Next steps')}", ""]
        out += [f"- {_md(h)}" for h in st.hints]
        out.append("")
    if st.context:
        out += [f"## {t('Team context')}", "", f"*{_md(t(_TEAM_NOTE))}*", ""]
        for label, rows in st.context:
            out += [f"### {_md(label)}", ""]
            out += [f"- {_md(s.text())}" for s in rows]
            out.append("")
    return "\n".join(out)


#: the phrases an HTML statement prints as headings (``words`` in its templates), by the
#: name templates use
_HTML_WORDS = {
    "inputs": N_("Inputs"), "lines": N_("Lines"), "line": N_("Line"), "working": N_("Working"),
    "amount": N_("Amount"), "total": N_("Total"), "value_note": N_("a named value, not a pay line"),
    "titles": N_("Titles"), "flags": N_("Flags"), "hints": N_("Next steps"),
    "team_context": N_("Team context"), "team_context_note": _TEAM_NOTE,
}


def _html_lang(lang: str) -> str:
    return {"zh": "zh-CN"}.get(lang, lang)


def statement_context(st: Statement) -> dict[str, Any]:
    """What an HTML statement's templates are given: plain text, lists and mappings (see
    docs/statements.md, "Restyling HTML statements")."""
    t = translator(st.lang)
    return {
        "lang": st.lang,
        "html_lang": _html_lang(st.lang),
        "font_stack": FONT_STACK,
        "words": {k: t(msgid) for k, msgid in _HTML_WORDS.items()},
        "title": st.title,
        "header": [list(pair) for pair in st.header],
        "inputs": [list(pair) for pair in st.inputs],
        "lines": [{"number": line.number, "label": line.label, "policy": line.policy,
                   "amount": line.amount or "", "steps": [s.text() for s in line.steps]}
                  for line in st.lines],
        "total": st.total,
        "total_working": st.total_working,
        "titles": list(st.titles),
        "flags": list(st.flags),
        "hints": list(st.hints),
        "context": [{"label": label, "steps": [s.text() for s in rows]}
                    for label, rows in st.context],
    }


def render_html_fragment(st: Statement, *, templates: str | Path | None = None) -> str:
    """The statement as an HTML fragment (a ``<div>``), every text escaped; from the
    template ``statement_fragment.html.j2`` (``templates``: a folder of one's own)."""
    from .templating import render as render_template

    return render_template("statement_fragment.html.j2", statement_context(st), templates)


def render_html(st: Statement, *, templates: str | Path | None = None) -> str:
    """The statement as a complete HTML5 document (UTF-8), from the template
    ``statement.html.j2`` (``templates``: a folder of one's own)."""
    from .templating import render as render_template

    page = render_template("statement.html.j2", statement_context(st), templates)
    return page if page.endswith("\n") else page + "\n"


def render(st: Statement, format: str = "text", *,
           templates: str | Path | None = None) -> str:
    """Lay out a built statement as ``text``, ``markdown`` or ``html`` (``templates``: a
    folder of HTML templates of one's own, for ``html`` only)."""
    if templates is not None and format != "html":
        raise UsageError(f"templates restyle HTML statements only, not format {format!r}")
    if format == "text":
        return render_text(st)
    if format == "markdown":
        return render_markdown(st)
    if format == "html":
        return render_html(st, templates=templates)
    raise UsageError(f"unknown statement format {format!r}; choose one of: {', '.join(FORMATS)}")


def explain(result: PayeeResult, *, format: str = "text", lang: str = "en",
            plan: Plan | None = None, templates: str | Path | None = None) -> str:
    """``result``'s statement in ``format`` (text, markdown, html) and ``lang`` (en, zh);
    ``templates`` is a folder of HTML templates overriding the bundled ones (``html``)."""
    if format not in FORMATS:
        raise UsageError(f"unknown statement format {format!r}; choose one of: {', '.join(FORMATS)}")
    if templates is not None and format != "html":
        raise UsageError(f"templates restyle HTML statements only, not format {format!r}")
    return render(build_statement(result, plan=plan, lang=lang), format, templates=templates)


# ------------------------------------------------------------- checking by hand
_HEAD = re.compile(r"^(\d+)\. .+?\s{2,}(-?[\d,]+(?:\.\d+)?)$")
_ROW = re.compile(r"^   (?P<label>[^:]+): (?P<body>.+)$")
_ARITH = re.compile(r"^[\d\s.,+\-x/()minax]+$")


def _hand(expr: str) -> Decimal:
    """Evaluate calculator arithmetic: thousands separators, ``x``, ``+ - /``, min, max."""
    import ast

    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expr).replace(" x ", " * ")

    def ev(node: ast.AST) -> Decimal:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Decimal(ast.get_source_segment(text, node) or "")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult,
                                                                  ast.Div)):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            return a * b if isinstance(node.op, ast.Mult) else a / b
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("min", "max")):
            args = [ev(a) for a in node.args]
            return min(args) if node.func.id == "min" else max(args)
        raise ValueError(f"not calculator arithmetic: {expr!r}")

    return ev(ast.parse(text, mode="eval").body)


def _printed(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def _agrees(expr: str, shown: str) -> bool:
    target = _printed(shown)
    exp = target.as_tuple().exponent
    places = Decimal(1).scaleb(exp if isinstance(exp, int) else 0)
    return _hand(expr).quantize(places, rounding=ROUND_HALF_UP) == target


def recompute(text: str, *, lang: str = "en") -> Decimal:
    """Check a text statement the way a payee would, and return its total.

    Every working row ``what: expression = result`` whose expression is plain
    arithmetic is recomputed from the numbers printed and must give the result
    (at the precision it is printed to); each line's working must end in the
    line's amount; the total must be the sum of the lines. What follows the
    total (titles, flags, next steps, the team context) is not pay and is not
    read. A :class:`ValueError` says which row does not add up.

    >>> from incentives import load_plan, read_records_file
    >>> run = load_plan("examples/telecom/plan.yaml").evaluate(
    ...     read_records_file("examples/telecom/records.jsonl"))
    >>> recompute(run["X"].explain())
    Decimal('948.00')
    """
    _check_lang(lang)
    total_label = translator(lang)("Total") + ": "
    lines: list[tuple[Decimal, list[str]]] = []
    total_row = None
    for raw in text.splitlines():
        head = _HEAD.match(raw)
        if head:
            lines.append((_printed(head.group(2)), []))
        elif raw.startswith("-- "):
            lines.append((Decimal("NaN"), []))
        elif raw.startswith(total_label):
            total_row = raw[len(total_label):]
            break  # what follows (titles, flags, next steps, team context) is not pay
        else:
            row = _ROW.match(raw)
            if row and lines:
                body = row.group("body")
                lines[-1][1].append(body)
                parts = body.split(" = ")
                if (len(parts) >= 2 and _ARITH.match(parts[-2]) and re.search(r"\d", parts[-2])
                        and not _agrees(parts[-2], parts[-1])):
                    raise ValueError(f"{raw.strip()!r} does not add up")
    amounts = []
    for amount, rows in lines:
        if amount.is_nan():
            continue
        if not rows or _printed(rows[-1].split(" = ")[-1].split(": ")[-1]) != amount:
            raise ValueError(f"a line of {amount} whose working does not end in it")
        amounts.append(amount)
    if total_row is None:
        raise ValueError("no total row")
    expr, shown = total_row.rsplit(" = ", 1)
    total = sum(amounts, Decimal(0))
    if not _agrees(expr, shown) or total != _printed(shown):
        raise ValueError(f"the total {shown} is not the sum of the lines ({total})")
    return _printed(shown)


# --------------------------------------------------------------- notebook html
def result_html(result: PayeeResult, *, templates: str | Path | None = None) -> str:
    """A payee's statement as an HTML fragment (for ``_repr_html_``)."""
    return render_html_fragment(build_statement(result, lang="en"), templates=templates)


def run_context(run: Run, *, max_rows: int = 200) -> dict[str, Any]:
    """What ``run.html.j2`` is given: the columns, the rows shown, the totals."""
    cols = run.columns()
    labels = policy_titles(run.plan.policies)
    more = len(run.results) - max_rows
    foot = f"{len(run.results)} results" + (f" ({more} not shown)" if more > 0 else "")
    if run.errors:
        foot += f"; {len(run.errors)} record(s) not evaluated"
    return {
        "columns": [{"id": c, "label": labels.get(c, c),
                     "total": str(sum((r.amount(c) for r in run.results), ZERO))}
                    for c in cols],
        "rows": [{"payee": r.payee, "period": r.period, "group": r.group or "",
                  "amounts": [str(r.amount(c)) for c in cols], "total": str(r.total),
                  "titles": list(r.titles), "flags": list(r.flags)}
                 for r in run.results[:max_rows]],
        "shown": min(len(run.results), max_rows),
        "count": len(run.results),
        "footer": foot,
        "total": str(run.total),
        "errors": [str(e) for e in run.errors],
    }


def run_html(run: Run, *, max_rows: int = 200, templates: str | Path | None = None) -> str:
    """A run as an HTML table: one row per payee and period, a column per policy."""
    from .templating import render as render_template

    return render_template("run.html.j2", run_context(run, max_rows=max_rows), templates)
