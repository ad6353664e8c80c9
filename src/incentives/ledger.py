"""State carried between periods: draws owed, penalties carried, commissions, deferrals.

A :class:`State` is what one period hands to the next. It belongs to one plan
(by name; the plan's version may change from period to period), knows which
periods are closed, and holds one small *ledger* per payee: a mapping from a
policy id to that policy's entry (a draw balance, a penalty carried forward,
the commissions earned per customer, the deferred bonuses not yet due).
Entries are plain JSON data, amounts as decimal strings, so the state is the
same object in memory and on disk.

>>> from incentives import Plan, Floor, FormulaLine
>>> plan = Plan(name="draw", inputs={"metrics": {"sales": {}}},
...             policies=[FormulaLine(id="commission", amount="sales * 0.1"),
...                       Floor(id="draw", amount=2500, recoverable=True)])
>>> may = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": 15000}}],
...                     state=State.empty(plan))
>>> may["a"].total, may.state.payees["a"]
(Decimal('2500.00'), {'draw': {'balance': '1000.00'}})
>>> june = plan.evaluate([{"payee": "a", "period": "2026-06", "metrics": {"sales": 30000}}],
...                      state=State.from_json(may.state.to_json()))
>>> june["a"].total, june.state.payees
(Decimal('2500.00'), {'a': {'draw': {'balance': '500.00'}}})

The document on disk (``incentives run ... --state FILE``)::

    {"format": "incentives.state", "format_version": 1,
     "plan": {"name": "draw", "version": "1"},
     "closed": [{"period": "2026-05", "plan_version": "1"}, ...],
     "payees": {"a": {"draw": {"balance": "500.00"}}}}

A state is refused (:class:`~incentives.errors.StateError`) when it is not
this format, is another plan's, is malformed, or when a run would evaluate a
period the state has already closed (re-run a period from the state that
opened it, or post a correction with :func:`correct`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import StateError
from .fileio import DEFAULT_WAIT  # how long a second run waits for the lock (seconds)
from .money import MAX_DIGITS, ZERO, amount_of, money_text, short
from .periods import parse_period, period_kind, shift_period, span_of

if TYPE_CHECKING:
    from .plan import Plan
    from .results import Run
    from .runtime import PayeeState

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "State",
    "VersionedPlan",
    "amount_of",
    "correct",
    "load_state_file",
    "lock_path",
    "locked_state",
    "save_state_file",
    "shift_period",
    "span_of",
]

FORMAT = "incentives.state"
FORMAT_VERSION = 1
#: The ledger key that holds corrections waiting to be paid (see :func:`correct`).
ADJUSTMENTS = "_adjustments"
_MAX_STATE_BYTES = 512 * 1024 * 1024


def _copy(value: Any) -> Any:
    """A deep copy of plain JSON data (faster than :func:`copy.deepcopy`)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _sorted(value: Any) -> Any:
    """A copy of plain JSON data with every mapping's keys sorted."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _period_end(period: str) -> dt.date:
    return parse_period(period)[1]


def _gap(before: str, period: str) -> bool:
    """Whether ``period`` starts later than the day after ``before`` ends."""
    return parse_period(period)[0] > _period_end(before) + dt.timedelta(days=1)


def _gap_message(before: str, period: str, closed: bool) -> str:
    which = "the last period closed in this state" if closed else "the period before it here"
    missing = ""
    if period_kind(before) == period_kind(period):
        first, last = shift_period(before, 1), shift_period(period, -1)
        missing = f" ({first} has not been run)" if first == last else \
            f" ({first} to {last} have not been run)"
    return (f"period {period} would leave a gap after {before}, {which}{missing}: periods "
            "close in order; run the missing period(s) first, or give --allow-gap if the gap "
            "is meant (it is recorded in the state)")


def period_key(period: str) -> tuple[bool, dt.date, str]:
    """Sort key: by end date; a malformed period sorts last (its records report it)."""
    try:
        return (True, _period_end(period), period)
    except ValueError:
        return (False, dt.date.max, period)


@dataclass
class State:
    """The state of one plan after its closed periods: one ledger per payee.

    ``payees`` maps a payee to its ledger: ``{policy_id: entry}``, plain JSON
    data with amounts as decimal strings. Payees with an empty ledger are left out.
    """

    plan: str
    plan_version: str | None = None
    closed: list[dict[str, str]] = field(default_factory=list)
    payees: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: How a gap between closed periods is treated (2026-07 right after 2026-05):
    #: ``"ignore"`` (the default in Python: a period may follow any earlier one),
    #: ``"refuse"`` (a :class:`StateError`, as ``incentives run --state`` does) or
    #: ``"allow"`` (``--allow-gap``: the period is closed with ``"gap_after"``
    #: naming the period before the gap). Not saved: each command says it.
    gaps: str = field(default="ignore", compare=False, repr=False)

    # ------------------------------------------------------------ build
    @classmethod
    def empty(cls, plan: Plan | str) -> State:
        """A state with nothing in it yet, for ``plan`` (a plan or its name)."""
        name = plan if isinstance(plan, str) else plan.name
        return cls(plan=name)

    def copy(self) -> State:
        """An independent copy (evaluation never changes the state it is given)."""
        return State(self.plan, self.plan_version, _copy(self.closed), _copy(self.payees),
                     self.gaps)

    @property
    def last_period(self) -> str | None:
        """The latest closed period, or ``None``."""
        return self.closed[-1]["period"] if self.closed else None

    @property
    def periods(self) -> list[str]:
        """The closed periods, oldest first."""
        return [c["period"] for c in self.closed]

    def ledger(self, payee: str) -> dict[str, Any]:
        """A copy of ``payee``'s ledger (empty if it has none)."""
        ledger: dict[str, Any] = _copy(self.payees.get(payee, {}))
        return ledger

    def balance(self, payee: str, policy: str, key: str = "balance") -> Decimal:
        """An amount in ``payee``'s entry for ``policy`` (zero when there is none).

        >>> s = State("p", payees={"a": {"draw": {"balance": "500.00"}}})
        >>> s.balance("a", "draw"), s.balance("b", "draw")
        (Decimal('500.00'), Decimal('0'))
        """
        entry = self.payees.get(payee, {}).get(policy)
        if not isinstance(entry, dict) or key not in entry:
            return ZERO
        return Decimal(entry[key])

    # ------------------------------------------------------------ checks used by the engine
    def check_plan(self, plan: Plan, *, source: str = "the state") -> None:
        """Refuse a state that belongs to another plan."""
        if self.plan != plan.name:
            raise StateError(
                f"{source}: belongs to plan {self.plan!r}, not {plan.name!r}; "
                "use the state file of this plan, or start without one")

    def check_open(self, periods: Iterable[str]) -> None:
        """Refuse to evaluate a period that is not after the last closed one; unless
        :attr:`gaps` is ``"ignore"``, refuse too a period that overlaps the one before it
        and (with ``"refuse"``) one that leaves a gap after it."""
        ordered = sorted({p for p in periods if period_key(p)[0]}, key=period_key)
        last = self.last_period
        if last is not None:
            last_end = _period_end(last)
            closed = set(self.periods)
            for p in ordered:
                if _period_end(p) > last_end:
                    continue
                if p in closed:
                    raise StateError(
                        f"period {p} is already closed in this state (last closed: {last}): "
                        "it was paid and is not paid twice; to change what was paid, post a "
                        "correction with 'incentives correct' (see docs/periods.md)")
                raise StateError(
                    f"period {p} comes before {last}, the last period closed in this state: "
                    "periods close in order; to change what was paid, post a correction "
                    "with 'incentives correct'")
        if self.gaps == "ignore":
            return
        before = last
        for p in ordered:
            if before is not None:
                start = parse_period(p)[0]
                if start <= _period_end(before):
                    raise StateError(f"period {p} overlaps period {before}: periods close "
                                     "one after another, each once")
                if self.gaps == "refuse" and _gap(before, p):
                    raise StateError(_gap_message(before, p, before == last))
            before = p

    def open_payee(self, s: PayeeState) -> None:
        """Give ``s`` its opening ledger (a copy)."""
        entry = self.payees.get(s.payee)
        if entry:
            s.ledger = _copy(entry)

    def close_period(self, period: str, states: Iterable[PayeeState], plan: Plan) -> None:
        """Record the closing ledgers of a period's successful payees and close it.

        A payee whose evaluation failed keeps its opening ledger.
        """
        self.record(states)
        self.close(period, plan)

    def record(self, states: Iterable[PayeeState]) -> None:
        """Keep the closing ledgers of successful payees (part of a period, when it is
        evaluated a team at a time; :meth:`close` closes it once every team is done)."""
        payees = self.payees
        for s in states:
            if s.error is not None:
                continue
            if s.ledger:
                payees[s.payee] = s.ledger
            elif payees:
                payees.pop(s.payee, None)

    def close(self, period: str, plan: Plan) -> None:
        """Mark ``period`` closed (by ``plan``'s version); with ``gaps="allow"``, a gap
        before it is recorded as ``"gap_after"``."""
        entry = {"period": period, "plan_version": plan.version}
        last = self.last_period
        if self.gaps == "allow" and last is not None and _gap(last, period):
            entry["gap_after"] = last
        self.closed.append(entry)
        self.plan_version = plan.version

    # ------------------------------------------------------------ JSON
    def to_data(self) -> dict[str, Any]:
        """The state as a JSON-ready document (payees sorted)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "plan": {"name": self.plan, "version": self.plan_version},
            "closed": _copy(self.closed),
            "payees": {k: _sorted(self.payees[k]) for k in sorted(self.payees)},
        }

    def to_json(self) -> str:
        """The state as JSON text; byte-identical for equal states."""
        return json.dumps(self.to_data(), ensure_ascii=False, indent=1) + "\n"

    @classmethod
    def from_data(cls, data: Any, *, source: str = "the state") -> State:
        """Read a state document, or raise :class:`StateError` saying what is wrong."""
        def bad(message: str) -> StateError:
            return StateError(f"{source}: {message}")

        if not isinstance(data, dict):
            raise bad("not a state document (expected a JSON object)")
        if data.get("format") != FORMAT:
            raise bad(f"not an incentives state document (format is {data.get('format')!r}, "
                      f"expected {FORMAT!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise bad(f"state format version {version!r} is not supported "
                      f"(this library reads version {FORMAT_VERSION})")
        unknown = set(data) - {"format", "format_version", "plan", "closed", "payees"}
        if unknown:
            raise bad(f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
        plan = data.get("plan")
        if (not isinstance(plan, dict) or not isinstance(plan.get("name"), str)
                or not isinstance(plan.get("version"), (str, type(None)))):
            raise bad("'plan' must be {\"name\": text, \"version\": text or null}")
        closed = data.get("closed")
        if not isinstance(closed, list):
            raise bad("'closed' must be a list of closed periods")
        ends: list[dt.date] = []
        for i, c in enumerate(closed):
            if (not isinstance(c, dict) or set(c) - {"gap_after"} != {"period", "plan_version"}
                    or not isinstance(c["period"], str)
                    or not isinstance(c["plan_version"], (str, type(None)))):
                raise bad(f"closed[{i}] must be {{\"period\": ..., \"plan_version\": ...}} "
                          "(and \"gap_after\" after an allowed gap)")
            try:
                period_kind(c["period"])
                ends.append(_period_end(c["period"]))
            except ValueError as exc:
                raise bad(f"closed[{i}]: {exc}") from None
            if "gap_after" in c and (i == 0 or c["gap_after"] != closed[i - 1].get("period")):
                raise bad(f"closed[{i}]: 'gap_after' must name the period closed before it")
        if ends != sorted(ends) or len(set(ends)) != len(ends):
            raise bad("'closed' periods are not in order")
        payees = data.get("payees")
        if not isinstance(payees, dict):
            raise bad("'payees' must be an object of payee -> ledger")
        for payee, ledger in payees.items():
            if not isinstance(ledger, dict):
                raise bad(f"payees[{payee!r}] must be an object of policy id -> entry")
            _check_plain(ledger, f"payees[{payee!r}]", bad)
        return cls(plan["name"], plan.get("version"), _copy(closed), _copy(payees))

    @classmethod
    def from_json(cls, text: str, *, source: str = "the state") -> State:
        """Read a state from JSON text (see :meth:`from_data`)."""
        try:
            data = json.loads(text, parse_float=_no_float, parse_int=_small_int,
                              parse_constant=_no_constant,
                              object_pairs_hook=_no_duplicates)
        except StateError as exc:
            raise StateError(f"{source}: {exc}") from None
        except (json.JSONDecodeError, RecursionError) as exc:
            raise StateError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_data(data, source=source)


def _no_float(text: str) -> Any:
    raise StateError(f"amounts are decimal strings in a state file, not JSON numbers ({text})")


def _small_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise StateError(f"the whole number {short(text)} is too large for a state file "
                         f"(at most {MAX_DIGITS} digits)")
    return int(text)


def _no_constant(text: str) -> Any:
    raise StateError(f"{text} is not allowed in a state file")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise StateError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _check_plain(value: Any, where: str, bad: Any, depth: int = 0) -> None:
    if depth > 20:
        raise bad(f"{where}: nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(v, f"{where}.{k}", bad, depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]", bad, depth + 1)
    elif not isinstance(value, (str, int, bool, type(None))):
        raise bad(f"{where}: {type(value).__name__} is not allowed")


def check_entries(state: State, plan: Plan, *, source: str = "the state") -> None:
    """Let each stateful policy of ``plan`` check its entries; :class:`StateError` if wrong."""
    checkers = {p.id: p for p in plan.compile().policies if hasattr(p, "check_entry")}
    for payee, ledger in state.payees.items():
        for pid, entry in ledger.items():
            try:
                if pid == ADJUSTMENTS:
                    _check_adjustments(entry)
                elif pid in checkers:
                    checkers[pid].check_entry(entry)
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                raise StateError(
                    f"{source}: the entry of payee {payee!r}, policy {pid!r}, is malformed: "
                    f"{exc}") from None


# ---------------------------------------------------------------------- files


def load_state_file(path: str | os.PathLike[str], plan: Plan) -> State:
    """The state in ``path`` for ``plan``; an empty state when the file does not exist.

    Raises :class:`StateError` for a file that is unreadable, malformed, another
    format, or another plan's.
    """
    p = Path(path)
    if not p.exists():
        return State.empty(plan)
    from .fileio import read_bytes_capped

    def too_large(message: str) -> StateError:
        return StateError(f"{path}: {message}")

    try:  # a device or an endless FIFO is cut off at the limit too
        text = read_bytes_capped(p, _MAX_STATE_BYTES, "the state file",
                                 error=too_large).decode("utf-8")
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StateError(f"{path}: the state file is not UTF-8 text") from None
    state = State.from_json(text, source=str(path))
    state.check_plan(plan, source=str(path))
    check_entries(state, plan, source=str(path))
    return state


def save_state_file(state: State, path: str | os.PathLike[str]) -> None:
    """Write ``state`` to ``path`` atomically (the old file stays whole until then).

    A read-only state file (or one in a missing folder, a folder, a device) is refused
    with a :class:`~incentives.UsageError`, as ``--state`` is: never replaced behind
    its owner's back.
    """
    from .fileio import atomic_write, check_output

    if not isinstance(state, State):
        raise StateError(f"not a state: {type(state).__name__}")
    check_output(path, "state file")
    # a link: the file it points to is replaced (and the link stays), as with --state
    atomic_write(_resolved(path), state.to_json())


def _resolved(path: str | os.PathLike[str]) -> str:
    """``path``, or the file it points to when it is a symbolic link."""
    text = os.fspath(path)
    return os.path.realpath(text) if os.path.islink(text) else text


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of the state file ``path``: ``path`` + ``.lock``, next to it (next
    to the file it points to when ``path`` is a symbolic link, so that every name of a
    state takes one lock, as ``--state`` does)."""
    return Path(f"{_resolved(path)}.lock")


@contextlib.contextmanager
def locked_state(path: str | os.PathLike[str], *, wait: float = DEFAULT_WAIT) -> Iterator[None]:
    """Hold the lock of the state file ``path`` while the ``with`` block runs.

    One writer per state: ``incentives run``, ``stream`` and ``correct`` hold it
    from reading the state to replacing it, so two runs on one state file take
    turns. A second run waits up to ``wait`` seconds for the lock, then raises
    :class:`StateError`. The lock is the operating system's (``filelock``, on
    the sidecar file ``STATE.lock``): the system releases it when its holder
    ends, however it ends, so a killed run never leaves a stale lock.
    """
    from filelock import FileLock, Timeout

    where = lock_path(path)
    lock = FileLock(os.fspath(where), timeout=max(wait, 0.0))
    try:
        lock.acquire()
    except Timeout:
        raise StateError(
            f"{path}: the state file is in use by another run (it holds {where}); waited "
            f"{wait:g} s. Run again once it has finished, or give --wait SECONDS to wait "
            "longer") from None
    except OSError as exc:
        raise StateError(f"{path}: cannot lock the state file ({where}): "
                         f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


# ---------------------------------------------------------------------- adjustments
@functools.lru_cache(maxsize=1)
def _policy_id() -> re.Pattern[str]:
    """What a policy id is (see incentives.policies.base.Identifier): compiled when a
    state is first read, not at every start-up (its classes take ms to compile)."""
    return re.compile(r"[A-Za-z\u00C0-\uFFFF][A-Za-z0-9_\u00C0-\uFFFF]{0,63}")


def _check_adjustments(entry: Any) -> None:
    """Corrections waiting to be paid: each of a period, a policy id (of this plan or an
    earlier version of it) and an amount; their text goes onto statements, so nothing
    else gets through."""
    if not isinstance(entry, list):
        raise ValueError("adjustments must be a list")
    for item in entry:
        if not isinstance(item, dict) or not {"period", "policy", "amount"} <= set(item):
            raise ValueError("an adjustment has period, policy and amount")
        period, policy = item["period"], item["policy"]
        try:
            if not isinstance(period, str) or not period.isprintable():
                raise ValueError
            parse_period(period)
        except ValueError:
            raise ValueError(f"an adjustment's period {short(repr(period))} is not a period "
                             "(YYYY-MM, YYYY-Qn or YYYY)") from None
        if (not isinstance(policy, str) or not _policy_id().fullmatch(policy)
                or not policy.isprintable()):
            raise ValueError(f"an adjustment's policy {short(repr(policy))} is not a policy id")
        amount_of(item, "amount")


def pay_adjustments(s: PayeeState, rounding: Any) -> None:
    """Add the corrections waiting in ``s``'s ledger as ``adjustment`` lines."""
    pending = s.ledger.pop(ADJUSTMENTS, None)
    if not pending:
        return
    for item in pending:
        amount = rounding.round(Decimal(item["amount"]))
        s.add_line("adjustment", f"Adjustment for {item['period']} ({item['policy']})",
                   amount, "adjustment",
                   {"period": item["period"], "policy": item["policy"],
                    "paid": item.get("paid"), "corrected": item.get("corrected")})


def _paid_lines(paid: Run | Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Decimal]]:
    out: dict[tuple[str, str], dict[str, Decimal]] = {}
    if isinstance(paid, Mapping):
        for r in paid.get("results", []):
            per = out.setdefault((r["period"], r["payee"]), {})
            for li in r["lines"]:
                per[li["id"]] = per.get(li["id"], ZERO) + Decimal(li["amount"])
        return out
    for res in paid.results:
        per = out.setdefault((res.period, res.payee), {})
        for line in res.lines:
            per[line.policy] = per.get(line.policy, ZERO) + line.amount
    return out


def correct(
    plan: Plan,
    records: Iterable[Any],
    *,
    paid: Run | Mapping[str, Any],
    opening: State,
    state: State,
) -> State:
    """Post a correction of closed period(s) into ``state``, to be paid in the next run.

    ``records`` are the corrected records of periods that ``state`` has closed;
    ``paid`` is the run (or its JSON data) that was paid for them, and
    ``opening`` the state those periods were opened with. The periods are
    evaluated again from ``opening``; for each payee and policy, the difference
    between the corrected and the paid amount waits in ``state`` and becomes an
    ``adjustment`` line in that payee's next evaluated period. What was paid is
    never rewritten. Returns the new state (``state`` itself is not changed).

    Ledger balances (a draw owed, a penalty carried) are not re-derived: the
    correction moves pay, not balances.

    An adjustment already waiting in ``state`` for the same payee, period and
    policy counts as paid: the same correction posted twice (a retried command)
    adds nothing the second time.
    """
    again = plan.evaluate(records, state=opening.copy())
    closed = set(state.periods)
    before = _paid_lines(paid)
    new = state.copy()
    for res in again.results:
        if res.period not in closed:
            raise StateError(f"period {res.period} is not closed in the state; "
                             "run it normally instead of correcting it")
        old = dict(before.get((res.period, res.payee), {}))
        waiting = new.payees.get(res.payee, {}).get(ADJUSTMENTS, [])
        for item in waiting if isinstance(waiting, list) else []:
            if item.get("period") == res.period:
                pid = item.get("policy")
                old[pid] = old.get(pid, ZERO) + Decimal(item["amount"])
        now: dict[str, Decimal] = {}
        for line in res.lines:
            now[line.policy] = now.get(line.policy, ZERO) + line.amount
        for pid in [*now, *(k for k in old if k not in now)]:
            diff = now.get(pid, ZERO) - old.get(pid, ZERO)
            if diff:
                ledger = new.payees.setdefault(res.payee, {})
                ledger.setdefault(ADJUSTMENTS, []).append({
                    "period": res.period, "policy": pid, "amount": money_text(diff),
                    "paid": money_text(old.get(pid, ZERO)),
                    "corrected": money_text(now.get(pid, ZERO))})
    return new


# ---------------------------------------------------------------------- plan versions


class VersionedPlan:
    """Several versions of one plan; each period is evaluated with the version in force.

    A version is in force from its ``effective_from`` date (the first version may
    have none) until the next version's. Every version must have the same name:
    the state belongs to the plan, whatever its version.

    >>> from incentives import Plan, FormulaLine
    >>> v1 = Plan(name="p", version="1", inputs={"metrics": {"sales": {}}},
    ...           policies=[FormulaLine(id="c", amount="sales * 0.02")])
    >>> v2 = v1.replace_fields(version="2", effective_from="2026-07-01",
    ...                        policies=[FormulaLine(id="c", amount="sales * 0.03")])
    >>> run = VersionedPlan([v1, v2]).evaluate(
    ...     [{"payee": "a", "period": p, "metrics": {"sales": 1000}} for p in ("2026-06", "2026-07")])
    >>> [(r.period, r.total) for r in run]
    [('2026-06', Decimal('20.00')), ('2026-07', Decimal('30.00'))]
    >>> run.state.closed
    [{'period': '2026-06', 'plan_version': '1'}, {'period': '2026-07', 'plan_version': '2'}]
    """

    def __init__(self, versions: Iterable[Plan]) -> None:
        plans = list(versions)
        if not plans:
            raise ValueError("no plan versions given")
        names = {p.name for p in plans}
        if len(names) != 1:
            raise ValueError(f"plan versions must share one name, not {sorted(names)}")
        starts = [p.effective_from or dt.date.min for p in plans]
        if len(set(starts)) != len(starts):
            raise ValueError("two plan versions take effect on the same date")
        self.versions = [p for _, p in sorted(zip(starts, plans, strict=True),
                                              key=lambda t: t[0])]
        self.name = plans[0].name

    def at(self, period: str) -> Plan:
        """The version in force for ``period`` (on its first day)."""
        start, _ = parse_period(period)
        found = None
        for p in self.versions:
            if (p.effective_from or dt.date.min) <= start:
                found = p
        if found is None:
            first = self.versions[0].effective_from
            raise StateError(f"no version of plan {self.name!r} is in force in {period} "
                             f"(the first takes effect on {first})")
        return found

    def evaluate(self, records: Iterable[Any], *, state: State | None = None,
                 errors: Any = "raise") -> Run:
        """Evaluate records of any periods, each period with its version, carrying state."""
        from .results import Run

        by_period: dict[str, list[Any]] = {}
        for raw in records:
            period = raw.get("period") if isinstance(raw, Mapping) else getattr(
                raw, "period", None)
            by_period.setdefault(str(period), []).append(raw)
        current = state.copy() if state is not None else State.empty(self.name)
        results = []
        problems = []
        last: Plan = self.versions[-1]
        for period in sorted(by_period, key=period_key):
            last = self.at(period) if period_key(period)[0] else self.versions[-1]
            run = last.evaluate(by_period[period], state=current, errors=errors)
            results.extend(run.results)
            problems.extend(run.errors)
            current = run.state
        return Run(plan=last, results=results, errors=problems, state=current)
