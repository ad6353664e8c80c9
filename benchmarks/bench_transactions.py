"""Transactions to pay, as whole processes, against a hand-written program.

Run::

    python benchmarks/bench_transactions.py            # 1,000,000 transactions, 10,000 payees
    python benchmarks/bench_transactions.py --small    # 100,000 transactions, 1,000 payees

It writes, in a temporary folder and from a fixed seed, what a sales
organisation exports for a year (2026, twelve months):

- ``roster.jsonl``: one record per payee and month (payee, period, group), for
  reps (90%), their managers (9%, one group each) and the managers' directors
  (1%);
- ``hierarchy.csv``: who reports to whom (payee, manager, from, to); about 1% of
  the reps move to another manager during the year;
- ``transactions.jsonl``: invoices (about 85% with one seller, the rest split
  0.5/0.5 or 0.6/0.4 between two reps, half of those within one team) and about
  3% credit notes, each referring to an earlier invoice and naming no seller of
  its own;
- ``plan.yaml``: a direct crediting rule and a two-level roll-up to managers
  counted once per transaction; a per-transaction commission with marginal tiers
  running over year-to-date revenue (3% up to 100,000, 5% above); a manager's
  override of 1% of their team's revenue.

It then times, as whole processes and interleaved in the same run, the least
CPU time (user + system, from the operating system's accounting of the
finished child) of a few runs each of:

- ``incentives run PLAN roster.jsonl --transactions transactions.jsonl
  --hierarchy hierarchy.csv --format csv --out FILE``;
- ``handwritten_transactions.py roster.jsonl transactions.jsonl hierarchy.csv
  FILE``: a careful hand-written Decimal program for this one plan that writes
  the same CSV.

The two CSV files must be byte-identical; the script exits 1 otherwise. It
prints both whole-process times, the ratio and each process's peak memory.
``--keep DIR`` writes the files to ``DIR`` and keeps them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from bench_cli import timed  # one whole process timed the same way in every benchmark

HERE = Path(__file__).resolve().parent

YEAR = 2026
#: the plan, as its YAML text (the hand-written program has the same numbers written in)
PLAN = """\
name: bench-transactions
version: "1"
period: month
rounding: {quantum: 0.01, mode: half_up}
transactions:
  invoices:
    label: Invoices
    fields: {customer: text}
  credit_notes:
    label: Credit notes
    refers_to: invoices
    sign: negative
crediting:
  - {id: direct, type: direct, kinds: [invoices, credit_notes]}
  - {id: managers, type: roll_up, of: [direct], levels: 2, count: once}
measures:
  revenue: {kinds: [invoices, credit_notes], rules: [direct], sum: amount}
  team_revenue: {rules: [managers], sum: amount}
policies:
  - type: per_transaction
    id: commission
    label: Commission
    measure: revenue
    method: marginal
    tiers: [{from: 0, rate: 0.03}, {from: 100000, rate: 0.05}]
    running: year
  - {type: formula, id: override, label: Override, amount: team_revenue * 0.01}
"""


class Sizes(NamedTuple):
    """How much to generate: ``directors`` x (1 director, 9 managers, 90 reps)."""

    directors: int
    transactions: int

    @property
    def managers(self) -> int:
        return 9 * self.directors

    @property
    def reps(self) -> int:
        return 90 * self.directors

    @property
    def payees(self) -> int:
        return 100 * self.directors


FULL = Sizes(directors=100, transactions=1_000_000)
SMALL = Sizes(directors=10, transactions=100_000)


def rep_id(i: int) -> str:
    return f"r-{i:05d}"


def manager_id(i: int) -> str:
    return f"m-{i:04d}"


def director_id(i: int) -> str:
    return f"d-{i:03d}"


def money(cents: int) -> str:
    """Cents as a JSON number with two decimals (``-123.40``), written as text."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


class Move(NamedTuple):
    rep: str
    old: str
    new: str
    on: dt.date  # the first day under the new manager


def make_inputs(folder: Path, sizes: Sizes, *, seed: int = 17) -> dict[str, Path]:
    """Write the plan, roster, hierarchy and transactions for ``sizes`` into ``folder``.

    Deterministic: the same sizes and seed give the same bytes.
    """
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    reps = [rep_id(i) for i in range(sizes.reps)]
    managers = [manager_id(i) for i in range(sizes.managers)]
    directors = [director_id(i) for i in range(sizes.directors)]
    home = {rep: managers[i // 10] for i, rep in enumerate(reps)}
    boss = {m: directors[j // 9] for j, m in enumerate(managers)}

    # about 1% of reps move to another manager (in another team, maybe under another
    # director) on a day between April and September
    moves: dict[str, Move] = {}
    for rep in rnd.sample(reps, max(1, sizes.reps // 100)):
        new = rnd.choice([m for m in managers if m != home[rep]]) if len(managers) > 1 else home[rep]
        if new == home[rep]:
            continue
        on = dt.date(YEAR, 4, 1) + dt.timedelta(days=rnd.randrange(183))
        moves[rep] = Move(rep, home[rep], new, on)

    def manager_on(rep: str, day: dt.date) -> str:
        move = moves.get(rep)
        if move is not None and day >= move.on:
            return move.new
        return home[rep]

    team: dict[str, list[str]] = {m: [] for m in managers}
    for rep in reps:
        team[home[rep]].append(rep)

    paths = {name: folder / name for name in
             ("plan.yaml", "roster.jsonl", "hierarchy.csv", "transactions.jsonl")}
    paths["plan.yaml"].write_text(PLAN, encoding="utf-8")

    with paths["hierarchy.csv"].open("w", encoding="utf-8", newline="") as f:
        f.write("payee,manager,from,to\n")
        for rep in reps:
            move = moves.get(rep)
            if move is None:
                f.write(f"{rep},{home[rep]},,\n")
            else:
                f.write(f"{rep},{move.old},,{(move.on - dt.timedelta(days=1)).isoformat()}\n")
                f.write(f"{rep},{move.new},{move.on.isoformat()},\n")
        for m in managers:
            f.write(f"{m},{boss[m]},,\n")

    with paths["roster.jsonl"].open("w", encoding="utf-8") as f:
        for month in range(1, 13):
            period = f"{YEAR}-{month:02d}"
            first = dt.date(YEAR, month, 1)
            for rep in reps:
                f.write(json.dumps({"payee": rep, "period": period,
                                    "group": manager_on(rep, first)}) + "\n")
            for m in managers:
                f.write(json.dumps({"payee": m, "period": period, "group": m}) + "\n")
            for d in directors:
                f.write(json.dumps({"payee": d, "period": period, "group": d}) + "\n")

    with paths["transactions.jsonl"].open("w", encoding="utf-8") as f:
        for row in _transactions(rnd, sizes, reps, team, manager_on):
            f.write(row + "\n")
    return paths


def _transactions(rnd: random.Random, sizes: Sizes, reps: list[str],
                  team: dict[str, list[str]],
                  manager_on: Callable[[str, dt.date], str]) -> Iterator[str]:
    """The transaction rows, as JSON text, in date order (then id)."""
    credit_notes = round(sizes.transactions * 0.03)
    invoices = sizes.transactions - credit_notes
    start, last = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
    days = (last - start).days + 1
    low, high = math.log(10_000), math.log(2_000_000)  # 100.00 to 20,000.00, mostly small
    customers = sizes.reps * 5
    rows: list[tuple[str, str, str]] = []  # (date, id, the row as JSON)
    made: list[tuple[dt.date, int]] = []  # each invoice's date and cents
    for n in range(invoices):
        day = start + dt.timedelta(days=rnd.randrange(days))
        cents = int(math.exp(rnd.uniform(low, high)))
        rep = rnd.choice(reps)
        head = (f'{{"kind": "invoices", "id": "inv-{n:07d}", "date": "{day.isoformat()}", '
                f'"amount": {money(cents)}, "customer": "c-{rnd.randrange(customers):06d}", ')
        other = rep
        if rnd.random() < 0.15:  # split between two reps, half of the time within one team
            mates = [r for r in team[manager_on(rep, day)] if r != rep]
            other = rnd.choice(mates) if mates and rnd.random() < 0.5 else rnd.choice(reps)
        if other == rep:
            text = f'{head}"seller": "{rep}"}}'
        else:
            share = rnd.choice((5, 6))
            text = f'{head}"sellers": {{"{rep}": 0.{share}, "{other}": 0.{10 - share}}}}}'
        rows.append((day.isoformat(), f"inv-{n:07d}", text))
        made.append((day, cents))
    eligible = [i for i, (day, _) in enumerate(made) if day < last]
    chosen = sorted(rnd.sample(eligible, min(credit_notes, len(eligible))))
    for n, i in enumerate(chosen):  # at most one credit note an invoice, strictly after it
        day, cents = made[i]
        on = min(last, day + dt.timedelta(days=rnd.randint(1, 60)))
        back = cents if rnd.random() < 0.3 else max(1, cents * rnd.randint(5, 100) // 100)
        rows.append((on.isoformat(), f"cn-{n:06d}",
                     f'{{"kind": "credit_notes", "id": "cn-{n:06d}", "date": "{on.isoformat()}", '
                     f'"amount": {money(-back)}, "refers_to": "inv-{i:07d}"}}'))
    rows.sort()
    for _, _, text in rows:
        yield text


# ----------------------------------------------------------------------------- timing


def commands(paths: dict[str, Path], folder: Path) -> dict[str, list[str]]:
    files = [str(paths["roster.jsonl"]), str(paths["transactions.jsonl"]),
             str(paths["hierarchy.csv"])]
    return {
        "handwritten": [sys.executable, str(HERE / "handwritten_transactions.py"), *files,
                        str(folder / "hand.csv")],
        "run csv": [sys.executable, "-m", "incentives", "run", str(paths["plan.yaml"]),
                    files[0], "--transactions", files[1], "--hierarchy", files[2],
                    "--format", "csv", "--out", str(folder / "run.csv")],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="100,000 transactions and 1,000 payees (default 1,000,000 and 10,000)")
    parser.add_argument("--runs", type=int, default=None,
                        help="whole-process runs of each side (default 3, 1 at full size)")
    parser.add_argument("--keep", metavar="DIR", help="write the files to DIR and keep them")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    sizes = SMALL if args.small else FULL
    runs = args.runs if args.runs is not None else (3 if args.small else 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp)
        paths = make_inputs(folder, sizes, seed=args.seed)
        cmds = commands(paths, folder)
        best: dict[str, tuple[float, int]] = {}
        for _ in range(runs):
            for name, cmd in cmds.items():
                cpu, rss = timed(cmd)
                old = best.get(name, (float("inf"), 0))
                best[name] = (min(old[0], cpu), max(old[1], rss))
        hand = (folder / "hand.csv").read_bytes()
        ours = (folder / "run.csv").read_bytes()
        same = hand == ours
        rows = hand.count(b"\n") - 1
        if not same:
            print(first_difference(ours, hand))
    base = best["handwritten"][0]
    print(f"{sizes.transactions:,} transactions, {sizes.payees:,} payees ({sizes.reps:,} reps, "
          f"{sizes.managers:,} managers, {sizes.directors:,} directors) x 12 months "
          f"({rows:,} result rows); whole processes, the least CPU time of {runs} "
          f"run{'s' if runs > 1 else ''} each:")
    for name, (cpu, rss) in best.items():
        print(f"  {name:<12} {cpu:7.2f} s  {cpu / base:5.2f}x hand-written  "
              f"peak RSS {rss / 1024:,.0f} MB")
    print(f"agreement: run csv = hand-written byte for byte: {same}")
    print(f"ratio cli_transactions_vs_handwritten {best['run csv'][0] / base:.2f}")
    return 0 if same else 1


def first_difference(ours: bytes, theirs: bytes) -> str:
    """Where two CSV outputs first differ, line by line."""
    a, b = ours.decode().splitlines(), theirs.decode().splitlines()
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"first difference, line {i + 1}:\n  incentives:   {x}\n  hand-written: {y}"
    return f"lengths differ: incentives {len(a)} lines, hand-written {len(b)}"


if __name__ == "__main__":
    sys.exit(main())
