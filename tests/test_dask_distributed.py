"""incentives.dask under dask.distributed: a real LocalCluster of two worker processes.

The bag path, the frame path and the partitioned-write path (workers read their
partitions and write the parts themselves) give exactly what ``plan.evaluate``
gives in one process: the same JSON text per result, the same error records,
on the telecom example and on a plan with a contest, a bonus pool and event
lists. One cluster serves the whole module (starting one costs seconds).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

dd = pytest.importorskip("dask.dataframe")
db = pytest.importorskip("dask.bag")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
distributed = pytest.importorskip("distributed")

from incentives import load_plan  # noqa: E402
from incentives.dask import (  # noqa: E402
    MANIFEST,
    evaluate_bag,
    evaluate_frame,
    partitions,
    result_columns,
    run_partitioned,
    run_rows,
)
from incentives.errors import UsageError, error_dict  # noqa: E402

TELECOM = load_plan("examples/telecom/plan.yaml")

# the telecom plan's inputs, with team policies: a contest and a bonus pool per group
TEAM = load_plan("""
name: telecom-teams
inputs:
  metrics:
    traffic_revenue: {min: 0}
    new_fax: {default: 0, integer: true, min: 0}
    new_ipvpn: {default: 0, integer: true, min: 0}
  events:
    lost_customers:
      fields: {id: text, monthly_value: number, reason: text, lost: date}
policies:
  - type: tiered
    id: commission
    basis: traffic_revenue
    method: marginal
    tiers: [{from: 0, rate: 0.02}, {from: 30000, rate: 0.04}]
  - {type: rate_table, id: new_business, items: {new_fax: 60, new_ipvpn: 260}}
  - {type: value, id: variable_pay, value: commission + new_business}
  - type: churn_penalty
    id: churn
    events: lost_customers
    per_customer: 1.5 * monthly_value
    exempt_reasons: [closure]
    cap: 0.4 * variable_pay
  - {type: contest, id: contest, score: traffic_revenue, prizes: [900, 400], ties: share}
  - {type: bonus_pool, id: pool, pool: 5000, weight: variable_pay + 1}
""")

PERIODS = ("2026-01", "2026-02")


def make_records(payees: int, seed: int = 11) -> list[dict[str, Any]]:
    """Records as benchmarks/bench_cli.make_records makes them (nested, with event lists),
    a few groups, one bad record."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for period in PERIODS:
        for i in range(payees):
            rec: dict[str, Any] = {
                "payee": f"m-{i:04d}", "period": period, "group": f"g{i % 6}",
                "metrics": {"traffic_revenue": f"{rnd.randint(0, 12_000_000) / 100:.2f}",
                            "new_fax": rnd.randint(0, 3), "new_ipvpn": rnd.randint(0, 2)}}
            if rnd.random() < 0.3:
                rec["events"] = {"lost_customers": [
                    {"id": f"c-{i}-{k}", "monthly_value": str(rnd.randint(100, 3000)),
                     "reason": rnd.choice(["competitor", "closure", "price"]),
                     "lost": f"{period}-03"} for k in range(rnd.randint(1, 2))]}
            out.append(rec)
    out[7]["metrics"]["traffic_revenue"] = "lots"  # not evaluated; the others are paid
    return out


RECORDS = make_records(90)


def _key(rec: dict[str, Any]) -> tuple[str, str]:
    return rec["period"], rec["group"]


def write_parts(records: list[dict[str, Any]], folder: Path) -> Path:
    """JSON Lines parts, each holding whole (period, group)s: groups g0-g2 and g3-g5."""
    folder.mkdir()
    parts: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        half = "a" if rec["group"] in ("g0", "g1", "g2") else "b"
        parts.setdefault(f"{rec['period']}-{half}", []).append(rec)
    for name, recs in parts.items():
        (folder / f"part-{name}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return folder


def flat(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as flat rows (no event lists), as a table holds them."""
    return [{"payee": r["payee"], "period": r["period"], "group": r["group"], **r["metrics"]}
            for r in records]


def event_rows(records: list[dict[str, Any]], *, group: bool = False) -> list[dict[str, Any]]:
    """The event rows of ``records`` (with their record's group, to partition them by)."""
    return [{"payee": r["payee"], "period": r["period"],
             **({"group": r["group"]} if group else {}), **e}
            for r in records for e in r.get("events", {}).get("lost_customers", [])]


def write_dataset(rows: list[dict[str, Any]], root: Path) -> Path:
    """A Parquet dataset partitioned by period and group (hive folders)."""
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column not in ("new_fax", "new_ipvpn"):
            frame[column] = frame[column].astype(str)
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), root,
                        partition_cols=["period", "group"])
    return root


def expected_lines(plan: Any, records: Any, **kw: Any) -> tuple[list[str], list[str]]:
    run = plan.evaluate(records, errors="collect", **kw)
    return (sorted(r.to_json() for r in run.results),
            sorted(json.dumps(error_dict(e), ensure_ascii=False) for e in run.errors))


def read_lines(files: list[Path], suffix: str) -> list[str]:
    return sorted(line for f in files if f.name.endswith(suffix)
                  for line in f.read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


# ------------------------------------------------------------- the partitioned write


@pytest.mark.parametrize("plan", [TELECOM, TEAM], ids=["telecom", "team"])
def test_partitioned_jsonl_parts_identical_to_one_process(client: Any, tmp_path: Path,
                                                          plan: Any) -> None:
    source = write_parts(RECORDS, tmp_path / "records")
    done = run_partitioned(plan, source, tmp_path / "out", client=client)
    results, errors = expected_lines(plan, RECORDS)
    assert read_lines(done.files(), ".jsonl") == sorted(results + errors)
    assert read_lines(done.files(), ".errors.jsonl") == errors
    assert done.results == len(results) == 2 * 90 - 1
    # the failing record is an error record; every other record is paid
    assert [(e["payee"], e["period"]) for e in done.errors] == [("m-0007", "2026-01")]
    manifest = json.loads((tmp_path / "out" / MANIFEST).read_text(encoding="utf-8"))
    assert (manifest["results"], manifest["errors"]) == (179, 1)
    assert [p["partition"] for p in manifest["parts"]] == [
        "part-2026-01-a.jsonl", "part-2026-01-b.jsonl", "part-2026-02-a.jsonl",
        "part-2026-02-b.jsonl"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [MANIFEST, *(f.name for f in done.files())])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_partitioned_parquet_dataset_with_events_dataset(client: Any, tmp_path: Path) -> None:
    """Records and event rows as two Parquet datasets partitioned by period and group:
    each worker joins its partition's events; results are Parquet parts (decimal128)."""
    records = write_dataset(flat(RECORDS), tmp_path / "records")
    lost = write_dataset(event_rows(RECORDS, group=True), tmp_path / "lost")
    assert [p.name for p in partitions(records)][:2] == ["period=2026-01/group=g0",
                                                         "period=2026-01/group=g1"]
    done = run_partitioned(TEAM, records, tmp_path / "out", client=client,
                           events={"lost_customers": lost}, format="parquet")
    run = TEAM.evaluate(flat(RECORDS), events={"lost_customers": event_rows(RECORDS)},
                        errors="collect")
    # the same results as the nested records give in one process
    assert sorted(r.to_json() for r in run.results) == expected_lines(TEAM, RECORDS)[0]
    totals = [f for f in done.files() if f.name.count(".") == 1]
    got = sorted((row["period"], row["payee"], row["total"])
                 for f in totals for row in pq.read_table(f).to_pylist())
    assert got == sorted((r.period, r.payee, r.total) for r in run.results)
    assert all(isinstance(t, Decimal) for _, _, t in got)
    assert pq.read_schema(totals[0]).field("total").type == pa.decimal128(38, 2)
    lines = sorted((row["payee"], row["period"], row["policy"], row["amount"])
                   for f in done.files() if ".lines." in f.name
                   for row in pq.read_table(f).to_pylist())
    assert lines == sorted((r.payee, r.period, line.policy, line.amount)
                           for r in run.results for line in r.lines)
    assert len(done.errors) == 1


def test_partitioned_transactions_travel_with_their_partition(client: Any,
                                                             tmp_path: Path) -> None:
    """A plan paid from invoices: each period's roster and transactions are laid out
    alike, read and credited on the worker (the hierarchy read whole)."""
    example = Path("examples/transactions")
    plan = load_plan(example / "plan.yaml")
    for name, file in (("roster", "roster.jsonl"), ("invoices", "transactions.jsonl")):
        (tmp_path / name / "period=2026-05").mkdir(parents=True)
        (tmp_path / name / "period=2026-05" / file).write_bytes((example / file).read_bytes())
    done = run_partitioned(plan, tmp_path / "roster", tmp_path / "out", client=client,
                           partitioned_by=("period",), transactions=tmp_path / "invoices",
                           hierarchy=example / "hierarchy.csv")
    expected = expected_lines(plan, example / "roster.jsonl",
                              transactions=example / "transactions.jsonl",
                              hierarchy=example / "hierarchy.csv")
    assert read_lines(done.files(), ".jsonl") == sorted(expected[0] + expected[1])
    assert done.results == 8


def test_partitioned_one_process_without_client(tmp_path: Path) -> None:
    source = write_parts(RECORDS, tmp_path / "records")
    done = run_partitioned(TEAM, source, tmp_path / "out")
    results, errors = expected_lines(TEAM, RECORDS)
    assert read_lines(done.files(), ".jsonl") == sorted(results + errors)


def test_a_key_in_two_partitions_is_refused(client: Any, tmp_path: Path) -> None:
    source = write_parts(RECORDS, tmp_path / "records")
    stray = next(r for r in RECORDS if r["group"] == "g4" and r["period"] == "2026-02")
    extra = {**stray, "payee": "stray"}
    (source / "part-extra.jsonl").write_text(json.dumps(extra) + "\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        run_partitioned(TEAM, source, tmp_path / "out", client=client)
    assert str(caught.value) == (
        "the records are not partitioned by period/group: group 'g4' of period 2026-02 is in "
        "two partitions (part-2026-02-b.jsonl and part-extra.jsonl); repartition them so that "
        "each is whole in one partition")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records"]  # nothing written


@pytest.mark.parametrize("format", ["jsonl", "parquet"])
def test_a_payee_in_two_partitions_is_refused(client: Any, tmp_path: Path, format: str) -> None:
    """m-0000 is in team g0 (part a) and, again, in team g4 (part b) in 2026-02: one
    process would report both records as duplicates; evaluated apart, both would be
    paid, so the run is refused."""
    source = write_parts(RECORDS, tmp_path / "records")
    again = {**next(r for r in RECORDS if r["payee"] == "m-0000" and r["period"] == "2026-02"),
             "group": "g4"}
    with (source / "part-2026-02-b.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(again) + "\n")
    run = TEAM.evaluate([*RECORDS, again], errors="collect")
    assert [str(e) for e in run.errors if e.payee == "m-0000"] == [
        "payee 'm-0000' period 2026-02 field 'payee': 2 records for the same payee and period; "
        "none of them was evaluated"]
    with pytest.raises(UsageError) as caught:
        run_partitioned(TEAM, source, tmp_path / "out", client=client, format=format)
    assert str(caught.value) == (
        "payee 'm-0000' of period 2026-02 has records in two partitions "
        "(part-2026-02-a.jsonl and part-2026-02-b.jsonl: a payee in two teams of one "
        "period?); none was evaluated apart, nothing was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records"]


def test_an_unreadable_partition_is_one_clear_error(client: Any, tmp_path: Path) -> None:
    source = write_dataset(flat(RECORDS), tmp_path / "records")
    bad = source / "period=2026-02" / "group=g3"
    for f in bad.iterdir():
        f.write_bytes(b"not parquet at all")
    with pytest.raises(UsageError, match=r"^partition period=2026-02/group=g3: cannot read "
                                         r"records file .*: "):
        run_partitioned(TEAM, source, tmp_path / "out", client=client)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records"]  # nothing written


def test_partitioned_refusals(tmp_path: Path) -> None:
    source = write_parts(RECORDS, tmp_path / "records")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="must not exist or be empty"):
        run_partitioned(TEAM, source, tmp_path / "full")
    with pytest.raises(UsageError, match="partitioned_by"):
        run_partitioned(TEAM, source, tmp_path / "out", partitioned_by=("group",))
    population = load_plan("""
name: ranked
inputs: {metrics: {sales: {}}}
policies: [{type: contest, id: c, score: sales, prizes: [100], ties: share, across: population}]
""")
    with pytest.raises(UsageError, match=r"policy 'c' sees every payee of a period"):
        run_partitioned(population, source, tmp_path / "out")
    with pytest.raises(UsageError, match="no such folder"):
        run_partitioned(TEAM, tmp_path / "nowhere", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "records"]


# ------------------------------------------------------------------- the bag path


def _sorted_items(items: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(i, ensure_ascii=False, sort_keys=True) for i in items)


def _expected_items(plan: Any, records: list[dict[str, Any]]) -> list[str]:
    run = plan.evaluate(records, errors="collect")
    return _sorted_items([r.to_dict() for r in run.results]
                         + [{"error": error_dict(e)} for e in run.errors])


@pytest.mark.parametrize("plan", [TELECOM, TEAM], ids=["telecom", "team"])
def test_bag_of_partitioned_parts_identical(client: Any, tmp_path: Path, plan: Any) -> None:
    source = write_parts(RECORDS, tmp_path / "records")
    bag = db.read_text(str(source / "*.jsonl")).map(json.loads)
    assert bag.npartitions == 4
    got = client.compute(evaluate_bag(plan, bag, partitioned_by=("period", "group"))).result()
    assert _sorted_items(got) == _expected_items(plan, RECORDS)


def test_bag_shuffled_identical(client: Any) -> None:
    bag = db.from_sequence(RECORDS, npartitions=5)  # keys cut across partitions: shuffled
    got = client.compute(evaluate_bag(TEAM, bag)).result()
    assert _sorted_items(got) == _expected_items(TEAM, RECORDS)


def test_bag_key_in_two_partitions_is_refused(client: Any) -> None:
    bag = db.from_sequence(RECORDS, npartitions=5)
    with pytest.raises(UsageError, match=r"group 'g\d' of period 2026-0\d is in two "
                                         r"partitions \(partition \d and partition \d\)"):
        client.compute(evaluate_bag(TEAM, bag, partitioned_by=("period", "group"))).result()


# ----------------------------------------------------------------- the frame path


def _frame_expected(plan: Any, rows: list[dict[str, Any]], **kw: Any) -> list[dict[str, str]]:
    expected = run_rows(plan.evaluate(rows, errors="collect", **kw), result_columns(plan))
    return sorted(expected, key=lambda r: (r["period"], r["payee"], r["error"]))


def _frame_got(frame: Any) -> list[dict[str, str]]:
    rows = [{k: str(v) for k, v in row.items()} for row in frame.to_dict("records")]
    return sorted(rows, key=lambda r: (r["period"], r["payee"], r["error"]))


@pytest.mark.parametrize("plan", [TELECOM, TEAM], ids=["telecom", "team"])
def test_frame_of_partitioned_dataset_identical(client: Any, tmp_path: Path,
                                                plan: Any) -> None:
    rows = flat(RECORDS)
    root = write_dataset(rows, tmp_path / "records")
    frame = dd.read_parquet(root)
    assert frame.npartitions == 12
    result = evaluate_frame(plan, frame, partitioned_by=("period", "group"))
    got = _frame_got(client.compute(result).result())
    assert got == _frame_expected(plan, rows)
    assert sum(1 for r in got if r["error"]) == 1


def test_frame_with_event_lists_identical(client: Any) -> None:
    """Event lists travel in an ``events`` column of the frame (JSON text), with their
    record."""
    rows = [{**row, "events": json.dumps(rec.get("events", {}))} for row, rec in zip(flat(RECORDS), RECORDS,
                                                                        strict=True)]
    ordered = sorted(rows, key=_key)
    frame = dd.from_pandas(pd.DataFrame(ordered, dtype=object), npartitions=1)
    got = _frame_got(client.compute(
        evaluate_frame(TEAM, frame, partitioned_by=("period", "group"))).result())
    nested = [{**row, "events": rec.get("events", {})} for row, rec in zip(flat(RECORDS), RECORDS,
                                                                          strict=True)]
    assert got == _frame_expected(TEAM, nested)
    shuffled = dd.from_pandas(pd.DataFrame(rows, dtype=object), npartitions=3)
    assert _frame_got(client.compute(evaluate_frame(TEAM, shuffled)).result()) == got


def test_frame_key_in_two_partitions_is_refused(client: Any) -> None:
    frame = dd.from_pandas(pd.DataFrame(flat(RECORDS), dtype=object), npartitions=3)
    with pytest.raises(UsageError, match=r"is in two partitions \(partition \d and partition "):
        client.compute(evaluate_frame(TEAM, frame, partitioned_by=("period", "group"))
                       ).result()
