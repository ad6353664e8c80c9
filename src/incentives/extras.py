"""The optional extras, and the one-line error that names the one to install.

``incentives`` itself needs none of them; a command or a function that does
checks for its extra first, before any work, and raises
:class:`MissingExtraError` (a :class:`~incentives.errors.UsageError` and an
:class:`ImportError`), which the command line prints on one line with exit
status 2::

    error: incentives simulate needs the 'simulate' extra: pip install 'incentives[simulate]'

>>> require("simulate", "incentives simulate", modules=("decimal",))
>>> require("simulate", "this example", modules=("no_such_module_here",))
Traceback (most recent call last):
...
incentives.extras.MissingExtraError: this example needs the 'simulate' extra: pip install 'incentives[simulate]'
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from .errors import UsageError

__all__ = ["EXTRAS", "MissingExtraError", "require"]

#: The modules each extra brings (as ``pyproject.toml`` lists them).
EXTRAS: dict[str, tuple[str, ...]] = {
    "simulate": ("pandas", "matplotlib", "tqdm"),
    "dask": ("dask", "dask.dataframe", "pandas"),
    "testing": ("hypothesis",),
    "sql": ("sqlalchemy",),
    "parquet": ("pyarrow", "pyarrow.parquet"),
    "excel": ("openpyxl",),
}


class MissingExtraError(UsageError, ImportError):
    """An optional extra that a command or a function needs is not installed."""


def require(extra: str, what: str, *, modules: Sequence[str] | None = None) -> None:
    """Import each module of ``extra`` (or ``modules``), or raise :class:`MissingExtraError`
    saying that ``what`` needs the extra and how to install it."""
    for name in modules if modules is not None else EXTRAS[extra]:
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingExtraError(f"{what} needs the {extra!r} extra: "
                                    f"pip install 'incentives[{extra}]'") from None
