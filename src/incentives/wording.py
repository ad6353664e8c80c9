"""The statement toolkit: what a policy uses to word its lines on a pay statement.

A policy explains one of its lines as a list of :class:`Step` rows
(``what: expression = result``) made by its *statement working*, a function
``working(c, line, spec) -> list[Step]`` registered on its spec class (see
:class:`incentives.policies.PolicyBase`). The working gets a :class:`Wording`
``c``: the statement's phrases (:meth:`Wording.t`, gettext messages whose msgid
is the English text), its number formats (:attr:`Wording.fmt`, a
:class:`NumberFormat`), the names of inputs and policies for people
(:meth:`Wording.name`), free text from details worded in the statement's
language (:meth:`Wording.say`), and the next steps it may add to
(:attr:`Wording.hints`).

>>> from decimal import Decimal
>>> f = NumberFormat(Decimal("0.01"))
>>> f.money(Decimal("1400")), f.num(Decimal("0.040")), f.expr("0.4 * 1580")
('1,400.00', '0.04', '0.4 x 1,580')
>>> Step("slice 0 to 30,000", "30,000 x 0.02", "600.00").text()
'slice 0 to 30,000: 30,000 x 0.02 = 600.00'
>>> translator("zh")("slice {lo} to {hi}").format(lo="0", hi="30,000")
'分段 0 至 30,000'

This module is at the bottom of the package: it imports nothing above it at
run time (the plan, the result and the policy types are only type hints).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from .runtime import Line

if TYPE_CHECKING:
    from .plan import Plan
    from .results import PayeeResult

__all__ = [
    "LANGS",
    "N_",
    "Approx",
    "NumberFormat",
    "Shape",
    "Step",
    "Wording",
    "Working",
    "dec",
    "flatten_detail",
    "formula_shown",
    "generic_working",
    "is_name",
    "needs_rounding",
    "plain",
    "reword_zh",
    "round_like_plan",
    "signed_sum",
    "translator",
    "uncapped",
]

#: the languages statements are worded in
LANGS: tuple[str, ...] = ("en", "zh")


def N_(message: str) -> str:
    """Mark ``message`` as a statement phrase (a msgid) without translating it here:
    for tables of phrases chosen at run time, translated later by :meth:`Wording.t`."""
    return message


# ------------------------------------------------------------- translations
# replaced by incentives.i18n at merge: the one private place that knows the
# Chinese of the statement's phrases (msgid: the English text)
_ZH: dict[str, str] = {
    'Pay statement': '薪酬对账单',
    'Plan': '方案',
    'version': '版本',
    'Group': '团队',
    'Amounts in': '币种',
    'Inputs': '输入数据',
    'Lines': '明细',
    'Line': '项目',
    'Amount': '金额',
    'amount': '金额',
    'Working': '计算过程',
    'Total': '合计',
    'Next steps': '下一步',
    'Titles': '称号',
    'Flags': '标记',
    'value': '中间值',
    'a named value, not a pay line': '中间值，不计入合计',
    'total': '合计',
    'qualified': '达标',
    'not qualified': '未达标',
    'threshold': '门槛',
    'rank {rank} of {n} qualified (position {position})': '在 {n} 名达标者中排第 {rank}（名次 {position}）',
    'tied at positions {positions}': '并列（名次 {positions}）',
    'tied with': '并列者',
    '; ': '；',
    'Team context': '团队参考数据',
    'figures of the whole group, for reference; they are not lines of this pay': '整个团队的数据，仅供参考，不是本人薪酬的明细',
    "the tied positions' prizes shared evenly": '并列名次的奖金平均分配',
    "each gets the best tied position's prize": '各得并列最高名次的奖金',
    '(shared exactly: a cent that cannot be split evenly goes to the payee ids first in order)': '（精确分配：不能均分的分按收款人编号顺序依次分配）',
    'prize for position {position}': '第 {position} 名奖金',
    'prize': '奖金',
    'no prizes: {reason}': '不发奖：{reason}',
    '{gap} more score draws level with a larger prize': '得分再提高 {gap} 即可追平更高一档奖金',
    'criteria': '评选条件',
    'met': '符合',
    'not met': '不符合',
    'rank {rank} of {n} candidates (at most {limit} awarded); ranked by': '在 {n} 名候选人中排第 {rank}（至多 {limit} 名）；排序依据',
    'tied at the cut-off: {tied}; rule {rule}: {chosen} chosen': '名额线并列：{tied}；规则：{rule}；选中 {chosen}',
    '{title} awarded': '获得{title}',
    '{title} not awarded ({reason})': '未获得{title}（{reason}）',
    'pool, shared among {n}': '奖金池，{n} 人分配',
    'share: weight x common factor': '份额：权重 x 统一系数',
    'held at the floor': '按下限',
    'held at the cap': '按上限',
    'paid (to the cent, the shares adding up to the pool exactly)': '实发（精确到分，各份额之和恰等于奖金池）',
    'group mean': '团队平均',
    'balanced about the group mean': '围绕团队平均均衡后',
    "after (to the cent, the group's total kept exactly)": '调整后（精确到分，团队合计不变）',
    'spread before': '调整前差距',
    'spread after': '调整后差距',
    'max/min {ratio} ({hi} / {lo})': '最高/最低 {ratio}（{hi} / {lo}）',
    'bounds not met: {what}': '未能满足的界限：{what}',
    'team': '团队',
    '{gap} more {by} draws level with the last holder of {title}': '{by}再提高 {gap} 即可追平{title}的最后一名获得者',
    'level with the last holder of {title} on {by}; the later keys decided': '{by}与{title}的最后一名获得者持平，由后续排序依据决定',
    'deferred in {period}, due {due}, paid now': '{period} 递延、{due} 到期，本期发放',
    'deferred in {period}, due {due}, forfeited (condition not met)': '{period} 递延、{due} 到期，未满足条件，取消',
    'deferred in {period}, due {due}, still held (condition not met)': '{period} 递延、{due} 到期，未满足条件，继续保留',
    'deferred now, paid in {due} if the condition then holds': '本期递延，{due} 满足条件时发放',
    'per lost customer': '每个流失客户',
    'carried in from earlier periods': '以前期间结转',
    '{amount} above the cap is carried forward to the next period': '超出封顶的 {amount} 结转至下期',
    'owed at the start (draw balance)': '期初欠款（预支余额）',
    'recovered from pay above the floor': '从保底以上收入中收回',
    'owed at the end (draw balance)': '期末欠款（预支余额）',
    'forgiven': '豁免',
    'customer {id} lost {lost}, {days} days after it was won': '客户 {id} 于 {lost} 流失，距获客 {days} 天',
    'customer {id}: {note}': '客户 {id}：{note}',
    'paid now': '本期发放',
    'released from holdback': '释放的暂扣',
    'clawed back from pay': '从本期收入中追回',
    'no lines': '无明细',
    'basis': '计提基数',
    'method': '计算方法',
    "marginal (each slice earns its own tier's rate)": '超额累进（各段按本段费率）',
    'retroactive (the whole basis earns the rate of the tier reached)': '全额累进（全部基数按所达档费率）',
    'step (a fixed amount for the tier reached)': '阶梯定额（按所达档的固定金额）',
    'interpolated (between the amounts of the tier reached and the next)': '档内插值（在所达档与下一档金额之间插值）',
    'slice {lo} to {hi}': '分段 {lo} 至 {hi}',
    'sum': '小计',
    'thresholds scaled by': '档位起点乘以',
    'tier reached': '所达档位',
    'tier {n} (from {start})': '第 {n} 档（起点 {start}）',
    'below the first tier': '未达第一档',
    'commission': '提成',
    'cap': '封顶',
    '{gap} more of {basis} reaches the next tier (from {threshold})': '{basis}再增加 {gap} 即达下一档（起点 {threshold}）',
    'nothing sold': '无销售',
    'customer {id} ({reason})': '客户 {id}（{reason}）',
    'customer {id}: exempt ({reason})': '客户 {id}：免扣（{reason}）',
    'no lost customers': '无流失客户',
    'before the cap': '封顶前',
    'charged': '实扣',
    '{amount} above the cap is not charged': '超出封顶的 {amount} 不扣',
    'floor': '保底',
    '{what} before': '此前的{what}',
    'top-up': '补足',
    'limit': '上限',
    'cut': '削减',
    'measure': '考核值',
    'band {n}': '第 {n} 档',
    'band {n} (from {start})': '第 {n} 档（起点 {start}）',
    'below the first band: no change': '未达第一档：不调整',
    'adjustment': '调整',
    'of': '调整对象',
    '{kpi} attainment': '{kpi} 完成率',
    '{kpi} counted': '{kpi} 计入',
    '{kpi} points': '{kpi} 得分',
    'score': '总分',
    'gate not met: {reason}': '未达门槛：{reason}',
    'gate': '门槛',
    '{what} {value}, at least {min} needed: {verdict}': '{what} {value}，至少需 {min}：{verdict}',
    '{what} {value}, at most {min} allowed: {verdict}': '{what} {value}，至多 {min}：{verdict}',
    'payout percent': '兑现比例',
    'payout percent (from the payout table)': '兑现比例（查兑现表）',
    'bonus': '奖金',
    'looked up by {keys}': '按 {keys} 查表',
    'full amount': '全额',
    'prorated': '按比例折算',
    'formula': '公式',
    'the larger of': '取较大者',
    'the smaller of': '取较小者',
    'the sum of': '求和',
    'about': '约',
}


# msgids that were not in the old phrase table (a contest's cut-off tie rules)
_ZH.update({
    "include": "并列者全部入选",
    "exclude": "并列者全部不入选",
    "keys": "按后续排序依据决定",
})


def translator(lang: str) -> Callable[[str], str]:
    """The function that translates a phrase (its English text, the msgid) into ``lang``."""
    if lang == "zh":
        return lambda msgid: _ZH.get(msgid, msgid)
    return _identity


def _identity(msgid: str) -> str:
    return msgid


# ---------------------------------------------------------------------- rows
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
        """The row as one line of text (``≈`` in place of ``=`` for a rounded result)."""
        sep = " " if self.result is not None and self.result.startswith("≈ ") else " = "
        body = sep.join(p for p in (self.expr, self.result) if p is not None)
        return f"{self.label}: {body}" if body else self.label


# ------------------------------------------------------------------ numbers
class NumberFormat:
    """How a statement prints numbers: amounts at the plan's quantum, plain numbers
    without trailing zeros, both with thousands separators."""

    def __init__(self, quantum: Decimal) -> None:
        self.quantum = quantum

    def money(self, value: Any) -> str:
        """An amount: at the plan's quantum when it is exact there, else every digit."""
        d = dec(value)
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
        d = dec(value)
        if d is None:
            return str(value)
        if d == d.to_integral_value():
            return format(d.quantize(Decimal(1)), ",f")
        return format(d.normalize(), ",f")

    def approx(self, value: Any, places: int = 4) -> tuple[str, bool]:
        """A number rounded for display to ``places``; whether it was rounded."""
        d = dec(value)
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


def dec(value: Any) -> Decimal | None:
    """``value`` as a Decimal (from a Decimal, an int or number text), else None."""
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


def signed_sum(amounts: Sequence[str]) -> str:
    """``a + b - c`` from formatted amounts (a leading minus becomes a subtraction)."""
    if not amounts:
        return "0"
    out = amounts[0]
    for a in amounts[1:]:
        out += f" - {a[1:]}" if a.startswith("-") else f" + {a}"
    return out


def plain(f: NumberFormat, value: Any) -> str:
    """Any value of a line's details as text: numbers plainly, dates in ISO form."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (Decimal, int)):
        return f.num(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


class Approx:
    """Numbers for working rows: exact when short, else to 6 places, remembering that."""

    def __init__(self, f: NumberFormat) -> None:
        self.f = f
        self.rounded = False

    def __call__(self, value: Any) -> str:
        text, rounded = self.f.approx(value, 6)
        self.rounded = self.rounded or rounded
        return text

    def result(self, value: Any) -> str:
        """A row's result: ``≈ value`` when this row showed a rounded number (then forgotten)."""
        text = self(value)
        if self.rounded:
            self.rounded = False
            return "≈ " + text
        return text


# ------------------------------------------------------------- the context
class Wording:
    """What a line's working needs: phrases, formatting, the plan and the result.

    ``c.t(msgid, **fields)`` is a phrase (msgid: its English text) in the statement's
    language; ``c.fmt`` formats numbers; ``c.name(id)`` names an input or a policy;
    ``c.say(text)`` words free text from details; ``c.hints`` collects next steps.
    """

    def __init__(self, lang: str, fmt: NumberFormat, plan: Plan | None, result: PayeeResult,
                 labels: Mapping[str, str],
                 working_for: Callable[[Any, Mapping[str, Any]], Working] | None = None) -> None:
        #: the statement's language (``"en"``, ``"zh"``)
        self.lang = lang
        self.fmt = fmt
        #: the plan (None for a statement without one), used through its attributes only
        self.plan = plan
        #: the payee's result the statement is of
        self.result = result
        #: labels of inputs and policies, by id
        self.labels = labels
        #: next steps for the payee (``"<line label>: <hint>"``), shown after the total
        self.hints: list[str] = []
        self._translate = translator(lang)
        self._working_for = working_for

    def working_for(self, spec: Any, details: Mapping[str, Any]) -> Working:
        """The statement working of a line of ``spec`` (a policy, or None: then guessed
        from ``details``), for a policy whose lines hold other policies' (a combination)."""
        if self._working_for is None:
            return generic_working
        return self._working_for(spec, details)

    def t(self, msgid: str, /, **kw: Any) -> str:
        """The phrase ``msgid`` (its English text) in the statement's language, filled."""
        return self._translate(msgid).format(**kw)

    def name(self, ident: str) -> str:
        """An input or policy named for people: its label and id, or the id."""
        if ident == "total":
            return self.t("total")
        label = self.labels.get(ident)
        return f"{label} ({ident})" if label and label != ident else ident

    def say(self, text: Any) -> str:
        """Free text from a policy's details, in the statement's language."""
        return reword_zh(str(text)) if self.lang == "zh" else str(text)


#: a policy's statement working: ``working(c, line, spec)`` gives the rows under the line
#: (``spec`` is the line's policy, or None when the statement has no plan)
Working = Callable[[Wording, Line, Any], list[Step]]
#: whether a line's details have a policy's shape (for statements without a plan)
Shape = Callable[[Mapping[str, Any]], bool]


# ------------------------------------------------------------ shared helpers
def uncapped(d: Mapping[str, Any]) -> Any:
    """A line's amount before its cap (its amount when it was not capped)."""
    capped = d.get("capped")
    if isinstance(capped, Mapping):
        return capped.get("uncapped")
    return d.get("amount")


def formula_shown(c: Wording, formula: Any, substituted: Any) -> str | None:
    """A formula beside its value: a single name with its label, else the substituted text."""
    if not is_name(formula):
        return None
    text = str(formula).strip()
    if re.fullmatch(r"[^\W\d]\w*", text):
        return c.name(text)
    if substituted is not None:
        return f"{c.fmt.expr(text)} = {c.fmt.expr(str(substituted))}"
    return c.fmt.expr(text)


def is_name(formula: Any) -> bool:
    """Whether a formula is worth showing beside its value (not a plain number)."""
    return bool(formula) and dec(str(formula).strip()) is None


def needs_rounding(steps: list[Step], amount: str) -> bool:
    """Whether the working does not already end in the line's amount."""
    return not steps or steps[-1].result != amount


def round_like_plan(c: Wording, amount: Decimal) -> Decimal:
    """``amount`` rounded by the plan's rule (the quantum, half-up when no plan is known)."""
    if c.plan is not None:
        return c.plan.rounding.round(amount)
    return amount.quantize(Decimal("0.01"))


def flatten_detail(c: Wording, key: str, value: Any, steps: list[Step], depth: int = 0) -> None:
    """Add ``key: value`` rows to ``steps``, nested mappings and lists flattened
    (``key.sub``, ``key[1]``), at most four levels deep."""
    if depth > 3:
        steps.append(Step(key, None, str(value)))
        return
    if isinstance(value, Mapping):
        if all(not isinstance(v, (Mapping, list)) for v in value.values()):
            inner = ", ".join(f"{k} {plain(c.fmt, v)}" for k, v in value.items())
            steps.append(Step(key, None, inner or "-"))
        else:
            for k, v in value.items():
                flatten_detail(c, f"{key}.{k}", v, steps, depth + 1)
    elif isinstance(value, list):
        if not value:
            steps.append(Step(key, None, "-"))
        for i, v in enumerate(value):
            flatten_detail(c, f"{key}[{i + 1}]", v, steps, depth + 1)
    else:
        steps.append(Step(key, None, plain(c.fmt, value)))


def generic_working(c: Wording, line: Line, spec: Any) -> list[Step]:
    """The working of a policy that has none of its own: every key of its details,
    flattened, in order (a formula and its substitution first)."""
    f = c.fmt
    steps: list[Step] = []
    d = line.details
    if "formula" in d and "substituted" in d:
        steps.append(Step(c.t("formula"), f.expr(str(d["formula"]))))
        steps.append(Step(c.t("amount"), f.expr(str(d["substituted"])), f.money(line.amount)))
    for key, value in d.items():
        if key in ("formula", "substituted"):
            continue
        flatten_detail(c, str(key), value, steps)
        if any(w in str(key) for w in ("to_next", "gap", "next_")) and not isinstance(
                value, (Mapping, list)):
            c.hints.append(f"{line.label}: {key} {plain(f, value)}")
    return steps


# ------------------------------------------------------- free text, reworded
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

_REASONS_ZH = {
    "does not meet the criteria": "不符合评选条件",
    "ranked below the cut-off": "排名在名额线以下",
    "tied at the cut-off, excluded by the rule": "名额线并列，按规则不入选",
}


def reword_zh(text: str) -> str:
    """A policy's English free text worded in Chinese (unchanged when not recognised)."""
    for pattern, zh in _TEXT_ZH:
        m = pattern.match(text)
        if m:
            return zh.format(*(reword_zh(g) for g in m.groups()))
    return _REASONS_ZH.get(text, text)
