"""SQL databases as sources and sinks (the ``sql`` extra: SQLAlchemy 2 Core, DuckDB,
psycopg 3).

A source or a sink is a SQLAlchemy URL (``sqlite:///pay.db``,
``duckdb:///pay.duckdb``, ``postgresql://user@host/db``) with one of
``table=NAME`` (or ``schema.NAME``) or ``query=PATH`` (a file holding one
SELECT) in its query string; every other query parameter goes to the driver.

- :func:`read_sql` streams the rows of a table or a query (a server-side
  cursor on PostgreSQL, ``fetchmany`` elsewhere), each a ``dict`` of
  :func:`incentives.tabular.cell` values: NUMERIC/DECIMAL as exact
  :class:`~decimal.Decimal`, floats refused unless the plan says how to read
  them. A query runs read-only and is rolled back, never committed.
- :func:`sql_sink` writes a run's three tables (``NAME``, ``NAME_lines``,
  ``NAME_errors``) in one transaction, replacing the rows of each (plan,
  period) it is given.
- :func:`read_result_sql` reads them back.

Nothing read from a file or a table is ever executed; table names are checked
and quoted by SQLAlchemy, never formatted into SQL. A password is never shown:
every message names the database by :func:`safe_url`.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from .errors import UsageError
from .tabular import (
    ERRORS,
    LINES,
    TOTALS,
    Column,
    FloatReading,
    ResultTables,
    Sink,
    cell,
    periods_of,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["SqlSink", "is_sql_url", "read_result_sql", "read_sql", "safe_url", "sql_sink"]

#: rows fetched at a time while streaming, and rows inserted per batch
FETCH_ROWS = 2000
INSERT_ROWS = 2000
#: the largest query file read
MAX_QUERY_BYTES = 1 << 20

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(\+[A-Za-z][A-Za-z0-9_]*)?://")
#: schemes that name files or web addresses, not databases
_NOT_DATABASES = frozenset({"file", "http", "https", "ftp", "sftp", "s3", "s3a", "gs", "gcs",
                            "az", "abfs", "abfss", "adl", "hdfs", "webhdfs", "memory"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_sql_url(text: str) -> bool:
    """Whether ``text`` is a database URL (``DIALECT[+DRIVER]://...``), not a path.

    >>> is_sql_url("sqlite:///pay.db?table=records"), is_sql_url("postgresql+psycopg://h/db")
    (True, True)
    >>> is_sql_url("records.csv"), is_sql_url("C://data/records.csv"), is_sql_url("https://x/y.csv")
    (False, False, False)
    """
    found = _SCHEME.match(text)
    if found is None:
        return False
    dialect = found.group(1).lower()
    return len(dialect) > 1 and dialect not in _NOT_DATABASES


def _userinfo(text: str) -> tuple[str, str, str] | None:
    """``text`` cut around the password of its user part: (before, password, after), or
    None when it has no password there. SQLAlchemy reads a password from the first ``:``
    up to the next ``@``, a ``?``, ``#`` or ``/`` in it included; a password also runs
    up to the last ``@`` before the query string (``a@b`` unescaped): the wider of the
    two is cut, so that no part of a password is ever shown."""
    found = _SCHEME.match(text)
    if found is None:
        return None
    start = found.end()
    spans: list[tuple[int, int]] = []
    alchemy = re.compile(r"[^:/]*:([^@]*)@").match(text, start)
    if alchemy is not None:
        spans.append((alchemy.start(1), alchemy.end(1)))
    end = len(text)
    for sep in "?#":
        at = text.find(sep, start)
        if at != -1:
            end = min(end, at)
    at = text.rfind("@", start, end)
    if at != -1 and not text.startswith("/", start):
        colon = text.find(":", start, at)
        if colon != -1:
            spans.append((colon + 1, at))
    if not spans:
        return None
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    return text[:first], text[first:last], text[last:]


#: a query parameter holding a secret: password=, and libpq's sslpassword=
_SECRET_PARAM = re.compile(r"(?i)([?&](?:ssl)?password=)([^&#]*)")


def safe_url(text: str) -> str:
    """``text`` with any password replaced by ``***`` (in the URL's user part or a
    ``password=`` parameter): how every message names a database.

    >>> safe_url("postgresql://pay:s3cret@db.example.com:5432/hr?table=records")
    'postgresql://pay:***@db.example.com:5432/hr?table=records'
    >>> safe_url("postgresql://db/hr?password=s3cret&table=records")
    'postgresql://db/hr?password=***&table=records'
    """
    cut = _userinfo(text)
    if cut is not None:
        text = f"{cut[0]}***{cut[2]}"
    return _SECRET_PARAM.sub(r"\1***", text)


def _passwords(spec: str) -> list[str]:
    """The password(s) in ``spec``, raw and decoded (to scrub from drivers' messages)."""
    out: list[str] = []
    cut = _userinfo(spec)
    if cut is not None:
        out.append(cut[1])
    out += [found.group(2) for found in _SECRET_PARAM.finditer(spec)]
    words = {w for p in out for w in (p, unquote(p), quote(unquote(p), safe="")) if w}
    return sorted(words, key=len, reverse=True)


def _scrub(message: str, spec: str) -> str:
    for word in _passwords(spec):
        message = message.replace(word, "***")
    return message


# ------------------------------------------------------------------ URLs and connections


@dataclass
class _Target:
    spec: str
    safe: str
    url: sa.URL
    dialect: str  # sqlite, duckdb, postgresql, ...
    table: str | None
    schema: str | None
    query: str | None


def _sqlalchemy(what: str) -> Any:
    from .extras import require

    require("sql", what, modules=("sqlalchemy",))
    import sqlalchemy

    return sqlalchemy


def _table_name(name: str, safe: str) -> tuple[str | None, str]:
    parts = name.split(".")
    if len(parts) > 2 or not all(_NAME.fullmatch(p) for p in parts):
        raise UsageError(f"{safe}: {name!r} is not a table name: write NAME or SCHEMA.NAME, "
                         "each of letters, digits and _ (not starting with a digit)")
    if any(len(p) > 56 for p in parts):
        raise UsageError(f"{safe}: the table name {name!r} is too long (at most 56 "
                         "characters a part)")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _target(spec: str, *, what: str) -> _Target:
    safe = safe_url(spec)
    if not is_sql_url(spec):
        raise UsageError(f"{safe}: not a database URL (DIALECT[+DRIVER]://..., such as "
                         "sqlite:///pay.db?table=records)")
    sa = _sqlalchemy(what)
    try:
        url = sa.engine.make_url(spec)
    except Exception:  # ArgumentError, ValueError (a bad port)
        raise UsageError(f"{safe}: not a database URL (DIALECT[+DRIVER]://..., such as "
                         "sqlite:///pay.db?table=records)") from None
    params = dict(url.query)
    table = params.pop("table", None)
    query = params.pop("query", None)
    for key, value in (("table", table), ("query", query)):
        if isinstance(value, tuple):
            raise UsageError(f"{safe}: {key}= is given more than once")
    if table is not None and query is not None:
        raise UsageError(f"{safe}: give table= or query=, not both")
    name = url.drivername
    backend, _, driver = name.partition("+")
    backend = backend.lower()
    if backend in ("postgres", "postgresql"):
        backend = "postgresql"
        name = f"postgresql+{driver or 'psycopg'}"
    url = url.set(drivername=name, query=params)
    schema = None
    if table is not None:
        schema, table = _table_name(str(table), safe)
    return _Target(spec, safe, url, backend, table, schema,
                   None if query is None else str(query))


def _file_database(target: _Target) -> Path | None:
    """The database file of a SQLite or DuckDB URL (None: in memory, or a server)."""
    if target.dialect not in ("sqlite", "duckdb"):
        return None
    database = target.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


#: DuckDB settings a URL may not give when reading (read-only, no external access)
_DUCKDB_LOCKED = ("access_mode", "enable_external_access", "allow_unsigned_extensions",
                  "allow_community_extensions", "autoinstall_known_extensions",
                  "autoload_known_extensions", "allowed_directories", "allowed_paths")


def _engine(target: _Target, *, read_only: bool, query: bool = False) -> Any:
    sa = _sqlalchemy("a SQL database")
    from sqlalchemy import event
    from sqlalchemy.pool import NullPool

    connect_args: dict[str, Any] = {}
    path = _file_database(target)
    if read_only and path is not None and not path.is_file():
        raise UsageError(f"{target.safe}: no such database file: {path}")
    if target.dialect == "duckdb" and read_only and path is not None:
        connect_args["read_only"] = True
    if target.dialect == "duckdb" and (query or read_only):
        # a read reads the database, never the machine's files or the network:
        # read_csv('/etc/passwd'), COPY ... TO, ATTACH, INSTALL are refused by DuckDB
        connect_args["config"] = {"enable_external_access": False}
    url = target.url
    if target.dialect == "duckdb" and (query or "read_only" in connect_args):
        # duckdb-engine gives the URL's parameters to DuckDB's configuration, after
        # connect_args: a URL's ...&enable_external_access=true or &access_mode=read_write
        # must not undo what is set here
        given = {k.lower(): k for k in url.query}
        url = url.difference_update_query(
            [given[k] for k in _DUCKDB_LOCKED if k in given])
    options: dict[str, Any] = {}
    if target.dialect == "postgresql":
        # psycopg parses json/jsonb numbers as floats: read them as the exact decimals
        # written, as a JSON file's are (a jsonb sellers column's shares)
        options["json_deserializer"] = functools.partial(json.loads, parse_float=Decimal)
    try:
        engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args,
                                  **options)
    except ModuleNotFoundError as exc:
        raise UsageError(f"{target.safe}: the database driver {exc.name!r} is not installed "
                         "(pip install 'incentives[sql]' brings SQLite, DuckDB and "
                         "PostgreSQL's)") from None
    except sa.exc.NoSuchModuleError:
        raise UsageError(f"{target.safe}: no SQLAlchemy dialect for "
                         f"{target.url.drivername!r} (pip install 'incentives[sql]' brings "
                         "sqlite, duckdb and postgresql)") from None
    except Exception as exc:  # ArgumentError and the like: a bad parameter
        raise UsageError(f"{target.safe}: {_scrub(_first_line(exc), target.spec)}") from None
    if target.dialect == "sqlite":
        # pysqlite begins a transaction only before an INSERT/UPDATE/DELETE; let SQLAlchemy
        # begin it (so a CREATE TABLE is part of it) and let nothing commit on its own
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            # a writer takes the write lock at once: a second run of the period waits
            # for the first to commit, then replaces its rows
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    kept = [line for line in lines
            if not line.startswith(("[SQL:", "[parameters:", "(Background on"))]
    return " ".join(kept[:3]) or type(exc).__name__


def _failure(target: _Target, exc: BaseException, doing: str) -> UsageError:
    """One line for a driver's error (connection, authentication, permission...)."""
    return UsageError(f"{target.safe}: {doing}: {_scrub(_first_line(exc), target.spec)}")


def _connect(engine: Any, target: _Target, doing: str) -> Any:
    try:
        return engine.connect()
    except Exception as exc:
        raise _failure(target, exc, f"cannot connect to {doing}") from None


# ------------------------------------------------------------------ reading

#: the first word of a query that reads
_READS = ("select", "with", "values", "table")
#: words that write (or reach outside the database); refused anywhere in a query's code
_WRITES = ("insert", "into", "update", "delete", "merge", "upsert", "drop", "alter", "create",
           "truncate", "grant", "revoke", "copy", "attach", "detach", "pragma", "vacuum",
           "analyze", "reindex", "cluster", "call", "do", "execute", "prepare", "lock",
           "install", "load", "export", "import", "checkpoint", "comment", "refresh",
           "listen", "notify", "set", "reset", "begin", "commit", "rollback", "savepoint",
           "release")


def _code_words(sql: str, where: str) -> tuple[list[str], bool]:
    """The words of ``sql`` outside strings, quoted names and comments (lower case), and
    whether a statement follows a ``;``."""
    words: list[str] = []
    i, n = 0, len(sql)
    ended = False  # a ';' was met at the top
    more = False
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j == -1 else j + 1
            continue
        if sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise UsageError(f"{where}: a comment /* is not closed")
            continue
        if ch.isspace():
            i += 1
            continue
        if ended:
            more = True
            break
        if ch == ";":
            ended = True
            i += 1
            continue
        # ('[' is not taken for a quote: SQLite's [name] is, but DuckDB's and PostgreSQL's
        # [ opens a list, and a ';' hidden in one would pass; a [name] with a ';' or a
        # word that writes is refused, which errs on the safe side)
        if ch in "'\"`":
            close = ch
            backslash = ch == "'" and i > 0 and sql[i - 1] in "eE" and (
                i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while True:
                if j >= n:
                    raise UsageError(f"{where}: a quote {ch} is not closed")
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == close:
                    if j + 1 < n and sql[j + 1] == close:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            continue
        if ch == "$":
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if tag is not None:
                end = sql.find(tag.group(0), i + len(tag.group(0)))
                if end == -1:
                    raise UsageError(f"{where}: a quote {tag.group(0)} is not closed")
                i = end + len(tag.group(0))
                continue
        word = re.match(r"[A-Za-z_][A-Za-z0-9_$]*", sql[i:])
        if word is not None:
            if not (words and words[-1] == "e" and i > 0 and sql[i - 1] == "'"):
                words.append(word.group(0).lower())
            i += len(word.group(0))
            continue
        i += 1
    return words, more


def check_query(sql: str, where: str) -> None:
    """Refuse ``sql`` unless it is one statement that reads: it starts with SELECT, WITH,
    VALUES or TABLE (after comments) and holds no second statement and no word that
    writes (outside strings, quoted names and comments).

    >>> check_query("-- pay\\nSELECT * FROM records WHERE note = 'a; b'", "q.sql")
    >>> check_query("SELECT 1; DROP TABLE records", "q.sql")
    Traceback (most recent call last):
    ...
    incentives.errors.UsageError: q.sql: the query holds more than one statement; a query file holds one SELECT
    """
    words, more = _code_words(sql, where)
    if not words:
        raise UsageError(f"{where}: the query file holds no query")
    if more:
        raise UsageError(f"{where}: the query holds more than one statement; a query file "
                         "holds one SELECT")
    if words[0] not in _READS:
        raise UsageError(f"{where}: the query starts with {words[0].upper()}; a query file "
                         "holds one query that reads (SELECT, WITH, VALUES or TABLE)")
    for word in words:
        if word in _WRITES:
            raise UsageError(
                f"{where}: the query holds {word.upper()}, which could change the database; "
                "a query file holds one query that only reads (a column of that name must "
                "be quoted)")


def _read_query_file(path: str, target: _Target) -> str:
    p = Path(path)
    where = f"{target.safe}: query file {path}"
    try:
        with p.open("rb") as f:
            data = f.read(MAX_QUERY_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_QUERY_BYTES:
        raise UsageError(f"{where}: larger than {MAX_QUERY_BYTES} bytes; a query file holds "
                         "one SELECT")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None
    check_query(text, where)
    return text.strip().rstrip(";").rstrip()


def _check_duckdb_query(conn: Any, sql: str, where: str) -> None:
    """DuckDB's own parser must find one statement in ``sql``: its syntax is not quite
    PostgreSQL's (``[...]`` is a list, not a quoted name), so a second statement could
    hide from :func:`check_query` in a list's string, and a DuckDB connection runs
    every statement it is given. (The parser of the connection itself: the module
    imports no driver.)"""
    raw = conn.connection.dbapi_connection
    try:
        statements = raw.extract_statements(sql)
    except Exception as exc:  # a syntax error: one line
        raise UsageError(f"{where}: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise UsageError(f"{where}: the query holds more than one statement; a query file "
                         "holds one SELECT")
    # (what the one statement does is check_query's, and the read-only connection's)


def _read_only(conn: Any, target: _Target) -> None:
    """Make the transaction ``conn`` is in read-only (defence in depth)."""
    if target.dialect == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif target.dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    # duckdb: a file is opened read-only (_engine); other databases: the check of the
    # query's text (check_query) and a rollback at the end


def _tables_there(conn: Any, target: _Target, schema: str | None) -> list[str]:
    """The tables and views of ``schema`` (the default one when None)."""
    sa = _sqlalchemy("a SQL database")
    if target.dialect == "sqlite":
        statement = sa.text("SELECT name FROM pragma_table_list WHERE schema = :s AND "
                            "type IN ('table', 'view') AND name NOT LIKE 'sqlite!_%' ESCAPE '!'")
    elif target.dialect == "postgresql":
        # the catalogue lists every table, also those the role may not read (which
        # information_schema hides): reading one then says "permission denied"
        statement = sa.text("SELECT c.relname FROM pg_catalog.pg_class c JOIN "
                            "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
                            "n.nspname = COALESCE(:s, current_schema()) AND c.relkind IN "
                            "('r', 'v', 'm', 'p', 'f')")
    else:
        statement = sa.text("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = COALESCE(:s, current_schema())")
    default = "main" if target.dialect == "sqlite" else None
    return sorted({str(r[0]) for r in conn.execute(statement, {"s": schema or default})})


def _columns(conn: Any, target: _Target, name: str, schema: str | None
             ) -> list[tuple[str, int | None]]:
    """The columns of the table ``name`` (none if it does not exist), each with its
    declared decimal places (None: not an exact decimal type)."""
    sa = _sqlalchemy("a SQL database")
    if target.dialect == "sqlite":
        rows = conn.execute(sa.text("SELECT name, type FROM pragma_table_info(:t, :s)"),
                            {"t": name, "s": schema or "main"})
        out: list[tuple[str, int | None]] = []
        for column, declared in rows:
            found = re.fullmatch(r"\s*DECIMAL_TEXT\s*\(\s*\d+\s*,\s*(\d+)\s*\)\s*",
                                 str(declared or ""), re.I)
            out.append((str(column), None if found is None else int(found.group(1))))
        return out
    rows = conn.execute(sa.text(
        "SELECT column_name, data_type, numeric_scale FROM information_schema.columns "
        "WHERE table_schema = COALESCE(:s, current_schema()) AND table_name = :t "
        "ORDER BY ordinal_position"), {"t": name, "s": schema})
    return [(str(column), int(scale) if scale is not None and (
        "numeric" in str(kind).lower() or "decimal" in str(kind).lower()) else None)
        for column, kind, scale in rows]


def _sqlite_affinities(conn: Any, name: str, schema: str | None) -> dict[str, str]:
    """The type affinity of each column of the SQLite table ``name`` (SQLite's rules:
    INT -> INTEGER; CHAR, CLOB, TEXT -> TEXT; BLOB or none -> BLOB; REAL, FLOA, DOUB
    -> REAL; anything else, DECIMAL and NUMERIC included -> NUMERIC)."""
    sa = _sqlalchemy("a SQL database")
    out: dict[str, str] = {}
    for column, declared in conn.execute(
            sa.text("SELECT name, type FROM pragma_table_info(:t, :s)"),
            {"t": name, "s": schema or "main"}):
        kind = str(declared or "").upper()
        if "INT" in kind:
            affinity = "INTEGER"
        elif any(w in kind for w in ("CHAR", "CLOB", "TEXT")):
            affinity = "TEXT"
        elif "BLOB" in kind or not kind.strip():
            affinity = "BLOB"
        elif any(w in kind for w in ("REAL", "FLOA", "DOUB")):
            affinity = "REAL"
        else:
            affinity = "NUMERIC"
        out[str(column).lower()] = affinity
    return out


def _resolve_table(target: _Target, conn: Any) -> str:
    """The name of the table of ``target`` as the database spells it; a UsageError
    naming the tables there when it does not exist."""
    assert target.table is not None
    names = _tables_there(conn, target, target.schema)
    if target.table in names:
        return target.table
    same = [n for n in names if n.lower() == target.table.lower()]
    if len(same) == 1:
        return same[0]
    shown = f"{target.schema}.{target.table}" if target.schema else target.table
    hint = ""
    close = difflib.get_close_matches(target.table, names, n=1)
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    listing = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
    raise UsageError(f"{target.safe}: no table {shown!r}{hint}; the tables there: {listing}")


def read_sql(spec: str, *, floats: FloatReading = "refuse", what: str = "records"
             ) -> Iterator[dict[str, Any]]:
    """The rows of the table (``table=``) or query (``query=``) of the URL ``spec``, one
    ``dict`` a row (column name -> value, by :func:`incentives.tabular.cell`), streamed.

    Raises :class:`UsageError` (one line, the password hidden) when the database
    cannot be reached, the table does not exist, the query is not one that only
    reads, or a column holds floats and ``floats`` is ``"refuse"``.
    """
    target = _target(spec, what=f"reading {what} from a SQL database")
    if (target.table is None) == (target.query is None):
        raise UsageError(f"{target.safe}: say what to read with table=NAME or "
                         "query=FILE.sql in the URL (…?table=records)")
    # checked now, before the rows are asked for: the query, the database file
    sql_text = None if target.query is None else _read_query_file(target.query, target)
    path = _file_database(target)
    if path is not None and not path.is_file():
        raise UsageError(f"{target.safe}: no such database file: {path}")
    return _rows(target, sql_text, floats, what)


def _rows(target: _Target, sql_text: str | None, floats: FloatReading, what: str
          ) -> Iterator[dict[str, Any]]:
    sa = _sqlalchemy("a SQL database")
    engine = _engine(target, read_only=True, query=sql_text is not None)
    source = target.safe
    try:
        conn = _connect(engine, target, f"read the {what}")
        result: Any = None
        try:
            try:
                _read_only(conn, target)
                if sql_text is not None:
                    if target.dialect == "duckdb":
                        _check_duckdb_query(conn, sql_text,
                                            f"{target.safe}: query file {target.query}")
                    statement: Any = sa.text(sql_text)
                else:
                    table = _resolve_table(target, conn)
                    statement = sa.select(sa.literal_column("*")).select_from(
                        sa.table(table, schema=target.schema))
                streaming = conn.execution_options(stream_results=True, yield_per=FETCH_ROWS)
                result = streaming.execute(statement)
                names = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result
            except UsageError:
                raise
            except Exception as exc:
                raise _query_failure(target, exc, what) from None
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise UsageError(f"{source}: two columns are named {name!r}; name each "
                                     "column once (SELECT ... AS name)")
                seen.add(name)
            rows = result.partitions()
            while True:
                try:
                    part = next(rows, None)
                except Exception as exc:
                    raise _query_failure(target, exc, what) from None
                if part is None:
                    break
                for row in part:
                    yield {name: cell(value, floats, source=source, column=name)
                           for name, value in zip(names, row, strict=True)}
        finally:
            # (a broken connection: nothing was written anyway)
            with contextlib.suppress(Exception):
                if result is not None:
                    result.close()  # PostgreSQL's server-side cursor
            with contextlib.suppress(Exception):
                conn.rollback()
            with contextlib.suppress(Exception):
                conn.close()
    finally:
        engine.dispose()


def _query_failure(target: _Target, exc: BaseException, what: str) -> UsageError:
    text = _first_line(exc).lower()
    if any(w in text for w in ("read-only", "readonly", "read only", "query_only",
                               "data-modifying")):
        return UsageError(f"{target.safe}: the query tried to change the database, and was "
                          "stopped; a query file holds one query that only reads")
    return _failure(target, exc, f"cannot read the {what}")


# ------------------------------------------------------------------ writing


def _money_type(sa: Any, dialect: str, places: int) -> Any:
    """The column type of amounts: NUMERIC(38, places), or on SQLite (no exact decimal
    type) TEXT holding the digits, declared DECIMAL_TEXT(38, places) to record the places.

    Not ``sa.Numeric``: on a dialect that says it has no native decimal (DuckDB's),
    SQLAlchemy would send a Decimal through float. This type has no conversion at
    all: the driver gets the Decimal (or, on SQLite, its text) as it is."""
    spec = f"DECIMAL_TEXT(38, {places})" if dialect == "sqlite" else f"NUMERIC(38, {places})"

    class ExactDecimal(sa.types.UserDefinedType):  # type: ignore[misc]
        cache_ok = True

        def get_col_spec(self, **_kw: Any) -> str:
            return spec

    return ExactDecimal()


_KIND_TYPES = {"text": "Text", "text?": "Text", "int": "Integer", "json": "Text"}


def _define(sa: Any, metadata: Any, name: str, schema: str | None, columns: Sequence[Column],
            dialect: str, places: int) -> Any:
    cols = []
    for c in columns:
        kind = _money_type(sa, dialect, places) if c.kind == "money" else getattr(
            sa, _KIND_TYPES[c.kind])()
        cols.append(sa.Column(c.name, kind, nullable=c.kind == "text?"))
    return sa.Table(name, metadata, *cols, schema=schema)


def _in_memory(target: _Target) -> bool:
    """Whether ``target`` is a SQLite or DuckDB database in memory (no file)."""
    if target.dialect not in ("sqlite", "duckdb"):
        return False
    database = (target.url.database or "").strip()
    mode = target.url.query.get("mode")
    return (not database or database.startswith(":memory:")
            or database.startswith("file::memory:")
            or (isinstance(mode, str) and mode.lower() == "memory"))


#: the schemas of a session's temporary tables (SQLite, DuckDB, PostgreSQL)
_TEMPORARY = re.compile(r"(?i)temp|temporary|pg_temp(_\d+)?|pg_toast_temp(_\d+)?")


class SqlSink:
    """A :class:`~incentives.tabular.Sink` writing to three tables of a database in one
    transaction (see :func:`sql_sink`)."""

    def __init__(self, spec: str, *, pay_with_errors: bool = False) -> None:
        target = _target(spec, what="writing results to a SQL database")
        if target.query is not None:
            raise UsageError(f"{target.safe}: results are written to a table: give "
                             "table=NAME, not query=")
        if target.table is None:
            raise UsageError(f"{target.safe}: say which table the results go to with "
                             "table=NAME in the URL (…?table=pay; the lines and errors go to "
                             "NAME_lines and NAME_errors)")
        if _in_memory(target):
            raise UsageError(f"{target.safe}: the database is in memory: it is gone when "
                             "the run ends, and the results with it; write to a database file "
                             "(sqlite:///pay.db?table=..., duckdb:///pay.duckdb?table=...)")
        if target.schema is not None and _TEMPORARY.fullmatch(target.schema):
            raise UsageError(f"{target.safe}: {target.schema!r} is the session's temporary "
                             "schema: its tables are dropped when the run ends, and the "
                             "results with them; write to a table that stays")
        self.target = target
        self.pay_with_errors = pay_with_errors
        self._engine: Any = None
        self._conn: Any = None
        self._tables: dict[int, tuple[Any, Any, Any]] = {}
        self._replaced: set[tuple[str, str | None]] = set()
        self._errors: list[tuple[Any, ...]] = []
        self._places: int | None = None
        self._finished = False

    # --- the three tables
    def _names(self) -> tuple[str, str, str]:
        assert self.target.table is not None
        base = self.target.table
        return base, f"{base}_lines", f"{base}_errors"

    def _prepare(self, conn: Any, places: int) -> tuple[Any, Any, Any]:
        """The three tables (created if absent, checked if present)."""
        found = self._tables.get(places)
        if found is not None:
            return found
        sa = _sqlalchemy("a SQL database")
        metadata = sa.MetaData()
        made = []
        for name, columns in zip(self._names(), (TOTALS, LINES, ERRORS), strict=True):
            table = _define(sa, metadata, name, self.target.schema, columns,
                            self.target.dialect, places)
            found_columns = _columns(conn, self.target, name, self.target.schema)
            if found_columns:
                have = [c for c, _ in found_columns]
                want = [c.name for c in columns]
                if [h.lower() for h in have] != [w.lower() for w in want]:
                    raise UsageError(
                        f"{self.target.safe}: the table {name!r} has the columns "
                        f"{', '.join(have)}; a results table has the columns "
                        f"{', '.join(want)} (write to another table, or drop this one)")
                scales = {c.lower(): scale for c, scale in found_columns}
                affinity = (_sqlite_affinities(conn, name, self.target.schema)
                            if self.target.dialect == "sqlite" else {})
                for c in columns:
                    if c.kind != "money":
                        continue
                    if affinity.get(c.name) in ("INTEGER", "REAL", "NUMERIC"):
                        raise UsageError(
                            f"{self.target.safe}: the column {name}.{c.name} has SQLite's "
                            f"{affinity[c.name]} affinity, which would store amounts as "
                            "binary floats or integers; amounts are written as text "
                            f"(declare the column DECIMAL_TEXT(38, {places}) or TEXT, or "
                            "write to another table)")
                    declared = scales.get(c.name)
                    if declared is None and self.target.dialect != "sqlite":
                        raise UsageError(f"{self.target.safe}: the column {name}.{c.name} "
                                         "is not an exact decimal (NUMERIC)")
                    if declared is not None and declared != places:
                        raise UsageError(
                            f"{self.target.safe}: the column {name}.{c.name} holds amounts "
                            f"with {declared} places; this plan's amounts have {places} "
                            "(write to another table)")
            else:
                table.create(conn)
            made.append(table)
        out = (made[0], made[1], made[2])
        self._tables[places] = out
        return out

    def _begin(self) -> Any:
        if self._conn is None:
            self._engine = _engine(self.target, read_only=False)
            self._conn = _connect(self._engine, self.target, "write the results")
            try:
                self._conn.begin()  # SQLite: BEGIN IMMEDIATE, which may find it locked
            except Exception as exc:
                raise _failure(self.target, exc, "write the results") from None
            try:
                self._lock(self._conn)
            except Exception as exc:
                raise _failure(self.target, exc, "write the results") from None
        return self._conn

    def _lock(self, conn: Any) -> None:
        """One writer of these tables at a time, until its transaction ends. PostgreSQL
        (READ COMMITTED) would let two runs of one period each delete what they see
        and both insert: the period paid twice. A transaction-scoped advisory lock on
        the tables' name makes the second wait, then replace the first one's rows.
        (SQLite and DuckDB allow one writer of a file at a time already.)"""
        if self.target.dialect != "postgresql":
            return
        sa = _sqlalchemy("a SQL database")
        conn.execute(sa.text(
            "SELECT pg_advisory_xact_lock(hashtext('incentives results ' || "
            "COALESCE(:schema, current_schema()) || '.' || :table))"),
            {"schema": self.target.schema, "table": self.target.table})

    def _money(self, value: Any) -> Any:
        if self.target.dialect == "sqlite":
            return format(value, "f")
        return value

    def _insert(self, conn: Any, table: Any, columns: Sequence[Column],
                rows: Sequence[tuple[Any, ...]]) -> None:
        names = [c.name for c in columns]
        money = [i for i, c in enumerate(columns) if c.kind == "money"]
        for start in range(0, len(rows), INSERT_ROWS):
            batch = []
            for row in rows[start:start + INSERT_ROWS]:
                values = list(row)
                for i in money:
                    values[i] = self._money(values[i])
                batch.append(dict(zip(names, values, strict=True)))
            conn.execute(table.insert(), batch)

    def _replace(self, conn: Any, tables: tuple[Any, Any, Any], plan: str,
                 periods: Sequence[str | None], *, errors_only: bool) -> None:
        sa = _sqlalchemy("a SQL database")
        for period in periods:
            key = (plan, period)
            if key in self._replaced:
                continue
            self._replaced.add(key)
            for table in (tables[2],) if errors_only or period is None else tables:
                where = table.c.period.is_(None) if period is None else (
                    table.c.period == period)
                conn.execute(sa.delete(table).where(table.c.plan == plan, where))

    def write(self, tables: ResultTables) -> None:
        """Add ``tables`` to the transaction (replacing, the first time each is met, the
        rows of this plan in each of its periods)."""
        if self._finished:
            raise UsageError(f"{self.target.safe}: this sink was already committed or "
                             "discarded")
        if self._places is None:
            self._places = tables.places
        conn = self._begin()
        try:
            totals, lines, errors = self._prepare(conn, tables.places)
            periods: list[str | None] = [*tables.periods, None]
            self._replace(conn, (totals, lines, errors), tables.plan, periods,
                          errors_only=False)
            self._errors.extend(tables.errors)
            # with errors, and no pay_with_errors, commit rolls the pay back: stop writing it
            if self.pay_with_errors or not self._errors:
                self._insert(conn, totals, TOTALS, tables.totals)
                self._insert(conn, lines, LINES, tables.lines)
            self._insert(conn, errors, ERRORS, tables.errors)
        except UsageError:
            self.discard()
            raise
        except Exception as exc:
            self.discard()
            raise _failure(self.target, exc, "cannot write the results") from None

    def commit(self) -> None:
        """Commit the transaction; if errors were written and ``pay_with_errors`` is
        False, write only the errors (in a new transaction), leaving the pay as it was."""
        if self._finished:
            return
        if self._conn is None:
            self._finished = True
            return
        try:
            if self._errors and not self.pay_with_errors:
                self._conn.rollback()
                replaced = sorted(self._replaced, key=lambda k: (k[0], k[1] is None, k[1] or ""))
                self._replaced = set()
                self._tables = {}  # a table created in the rolled-back transaction is gone
                self._conn.begin()
                self._lock(self._conn)
                places = self._places if self._places is not None else 0
                tables = self._prepare(self._conn, places)
                by_plan: dict[str, list[str | None]] = {}
                for plan, period in replaced:
                    by_plan.setdefault(plan, []).append(period)
                for plan, periods in by_plan.items():
                    self._replace(self._conn, tables, plan, periods, errors_only=True)
                self._insert(self._conn, tables[2], ERRORS, self._errors)
            self._conn.commit()
        except UsageError:
            self.discard()
            raise
        except Exception as exc:
            self.discard()
            raise _failure(self.target, exc, "cannot write the results") from None
        self._close()

    def discard(self) -> None:
        """Roll back: the tables stay exactly as they were."""
        if self._conn is not None:
            # a broken connection: the database rolls back by itself
            with contextlib.suppress(Exception):
                self._conn.rollback()
        self._close()

    def _close(self) -> None:
        self._finished = True
        conn, engine = self._conn, self._engine
        self._conn = self._engine = None
        self._tables = {}
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if engine is not None:
            engine.dispose()


def sql_sink(spec: str, *, pay_with_errors: bool = False) -> Sink:
    """A sink writing a run to the tables ``NAME``, ``NAME_lines`` and ``NAME_errors`` of
    the database of ``spec`` (a URL with ``table=NAME``), in one transaction.

    Each (plan, period) met replaces that plan's rows of that period in the three
    tables; rows of other plans and periods are untouched. When the run had errors
    and ``pay_with_errors`` is False, only the errors are written (the previous pay
    of those periods stays). Nothing is visible before :meth:`~SqlSink.commit`.
    """
    return SqlSink(spec, pay_with_errors=pay_with_errors)


# ------------------------------------------------------------------ reading results back


def read_result_sql(spec: str, *, plan: str | None = None) -> ResultTables:
    """The results written by :func:`sql_sink` to the tables of ``spec``, as
    :class:`~incentives.tabular.ResultTables` (rows ordered by period, group, payee,
    line; amounts the exact Decimals written). ``plan``: which plan's rows, when the
    tables hold several."""
    sa = _sqlalchemy("reading results from a SQL database")
    target = _target(spec, what="reading results from a SQL database")
    if target.table is None or target.query is not None:
        raise UsageError(f"{target.safe}: say which results table to read with table=NAME")
    base = target.table
    names = (base, f"{base}_lines", f"{base}_errors")
    engine = _engine(target, read_only=True)
    try:
        conn = _connect(engine, target, "read the results")
        try:
            _read_only(conn, target)
            metadata = sa.MetaData()
            tables = []
            places: int | None = None
            for n, cols in zip(names, (TOTALS, LINES, ERRORS), strict=True):
                found_columns = _columns(conn, target, n, target.schema)
                if not found_columns:
                    _resolve_table(_Target(target.spec, target.safe, target.url,
                                           target.dialect, n, target.schema, None), conn)
                have = {c.lower(): scale for c, scale in found_columns}
                missing_columns = [c.name for c in cols if c.name not in have]
                if missing_columns:
                    raise UsageError(f"{target.safe}: the table {n!r} is not a results table "
                                     f"(no column {', '.join(missing_columns)})")
                if n == base:
                    places = have["total"]
                tables.append(_define(sa, metadata, n, target.schema, cols, target.dialect,
                                      places or 0))
            plans = sorted({str(r[0]) for t in tables
                            for r in conn.execute(sa.select(t.c.plan).distinct())})
            if plan is None:
                if len(plans) > 1:
                    raise UsageError(f"{target.safe}: the tables hold the results of several "
                                     f"plans ({', '.join(plans)}); say which (plan=...)")
                plan = plans[0] if plans else ""
            read = [_read_rows(conn, t, cols, plan)
                    for t, cols in zip(tables, (TOTALS, LINES, ERRORS), strict=True)]
        except UsageError:
            raise
        except Exception as exc:
            raise _failure(target, exc, "cannot read the results") from None
        finally:
            try:
                conn.rollback()
                conn.close()
            except Exception:
                pass
    finally:
        engine.dispose()
    totals, lines, errors = read
    # the engine's order: by period and payee (then line); errors as the engine lists them
    totals.sort(key=lambda r: (r[2], r[4], r[3]))
    lines.sort(key=lambda r: (r[2], r[4], r[3], r[5]))
    errors.sort(key=lambda r: tuple("" if r[i] is None else str(r[i])
                                    for i in (2, 4, 5, 8, 3, 6, 7)))
    version = ""
    for rows in read:
        if rows:
            version = str(rows[0][1])
            break
    if places is None:
        places = _places_of_values(totals, lines)
    out = ResultTables(plan, version, places, totals, lines, errors)
    out.periods = periods_of(out)
    return out


def _places_of_values(totals: list[tuple[Any, ...]], lines: list[tuple[Any, ...]]) -> int:
    for value in [r[5] for r in totals] + [r[9] for r in lines]:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int):
            return max(0, -exponent)
    return 0


def _read_rows(conn: Any, table: Any, columns: Sequence[Column], plan: str
               ) -> list[tuple[Any, ...]]:
    sa = _sqlalchemy("a SQL database")
    statement = sa.select(*[table.c[c.name] for c in columns]).where(table.c.plan == plan)
    out = []
    for row in conn.execute(statement):
        values = list(row)
        for i, c in enumerate(columns):
            if c.kind == "money":
                values[i] = _decimal(values[i], table.name, c.name)
            elif c.kind == "int" and values[i] is not None:
                values[i] = int(values[i])
        out.append(tuple(values))
    return out


def _decimal(value: Any, table: str, column: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            pass
    raise UsageError(f"table {table!r}, column {column!r}: {value!r} is not an exact "
                     "decimal amount")
