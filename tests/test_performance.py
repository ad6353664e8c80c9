"""Speed work must not change behaviour: fast paths agree with the full ones.

Speed itself is measured by the benchmarks (``benchmarks/``), never by a timed test.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incentives import compile_formula, load_plan
from incentives.errors import RecordError
from incentives.records import RecordReader

ROOT = Path(__file__).resolve().parent.parent

D = Decimal


# --------------------------------------------------------------------------
# the benchmarks' baselines agree with the library, to the cent


def test_formula_benchmark_agrees_with_handwritten_and_reparse(load_bench: Any) -> None:
    bench = load_bench("bench_formulas")
    records = bench.make_records(400, seed=11)
    run = bench.make_plan().evaluate(records)
    assert len(run.results) == 400
    hand = bench.handwritten(records)
    assert bench.compare(run.results, hand) == []
    assert bench.compare(run.results, bench.reparse(records)) == []
    # the comparison is not vacuous: a cent off on one line is seen
    key = next(iter(hand))
    hand[key]["kpi"] += D("0.01")
    assert len(bench.compare(run.results, hand)) == 1
    # and the plan exercises every line it has, not just zeros
    for policy in ("commission", "visit_pay", "quality", "kpi", "cost_share", "floor"):
        assert any(r.amount(policy) != 0 for r in run.results), policy


def test_plan_benchmark_agrees_with_handwritten_and_reparse(load_bench: Any) -> None:
    """The realistic plan (contest, team pool, balancing included): to the cent."""
    bench = load_bench("bench_plan")
    plan = bench.make_plan()
    assert {"contest", "bonus_pool", "balance"} <= {p.type for p in plan.policies}
    seen: set[str] = set()
    for period in bench.periods(2):
        records = bench.make_records(150, period, seed=5)
        run = plan.evaluate(records)
        hand = bench.handwritten(records)
        assert bench.compare(run.results, hand) == []
        assert bench.compare(run.results, bench.reparse(records)) == []
        seen |= {line.policy for r in run.results for line in r.lines if line.amount}
        # a cent moved between two payees is seen on both
        a, b = list(hand)[:2]
        hand[a]["team_pool"] += D("0.01")
        hand[b]["team_pool"] -= D("0.01")
        assert len(bench.compare(run.results, hand)) == 2
    # every mechanism paid someone something (balancing moved money too)
    assert seen == {"base", "commission", "new_business", "kpi", "churn", "contest",
                    "team_pool", "balance", "floor"}


# --------------------------------------------------------------------------
# Formula.substitute: a template made once gives what unparsing the tree gives


class _OldSubstituter(ast.NodeTransformer):
    """The original per-call implementation, kept here as the reference."""

    def __init__(self, source: str, env: dict[str, Any]) -> None:
        self.source, self.env = source, env

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.env:
            v = self.env[node.id]
            return ast.Name(id=repr(v) if isinstance(v, str) else str(v), ctx=ast.Load())
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            text = ast.get_source_segment(self.source, node) or repr(node.value)
            return ast.Name(id=text, ctx=ast.Load())
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node.args = [self.visit(a) for a in node.args]
        return node


def _old_substitute(source: str, env: dict[str, Any]) -> str:
    tree = _OldSubstituter(source, env).visit(ast.parse(source.strip(), mode="eval").body)
    return ast.unparse(tree)


NAMES = {"a": "number", "b": "number", "c": "number", "grade": "text", "ok": "bool"}
FORMULAS = [
    "a * 0.02",
    "min(a * 0.03, 5000) + b",
    "clamp((a - 80) * 25, 0, 500) if c == 0 else b",
    "-min(a * 0.01, max(b, 0) * 0.1)",
    "a if grade == 'A\\x00' else (b if ok else c)",
    "(a + b) * (c - 1.50) / 2 ** 2",
    "grade in ('A', 'B') and not ok or a >= b",
    "1000 * a",  # (a digit separator, 1_000, is refused: issue 15.4)
]


@pytest.mark.parametrize("source", FORMULAS)
@given(a=st.decimals(allow_nan=False, allow_infinity=False, places=2),
       b=st.integers(-10**6, 10**6), grade=st.sampled_from(["A", "B's", "中"]),
       drop=st.sets(st.sampled_from(["a", "b", "c", "grade", "ok"])))
def test_substitute_matches_reparsing(source: str, a: Decimal, b: int, grade: str,
                                      drop: set[str]) -> None:
    env: dict[str, Any] = {"a": a, "b": D(b), "c": D("0"), "grade": grade, "ok": True}
    for k in drop:
        del env[k]
    f = compile_formula(source, NAMES)
    assert f.substitute(env) == _old_substitute(source, env)


# --------------------------------------------------------------------------
# RecordReader: the fast path gives what the full check gives, error or record

PLAN_TEXT = """
name: reader
inputs:
  metrics:
    revenue: {min: 0}
    visits: {default: 0, integer: true, min: 0, max: 500}
    score: {column: Score}
  attributes:
    grade: {allowed: [A, B]}
    days: {type: number, min: 0, max: 31, default: 31}
    active: {type: bool, default: true}
  events:
    lost: {fields: {id: text, value: number}}
policies:
  - {type: formula, id: pay, amount: revenue * 0.01}
"""
#: one plan with a CSV column name for a metric, one without (the fast path's case), and
#: one with an event list the reader written for the plan leaves to the slower paths
INPUTS = [load_plan(PLAN_TEXT).inputs,
          load_plan(PLAN_TEXT.replace("{column: Score}", "{}")).inputs,
          load_plan(PLAN_TEXT.replace("{column: Score}", "{}").replace(
              "    lost: {fields: {id: text, value: number}}",
              "    lost: {fields: {id: text, value: number}}\n"
              "    moves: {fields: {day: date}}")).inputs,
          load_plan(PLAN_TEXT.replace("{column: Score}", "{}").replace(
              "  events:", "  groups: [g1, g2]\n  events:")).inputs]


def _outcome(fn: Any, raw: Any) -> str:
    try:
        return "ok " + repr(fn(raw))
    except RecordError as exc:
        return f"error {exc}"


values = st.one_of(
    st.none(), st.just(""), st.just("  "), st.just("12.50"), st.just(" 7 "), st.just("x"),
    st.just("NaN"), st.booleans(), st.integers(-5, 600), st.integers(10**17, 10**19),
    st.decimals(allow_nan=True, allow_infinity=True, places=1),
    st.just(1.5), st.just([]), st.just({}), st.sampled_from(["A", "B", "C", " A "]),
    st.sampled_from(["A\x1b", "\x00", "B\n", "7\t", "A\u2028", "\u3000A"]),
)
keys = st.sampled_from(["revenue", "visits", "score", "Score", "grade", "days", "active",
                        "lost", "bogus"])


@st.composite
def raw_records(draw: st.DrawFn) -> Any:
    """Mostly well-formed records (nested or flat), with a few things spoilt."""
    flat = draw(st.booleans())
    metrics: dict[str, Any] = {"revenue": draw(st.sampled_from([D("10.50"), 7, "3.25"])),
                               "score": draw(st.sampled_from([D(4), "4.0", 0]))}
    if draw(st.booleans()):
        metrics["visits"] = draw(st.sampled_from([3, D(2), "5"]))
    attributes: dict[str, Any] = {"grade": draw(st.sampled_from(["A", "B", " B "]))}
    if draw(st.booleans()):
        attributes["days"] = draw(st.sampled_from([D(20), "30", 31]))
    raw: dict[str, Any] = {"payee": draw(st.sampled_from(["m-1", " m-2 ", "m\x1b3", "m-4\n"])),
                           "period": draw(st.sampled_from(["2026-05", "2026-Q2", "",
                                                           "2026-05\t"]))}
    if draw(st.booleans()):
        raw["group"] = draw(st.sampled_from(["g1", " g2 ", None]))
    if flat:
        raw.update(metrics)
        raw.update(attributes)
    else:
        raw["metrics"] = metrics
        raw["attributes"] = attributes
        if draw(st.booleans()):
            raw["events"] = draw(st.one_of(
                st.none(), st.just([]), st.just(""), st.just({}),
                st.just({"lost": [{"id": "c1", "value": "10"}]}),
                st.just({"lost": [{"id": "c1"}]}), st.just({"lots": []}),
                st.just({"lost": None}), st.just({"lost": "c1"}), st.just({"lost": [[]]}),
                st.just({"moves": [{"day": "2026-05-03"}]}),
                st.lists(st.fixed_dictionaries(
                    {"id": st.sampled_from(["c1", " c2 ", "", "  ", 7, "c\x1b3", "c4\u2028"]),
                     "value": st.sampled_from([D("10.5"), D(3), D("NaN"), D("-Infinity"),
                                               D("1E+40"), "4", 4, None])},
                    optional={"extra": st.just(1)}), max_size=3).map(
                    lambda rows: {"lost": rows})))
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["top", "metrics", "attributes"]))
        target = raw if flat or where == "top" or not isinstance(raw.get(where), dict) \
            else raw[where]
        key = draw(st.one_of(keys, st.sampled_from(["payee", "period", "group", "metrics"])))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(values)
    return raw


@given(raw=raw_records(), default_period=st.sampled_from([None, "2026-06"]),
       inputs=st.sampled_from(INPUTS))
def test_fast_reader_agrees_with_full_check(raw: Any, default_period: str | None,
                                            inputs: Any) -> None:
    reader = RecordReader(inputs, default_period=default_period)
    assert _outcome(reader.read, raw) == _outcome(reader._read, raw)


#: one thing spoilt in a well-formed record, by where it is
SPOILS: dict[str, list[Any]] = {
    "payee": ["", "  ", 5, None, "p" * 1001, "m\x1b-1", "m-1\n", "\x00", " m-1\t", "m\u2028",
              "m\ud800", "m\u202e1", "\u3000m-1\u00a0"],
    "period": ["", "2026-13", 202605, "x", "2026-05\n", "2026-05\x00", "\x1b2026-05",
               "2026-" + "0" * 50],
    "group": ["  ", 3, "g" * 1001, "g\x07", "g1\r", "g\x85", "\u3000g1"],
    "metrics": [None, [], {"bogus": 1}, {"revenue": D(-1)}, {"revenue": "3.25"},
                {"revenue": D("Infinity")}, {"revenue": D("1." + "1" * 40)}, {}],
    "attributes": [None, [], {"grade": "C"}, {"grade": ""}, {"grade": 1}, {"bogus": 1},
                   {"grade": "A\x00"}, {"grade": "\x1bA"}, {"grade": "A\u2029"},
                   {"grade": "C" * 500}, {"b\x1bogus": 1}],
    "events": [[], "", {"lots": []}, {"lost": None}, {"lost": "c1"}, {"lost": [[]]},
               {"moves": [{"day": "2026-05-03"}]}, {"moves": []}],
    "event": [{"id": ""}, {"id": "  "}, {"id": 7}, {"id": None}, {"id": "x" * 1001},
              {"value": D("NaN")}, {"value": D("-Infinity")}, {"value": D("1E+40")},
              {"value": D("1." + "1" * 40)}, {"value": "4"}, {"value": 4},
              {"value": None}, {"value": True}, {"extra": 1}, {"id": "c\x1b9"},
              {"id": "c9\n"}, {"id": "\x9bc9"}, {"id": "c\u2066"}, {"e\x00xtra": 1}],
    "top": [{"bogus": 1}, {"Score": 1}, {"bo\x1bgus": 1}],
}


@st.composite
def nested_records(draw: st.DrawFn) -> Any:
    """Well-formed nested records with one thing spoilt at most: what the reader
    written for a plan (records._fast_reader) reads itself or leaves to the full check."""
    rows = draw(st.lists(st.fixed_dictionaries(
        {"id": st.sampled_from(["c1", " c2 "]), "value": st.sampled_from([D("10.5"), D(3)])}),
        max_size=3))
    raw: dict[str, Any] = {
        "payee": draw(st.sampled_from(["m-1", " m-2 "])),
        "period": draw(st.sampled_from(["2026-05", " 2026-Q2 ", None])),
        "group": draw(st.sampled_from(["g1", " g2 ", None])),
        "metrics": {"revenue": draw(st.sampled_from([D("10.50"), 7])), "score": D(4)},
        "attributes": {"grade": draw(st.sampled_from(["A", " B "]))},
        "events": draw(st.sampled_from([None, {}, {"lost": rows}])),
    }
    where = draw(st.sampled_from(["", "payee", "period", "group", "metrics", "attributes",
                                  "events", "event", "top"]))
    if where == "event":
        raw["events"] = {"lost": [*rows, {"id": "c9", "value": D(1),
                                          **draw(st.sampled_from(SPOILS["event"]))}]}
    elif where == "top":
        raw.update(draw(st.sampled_from(SPOILS["top"])))
    elif where:
        raw[where] = draw(st.sampled_from(SPOILS[where]))
    if draw(st.integers(0, 9)) == 0:
        raw.pop(draw(st.sampled_from(["payee", "period", "group", "metrics", "attributes"])))
    return raw


@settings(max_examples=300)
@given(raw=nested_records(), default_period=st.sampled_from([None, "2026-06"]),
       inputs=st.sampled_from(INPUTS[1:]))
def test_reader_written_for_the_plan_agrees_with_full_check(
        raw: Any, default_period: str | None, inputs: Any) -> None:
    reader = RecordReader(inputs, default_period=default_period)
    assert _outcome(reader.read, raw) == _outcome(reader._read, raw)
    records: list[Any] = []
    errors: list[Any] = []
    reader.read_all([raw], records, errors)
    got = f"ok {records[0]!r}" if records else f"error {errors[0]}"
    assert got == _outcome(lambda r: reader._read(r, 0), raw)


def _spoilt(layout: str) -> Any:
    """Each record of ``layout`` (nested or flat) with one thing spoilt (and the
    record as it is), for every place SPOILS names."""
    base: dict[str, Any] = {"payee": "m-1", "period": "2026-05", "group": "g1",
                            "metrics": {"revenue": D("10.50"), "score": D(4)},
                            "attributes": {"grade": "A"},
                            "events": {"lost": [{"id": "c1", "value": D(3)}]}}
    yield base
    for where, spoils in SPOILS.items():
        for spoil in spoils:
            raw = {**base}
            if where == "event":
                raw["events"] = {"lost": [{"id": "c9", "value": D(1), **spoil}]}
            elif where == "top":
                raw.update(spoil)
            else:
                raw[where] = spoil
            if layout == "flat":
                if not isinstance(raw.get("metrics"), dict) or not isinstance(
                        raw.get("attributes"), dict) or where in ("events", "event"):
                    continue
                raw = {k: v for k, v in raw.items() if k not in ("metrics", "attributes",
                                                                 "events")}
                raw.update(base["metrics"] if where != "metrics" else spoil)
                raw.update(base["attributes"] if where != "attributes" else spoil)
            yield raw


@pytest.mark.parametrize("inputs", INPUTS, ids=["column", "plain", "dates", "groups"])
@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_reader_written_for_the_plan_agrees_on_every_spoil(inputs: Any, layout: str) -> None:
    """Every spoil of SPOILS, one at a time: the same record or the same error as the
    full check, for each plan and both layouts."""
    reader = RecordReader(inputs)
    for raw in _spoilt(layout):
        assert _outcome(reader.read, raw) == _outcome(reader._read, raw), raw


def test_fast_reader_reads_the_common_shapes() -> None:
    reader = RecordReader(INPUTS[0])
    nested = {"payee": "m-1", "period": "2026-05", "group": "g",
              "metrics": {"revenue": D("10.50"), "visits": 3, "Score": "4"},
              "attributes": {"grade": "A"}}
    # 'Score' is a CSV column name: the nested form takes the full check, same record
    assert _outcome(reader.read, nested) == _outcome(reader._read, nested)
    rec = RecordReader(INPUTS[1])._quick({**nested, "metrics": {"revenue": D("10.50"), "visits": 3, "score": 4}})
    assert rec.metrics == {"revenue": D("10.50"), "visits": D(3), "score": D(4)}
    assert rec.attributes == {"grade": "A", "days": D(31), "active": True}
    flat = {"payee": "m-1", "period": "2026-05", "revenue": "10.50", "Score": "4", "grade": "B"}
    assert reader.read(flat).metrics["score"] == D(4)


# --------------------------------------------------------------------------
# start-up stays light


def test_import_does_not_load_heavy_extras() -> None:
    code = ("import sys, incentives, incentives.cli, incentives.streaming\n"
            "heavy = ['pandas', 'matplotlib', 'dask', 'hypothesis', 'numpy']\n"
            "print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_help_does_not_load_heavy_extras() -> None:
    code = ("import sys\nfrom incentives.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = ['pandas', 'matplotlib', 'dask', 'hypothesis', 'numpy']\n"
            "print('LOADED:' + ','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip().endswith("LOADED:")
    assert "run" in out.stdout


#: What building the command line's parser must not import: the engine and the
#: libraries under it (pydantic, PyYAML, simpleeval), the statements (jinja2, babel).
_CORE = ("pydantic", "yaml", "simpleeval", "jinja2", "babel", "wcwidth",
         "incentives.money", "incentives.formulas", "incentives.inputs", "incentives.policies",
         "incentives.plan", "incentives.engine", "incentives.kernel", "incentives.records",
         "incentives.results", "incentives.ledger", "incentives.declared", "incentives.explain",
         "incentives.wording", "incentives.yamlio", "incentives.docgen", "incentives.simulate",
         "incentives.streaming")


def _imported(*args: str) -> tuple[set[str], str]:
    """The modules a real ``python -X importtime -m incentives ARGS`` process imported,
    and its standard output."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "incentives", *args],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    names = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    assert "incentives.cli" in names  # the report is there: an empty set proves nothing
    return names, out.stdout


def _among(names: set[str], modules: tuple[str, ...]) -> list[str]:
    """The ``names`` that are one of ``modules`` or inside one (``yaml.loader``)."""
    return sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in modules))


def _commands() -> list[str]:
    from incentives.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert isinstance(sub.choices, dict)
    return sorted(sub.choices)


def test_help_imports_no_core_module() -> None:
    names, out = _imported("--help")
    assert "validate" in out
    assert "correct" in out
    assert _among(names, _CORE) == []


@pytest.mark.parametrize("command", _commands())
def test_each_command_help_imports_no_core_module(command: str) -> None:
    names, out = _imported(command, "--help")
    assert out.startswith(f"usage: incentives {command} ")
    assert _among(names, _CORE) == []


#: The modules of the policy types the telecom plan names (tiered, rate_table, value,
#: churn_penalty, floor): ``validate`` imports these policy modules and no other.
_TELECOM_POLICIES = ["incentives.policies.base", "incentives.policies.churn",
                     "incentives.policies.floor", "incentives.policies.formula_line",
                     "incentives.policies.rate_table", "incentives.policies.tiers",
                     "incentives.policies.validation"]


def test_validate_imports_no_statement_or_integration_module() -> None:
    names, out = _imported("validate", "examples/telecom/plan.yaml")
    assert out == ("examples/telecom/plan.yaml: ok: plan 'telecom-key-account' version "
                   "2026.1, 5 policies\n")
    assert {"pydantic", "yaml", "incentives.plan", "incentives.policies"} <= names
    heavy = ("incentives.explain", "incentives.docgen", "incentives.results",
             "incentives.simulate", "incentives.streaming", "incentives.testing.strategies",
             "incentives.i18n", "incentives.cli_explain", "incentives.cli_stream",
             "incentives.simulate_cli", "incentives.testing",
             "jinja2", "babel", "wcwidth", "charset_normalizer", "hypothesis", "pandas")
    assert _among(names, heavy) == []
    # only the models of the policy types the plan's type: tags name (imported by
    # importlib.import_module, which -X importtime does not report: sys.modules tells)
    code = ("import sys\nfrom incentives.cli import main\n"
            "assert main(['validate', 'examples/telecom/plan.yaml']) == 0\n"
            "print(sorted(m for m in sys.modules if m.startswith('incentives.policies.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == str(_TELECOM_POLICIES)


def test_validate_skips_the_plugin_search_only_when_no_plugin_is_declared(
        tmp_path: Path) -> None:
    code = ("from incentives._startup import _declares_no_pydantic_plugin\n"
            "print(_declares_no_pydantic_plugin())")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=ROOT).stdout.strip()
    if found != "True":  # pragma: no cover - an environment with one
        pytest.skip("a pydantic plugin is installed here")
    names, _ = _imported("validate", "examples/telecom/plan.yaml")
    assert "importlib.metadata" not in names  # pydantic's plugin loader stood in for
    # a distribution declaring a plugin: pydantic's own loader runs (and loads it)
    dist = tmp_path / "a_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text("[console_scripts]\nx = y:z\n\n"
                                           " [pydantic] \nwatch = a_plugin_module:plugin\n")
    (tmp_path / "a_plugin_module.py").write_text(
        "import sys\nclass _Plugin:\n"
        "    def new_schema_validator(self, *args, **kwargs):\n"
        "        return None, None, None\n"
        "plugin = _Plugin()\nsys.stderr.write('a_plugin loaded\\n')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "incentives", "validate",
                           "examples/telecom/plan.yaml"], capture_output=True, text=True,
                          cwd=ROOT, env=env, check=True)
    assert "a_plugin loaded" in done.stderr
    assert "importlib.metadata" in done.stderr
    assert done.stdout.endswith(": ok: plan 'telecom-key-account' version 2026.1, 5 policies\n")


def test_the_lazy_registry_names_every_policy_type_and_part() -> None:
    code = ("import sys, incentives.policies as p\n"
            "print(sorted(m for m in sys.modules if m.startswith('incentives.policies.')))\n"
            "for tag in p.POLICY_TYPES:\n"
            "    assert p.POLICY_TYPES[tag].model_fields['type'].default == tag, tag\n"
            "for name in p.__all__:\n"
            "    assert getattr(p, name) is not None and name in dir(p), name\n"
            "print(len(p.POLICY_TYPES))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    from incentives.policies import _CLASSES, POLICY_TYPES

    # importing the package imports no policy's module
    assert out.stdout.splitlines() == ["['incentives.policies.base']", str(len(_CLASSES))]
    assert list(POLICY_TYPES) == [tag for tag, _, _ in _CLASSES]


#: Plans whose policies are wrong in every way the type: tag can be: each is refused
#: with the same message as the discriminated union of every policy type refuses it.
_BAD_POLICIES = [
    "{type: tierd, id: a}", "{type: 5, id: a}", "{type: null, id: a}", "{id: a, amount: 1}",
    "{type: [formula], id: a}", "5", "hello", "[1, 2]", "null", "{type: FORMULA, id: a}",
    "{type: formula, id: a}", "{type: formula, id: a, amount: sales, amout: 3}",
    "{type: formula, id: 1a, amount: sales}",
    "{type: tiered, id: a, basis: sales, tiers: [{from: 0, rate: 0.1}, {from: -5, rate: x}]}",
    "{type: larger_of, id: a, policies: [{type: formul, id: b, amount: 1}]}",
    "{type: larger_of, id: a, policies: [{type: formula, id: b, amont: 1}]}",
    "{type: larger_of, id: a, policies: [{type: formula, id: b, amount: 1}, {id: c}]}",
    "{type: larger_of, id: a, policies: []}", "{type: sum_of, id: a, policies: [7]}",
    "{type: sum_of, id: a, policies: [{type: larger_of, id: b, policies: [{type: cap}]}]}",
    "{type: sum_of, id: a, policies: [{type: bonus_pool, id: b}]}",
]


@pytest.mark.parametrize("policy", _BAD_POLICIES)
def test_a_bad_policy_is_refused_as_the_union_of_every_type_refuses_it(policy: str) -> None:
    from typing import Annotated, Union

    from pydantic import Field, ValidationError

    from incentives import Plan, PlanError
    from incentives.policies import POLICY_TYPES
    from incentives.policies.validation import plan_error
    from incentives.yamlio import load_yaml

    every: Any = Annotated[Union[tuple(POLICY_TYPES.values())],  # noqa: UP007
                           Field(discriminator="type")]

    class UnionPlan(Plan):  # the plan's model as it was: every policy type's model
        policies: list[every] = Field(min_length=1)  # type: ignore[valid-type]

    text = f"name: p\ninputs:\n  metrics: {{sales: {{}}}}\npolicies:\n  - {policy}\n"
    data, lines = load_yaml(text, file="p.yaml")
    with pytest.raises(PlanError) as lazy:
        load_plan(text, file="p.yaml")
    try:
        UnionPlan.model_validate(data)
    except ValidationError as exc:
        wanted = plan_error(exc, data, lines, "p.yaml")
    else:  # a model validator of the plan refuses it (both models have them)
        pytest.fail("the union accepted it")
    assert (str(lazy.value), lazy.value.line, lazy.value.suggestion) == \
        (str(wanted), wanted.line, wanted.suggestion)


def test_import_incentives_is_lazy_and_keeps_every_public_name() -> None:
    code = ("import sys, importlib, incentives\n"
            "print(sorted(m for m in ('pydantic', 'yaml', 'simpleeval', 'incentives.plan', "
            "'incentives.policies') if m in sys.modules))\n"
            "for name in incentives.__all__:\n"
            "    value = getattr(incentives, name)\n"
            "    home = importlib.import_module('incentives.' + incentives._HOMES[name])\n"
            "    assert value is getattr(home, name), name\n"
            "    assert name in dir(incentives), name\n"
            "print(len(incentives.__all__), incentives.Plan.__module__, 'pydantic' in sys.modules)\n"
            "try:\n    incentives.NoSuchName\n"
            "except AttributeError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    import incentives

    assert out.stdout.splitlines() == [
        "[]", f"{len(incentives.__all__)} incentives.plan True",
        "module 'incentives' has no attribute 'NoSuchName'"]
    assert sorted(incentives.__all__) == sorted(incentives._HOMES)
    namespace: dict[str, Any] = {}
    exec("from incentives import *", namespace)
    assert namespace["load_plan"] is load_plan
    assert namespace["RecordReader"] is RecordReader


def test_explain_formats_offered_by_the_command_line_are_the_statements() -> None:
    import incentives.cli_explain
    import incentives.explain

    assert incentives.cli_explain.FORMATS == incentives.explain.FORMATS == ("text", "markdown", "html")


# --------------------------------------------------------------------------
# lazy explanations: the details a line builds when first read are the ones
# it would have built when it was made


def _example_runs(load_bench: Any) -> list[tuple[str, Any, list[Any]]]:
    from incentives.records import read_records_file

    out: list[tuple[str, Any, list[Any]]] = []
    for plan_file, records_file in (("telecom/plan.yaml", "telecom/records.jsonl"),
                                    ("bank/plan.yaml", "bank/records.json"),
                                    ("tobacco/plan.yaml", "tobacco/records.jsonl")):
        out.append((plan_file, load_plan(ROOT / "examples" / plan_file),
                    list(read_records_file(ROOT / "examples" / records_file))))
    formulas, realistic = load_bench("bench_formulas"), load_bench("bench_plan")
    out.append(("bench_formulas", formulas.make_plan(), formulas.make_records(300, seed=5)))
    out.append(("bench_plan", realistic.make_plan(),
                realistic.make_records(150, "2026-05", seed=5)))
    return out


def test_lazy_details_equal_details_built_when_the_line_is_made(
        monkeypatch: pytest.MonkeyPatch, load_bench: Any) -> None:
    import decimal

    from incentives.runtime import Line

    runs = _example_runs(load_bench)
    lazy = []
    for _, plan, records in runs:
        run = plan.evaluate(records, errors="collect")
        # read under a coarse context: the details are still built in the plan's
        with decimal.localcontext(decimal.Context(prec=5)):
            lazy.append(run.to_json())
    built_at_once = 0
    original = Line.__init__

    def eager(self: Line, *args: Any, **kwargs: Any) -> None:
        nonlocal built_at_once
        original(self, *args, **kwargs)
        if self._details is None:
            built_at_once += 1
        assert isinstance(self.details, dict)  # built now, from what was just captured

    monkeypatch.setattr(Line, "__init__", eager)
    for (name, plan, records), text in zip(runs, lazy, strict=True):
        assert plan.evaluate(records, errors="collect").to_json() == text, name
    assert built_at_once > 1000  # the lazy form was really used, for most lines


def test_a_line_pickles_with_its_details_built(load_bench: Any) -> None:
    import pickle

    bench = load_bench("bench_formulas")
    run = bench.make_plan().evaluate(bench.make_records(3, seed=2))
    line = run.results[0].line("kpi")
    assert line._details is None
    copy = pickle.loads(pickle.dumps(line))
    assert copy == line
    assert copy.details["kpis"][0]["kpi"] == "sales"


# --------------------------------------------------------------------------
# the collector: paused while a population is evaluated, results handed to the
# oldest generation afterwards, a process's own frozen objects left frozen


def test_results_leave_the_young_generation_and_the_collector_resumes(
        load_bench: Any) -> None:
    import gc

    bench = load_bench("bench_formulas")
    plan = bench.make_plan()
    records = bench.make_records(50, seed=4)
    assert gc.isenabled()
    gc.collect()
    run = plan.evaluate(records)
    assert gc.isenabled()
    mine = {id(r) for r in run.results}
    assert len(mine) == 50
    assert not any(id(o) in mine for o in gc.get_objects(0))
    assert sum(1 for o in gc.get_objects(2) if id(o) in mine) == 50
    # with the collector already off (the caller's choice), it stays off
    gc.disable()
    try:
        plan.evaluate(records)
        assert not gc.isenabled()
    finally:
        gc.enable()
    del run


def test_a_process_that_froze_objects_keeps_them_frozen(load_bench: Any) -> None:
    import gc

    bench = load_bench("bench_formulas")
    plan = bench.make_plan()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        plan.evaluate(bench.make_records(20, seed=4))
        assert gc.get_freeze_count() > frozen // 2  # not thawed (a thaw leaves none)
        assert gc.isenabled()
    finally:
        gc.unfreeze()


# --------------------------------------------------------------------------
# JSON: written by the C encoder, one result per line; the same data as to_dict


def test_json_text_is_the_data_of_to_dict_one_result_per_line(load_bench: Any) -> None:
    import json

    from incentives.runtime import Line

    for name, plan, records in _example_runs(load_bench):
        run = plan.evaluate(records, errors="collect")
        text = run.to_json()
        assert json.loads(text) == run.to_dict(), name
        lines = text.splitlines()
        assert lines[0] == "{"
        assert lines[1].startswith('  "plan": {')
        assert sum(1 for line in lines if line.startswith('    {"payee": ')) == len(run)
        assert json.loads(run.to_json(indent=None)) == run.to_dict()
    # details only jsonable can write (a number as a key) still come out, the same way
    run = plan.evaluate(records, errors="collect")
    run.results[0].lines.append(Line("odd", "odd", D("0.00"), "pay",
                                     {D("1.5"): (D(1), "x"), True: None}))
    assert json.loads(run.to_json()) == run.to_dict()
    assert '"1.5": ["1", "x"], "True": null' in run.to_json()
    for r in run.results[:2]:  # one result, as a line of `incentives stream`
        assert "\n" not in r.to_json()
        assert json.loads(r.to_json()) == r.to_dict()


def test_cli_benchmark_baseline_writes_what_incentives_run_writes(
        load_bench: Any, tmp_path: Path) -> None:
    # bench_cli.py compares whole processes: its hand-written program must write the
    # same CSV bytes as `incentives run --format csv`, on its own records and the example's
    from incentives.cli import main

    bench = load_bench("bench_cli")
    hand = load_bench("handwritten_telecom")
    records = tmp_path / "records.jsonl"
    bench.make_records(records, 60, 2, seed=11)
    for source in (records, ROOT / "examples" / "telecom" / "records.jsonl"):
        ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
        assert main(["run", str(bench.PLAN), str(source), "--format", "csv",
                     "--out", str(ours)]) == 0
        hand.main(str(source), str(theirs))
        assert ours.read_bytes() == theirs.read_bytes()
        assert len(ours.read_bytes().splitlines()) > 3


@pytest.mark.parametrize("details", ["lines", "full"])
def test_cli_benchmark_baseline_writes_what_run_and_stream_write_at_each_level(
        load_bench: Any, tmp_path: Path, details: str) -> None:
    # the JSON of `run` and the JSON Lines of `stream`, at --details lines and full:
    # the hand-written program works out the same details, byte for byte
    from incentives.cli import main

    bench = load_bench("bench_cli")
    hand = load_bench("handwritten_telecom")
    records = tmp_path / "records.jsonl"
    bench.make_records(records, 80, 2, seed=13)
    for source in (records, ROOT / "examples" / "telecom" / "records.jsonl"):
        for command, fmt in (("run", "json"), ("stream", "jsonl")):
            ours, theirs = tmp_path / f"ours.{fmt}", tmp_path / f"theirs.{fmt}"
            assert main([command, str(bench.PLAN), str(source), "--format", fmt,
                         "--details", details, "--out", str(ours)]) == 0
            hand.main(str(source), str(theirs), fmt, details)
            assert ours.read_bytes() == theirs.read_bytes(), (source, command)
            text = ours.read_text(encoding="utf-8")
            assert ('"details": {' in text) == (details == "full")
            if source == records:  # every kind of line the plan makes is there
                for part in ('"slices": [{', '"exempt": true', '"forgiven": "',
                             '"next_threshold": "', '"items": [{'):
                    assert (part in text) == (details == "full"), part


# --------------------------------------------------------------------------
# start-up: what a command builds and imports is what it needs, with the same outcome


def _parsed(parser: Any, argv: list[str]) -> tuple[Any, str, str]:
    """What ``parser`` makes of ``argv``: its namespace (or exit status), stdout, stderr."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            found: Any = vars(parser.parse_args(argv))
        except SystemExit as exc:
            found = ("exit", exc.code)
    return found, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", _commands())
def test_a_command_parser_alone_parses_as_the_whole_parser(command: str) -> None:
    # `incentives COMMAND ...` builds that command's parser alone: the same help, the
    # same errors, the same arguments as the parser of every command
    from incentives.cli import build_parser

    alone = next(a for a in build_parser(command)._actions if a.dest == "command")
    assert list(alone.choices) == [command]
    for argv in ([command, "--help"], [command], [command, "--no-such-option"],
                 [command, "plan.yaml", "records.jsonl", "--format", "csv", "--period",
                  "2026-13"],
                 [command, "plan.yaml", "records.jsonl", "--details", "lines"],
                 [command, "plan.yaml"]):
        whole = _parsed(build_parser(), argv)
        assert _parsed(build_parser(command), argv) == whole, argv
    # anything else builds every command (an unknown one is refused with their names)
    for other in (None, "--help", "bogus", "-x"):
        assert _commands() == sorted(next(
            a for a in build_parser(other)._actions if a.dest == "command").choices)


def _modules_after(*code_lines: str) -> set[str]:
    code = "\n".join(["import sys", *code_lines,
                      "print(sorted(m for m in sys.modules if m.startswith('incentives')))"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return set(ast.literal_eval(done.stdout.splitlines()[-1]))


_TRANSACTION_MODULES = {"incentives.transactions", "incentives.crediting",
                        "incentives.measures"}


def test_a_plan_without_transactions_imports_none_of_their_modules(tmp_path: Path) -> None:
    records = tmp_path / "one.jsonl"
    records.write_text((ROOT / "examples/telecom/records.jsonl").read_text(
        encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    for argv in (["validate", "examples/telecom/plan.yaml"],
                 ["run", "examples/telecom/plan.yaml", str(records), "--format", "csv",
                  "--out", str(tmp_path / "out.csv")],
                 ["stream", "examples/telecom/plan.yaml", str(records), "--format", "csv",
                  "--out", str(tmp_path / "out2.csv")]):
        found = _modules_after("from incentives.cli import main",
                               f"assert main({argv!r}) == 0")
        assert found & _TRANSACTION_MODULES == set(), argv
        assert ("incentives.engine" in found) == (argv[0] != "validate"), argv
    # (the telecom plan declares invariants: their module is imported; a plan with
    # transactions imports theirs, and validates as before)
    found = _modules_after("from incentives.cli import main",
                           "assert main(['validate', 'examples/transactions/plan.yaml']) == 0")
    assert found >= _TRANSACTION_MODULES


def _plan_files() -> list[Path]:
    return sorted([*ROOT.glob("examples/**/*.yaml"), *ROOT.glob("tests/**/*.yaml")])


def test_validate_refuses_what_load_plan_refuses_with_the_same_error() -> None:
    # validate checks a plan without preparing the engine: every plan file the project
    # holds (the hostile ones included) gets the same verdict and the same message
    from incentives.errors import IncentivesError
    from incentives.plan import check_plan

    def verdict(load: Any, path: Path) -> str:
        try:
            plan = load(str(path))
        except IncentivesError as exc:
            return f"{type(exc).__name__}: {exc}"
        return f"ok {plan.name} {len(plan.policies)}"

    seen = {"ok": 0, "refused": 0}
    for path in _plan_files():
        expected = verdict(load_plan, path)
        assert verdict(check_plan, path) == expected, path
        seen["ok" if expected.startswith("ok ") else "refused"] += 1
    assert seen["ok"] >= 5, seen
    assert seen["refused"] >= 50, seen


def test_the_parts_a_plan_validates_later_have_their_models_schema() -> None:
    # transactions, crediting, measures and invariants are validated through plan.Later;
    # the plan's JSON Schema is what pydantic gives for their models themselves
    from pydantic import TypeAdapter

    from incentives.crediting import CreditRule
    from incentives.declared import InvariantSpec
    from incentives.measures import MeasureSpec
    from incentives.plan import Plan
    from incentives.policies.base import Identifier
    from incentives.transactions import TransactionKind

    schema = Plan.model_json_schema()
    for field, kind in (("transactions", dict[Identifier, TransactionKind]),
                        ("crediting", list[CreditRule]),
                        ("measures", dict[Identifier, MeasureSpec]),
                        ("invariants", list[InvariantSpec])):
        expected = TypeAdapter(kind).json_schema()
        definitions = expected.pop("$defs")
        found = {k: v for k, v in schema["properties"][field].items()
                 if k not in ("default", "title")}
        assert found == expected, field
        for name, definition in definitions.items():
            assert schema["$defs"][name] == definition, (field, name)


def test_the_policies_serializer_is_pydantics_model_serializer() -> None:
    # made without importing pydantic.functional_serializers: what the decorator makes
    from pydantic import model_serializer

    from incentives.policies.base import PolicyBase, _wrap_serializer

    def keep(self: Any, handler: Any) -> Any:
        return handler(self)

    ours, theirs = _wrap_serializer(keep), model_serializer(mode="wrap")(keep)
    assert type(ours) is type(theirs)
    assert ours.decorator_info == theirs.decorator_info
    assert ours.wrapped is theirs.wrapped
    assert list(PolicyBase.__pydantic_decorators__.model_serializers) == ["_keep_type"]


@pytest.mark.parametrize("argv", [["validate", "plan.yaml"], ["validate", ""],
                                  ["validate", "a plan=x.yaml"], ["validate", "@plan"],
                                  ["validate", "plan.yaml", "x"], ["validate", "-"],
                                  ["validate", "--", "plan.yaml"], ["validate", "-h"],
                                  ["validate", "-1"], ["validate"], ["run", "plan.yaml"],
                                  ["--version", "plan.yaml"]])
def test_validate_of_one_plan_reads_its_arguments_as_the_parser_does(argv: list[str]) -> None:
    # `incentives validate PLAN` is read without building a parser (argparse and its
    # messages not imported): the same arguments the parser gives; anything else is
    # left to the parser
    from incentives.cli import _validate_only, build_parser

    found = _validate_only(argv)
    if found is not None:
        assert vars(found) == _parsed(build_parser(), argv)[0]
    assert (found is not None) == (argv[0] == "validate" and len(argv) == 2
                                   and not argv[1].startswith("-"))


def test_validate_of_one_plan_imports_no_argparse() -> None:
    code = ("import sys\nfrom incentives.cli import main\n"
            "assert main(['validate', 'examples/telecom/plan.yaml']) == 0\n"
            "print(sorted(m for m in ('argparse', 'gettext') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == "[]"
