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
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .display import FONT_STACK, GAP
from .display import row as _table_row
from .display import width as _width
from .errors import IncentivesError, UsageError
from .money import ZERO
from .runtime import Line

if TYPE_CHECKING:
    from .plan import Plan
    from .policies.base import PolicyBase
    from .results import PayeeResult, Run

__all__ = ["FORMATS", "LANGS", "Statement", "Step", "build_statement", "explain", "recompute",
           "render"]

Format = Literal["text", "markdown", "html"]
Lang = Literal["en", "zh"]
FORMATS: tuple[str, ...] = ("text", "markdown", "html")
LANGS: tuple[str, ...] = ("en", "zh")

# --------------------------------------------------------------------- phrases
_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "title": "Pay statement",
        "plan": "Plan",
        "version": "version",
        "group": "Group",
        "currency": "Amounts in",
        "inputs": "Inputs",
        "lines": "Lines",
        "line": "Line",
        "amount": "Amount",
        "calc": "amount",
        "working": "Working",
        "total": "Total",
        "hints": "Next steps",
        "titles": "Titles",
        "flags": "Flags",
        "value": "value",
        "value_note": "a named value, not a pay line",
        "total_name": "total",
        "qualified": "qualified",
        "not_qualified": "not qualified",
        "threshold": "threshold",
        "rank": "rank {rank} of {n} qualified (position {position})",
        "tied": "tied at positions {positions}",
        "tied_with": "tied with",
        "sep": "; ",
        "team_context": "Team context",
        "team_context_note": "figures of the whole group, for reference; they are not lines of this pay",
        "tie_share": "the tied positions' prizes shared evenly",
        "tie_best": "each gets the best tied position's prize",
        "tie_cents": "(shared exactly: a cent that cannot be split evenly goes to the payee ids first in order)",
        "prize": "prize for position {position}",
        "prize_none": "prize",
        "not_paid": "no prizes: {reason}",
        "gap_prize": "{gap} more score draws level with a larger prize",
        "criteria": "criteria",
        "met": "met",
        "not_met": "not met",
        "honour_rank": "rank {rank} of {n} candidates (at most {limit} awarded); ranked by",
        "cutoff_tie": "tied at the cut-off: {tied}; rule {rule}: {chosen} chosen",
        "awarded": "{title} awarded",
        "not_awarded": "{title} not awarded ({reason})",
        "pool": "pool, shared among {n}",
        "share_calc": "share: weight x common factor",
        "held_floor": "held at the floor",
        "held_cap": "held at the cap",
        "paid_rounded": "paid (to the cent, the shares adding up to the pool exactly)",
        "group_mean": "group mean",
        "balanced": "balanced about the group mean",
        "after_rounded": "after (to the cent, the group's total kept exactly)",
        "spread_before": "spread before",
        "spread_after": "spread after",
        "ratio": "max/min {ratio} ({hi} / {lo})",
        "unmet": "bounds not met: {what}",
        "team": "team",
        "gap_title": "{gap} more {by} draws level with the last holder of {title}",
        "gap_title_tie": "level with the last holder of {title} on {by}; the later keys decided",
        "deferred_paid_out": "deferred in {period}, due {due}, paid now",
        "deferred_forfeited": "deferred in {period}, due {due}, forfeited (condition not met)",
        "deferred_waiting": "deferred in {period}, due {due}, still held (condition not met)",
        "deferred_now": "deferred now, paid in {due} if the condition then holds",
        "per_customer": "per lost customer",
        "carried_in": "carried in from earlier periods",
        "carried_forward": "{amount} above the cap is carried forward to the next period",
        "opening_balance": "owed at the start (draw balance)",
        "recovery": "recovered from pay above the floor",
        "closing_balance": "owed at the end (draw balance)",
        "forgiven": "forgiven",
        "lost_after": "customer {id} lost {lost}, {days} days after it was won",
        "no_commission": "customer {id}: {note}",
        "paid": "paid now",
        "released": "released from holdback",
        "clawed_back": "clawed back from pay",
        "no_lines": "no lines",
        "basis": "basis",
        "method": "method",
        "marginal": "marginal (each slice earns its own tier's rate)",
        "retroactive": "retroactive (the whole basis earns the rate of the tier reached)",
        "step": "step (a fixed amount for the tier reached)",
        "interpolated": "interpolated (between the amounts of the tier reached and the next)",
        "slice": "slice {lo} to {hi}",
        "sum": "sum",
        "scale": "thresholds scaled by",
        "tier": "tier reached",
        "tier_from": "tier {n} (from {start})",
        "below_first": "below the first tier",
        "commission": "commission",
        "cap": "cap",
        "next_tier": "{gap} more of {basis} reaches the next tier (from {threshold})",
        "nothing_sold": "nothing sold",
        "customer": "customer {id} ({reason})",
        "exempt": "customer {id}: exempt ({reason})",
        "no_customers": "no lost customers",
        "before_cap": "before the cap",
        "charged": "charged",
        "above_cap": "{amount} above the cap is not charged",
        "floor": "floor",
        "before": "{what} before",
        "top_up": "top-up",
        "limit": "limit",
        "cut": "cut",
        "measure": "measure",
        "band": "band {n}",
        "band_from": "band {n} (from {start})",
        "no_band": "below the first band: no change",
        "adjustment": "adjustment",
        "of": "of",
        "attainment": "{kpi} attainment",
        "counted": "{kpi} counted",
        "points": "{kpi} points",
        "score": "score",
        "gate_failed": "gate not met: {reason}",
        "gate": "gate",
        "at_least": "{what} {value}, at least {min} needed: {verdict}",
        "at_most": "{what} {value}, at most {min} allowed: {verdict}",
        "percent": "payout percent",
        "percent_table": "payout percent (from the payout table)",
        "bonus": "bonus",
        "lookup": "looked up by {keys}",
        "full_amount": "full amount",
        "prorated": "prorated",
        "formula": "formula",
        "rule_larger_of": "the larger of",
        "rule_smaller_of": "the smaller of",
        "rule_sum_of": "the sum of",
        "approx": "about",
    },
    "zh": {
        "title": "薪酬对账单",
        "plan": "方案",
        "version": "版本",
        "group": "团队",
        "currency": "币种",
        "inputs": "输入数据",
        "lines": "明细",
        "line": "项目",
        "amount": "金额",
        "calc": "金额",
        "working": "计算过程",
        "total": "合计",
        "hints": "下一步",
        "titles": "称号",
        "flags": "标记",
        "value": "中间值",
        "value_note": "中间值，不计入合计",
        "total_name": "合计",
        "qualified": "达标",
        "not_qualified": "未达标",
        "threshold": "门槛",
        "rank": "在 {n} 名达标者中排第 {rank}（名次 {position}）",
        "tied": "并列（名次 {positions}）",
        "tied_with": "并列者",
        "sep": "；",
        "team_context": "团队参考数据",
        "team_context_note": "整个团队的数据，仅供参考，不是本人薪酬的明细",
        "tie_share": "并列名次的奖金平均分配",
        "tie_best": "各得并列最高名次的奖金",
        "tie_cents": "（精确分配：不能均分的分按收款人编号顺序依次分配）",
        "prize": "第 {position} 名奖金",
        "prize_none": "奖金",
        "not_paid": "不发奖：{reason}",
        "gap_prize": "得分再提高 {gap} 即可追平更高一档奖金",
        "criteria": "评选条件",
        "met": "符合",
        "not_met": "不符合",
        "honour_rank": "在 {n} 名候选人中排第 {rank}（至多 {limit} 名）；排序依据",
        "cutoff_tie": "名额线并列：{tied}；规则：{rule}；选中 {chosen}",
        "awarded": "获得{title}",
        "not_awarded": "未获得{title}（{reason}）",
        "pool": "奖金池，{n} 人分配",
        "share_calc": "份额：权重 x 统一系数",
        "held_floor": "按下限",
        "held_cap": "按上限",
        "paid_rounded": "实发（精确到分，各份额之和恰等于奖金池）",
        "group_mean": "团队平均",
        "balanced": "围绕团队平均均衡后",
        "after_rounded": "调整后（精确到分，团队合计不变）",
        "spread_before": "调整前差距",
        "spread_after": "调整后差距",
        "ratio": "最高/最低 {ratio}（{hi} / {lo}）",
        "unmet": "未能满足的界限：{what}",
        "team": "团队",
        "gap_title": "{by}再提高 {gap} 即可追平{title}的最后一名获得者",
        "gap_title_tie": "{by}与{title}的最后一名获得者持平，由后续排序依据决定",
        "deferred_paid_out": "{period} 递延、{due} 到期，本期发放",
        "deferred_forfeited": "{period} 递延、{due} 到期，未满足条件，取消",
        "deferred_waiting": "{period} 递延、{due} 到期，未满足条件，继续保留",
        "deferred_now": "本期递延，{due} 满足条件时发放",
        "per_customer": "每个流失客户",
        "carried_in": "以前期间结转",
        "carried_forward": "超出封顶的 {amount} 结转至下期",
        "opening_balance": "期初欠款（预支余额）",
        "recovery": "从保底以上收入中收回",
        "closing_balance": "期末欠款（预支余额）",
        "forgiven": "豁免",
        "lost_after": "客户 {id} 于 {lost} 流失，距获客 {days} 天",
        "no_commission": "客户 {id}：{note}",
        "paid": "本期发放",
        "released": "释放的暂扣",
        "clawed_back": "从本期收入中追回",
        "no_lines": "无明细",
        "basis": "计提基数",
        "method": "计算方法",
        "marginal": "超额累进（各段按本段费率）",
        "retroactive": "全额累进（全部基数按所达档费率）",
        "step": "阶梯定额（按所达档的固定金额）",
        "interpolated": "档内插值（在所达档与下一档金额之间插值）",
        "slice": "分段 {lo} 至 {hi}",
        "sum": "小计",
        "scale": "档位起点乘以",
        "tier": "所达档位",
        "tier_from": "第 {n} 档（起点 {start}）",
        "below_first": "未达第一档",
        "commission": "提成",
        "cap": "封顶",
        "next_tier": "{basis}再增加 {gap} 即达下一档（起点 {threshold}）",
        "nothing_sold": "无销售",
        "customer": "客户 {id}（{reason}）",
        "exempt": "客户 {id}：免扣（{reason}）",
        "no_customers": "无流失客户",
        "before_cap": "封顶前",
        "charged": "实扣",
        "above_cap": "超出封顶的 {amount} 不扣",
        "floor": "保底",
        "before": "此前的{what}",
        "top_up": "补足",
        "limit": "上限",
        "cut": "削减",
        "measure": "考核值",
        "band": "第 {n} 档",
        "band_from": "第 {n} 档（起点 {start}）",
        "no_band": "未达第一档：不调整",
        "adjustment": "调整",
        "of": "调整对象",
        "attainment": "{kpi} 完成率",
        "counted": "{kpi} 计入",
        "points": "{kpi} 得分",
        "score": "总分",
        "gate_failed": "未达门槛：{reason}",
        "gate": "门槛",
        "at_least": "{what} {value}，至少需 {min}：{verdict}",
        "at_most": "{what} {value}，至多 {min}：{verdict}",
        "percent": "兑现比例",
        "percent_table": "兑现比例（查兑现表）",
        "bonus": "奖金",
        "lookup": "按 {keys} 查表",
        "full_amount": "全额",
        "prorated": "按比例折算",
        "formula": "公式",
        "rule_larger_of": "取较大者",
        "rule_smaller_of": "取较小者",
        "rule_sum_of": "求和",
        "approx": "约",
    },
}


def _check_lang(lang: str) -> None:
    if lang not in _PHRASES:
        raise UsageError(f"unknown language {lang!r}; choose one of: {', '.join(LANGS)}")


# ---------------------------------------------------------------------- model
@dataclass
class Step:
    """One row of a line's working: ``label: expr = result`` (each part optional)."""

    label: str
    expr: str | None = None
    result: str | None = None
    #: a figure of the whole group (a pool's size, the group's mean, who else is tied),
    #: shown as labelled context after the payee's own lines, not in the line's working
    team: bool = False

    def text(self) -> str:
        sep = " " if self.result is not None and self.result.startswith("≈ ") else " = "
        body = sep.join(p for p in (self.expr, self.result) if p is not None)
        return f"{self.label}: {body}" if body else self.label


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


# ----------------------------------------------------------------- formatting
class _Fmt:
    def __init__(self, quantum: Decimal) -> None:
        self.quantum = quantum

    def money(self, value: Any) -> str:
        """An amount: at the plan's quantum when it is exact there, else every digit."""
        d = _dec(value)
        if d is None:
            return str(value)
        q = self.quantum.normalize()
        exp = q.as_tuple().exponent
        places = Decimal(1).scaleb(exp) if isinstance(exp, int) and exp < 0 else Decimal(1)
        if d == d.quantize(places):
            return format(d.quantize(places), ",f")
        return format(d.normalize(), ",f")

    def num(self, value: Any) -> str:
        """A plain number, without trailing zeros, with thousands separators."""
        d = _dec(value)
        if d is None:
            return str(value)
        if d == d.to_integral_value():
            return format(d.quantize(Decimal(1)), ",f")
        return format(d.normalize(), ",f")

    def approx(self, value: Any, places: int = 4) -> tuple[str, bool]:
        """A number rounded for display to ``places``; whether it was rounded."""
        d = _dec(value)
        if d is None:
            return str(value), False
        shown = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if shown == d:
            return self.num(d), False
        return self.num(shown.normalize()), True

    def expr(self, text: str) -> str:
        """A substituted formula, for people: ``*`` as ``x``, numbers with separators."""
        text = re.sub(r"\s*\*\s*", " x ", text)
        return re.sub(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])",
                      lambda m: format(Decimal(m.group()), ",f"), text)


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return None
    return None


def _signed_sum(amounts: Sequence[str]) -> str:
    """``a + b - c`` from formatted amounts (a leading minus becomes a subtraction)."""
    if not amounts:
        return "0"
    out = amounts[0]
    for a in amounts[1:]:
        out += f" - {a[1:]}" if a.startswith("-") else f" + {a}"
    return out


# ---------------------------------------------------------------- line workers
class _Ctx:
    """What a line's worker needs: phrases, formatting, the plan and the result."""

    def __init__(self, lang: str, fmt: _Fmt, plan: Plan | None, result: PayeeResult,
                 labels: Mapping[str, str]) -> None:
        self.p = _PHRASES[lang]
        self.fmt = fmt
        self.plan = plan
        self.result = result
        self.labels = labels
        self.hints: list[str] = []

    def t(self, phrase: str, /, **kw: Any) -> str:
        return self.p[phrase].format(**kw)

    def name(self, ident: str) -> str:
        """An input or policy named for people: its label and id, or the id."""
        if ident == "total":
            return self.p["total_name"]
        label = self.labels.get(ident)
        return f"{label} ({ident})" if label and label != ident else ident


Worker = Callable[[_Ctx, Line, "PolicyBase | None"], list[Step]]


def _tiered(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    basis_f = str(d.get("basis_formula", "basis"))
    basis = f.num(d.get("basis"))
    if "basis_substituted" in d:
        steps.append(Step(c.t("basis"), f"{f.expr(basis_f)} = {f.expr(str(d['basis_substituted']))}",
                          basis))
    else:
        steps.append(Step(c.t("basis"), c.name(basis_f), basis))
    method = str(d.get("method", ""))
    steps.append(Step(c.t("method"), c.p.get(method, method)))
    if "scale" in d:
        steps.append(Step(c.t("scale"), None, f.num(d["scale"])))
    tiers = list(getattr(spec, "tiers", []) or [])
    scale = _dec(d.get("scale")) or Decimal(1)
    if method == "marginal":
        parts = []
        for sl in d.get("slices", []):
            lo, hi = _dec(sl["from"]) or ZERO, _dec(sl["to"]) or ZERO
            amt = f.money(sl["amount"])
            parts.append(amt)
            steps.append(Step(c.t("slice", lo=f.num(lo), hi=f.num(hi)),
                              f"{f.num(hi - lo)} x {f.num(sl['rate'])}", amt))
        if len(parts) > 1:
            steps.append(Step(c.t("sum"), _signed_sum(parts), f.money(_uncapped(d))))
        elif not parts:
            steps.append(Step(c.t("below_first"), None, f.money(ZERO)))
    else:
        i = int(d.get("tier", -1))
        if i < 0:
            steps.append(Step(c.t("tier"), None, c.t("below_first")))
        else:
            start = tiers[i].start * scale if i < len(tiers) else None
            label = d.get("tier_label")
            reached = c.t("tier_from", n=i + 1, start=f.num(start) if start is not None else "?")
            steps.append(Step(c.t("tier"), None, reached + (f" {label}" if label else "")))
        if method == "retroactive":
            steps.append(Step(c.t("commission"),
                              f"{f.num(d.get('applied_to'))} x {f.num(d.get('rate'))}",
                              f.money(_uncapped(d))))
        elif method == "interpolated" and 0 <= i < len(tiers):
            t0 = tiers[i]
            if i + 1 < len(tiers):
                t1 = tiers[i + 1]
                lo, hi = t0.start * scale, t1.start * scale
                a0, a1 = t0.amount or ZERO, t1.amount or ZERO
                steps.append(Step(c.t("commission"),
                                  f"{f.num(a0)} + ({f.num(a1)} - {f.num(a0)}) x "
                                  f"({basis} - {f.num(lo)}) / ({f.num(hi)} - {f.num(lo)})",
                                  f.money(_uncapped(d))))
            elif t0.rate is not None:
                steps.append(Step(c.t("commission"),
                                  f"{f.num(t0.amount)} + ({basis} - {f.num(t0.start * scale)}) x "
                                  f"{f.num(t0.rate)}", f.money(_uncapped(d))))
            else:
                steps.append(Step(c.t("commission"), None, f.money(_uncapped(d))))
        else:
            steps.append(Step(c.t("commission"), None, f.money(_uncapped(d))))
    capped = d.get("capped")
    if isinstance(capped, Mapping):
        steps.append(Step(c.t("cap"), f"min({f.money(capped['uncapped'])}, "
                                      f"{f.money(capped['limit'])})", f.money(d.get("amount"))))
    if _needs_rounding(steps, f.money(line.amount)):
        steps.append(Step(c.t("calc"), None, f.money(line.amount)))
    if "to_next_tier" in d and "next_threshold" in d:
        c.hints.append(f"{line.label}: " + c.t(
            "next_tier", gap=f.num(d["to_next_tier"]), basis=c.labels.get(basis_f, basis_f),
            threshold=f.num(d["next_threshold"])))
    return steps


def _uncapped(d: Mapping[str, Any]) -> Any:
    capped = d.get("capped")
    if isinstance(capped, Mapping):
        return capped.get("uncapped")
    return d.get("amount")


def _formula_shown(c: _Ctx, formula: Any, substituted: Any) -> str | None:
    """A formula beside its value: a single name with its label, else the substituted text."""
    if not _is_name(formula):
        return None
    text = str(formula).strip()
    if re.fullmatch(r"[^\W\d]\w*", text):
        return c.name(text)
    if substituted is not None:
        return f"{c.fmt.expr(text)} = {c.fmt.expr(str(substituted))}"
    return c.fmt.expr(text)


def _is_name(formula: Any) -> bool:
    """Whether a formula is worth showing beside its value (not a plain number)."""
    return bool(formula) and _dec(str(formula).strip()) is None


def _needs_rounding(steps: list[Step], amount: str) -> bool:
    """Whether the working does not already end in the line's amount."""
    return not steps or steps[-1].result != amount


def _rate_table(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    f = c.fmt
    steps = []
    parts = []
    for row in line.details.get("items", []):
        label = row.get("label") or row.get("item")
        item = str(row.get("item"))
        name = f"{label} ({item})" if label != item else item
        amt = f.money(row.get("amount"))
        parts.append(amt)
        steps.append(Step(name, f"{f.num(row.get('quantity'))} x {f.num(row.get('per_unit'))}",
                          amt))
    if not parts:
        steps.append(Step(c.t("nothing_sold"), None, f.money(ZERO)))
    elif len(parts) > 1:
        steps.append(Step(c.t("sum"), _signed_sum(parts), f.money(line.amount)))
    return steps


def _churn(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    parts = []
    formulas = {row["formula"] for row in d.get("customers", []) if "formula" in row}
    if len(formulas) == 1:
        steps.append(Step(c.t("per_customer"), f.expr(formulas.pop())))
    for row in d.get("customers", []):
        cid, reason = row.get("id"), row.get("reason")
        if row.get("exempt"):
            steps.append(Step(c.t("exempt", id=cid, reason=reason), None, f.money(ZERO)))
            continue
        amt = f.money(row.get("amount"))
        parts.append(amt)
        expr = f.expr(str(row["substituted"])) if "substituted" in row else None
        steps.append(Step(c.t("customer", id=cid, reason=reason), expr, amt))
    due = _dec(d.get("uncapped")) or ZERO
    if "carried_in" in d:
        carried = f.money(d["carried_in"])
        steps.append(Step(c.t("carried_in"), None, carried))
        parts.append(carried)
        due += _dec(d["carried_in"]) or ZERO
    if not parts:
        steps.append(Step(c.t("no_customers") if not d.get("customers") else c.t("charged"),
                          None, f.money(line.amount)))
        return steps
    shown_due = f.money(due)
    if len(parts) > 1:
        steps.append(Step(c.t("before_cap"), _signed_sum(parts), shown_due))
    if "cap" in d:
        cap = f.money(d["cap"])
        expr = _formula_shown(c, d.get("cap_formula"), d.get("cap_substituted"))
        steps.append(Step(c.t("cap"), expr, cap))
        steps.append(Step(c.t("charged"), f"-min({shown_due}, {cap})", f.money(line.amount)))
        if d.get("carried_forward"):
            steps.append(Step(c.t("carried_forward", amount=f.money(d["carried_forward"]))))
        elif "above_cap" in d:
            steps.append(Step(c.t("above_cap", amount=f.money(d["above_cap"]))))
    else:
        steps.append(Step(c.t("charged"), f"-{shown_due}", f.money(line.amount)))
    return steps


def _floor(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    of = str(d.get("of", "total"))
    floor, before = f.money(d.get("floor")), f.money(d.get("before"))
    steps = []
    formula = d.get("floor_formula")
    steps.append(Step(c.t("floor"), _formula_shown(c, formula, d.get("floor_substituted")),
                      floor))
    steps.append(Step(c.t("before", what=c.name(of)), None, before))
    if not d.get("recoverable"):
        steps.append(Step(c.t("top_up"), f"max(0, {floor} - {before})", f.money(line.amount)))
        return steps
    opening = f.money(d.get("opening_balance", ZERO))
    top_up, recovery = f.money(d.get("top_up", ZERO)), f.money(d.get("recovery", ZERO))
    steps.append(Step(c.t("opening_balance"), None, opening))
    steps.append(Step(c.t("top_up"), f"max(0, {floor} - {before})", top_up))
    if (_dec(d.get("top_up")) or ZERO) == 0:
        bounds = [f"max(0, {before} - {floor})", opening]
        if "recovery_limit" in d:
            bounds.append(f.money(d["recovery_limit"]))
        steps.append(Step(c.t("recovery"), f"min({', '.join(bounds)})", recovery))
    closing = f"{opening} + {top_up} - {recovery}"
    if (_dec(d.get("forgiven")) or ZERO) != 0:
        closing += f" - {f.money(d['forgiven'])}"
        steps.append(Step(c.t("forgiven"), None, f.money(d["forgiven"])))
    steps.append(Step(c.t("closing_balance"), closing, f.money(d.get("closing_balance", ZERO))))
    steps.append(Step(c.t("calc"), f"{top_up} - {recovery}", f.money(line.amount)))
    return steps


def _clawback(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    for row in d.get("lost", []):
        cid = row.get("id")
        if "note" in row:
            steps.append(Step(c.t("no_commission", id=cid, note=_say(c, row["note"])), None,
                              f.money(row.get("amount", ZERO))))
            continue
        what = c.t("lost_after", id=cid, lost=_plain(f, row.get("lost")), days=row.get("days"))
        if row.get("exempt"):
            what += f" ({row.get('reason')})"
        amount = _dec(row.get("amount")) or ZERO
        earned, share = _dec(row.get("earned")), _dec(row.get("share"))
        expr = None
        if earned is not None and share is not None and -amount == _round_like_plan(c, earned * share):
            expr = f"-({f.money(earned)} x {f.num(share)})"
        steps.append(Step(what, expr, f.money(amount)))
    for row in d.get("won", []):
        steps.append(Step(f"{row.get('id')} ({_plain(f, row.get('acquired'))})", None,
                          f.money(row.get("earned"))))
    parts = []
    for key in ("paid", "released"):
        if key in d:
            steps.append(Step(c.t(key), None, f.money(d[key])))
            parts.append(f.money(d[key]))
    clawed = f.money(d.get("clawed_back", ZERO))
    steps.append(Step(c.t("clawed_back"), None, clawed))
    if parts:
        steps.append(Step(c.t("calc"), " + ".join(parts) + f" - {clawed}", f.money(line.amount)))
    elif line.amount:
        steps.append(Step(c.t("calc"), f"-{clawed}", f.money(line.amount)))
    return steps


def _round_like_plan(c: _Ctx, amount: Decimal) -> Decimal:
    """``amount`` rounded by the plan's rule (the quantum, half-up when no plan is known)."""
    if c.plan is not None:
        return c.plan.rounding.round(amount)
    return amount.quantize(Decimal("0.01"))


def _cap(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    of = str(d.get("of", "total"))
    limit, before = f.money(d.get("limit")), f.money(d.get("before"))
    formula = d.get("limit_formula")
    return [
        Step(c.t("limit"), _formula_shown(c, formula, d.get("limit_substituted")), limit),
        Step(c.t("before", what=c.name(of)), None, before),
        Step(c.t("cut"), f"-max(0, {before} - {limit})", f.money(line.amount)),
    ]


def _modifier(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    mf = d.get("measure_formula")
    steps.append(Step(c.t("measure"), c.name(str(mf)) if mf else None, f.num(d.get("measure"))))
    of = d.get("of")
    if of:
        steps.append(Step(c.t("of"), " + ".join(c.name(str(o)) for o in of), f.money(d.get("base"))))
    if d.get("band") is None:
        steps.append(Step(c.t("no_band"), None, f.money(line.amount)))
        return steps
    i = int(d["band"])
    band = c.t("band", n=i + 1)
    bands = list(getattr(spec, "bands", []) or [])
    if i < len(bands):
        band = c.t("band_from", n=i + 1, start=f.num(bands[i].start))
    if d.get("band_label"):
        band += f" {d['band_label']}"
    steps.append(Step(band))
    steps.append(Step(c.t("adjustment"),
                      f"({f.num(d.get('factor'))} - 1) x {f.money(d.get('base'))} + "
                      f"{f.num(d.get('add'))}", f.money(line.amount)))
    return steps


def _scorecard(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    points = []
    labels_of_kpis = {str(k.get("kpi")): str(k.get("label") or k.get("kpi"))
                      for k in d.get("kpis", [])}
    for k in d.get("kpis", []):
        name = str(k.get("label") or k.get("kpi"))
        raw, raw_rounded = f.approx(k.get("attainment"), 6)
        direction_lower = False
        for kpi in getattr(spec, "kpis", []) or []:
            if kpi.id == k.get("kpi") and kpi.direction == "lower":
                direction_lower = True
        ratio = (f"{f.num(k.get('target'))} / {f.num(k.get('actual'))}" if direction_lower
                 else f"{f.num(k.get('actual'))} / {f.num(k.get('target'))}")
        steps.append(Step(c.t("attainment", kpi=name), ratio,
                          (c.t("approx") + " " if raw_rounded else "") + raw))
        counted, counted_rounded = f.approx(k.get("counted"), 6)
        if k.get("counted") != k.get("attainment"):
            held = k.get("counted")
            bound = "min" if (_dec(held) or ZERO) < (_dec(k.get("attainment")) or ZERO) else "max"
            steps.append(Step(c.t("counted", kpi=name), f"{bound}({raw}, {counted})", counted))
        pts, pts_rounded = f.approx(k.get("points"), 6)
        points.append(pts)
        steps.append(Step(c.t("points", kpi=name), f"{f.num(k.get('weight'))} x {counted}",
                          (c.t("approx") + " " if pts_rounded or counted_rounded else "") + pts))
    score, _ = f.approx(d.get("score"), 6)
    steps.append(Step(c.t("score"), " + ".join(points), score))
    gates = d.get("gates")
    if isinstance(gates, list):
        for g in gates:
            what = c.t("score") if g.get("of") == "score" else c.t(
                "attainment", kpi=labels_of_kpis.get(str(g.get("of")), str(g.get("of"))))
            value, _ = f.approx(g.get("value"), 6)
            verdict = c.t("met") if g.get("met") else c.t("not_met")
            steps.append(Step(c.t("gate"), None, c.t("at_least", what=what, value=value,
                                                      min=f.num(g.get("min")), verdict=verdict)))
    elif d.get("gate_failed"):
        steps.append(Step(c.t("gate_failed", reason=_say(c, d["gate_failed"]))))
    percent, _ = f.approx(d.get("percent"), 6)
    steps.append(Step(c.t("percent_table") if d.get("payout_table") else c.t("percent"), None,
                      percent))
    steps.append(Step(c.t("bonus"), f"{f.money(d.get('target_bonus'))} x {percent} / 100",
                      f.money(line.amount)))
    return steps


def _base_pay(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    full = f.money(d.get("full_amount"))
    if "lookup" in d:
        keys = ", ".join(f"{c.name(str(k))}={v}" for k, v in d["lookup"].items())
        steps.append(Step(c.t("lookup", keys=keys), None, full))
    elif "formula" in d:
        steps.append(Step(c.t("full_amount"), c.name(str(d["formula"])), full))
    pr = d.get("prorate")
    if isinstance(pr, Mapping):
        steps.append(Step(c.t("prorated"),
                          f"{full} x ({f.expr(str(pr.get('substituted')))})", f.money(line.amount)))
    return steps


def _formula(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    return [Step(c.t("formula"), f.expr(str(d.get("formula")))),
            Step(c.t("calc"), f.expr(str(d.get("substituted"))), f.money(line.amount))]


def _combine(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    children = d.get("children", {})
    workings = d.get("workings", {})
    child_specs = {s.id: s for s in getattr(spec, "policies", []) or []}
    steps = []
    for k, v in children.items():
        w = workings.get(k) if isinstance(workings, Mapping) else None
        if isinstance(w, Mapping) and isinstance(w.get("details"), Mapping):
            child_spec = child_specs.get(str(k))
            child = Line(str(k), child_spec.title if child_spec else str(k),
                         _dec(w.get("amount")) or ZERO, str(w.get("type")), dict(w["details"]))
            worker = (_WORKERS.get(child_spec.type, _generic) if child_spec is not None
                      else _worker_by_shape(child.details))
            try:
                inner = worker(c, child, child_spec)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
                inner = []
            steps += [Step(f"{c.name(str(k))} › {s.label}", s.expr, s.result, s.team)
                      for s in inner]
        steps.append(Step(c.name(str(k)), None, f.money(v)))
    amounts = [f.money(v) for v in children.values()]
    rule = str(d.get("rule"))
    expr = {"larger_of": f"max({', '.join(amounts)})",
            "smaller_of": f"min({', '.join(amounts)})"}.get(rule, _signed_sum(amounts))
    steps.append(Step(c.p.get(f"rule_{rule}", rule), expr, f.money(line.amount)))
    return steps


def _generic(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    """Details of a policy this module does not know: every key, flattened, in order."""
    f = c.fmt
    steps: list[Step] = []
    d = line.details
    if "formula" in d and "substituted" in d:
        steps.append(Step(c.t("formula"), f.expr(str(d["formula"]))))
        steps.append(Step(c.t("calc"), f.expr(str(d["substituted"])), f.money(line.amount)))
    for key, value in d.items():
        if key in ("formula", "substituted"):
            continue
        _flatten_detail(c, str(key), value, steps)
        if any(w in str(key) for w in ("to_next", "gap", "next_")) and not isinstance(
                value, (Mapping, list)):
            c.hints.append(f"{line.label}: {key} {_plain(f, value)}")
    return steps


def _plain(f: _Fmt, value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (Decimal, int)):
        return f.num(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _flatten_detail(c: _Ctx, key: str, value: Any, steps: list[Step], depth: int = 0) -> None:
    if depth > 3:
        steps.append(Step(key, None, str(value)))
        return
    if isinstance(value, Mapping):
        if all(not isinstance(v, (Mapping, list)) for v in value.values()):
            inner = ", ".join(f"{k} {_plain(c.fmt, v)}" for k, v in value.items())
            steps.append(Step(key, None, inner or "-"))
        else:
            for k, v in value.items():
                _flatten_detail(c, f"{key}.{k}", v, steps, depth + 1)
    elif isinstance(value, list):
        if not value:
            steps.append(Step(key, None, "-"))
        for i, v in enumerate(value):
            _flatten_detail(c, f"{key}[{i + 1}]", v, steps, depth + 1)
    else:
        steps.append(Step(key, None, _plain(c.fmt, value)))


# ------------------------------------------------------------ team policies
class _Approx:
    """Numbers for working rows: exact when short, else to 6 places, remembering that."""

    def __init__(self, f: _Fmt) -> None:
        self.f = f
        self.rounded = False

    def __call__(self, value: Any) -> str:
        text, rounded = self.f.approx(value, 6)
        self.rounded = self.rounded or rounded
        return text

    def result(self, value: Any) -> str:
        text = self(value)
        if self.rounded:
            self.rounded = False
            return "≈ " + text
        return text


def _contest(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    a = _Approx(f)
    steps = []
    score_f = getattr(spec, "score", None)
    score = a(d.get("score"))
    a.rounded = False
    shown_f = c.fmt.expr(str(score_f)) if _is_name(score_f) and str(score_f) != score else None
    steps.append(Step(c.t("score"), shown_f, a.result(d.get("score"))))
    t = d.get("threshold")
    if t is not None:
        key = "at_least" if d.get("order", "desc") == "desc" else "at_most"
        verdict = c.t("qualified") if d.get("rank") is not None else c.t("not_qualified")
        steps.append(Step(c.t("threshold"), None, c.t(key, what=c.t("score"), value=score,
                                                      min=f.num(t), verdict=verdict)))
    rank = d.get("rank")
    if rank is not None:
        steps.append(Step(c.t("rank", rank=rank, n=d.get("participants"),
                              position=d.get("position"))))
    tie = d.get("tie")
    amount = f.money(line.amount)
    if isinstance(tie, Mapping):
        with_ = ", ".join(str(x) for x in tie.get("with", []))
        positions = ", ".join(str(x) for x in tie.get("positions", []))
        prizes = [f.money(x) for x in tie.get("prizes", [])]
        what = c.t("tied", positions=positions)
        sep = c.t("sep")
        if with_:
            steps.append(Step(c.t("tied_with"), None, with_, team=True))
        rule = tie.get("rule")
        if rule == "share":
            k = len(prizes)
            pooled = _dec(tie.get("pooled")) or ZERO
            exact = _round_like_plan(c, pooled / k) if k else ZERO
            if k and exact == line.amount:
                steps.append(Step(what + sep + c.t("tie_share"),
                                  f"({' + '.join(prizes)}) / {k}", amount))
            else:
                steps.append(Step(c.t("tie_cents")))
                steps.append(Step(what + sep + c.t("tie_share"), None, amount))
        elif rule == "best":
            steps.append(Step(what + sep + c.t("tie_best"), None, amount))
        else:
            steps.append(Step(what, None, amount))
    elif rank is not None:
        steps.append(Step(c.t("prize", position=d.get("position")), None, amount))
    if d.get("not_paid"):
        steps.append(Step(c.t("not_paid", reason=_say(c, d["not_paid"])), None, amount))
    elif rank is None:
        steps.append(Step(c.t("prize_none"), None, amount))
    gap = d.get("gap_to_next_prize")
    if gap is not None and (_dec(gap) or ZERO) > 0:
        c.hints.append(f"{line.label}: " + c.t("gap_prize", gap=a(gap)))
    return steps


_RULES_ZH = {
    "include": "并列者全部入选",
    "exclude": "并列者全部不入选",
    "keys": "按后续排序依据决定",
}

#: free text some policies put in details, worded again in Chinese (placeholders: \S+)
_TEXT_ZH: list[tuple[re.Pattern[str], str]] = [(re.compile(a), b) for a, b in (
    (r"^(\S+) qualified, fewer than the minimum of (\S+)$", "{0} 人达标，少于最低人数 {1}"),
    (r"^already lost on (\S+)$", "已于 {0} 流失"),
    (r"^no commission recorded for this customer$", "该客户无提成记录"),
    (r"^score (\S+) is below the gate (\S+)$", "总分 {0} 低于门槛 {1}"),
    (r"^KPI (\S+) attainment (\S+) is below the gate (\S+)$", "{0} 完成率 {1} 低于门槛 {2}"),
    (r"^each at least (\S+) x mean$", "每人至少为团队平均的 {0} 倍"),
    (r"^each at most (\S+) x mean$", "每人至多为团队平均的 {0} 倍"),
    (r"^max/min at most (\S+)$", "最高/最低至多 {0}"),
    (r"^max/min at least (\S+)$", "最高/最低至少 {0}"),
    (r"^every amount is (\S+): a spread of equal amounts cannot be stretched to a max/min "
     r"ratio of at least (\S+)$", "各人金额均为 {0}：相同的金额无法拉开到最高/最低至少 {1}"),
    (r"^(.+) needs k >= (\S+), but (.+) needs k <= (\S+)$",
     "{0} 要求 k >= {1}，但 {2} 要求 k <= {3}"),
    (r"^(.+) not met: (.+); k = (\S+) keeps the upper limits$",
     "未满足{0}：{1}；k = {2} 保证上限"),
    (r"^Adjustment for (\S+) \((\S+)\)$", "{0} 更正（{1}）"),
)]


def _zh(text: str) -> str:
    """A policy's English free text worded in Chinese (unchanged when not recognised)."""
    for pattern, zh in _TEXT_ZH:
        m = pattern.match(text)
        if m:
            return zh.format(*(_zh(g) for g in m.groups()))
    return _REASONS_ZH.get(text, text)


def _say(c: _Ctx, text: Any) -> str:
    """Free text from a policy's details, in the statement's language."""
    return _zh(str(text)) if c.p is _PHRASES["zh"] else str(text)


_REASONS_ZH = {
    "does not meet the criteria": "不符合评选条件",
    "ranked below the cut-off": "排名在名额线以下",
    "tied at the cut-off, excluded by the rule": "名额线并列，按规则不入选",
}


def _honour(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    verdict = c.t("met") if d.get("met_criteria") else c.t("not_met")
    steps = [Step(c.t("criteria"), None, f"{c.fmt.expr(str(d.get('criteria')))}: {verdict}")]
    if d.get("rank") is not None:
        keys = ", ".join(str(k) for k in d.get("keys", []))
        steps.append(Step(c.t("honour_rank", rank=d["rank"], n=d.get("candidates"),
                                limit=d.get("limit")), None, keys or None))
    tie = d.get("cutoff_tie")
    if isinstance(tie, Mapping):
        rule = str(tie.get("rule"))
        if c.p is _PHRASES["zh"]:
            rule = _RULES_ZH.get(rule, rule)
        steps.append(Step(c.t("cutoff_tie", tied=", ".join(map(str, tie.get("tied", []))),
                              rule=rule,
                              chosen=", ".join(map(str, tie.get("chosen", [])))), team=True))
    title = str(d.get("title", ""))
    gap = _dec(d.get("gap_to_title"))
    if gap is not None:
        rank_keys = list(getattr(spec, "keys", []) or [])
        key = c.name(str(rank_keys[0].by)) if rank_keys else "score"
        hint = (c.t("gap_title", gap=c.fmt.num(gap), by=key, title=title) if gap > 0
                else c.t("gap_title_tie", by=key, title=title))
        c.hints.append(f"{line.label}: {hint}")
    reason = _say(c, d.get("reason", ""))
    won = title in c.result.titles and not d.get("reason")
    steps.append(Step(c.t("awarded", title=title) if won else
                      c.t("not_awarded", title=title, reason=reason), None,
                      f.money(line.amount)))
    return steps


def _pool(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    a = _Approx(f)
    steps = [Step(c.t("pool", n=d.get("sharers")), None, f.money(d.get("pool")), team=True)]
    aggs = d.get("aggregates")
    if isinstance(aggs, Mapping):
        steps += [Step(c.name(str(k)), None, a.result(v), team=True) for k, v in aggs.items()]
    weight, factor = _dec(d.get("weight")), _dec(d.get("factor"))
    if weight is not None and factor is not None:
        expr = f"{a(weight)} x {a(factor)}"
        steps.append(Step(c.t("share_calc"), expr, a.result(weight * factor)))
    held = str(d.get("held_at") or "")
    if held:
        is_floor = held in ("lower", "floor", "min")
        bound = d.get("floor") if is_floor else d.get("cap")
        steps.append(Step(c.t("held_floor") if is_floor else c.t("held_cap"), None,
                          f.money(bound)))
    steps.append(Step(c.t("paid_rounded"), None, f.money(line.amount)))
    return steps


def _balance(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    a = _Approx(f)
    before, after, mean = f.money(d.get("before")), f.money(d.get("after")), f.money(d.get("mean"))
    steps = [Step(c.t("before", what=c.name(str(d.get("of")))), None, before),
             Step(c.t("group_mean"), None, mean, team=True)]
    if "k" in d:
        expr = f"{mean} + {a(d['k'])} x ({before} - {mean})"
        steps.append(Step(c.t("balanced"), expr, a.result(d.get("exact"))))
    else:
        steps.append(Step(c.t("balanced"), None, a.result(d.get("exact"))))
    steps.append(Step(c.t("after_rounded"), None, after))
    for key in ("spread_before", "spread_after"):
        sp = d.get(key)
        if isinstance(sp, Mapping) and "ratio" in sp:
            steps.append(Step(c.t(key), None, c.t("ratio", ratio=a.result(sp["ratio"]),
                                                  lo=f.money(sp.get("min")),
                                                  hi=f.money(sp.get("max"))), team=True))
    if d.get("unmet"):
        steps.append(Step(c.t("unmet", what=c.t("sep").join(_say(c, u) for u in d["unmet"])),
                          team=True))
    steps.append(Step(c.t("adjustment"), f"{after} - {before}", f.money(line.amount)))
    return steps


def _leader(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    a = _Approx(f)
    steps = []
    team = d.get("team")
    if isinstance(team, list):
        steps.append(Step(c.t("team"), None, ", ".join(map(str, team)) or "-", team=True))
    aggs = d.get("aggregates")
    if isinstance(aggs, Mapping):
        steps += [Step(c.name(str(k)), None, a.result(v), team=True) for k, v in aggs.items()]
    steps.append(Step(c.t("formula"), f.expr(str(d.get("formula")))))
    steps.append(Step(c.t("calc"), f.expr(str(d.get("substituted"))), f.money(line.amount)))
    return steps


def _deferral(c: _Ctx, line: Line, spec: PolicyBase | None) -> list[Step]:
    d, f = line.details, c.fmt
    steps = []
    parts = []
    for key in ("paid_out", "forfeited", "waiting"):
        for row in d.get(key, []):
            amount = f.money(row.get("amount"))
            steps.append(Step(c.t(f"deferred_{key}", period=row.get("from"), due=row.get("due")),
                              None, amount))
            if key == "paid_out":
                parts.append(amount)
    deferred = f.money(d.get("deferred", ZERO))
    if d.get("deferred"):
        steps.append(Step(c.t("deferred_now", due=d.get("due")),
                          f"{f.num(d.get('share'))} x {f.money(d.get('of'))}", deferred))
    expr = _signed_sum(parts) if parts else "0"
    steps.append(Step(c.t("calc"), f"{expr} - {deferred}", f.money(line.amount)))
    return steps

_WORKERS: dict[str, Worker] = {
    "tiered": _tiered,
    "rate_table": _rate_table,
    "churn_penalty": _churn,
    "clawback": _clawback,
    "contest": _contest,
    "honour": _honour,
    "bonus_pool": _pool,
    "balance": _balance,
    "leader_bonus": _leader,
    "deferral": _deferral,
    "floor": _floor,
    "cap": _cap,
    "modifier": _modifier,
    "scorecard": _scorecard,
    "base_pay": _base_pay,
    "formula": _formula,
    "larger_of": _combine,
    "smaller_of": _combine,
    "sum_of": _combine,
}


def _worker_by_shape(d: Mapping[str, Any]) -> Worker:
    """For lines whose policy is unknown (no plan at hand): guess from the details' keys."""
    if "method" in d and ("slices" in d or "tier" in d):
        return _tiered
    if "customers" in d and "uncapped" in d:
        return _churn
    if "kpis" in d and "score" in d:
        return _scorecard
    if "full_amount" in d:
        return _base_pay
    if "rule" in d and "children" in d:
        return _combine
    if set(d) >= {"floor", "before", "of"}:
        return _floor
    if set(d) >= {"limit", "before", "of"}:
        return _cap
    if set(d) >= {"measure", "band", "base"}:
        return _modifier
    if set(d) == {"items"}:
        return _rate_table
    return _generic


# ---------------------------------------------------------------- the builder
def build_statement(result: PayeeResult, *, plan: Plan | None = None,
                    lang: str = "en") -> Statement:
    """Word and format ``result``'s statement (the renderers only lay it out)."""
    _check_lang(lang)
    plan = plan if plan is not None else result.plan
    p = _PHRASES[lang]
    quantum = plan.rounding.quantum if plan is not None else Decimal("0.01")
    fmt = _Fmt(quantum)
    specs, labels, order = _plan_index(plan)
    c = _Ctx(lang, fmt, plan, result, labels)
    group_names = set(_group_names(plan)) if plan is not None else set()

    header: list[tuple[str, str]] = []
    if plan is not None:
        header.append((p["plan"], f"{plan.name} ({p['version']} {plan.version})"))
    if result.group:
        header.append((p["group"], result.group))
    if plan is not None and plan.currency:
        header.append((p["currency"], plan.currency))

    inputs = _inputs(result, plan, fmt, c)
    env = _env(result, plan)

    lines: list[StatementLine] = []
    by_policy: dict[str, list[Line]] = {}
    for line in result.lines:
        by_policy.setdefault(line.policy, []).append(line)
    n = 0
    fallbacks: list[str] = []
    for pid in [*order, *[x for x in by_policy if x not in order]]:
        spec = specs.get(pid)
        for line in by_policy.get(pid, []):
            n += 1
            worker = _WORKERS.get(spec.type, _generic) if spec is not None else _worker_by_shape(
                line.details)
            if worker is _generic and spec is None:
                worker = _worker_by_shape(line.details)
            try:
                steps = worker(c, line, spec)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError):
                steps = _generic(c, line, spec)  # details not in the shape expected
                fallbacks.append(line.policy)
            label = _say(c, line.label) if line.type == "adjustment" else line.label
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
                             team=n in group_names) for n in published]
                lines.append(StatementLine(spec.title, pid, None,
                                           [x for x in rows if not x.team], None,
                                           [x for x in rows if x.team]))
                env.update({n: result.values[n] for n in published})
    context = [(line.label, line.context) for line in lines if line.context]
    # a named value made only of team figures is context alone
    lines = [line for line in lines if line.number is not None or line.steps]
    amounts = [fmt.money(line.amount) for line in result.lines]
    total = fmt.money(result.total)
    total_working = f"{_signed_sum(amounts)} = {total}" if amounts else f"{p['no_lines']}: {total}"
    return Statement(
        lang=lang,
        title=f"{p['title']}: {result.payee}, {result.period}",
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


def _group_names(plan: Plan) -> list[str]:
    from .results import group_names as names

    return names(plan)


def _plan_index(plan: Plan | None) -> tuple[dict[str, PolicyBase], dict[str, str], list[str]]:
    if plan is None:
        return {}, {}, []
    from .plan import flatten_policies

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
    return specs, labels, [s.id for s in plan.policies]


def _inputs(result: PayeeResult, plan: Plan | None, fmt: _Fmt, c: _Ctx) -> list[tuple[str, str]]:
    rec = result.record
    if rec is None:
        return []
    out: list[tuple[str, str]] = []
    for k, v in rec.attributes.items():
        out.append((c.name(k), _plain(fmt, v)))
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


def _value_text(f: _Fmt, value: Any) -> str:
    """A named value: money-like at the quantum, long decimals to 10 places."""
    if isinstance(value, Decimal):
        text, rounded = f.approx(value, 10)
        if rounded:
            return text
        exp = value.as_tuple().exponent
        return f.num(value) if isinstance(exp, int) and exp >= 0 else f.money(value)
    return _plain(f, value)


def _value_line(c: _Ctx, spec: PolicyBase, value: Any, env: dict[str, Any],
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
def _heading(lang: str, key: str) -> str:
    """The statement's own phrase ``key`` (a heading such as "Amount") in ``lang``: the one
    place the renderers read their phrases from."""
    return _PHRASES[lang][key]


class _Words:
    """A statement's own phrases in one language, each read through :func:`_heading`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getitem__(self, key: str) -> str:
        return _heading(self.lang, key)


def _text_row(label: str, amount: str, width: int) -> str:
    """A statement line's head: ``label``, then ``amount`` right-aligned to end at column
    ``width`` (at least two spaces between them), by the run table's renderer."""
    size = _width(label)
    return _table_row([label, amount], [size, width - size - len(GAP)], [False, True])


def render_text(st: Statement, width: int = 80) -> str:
    p = _Words(st.lang)
    out = [st.title]
    out += [f"{k}: {v}" for k, v in st.header]
    if st.inputs:
        out += ["", p["inputs"]]
        out += [f"  {k}: {v}" for k, v in st.inputs]
    out.append("")
    for line in st.lines:
        if line.number is None:
            out.append(f"-- {line.label}: {p['value_note']}")
        else:
            # a two-column row across ``width``: the label, then the amount aligned right
            head = f"{line.number}. {line.label}"
            out.append(_text_row(head, line.amount or "", width))
        out += [f"   {s.text()}" for s in line.steps]
    if not st.lines:
        out.append(p["no_lines"])
    out += ["", f"{p['total']}: {st.total_working}"]
    if st.titles:
        out += ["", f"{p['titles']}: {', '.join(st.titles)}"]
    if st.flags:
        out += ["", f"{p['flags']}: {', '.join(st.flags)}"]
    if st.hints:
        out += ["", p["hints"]]
        out += [f"  - {h}" for h in st.hints]
    if st.context:
        out += ["", f"{p['team_context']} ({p['team_context_note']})"
                if st.lang == "en" else f"{p['team_context']}（{p['team_context_note']}）"]
        for label, rows in st.context:
            out.append(f"  {label}")
            out += [f"    {s.text()}" for s in rows]
    return "\n".join(out) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>|#])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def render_markdown(st: Statement) -> str:
    p = _Words(st.lang)
    out = [f"# {_md(st.title)}", ""]
    for k, v in st.header:
        out.append(f"- **{_md(k)}**: {_md(v)}")
    if st.header:
        out.append("")
    if st.inputs:
        out += [f"## {p['inputs']}", ""]
        out += [f"- {_md(k)}: {_md(v)}" for k, v in st.inputs]
        out.append("")
    out += [f"## {p['lines']}", "", f"| # | {p['line']} | {p['amount']} |", "|---:|---|---:|"]
    for line in st.lines:
        if line.number is not None:
            out.append(f"| {line.number} | {_md(line.label)} | {_md(line.amount or '')} |")
    out.append(f"| | **{p['total']}** | **{_md(st.total)}** |")
    out.append("")
    for line in st.lines:
        if line.number is None:
            out.append(f"### {_md(line.label)} ({p['value_note']})")
        else:
            out.append(f"### {line.number}. {_md(line.label)}: {_md(line.amount or '')}")
        out.append("")
        out += [f"- {_md(s.text())}" for s in line.steps]
        out.append("")
    out += [f"**{p['total']}**: {_md(st.total_working)}", ""]
    if st.titles:
        out += [f"**{p['titles']}**: {_md(', '.join(st.titles))}", ""]
    if st.flags:
        out += [f"**{p['flags']}**: {_md(', '.join(st.flags))}", ""]
    if st.hints:
        out += [f"## {p['hints']}", ""]
        out += [f"- {_md(h)}" for h in st.hints]
        out.append("")
    if st.context:
        out += [f"## {p['team_context']}", "", f"*{_md(p['team_context_note'])}*", ""]
        for label, rows in st.context:
            out += [f"### {_md(label)}", ""]
            out += [f"- {_md(s.text())}" for s in rows]
            out.append("")
    return "\n".join(out)


#: the phrases an HTML statement prints as headings (``words`` in its templates)
_HTML_WORDS = ("inputs", "lines", "line", "working", "amount", "total", "value_note", "titles",
               "flags", "hints", "team_context", "team_context_note")


def _html_lang(lang: str) -> str:
    return {"zh": "zh-CN"}.get(lang, lang)


def statement_context(st: Statement) -> dict[str, Any]:
    """What an HTML statement's templates are given: plain text, lists and mappings (see
    docs/statements.md, "Restyling HTML statements")."""
    return {
        "lang": st.lang,
        "html_lang": _html_lang(st.lang),
        "font_stack": FONT_STACK,
        "words": {k: _heading(st.lang, k) for k in _HTML_WORDS},
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
    total_label = _heading(lang, "total") + ": "
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
    from .results import policy_titles

    cols = run.columns()
    labels = policy_titles(run.plan)
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
