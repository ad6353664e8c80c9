"""Shared fixtures: paths to the bundled examples, and a CLI runner."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from incentives.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``incentives ARGS...`` in-process; return exit code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        out = io.StringIO()
        code = main([str(a) for a in args], out=out)
        captured = capsys.readouterr()
        return CliResult(code, out.getvalue() + captured.out, captured.err)

    return run


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def load_bench() -> Callable[[str], ModuleType]:
    """Import a benchmark script as a module (they live outside the package)."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
        found = sys.modules.get(f"_bench_{name}")
        if found is not None:
            return found
        sys.path.insert(0, str(path.parent))
        try:
            spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
            assert spec is not None
            assert spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
        finally:
            sys.path.remove(str(path.parent))

    return load
