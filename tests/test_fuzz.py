"""Fuzzing: random formulas, random plans and random record values either work or
raise the library's own documented errors (``IncentivesError`` subclasses), never
anything else (no ``TypeError``, ``KeyError``, ``RecursionError``, pydantic
``ValidationError``...).

Each property runs a fixed number of examples (``FUZZ``), whatever the profile, so
the fuzzing runs in CI, in a few seconds.
"""

from __future__ import annotations

import contextlib
import copy
import decimal
import functools
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incentives import compile_formula, load_plan
from incentives.errors import EvaluationError, FormulaError, IncentivesError, PlanError
from incentives.money import CONTEXT
from incentives.yamlio import dump_yaml, load_yaml

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted((ROOT / "examples").glob("*/plan*.yaml"))
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: whole plans cost more to load: fewer examples, still a fixed number
FUZZ_PLANS = settings(FUZZ, max_examples=60)

NAMES = {"a": "number", "b": "number", "kind": "text", "flag": "bool", "q": "any"}

# ------------------------------------------------------------------ formulas

TOKENS = [
    "a", "b", "kind", "flag", "q", "x", "_a", "__class__", "__import__", "self", "os", "True",
    "None", "0", "1", "2", "0.5", "1e17", "99999999999999999999", "0x1f", "1_000", "-1", "'x'",
    "'%s'", "''", "\"{0}\"", "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">",
    ">=", "and", "or", "not", "if", "else", "in", "is", "(", ")", "[", "]", "{", "}", ",", ".",
    ":", ":=", "lambda", "for", "min", "max", "abs", "clamp", "div", "floor", "ceil", "round",
    "round_to", "getattr", "eval", "import", "yield", "@", "~", "<<", "^", "f'{a}'", "...",
    "\n", "#", ";", "\\", "'''", "**64", "**65",
]

formula_texts = st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25).map(" ".join),
    st.text(max_size=60),
    st.text(alphabet="ab+-*/()0123456789. ,<>=", max_size=80),
)

values = st.one_of(
    st.decimals(min_value=-10**12, max_value=10**12, places=2, allow_nan=False,
                allow_infinity=False),
    st.just(Decimal(0)),
)


def env_for(a: Decimal, b: Decimal) -> dict[str, Any]:
    return {"a": a, "b": b, "kind": "k", "flag": True, "q": a}


@FUZZ
@given(formula_texts, values, values)
def test_random_formulas_compile_or_refuse_with_formula_errors(text: str, a: Decimal,
                                                                b: Decimal) -> None:
    try:
        f = compile_formula(text, NAMES)
    except FormulaError:
        return
    for evaluate in (f, f.reference):
        with contextlib.suppress(EvaluationError):
            evaluate(env_for(a, b))


@FUZZ
@given(st.lists(st.sampled_from(["a", "b", "1", "0.5", "2"]), min_size=1, max_size=8),
       st.lists(st.sampled_from(["+", "-", "*", "/", "**2", "min", "max"]), min_size=0,
                max_size=7), values, values)
def test_well_formed_formulas_agree_on_both_paths(atoms: list[str], ops: list[str],
                                                 a: Decimal, b: Decimal) -> None:
    text = atoms[0]
    for atom, op in zip(atoms[1:], ops, strict=False):
        if op in ("min", "max"):
            text = f"{op}({text}, {atom})"
        elif op == "**2":
            text = f"({text}) ** 2"
        else:
            text = f"({text}) {op} {atom}"
    f = compile_formula(text, NAMES)
    outcomes = []
    for evaluate in (f, f.reference):
        try:
            # the engine evaluates every formula in the library's context (34 digits)
            with decimal.localcontext(CONTEXT):
                outcomes.append(evaluate(env_for(a, b)))
        except EvaluationError as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]


# ------------------------------------------------------------------ plans

junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
              st.decimals(allow_nan=False, allow_infinity=False, places=3)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@functools.cache
def _plan_data(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"))[0]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _mutate(data: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    data = copy.deepcopy(data)
    if not path:
        return value if how == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif how == "duplicate" and isinstance(parent, list):
        parent.insert(last, copy.deepcopy(parent[last]))
    elif how == "rename" and isinstance(parent, dict):
        parent[str(value)[:12] or "x"] = parent.pop(last)
    elif how == "wrap":
        parent[last] = [parent[last]]
    return data


@FUZZ_PLANS
@given(st.sampled_from(PLANS), st.data(),
       st.sampled_from(["replace", "delete", "duplicate", "rename", "wrap"]), junk)
def test_mutated_example_plans_load_or_raise_plan_errors(plan_file: Path, data: st.DataObject,
                                                        how: str, value: Any) -> None:
    original = _plan_data(plan_file)
    path = data.draw(st.sampled_from(_paths(original)))
    mutated = _mutate(original, path, how, value)
    try:
        text = dump_yaml(mutated)
    except yaml.YAMLError:
        return
    with contextlib.suppress(PlanError):
        load_plan(text)


@FUZZ_PLANS
@given(st.sampled_from(PLANS), st.data())
def test_plan_text_with_random_edits_loads_or_raises_plan_errors(plan_file: Path,
                                                                data: st.DataObject) -> None:
    text = plan_file.read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 20))
        insert = data.draw(st.one_of(st.text(max_size=10),
                                     st.sampled_from(["\t", ": ", "- ", "&a ", "*a", "{", "[",
                                                      "'", "!!python/object ", "<<: "])))
        text = text[:at] + insert + text[at + cut:]
    with contextlib.suppress(PlanError):
        load_plan(text if "\n" in text else text + "\n")


@FUZZ
@given(junk)
def test_random_structures_are_refused_with_plan_errors(value: Any) -> None:
    try:
        text = yaml.safe_dump(value, allow_unicode=True)
    except yaml.YAMLError:
        return
    with contextlib.suppress(PlanError):
        load_plan(text if "\n" in text else text + "\n")


# ------------------------------------------------------------------ records

record_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["NaN", "Infinity", "-inf", "1e30", "1,200", " ", "", "0x10", "1e-999999",
                     "12.5", "-3", "2026-05-03", "2026-02-30", "competitor", "closure"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

TELECOM = load_plan(ROOT / "examples" / "telecom" / "plan.yaml")
BANK = load_plan(ROOT / "examples" / "bank" / "plan.yaml")


@st.composite
def records(draw: st.DrawFn) -> Any:
    shape = draw(st.sampled_from(["nested", "flat", "junk"]))
    if shape == "junk":
        return draw(junk)
    rec: dict[str, Any] = {"payee": draw(st.one_of(st.sampled_from(["p1", "p2", "p3"]),
                                                   record_values)),
                           "period": draw(st.one_of(st.sampled_from(["2026-05", "2026-06"]),
                                                    record_values)),
                           "group": draw(st.one_of(st.sampled_from(["g1", "g2"]),
                                                   record_values))}
    names = ["traffic_revenue", "new_400", "new_fax", "revenue", "deposits", "relationships",
             "evaluation", "grade", "employment", "days_worked", "unknown"]
    fields = draw(st.dictionaries(st.sampled_from(names), record_values, max_size=6))
    if shape == "flat":
        rec.update(fields)
        return rec
    rec["metrics"] = {k: v for k, v in fields.items() if k not in ("grade", "employment",
                                                                   "days_worked")}
    rec["attributes"] = {k: v for k, v in fields.items() if k in ("grade", "employment",
                                                                  "days_worked")}
    if draw(st.booleans()):
        event = draw(st.dictionaries(
            st.sampled_from(["id", "monthly_value", "reason", "acquired", "lost", "bogus"]),
            record_values, max_size=6))
        rec["events"] = {"lost_customers": draw(st.sampled_from([[event], event, None]))}
    return rec


@FUZZ_PLANS
@given(st.sampled_from([TELECOM, BANK]), st.lists(records(), max_size=6))
def test_random_records_are_paid_or_reported(plan: Any, population: list[Any]) -> None:
    run = plan.evaluate(population, errors="collect")
    for e in run.errors:
        assert isinstance(e, IncentivesError)
    for r in run.results:
        assert r.total == sum((line.amount for line in r.lines), Decimal(0))
    assert len(run.results) + len(run.errors) >= 1 or not population
    run.to_json()
    with contextlib.suppress(IncentivesError):
        plan.evaluate(population)


# ------------------------------------------------------------------ state files

LEDGER_PLAN = ROOT / "examples" / "telecom" / "plan-ledger.yaml"
LEDGER_MAY = ROOT / "examples" / "telecom" / "records.jsonl"
LEDGER_JUNE = ROOT / "examples" / "telecom" / "records-2026-06.jsonl"

#: stands for a JSON whole number of 5,000 digits (more than Python's int() reads)
BIG_INT = "<big int>"
hostile_state_values = st.one_of(
    st.just(BIG_INT),
    st.sampled_from(["1e999999", "1E-999999", "1e20", "4_8000", "1_000.00", "NaN", "-Infinity",
                     "", " ", "\u0663", "12a", "0x10", "9" * 5000, "0." + "0" * 200 + "1",
                     "-868.00", "868.00", "2026-05", "2026-13", "churn_penalty", "adjustments",
                     BIG_INT]),
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.text(max_size=8), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["carried", "period", "policy", "amount", "x"]),
                    st.sampled_from(["1", "1e999999", "4_8000", "2026-05", "churn_penalty"]),
                    max_size=3),
)


@functools.cache
def _ledger_state() -> str:
    """The state the ledger example leaves after May (a churn penalty carried forward)."""
    import io
    import tempfile

    from incentives.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.json"
        assert main(["run", str(LEDGER_PLAN), str(LEDGER_MAY), "--state", str(path)],
                    out=io.StringIO()) == 0
        return path.read_text(encoding="utf-8")


def _state_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _state_paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _state_paths(v, (*path, i))
    return out


@st.composite
def state_texts(draw: st.DrawFn) -> str:
    """A state file: the ledger example's, with a value replaced, a key added or removed,
    or its text cut or edited."""
    import json

    text = _ledger_state()
    how = draw(st.sampled_from(["value", "add", "drop", "cut", "edit", "payee"]))
    if how in ("cut", "edit"):
        at = draw(st.integers(0, len(text)))
        if how == "cut":
            return text[:at]
        return text[:at] + draw(st.sampled_from(
            ["1e999999", "4_8000", "{", "]", ",", '"', "\\", "\x00", "NaN", "-", "1" * 50,
             '"x": 1,', "\ud800", "9" * 5000])) + text[at:]
    data = json.loads(text)
    if how == "payee":
        data["payees"][draw(st.sampled_from(["X", "Y", ""]))] = {
            draw(st.sampled_from(["churn_penalty", "adjustments", "unknown"])):
                draw(hostile_state_values)}
        return json.dumps(data).replace(f'"{BIG_INT}"', "9" * 5000)
    paths = [p for p in _state_paths(data) if p]
    target = draw(st.sampled_from(paths))
    parent = functools.reduce(lambda node, key: node[key], target[:-1], data)
    if how == "value":
        parent[target[-1]] = draw(hostile_state_values)
    elif how == "drop" and isinstance(parent, dict):
        del parent[target[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(["carried", "extra", "format", "paid"]))] = draw(
            hostile_state_values)
    return json.dumps(data, ensure_ascii=draw(st.booleans())).replace(f'"{BIG_INT}"', "9" * 5000)


@FUZZ_PLANS
@given(state_texts())
def test_random_state_files_are_read_or_refused_never_a_traceback(text: str) -> None:
    """``incentives run --state`` on a damaged or hostile state file: it runs, or exits 2
    with a StateError naming the file, leaving the file as it was; never anything else."""
    import io
    import tempfile

    from incentives.cli import main
    from incentives.errors import StateError
    from incentives.ledger import load_state_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        before = path.read_bytes()
        problem = ""
        try:
            load_state_file(path, load_plan(LEDGER_PLAN))
        except StateError as exc:
            problem = str(exc)
        refused = bool(problem)
        assert not refused or problem.startswith(str(path))
        code = main(["run", str(LEDGER_PLAN), str(LEDGER_JUNE), "--state", str(path)],
                    out=io.StringIO())
        if refused:
            assert code == 2
            assert path.read_bytes() == before  # nothing written over a state refused
        else:
            assert code in (0, 1, 2)


# ------------------------------------------------------------------ record files

RECORD_FILES = sorted((ROOT / "examples").glob("*/records*.jsonl")) + sorted(
    (ROOT / "tests" / "bad_records").glob("*.csv"))
#: bytes that make files hard to read: encodings' marks, quotes, brackets, controls
NASTY = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00", b"\x1b[2J", b"\xff", b"\xe4\xb8",
         b'"', b"[", b"{", b"]", b"}", b",", b";", b"\t", b"|", b"\r", b"\n", b"\r\n",
         b"\\u0000", b"\\ud800", b"\xe2\x80\xa8", b'"payee"', b": ", b"[" * 3000,
         "张三".encode("gbk"), "张三".encode(), b"1e999999", b"NaN", b" " * 5]


@st.composite
def record_file_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    source = draw(st.sampled_from(RECORD_FILES))
    data = bytearray(source.read_bytes()[:4000])
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            data[at:at] = draw(st.one_of(st.sampled_from(NASTY), st.binary(max_size=8)))
        else:
            del data[at:at + draw(st.integers(1, 40))]
    suffix = draw(st.sampled_from([source.suffix, source.suffix, ".json", ".csv", ".jsonl"]))
    return suffix, bytes(data)


@FUZZ
@given(file=record_file_bytes(), encoding=st.sampled_from([None, None, "utf-8", "gb18030",
                                                           "utf-16", "latin-1"]),
       delimiter=st.sampled_from([None, None, ";", "\t"]))
def test_random_record_files_are_read_or_refused_with_library_errors(
        tmp_path_factory: Any, file: tuple[str, bytes], encoding: str | None,
        delimiter: str | None) -> None:
    from incentives.records import iter_raw_records

    suffix, data = file
    path = tmp_path_factory.mktemp("fuzz") / f"records{suffix}"
    path.write_bytes(data)
    if suffix != ".csv":
        delimiter = None
    for plan in (TELECOM, BANK):
        try:
            run = plan.evaluate(iter_raw_records(path, encoding=encoding, delimiter=delimiter),
                                errors="collect")
        except IncentivesError:
            continue
        for e in run.errors:
            assert isinstance(e, IncentivesError)
            assert str(e).isprintable()
        run.to_json().encode("utf-8")  # nothing that cannot be written out


# ------------------------------------------------------------------ command-line arguments

RUN_ARGS = ["--format", "json", "csv", "table", "xml", "--out", "--period", "2026-05",
            "2026-13", "--state", "--encoding", "gbk", "utf-16", "nope", "--delimiter", ";",
            ";;", "--max-bytes", "1K", "0", "-1", "10G", "--", "-", "", " ", "\x00", "\x1b[31m",
            "--help", "--nope", "/dev/null", "/", "/nonexistent/x.jsonl", "x.xml"]


@FUZZ
@given(args=st.lists(st.one_of(st.sampled_from(RUN_ARGS), st.text(max_size=8)), max_size=8),
       records=st.sampled_from(["examples/telecom/records.jsonl", "tests/bad_records/"
                                "csv_semicolon_gbk.csv", "/dev/null", "missing.csv"]))
def test_random_run_arguments_end_in_an_exit_status_not_a_traceback(
        tmp_path_factory: Any, args: list[str], records: str) -> None:
    import io
    import os
    from contextlib import redirect_stderr

    from incentives.cli import main

    folder = tmp_path_factory.mktemp("args")
    # paths given to --out / --state land in a fresh folder, never in the project
    args = [str(folder / "x") if i and args[i - 1] in ("--out", "--state") else a
            for i, a in enumerate(args)]
    argv = ["run", str(ROOT / "examples/telecom/plan.yaml"),
            str(ROOT / records) if not records.startswith("/") else records, *args]
    err = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv, out=io.StringIO())
    finally:
        os.chdir(cwd)
    assert code in (0, 1, 2)
    assert "Traceback" not in err.getvalue()
