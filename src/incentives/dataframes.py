"""Records from a pandas DataFrame (pandas is an extra; this module imports none of it).

Each row is a flat record: ``payee``, ``period``, ``group`` and one column per
declared input. A missing value (``NaN``, ``None``, ``NA``) is *missing*, never
zero: a required input that is missing is a record error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

__all__ = ["frame_rows", "run_frame"]


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)  # numpy scalars
    if item is not None and type(value).__module__ == "numpy":
        return _clean(item())
    return value


def frame_rows(frame: Any) -> Iterator[dict[str, Any]]:
    """Yield a DataFrame's rows as flat record mappings."""
    columns = [str(c) for c in frame.columns]
    for row in frame.itertuples(index=False, name=None):
        yield {c: _clean(v) for c, v in zip(columns, row, strict=True)}


def run_frame(run: Any, *, floats: bool = False) -> Any:
    """A run as a pandas DataFrame: one row per payee and period.

    Columns: ``payee``, ``period``, ``group`` (``None`` when the record named
    none), one column per policy that made lines (its id, in plan order), then
    ``total``, ``titles`` and ``flags`` (each joined with ``"; "``). Amounts are
    exact :class:`~decimal.Decimal` objects (``object`` dtype); with
    ``floats=True`` they are ``float64``, for plotting (never for paying).
    """
    from .extras import require

    require("simulate", "to_dataframe()", modules=("pandas",))
    import pandas as pd

    columns = run.columns()
    rows = []
    for r in run.results:
        row: dict[str, Any] = {"payee": r.payee, "period": r.period, "group": r.group}
        for c in columns:
            row[c] = r.amount(c)
        row["total"] = r.total
        row["titles"] = "; ".join(r.titles)
        row["flags"] = "; ".join(r.flags)
        rows.append(row)
    header = ["payee", "period", "group", *columns, "total", "titles", "flags"]
    frame = pd.DataFrame(rows, columns=header)
    amounts = [*columns, "total"]
    if floats:
        for c in amounts:
            frame[c] = pd.Series([float(v) for v in frame[c]], index=frame.index, dtype="float64")
    else:
        for c in amounts:
            frame[c] = frame[c].astype(object)
    return frame
