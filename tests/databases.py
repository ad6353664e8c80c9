"""Real databases for the tests: SQLite and DuckDB files in a test's folder, and a real
PostgreSQL server (``INCENTIVES_TEST_POSTGRES``, else a throwaway cluster started with
``tools/postgres.sh`` for the session).

The fixtures are in ``tests/conftest.py``: ``sqlite_url``, ``duckdb_url``, ``postgres``
(the server's URL, one per session and worker) and ``postgres_url`` (a URL whose
``search_path`` is a schema of the test's own, so tests on several workers never meet).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "postgres.sh"
ENV = "INCENTIVES_TEST_POSTGRES"


class PostgresUnavailable(Exception):
    """No PostgreSQL server for the tests (the reason is the message)."""


def sqlite_url(folder: Path, name: str = "test.db") -> str:
    return f"sqlite:///{folder / name}"


def duckdb_url(folder: Path, name: str = "test.duckdb") -> str:
    return f"duckdb:///{folder / name}"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of its own, in a new temporary folder, stopped and removed at
    the end: its URL (a superuser)."""
    if shutil.which("bash") is None:  # pragma: no cover - every test machine has bash
        raise PostgresUnavailable("no bash to run tools/postgres.sh")
    # not under pytest's private tmp folder: as root, the server runs as `postgres`,
    # who must reach the folder
    folder = tempfile.mkdtemp(prefix="incentives-pg-")
    try:
        done = subprocess.run(["bash", str(SCRIPT), "start", folder], capture_output=True,
                              text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"tools/postgres.sh start failed: {done.stderr.strip()[-500:]}")
        found = re.search(rf"{ENV}='([^']+)'", done.stdout)
        if found is None:  # pragma: no cover - the script always prints it
            raise PostgresUnavailable(f"tools/postgres.sh printed no URL: {done.stdout!r}")
        yield found.group(1)
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True, timeout=60,
                       check=False)
        shutil.rmtree(folder, ignore_errors=True)


def execute(url: str, *statements: str, params: Sequence[dict[str, Any]] = ()) -> None:
    """Run ``statements`` (test fixtures' own SQL) in one transaction on ``url``."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    url = url.split("?table=")[0]
    engine = sa.create_engine(_driver_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for i, statement in enumerate(statements):
                if i == len(statements) - 1 and params:
                    conn.execute(sa.text(statement), list(params))
                else:
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def query(url: str, statement: str) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` on ``url`` (to check what a test left in a database)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(_driver_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(statement))]
    finally:
        engine.dispose()


def _driver_url(url: str) -> Any:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    query_args = {k: v for k, v in parsed.query.items() if k not in ("table", "query")}
    name = parsed.drivername
    if name in ("postgresql", "postgres"):
        name = "postgresql+psycopg"
    return parsed.set(drivername=name, query=query_args)


def with_param(url: str, key: str, value: str) -> str:
    """``url`` with ``key=value`` added to its query string."""
    return f"{url}{'&' if '?' in url else '?'}{key}={quote(value, safe='')}"


def new_schema(server: str) -> tuple[str, str]:
    """A new schema on the PostgreSQL ``server``: its name, and a URL whose search path
    is that schema (so unqualified tables are the test's own)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    execute(server, f"CREATE SCHEMA {name}")
    return name, with_param(server, "options", f"-csearch_path={name}")


def drop_schema(server: str, name: str) -> None:
    with contextlib.suppress(Exception):
        execute(server, "SET lock_timeout = '10s'", f"DROP SCHEMA IF EXISTS {name} CASCADE")


def postgres_required() -> bool:
    """With ``CI`` set, a missing PostgreSQL fails the tests instead of skipping them."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
