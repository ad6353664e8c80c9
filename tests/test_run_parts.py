"""A large period evaluated and written a part at a time (``CompiledPlan.periods(parts=)``,
what ``incentives run`` does for json and csv): the same results, errors, ledgers and
bytes as the period evaluated whole, whatever the size of a part; and no parts where the
plan's policies see more than a group."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from incentives import engine, load_plan
from incentives.cli import main
from incentives.records import MAX_ERRORS
from incentives.results import Run, result_json

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TELECOM = EXAMPLES / "telecom" / "plan.yaml"
TOBACCO = EXAMPLES / "tobacco" / "plan.yaml"
BANK = EXAMPLES / "bank" / "plan.yaml"


def _example_rows(plan: Path) -> list[dict[str, Any]]:
    folder = plan.parent
    if (folder / "records.json").exists():
        data = json.loads((folder / "records.json").read_text(encoding="utf-8"))
        return list(data["records"] if isinstance(data, dict) else data)
    text = (folder / "records.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _population(plan: Path, copies: int, *, seed: int = 3, bad: bool = True,
                merge: bool = True) -> list[dict[str, Any]]:
    """The example's records ``copies`` times over (payees and groups renamed, so groups
    are many and of every size), in period order, with a bad record and a payee twice in
    a period (``bad``); ``merge``: some groups three copies long (a team policy may
    then refuse them: two leaders in one group)."""
    rng = random.Random(seed)
    rows = []
    for c in range(copies):
        for r in _example_rows(plan):
            row = json.loads(json.dumps(r))
            row["payee"] = f"{r['payee']}-{c:02d}"
            if "group" in row and c % 3 and merge:  # some groups three copies long
                row["group"] = f"{r['group']}-{c // 3}"
            elif "group" in row:
                row["group"] = f"{r['group']}-x{c}"
            rows.append(row)
    rows.sort(key=lambda r: (r["period"], r.get("group") or "", r["payee"]))
    rng.shuffle(rows)
    rows.sort(key=lambda r: r["period"])  # in period order, any order inside
    if bad:
        first = rows[0]
        rows.insert(5, {**first, "payee": "broken", "metrics": {"x": "lots"}})
        rows.insert(9, dict(rows[7]))  # a payee twice in a period: neither is evaluated
    return rows


def _evaluate(plan_path: Path, rows: list[dict[str, Any]], parts: Any,
              plan_text: str | None = None) -> tuple[list[tuple[str, list[str]]], Any, Any]:
    plan = load_plan(plan_path) if plan_text is None else _load_text(plan_text, plan_path)
    compiled = plan.compile()
    compiled.reader.max_errors = MAX_ERRORS
    evaluation = compiled.periods(iter(rows), errors="collect", in_order=True, parts=parts)
    made = [(period, [result_json(r) for r in results]) for period, results in evaluation]
    return made, [str(e) for e in evaluation.errors], evaluation.state.to_data()


def _load_text(text: str, like: Path) -> Any:
    from incentives.plan import load_plan_text

    return load_plan_text(text, source=str(like))


def _whole(made: list[tuple[str, list[str]]]) -> dict[str, list[str]]:
    periods: dict[str, list[str]] = {}
    for period, texts in made:
        periods.setdefault(period, []).extend(texts)
    return periods


def _csv_order(plan_path: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The results of the period evaluated whole, in the order of CSV rows."""
    plan = load_plan(plan_path)
    run = plan.compile().evaluate(iter(rows), errors="collect")
    ordered = sorted(run.results, key=lambda r: (r.period, r.group or "", r.payee))
    return [result_json(r) for r in ordered]


@pytest.mark.parametrize("size", [1, 2, 7, 256])
@pytest.mark.parametrize(("plan", "copies"), [(TELECOM, 40), (BANK, 60), (TOBACCO, 12)],
                         ids=["telecom", "bank", "tobacco"])
@pytest.mark.parametrize("parts", ["payee", "group"])
def test_parts_are_the_whole_period(monkeypatch: pytest.MonkeyPatch, plan: Path,
                                    copies: int, parts: str, size: int) -> None:
    rows = _population(plan, copies)
    whole, whole_errors, whole_state = _evaluate(plan, rows, None)
    monkeypatch.setattr(engine, "PART", size)
    made, errors, state = _evaluate(plan, rows, parts)
    assert errors == whole_errors
    assert errors
    assert state == whole_state
    scopes = {p.scope for p in load_plan(plan).compile().policies}
    allowed = scopes <= ({"payee"} if parts == "payee" else {"payee", "group"})
    if parts == "payee" or not allowed:
        # a part at a time, in payee order: together, the whole period's results
        assert _whole(made) == _whole(whole)
    else:  # by group and payee: the rows of the CSV
        assert [t for _, texts in made for t in texts] == _csv_order(plan, rows)
    periods = len({p for p, _ in whole})
    if allowed and size < 100:
        assert len(made) > periods  # evaluated in parts
        # each part whole groups when by group
        if parts == "group":
            seen: dict[tuple[str, Any], int] = {}
            for i, (period, texts) in enumerate(made):
                for t in texts:
                    key = (period, json.loads(t)["group"])
                    assert seen.setdefault(key, i) == i, key
    else:
        assert len(made) == periods  # one list a period


def test_the_example_plans_scopes_are_what_the_parts_test_expects() -> None:
    """telecom and bank see one payee at a time; tobacco's team policies see groups."""
    def scopes(plan: Path) -> set[str]:
        return {p.scope for p in load_plan(plan).compile().policies}

    assert scopes(TELECOM) == {"payee"}
    assert scopes(BANK) == {"payee"}
    assert "group" in scopes(TOBACCO)
    assert "population" not in scopes(TOBACCO)


def test_a_policy_that_sees_the_population_gets_no_parts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    plan = load_plan(TOBACCO)
    compiled = plan.compile()
    team = [p for p in compiled.policies if p.scope == "group"]
    assert team
    monkeypatch.setattr(engine, "PART", 2)
    rows = _population(TOBACCO, 6, bad=False)
    for policy in team:  # as if it ranked the whole period
        monkeypatch.setattr(policy, "scope", "population")
    evaluation = compiled.periods(iter(rows), errors="collect", in_order=True,
                                  parts="group")
    assert evaluation.parts is None
    assert len(list(evaluation)) == len({r["period"] for r in rows})


def test_ledgers_carry_across_parts_and_periods(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """A churn penalty above its cap carried forward in the ledger: the same ledgers,
    totals and state whatever the parts."""
    text = TELECOM.read_text(encoding="utf-8").replace(
        "    cap: churn_cap_share * variable_pay\n",
        "    cap: churn_cap_share * variable_pay\n    above_cap: carry_forward\n")
    assert "carry_forward" in text
    plan_path = tmp_path / "carry.yaml"
    plan_path.write_text(text, encoding="utf-8")
    rng = random.Random(7)
    rows = []
    for m in range(1, 4):
        for i in range(30):
            row: dict[str, Any] = {"payee": f"p{i:02d}", "period": f"2026-{m:02d}",
                                   "group": f"g{i % 4}",
                                   "metrics": {"traffic_revenue": str(rng.randint(0, 40000))}}
            if rng.random() < 0.6:
                row["events"] = {"lost_customers": [
                    {"id": f"c{i}{m}{k}", "monthly_value": rng.randint(500, 9000),
                     "reason": "competitor", "lost": f"2026-{m:02d}-02"} for k in range(2)]}
            rows.append(row)
    whole, errors, state = _evaluate(plan_path, rows, None)
    assert any(state["payees"].values())  # something was carried
    for parts in ("payee", "group"):
        monkeypatch.setattr(engine, "PART", 4)
        made, made_errors, made_state = _evaluate(plan_path, rows, parts)
        assert made_state == state
        assert made_errors == errors
        if parts == "payee":
            assert _whole(made) == _whole(whole)
        else:  # the same results, in the order of the CSV's rows
            assert sorted(t for _, ts in made for t in ts) == \
                sorted(t for _, ts in whole for t in ts)


@pytest.mark.parametrize("plan", [TELECOM, TOBACCO, BANK], ids=["telecom", "tobacco", "bank"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_run_writes_the_whole_runs_bytes_in_parts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], plan: Path, fmt: str) -> None:
    rows = _population(plan, 20)
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    compiled = load_plan(plan).compile()
    compiled.reader.max_errors = MAX_ERRORS
    run: Run = compiled.evaluate(compiled.source_records(str(records)), errors="collect")
    want = run.to_json() if fmt == "json" else run.to_csv()
    monkeypatch.setattr(engine, "PART", 3)
    out, state = tmp_path / f"pay.{fmt}", tmp_path / "state.json"
    code = main(["run", str(plan), str(records), "--out", str(out), "--state", str(state)])
    capsys.readouterr()
    assert code == 1  # the bad records
    assert out.read_text(encoding="utf-8") == want
    assert not state.exists()  # not written: records failed
    good = _population(plan, 20, bad=False, merge=False)
    records.write_text("".join(json.dumps(r) + "\n" for r in good), encoding="utf-8")
    clean = compiled.evaluate(compiled.source_records(str(records)), errors="collect")
    assert main(["run", str(plan), str(records), "--out", str(out), "--state",
                 str(state)]) == 0
    capsys.readouterr()
    assert out.read_text(encoding="utf-8") == (clean.to_json() if fmt == "json"
                                               else clean.to_csv())
    assert json.loads(state.read_text(encoding="utf-8")) == clean.state.to_data()
