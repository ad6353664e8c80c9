"""Case files: pay cases written as YAML, in the style of OpenFisca's tests.

A case file (``*.cases.yaml``) holds one case or a list of them::

    - name: E1 telecom key-account managers
      plan: ../../examples/telecom/plan.yaml   # relative to this file
      period: 2026-05                          # for records that name none
      parameters: {floor_amount: 700}          # optional overrides
      absolute_error_margin: 0                 # optional, default 0
      input:                                   # records: a list, or payee -> record
        X: {metrics: {traffic_revenue: 50000, new_fax: 3}}
        Y: {metrics: {traffic_revenue: 10000}}
      output:                                  # expected, per payee
        X: {total: 948.00, commission: 1400.00, new_business: 180.00}
        Y: {total: 700.00, floor: 500.00}

Expected keys per payee: ``total``; any policy id (the sum of that policy's
lines); ``values`` (named results, e.g. ``{variable_pay: 1580.00}``);
``titles`` and ``flags`` (lists, in order); ``error`` (text the payee's error
must contain, for a record that must fail). Amounts are exact unless
``absolute_error_margin`` says otherwise. With records in several periods,
``output`` is a list of entries that name ``payee`` and ``period``. A case
may carry an opening ``state`` (the ledger, as its JSON data).

``incentives test CASES...`` runs case files (or folders of them); the pytest
plugin (registered as ``incentives`` under ``pytest11``) collects every
``*.cases.yaml`` file it meets.

>>> cases = load_cases("tests/cases/e9_proration.cases.yaml")
>>> result = run_case(cases[0])
>>> result.ok, cases[0].name
(True, 'E9 proration: contract base pay for 20 of 31 days')
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import IncentivesError, PlanError, UsageError, did_you_mean

# (money and yamlio, which import pydantic and PyYAML, are imported by the functions
# that read a case: registering the subcommand for ``incentives --help`` needs neither)

if TYPE_CHECKING:
    from ..plan import Plan
    from ..results import PayeeResult, Run
    from ..yamlio import LineMap

__all__ = ["SUFFIX", "Case", "CaseResult", "Mismatch", "find_case_files", "load_cases",
           "register", "run_case"]

#: The ending of a case file's name.
SUFFIX = ".cases.yaml"

_CASE_KEYS = ("name", "plan", "period", "parameters", "absolute_error_margin", "input",
              "output", "state", "description")
_RESERVED = ("total", "values", "titles", "flags", "error")


@dataclass
class Case:
    """One case: a plan, records, and what each payee must be paid."""

    name: str
    file: str
    line: int | None
    plan: Path
    input: list[dict[str, Any]]
    output: list[tuple[str, str | None, dict[str, Any], tuple[str | int, ...]]]
    period: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    margin: Decimal = Decimal(0)
    state: Any = None
    lines: LineMap = field(default_factory=dict, repr=False)

    def where(self, path: tuple[str | int, ...] = ()) -> str:
        line = self.lines.get(path, self.line)
        return f"{self.file}:{line}" if line else self.file


@dataclass
class Mismatch:
    """One expected value that the run did not produce."""

    payee: str
    period: str | None
    what: str
    expected: Any
    actual: Any
    where: str = ""

    def describe(self) -> str:
        who = self.payee + (f" {self.period}" if self.period else "")
        text = f"{who} {self.what}: expected {_show(self.expected)}, got {_show(self.actual)}"
        if isinstance(self.expected, Decimal) and isinstance(self.actual, Decimal):
            text += f" (off by {self.actual - self.expected})"
        return text + (f"  [{self.where}]" if self.where else "")


@dataclass
class CaseResult:
    """The outcome of a case: its mismatches, or the error that stopped it."""

    case: Case
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    run: Run | None = None

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.error is None

    def report(self) -> str:
        """``ok  name`` or ``FAILED name (file:line)`` and a line per difference."""
        if self.ok:
            return f"ok      {self.case.name}"
        lines = [f"FAILED  {self.case.name}  ({self.case.where()})"]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  {m.describe()}" for m in self.mismatches]
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


# ------------------------------------------------------------------ loading


def find_case_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The case files among ``paths``: files as given, folders searched for ``*.cases.yaml``."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*" + SUFFIX)))
        elif p.exists():
            out.append(p)
        else:
            raise UsageError(f"no such case file or folder: {str(p)!r}")
    return out


def load_cases(path: str | os.PathLike[str]) -> list[Case]:
    """Read a case file; a malformed one is a :class:`PlanError` with file and line."""
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read case file {name!r}: {exc.strerror}") from None
    from ..yamlio import load_yaml

    data, lines = load_yaml(text, file=name)
    items = data if isinstance(data, list) else [data]
    cases = []
    for i, item in enumerate(items):
        prefix: tuple[str | int, ...] = (i,) if isinstance(data, list) else ()
        sub = {k[len(prefix):]: v for k, v in lines.items() if k[:len(prefix)] == prefix}
        cases.append(_case(item, p, name, sub, i))
    return cases


def _fail(message: str, file: str, lines: LineMap, *path: str | int,
          suggestion: str | None = None) -> PlanError:
    probe = tuple(path)
    line = None
    while True:
        if probe in lines:
            line = lines[probe]
            break
        if not probe:
            break
        probe = probe[:-1]
    return PlanError(message, file=file, line=line, path=path, suggestion=suggestion)


def _text(value: Any) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _case(item: Any, p: Path, file: str, lines: LineMap, index: int) -> Case:
    if not isinstance(item, dict):
        raise _fail("a case is a mapping with name, plan, input and output", file, lines)
    for k in item:
        if k not in _CASE_KEYS:
            raise _fail(f"unknown key {k!r}", file, lines, k,
                        suggestion=did_you_mean(str(k), _CASE_KEYS)
                        or "keys: " + ", ".join(_CASE_KEYS))
    for k in ("plan", "input", "output"):
        if k not in item:
            raise _fail(f"missing required key {k!r}", file, lines)
    name = str(item.get("name") or f"case {index + 1}")
    period = _text(item["period"]) if item.get("period") is not None else None
    records: list[dict[str, Any]] = []
    raw_input = item["input"]
    if isinstance(raw_input, dict):
        for payee, body in raw_input.items():
            if not isinstance(body, dict):
                raise _fail("a record is a mapping (group, attributes, metrics, events)",
                            file, lines, "input", payee)
            records.append({"payee": _text(payee), **body})
    elif isinstance(raw_input, list):
        for j, body in enumerate(raw_input):
            if not isinstance(body, dict):
                raise _fail("a record is a mapping", file, lines, "input", j)
            records.append(dict(body))
    else:
        raise _fail("input is a list of records, or a mapping of payee to record",
                    file, lines, "input")
    for r in records:
        if r.get("period") is None and period is not None:
            r["period"] = period
        elif r.get("period") is not None:
            r["period"] = _text(r["period"])
    expected: list[tuple[str, str | None, dict[str, Any], tuple[str | int, ...]]] = []
    raw_output = item["output"]
    if isinstance(raw_output, dict):
        for payee, body in raw_output.items():
            if not isinstance(body, dict):
                raise _fail("expected values are a mapping (total, policy ids, values...)",
                            file, lines, "output", payee)
            expected.append((_text(payee), None, body, ("output", payee)))
    elif isinstance(raw_output, list):
        for j, body in enumerate(raw_output):
            if not isinstance(body, dict) or "payee" not in body:
                raise _fail("each output entry names its payee", file, lines, "output", j)
            rest = {k: v for k, v in body.items() if k not in ("payee", "period")}
            per = _text(body["period"]) if body.get("period") is not None else None
            expected.append((_text(body["payee"]), per, rest, ("output", j)))
    else:
        raise _fail("output is a mapping of payee to expected values, or a list of entries",
                    file, lines, "output")
    margin = Decimal(0)
    if item.get("absolute_error_margin") is not None:
        from ..money import to_decimal

        try:
            margin = to_decimal(item["absolute_error_margin"])
        except ValueError as exc:
            raise _fail(str(exc), file, lines, "absolute_error_margin") from None
        if margin < 0:
            raise _fail("absolute_error_margin must not be negative", file, lines,
                        "absolute_error_margin")
    params = item.get("parameters") or {}
    if not isinstance(params, dict):
        raise _fail("parameters is a mapping of names to values", file, lines, "parameters")
    plan_path = (p.parent / str(item["plan"])).resolve()
    return Case(name=name, file=file, line=lines.get(()), plan=plan_path, input=records,
                output=expected, period=period, parameters=params, margin=margin,
                state=item.get("state"), lines=lines)


# ------------------------------------------------------------------ running

_PLANS: dict[tuple[Path, int], Plan] = {}


def _load_plan(case: Case) -> Plan:
    from ..plan import load_plan

    try:
        stamp = case.plan.stat().st_mtime_ns
    except OSError:
        raise _fail(f"no plan file {str(case.plan)!r}", case.file, case.lines, "plan") from None
    key = (case.plan, stamp)
    if key not in _PLANS:
        _PLANS[key] = load_plan(case.plan)
    return _PLANS[key]


def run_case(case: Case) -> CaseResult:
    """Evaluate a case and compare every expected value (a bad plan path or an
    unknown policy id is a :class:`PlanError`)."""
    plan = _load_plan(case)
    if case.parameters:
        try:
            plan = plan.with_parameters(**case.parameters)
        except (KeyError, ValueError) as exc:
            raise _fail(str(exc.args[0]) if exc.args else str(exc), case.file, case.lines,
                        "parameters") from None
    ids = _ids(plan)
    for _, _, body, path in case.output:
        for key in body:
            if key not in _RESERVED and key not in ids:
                hint = did_you_mean(str(key), [*ids, *_RESERVED])
                raise _fail(f"{key!r} is not a policy of the plan nor one of "
                            f"{', '.join(_RESERVED)}", case.file, case.lines, *path, key,
                            suggestion=hint or f"policies: {', '.join(ids)}")
    result = CaseResult(case)
    try:
        run = plan.evaluate(case.input, errors="collect", state=case.state)
    except IncentivesError as exc:
        result.error = str(exc)
        return result
    result.run = run
    errors: dict[str, list[str]] = {}
    for e in run.errors:
        payee = getattr(e, "payee", None)
        errors.setdefault(str(payee), []).append(str(e))
    expected_payees = {payee for payee, _, _, _ in case.output}
    for payee, messages in errors.items():
        if payee not in expected_payees:
            result.mismatches.append(Mismatch(payee, None, "error", "no error", messages[0]))
    for payee, period, body, path in case.output:
        where = case.where(path)
        if "error" in body:
            wanted = str(body["error"])
            got = errors.get(payee, [])
            if not any(wanted in m for m in got):
                result.mismatches.append(Mismatch(payee, period, "error", wanted,
                                                  got[0] if got else None, where))
            continue
        if payee in errors:
            result.mismatches.append(Mismatch(payee, period, "result", "a result",
                                              "error: " + errors[payee][0], where))
            continue
        try:
            res = run.get(payee, period)
        except KeyError as exc:
            result.mismatches.append(Mismatch(payee, period, "result", "a result",
                                              str(exc.args[0]) if exc.args else "nothing",
                                              where))
            continue
        result.mismatches += _compare(case, res, body, ids, path)
    return result


def _ids(plan: Plan) -> list[str]:
    from ..plan import flatten_policies

    return [p.id for p in flatten_policies(plan.policies)]


def _amount(case: Case, value: Any, path: tuple[str | int, ...]) -> Decimal:
    from ..money import to_decimal

    try:
        return to_decimal(value)
    except ValueError as exc:
        raise _fail(str(exc), case.file, case.lines, *path) from None


def _compare(case: Case, res: PayeeResult, body: Mapping[str, Any], ids: list[str],
             path: tuple[str | int, ...]) -> list[Mismatch]:
    out: list[Mismatch] = []
    who, period = res.payee, res.period
    margin = case.margin

    def money(what: str, expected: Any, actual: Decimal | None, at: tuple[str | int, ...]) -> None:
        want = _amount(case, expected, at)
        if actual is None or abs(actual - want) > margin:
            out.append(Mismatch(who, period, what, want, actual, case.where(at)))

    for key, expected in body.items():
        at = (*path, key)
        if key == "total":
            money("total", expected, res.total, at)
        elif key in ("titles", "flags"):
            want = [str(x) for x in (expected if isinstance(expected, list) else [expected])]
            have = list(getattr(res, key))
            if want != have:
                out.append(Mismatch(who, period, key, want, have, case.where(at)))
        elif key == "values":
            if not isinstance(expected, dict):
                raise _fail("values is a mapping of names to expected values", case.file,
                            case.lines, *at)
            for name, want in expected.items():
                vat = (*at, name)
                got = res.values.get(name)
                if isinstance(want, (Decimal, int)) and not isinstance(want, bool):
                    money(f"value {name}", want,
                          got if isinstance(got, Decimal) else None, vat)
                elif got is None or _text(want) != _text(got):
                    out.append(Mismatch(who, period, f"value {name}", want, got,
                                        case.where(vat)))
        elif key in ids:
            money(key, expected, res.amount(key), at)
    return out


# ------------------------------------------------------------------ command


def register(sub: Any) -> None:
    """Add ``incentives test`` to the command line."""
    p = sub.add_parser("test", help="run YAML case files (*.cases.yaml): expected pay per "
                                    "payee; exit 1 with the differences if any case fails")
    p.add_argument("cases", nargs="+", help="case files, or folders searched for *.cases.yaml")
    p.set_defaults(func=cmd_test)


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    files = find_case_files(args.cases)
    if not files:
        raise UsageError("no case files found (they end in .cases.yaml)")
    loaded = [(f, load_cases(f)) for f in files]
    passed = failed = 0
    for f, cases in loaded:
        out.write(f"{f}\n")
        for case in cases:
            result = run_case(case)
            out.write("  " + result.report().replace("\n", "\n  ") + "\n")
            if result.ok:
                passed += 1
            else:
                failed += 1
    out.write(f"{passed} passed, {failed} failed\n")
    return 1 if failed else 0
