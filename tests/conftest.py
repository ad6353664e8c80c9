"""Shared fixtures: paths to the bundled examples, and a CLI runner."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from incentives.cli import main

ROOT = Path(__file__).resolve().parent.parent
# helpers of the tests (tests/databases.py) import as top-level modules
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
EXAMPLES = ROOT / "examples"

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _own_temp_dir(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's temporary files (a stream's spill folder, a staged output) in a
    folder of its own, for its processes too: a stream killed by one test leaves a
    spill folder that another test's stream would otherwise report (a ``note:``
    line on its standard error) when the suite runs in parallel."""
    own = tmp_path_factory.mktemp("tmp")
    monkeypatch.setenv("TMPDIR", str(own))
    monkeypatch.setattr(tempfile, "tempdir", str(own))


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


# ------------------------------------------------------------------ real databases
# (tests/databases.py): SQLite and DuckDB files in the test's folder; a real PostgreSQL
# server, INCENTIVES_TEST_POSTGRES or a throwaway cluster of this session (one per xdist
# worker), each test in a schema of its own.


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of this test (created when first written)."""
    from databases import sqlite_url as url

    return url(tmp_path)


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    """A DuckDB database file of this test (created when first written)."""
    from databases import duckdb_url as url

    return url(tmp_path)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The URL of a real PostgreSQL server (a superuser): ``INCENTIVES_TEST_POSTGRES``,
    else a throwaway cluster started by tools/postgres.sh for this session. Without one
    the test skips, saying why, or fails when ``CI`` is set."""
    from databases import ENV, PostgresUnavailable, postgres_required, throwaway_postgres

    given = os.environ.get(ENV)
    if given:
        yield given
        return
    try:
        with throwaway_postgres() as url:
            yield url
    except PostgresUnavailable as exc:
        message = f"no PostgreSQL server ({ENV} unset): {exc}"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def postgres_url(postgres: str) -> Iterator[str]:
    """A URL of the PostgreSQL server whose search path is a new schema of this test's
    own (dropped afterwards)."""
    from databases import drop_schema, new_schema

    name, url = new_schema(postgres)
    yield url
    drop_schema(postgres, name)


@pytest.fixture(params=["sqlite", "duckdb", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each of the three databases in turn (a URL with no table=)."""
    name = {"sqlite": "sqlite_url", "duckdb": "duckdb_url", "postgresql": "postgres_url"}
    return str(request.getfixturevalue(name[request.param]))
