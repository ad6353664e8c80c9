"""Evaluating a period's population: policies in plan order, team policies by group.

The flow is one way: records are checked (:mod:`incentives.records`), grouped
by period, and each period's population goes through the compiled policies in
plan order. A payee-scoped policy sees one payee at a time; a group-scoped one
sees every payee of its group (``population`` scope: everyone in the period),
with all earlier results. Records are ordered by (period, group, payee) first,
so results never depend on the order records arrive in.
"""

from __future__ import annotations

import decimal
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from .errors import (
    EvaluationError,
    IncentivesError,
    InfeasibleError,
    RecordError,
    StateError,
    TransactionError,
    UsageError,
    describe_exception,
    located_error,
)
from .inputs import DatedValue
from .kernel import EVAL_ERRORS, Kernel, compile_kernel
from .ledger import ADJUSTMENTS, State, pay_adjustments, period_key
from .money import CONTEXT, ZERO, whole
from .periods import parse_period, period_kind, shift_period
from .policies.base import Compiled
from .records import RecordReader, too_many_errors
from .runtime import (
    Credit,
    PayeeState,
    PeriodContext,
    Record,
    Transaction,
    TransactionBook,
    paused_gc,
)

if TYPE_CHECKING:
    from .measures import CompiledMeasures, CreditIndex
    from .plan import Plan
    from .results import PayeeResult, Run
    from .transactions import TransactionReader

__all__ = ["CompiledPlan", "Evaluation", "OutOfOrder", "error_order", "paused_gc", "record_rows"]

#: (period, payee) of a record or result; (group, payee) of a record with a group
_KEY = attrgetter("period", "payee")
_GROUP_PAYEE = attrgetter("group", "payee")
_PAYEE = attrgetter("payee")
#: the payees of a period evaluated at a time, in a run written as it is made (see
#: CompiledPlan.periods: ``parts``)
PART = 256


class CompiledPlan:
    """A plan whose formulas are checked and compiled; evaluates populations."""

    def __init__(self, plan: Plan, policies: list[Compiled], *, kernels: bool = True) -> None:
        """``kernels=False`` evaluates payee policies one by one through their ``apply``
        (the reference the kernels are tested against; slower)."""
        self.plan = plan
        self.policies = policies
        self.steps: list[tuple[Kernel | None, list[Compiled]]] = _steps(
            policies, plan.rounding, kernels)
        self.reader = RecordReader(plan.inputs)
        self._periods: dict[str, PeriodContext] = {}
        self.event_names = list(plan.inputs.events)
        #: the plan's measures (None when it has none)
        self.measures: CompiledMeasures | None = plan.compile_measures()
        #: reads the plan's transactions (None when it declares none)
        self.transaction_reader: TransactionReader | None = None
        if plan.transactions:  # (a plan without transactions imports none of their modules)
            from .transactions import TransactionReader

            self.transaction_reader = TransactionReader(plan.transactions,
                                                        currency=plan.currency)

    # ------------------------------------------------------------------
    def period(self, period: str) -> PeriodContext:
        """The shared context of ``period``: dates and parameter values in force."""
        ctx = self._periods.get(period)
        if ctx is None:
            start, end = parse_period(period)
            env: dict[str, Any] = {}
            for name, value in self.plan.parameters.items():
                if isinstance(value, DatedValue):
                    found = value.at(end)
                    if found is None:
                        first = min(value.values)
                        raise EvaluationError(
                            f"parameter {name!r} has no value before {first.isoformat()}",
                            period=period)
                    env[name] = found
                else:
                    env[name] = value
            env["period"] = period
            env["total"] = ZERO
            ctx = PeriodContext(period, start, end, env)
            env["period_days"] = decimal.Decimal(ctx.days)
            self._periods[period] = ctx
        return ctx

    def state_for(self, record: Record, period: PeriodContext) -> PayeeState:
        """A fresh evaluation state for ``record``."""
        return self.states_for([record], period)[0]

    def states_for(self, records: Iterable[Record], period: PeriodContext
                   ) -> list[PayeeState]:
        """A fresh evaluation state for each of ``records``, in order."""
        base = period.base_env
        counts = [(name, name + "_count") for name in self.event_names]
        states = []
        for r in records:
            env = {**base, **r.metrics, **r.attributes}
            if counts:
                events = r.events
                for name, key in counts:
                    env[key] = whole(len(events.get(name, ())))
            states.append(PayeeState(r, env))
        return states

    # ------------------------------------------------------------------
    def check(self, raw_records: Iterable[Any]) -> tuple[list[Record], list[IncentivesError]]:
        """Check raw records; duplicates of (period, payee) are all errors."""
        records: list[Record] = []
        errors: list[IncentivesError] = []
        if type(raw_records) is CheckedRecords:  # read by this plan's reader already
            records.extend(raw_records)
        else:
            self.reader.read_all(record_rows(raw_records), records, errors)
        if isinstance(raw_records, SourceRows):
            raw_records.locate(errors)
        keys = list(map(_KEY, records))
        if len(set(keys)) == len(keys):
            return records, errors
        counts = Counter(keys)
        dupes = {k for k, n in counts.items() if n > 1}
        if dupes:
            for period, payee in sorted(dupes):
                errors.append(RecordError(
                    f"{counts[(period, payee)]} records for the same payee and period; "
                    "none of them was evaluated", payee=payee, period=period, field="payee"))
            records = [r for r in records if r.key not in dupes]
        return records, errors

    def evaluate(
        self,
        raw_records: Any,
        *,
        errors: Literal["raise", "collect"] = "raise",
        state: Any = None,
        events: Mapping[str, Any] | None = None,
        transactions: Any = None,
        hierarchy: Any = None,
        tables: Mapping[str, Any] | None = None,
    ) -> Run:
        """Evaluate a population (see :meth:`incentives.Plan.evaluate`)."""
        raw_records = self.source_records(raw_records, events)
        with paused_gc():
            return self._evaluate(raw_records, errors=errors, state=state,
                                  transactions=transactions, hierarchy=hierarchy,
                                  tables=tables)

    def rows(self, value: Any, *, what: str = "records", expect: tuple[str, ...] = ("payee",),
             **options: Any) -> Iterable[Any]:
        """``value`` as raw rows: a source (a path or a database URL, see
        :mod:`incentives.sources`) is read, with the plan's way of reading floats;
        a DataFrame gives its rows; rows are returned as they are. ``options``: a
        text file's ``encoding``, ``delimiter``, ``max_bytes``."""
        if isinstance(value, (str, os.PathLike)):
            from .sources import read_rows

            return read_rows(value, floats=self.plan.reading.floats, what=what,
                             expect=expect, **options)
        return record_rows(value)

    def source_records(self, records: Any, events: Mapping[str, Any] | None = None,
                       **options: Any) -> Iterable[Any]:
        """The raw records of ``records`` (rows, a DataFrame, or a source: see
        :meth:`rows`) with the rows of the event tables ``events`` (event-list name
        to a source or rows) joined to them (see :func:`incentives.sources.join_events`).
        A workbook of records brings the event lists that have a sheet of their name."""
        declared = self.plan.inputs.events
        given = dict(events or {})
        for name in given:
            if name not in declared:
                raise UsageError(f"events {name!r}: the plan declares no such event list"
                                 + (f" (its event lists: {', '.join(declared)})" if declared
                                    else " (it declares none)"))
        if isinstance(records, (str, os.PathLike)) and declared:
            from .sources import excel_event_sheets

            missing = [n for n in declared if n not in given]
            given.update(excel_event_sheets(records, missing,
                                            max_bytes=options.get("max_bytes"))
                         if missing else {})
        rows = self.rows(records, **options)
        from .sources import join_events, source_label

        located = {"": source_label(records)} if _is_table(records) else {}
        if not given:
            return SourceRows(rows, located) if located else rows
        labels = {name: f"the event table {source_label(v)}" for name, v in given.items()
                  if isinstance(v, (str, os.PathLike))}
        located.update({name: source_label(v) for name, v in given.items() if _is_table(v)})
        tables = {name: self.rows(v, what=f"events {name}", **options)
                  for name, v in given.items()}
        return SourceRows(join_events(rows, tables, default_period=self.reader.default_period,
                                      labels=labels), located)

    def evaluate_part(self, raw_records: Iterable[Any], book: State) -> Run:
        """Evaluate part of a population (a team) against ``book``, changing it in place:
        its payees' ledgers are kept, but no period is closed (the caller closes each
        period with :meth:`State.close` once every part is done). Errors are collected.
        Used by :mod:`incentives.streaming`."""
        with paused_gc():
            return self._evaluate(raw_records, errors="collect", book=book)

    def evaluate_bucket(self, records: list[Record], book: State
                        ) -> tuple[list[PayeeResult], list[IncentivesError]]:
        """:meth:`evaluate_part` of records this plan's reader made, all of one period and
        no two of one payee (a stream's bucket, read once: see :mod:`incentives.streaming`):
        the results (by payee) and the errors (sorted) of its run, without the run."""
        if self.measures is not None or self.transaction_reader is not None:
            run = self.evaluate_part(CheckedRecords(records), book)
            return run.results, run.errors
        period = records[0].period
        problems: list[IncentivesError] = []
        with paused_gc():
            if book.closed:  # one period refused only after one closed (check_open)
                book.check_open((period,))
            made = self._one_period(period, records, book, None, True, "collect", problems)
        problems.sort(key=_error_key)
        return made or [], problems

    def _evaluate(
        self,
        raw_records: Iterable[Any],
        *,
        errors: Literal["raise", "collect"] = "raise",
        state: Any = None,
        book: State | None = None,
        transactions: Any = None,
        hierarchy: Any = None,
        tables: Mapping[str, Any] | None = None,
    ) -> Run:
        from .results import Run

        evaluation = self.periods(raw_records, errors=errors, state=state, book=book,
                                  transactions=transactions, hierarchy=hierarchy,
                                  tables=tables)
        results = [r for _, made in evaluation for r in made]
        results.sort(key=_KEY)
        return Run(plan=self.plan, results=results, errors=evaluation.errors,
                   state=evaluation.state)

    def periods(
        self,
        raw_records: Iterable[Any],
        *,
        errors: Literal["raise", "collect"] = "raise",
        state: Any = None,
        book: State | None = None,
        transactions: Any = None,
        hierarchy: Any = None,
        tables: Mapping[str, Any] | None = None,
        in_order: bool = False,
        parts: Literal["payee", "group"] | None = None,
    ) -> Evaluation:
        """An evaluation of ``raw_records`` period by period (see :class:`Evaluation`):
        iterating it evaluates the periods one at a time, in calendar order, and
        yields each one's results (in the order of the periods' names); then its ``errors`` and ``state`` are set.

        ``in_order=True`` (errors collected; no transactions): the records are read
        as they arrive and only the current period's are held, each period evaluated
        as soon as the next one starts. A record that arrives for a period already
        passed (or for one before the current one) raises :class:`OutOfOrder`; the
        caller then starts again without ``in_order`` (see ``incentives run``).

        ``parts`` (with ``in_order``): a period may be yielded in parts, one after
        another, each evaluated and made as the one before is used, when the plan
        allows: ``"payee"``, the parts together in payee order (a plan whose policies
        all see one payee at a time); ``"group"``, in the order of CSV rows (by group,
        then payee: each part whole groups; a plan with no policy that sees a whole
        period). A writer that drops each part (see :mod:`incentives.output`) then
        never holds a large period's results, which is faster too.
        """
        streams = in_order and book is None and errors == "collect" and \
            self.measures is None and self.transaction_reader is None and \
            transactions is None and hierarchy is None and not tables
        scopes = {p.scope for p in self.policies}
        if (parts == "payee" and not scopes <= {"payee"}) or \
                (parts == "group" and not scopes <= {"payee", "group"}):
            parts = None
        return Evaluation(self, raw_records, errors=errors, state=state, book=book,
                          transactions=transactions, hierarchy=hierarchy, tables=tables,
                          in_order=streams, parts=parts if streams else None)

    def _all_periods(self, evaluation: Evaluation) -> Iterator[tuple[str, list[PayeeResult]]]:
        """Every record read and checked first (the whole population held), then the
        periods evaluated one by one."""
        e = evaluation
        errors = e.mode
        records, problems = self.check(e.raw_records)
        e.raw_records = ()  # the rows are not needed again
        credited: Credited | None = None
        if self.measures is not None or self.transaction_reader is not None:
            credited = self.credit(records, e.transactions, e.hierarchy, e.tables)
            problems.extend(credited.errors)
        elif e.transactions is not None or e.hierarchy is not None:
            raise UsageError("the plan declares no transactions: declare their kinds, "
                             "crediting rules and measures (see docs/transactions.md)")
        if problems and errors == "raise":
            problems.sort(key=_error_key)
            raise problems[0]
        by_period: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_period[r.period].append(r)
        del records
        part = e.book is not None
        book = e.book if e.book is not None else self.opening_state(e.state)
        e.state = book
        book.check_open(by_period)
        # evaluated in calendar order (2026-Q3 before 2026-10), as the state closes
        # them, and given in the order of their names, as a Run sorts its results (the
        # two differ only when months, quarters or years are mixed: a period evaluated
        # early then waits for the ones named before it)
        shown = sorted(by_period)
        waiting: dict[str, list[PayeeResult] | None] = {}
        for period in sorted(by_period, key=period_key):
            waiting[period] = self._one_period(period, by_period.pop(period), book,
                                               credited, part, errors, problems)
            while shown and shown[0] in waiting:
                name = shown.pop(0)
                made = waiting.pop(name)
                if made is not None:
                    yield name, made
        # errors in a stable order, whatever the order records arrived in
        problems.sort(key=_error_key)
        e.errors = problems

    def _in_order(self, evaluation: Evaluation) -> Iterator[tuple[str, list[PayeeResult]]]:
        """The records read as they arrive, one period held at a time."""
        e = evaluation
        problems: list[IncentivesError] = []
        read_errors: list[IncentivesError] = []
        book = self.opening_state(e.state)
        e.state = book
        # the periods are checked against the state as it was opened, each as it comes
        # (as check_open checks them all at once: the same first refusal)
        opened = State(book.plan, book.plan_version, list(book.closed), {}, book.gaps)
        checked: list[str] = []
        # a period the state refuses is raised once every record is read (as when all
        # are read first: a file that is not records is said first)
        refused: list[StateError] = []
        read = self.reader.read
        limit = self.reader.max_errors
        passed: set[str] = set()
        current: str | None = None
        current_key: Any = None
        held: list[Record] = []
        for i, raw in enumerate(record_rows(e.raw_records)):
            if type(raw) is not dict and isinstance(raw, IncentivesError):
                read_errors.append(raw)
                if limit is not None and len(read_errors) > limit:
                    raise too_many_errors(limit)
                continue
            try:
                record = read(raw, i)
            except RecordError as exc:
                read_errors.append(exc)
                if limit is not None and len(read_errors) > limit:
                    raise too_many_errors(limit) from None
                continue
            period = record.period
            if period != current:
                key = period_key(period)
                if current is not None:
                    if period in passed or key <= current_key or period < current:
                        raise OutOfOrder(period)
                    passed.add(current)
                    for made in self._held_period(current, held, book, opened, checked,
                                                  problems, refused, e.parts):
                        yield current, made
                current, current_key, held = period, key, []
            held.append(record)
        if current is not None:
            last = self._held_period(current, held, book, opened, checked, problems,
                                     refused, e.parts)
            del held
            for made in last:
                yield current, made
        if refused:
            raise refused[0]
        if isinstance(e.raw_records, SourceRows):
            e.raw_records.locate(read_errors)
        problems.extend(read_errors)
        problems.sort(key=_error_key)
        e.errors = problems

    def _held_period(self, period: str, records: list[Record], book: State, opened: State,
                     checked: list[str], problems: list[IncentivesError],
                     refused: list[StateError], parts: Literal["payee", "group"] | None
                     ) -> Iterator[list[PayeeResult]]:
        """One period's records, read in order: its duplicates reported, the period
        checked against the state, evaluated and closed; its results, in ``parts``
        (see :meth:`periods`) or whole."""
        payees = [r.payee for r in records]
        if len(set(payees)) != len(payees):
            counts = Counter(payees)
            dupes = {p for p, n in counts.items() if n > 1}
            for payee in sorted(dupes):
                problems.append(RecordError(
                    f"{counts[payee]} records for the same payee and period; "
                    "none of them was evaluated", payee=payee, period=period, field="payee"))
            records = [r for r in records if r.payee not in dupes]
        if not records or refused:
            return
        checked.append(period)
        try:
            opened.check_open(checked)
        except StateError as exc:
            refused.append(exc)
            return
        if parts is None:
            made = self._one_period(period, records, book, None, False, "collect", problems)
            if made is not None:
                yield made
            return
        with decimal.localcontext(CONTEXT):
            try:
                pctx = self.period(period)
            except EvaluationError as exc:
                problems.append(exc)
                return
        yield from self._parts(pctx, records, book, problems, parts)
        book.close(period, self.plan)

    def _parts(self, pctx: PeriodContext, records: list[Record], book: State,
               problems: list[IncentivesError], by: Literal["payee", "group"]
               ) -> Iterator[list[PayeeResult]]:
        """A period's results in parts of about :data:`PART` payees, evaluated one
        after another (each recorded in ``book``, which the caller closes): by payee,
        or by group and payee, each part whole groups (see :meth:`periods`)."""
        records = sorted(records, key=_PAYEE) if by == "payee" else _by_group(records)
        n = len(records)
        start = 0
        while start < n:
            end = min(start + PART, n)
            if by == "group":  # to the end of the last part's group
                group = records[end - 1].group
                while end < n and records[end].group == group:
                    end += 1
            with decimal.localcontext(CONTEXT):
                states = self.evaluate_period(records[start:end], pctx, book)
                book.record(states)
            results = _results(states, "collect", problems)
            del states
            if by == "payee":  # evaluated by group and payee
                results.sort(key=_PAYEE)
            start = end
            if results:
                yield results

    def _one_period(self, period: str, records: list[Record], book: State,
                    credited: Credited | None, part: bool, errors: str,
                    problems: list[IncentivesError]) -> list[PayeeResult] | None:
        """Evaluate one period and close it in ``book`` (or record it, ``part``); its
        results by payee, or None when the period itself is wrong."""
        with decimal.localcontext(CONTEXT):
            try:
                pctx = self.period(period)
            except EvaluationError as exc:
                if errors == "raise":
                    raise
                problems.append(exc)
                return None
            states = self.evaluate_period(records, pctx, book, credited)
            if part:
                book.record(states)
            else:
                book.close_period(period, states, self.plan)
        results = _results(states, errors, problems)
        results.sort(key=_PAYEE)
        return results

    def opening_state(self, state: Any) -> State:
        """A copy of ``state`` (a :class:`~incentives.ledger.State` or its JSON data)
        checked against this plan; an empty state for ``None``."""
        if state is None:
            return State.empty(self.plan)
        if isinstance(state, Mapping):
            state = State.from_data(state)
        if not isinstance(state, State):
            raise StateError(f"state must be an incentives.ledger.State, not "
                             f"{type(state).__name__}")
        state.check_plan(self.plan)
        return state.copy()

    def evaluate_period(self, records: list[Record], pctx: PeriodContext,
                        book: State | None = None,
                        credited: Credited | None = None) -> list[PayeeState]:
        """Run every policy over one period's records; return the final states.

        With ``book``, each payee opens with its ledger from it (the caller closes
        the period with :meth:`State.close_period`). ``credited``: the run's
        transactions and credits (see :meth:`credit`), for the measures.
        """
        records = _by_group(records)
        states = self.states_for(records, pctx)
        if credited is not None:
            for s in states:
                s.book = credited.book
            credited.measures.fill(states, pctx, credited.index)
        elif self.measures is not None:
            self.measures.fill(states, pctx, None)
        if book is not None and book.payees:
            for s in states:
                book.open_payee(s)
        # a payee whose measures cannot be worked out is reported, and not evaluated
        live = states if self.measures is None else [s for s in states if s.error is None]
        # the groups of the payees still in, made again only when someone drops out
        partition: dict[str, list[tuple[str | None, list[PayeeState]]]] = {}
        for kernel, run in self.steps:
            if kernel is not None:
                # a run of payee policies written out as one function (incentives.kernel)
                for s in live:
                    kernel(s)
                if any(s.error is not None for s in live):
                    live = [s for s in live if s.error is None]
                    partition.clear()
                continue
            policy = run[0]
            failed = False
            if policy.scope == "payee":
                apply, when = policy.apply, policy.when
                for s in live:
                    try:
                        if when is None or when(s.env):
                            apply(s)
                        else:
                            policy.skip(s)
                    except IncentivesError as exc:
                        failed = True
                        s.error = located_error(exc, s.payee, pctx.period, policy.id)
                    except EVAL_ERRORS as exc:
                        failed = True
                        s.error = EvaluationError(describe_exception(exc), payee=s.payee,
                                                  period=pctx.period, policy=policy.id)
            else:
                groups = partition.get(policy.scope)
                if groups is None:
                    groups = partition[policy.scope] = _groups(live, policy.scope)
                for group, members in groups:
                    try:
                        policy.apply_group(members, group, pctx)
                    except (IncentivesError, *EVAL_ERRORS) as exc:
                        failed = True
                        # an InfeasibleError stays one (pools, balancing), for every member
                        kind = InfeasibleError if isinstance(exc, InfeasibleError) else \
                            EvaluationError
                        for s in members:
                            s.error = kind(
                                f"{describe_exception(exc)} (whole group {group!r} not evaluated)",
                                payee=s.payee, period=pctx.period, policy=policy.id,
                                group=group)
                    failed = failed or any(s.error is not None for s in members)
            if failed:
                live = [s for s in live if s.error is None]
                partition.clear()
        if book is not None and book.payees:
            for s in live:
                if ADJUSTMENTS in s.ledger:
                    pay_adjustments(s, self.plan.rounding)
        return states


    # ------------------------------------------------------------------
    def credit(self, records: list[Record], transactions: Any, hierarchy: Any,
               tables: Mapping[str, Any] | None) -> Credited:
        """Read, link and credit the run's transactions; index the credits for the
        measures. Every problem is collected (a bad transaction is not credited; the
        others are)."""
        from .crediting import AssignmentTable, Hierarchy, credit
        from .measures import CompiledMeasures, CreditIndex
        from .transactions import (
            TransactionInput,
            link_transactions,
            read_rows,
            read_transactions_file,
        )

        plan = self.plan
        errors: list[IncentivesError] = []
        tables = dict(tables or {})
        given: list[Transaction] = []
        if transactions is None and plan.transactions:
            raise UsageError(
                f"the plan pays from transactions ({', '.join(plan.transactions)}): give them "
                "(--transactions FILE on the command line, transactions=rows in Python; an "
                "empty list when there are none)")
        floats = plan.reading.floats
        if isinstance(transactions, (str, os.PathLike)):
            if self.transaction_reader is None:
                raise UsageError("the plan declares no transactions")
            transactions = TransactionInput(*read_transactions_file(
                self.transaction_reader, os.fspath(transactions), floats=floats))
        elif isinstance(transactions, Mapping):
            transactions = {kind: self.rows(rows, what=f"transactions {kind}", expect=("id",))
                            for kind, rows in transactions.items()}
        if isinstance(hierarchy, (str, os.PathLike)):
            hierarchy = list(self.rows(hierarchy, what="the hierarchy"))
        tables = {name: (list(self.rows(rows, what=f"table {name}", expect=("key",)))
                         if isinstance(rows, (str, os.PathLike)) else rows)
                  for name, rows in tables.items()}
        if isinstance(transactions, TransactionInput):
            given, bad = list(transactions.transactions), list(transactions.errors)
            errors.extend(bad)
        elif transactions is not None:
            if self.transaction_reader is None:
                raise UsageError("the plan declares no transactions")
            given, bad = read_rows(self.transaction_reader, transactions)
            errors.extend(bad)
        good, tbook, link_errors = link_transactions(given, plan.transactions)
        errors.extend(link_errors)
        good = self._payable(good, tbook, errors)
        tree = None
        if isinstance(hierarchy, Hierarchy):
            tree = hierarchy
        elif hierarchy is not None:
            tree, tree_errors = Hierarchy.from_rows(record_rows(hierarchy))
            errors.extend(tree_errors)
        assignment: dict[str, Any] = {}
        for rule in plan.crediting:
            name = getattr(rule, "table", None)
            if rule.type != "assignment" or name is None or name in assignment:
                continue
            rows = tables.pop(name, None)
            if rows is None:
                raise UsageError(f"crediting rule {rule.id!r} assigns by the table {name!r}: "
                                 f"give it (tables={{{name!r}: rows}}, or --table "
                                 f"{name}=FILE)")
            if isinstance(rows, AssignmentTable):
                assignment[name] = rows
            else:
                assignment[name], table_errors = AssignmentTable.from_rows(
                    name, record_rows(rows))
                errors.extend(table_errors)
        for name in tables:
            if name not in plan.tables:
                raise UsageError(f"unknown table {name!r}: the plan's tables are "
                                 f"{', '.join(sorted({*plan.tables, *assignment})) or 'none'}")
        if any(r.type == "roll_up" for r in plan.crediting) and tree is None and good:
            raise UsageError("the plan rolls credit up to managers: give the hierarchy "
                             "(hierarchy=rows, or --hierarchy FILE)")
        measures = self.measures if self.measures is not None else CompiledMeasures.empty()
        if tables:
            classes = {k: _classification(k, v) for k, v in tables.items()}
            measures = measures.with_tables(classes)
            tbook.tables = classes
        known = {r.payee for r in records}
        credits, credit_errors = credit(plan.crediting, good, tbook, hierarchy=tree,
                                        tables=assignment, known_payees=known)
        errors.extend(credit_errors)
        fields = measures.date_fields or ["date"]
        index = CreditIndex(credits, fields)
        errors.extend(self._unrostered(records, index, fields))
        return Credited(tbook, credits, index, measures, errors)

    def _payable(self, transactions: list[Transaction], book: TransactionBook,
                 errors: list[IncentivesError]) -> list[Transaction]:
        """The transactions the measures and policies can read; each other one is reported
        (a missing quantity that a measure sums, a product with no rate) and not
        credited, so that the payee's other transactions are still paid."""
        plan = self.plan
        needed = self.measures.needed_fields(plan.transactions) if self.measures else {}
        credited = {k for r in plan.crediting if r.type != "roll_up"
                    for k in (getattr(r, "kinds", None) or plan.transactions)}
        checks: list[tuple[frozenset[str], Any]] = []
        for p in self.policies:
            check = getattr(p, "transaction_problem", None)
            measure = plan.measures.get(getattr(p, "measure", ""))
            if check is not None and measure is not None and measure.events is None:
                checks.append((frozenset(measure.kinds or credited), check))
        if not needed and not checks:
            return transactions
        out = []
        for t in transactions:
            problem: tuple[str, str] | None = None
            for name in needed.get(t.kind, ()):
                if name not in t.fields:
                    problem = (name, f"missing {name}, which a measure adds up (a missing "
                                     "value is never read as zero)")
                    break
            for kinds, check in checks if problem is None else ():
                if t.kind in kinds:
                    problem = check(t, book)
                    if problem is not None:
                        break
            if problem is None:
                out.append(t)
            else:
                errors.append(TransactionError(problem[1], kind=t.kind, id=t.id,
                                               field=problem[0]))
        return out

    def _unrostered(self, records: list[Record], index: CreditIndex,
                    fields: list[str]) -> list[IncentivesError]:
        """A credit that counts in a period of the run for a payee with no record in it:
        reported (never silently dropped)."""
        keys = {(r.payee, r.period) for r in records}
        spans: list[tuple[Any, Any, str]] = []
        for period in _with_gaps({r.period for r in records}):
            try:
                ctx = self.period(period)
            except EvaluationError:
                continue
            spans.append((ctx.start, ctx.end, period))
        spans.sort()
        out: dict[tuple[str, str, str, str], IncentivesError] = {}
        for name in fields:
            for payee, _ in index.payees(name).items():
                for start, end, period in spans:
                    if (payee, period) in keys:
                        continue
                    for c in index.between(name, payee, start, end):
                        t = c.transaction
                        key = (t.kind, t.id, payee, period)
                        if key not in out:
                            out[key] = TransactionError(
                                f"credited to {payee!r} by rule {c.rule!r}, who has no record "
                                f"in {period}: this credit is not paid (add the payee to the "
                                "roster)", kind=t.kind, id=t.id, payee=payee, period=period)
        return [out[k] for k in sorted(out)]


def _with_gaps(periods: set[str]) -> set[str]:
    """``periods`` and those between them of the same kind (a month with no record at all
    inside a run of months is still a month of the run)."""
    out = set(periods)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for p in periods:
        try:
            by_kind[period_kind(p)].append(p)
        except ValueError:
            continue
    for found in by_kind.values():
        ordered = sorted(found, key=period_key)
        step, last = ordered[0], ordered[-1]
        for _ in range(10_000):  # a run spans at most this many periods of one kind
            if step == last:
                break
            step = shift_period(step, 1)
            out.add(step)
    return out


class OutOfOrder(Exception):
    """Records read in order (:meth:`CompiledPlan.periods` with ``in_order``) met a
    record of a period already passed: start again holding every record."""


class Evaluation:
    """A population evaluated period by period (see :meth:`CompiledPlan.periods`).

    Iterate it once: it yields ``(period, results)`` for each period evaluated, in the
    order of the periods' names (as a :class:`~incentives.results.Run` sorts its
    results; the periods are evaluated in calendar order), the results sorted by payee
    (or a period in parts: see :meth:`CompiledPlan.periods`); then :attr:`errors` holds every
    error, sorted as a :class:`~incentives.results.Run` lists them, and :attr:`state`
    the closing state.
    """

    def __init__(self, compiled: CompiledPlan, raw_records: Iterable[Any], *,
                 errors: Literal["raise", "collect"], state: Any, book: State | None,
                 transactions: Any, hierarchy: Any, tables: Mapping[str, Any] | None,
                 in_order: bool, parts: Literal["payee", "group"] | None = None) -> None:
        self.compiled = compiled
        self.raw_records = raw_records
        self.mode = errors
        self.state: Any = state
        self.book = book
        self.transactions = transactions
        self.hierarchy = hierarchy
        self.tables = tables
        self.in_order = in_order
        #: a period's results may come in parts, in this order (see CompiledPlan.periods)
        self.parts = parts
        #: every error, sorted (set once the iteration has ended)
        self.errors: list[IncentivesError] = []

    def __iter__(self) -> Iterator[tuple[str, list[PayeeResult]]]:
        if self.in_order:
            return self.compiled._in_order(self)
        return self.compiled._all_periods(self)


class Credited:
    """A run's transactions after crediting: the book, the credits, their index by payee
    and date, the measures that read them, and every problem found on the way."""

    __slots__ = ("book", "credits", "errors", "index", "measures")

    def __init__(self, book: TransactionBook, credits: list[Credit], index: CreditIndex,
                 measures: CompiledMeasures, errors: list[IncentivesError]) -> None:
        self.book = book
        self.credits = credits
        self.index = index
        self.measures = measures
        self.errors = errors


def _classification(name: str, value: Any) -> dict[str, str]:
    """A classification table given at evaluation: a mapping, or rows of key and value."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for row in record_rows(value):
        if not isinstance(row, Mapping) or "key" not in row or "value" not in row:
            raise UsageError(f"table {name!r}: each row has a key and a value")
        key, found = str(row["key"]).strip(), str(row["value"]).strip()
        if key in out and out[key] != found:
            raise UsageError(f"table {name!r}: key {key!r} is given twice ({out[key]!r} and "
                             f"{found!r}); a key has one value")
        out[key] = found
    return out


def _steps(policies: list[Compiled], rounding: Any, kernels: bool
           ) -> list[tuple[Kernel | None, list[Compiled]]]:
    """The plan as steps: each run of payee policies as one kernel, each team policy alone."""
    steps: list[tuple[Kernel | None, list[Compiled]]] = []
    run: list[Compiled] = []
    for policy in [*policies, None]:
        if policy is not None and policy.scope == "payee" and kernels:
            run.append(policy)
            if len(run) < KERNEL_POLICIES:
                continue
            policy = None  # a long run is cut into several kernels
        if run:
            steps.append((compile_kernel(run, rounding), run))
            run = []
        if policy is not None:
            steps.append((None, [policy]))
    return steps


#: the most policies one kernel holds (longer runs make several kernels, in order)
KERNEL_POLICIES = 200


def _is_table(value: Any) -> bool:
    """Whether ``value`` names a table of a database, a Parquet file or a workbook (whose
    rows' errors say where they come from; a text file's rows are located as they were)."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    from .sources import parse_source

    return parse_source(value).kind != "file"


class CheckedRecords(list):  # type: ignore[type-arg]
    """Records a plan's reader made (:class:`~incentives.runtime.Record`): evaluated
    without being read again (duplicates are still found). Used by
    :mod:`incentives.streaming`, which reads each record once."""


class SourceRows:
    """The raw records of a source, which know where they came from: ``located`` maps
    ``""`` to the records' table and an event list's name to its table."""

    __slots__ = ("located", "rows")

    def __init__(self, rows: Iterable[Any], located: dict[str, str]) -> None:
        self.rows = rows
        self.located = located

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)

    def locate(self, errors: Iterable[IncentivesError]) -> None:
        """Name the table of each record error (an event's, for an event's field)."""
        for e in errors:
            if not isinstance(e, RecordError):
                continue
            field = e.field or ""
            name = field[7:].split("[", 1)[0].split(".", 1)[0] if field.startswith(
                "events.") else ""
            where = self.located.get(name) or (self.located.get("") if not name else None)
            if where is not None:
                e.from_source(where)


def record_rows(raw_records: Iterable[Any]) -> Iterable[Any]:
    """The raw records as an iterable of mappings: a pandas DataFrame gives its rows
    (through :func:`incentives.dataframes.frame_rows`), anything else is returned as is."""
    to_dicts = getattr(raw_records, "to_dict", None)
    if to_dicts is not None and hasattr(raw_records, "columns"):
        from .dataframes import frame_rows

        return frame_rows(raw_records)
    return raw_records


def _by_group(records: list[Record]) -> list[Record]:
    """``records`` sorted by group (none first, as ``""``), then payee: the order a
    period is evaluated in, and CSV rows are written in."""
    if all(r.group is not None for r in records):
        return sorted(records, key=_GROUP_PAYEE)
    return sorted(records, key=lambda r: (r.group or "", r.payee))


def _results(states: list[PayeeState], errors: str, problems: list[IncentivesError]
             ) -> list[PayeeResult]:
    """The results of the states that succeeded, in their order; each failure raised
    (``errors="raise"``) or added to ``problems``."""
    from .results import PayeeResult

    results: list[PayeeResult] = []
    for s in states:
        if s.error is not None:
            if errors == "raise":
                raise s.error
            problems.append(s.error)  # type: ignore[arg-type]
        else:
            results.append(PayeeResult.from_state(s))
    return results


def _groups(states: list[PayeeState], scope: str) -> list[tuple[str | None, list[PayeeState]]]:
    if scope == "population":
        return [(None, states)]
    out: dict[str | None, list[PayeeState]] = {}
    for s in states:
        out.setdefault(s.record.group, []).append(s)
    return sorted(out.items(), key=lambda kv: kv[0] or "")


def error_order(e: BaseException) -> tuple[str, ...]:
    """The order errors are listed in, whatever the order of the input: by period,
    payee, field and message (then a transaction's kind and id)."""
    return _error_key(e)  # type: ignore[arg-type]


def _error_key(e: IncentivesError) -> tuple[str, ...]:
    facts = [getattr(e, name, None) for name in ("period", "payee", "field")]
    message = getattr(e, "message", None) or str(e)
    # a transaction's kind and id last: two transactions with the same problem are listed
    # in the same order whatever the order they arrived in
    more = [getattr(e, name, None) for name in ("kind", "id")]
    return (*(str(f) if f is not None else "" for f in facts), message,
            *(str(f) if f is not None else "" for f in more))
