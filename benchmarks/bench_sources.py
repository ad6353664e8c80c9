"""Records streamed from a database table, against the same records in a JSONL file.

Run::

    python benchmarks/bench_sources.py                # 1,000,000 rows, and 100,000 to compare memory
    BENCH_QUICK=1 python benchmarks/bench_sources.py  # 6,000 rows and 600
    python benchmarks/bench_sources.py --runs 1 --keep DIR   # one run each, files kept in DIR

It writes, from a fixed seed, records for the bundled telecom plan
(``examples/telecom/plan.yaml``) with the generator of ``bench_cli.py``:
100,000 payees (in teams of 25) x 10 months = 1,000,000 records, about 30% of
them with one or two lost customers; and the same for 10,000 payees
(100,000 records). Each size goes, unchanged, to:

- ``records.jsonl``: one JSON object a line, the lost customers nested in the
  record (``"events": {"lost_customers": [...]}``);
- a DuckDB file ``records.duckdb`` holding two tables: ``records`` (payee,
  period, group, ``traffic_revenue DECIMAL(18,2)``, ``new_fax INTEGER``,
  ``new_ipvpn INTEGER``) and ``lost_customers`` (payee, period, id,
  ``monthly_value INTEGER``, reason, ``lost DATE``), loaded by DuckDB's own
  ``read_json`` from the JSONL file;
- when ``INCENTIVES_TEST_POSTGRES`` names a PostgreSQL server (a SQLAlchemy
  URL), the same two tables (``NUMERIC(18,2)``, ``INTEGER``, ``DATE``) in a
  schema of their own, loaded with ``COPY`` through psycopg and dropped at the end.

Loading is not timed. It then times, as whole processes and interleaved in the
same run, the least CPU time (user + system, from the operating system's
accounting of the finished child) of three runs each (one with
``BENCH_QUICK=1``), and prints each process's peak resident memory:

- ``incentives stream PLAN records.jsonl --format csv --out FILE``;
- ``incentives stream PLAN 'duckdb:///records.duckdb?table=records'
  --events 'lost_customers=duckdb:///records.duckdb?table=lost_customers'
  --format csv --out FILE``;
- the same with the PostgreSQL URL, when there is a server. The client
  process's CPU is what is timed; the server's own CPU (the backend running
  the query) is printed beside it when the server runs on this machine;
- at the smaller size only, ``incentives run`` on the DuckDB tables (the
  whole run held in memory), to show what streaming saves.

Every output must be byte-identical to the JSONL stream's; the script exits 1
otherwise. The last lines are ``ratio stream_duckdb_vs_jsonl`` (and
``stream_postgresql_vs_jsonl``): the database stream's CPU time divided by the
JSONL stream's at the larger size, and the peak memory of each stream at both
sizes (a stream's memory must not grow with the table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

# the telecom records, and one whole process timed as in every benchmark
from bench_cli import PLAN, make_records, timed

HERE = Path(__file__).resolve().parent
SEED = 5

#: the columns of the records in ``read_json``'s terms (the JSONL file as bench_cli writes it)
JSON_COLUMNS = {
    "payee": "VARCHAR", "period": "VARCHAR", "group": "VARCHAR",
    "metrics": "STRUCT(traffic_revenue VARCHAR, new_fax INTEGER, new_ipvpn INTEGER)",
    "events": "STRUCT(lost_customers STRUCT(id VARCHAR, monthly_value INTEGER, reason VARCHAR, "
              "lost VARCHAR)[])",
}
RECORDS_DDL = ('payee TEXT NOT NULL, period TEXT NOT NULL, "group" TEXT NOT NULL, '
               "traffic_revenue {decimal}(18, 2) NOT NULL, new_fax INTEGER NOT NULL, "
               "new_ipvpn INTEGER NOT NULL")
EVENTS_DDL = ("payee TEXT NOT NULL, period TEXT NOT NULL, id TEXT NOT NULL, "
              "monthly_value INTEGER NOT NULL, reason TEXT NOT NULL, lost DATE NOT NULL")


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


class Size(NamedTuple):
    payees: int
    months: int

    @property
    def rows(self) -> int:
        return self.payees * self.months


FULL = (Size(100_000, 10), Size(10_000, 10))
QUICK = (Size(2_000, 3), Size(200, 3))


# ----------------------------------------------------------------------------- the data


def load_duckdb(records: Path, db: Path) -> tuple[int, int]:
    """The JSONL records as two DuckDB tables in ``db``: ``records`` and ``lost_customers``.

    Read by DuckDB's ``read_json`` with the columns given (nothing inferred):
    ``traffic_revenue`` is read as the text the JSONL holds and cast to
    ``DECIMAL(18,2)``, exactly. Returns the rows of each table.
    """
    import duckdb

    source = "read_json($path, format = 'newline_delimited', columns = $columns)"
    params = {"path": str(records), "columns": JSON_COLUMNS}
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE TABLE records ({RECORDS_DDL.format(decimal='DECIMAL')})")
        con.execute(f"CREATE TABLE lost_customers ({EVENTS_DDL})")
        con.execute(
            "INSERT INTO records SELECT payee, period, \"group\", "
            "CAST(metrics.traffic_revenue AS DECIMAL(18, 2)), metrics.new_fax, metrics.new_ipvpn "
            f"FROM {source}", params)
        con.execute(
            "INSERT INTO lost_customers SELECT payee, period, e.id, e.monthly_value, e.reason, "
            "CAST(e.lost AS DATE) FROM (SELECT payee, period, "
            f"unnest(events.lost_customers) AS e FROM {source})", params)
        counts = tuple(con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
                       for name in ("records", "lost_customers"))
    finally:
        con.close()
    return counts[0], counts[1]


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg's connection string (the driver name dropped)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def table_url(url: str, table: str) -> str:
    """``url`` with ``table=`` added to its query string."""
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict({"table": table}).render_as_string(hide_password=False)


def load_postgres(url: str, schema: str, db: Path, folder: Path) -> tuple[int, int]:
    """The DuckDB tables in ``db`` copied to a new schema ``schema`` of the PostgreSQL
    server at ``url``: written to CSV by DuckDB, read by ``COPY ... FROM STDIN``."""
    import duckdb
    import psycopg
    from psycopg import sql

    con = duckdb.connect(str(db), read_only=True)
    try:
        for name in ("records", "lost_customers"):
            con.execute(f"COPY {name} TO '{folder / (name + '.csv')}' (HEADER, DELIMITER ',')")
    finally:
        con.close()
    counts = []
    with psycopg.connect(libpq_url(url)) as pg:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        pg.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for name, ddl in (("records", RECORDS_DDL.format(decimal="NUMERIC")),
                          ("lost_customers", EVENTS_DDL)):
            target = sql.Identifier(schema, name)
            pg.execute(sql.SQL("CREATE TABLE {} (" + ddl + ")").format(target))
            with pg.cursor() as cur:
                with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv, HEADER true)")
                              .format(target)) as copy, \
                        (folder / f"{name}.csv").open("rb") as f:
                    while block := f.read(1 << 20):
                        copy.write(block)
                cur.execute(sql.SQL("SELECT count(*) FROM {}").format(target))
                counts.append(cur.fetchone()[0])  # type: ignore[index]
            (folder / f"{name}.csv").unlink()
        pg.execute(sql.SQL("ANALYZE"))
    return counts[0], counts[1]


def drop_postgres(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(libpq_url(url)) as pg:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def postmaster(url: str) -> int | None:
    """The process id of the PostgreSQL server's postmaster when it runs on this
    machine and its accounting can be read (``/proc``), else None."""
    import psycopg

    try:
        with psycopg.connect(libpq_url(url)) as pg:  # read while the backend is alive
            backend = pg.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            parent = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        server_cpu(parent)
    except (OSError, ValueError, IndexError):
        return None
    return parent


def server_cpu(pid: int) -> float:
    """The CPU seconds of the finished children of ``pid`` (a postmaster's backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


# ----------------------------------------------------------------------------- timing


@dataclass
class Measured:
    cpu: float = float("inf")
    rss: int = 0  # KB
    server: float | None = None  # the database server's CPU, when it can be read
    runs: int = 0


@dataclass
class Case:
    size: Size
    folder: Path
    jsonl: Path
    db: Path
    lost: int = 0
    commands: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    best: dict[str, Measured] = field(default_factory=dict)


def prepare(size: Size, folder: Path, postgres: str | None, schema: str) -> dict[str, Any]:
    """Write the JSONL file and the tables for ``size`` into ``folder`` (and ``schema``
    of the PostgreSQL server ``postgres``). Returns the lost customers written, the
    source arguments of each ``stream`` command, and the server's process id when
    its accounting can be read.

    It runs in a child process of its own (``--prepare``): the peak resident size
    the operating system gives for a child counts its parent's peak (the child
    starts as a copy of it), so the timing process never imports a database driver.
    """
    folder.mkdir(parents=True, exist_ok=True)
    jsonl, db = folder / "records.jsonl", folder / "records.duckdb"
    make_records(jsonl, size.payees, size.months, seed=SEED)
    if db.exists():
        db.unlink()
    rows, lost_rows = load_duckdb(jsonl, db)
    if rows != size.rows:
        raise SystemExit(f"DuckDB holds {rows} records, expected {size.rows}")
    duck = f"duckdb:///{db}"
    sources: dict[str, list[str]] = {
        "stream jsonl": [str(jsonl)],
        "stream duckdb": [f"{duck}?table=records", "--events",
                          f"lost_customers={duck}?table=lost_customers"],
    }
    server = None
    if postgres is not None:
        rows, lost = load_postgres(postgres, schema, db, folder)
        if (rows, lost) != (size.rows, lost_rows):
            raise SystemExit(f"PostgreSQL holds {rows} records and {lost} lost customers, "
                             f"expected {size.rows} and {lost_rows}")
        sources["stream postgresql"] = [
            table_url(postgres, f"{schema}.records"), "--events",
            "lost_customers=" + table_url(postgres, f"{schema}.lost_customers")]
        server = postmaster(postgres)
    return {"lost": lost_rows, "sources": sources, "server": server}


def prepared(size: Size, folder: Path, postgres: str | None, schema: str) -> tuple[Case, int | None]:
    """:func:`prepare` in a child process; the case with its commands, and the server's pid."""
    out = subprocess.run(
        [sys.executable, __file__, "--prepare", str(folder), str(size.payees), str(size.months),
         schema], check=False, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit(f"writing the files and tables of {size.rows:,} records failed")
    made = json.loads(out.stdout)
    case = Case(size, folder, folder / "records.jsonl", folder / "records.duckdb", made["lost"])
    cli = [sys.executable, "-m", "incentives"]
    for name, args in made["sources"].items():
        case.outputs[name] = folder / f"{name.replace(' ', '-')}.csv"
        case.commands[name] = [*cli, "stream", str(PLAN), *args, "--format", "csv",
                               "--out", str(case.outputs[name])]
    return case, made["server"]


def add_run(case: Case) -> None:
    """``incentives run`` on the DuckDB tables: the whole run in memory."""
    stream = case.commands["stream duckdb"]
    case.outputs["run duckdb"] = case.folder / "run-duckdb.csv"
    case.commands["run duckdb"] = [*stream[:3], "run", *stream[4:-1],
                                   str(case.outputs["run duckdb"])]


def measure(cases: list[Case], runs: int, server: int | None) -> None:
    """Each command of each case ``runs`` times, interleaved; the least CPU, the largest RSS."""
    for _ in range(runs):
        for case in cases:
            for name, cmd in case.commands.items():
                before = server_cpu(server) if server is not None and "postgresql" in name else None
                try:
                    cpu, rss = timed(cmd)
                except SystemExit:  # the command line may hold a password: name the case only
                    raise SystemExit(f"{name} failed at {case.size.rows:,} rows") from None
                m = case.best.setdefault(name, Measured())
                m.cpu, m.rss, m.runs = min(m.cpu, cpu), max(m.rss, rss), m.runs + 1
                if before is not None and server is not None:
                    spent = server_cpu(server) - before
                    m.server = spent if m.server is None else min(m.server, spent)


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f} MB"


def report(cases: list[Case], runs: int) -> bool:
    """Print what was measured; True when every output equals the JSONL stream's."""
    agree = True
    for case in cases:
        size = case.size
        base = case.best["stream jsonl"].cpu
        print(f"{size.rows:,} records ({size.payees:,} payees x {size.months} months, "
              f"{case.lost:,} lost customers); whole processes, the least CPU time of {runs} "
              f"run{'s' if runs > 1 else ''} each:")
        expected = case.outputs["stream jsonl"].read_bytes()
        same = {}
        for name, m in case.best.items():
            note = ""
            if m.server is not None:
                note = f"  (+ {m.server:.2f} s in the PostgreSQL server)"
            print(f"  {name:<18} {m.cpu:7.2f} s  {m.cpu / base:5.2f}x jsonl  "
                  f"{size.rows / m.cpu:9,.0f} records/s  peak RSS {mb(m.rss)}{note}")
            if name != "stream jsonl":
                same[name] = case.outputs[name].read_bytes() == expected
        lines = expected.count(b"\n") - 1
        print(f"agreement ({lines:,} result rows): "
              + "; ".join(f"{name} = stream jsonl byte for byte: {ok}" for name, ok in same.items()))
        agree = agree and all(same.values())
    big, small = cases[0], cases[1]
    for name in big.best:
        if name in small.best:
            a, b = small.best[name].rss, big.best[name].rss
            print(f"peak RSS {name.replace(' ', '_')} {small.size.rows:,} records {mb(a)}; "
                  f"{big.size.rows:,} records {mb(b)} ({b / a:.2f}x for "
                  f"{big.size.rows // small.size.rows}x the records)")
    base = big.best["stream jsonl"].cpu
    for name, m in big.best.items():
        if name != "stream jsonl":
            print(f"ratio {name.replace(' ', '_')}_vs_jsonl {m.cpu / base:.2f}")
    return agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="whole-process runs of each command (default 3, 1 with BENCH_QUICK=1)")
    parser.add_argument("--keep", metavar="DIR", help="write the files to DIR and keep them")
    parser.add_argument("--prepare", nargs=4, metavar=("DIR", "PAYEES", "MONTHS", "SCHEMA"),
                        help=argparse.SUPPRESS)  # the child process that writes the data
    args = parser.parse_args(argv)
    postgres = os.environ.get("INCENTIVES_TEST_POSTGRES") or None
    if args.prepare:
        folder, payees, months, schema = args.prepare
        made = prepare(Size(int(payees), int(months)), Path(folder), postgres, schema)
        print(json.dumps(made))
        return 0
    sizes = QUICK if quick() else FULL
    runs = args.runs if args.runs is not None else (1 if quick() else 3)
    schema = f"bench_sources_{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix="bench-sources-")
    folder = Path(args.keep) if args.keep else Path(tmp)
    cases: list[Case] = []
    try:
        start = time.monotonic()
        server = None
        for i, size in enumerate(sizes):
            case, server = prepared(size, folder / f"{size.rows}", postgres, f"{schema}_{i}")
            cases.append(case)
        add_run(cases[1])
        print(f"(files and tables written in {time.monotonic() - start:.0f} s, not timed)",
              file=sys.stderr)
        measure(cases, runs, server)
        agree = report(cases, runs)
    finally:
        if postgres is not None:
            for i in range(len(sizes)):
                drop_postgres(postgres, f"{schema}_{i}")
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
