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
    """Per-transaction pay over four months of transactions: running tiers year to date
    (T3), pay on payment with a write-off clawed back (T4), a rate by product."""
    from incentives import Plan
    from incentives.ledger import State

    declared = {
        "transactions": {"invoices": {"fields": {"product": "text"}},
                         "credit_notes": {"refers_to": "invoices", "sign": "negative"},
                         "payments": {"refers_to": "invoices", "sign": "positive"},
                         "write_offs": {"refers_to": "invoices", "sign": "positive"}},
        "crediting": [{"id": "direct", "type": "direct", "kinds": ["invoices", "credit_notes"]}],
        "measures": {"revenue": {"kinds": ["invoices", "credit_notes"], "sum": "amount"}},
    }
    transactions = [
        {"kind": "invoices", "id": "i-1", "date": "2026-01-15", "amount": 30000,
         "seller": "A", "product": "mobile"},
        {"kind": "invoices", "id": "i-2", "date": "2026-02-10", "amount": 30000,
         "sellers": {"A": 0.5, "B": 0.5}, "product": "ipvpn"},
        {"kind": "credit_notes", "id": "c-1", "date": "2026-02-20", "amount": -5000,
         "refers_to": "i-2"},
        {"kind": "payments", "id": "p-1", "date": "2026-03-15", "amount": 18000,
         "refers_to": "i-2"},
        {"kind": "write_offs", "id": "w-1", "date": "2026-04-02", "amount": 7000,
         "refers_to": "i-2"},
    ]
    plans = {
        "running": {"tiers": [{"up_to": 50000, "rate": "0.04"}, {"rate": "0.06"}],
                    "method": "marginal", "running": "year"},
        "on-payment": {"rate": "0.05", "payable": "on_payment", "payments": "payments",
                       "write_offs": "write_offs", "write_off": "claw_back"},
        "by-product": {"rates_by": "product", "rates": {"mobile": "0.02", "ipvpn": "0.08"}},
    }
    for name, spec in plans.items():
        plan = Plan.model_validate({
            "name": f"per-transaction-{name}", **declared,
            "policies": [{"type": "per_transaction", "id": "commission",
                          "label": "commission", "measure": "revenue", **spec}]})
        records = [{"payee": p, "period": m} for p in ("A", "B")
                   for m in ("2026-01", "2026-02", "2026-03", "2026-04")]
        yield f"extra-per-transaction-{name}", plan.evaluate(
            records, transactions=transactions, state=State.empty(plan))


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
