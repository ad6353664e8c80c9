"""Evaluating a plan with Dask, when one process is not enough (the ``dask`` extra).

``pip install 'incentives[dask]'``. Two entry points, both lazy (they build a
Dask graph; ``.compute()`` runs it on whatever scheduler is configured):

- :func:`evaluate_frame`: a Dask DataFrame of flat records (``payee``,
  ``period``, ``group`` and one column per declared input, as in CSV) to a Dask
  DataFrame of results, one row per record (see :func:`result_columns`);
- :func:`evaluate_bag`: a Dask Bag of raw records (dicts, nested or flat, as in
  JSON Lines) to a Bag of result dicts (the entries of ``results`` in
  ``incentives run --format json``) and error dicts (``{"error": {...}}``).

How the work is cut: team-scoped policies (contests, pools, balancing) see a
whole group in a period, so the records are first shuffled so that each
(period, group) is in one partition (one period, when some policy sees the
whole population); each partition is then evaluated as ``plan.evaluate``
would evaluate it. The plan travels to the workers as its YAML text
(``plan.to_yaml()``) and is loaded and compiled there, once per worker
process; nothing else of the plan is pickled.

Amounts stay exact: in the DataFrame they are decimal strings (``"1400.00"``),
never floats; money columns in the *input* should be strings too (a float
column is read from each float's shortest repr).

Records for the same payee and period are found (and refused, as duplicates)
within a partition, so within a (period, group); a payee listed in two groups
of one period is not caught across partitions, unlike ``plan.evaluate``.

>>> import dask.bag as db
>>> from incentives import load_plan
>>> plan = load_plan('''
... name: demo
... inputs: {metrics: {sales: {}}}
... policies: [{type: formula, id: commission, amount: sales * 0.05}]
... ''')
>>> bag = db.from_sequence([{"payee": "a", "period": "2026-05", "metrics": {"sales": "1000"}}])
>>> [r["total"] for r in evaluate_bag(plan, bag).compute(scheduler="synchronous")]
['50.00']
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .engine import CompiledPlan
    from .plan import Plan
    from .results import Run

__all__ = ["evaluate_bag", "evaluate_frame", "result_columns", "run_rows"]

_BUCKET = "_incentives_bucket"
_SEP = "\x1f"


def _require() -> None:
    from .extras import require

    require("dask", "incentives.dask")


@functools.lru_cache(maxsize=8)
def _compiled(text: str) -> CompiledPlan:
    """The plan of ``text``, loaded and compiled once per worker process."""
    from .plan import load_plan

    return load_plan(text).compile()


def _by_period(compiled: CompiledPlan) -> bool:
    return any(p.scope == "population" for p in compiled.policies)


def result_columns(plan: Plan) -> list[str]:
    """The columns of :func:`evaluate_frame`'s result.

    ``payee``, ``period``, ``group``, one column per policy of the plan (its id,
    in plan order; ``value`` policies make no lines and have none), ``total``,
    ``titles``, ``flags`` and ``error`` (empty, or the reason a record was not
    evaluated). Amounts are decimal strings; ``"0"`` where a policy made no line.
    """
    from .plan import flatten_policies

    ids = [p.id for p in flatten_policies(plan.policies) if p.type != "value"]
    return ["payee", "period", "group", *ids, "total", "titles", "flags", "error"]


def run_rows(run: Run, columns: list[str]) -> list[dict[str, str]]:
    """A run as rows of :func:`result_columns` (errors as rows with ``error`` set)."""
    ids = columns[3:-4]
    rows: list[dict[str, str]] = []
    for r in run.results:
        row = {"payee": r.payee, "period": r.period, "group": r.group or ""}
        for pid in ids:
            row[pid] = str(r.amount(pid))
        row.update(total=str(r.total), titles="; ".join(r.titles), flags="; ".join(r.flags),
                   error="")
        rows.append(row)
    for e in run.errors:
        row = dict.fromkeys(columns, "")
        row["payee"] = str(getattr(e, "payee", None) or "")
        row["period"] = str(getattr(e, "period", None) or "")
        row["group"] = str(getattr(e, "group", None) or "")
        row["error"] = str(e)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- DataFrame


def _evaluate_partition(frame: Any, text: str, columns: list[str]) -> Any:
    import pandas as pd

    compiled = _compiled(text)
    if _BUCKET in frame.columns:
        frame = frame.drop(columns=[_BUCKET])
    run = compiled.evaluate(frame, errors="collect")
    return pd.DataFrame(run_rows(run, columns), columns=columns, dtype=object)


def evaluate_frame(plan: Plan, frame: Any) -> Any:
    """Evaluate a Dask DataFrame of flat records; a Dask DataFrame of results (lazy).

    The frame needs ``payee`` and ``period`` columns (and ``group`` for
    team-scoped policies). It is shuffled so that each (period, group) lands
    in one partition, then each partition is evaluated on a worker.

    >>> import dask.dataframe as dd, pandas as pd
    >>> from incentives import load_plan
    >>> plan = load_plan("examples/telecom/plan.yaml")
    >>> frame = dd.from_pandas(pd.DataFrame({
    ...     "payee": ["X", "Y"], "period": ["2026-05", "2026-05"], "group": ["f", "f"],
    ...     "traffic_revenue": ["50000", "10000"], "new_fax": ["3", "0"]}), npartitions=2)
    >>> out = evaluate_frame(plan, frame).compute(scheduler="synchronous")
    >>> sorted(zip(out["payee"], out["total"]))
    [('X', '1580.00'), ('Y', '700.00')]
    """
    _require()
    import pandas as pd

    text = plan.to_yaml()
    compiled = _compiled(text)
    columns = result_columns(plan)
    if "period" not in frame.columns or "payee" not in frame.columns:
        raise UsageError("the frame needs 'payee' and 'period' columns")
    key = frame["period"].astype(str).str.strip()
    if not _by_period(compiled) and "group" in frame.columns:
        key = key + _SEP + frame["group"].fillna("").astype(str).str.strip()
    keyed = frame.assign(**{_BUCKET: key})
    if keyed.npartitions > 1:
        keyed = keyed.shuffle(on=_BUCKET)
    meta = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    return keyed.map_partitions(_evaluate_partition, text, columns, meta=meta)


# ---------------------------------------------------------------------- Bag


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _bucket_key(by_period: bool, raw: Any) -> tuple[str, str]:
    if not isinstance(raw, dict):
        return ("", "")
    return (_text(raw.get("period")), "" if by_period else _text(raw.get("group")))


def _evaluate_items(text: str, keyed: tuple[Any, Iterable[Any]]) -> list[dict[str, Any]]:
    from .errors import error_dict

    run = _compiled(text).evaluate(list(keyed[1]), errors="collect")
    out: list[dict[str, Any]] = [r.to_dict() for r in run.results]
    out.extend({"error": error_dict(e)} for e in run.errors)
    return out


def evaluate_bag(plan: Plan, bag: Any) -> Any:
    """Evaluate a Dask Bag of raw records; a Bag of result dicts and error dicts (lazy).

    Records are grouped by (period, group) with a task-based shuffle (it runs
    on every scheduler, processes included), then each group is evaluated.
    """
    _require()
    text = plan.to_yaml()
    by_period = _by_period(_compiled(text))
    grouped = bag.groupby(functools.partial(_bucket_key, by_period), shuffle="tasks")
    return grouped.map(functools.partial(_evaluate_items, text)).flatten()
