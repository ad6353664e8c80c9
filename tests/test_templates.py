"""HTML from templates: a folder of one's own overrides the bundled templates, in
Jinja2's sandbox, autoescaped, strict about undefined names; every failure one error
naming the file and line (exit 2 on the command line, no traceback, no output file)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from incentives import FormulaLine, Plan, load_plan, read_records_file
from incentives.display import pad, row, table, widths
from incentives.errors import UsageError
from incentives.explain import build_statement, explain, render_html, result_html, run_html
from incentives.templating import BUNDLED, TEMPLATE_NAMES, TemplateError

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples/telecom/plan.yaml"
RECORDS = ROOT / "examples/telecom/records.jsonl"


def telecom_x():  # type: ignore[no-untyped-def]
    return load_plan(PLAN).evaluate(read_records_file(RECORDS))["X"]


def folder(tmp_path: Path, **files: str) -> Path:
    """A template folder holding ``files`` (``statement_fragment="..."`` writes
    ``statement_fragment.html.j2``)."""
    out = tmp_path / "templates"
    out.mkdir(exist_ok=True)
    for name, text in files.items():
        (out / f"{name}.html.j2").write_text(text, encoding="utf-8")
    return out


def incentives(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "incentives", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, check=False)


# ------------------------------------------------------------------ restyling
def test_the_bundled_folder_has_every_template() -> None:
    assert sorted(p.name for p in BUNDLED.glob("*.html.j2")) == sorted(TEMPLATE_NAMES)


def test_a_folder_overrides_one_template_and_the_bundled_ones_serve_the_rest(
        tmp_path: Path) -> None:
    own = folder(tmp_path, statement_fragment=(
        '<main class="acme">\n<h1>ACME Corp: {{ title }}</h1>\n'
        "{% for line in lines if line.number is not none %}"
        "<p>{{ line.number }}. {{ line.label }}: {{ line.amount }}</p>\n{% endfor %}"
        "<p>{{ words.total }}: {{ total }}</p>\n</main>\n"))
    x = telecom_x()
    page = explain(x, format="html", templates=own)
    bundled = explain(x, format="html")
    head = bundled[:bundled.index("<body>\n") + len("<body>\n")]
    assert page == head + (
        '<main class="acme">\n<h1>ACME Corp: Pay statement: X, 2026-05</h1>\n'
        "<p>1. 通信费提成 (traffic commission): 1,400.00</p>\n"
        "<p>2. 新业务奖励 (new business): 180.00</p>\n"
        "<p>3. 客户流失扣罚 (churn penalty): -632.00</p>\n"
        "<p>4. 保底 (guaranteed floor): 0.00</p>\n"
        "<p>Total: 948.00</p>\n</main>\n</body>\n</html>\n")
    # the same folder through every door
    assert x.explain(format="html", templates=own) == page
    assert x.explain(format="html", templates=str(own)) == page
    assert render_html(build_statement(x), templates=own) == page
    assert result_html(x, templates=own).startswith('<main class="acme">')
    zh = x.explain(format="html", lang="zh", templates=own)
    assert "<p>合计: 948.00</p>" in zh  # the headings follow the language
    # a folder without the template falls back to the bundled one
    other = tmp_path / "other"
    other.mkdir()
    assert x.explain(format="html", templates=other) == bundled


def test_a_template_added_or_changed_is_seen_at_the_next_page(tmp_path: Path) -> None:
    x = telecom_x()
    own = folder(tmp_path)
    bundled = x.explain(format="html")
    assert x.explain(format="html", templates=own) == bundled
    (own / "statement.html.j2").write_text("one {{ total }}", encoding="utf-8")
    assert x.explain(format="html", templates=own) == "one 948.00\n"
    (own / "statement.html.j2").write_text("two, longer {{ total }}", encoding="utf-8")
    assert x.explain(format="html", templates=own) == "two, longer 948.00\n"
    (own / "statement.html.j2").unlink()
    assert x.explain(format="html", templates=own) == bundled


def test_a_template_extends_the_bundled_one_and_replaces_a_block(tmp_path: Path) -> None:
    own = folder(tmp_path, statement='{% extends "bundled/statement.html.j2" %}'
                 "{% block style %}{{ super() }}h2{color:#b00}{% endblock %}")
    x = telecom_x()
    bundled = explain(x, format="html")
    page = explain(x, format="html", templates=own)
    assert page == bundled.replace("padding-left:1.2em}</style>",
                                   "padding-left:1.2em}h2{color:#b00}</style>")


def test_the_docs_show_the_example_folders_template_as_it_is() -> None:
    doc = (ROOT / "docs/statements.md").read_text(encoding="utf-8")
    shown = doc.split("```jinja\n", 1)[1].split("```", 1)[0]
    text = (ROOT / "examples/telecom/templates/statement.html.j2").read_text(encoding="utf-8")
    assert text.endswith(shown)


def test_run_html_from_a_folder_of_ones_own(tmp_path: Path) -> None:
    run = load_plan(PLAN).evaluate(read_records_file(RECORDS))
    own = folder(tmp_path, run="{% for row in rows %}{{ row.payee }}={{ row.total }};"
                 "{% endfor %}{{ footer }}")
    assert run_html(run, templates=own) == "X=948.00;Y=700.00;Z=4060.00;3 results"


def test_templates_restyle_html_only(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="templates restyle HTML statements only"):
        telecom_x().explain(format="text", templates=tmp_path)


# ------------------------------------------------------------------ safety
def test_hostile_payee_ids_and_labels_are_escaped() -> None:
    plan = Plan(name="p", inputs={"metrics": {"sales": {}}}, policies=[
        FormulaLine(id="bonus", label="<script>alert(1)</script>", amount="sales * 0.1")])
    run = plan.evaluate([{"payee": "<script>x</script>", "group": "<img src=x onerror=y>",
                          "period": "2026-05", "metrics": {"sales": 100}}])
    result = run.results[0]
    for page in (result.explain(format="html"), result.explain(format="html", lang="zh"),
                 result._repr_html_(), run._repr_html_()):
        assert "<script" not in page
        assert "<img" not in page
        assert "&lt;script&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run._repr_html_()


@pytest.mark.parametrize("expression", [
    "''.__class__.__mro__",
    "title.__class__.__mro__[1].__subclasses__()",
    "lines.__class__.__init__.__globals__",
    "words.__init__",
])
def test_the_sandbox_refuses_pythons_internals(tmp_path: Path, expression: str) -> None:
    own = folder(tmp_path, statement_fragment=f"<div>\n{{{{ {expression} }}}}\n</div>")
    with pytest.raises(TemplateError) as caught:
        telecom_x().explain(format="html", templates=own)
    message = str(caught.value)
    assert message.startswith(f"template {own / 'statement_fragment.html.j2'}, line 2: ")
    assert "refused by the sandbox: access to attribute '__" in message
    assert "is unsafe" in message


def test_errors_in_python_name_the_file_and_line(tmp_path: Path) -> None:
    x = telecom_x()
    with pytest.raises(TemplateError, match=r"templates folder .*nowhere: no such folder"):
        x.explain(format="html", templates=tmp_path / "nowhere")
    own = folder(tmp_path, statement_fragment="<div>\n{{ total }}\n{{ totl }}\n</div>")
    path = own / "statement_fragment.html.j2"
    with pytest.raises(TemplateError) as caught:
        x.explain(format="html", templates=own)
    assert str(caught.value) == f"template {path}, line 3: undefined: 'totl' is undefined"
    path.write_text("<div>\n\n{% for line in lines %}\n</div>", encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        x.explain(format="html", templates=own)
    assert str(caught.value).startswith(f"template {path}, line 4: syntax error: ")
    assert "'endfor'" in str(caught.value)


def test_unreadable_and_runaway_templates_are_named(tmp_path: Path) -> None:
    x = telecom_x()
    own = folder(tmp_path)
    path = own / "statement_fragment.html.j2"
    path.write_bytes(b"<div>\xff\xfe</div>")
    with pytest.raises(TemplateError) as caught:
        x.explain(format="html", templates=own)
    assert str(caught.value) == f"template {path}: not UTF-8 text (byte 5)"
    path.unlink()
    (own / "statement.html.j2").write_text('{% extends "statement.html.j2" %}',
                                           encoding="utf-8")
    with pytest.raises(TemplateError, match=r"statement\.html\.j2, line 1: RecursionError"):
        x.explain(format="html", templates=own)
    other = tmp_path / "other"
    other.mkdir()
    (other / "statement.html.j2").write_text('{% include "../secret.html.j2" %}',
                                             encoding="utf-8")
    (tmp_path / "secret.html.j2").write_text("secret", encoding="utf-8")
    with pytest.raises(TemplateError, match=re.escape("no template '../secret.html.j2'")):
        x.explain(format="html", templates=other)  # nothing outside the folder


# ------------------------------------------------------- the command line
def _explain_args(out: Path, templates: Path) -> list[object]:
    return ["explain", PLAN, RECORDS, "--payee", "X", "--format", "html",
            "--templates", templates, "--out", out]


def test_explain_command_with_a_folder_of_ones_own(tmp_path: Path) -> None:
    own = folder(tmp_path, statement_fragment="<p>{{ title }}: {{ total }}</p>")
    out = tmp_path / "x.html"
    proc = incentives(*_explain_args(out, own), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "<body>\n<p>Pay statement: X, 2026-05: 948.00</p>\n</body>" in out.read_text(
        encoding="utf-8")


@pytest.mark.parametrize(("text", "line", "says"), [
    (None, None, "no such folder"),
    ("<div>\n{% if %}\n</div>", 2, "syntax error: "),
    ("<div>\n{{ title }}\n\n{{ nonesuch }}\n</div>", 4, "undefined: 'nonesuch' is undefined"),
    ("<div>\n{{ ''.__class__.__mro__ }}</div>", 2, "is unsafe"),
])
def test_explain_command_template_errors(tmp_path: Path, text: str | None, line: int | None,
                                         says: str) -> None:
    own = tmp_path / "missing" if text is None else folder(tmp_path,
                                                           statement_fragment=text)
    out = tmp_path / "x.html"
    proc = incentives(*_explain_args(out, own), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr  # one line, no traceback
    assert proc.stderr.startswith("error: ")
    assert says in proc.stderr
    if line is not None:
        assert f"{own / 'statement_fragment.html.j2'}, line {line}: " in proc.stderr
    else:
        assert str(own) in proc.stderr
    assert not out.exists()
    assert list(tmp_path.glob("*.html*")) == []  # no partial or temporary file


def test_explain_command_templates_need_html(tmp_path: Path) -> None:
    proc = incentives("explain", PLAN, RECORDS, "--payee", "X", "--templates", tmp_path,
                      cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "error: --templates restyles HTML statements: give --format html " \
                          "(not text)\n"


def _simulate_args(out: Path, templates: Path) -> list[object]:
    return ["simulate", PLAN, "--synthetic", "12", "--seed", "1", "--sweep",
            "floor_amount=500,900", "--out", out, "--no-progress", "--templates", templates]


def test_simulate_command_with_a_folder_of_ones_own(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    own = folder(tmp_path, simulation_report=(
        '{% extends "bundled/simulation_report.html.j2" %}'
        "{% block style %}{{ super() }}h1{color:#b00}{% endblock %}"))
    out = tmp_path / "report"
    proc = incentives(*_simulate_args(out, own), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "img{max-width:100%}h1{color:#b00}</style>" in page
    assert "<h1>Simulation of telecom-key-account</h1>" in page
    assert "<td>floor_amount=900</td>" in page


@pytest.mark.parametrize(("text", "line", "says"), [
    (None, None, "no such folder"),
    ("<html>\n{% for x in %}</html>", 2, "syntax error: "),
    ("<html>\n<h1>{{ title }}</h1>\n{{ headline.header | join(',') }}\n{{ cost }}</html>", 4,
     "undefined: 'cost' is undefined"),
])
def test_simulate_command_template_errors(tmp_path: Path, text: str | None, line: int | None,
                                          says: str) -> None:
    pytest.importorskip("matplotlib")
    own = tmp_path / "missing" if text is None else folder(tmp_path, simulation_report=text)
    out = tmp_path / "report"
    proc = incentives(*_simulate_args(out, own), cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert says in proc.stderr
    if line is not None:
        assert f"{own / 'simulation_report.html.j2'}, line {line}: " in proc.stderr
    assert not out.exists()  # nothing written: no plot, no table, no page


def test_simulation_report_escapes_hostile_variant_names(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from incentives.populations import synthetic
    from incentives.simulate import simulate, variant
    from incentives.simulate_cli import write_report

    plan = load_plan(PLAN)
    sim = simulate(plan, [variant(plan, "<script>alert(1)</script>",
                                  parameters={"floor_amount": 900})],
                   synthetic(plan, 8, seed=2), progress=False)
    write_report(sim, sim.compare(), tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    # the Markdown report escapes it too, but in the fenced list of variants (code)
    fenced = md.split("## Variants")[1].split("## Headline figures")[0]
    assert not re.search(r"(?<!\\)<script", md.replace(fenced, ""))
    assert fenced.strip().startswith("```")
    assert "| \\<script\\>alert(1)\\</script\\> |" in md


def test_simulation_report_markdown_keeps_a_fenced_variant_name_inside(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from incentives.populations import synthetic
    from incentives.simulate import simulate, variant
    from incentives.simulate_cli import write_report

    plan = load_plan(PLAN)
    sim = simulate(plan, [variant(plan, "x\n```\n# forged", parameters={"floor_amount": 900})],
                   synthetic(plan, 8, seed=2), progress=False)
    write_report(sim, sim.compare(), tmp_path)
    md = (tmp_path / "report.md").read_text(encoding="utf-8").splitlines()
    start = md.index("## Variants") + 2
    fence = md[start]
    assert fence.startswith("````")  # longer than the name's own backticks
    assert md.index(fence, start + 1) > start + 1
    assert "# forged" not in md  # a heading only inside the fenced block


def test_jinja2_is_imported_only_to_render_html() -> None:
    code = ("import sys, incentives, incentives.cli, incentives.explain\n"
            "incentives.cli.build_parser()\n"
            "from incentives import load_plan, read_records_file\n"
            "run = load_plan('examples/telecom/plan.yaml').evaluate("
            "read_records_file('examples/telecom/records.jsonl'))\n"
            "run.to_table(); run['X'].explain(); run['X'].explain(format='markdown')\n"
            "print('jinja2' in sys.modules)\n"
            "run['X'].explain(format='html')\n"
            "print('jinja2' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "True"]


# ------------------------------------------------------- the text table renderer
def test_the_table_renderer_measures_cjk_in_display_columns() -> None:
    lines = table([["名字", "amount"], ["", "(元)"]],
                  [["张三丰", "1,400.00"], ["Bo", "5.00"], ["é", "-632.00"]],
                  right=[False, True])
    assert lines == [
        "名字      amount",
        "            (元)",
        "------  --------",
        "张三丰  1,400.00",
        "Bo          5.00",
        "é        -632.00",
    ]
    assert widths([["张三丰", "x"], ["abcdefg"]]) == [7, 1]
    assert pad("奖金", 5) == "奖金 "
    assert pad("奖金", 5, right=True) == " 奖金"
    assert row(["1. 提成", "1,400.00"], [7, 20], [False, True]) == "1. 提成" + " " * 14 + \
        "1,400.00"
    # the statement's line heads and the run table use it: the amounts end at column 80
    text = telecom_x().explain(lang="zh")
    from wcwidth import wcswidth

    heads = [t for t in text.splitlines() if t[:2] in ("1.", "2.", "3.", "4.")]
    assert len(heads) == 4
    assert all(wcswidth(t) == 80 for t in heads)


# ------------------------------------------------------------------ hostile folders
@pytest.mark.parametrize("how", ["linked file", "linked template", "linked folder"])
def test_a_link_out_of_the_folder_is_refused(tmp_path: Path, how: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE", encoding="utf-8")
    own = tmp_path / "templates"
    own.mkdir()
    if how == "linked file":
        (own / "evil.j2").symlink_to(secret)
        (own / "statement.html.j2").write_text("{% include 'evil.j2' %}", encoding="utf-8")
    elif how == "linked template":
        (own / "statement.html.j2").symlink_to(secret)
    else:
        (own / "root").symlink_to(tmp_path, target_is_directory=True)
        (own / "statement.html.j2").write_text("{% include 'root/secret.txt' %}",
                                               encoding="utf-8")
    out = tmp_path / "x.html"
    proc = incentives(*_explain_args(out, own), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout
    assert "SECRET-LINE" not in proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "outside the templates folder" in proc.stderr
    assert not out.exists()
    with pytest.raises(TemplateError, match="outside the templates folder"):
        telecom_x().explain(format="html", templates=own)


def test_a_link_inside_the_folder_is_followed(tmp_path: Path) -> None:
    own = folder(tmp_path, base="<p>{{ title }}</p>")
    (own / "statement_fragment.html.j2").symlink_to(own / "base.html.j2")
    assert "<p>Pay statement: X, 2026-05</p>" in telecom_x().explain(format="html",
                                                                      templates=own)


def test_an_empty_folder_name_is_refused_and_never_the_bundled_templates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = folder(tmp_path, statement_fragment="HIJACKED {{ title }}")
    monkeypatch.chdir(here)
    x = telecom_x()
    for empty in ("", " "):
        with pytest.raises(TemplateError, match="an empty name"):
            x.explain(format="html", templates=empty)
    assert "HIJACKED" not in x.explain(format="html")
    proc = incentives("explain", PLAN, RECORDS, "--payee", "X", "--format", "html",
                      "--templates", "", cwd=here)
    assert proc.returncode == 2
    assert "HIJACKED" not in proc.stdout
    assert proc.stderr == "error: templates folder: an empty name (give the folder's path)\n"


def test_a_template_nested_too_deeply_is_one_error(tmp_path: Path) -> None:
    own = folder(tmp_path, statement_fragment="{% if 1 %}" * 120 + "x" + "{% endif %}" * 120)
    out = tmp_path / "x.html"
    proc = incentives(*_explain_args(out, own), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == ("error: template statement_fragment.html.j2 (or one it includes): nested "
                           "too deeply for Python to compile\n")
    assert not out.exists()


def test_a_template_cannot_change_what_it_is_given(tmp_path: Path) -> None:
    from incentives.templating import render

    variants = ["base", "raise"]
    own = folder(tmp_path, simulation_report='{{ variants.append("INJECTED") or "" }}')
    with pytest.raises(TemplateError, match="refused by the sandbox"):
        render("simulation_report.html.j2", {"variants": variants}, own)
    assert variants == ["base", "raise"]
