"""Statements: a payee recomputes every line by hand, in every format and language."""

from __future__ import annotations

import ast
import html.parser
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from incentives import FormulaLine, Plan, load_plan
from incentives.errors import UsageError
from incentives.explain import build_statement
from incentives.records import read_records_file
from incentives.results import PayeeResult, Run

TELECOM = Path(__file__).resolve().parent.parent / "examples" / "telecom"
BANK = Path(__file__).resolve().parent.parent / "examples" / "bank"


def telecom_run() -> Run:
    plan = load_plan(TELECOM / "plan.yaml")
    return plan.evaluate(read_records_file(TELECOM / "records.jsonl"))


def bank_run() -> Run:
    plan = load_plan(BANK / "plan.yaml")
    return plan.evaluate(read_records_file(BANK / "records.json"))


# ------------------------------------------------------------ hand arithmetic
def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", ""))


def hand_eval(expr: str) -> Decimal:
    """Evaluate what a person would type into a calculator: numbers with thousands
    separators, ``x`` for times, ``+ - /``, parentheses, ``min`` and ``max``."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expr)  # 1,500.00 -> 1500.00
    text = text.replace(" x ", " * ")
    tree = ast.parse(text, mode="eval").body

    def ev(node: ast.AST) -> Decimal:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            segment = ast.get_source_segment(text, node)
            assert segment is not None
            return Decimal(segment)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            ops: dict[type, Callable[[Decimal, Decimal], Decimal]] = {
                ast.Add: lambda x, y: x + y, ast.Sub: lambda x, y: x - y,
                ast.Mult: lambda x, y: x * y, ast.Div: lambda x, y: x / y}
            return ops[type(node.op)](a, b)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [ev(a) for a in node.args]
            return {"min": min, "max": max}[node.func.id](args)
        raise AssertionError(f"not hand arithmetic: {ast.dump(node)} in {expr!r}")

    return ev(tree)


def agrees(expr: str, shown: str) -> bool:
    """Whether ``expr`` computes to ``shown`` at the precision ``shown`` is printed with."""
    value = hand_eval(expr)
    target = _number(shown)
    exp = target.as_tuple().exponent
    assert isinstance(exp, int)
    return value.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP) == target


ARITH = re.compile(r"^[\d\s.,+\-x/()%minax]+$")
HEAD = re.compile(r"^(\d+)\. (.+?)\s{2,}(-?[\d,]+\.\d\d)$")
ROW = re.compile(r"^   (?P<label>[^:]+): (?P<body>.+)$")


def recompute_text_statement(text: str) -> tuple[list[Decimal], Decimal, int]:
    """Parse a text statement; check every ``expr = result`` row by hand arithmetic,
    that each line's working ends in its amount, and that the total is the sum.

    Returns the line amounts, the total and how many rows were recomputed.
    """
    lines: list[tuple[Decimal, list[str]]] = []
    total_row = None
    checked = 0
    for raw in text.splitlines():
        m = HEAD.match(raw)
        if m:
            lines.append((_number(m.group(3)), []))
            continue
        if raw.startswith("-- "):  # a named value, not a pay line
            lines.append((Decimal("NaN"), []))
            continue
        if raw.startswith("Total: "):
            total_row = raw[len("Total: "):]
            continue
        r = ROW.match(raw.strip() and "   " + raw.lstrip()) if total_row else ROW.match(raw)
        if r and lines:
            body = r.group("body")
            if total_row is None:  # after the total: the team context, checked, not pay
                lines[-1][1].append(body)
            parts = body.split(" = ")
            if len(parts) >= 2 and ARITH.match(parts[-2]) and re.search(r"\d", parts[-2]):
                assert agrees(parts[-2], parts[-1]), f"{raw!r} does not recompute"
                checked += 1
    amounts = []
    for amount, rows in lines:
        if amount.is_nan():
            continue
        assert rows, "a line without working"
        last = rows[-1].split(" = ")[-1]
        assert _number(last) == amount, f"working ends in {last}, the line says {amount}"
        amounts.append(amount)
    assert total_row is not None
    expr, shown = total_row.rsplit(" = ", 1)
    assert agrees(expr, shown)
    terms = [_number(t) for t in re.findall(r"[\d,]+\.\d\d", expr)]
    assert [abs(a) for a in amounts] == terms, "the total does not add the lines shown"
    assert sum(amounts, Decimal(0)) == _number(shown)
    return amounts, _number(shown), checked


def test_hand_eval_reads_thousands_and_calls() -> None:
    assert hand_eval("min(1.5 x 1,000, 0.4 x 1,580)") == Decimal("632.0")
    assert hand_eval("-min(1,500.00, 632.00)") == Decimal("-632.00")
    assert agrees("3,000.00 x (20 / 31)", "1,935.48")
    assert not agrees("3 x 60", "181.00")


def test_e1_payee_x_recomputes_by_hand() -> None:
    text = telecom_run()["X"].explain()
    # the numbers E1 is about, as printed
    assert "slice 0 to 30,000: 30,000 x 0.02 = 600.00" in text
    assert "slice 30,000 to 50,000: 20,000 x 0.04 = 800.00" in text
    assert "sum: 600.00 + 800.00 = 1,400.00" in text
    assert "网络传真 (new_fax): 3 x 60 = 180.00" in text
    assert "customer c-88 (competitor): 1.5 x 1,000 = 1,500.00" in text
    assert "per lost customer: churn_multiple x monthly_value" in text
    assert "cap: churn_cap_share x variable_pay = 0.4 x 1,580.00 = 632.00" in text
    assert "charged: -min(1,500.00, 632.00) = -632.00" in text
    assert "868.00 above the cap is not charged" in text
    assert "top-up: max(0, 700.00 - 948.00) = 0.00" in text
    amounts, total, checked = recompute_text_statement(text)
    assert amounts == [Decimal("1400.00"), Decimal("180.00"), Decimal("-632.00"),
                       Decimal("0.00")]
    assert total == Decimal("948.00")
    assert checked >= 8
    assert "Total: 1,400.00 + 180.00 - 632.00 + 0.00 = 948.00" in text


@pytest.mark.parametrize("payee", ["X", "Y", "Z"])
def test_every_e1_statement_recomputes(payee: str) -> None:
    run = telecom_run()
    amounts, total, _ = recompute_text_statement(run[payee].explain())
    assert total == run[payee].total
    assert amounts == [line.amount for line in run[payee].lines]


@pytest.mark.parametrize("payee", ["P", "Q"])
def test_bank_statements_recompute(payee: str) -> None:
    run = bank_run()
    _, total, checked = recompute_text_statement(run[payee].explain())
    assert total == run[payee].total
    assert checked >= 5


def test_recompute_catches_a_wrong_figure() -> None:
    text = telecom_run()["X"].explain().replace("20,000 x 0.04 = 800.00", "20,000 x 0.04 = 900.00")
    with pytest.raises(AssertionError):
        recompute_text_statement(text)


def test_next_tier_hint() -> None:
    text = telecom_run()["X"].explain()
    assert "30,000 more of 通信费收入 reaches the next tier (from 80,000)" in text
    zh = telecom_run()["Y"].explain(lang="zh")
    assert "通信费收入再增加 20,000 即达下一档（起点 30,000）" in zh


def test_gate_failure_is_explained() -> None:
    text = bank_run()["Q"].explain()
    assert "gate: score 54, at least 60 needed: not met" in text
    assert "bonus: 4,000.00 x 0 / 100 = 0.00" in text
    assert "prorated: 3,000.00 x (20 / 31) = 1,935.48" in text
    assert "存款增量 counted: min(1.3, 1.2) = 1.2" in bank_run()["P"].explain()


# ---------------------------------------------------------- formats and langs
class StrictHTML(html.parser.HTMLParser):
    """Fails on any tag closed out of order, left open, or closed without opening."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert tag not in self.VOID, f"</{tag}> closes a void element"
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def check(self, doc: str) -> str:
        self.feed(doc)
        self.close()
        assert not self.stack, f"left open: {self.stack}"
        return "".join(self.text)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_cli_explain_every_format_and_language(cli: Callable[..., Any], fmt: str,
                                               lang: str) -> None:
    r = cli("explain", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--payee", "X",
            "--format", fmt, "--lang", lang)
    assert r.code == 0, r.err
    out = r.out
    assert "通信费提成 (traffic commission)" in out  # the plan's own (Chinese) label
    assert "948.00" in out
    assert "1,400.00" in out
    assert "-632.00" in out
    phrase = {"en": "Pay statement", "zh": "薪酬对账单"}[lang]
    total = {"en": "Total", "zh": "合计"}[lang]
    assert phrase in out
    assert total in out
    if lang == "zh":
        assert "Pay statement" not in out
        assert "slice" not in out
        assert "分段 0 至 30,000: 30,000 x 0.02 = 600.00" in out
    if fmt == "html":
        assert out.startswith("<!DOCTYPE html>")
        assert '<meta charset="utf-8">' in out
        text = StrictHTML().check(out)
        assert "30,000 x 0.02 = 600.00" in text
    elif fmt == "markdown":
        assert out.startswith("# ")
        assert "| 1 | 通信费提成 (traffic commission) | 1,400.00 |" in out
    elif lang == "en":
        recompute_text_statement(out)


def test_zh_text_statement_recomputes_too() -> None:
    text = telecom_run()["X"].explain(lang="zh")
    assert "合计: 1,400.00 + 180.00 - 632.00 + 0.00 = 948.00" in text
    recompute_text_statement(text.replace("合计: ", "Total: "))


def test_html_escapes_labels_from_the_plan() -> None:
    plan = Plan(name="<b>bold</b> & co", inputs={"metrics": {"sales": {}}}, policies=[
        FormulaLine(id="bonus", label='<script>alert("x")</script> & 奖金', amount="sales * 0.1")])
    result = plan.evaluate([{"payee": "<a>", "period": "2026-05", "metrics": {"sales": 100}}])[
        "<a>"]
    doc = result.explain(format="html", lang="zh")
    assert "<script>" not in doc
    assert "<b>" not in doc
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 奖金" in doc
    text = StrictHTML().check(doc)
    assert '<script>alert("x")</script> & 奖金' in text  # the reader sees the label as written
    assert "100 x 0.1 = 10.00" in text
    md = result.explain(format="markdown")
    assert "\\<script\\>" in md
    StrictHTML().check(result._repr_html_())


def test_unknown_format_and_language() -> None:
    result = telecom_run()["X"]
    with pytest.raises(UsageError, match="unknown statement format 'pdf'"):
        result.explain(format="pdf")
    with pytest.raises(UsageError, match="unknown language 'fr'"):
        result.explain(lang="fr")


def test_cli_explain_unknown_payee_is_a_usage_error(cli: Callable[..., Any]) -> None:
    r = cli("explain", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--payee", "x")
    assert r.code == 2
    assert "no result for payee 'x'" in r.err
    assert "payees: X, Y, Z" in r.err


def test_cli_explain_quotes_a_long_or_hostile_payee_short(cli: Callable[..., Any]) -> None:
    r = cli("explain", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--payee",
            "\x1b[2J" + "x" * 5000)
    assert (r.code, r.out) == (2, "")
    assert r.err == ("error: no result for payee '\\x1b[2J" + "x" * 36
                     + "'…; payees: X, Y, Z\n")


def test_cli_explain_failed_record_exits_1(cli: Callable[..., Any], tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text('{"payee": "X", "period": "2026-05", "metrics": {"new_fax": 1}}\n'
                       '{"payee": "Y", "period": "2026-05", "metrics": {"traffic_revenue": 1}}\n',
                       encoding="utf-8")
    r = cli("explain", TELECOM / "plan.yaml", records, "--payee", "X")
    assert r.code == 1
    assert "traffic_revenue" in r.err


def test_cli_explain_period_and_out(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "statement.md"
    r = cli("explain", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--payee", "Y",
            "--period", "2026-05", "--format", "markdown", "--out", out)
    assert r.code == 0
    assert r.out == ""
    assert "**Total**: 200.00 + 0.00 + 0.00 + 500.00 = 700.00" in out.read_text(encoding="utf-8")
    r = cli("explain", TELECOM / "plan.yaml", TELECOM / "records.jsonl", "--payee", "Y",
            "--period", "2026-06")
    assert r.code == 2
    assert "in period 2026-06" in r.err


def test_statement_without_a_plan_uses_the_details() -> None:
    result = telecom_run()["X"]
    bare = PayeeResult(result.payee, result.period, result.group, result.lines, result.total)
    text = bare.explain()
    amounts, total, _ = recompute_text_statement(text)
    assert total == Decimal("948.00")
    assert len(amounts) == 4


def test_generic_details_are_listed() -> None:
    from incentives.runtime import Line

    line = Line("contest", "Sales contest", Decimal("350.00"), "prize",
                {"rank": 2, "tied_with": ["B", "C"], "shared": {"prizes": "700", "ways": 2},
                 "score_gap_to_next": Decimal("6")})
    r = PayeeResult("B", "2026-05", "g", [line], Decimal("350.00"))
    st = build_statement(r)
    rows = [s.text() for s in st.lines[0].steps]
    assert "rank: 2" in rows
    assert "tied_with[1]: B" in rows
    assert "shared: prizes 700, ways 2" in rows
    assert st.hints == ["Sales contest: score_gap_to_next 6"]


# ------------------------------------------------------------------ notebook
def test_repr_html_of_result_and_run() -> None:
    run = telecom_run()
    table = run._repr_html_()
    text = StrictHTML().check(table)
    assert "<table" in table
    assert "通信费提成 (traffic commission)" in text
    assert "5708.00" in text  # 948.00 + 700.00 + 4060.00
    for r in run:
        StrictHTML().check(r._repr_html_())
    assert "1,400.00" in run["X"]._repr_html_()


# ------------------------------------------------- every example, every payee
def _runs() -> list[tuple[str, Run]]:
    runs: list[tuple[str, Run]] = [("telecom", telecom_run()), ("bank", bank_run())]
    tobacco = EXAMPLES / "tobacco"
    if (tobacco / "plan.yaml").exists():
        plan = load_plan(tobacco / "plan.yaml")
        runs.append(("tobacco", plan.evaluate(read_records_file(tobacco / "records.jsonl"))))
    ledger_plan = TELECOM / "plan-ledger.yaml"
    if ledger_plan.exists():
        plan = load_plan(ledger_plan)
        state = None
        for name in ("records.jsonl", "records-2026-06.jsonl", "records-2026-07.jsonl"):
            month = plan.evaluate(read_records_file(TELECOM / name), state=state)
            state = month.state
            runs.append((f"telecom-ledger {name}", month))
    return runs


def test_every_example_statement_recomputes_in_both_languages() -> None:
    checked = 0
    for name, run in _runs():
        for r in run:
            for lang in ("en", "zh"):
                text = r.explain(lang=lang)
                if lang == "zh":
                    text = text.replace("\n合计: ", "\nTotal: ")
                try:
                    _, total, n = recompute_text_statement(text)
                except AssertionError as exc:
                    raise AssertionError(f"{name} {r.payee} ({lang}): {exc}\n{text}") from exc
                assert total == r.total
                checked += n
            StrictHTML().check(r.explain(format="html", lang="zh"))
            assert build_statement(r).fallbacks == [], f"{name} {r.payee}"
    assert checked > 200


def test_team_lines_explained() -> None:
    from incentives import Contest

    plan = Plan(name="e3", inputs={"metrics": {"score": {}}}, policies=[
        Contest(id="contest", label="竞赛 contest", score="score", prizes=[800, 500, 200],
                threshold=70, ties="share")])
    run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g", "metrics": {"score": s}}
                         for p, s in [("A", 91), ("B", 85), ("C", 85), ("D", 72), ("E", 64)]])
    b = run["B"].explain()
    own, _, context = b.partition("\nTeam context (")
    assert ("tied at positions 2, 3; the tied positions' prizes shared evenly: "
            "(500.00 + 200.00) / 2 = 350.00") in own
    assert "  竞赛 contest\n    tied with: C\n" in context
    assert "C" not in own.replace("Pay statement", "")
    assert "竞赛 contest: 6 more score draws level with a larger prize" in b
    e = run["E"].explain(lang="zh")
    assert "门槛: 总分 64，至少需 70：未达标" in e
    assert "得分再提高 21 即可追平更高一档奖金" in e  # level with B and C at 85: D at 72 wins nothing
    d = run["D"].explain()
    assert "rank 4 of 4 qualified (position 4)" in d


# ------------------------------------------------ committed example statements
EXAMPLES = TELECOM.parent
STATEMENTS = [
    ("telecom", "records.jsonl", "X", "markdown", "zh", "statement-X.zh.md"),
    ("telecom", "records.jsonl", "X", "text", "en", "statement-X.en.txt"),
    ("bank", "records.json", "P", "text", "en", "statement-P.en.txt"),
    ("bank", "records.json", "Q", "markdown", "zh", "statement-Q.zh.md"),
    ("tobacco", "records.jsonl", "GL-02", "text", "en", "statement-GL-02.en.txt"),
    ("tobacco", "records.jsonl", "CS-04", "markdown", "zh", "statement-CS-04.zh.md"),
]


@pytest.mark.parametrize(("example", "records", "payee", "fmt", "lang", "name"), STATEMENTS)
def test_committed_example_statement_is_current(cli: Callable[..., Any], tmp_path: Path,
                                                example: str, records: str, payee: str,
                                                fmt: str, lang: str, name: str) -> None:
    folder = EXAMPLES / example
    out = tmp_path / name
    r = cli("explain", folder / "plan.yaml", folder / records, "--payee", payee,
            "--format", fmt, "--lang", lang, "--out", out)
    assert r.code == 0, r.err
    regenerate = (f"incentives explain examples/{example}/plan.yaml examples/{example}/{records} "
                  f"--payee {payee} --format {fmt} --lang {lang} "
                  f"--out examples/{example}/{name}")
    committed = (folder / name).read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, f"out of date; run: {regenerate}"


def test_committed_e1_statement_recomputes() -> None:
    text = (TELECOM / "statement-X.en.txt").read_text(encoding="utf-8")
    _, total, _ = recompute_text_statement(text)
    assert total == Decimal("948.00")


def test_deferral_and_combined_children_are_explained() -> None:
    from incentives import Deferral, LargerOf, Tiered

    plan = Plan(name="d", inputs={"metrics": {"bonus_base": {}}},
                policies=[FormulaLine(id="bonus", amount="bonus_base"),
                          Deferral(id="deferred", of="bonus", share="0.3", after=2)])
    run = plan.evaluate([{"payee": "a", "period": p, "metrics": {"bonus_base": b}}
                         for p, b in [("2026-01", 1000), ("2026-02", 0), ("2026-03", 200)]])
    jan = run.get("a", "2026-01").explain()
    assert ("deferred now, paid in 2026-03 if the condition then holds: 0.3 x 1,000.00 = 300.00"
            in jan)
    assert "amount: 0 - 300.00 = -300.00" in jan
    march = run.get("a", "2026-03").explain()
    assert "deferred in 2026-01, due 2026-03, paid now: 300.00" in march
    assert "amount: 300.00 - 60.00 = 240.00" in march
    for r in run:
        recompute_text_statement(r.explain())

    best = Plan(name="b", inputs={"metrics": {"sales": {}}}, policies=[LargerOf(
        id="pay", policies=[
            Tiered(id="commission", basis="sales", method="marginal",
                   tiers=[{"from": 0, "rate": "0.02"}, {"from": 30000, "rate": "0.04"}]),
            FormulaLine(id="guarantee", amount=1000)])])
    text = best.evaluate([{"payee": "a", "period": "2026-05",
                           "metrics": {"sales": 50000}}])["a"].explain()
    assert "commission › slice 30,000 to 50,000: 20,000 x 0.04 = 800.00" in text
    assert "the larger of: max(1,400.00, 1,000.00) = 1,400.00" in text
    recompute_text_statement(text)


def test_honour_gap_to_title() -> None:
    from incentives import Honour

    plan = Plan(name="e8", inputs={"metrics": {"satisfaction": {}, "complaints": {},
                                               "revenue": {}}},
                policies=[Honour(id="star", label="Service Star", award="服务之星",
                                 criteria="satisfaction >= 95 and complaints == 0",
                                 keys=["satisfaction", "revenue"], max=2, cutoff_ties="keys",
                                 cash=300)])
    run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g",
                          "metrics": {"satisfaction": s, "complaints": c, "revenue": r}}
                         for p, s, c, r in [("A", 98, 0, 1), ("B", 97, 0, 50000),
                                            ("C", 97, 0, 60000), ("D", 99, 1, 1),
                                            ("E", 95, 0, 1)]])
    assert [r.total for r in run] == [Decimal("300.00"), Decimal("0.00"), Decimal("300.00"),
                                      Decimal("0.00"), Decimal("0.00")]
    b = run["B"].explain()
    assert "rank 3 of 4 candidates (at most 2 awarded); ranked by: 97, 50000" in b
    assert "服务之星 not awarded (ranked below the cut-off): 0.00" in b
    assert "level with the last holder of 服务之星 on satisfaction; the later keys decided" in b
    e = run["E"].explain(lang="zh")
    assert "satisfaction再提高 2 即可追平服务之星的最后一名获得者" in e
    d = run["D"].explain()
    assert "criteria: satisfaction >= 95 and complaints == 0: not met" in d
    for r in run:
        assert build_statement(r).fallbacks == []


def test_cli_explain_reads_the_state_and_leaves_it(cli: Callable[..., Any], tmp_path: Path) -> None:
    plan = TELECOM / "plan-ledger.yaml"
    state = tmp_path / "state.json"
    r = cli("run", plan, TELECOM / "records.jsonl", "--state", state)
    assert r.code == 0, r.err
    before = state.read_bytes()
    r = cli("explain", plan, TELECOM / "records-2026-06.jsonl", "--payee", "X", "--state", state)
    assert r.code == 0, r.err
    assert "carried in from earlier periods: 868.00" in r.out
    assert state.read_bytes() == before  # explaining never closes a period
    recompute_text_statement(r.out)


def test_html_parses_as_a_browser_would_without_errors() -> None:
    """html5lib implements the WHATWG parsing algorithm browsers use; strict mode raises
    on any parse error (a stray end tag, a missing doctype, bad nesting...)."""
    html5lib = pytest.importorskip("html5lib")
    pages = 0
    for _, run in _runs():
        html5lib.HTMLParser(strict=True).parseFragment(run._repr_html_())
        for r in run:
            for lang in ("en", "zh"):
                html5lib.HTMLParser(strict=True).parse(r.explain(format="html", lang=lang))
                pages += 1
            html5lib.HTMLParser(strict=True).parseFragment(r._repr_html_())
    assert pages > 20
    with pytest.raises(html5lib.html5parser.ParseError):
        html5lib.HTMLParser(strict=True).parse("<!DOCTYPE html><p>a</b>")
