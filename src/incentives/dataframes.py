"""Records from a pandas DataFrame (pandas is an extra; this module imports none of it).

Each row is a flat record: ``payee``, ``period``, ``group`` and one column per
declared input. A missing value (``NaN``, ``None``, ``NA``) is *missing*, never
zero: a required input that is missing is a record error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

__all__ = ["frame_rows"]


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
