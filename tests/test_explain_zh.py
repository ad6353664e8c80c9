"""Statements as a payee reads them: Chinese without English fragments, the payee's own
lines first and team figures only as labelled context, HTML with a CJK font stack."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import Plan, load_plan
from incentives.explain import FONT_STACK, build_statement, recompute
from incentives.records import read_records_file
from incentives.results import Run
from incentives.testing.cases import find_case_files, load_cases, run_case

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TEAM = ROOT / "tests" / "cases" / "team"

#: words a formula may use besides the plan's names (and the statement's "x" for times,
#: "k" for the balancing factor)
FORMULA_WORDS = {"min", "max", "abs", "round", "and", "or", "not", "if", "else", "in",
                 "True", "False", "None", "x", "k"}


def _runs() -> Iterator[tuple[str, Plan, Run]]:
    """Every bundled example and every team case and case file, evaluated."""
    for example, records in (("telecom", "records.jsonl"), ("bank", "records.json"),
                             ("tobacco", "records.jsonl")):
        plan = load_plan(EXAMPLES / example / "plan.yaml")
        yield example, plan, plan.evaluate(read_records_file(EXAMPLES / example / records),
                                           errors="collect")
    ledger = load_plan(EXAMPLES / "telecom/plan-ledger.yaml")
    june = ledger.evaluate(read_records_file(EXAMPLES / "telecom/records-2026-06.jsonl"))
    yield "telecom ledger June", ledger, june
    yield "telecom ledger July", ledger, ledger.evaluate(
        read_records_file(EXAMPLES / "telecom/records-2026-07.jsonl"), state=june.state)
    for plan_file, records in (("e3_share.yaml", "e3.json"), ("e3_best.yaml", "e3.json"),
                               ("e4.yaml", "e4.json"), ("e5.yaml", "e5.jsonl"),
                               ("e8.yaml", "e8.json")):
        plan = load_plan(TEAM / plan_file)
        yield plan_file, plan, plan.evaluate(read_records_file(TEAM / records),
                                             errors="collect")
    for path in find_case_files([ROOT / "tests" / "cases"]):
        for case in load_cases(path):
            result = run_case(case)
            if result.run is not None:
                yield case.name, result.run.plan, result.run


RUNS = list(_runs())


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", text))


def _plan_words(plan: Plan) -> set[str]:
    """The plan's own words: its names (inputs, event fields, parameters, policies and
    what they publish, KPIs, items) and its human text (name, labels, titles, flags)."""
    from incentives.plan import flatten_policies

    words = _words(f"{plan.name} {plan.currency or ''}")
    inputs = plan.inputs
    for table in (inputs.metrics, inputs.attributes, inputs.events):
        for name, spec in table.items():
            words |= _words(name) | _words(spec.label or "")
    for event in inputs.events.values():
        words |= _words(" ".join(event.fields))
    words |= _words(" ".join(plan.parameters))
    for policy in flatten_policies(plan.policies):
        words |= _words(policy.id) | _words(" ".join(policy.publishes()))

    def human(value: Any, key: str = "") -> None:
        nonlocal words
        if isinstance(value, dict):
            for k, v in value.items():
                words |= _words(str(k)) if key in ("items", "aggregates", "values") else set()
                human(v, str(k))
        elif isinstance(value, list):
            for v in value:
                human(v, key)
        elif isinstance(value, str) and key in ("label", "title", "award", "flag", "kpi",
                                                "id", "item"):
            words |= _words(value)

    human(plan.model_dump(mode="json"))
    return words


def _record_words(run: Run) -> set[str]:
    """The records' own words: payee and group ids, attribute and event values."""
    words: set[str] = set()
    for r in run:
        words |= _words(f"{r.payee} {r.group or ''}")
        if r.record is not None:
            words |= _words(" ".join(str(v) for v in r.record.attributes.values()))
            for events in r.record.events.values():
                for event in events:
                    words |= _words(" ".join(str(v) for v in event.values()))
    return words


def test_the_corpus_covers_every_kind_of_line() -> None:
    types = {line.type for _, _, run in RUNS for r in run for line in r.lines}
    assert len(RUNS) > 20
    assert {"commission", "penalty", "floor_top_up", "award", "adjustment"} <= types


@pytest.mark.parametrize(("name", "plan", "run"), RUNS, ids=[n for n, _, _ in RUNS])
def test_zh_statements_have_no_english_words_but_names(name: str, plan: Plan,
                                                       run: Run) -> None:
    allowed = _plan_words(plan) | _record_words(run) | FORMULA_WORDS
    for r in run:
        text = r.explain(lang="zh")
        stray = sorted(_words(text) - allowed)
        lines = [line for line in text.splitlines() if _words(line) & set(stray)]
        assert not stray, f"{name} {r.payee}: English words {stray} in:\n" + "\n".join(lines)


def test_the_zh_scan_catches_an_english_phrase() -> None:
    """The scan itself: the words it lets through are names, not the statement's phrases."""
    plan = load_plan(EXAMPLES / "tobacco/plan.yaml")
    run = plan.evaluate(read_records_file(EXAMPLES / "tobacco/records.jsonl"))
    allowed = _plan_words(plan) | _record_words(run) | FORMULA_WORDS
    english = run["CS-01"].explain(lang="en")
    assert {"rank", "tied", "include", "qualified", "pool"} & (_words(english) - allowed)
    assert "include" not in allowed


def test_zh_free_text_from_policies_is_worded_in_chinese() -> None:
    from incentives.i18n import reword

    def _zh(text: str) -> str:
        return reword(text, "zh")

    assert _zh("2 qualified, fewer than the minimum of 3") == "2 人达标，少于最低人数 3"
    assert _zh("already lost on 2026-04-15") == "已于 2026-04-15 流失"
    assert _zh("score 55 is below the gate 60") == "总分 55 低于门槛 60"
    assert _zh("KPI revenue attainment 0.5 is below the gate 0.6") == \
        "revenue 完成率 0.5 低于门槛 0.6"
    assert _zh("max/min at least 2 needs k >= 1.5, but each at most 1.2 x mean needs k <= 0.9") \
        == "最高/最低至少 2 要求 k >= 1.5，但 每人至多为团队平均的 1.2 倍 要求 k <= 0.9"
    assert _zh("Adjustment for 2026-05 (commission)") == "2026-05 更正（commission）"
    assert _zh("something else") == "something else"


# ------------------------------------------------------ the payee's own lines first


def _tobacco() -> Run:
    plan = load_plan(EXAMPLES / "tobacco/plan.yaml")
    return plan.evaluate(read_records_file(EXAMPLES / "tobacco/records.jsonl"))


def test_team_figures_come_after_the_payees_own_lines_labelled_as_context() -> None:
    text = _tobacco()["GL-02"].explain()
    own, _, context = text.partition("\nTeam context (figures of the whole group, for "
                                     "reference; they are not lines of this pay)\n")
    assert context, text
    # nothing of the team in the payee's own part
    for team in ("GL-03", "8,580.00", "shared among", "1,716,000", "   group mean:",
                 "spread before", "spread after", "pay_spread"):
        assert team not in own, team
    assert "tied at positions 2, 3; the tied positions' prizes shared evenly: " \
           "(800.00 + 500.00) / 2 = 650.00" in own
    assert "balanced about the group mean: 1,716.00 + 0.955744 x (1,822.51 - 1,716.00) " \
           "≈ 1,817.796286" in own
    assert context == (
        "  月度销售竞赛 (monthly contest)\n"
        "    tied with: GL-03\n"
        "  团队奖金池 (team bonus pool)\n"
        "    pool, shared among 5: 8,580.00\n"
        "    branch_sales_value: 1,716,000\n"
        "  奖金均衡 (pool balancing)\n"
        "    group mean: 1,716.00\n"
        "    spread before: max/min ≈ 2.077176 (2,138.66 / 1,029.60)\n"
        "    spread after: max/min ≈ 1.999991 (2,119.95 / 1,059.98)\n"
        "  收入差距 (pay spread)\n"
        "    收入差距 (pay spread) (pay_spread): 6,016.00\n"
        "    pay_spread_ratio: 1.6052592336\n"
        "    pay_spread_cv: 0.1710296454\n"
        "    pay_spread_gini: 0.0960541223\n")
    assert recompute(text) == Decimal("5967.80")


def test_a_heads_team_is_context_and_the_zh_context_is_labelled() -> None:
    run = _tobacco()
    text = run["GL-H"].explain(lang="zh")
    own, _, context = text.partition("\n团队参考数据（整个团队的数据，仅供参考，不是本人薪酬的明细）\n")
    assert "GL-01" not in own
    assert "团队: GL-01, GL-02, GL-03, GL-04, GL-05" in context
    tie = run["CS-01"].explain(lang="zh")
    assert "名额线并列：CS-01, CS-02；规则：并列者全部入选；选中 CS-01, CS-02" in \
        tie.partition("\n团队参考数据")[2]


def test_every_statement_leads_with_its_own_lines() -> None:
    """In every statement of the corpus, team rows appear only in the context section."""
    for name, plan, run in RUNS:
        for r in run:
            st = build_statement(r, plan=plan)
            assert all(not s.team for line in st.lines for s in line.steps), (name, r.payee)
            assert all(s.team for _, rows in st.context for s in rows), (name, r.payee)
            for fmt, total, marker in (
                    ("text", "\nTotal: ", "\nTeam context ("),
                    ("markdown", "\n**Total**: ", "\n## Team context"),
                    ("html", "<tfoot>", '<section class="team-context">')):
                out = r.explain(format=fmt)
                assert (marker in out) == bool(st.context), (name, r.payee, fmt)
                if st.context:  # the context comes after the lines and their total
                    assert out.index(total) < out.index(marker), (name, r.payee, fmt)
            if r.lines:
                assert recompute(r.explain()) == r.total, (name, r.payee)


def test_html_names_a_cjk_font_stack() -> None:
    run = _tobacco()
    page = run["CS-04"].explain(format="html", lang="zh")
    assert FONT_STACK == ('system-ui, -apple-system, "Segoe UI", "PingFang SC", '
                          '"Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", '
                          '"Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif')
    assert f"body{{font-family:{FONT_STACK};" in page
    fragment = run["CS-04"]._repr_html_()
    assert 'style="font-family:system-ui, -apple-system, &#34;Segoe UI&#34;, ' \
           '&#34;PingFang SC&#34;' in fragment
