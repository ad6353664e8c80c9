"""A pytest plugin that collects case files (``*.cases.yaml``) as tests.

Installed with the package (entry point ``pytest11``, name ``incentives``):
every ``*.cases.yaml`` file under the paths pytest collects becomes a test
file, each case a test item named after the case. A failing case shows the
differences, one line per expected value (no traceback). Turn the plugin off
with ``-p no:incentives``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from .cases import Case, CaseResult

__all__ = ["CaseFile", "CaseItem", "pytest_collect_file"]


class CaseFailed(AssertionError):
    """A case's results differ from what it expects."""

    def __init__(self, result: CaseResult) -> None:
        self.result = result
        super().__init__(result.report())


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    """Collect ``*.cases.yaml`` files."""
    from .cases import SUFFIX

    if file_path.name.endswith(SUFFIX):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    """A case file: one item per case."""

    def collect(self) -> Iterator[CaseItem]:
        from ..errors import IncentivesError
        from .cases import load_cases

        try:
            cases = load_cases(self.path)
        except IncentivesError as exc:
            raise self.CollectError(str(exc)) from None
        seen: dict[str, int] = {}
        for case in cases:
            name = case.name
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} [{seen[name]}]"
            yield CaseItem.from_parent(self, name=name, case=case)


class CaseItem(pytest.Item):
    """One case of a case file."""

    def __init__(self, *, case: Case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from .cases import run_case

        result = run_case(self.case)
        if not result.ok:
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        from ..errors import IncentivesError

        if isinstance(excinfo.value, (CaseFailed, IncentivesError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        line = self.case.line - 1 if self.case.line else None
        return self.path, line, f"case: {self.case.name}"
