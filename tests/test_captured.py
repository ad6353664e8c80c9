"""What a line captures to explain itself later is read by name, never by position.

A policy records the values it used in a small record of its own (a named tuple:
``TierCapture(basis=..., factor=..., ...)``, a scorecard's ``KpiMeasure`` for each
KPI...), the line keeps it, and the policy's ``details`` reads it by field name
when the details are first read. No module of a mechanism reads a flat list of
captured values by offset (the payee's old ``pool[at + 2]``).
"""

from __future__ import annotations

import ast
import pickle
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from incentives import load_plan
from incentives.formulas import compile_formula
from incentives.kernel import KernelWriter
from incentives.money import Rounding
from incentives.policies.base_pay import BasePayCapture
from incentives.policies.churn import ChurnCapture, LostCustomer
from incentives.policies.rate_table import ItemUse
from incentives.policies.scorecard import KpiMeasure, ScorecardCapture
from incentives.policies.tiers import TierCapture
from incentives.runtime import Line, PayeeState, Record

ROOT = Path(__file__).resolve().parent.parent
POLICIES = sorted((ROOT / "src/incentives/policies").glob("*.py"))


def _offset_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module reads captured values by position: a subscript of a ``pool``
    (``pool[at]``, ``s.pool[i]``), an index or slice computed from an ``at`` offset
    (``x[at + 2]``, ``x[at:at + 4]``), or the payee's pool itself (``s.pool``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            value = node.value
            name = value.id if isinstance(value, ast.Name) else (
                value.attr if isinstance(value, ast.Attribute) else None)
            if name == "pool":
                found.append((node.lineno, ast.unparse(node)))
            for sub in ast.walk(node.slice):
                if isinstance(sub, ast.BinOp) and any(
                        isinstance(n, ast.Name) and n.id == "at" for n in ast.walk(sub)):
                    found.append((node.lineno, ast.unparse(node)))
                    break
        elif (isinstance(node, ast.Attribute) and node.attr == "pool"
              and isinstance(node.value, ast.Name) and node.value.id in ("s", "state")):
            found.append((node.lineno, ast.unparse(node)))  # the payee's pool
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                "pool +=" in node.value or "pool[" in node.value
                or "len(pool)" in node.value):
            found.append((node.lineno, node.value))  # generated kernel code
    return found


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_no_policy_reads_captured_values_by_offset(path: Path) -> None:
    assert _offset_reads(ast.parse(path.read_text(encoding="utf-8"))) == []


def test_the_offset_check_finds_offsets() -> None:
    # the check itself catches every shape the old code had
    old = '''
def details(self, pool, at):
    basis, factor = pool[at:at + 2]
    x = measured[at + 4 * i + 3]
    s.pool += (a, b)
    w(f"pool += ({a}, {b})")
    self.pool(env)
    at_list[p]
'''
    assert sorted({line for line, _ in _offset_reads(ast.parse(old))}) == [3, 4, 5, 6]


def test_the_payee_state_and_the_line_have_no_pool() -> None:
    state = PayeeState(Record("a", "2026-05"), {})
    assert not hasattr(state, "pool")
    assert "pool" not in PayeeState.__slots__
    assert not {"_pool", "_at"} & set(Line.__slots__)


def test_generated_kernels_capture_records_not_a_pool() -> None:
    for plan_file in ("telecom/plan.yaml", "bank/plan.yaml", "tobacco/plan.yaml"):
        for kernel, _ in load_plan(ROOT / "examples" / plan_file).compile().steps:
            if kernel is not None:
                source = kernel.__doc__ or ""
                assert "pool" not in source.replace("team_pool", ""), plan_file
                assert "_Line(" in source


def test_the_writer_maps_a_record_by_its_fields() -> None:
    w = KernelWriter(Rounding())
    # in the record's field order, whatever the order given
    assert w.record(ItemUse, per_unit="_u", quantity="_q") == "(_q, _u,)"
    assert w.record(TierCapture, limit="None", basis="_b", applied="None", factor="_f",
                    basis_values="_v") == "(_b, _f, None, None, _v,)"
    with pytest.raises(TypeError, match=r"missing \['per_unit'\]"):
        w.record(ItemUse, quantity="_q")
    with pytest.raises(TypeError, match=r"unknown \['price'\]"):
        w.record(ItemUse, quantity="_q", per_unit="_u", price="_p")


@pytest.mark.parametrize("kernels", [True, False])
def test_a_line_is_explained_from_its_record_read_by_name(
        kernels: bool, load_bench: Any) -> None:
    from incentives.engine import CompiledPlan

    bench = load_bench("bench_plan")
    plan = bench.make_plan()
    compiled = plan.compile() if kernels else CompiledPlan(
        plan, plan._compile_policies(), kernels=False)
    run = compiled.evaluate(bench.make_records(40, "2026-05", seed=3))
    kinds = {p.id: p.type for p in plan.policies}
    seen = set()
    for line in (line for r in run.results for line in r.lines):
        captured = line.captured
        kind = kinds[line.policy]
        if kind == "tiered":
            c: Any = TierCapture._make(captured)
            assert line.details["basis"] == c.basis
            assert line.details.get("scale") == c.factor
        elif kind == "scorecard":
            c = ScorecardCapture._make(captured)
            rows = line.details["kpis"]
            assert [r["actual"] for r in rows] == [KpiMeasure._make(m).actual for m in c.kpis]
            assert [r["counted"] for r in rows] == [KpiMeasure._make(m).counted
                                                    for m in c.kpis]
            assert line.details["score"] == c.score
        elif kind == "base_pay":
            c = BasePayCapture._make(captured)
            assert line.details["full_amount"] == c.full
        elif kind == "rate_table":
            used = [ItemUse._make(u) for u in captured]
            assert [r["quantity"] for r in line.details["items"]] == [
                u.quantity for u in used if u.quantity]
        elif kind == "churn_penalty":
            c = ChurnCapture._make(captured)
            assert line.details["uncapped"] == c.uncapped
            assert [r["id"] for r in line.details["customers"]] == [
                LostCustomer._make(x).id for x in c.customers]
        else:
            continue
        seen.add(kind)
        assert line.captured is None  # read once: the details are kept, the record let go
    assert seen == {"tiered", "scorecard", "base_pay", "rate_table", "churn_penalty"}


def test_a_team_line_captures_its_members_index_in_what_the_group_found() -> None:
    plan = load_plan("""
name: team
inputs: {metrics: {x: {}}}
policies:
  - {type: contest, id: c, score: x, prizes: [100, 50], ties: share}
  - {type: bonus_pool, id: p, pool: 90, weight: x}
""")
    run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "g",
                          "metrics": {"x": D(v)}} for p, v in [("a", 1), ("b", 3), ("c", 2)]])
    # members in payee order: each line knows its member by index
    assert [r.line("c").captured for r in run.results] == [0, 1, 2]
    assert [r.line("p").captured for r in run.results] == [0, 1, 2]
    assert [r.line("c").details["rank"] for r in run.results] == [3, 1, 2]
    assert [r.line("p").details["weight"] for r in run.results] == [D(1), D(3), D(2)]


def test_a_lazy_line_builds_its_details_once_from_what_it_captured() -> None:
    calls: list[Any] = []

    def explain(c: Any) -> dict[str, Any]:
        calls.append(c)
        item = ItemUse._make(c)
        return {"quantity": item.quantity, "amount": item.quantity * item.per_unit}

    line = Line("nb", "New business", D("15.00"), "pay", explain=explain,
                captured=(D(3), D(5)))
    assert line.captured == (D(3), D(5))
    assert line.details == {"quantity": D(3), "amount": D("15.00")}
    assert line.details is line.details
    assert calls == [(D(3), D(5))]
    assert line.captured is None
    lazy = Line("nb", "New business", D("15.00"), "pay", explain=explain,
                captured=ItemUse(D(3), D(5)))
    assert lazy == line
    copy = pickle.loads(pickle.dumps(lazy))
    assert copy == line
    assert copy.details == line.details
    assert copy.to_dict() == line.to_dict()
    lazy.details = {"given": True}
    assert lazy.captured is None
    assert lazy.details == {"given": True}
    given = Line("x", "X", D(1), "pay", {"a": D(1)})
    assert given.captured is None
    assert given.details == {"a": D(1)}


def test_a_formula_captures_the_values_of_its_names() -> None:
    f = compile_formula("a * b + c", {"a": "number", "b": "number", "c": "number"})
    values = f.capture({"a": D(2), "b": D("0.5"), "c": D(1), "d": D(9)})
    assert values == (D(2), D("0.5"), D(1))  # its names, sorted
    assert f.substituted(values) == "2 * 0.5 + 1"
    # a name without a value (a branch not taken) stays a name
    assert f.substituted(f.capture({"a": D(2), "c": D(1)})) == "2 * b + 1"
    one = compile_formula("sales * 0.1", {"sales": "number"})
    assert one.capture({"sales": D(300)}) == (D(300),)
    assert one.substituted(one.capture({})) == "sales * 0.1"
    assert compile_formula("5", {}).capture({"x": D(1)}) == ()
