"""Every statement the project shows, rendered, for the golden files beside this module.

The sources are:

- each example plan under ``examples/`` with each records file of its folder;
- each worked-example case under ``tests/cases/`` (its plan, input and state);
- each Python example of ``README.md`` and ``docs/*.md``: every run and result its
  blocks leave behind;
- for every plan of the above, 24 seeded synthetic payees in three groups (all the branches a plan's
  policies can take, not only the ones the examples happen to reach).

Each source gives one file per language and format, every statement of the source in
payee-period order under a ``==== payee period ====`` heading. ``python
tests/golden/statements.py`` (re)writes them; ``tests/test_golden_statements.py``
compares them byte for byte.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent / "files"
LANGS = ("en", "zh")
FORMATS = {"text": "txt", "markdown": "md", "html": "html"}


def _runs_of_docs() -> Iterator[tuple[str, Any]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from incentives import Plan
    from incentives.results import PayeeResult, Run
    from test_docs import doc_files, python_blocks

    for name in doc_files():
        path = ROOT / name
        namespace: dict[str, Any] = {"__name__": "__docs__"}
        found: dict[int, Any] = {}
        with contextlib.chdir(ROOT), contextlib.redirect_stdout(io.StringIO()):
            for block in python_blocks(path.read_text(encoding="utf-8")):
                if block.skipped:
                    continue
                exec(compile(block.code, name, "exec"), namespace)
                for value in list(namespace.values()):
                    if (isinstance(value, (Run, PayeeResult, Plan))
                            and id(value) not in found):
                        found[id(value)] = value
        for k, value in enumerate(found.values()):
            yield f"docs-{Path(name).stem}-{k}", value


def _runs_of_extra() -> Iterator[tuple[str, Any]]:
    """Plans no example shows: a sum of children."""
    from incentives import Plan

    plan = Plan.model_validate({
        "name": "sum-of", "inputs": {"metrics": {"sales": {}, "visits": {}}},
        "policies": [{"type": "sum_of", "id": "pay", "label": "pay", "policies": [
            {"type": "formula", "id": "commission", "amount": "sales * 0.05"},
            {"type": "formula", "id": "visits_bonus", "amount": "visits * 2.5"}]}]})
    yield "extra-sum-of", plan
    yield from _per_transaction()


def _per_transaction() -> Iterator[tuple[str, Any]]:
    """Per-transaction pay (T3, running tiers year to date; T4, pay on payment; a rate by
    product), each payee's measure and the run's transactions built by hand as the engine
    fills them in (``PayeeState.measures``, ``PayeeState.book``)."""
    import datetime as dt
    from decimal import Decimal

    from incentives import Plan
    from incentives.money import ZERO
    from incentives.results import PayeeResult
    from incentives.runtime import (
        Credit,
        MeasureValue,
        PayeeState,
        Record,
        Transaction,
        TransactionBook,
    )

    def txn(kind: str, id: str, date: str, amount: int, refers_to: str | None = None,
            **fields: Any) -> Transaction:
        return Transaction(kind, id, dt.date.fromisoformat(date), Decimal(amount),
                           {"id": id, "amount": Decimal(amount), **fields}, None, refers_to)

    ts = [txn("invoices", "i-1", "2026-01-15", 30000, product="mobile"),
          txn("invoices", "i-2", "2026-02-10", 30000, product="ipvpn"),
          txn("credit_notes", "c-1", "2026-02-20", -5000, "i-2", product="ipvpn"),
          txn("payments", "p-1", "2026-03-15", 18000, "i-2"),
          txn("write_offs", "w-1", "2026-04-02", 7000, "i-2")]
    book = TransactionBook()
    for t in ts:
        book.add(t, "invoices" if t.refers_to else None)
    credited = {"2026-01": ts[:1], "2026-02": ts[1:3], "2026-03": [], "2026-04": []}
    plans = {
        "running": {"tiers": [{"up_to": 50000, "rate": "0.04"}, {"rate": "0.06"}],
                    "method": "marginal", "running": "year"},
        "on-payment": {"rate": "0.05", "payable": "on_payment", "payments": "payments",
                       "write_offs": "write_offs", "write_off": "claw_back"},
        "by-product": {"rates_by": "product", "rates": {"mobile": "0.02", "ipvpn": "0.08"}},
    }
    for name, spec in plans.items():
        plan = Plan.model_validate({
            "name": f"per-transaction-{name}", "inputs": {"metrics": {"revenue": {}}},
            "policies": [{"type": "per_transaction", "id": "commission",
                          "label": "commission", "measure": "revenue", **spec}]})
        policy = plan.compile().policies[0]
        ledger: dict[str, Any] = {}
        results = []
        for period, mine in credited.items():
            items = [(Credit("A", t, Decimal(1), "direct", t.amount), t.amount) for t in mine]
            value = sum((v for _, v in items), ZERO)
            record = Record("A", period, metrics={"revenue": value})
            s = PayeeState(record, {"period": period, "total": ZERO, "revenue": value})
            s.measures = {"revenue": MeasureValue("revenue", value, items)}
            s.book, s.ledger = book, ledger
            policy.apply(s)
            ledger = s.ledger
            results.append(PayeeResult("A", period, None, s.lines, s.total, record=record,
                                       plan=plan))
        yield f"extra-per-transaction-{name}", results


def _runs_of_examples() -> Iterator[tuple[str, Any]]:
    from incentives import load_plan
    from incentives.records import read_records_file

    for plan_file in sorted((ROOT / "examples").glob("*/*.yaml")):
        plan = load_plan(plan_file)
        folder = plan_file.parent
        files = sorted([*folder.glob("records*.jsonl"), *folder.glob("records*.json")])
        for records in files:
            try:
                run = plan.evaluate(read_records_file(records), errors="collect")
            except Exception:  # a records file of another plan of the folder
                continue
            if run.results:
                yield f"example-{folder.name}-{plan_file.stem}-{records.stem}", run


def _runs_of_cases() -> Iterator[tuple[str, Any]]:
    from incentives import load_plan
    from incentives.testing.cases import load_cases

    for path in sorted((ROOT / "tests" / "cases").glob("*.cases.yaml")):
        for k, case in enumerate(load_cases(path)):
            plan = load_plan(case.plan)
            if case.parameters:
                plan = plan.with_parameters(**case.parameters)
            run = plan.evaluate(case.input, errors="collect", state=case.state)
            yield f"case-{path.name.split('.')[0]}-{k}", run


def _synthetic(name: str, plan: Any) -> Any:
    from incentives.populations import synthetic

    return plan.evaluate(synthetic(plan, 24, seed=7, groups=3), errors="collect")


def sources() -> dict[str, list[Any]]:
    """Name -> the results whose statements the golden files hold."""
    from incentives import Plan
    from incentives.results import Run

    out: dict[str, list[Any]] = {}
    plans: dict[str, tuple[str, Any]] = {}
    for name, value in [*_runs_of_examples(), *_runs_of_cases(), *_runs_of_docs(),
                        *_runs_of_extra()]:
        if isinstance(value, Plan):
            plan = value
        else:
            results = (list(value.results) if isinstance(value, Run)
                       else list(value) if isinstance(value, list) else [value])
            if not results:
                continue
            out[name] = results
            plan = results[0].plan
        key = plan.model_dump_json() if plan is not None else None
        if key is not None and key not in plans:
            plans[key] = (name, plan)
    for name, plan in plans.values():
        try:
            run = _synthetic(name, plan)
        except Exception:  # a plan synthetic records do not fit (declared elsewhere)
            continue
        if run.results:
            out[f"synthetic-{name}"] = list(run.results)
    return out


def render_all() -> dict[str, str]:
    """File name -> content, for every source, language and format."""
    files: dict[str, str] = {}
    for name, results in sources().items():
        results = sorted(results, key=lambda r: (r.period, str(r.group), r.payee))
        for lang in LANGS:
            for fmt, ext in FORMATS.items():
                parts = []
                for r in results:
                    parts.append(f"==== {r.payee} {r.period} ====\n")
                    parts.append(r.explain(format=fmt, lang=lang))
                    parts.append("\n")
                files[f"{name}.{lang}.{ext}"] = "".join(parts)
    return files


def main() -> None:
    HERE.mkdir(exist_ok=True)
    files = render_all()
    for old in HERE.iterdir():
        if old.name not in files:
            old.unlink()
    for name, text in files.items():
        (HERE / name).write_text(text, encoding="utf-8", newline="")
    print(f"{len(files)} golden files in {os.path.relpath(HERE, ROOT)}")


if __name__ == "__main__":
    main()
