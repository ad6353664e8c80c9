"""Plans: files -> validated models -> compiled, ready to evaluate.

>>> plan = load_plan('''
... name: demo
... inputs:
...   metrics: {sales: {}}
... policies:
...   - {type: formula, id: commission, label: Commission, amount: sales * 0.05}
... ''')
>>> plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": "1234.50"}}]).results[0].total
Decimal('61.73')
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import core_schema

from .errors import IncentivesError, PlanError, did_you_mean
from .formulas import NameType
from .inputs import DatedValue, Inputs, Parameter, Reading, parameter_type
from .money import Rounding
from .policies.base import (
    CompileContext,
    Compiled,
    Identifier,
    Label,
    PathError,
    PolicyBase,
    PolicySpec,
    StrictModel,
    flatten_policies,
    names_of,
)
from .policies.validation import plan_error
from .yamlio import LineMap, dump_yaml, load_yaml

if TYPE_CHECKING:
    from .crediting import CreditRule
    from .declared import InvariantSpec
    from .engine import CompiledPlan
    from .measures import CompiledMeasures, MeasureSpec
    from .results import Run
    from .transactions import TransactionKind

__all__ = ["BUILTIN_NAMES", "Plan", "flatten_policies", "load_plan"]


class Later:
    """How pydantic validates a part of a plan that most plans leave out (its transaction
    kinds, crediting rules, measures, invariants): by its model (``name`` in
    ``module``), the module imported the first time a plan has one. A plan without any
    imports none of them and builds none of their validators.

    What it accepts, refuses (the same errors, at the same places), gives and dumps is
    the model's own; the JSON Schema (``incentives schema``) is the model's, by
    reference, as if the field named the model itself. :meth:`target` is the model
    (or the union of models), for whoever walks the plan's fields."""

    __slots__ = ("_adapter", "module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self._adapter: Any = None

    def target(self) -> Any:
        """The type this part is validated as (its module imported)."""
        import importlib

        return getattr(importlib.import_module(self.module), self.name)

    def adapter(self) -> Any:
        """What validates :meth:`target` (made once): a model itself, else a
        ``TypeAdapter`` of it."""
        if self._adapter is None:
            target = self.target()
            if isinstance(target, type) and issubclass(target, StrictModel):
                self._adapter = target
            else:
                from pydantic import TypeAdapter

                self._adapter = TypeAdapter(target)
        return self._adapter

    def _validate(self, value: Any) -> Any:
        found = self.adapter()
        if isinstance(found, type) and issubclass(found, StrictModel):
            return found.model_validate(value)
        return found.validate_python(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        found = self.adapter()
        inner = (found.__pydantic_core_schema__
                 if isinstance(found, type) and issubclass(found, StrictModel)
                 else found.core_schema)
        return handler.generate_json_schema.generate_inner(inner)


if not TYPE_CHECKING:  # the plan's fields name these; see Later
    TransactionKind = Annotated[Any, Later("incentives.transactions", "TransactionKind")]
    CreditRule = Annotated[Any, Later("incentives.crediting", "CreditRule")]
    MeasureSpec = Annotated[Any, Later("incentives.measures", "MeasureSpec")]
    InvariantSpec = Annotated[Any, Later("incentives.declared", "InvariantSpec")]

#: Names every formula may read, whatever the plan declares.
BUILTIN_NAMES: dict[str, NameType] = {
    "total": "number",
    "period": "text",
    "period_days": "number",
}


class Plan(StrictModel):
    """A named, versioned set of policies with its inputs, parameters and rounding.

    Build one in Python from policy objects, or load one with :func:`load_plan`.
    """

    name: Label
    version: Label = "1"
    description: str | None = None
    currency: Label | None = None
    effective_from: dt.date | None = None
    period: Literal["month", "quarter", "year"] = "month"
    rounding: Rounding = Rounding()
    # (the empty defaults are made without building their models' own validators: a
    # plan's validator checks its inputs and reading itself)
    inputs: Inputs = Inputs.model_construct()
    parameters: dict[Identifier, Parameter] = {}
    #: how values from typed tables (SQL, Parquet) are read: ``floats``
    reading: Reading = Reading.model_construct()
    #: the kinds of transaction the plan reads (invoices, credit notes, payments...)
    transactions: dict[Identifier, TransactionKind] = {}
    #: the rules that credit transactions to payees, in order
    crediting: list[CreditRule] = []
    #: classification tables (a product's category...), key -> value
    tables: dict[Identifier, dict[str, str]] = {}
    #: named aggregations of credits (or of event lists), read as metrics are
    measures: dict[Identifier, MeasureSpec] = {}
    policies: list[PolicySpec] = Field(min_length=1)
    #: the invariants the plan promises (checked by ``incentives audit``)
    invariants: list[InvariantSpec] = []

    _file: str | None = PrivateAttr(default=None)
    _lines: LineMap = PrivateAttr(default_factory=dict)
    _compiled: CompiledPlan | None = PrivateAttr(default=None)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        if isinstance(value, Decimal):
            return format(value, "f")
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Plan:
        seen: dict[str, str] = {}
        for n in BUILTIN_NAMES:
            seen[n] = "a built-in name"
        for n in self.inputs.names():
            if n in seen:
                raise ValueError(f"input {n!r} clashes with {seen[n]}")
            seen[n] = "an input"
        for n in self.parameters:
            if n in seen:
                raise PathError(f"parameter {n!r} clashes with {seen[n]}", "parameters", n)
            seen[n] = "a parameter"
        for m, spec in self.measures.items():
            from .measures import measure_names

            for n in measure_names({m: spec}):
                if n in seen:
                    raise PathError(f"measure {m!r} makes name {n!r}, which clashes with "
                                    f"{seen[n]}", "measures", m)
                seen[n] = f"measure {m!r}"
        for i, p in enumerate(self.policies):
            for q in flatten_policies([p]):
                for n in q.publishes():
                    if n in seen:
                        where = ("policies", i) if q is p else ("policies", i, "policies")
                        raise PathError(f"policy id {q.id!r} makes name {n!r}, which clashes "
                                        f"with {seen[n]}; give the policy another id",
                                        *where, "id")
                    seen[n] = f"policy {q.id!r}"
        if self.invariants:
            from .declared import check_declared

            for message, at in check_declared(self.invariants, self.inputs, self.policies):
                raise PathError(message, "invariants", *at)
        return self

    @model_validator(mode="after")
    def _transactions(self) -> Plan:
        # (the modules of transactions, crediting and measures: imported by a plan with them)
        if self.transactions:
            from .transactions import check_kinds, kind_fields

            for message, at in check_kinds(self.transactions):
                raise PathError(message, "transactions", *at)
        if self.crediting and not self.transactions:
            raise PathError("crediting rules credit transactions: declare their kinds under "
                            "'transactions'", "crediting")
        if self.crediting:
            from .crediting import check_rules

            effective = {k: _Fields(kind_fields(self.transactions, k))
                         for k in self.transactions}
            for message, at in check_rules(self.crediting, effective):
                raise PathError(message, *at)
        rules = {r.id: r for r in self.crediting}
        if self.measures:
            from .measures import check_measures

            for message, at in check_measures(self.measures, self.transactions, rules,
                                              self.inputs.events, self.tables):
                raise PathError(message, "measures", *at)
        if self.transactions and not self.crediting:
            raise PathError("transactions are paid through crediting rules: add a "
                            "'crediting' section (e.g. [{id: direct, type: direct}])",
                            "transactions")
        return self

    @model_validator(mode="after")
    def _bounds_can_hold(self) -> Plan:
        """A floor above a cap on the same result cannot both hold: refused."""
        floors: dict[str, tuple[int, Decimal]] = {}
        caps: dict[str, tuple[int, Decimal]] = {}
        for i, p in enumerate(self.policies):
            if p.when is not None:
                continue
            # a floor's or a cap's module is imported only by a plan using it
            if p.type == "floor":
                from .policies.floor import Floor

                if isinstance(p, Floor) and (value := self._constant(p.amount)) is not None:
                    floors.setdefault(p.of, (i, value))
            elif p.type == "cap":
                from .policies.cap import Cap

                if isinstance(p, Cap) and (value := self._constant(p.limit)) is not None:
                    caps.setdefault(p.of, (i, value))
        for of, (i, low) in floors.items():
            if of in caps and low > caps[of][1]:
                j, high = caps[of]
                at = max(i, j)
                raise PathError(
                    f"the floor {low} (policies[{i}]) is above the cap {high} (policies[{j}]) "
                    f"on {of!r}: both cannot hold", "policies", at,
                    "amount" if at == i else "limit")
        return self

    def _constant(self, expr: str) -> Decimal | None:
        """The value of a formula that is a number or a plain parameter, else None."""
        value: Any = self.parameters.get(expr.strip(), expr)
        try:
            number = Decimal(value) if isinstance(value, str) else value
        except ArithmeticError:
            return None
        return number if isinstance(number, Decimal) and number.is_finite() else None

    def __eq__(self, other: object) -> bool:
        # Plans are equal when what they say is equal (not where they were loaded from).
        if not isinstance(other, Plan):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    # ---------------------------------------------------------------- compile

    def compile(self) -> CompiledPlan:
        """Check every formula and prepare the plan for evaluation (cached)."""
        if self._compiled is None:
            from .engine import CompiledPlan

            self._compiled = CompiledPlan(self, self._compile_policies())
        return self._compiled

    def names(self) -> dict[str, NameType]:
        """Every name a formula at the start of the plan may read."""
        names: dict[str, NameType] = dict(BUILTIN_NAMES)
        names.update(self.inputs.names())
        names.update({k: parameter_type(v) for k, v in self.parameters.items()})
        if self.measures:
            from .measures import measure_names

            names.update(measure_names(self.measures))
        return names

    def compile_measures(self) -> CompiledMeasures | None:
        """The plan's measures compiled (``None`` when it has none)."""
        if not self.measures:
            return None
        ctx = CompileContext(
            names={n: t for n, t in self.names().items() if n in self.parameters},
            rounding=self.rounding, file=self._file, lines=self._lines,
            events={name: dict(spec.fields) for name, spec in self.inputs.events.items()},
        ).sub("measures")
        params = {k: v for k, v in self.parameters.items() if not isinstance(v, DatedValue)}
        from .measures import CompiledMeasures

        return CompiledMeasures(self.measures, ctx, self.transactions, self.tables, params)

    def _compile_policies(self) -> list[Compiled]:
        events = {name: dict(spec.fields) for name, spec in self.inputs.events.items()}
        measures: dict[str, str] = {}
        if self.measures:
            from .measures import measure_names

            measures = {n: "events" if spec.events is not None else spec.aggregation[0]
                        for m, spec in self.measures.items() for n in measure_names({m: spec})}
        ctx = CompileContext(
            names=self.names(), rounding=self.rounding, file=self._file, lines=self._lines,
            later=names_of(flatten_policies(self.policies)), events=events,
            tables=self.tables, measures=measures,
            kinds={k: kind.refers_to for k, kind in self.transactions.items()},
        )
        compiled = []
        for i, spec in enumerate(self.policies):
            sub = ctx.sub("policies", i, policy=spec.id)
            compiled.append(spec.compile(sub))
            ctx.define(spec.publishes())
        return compiled

    # ----------------------------------------------------------- evaluation

    def evaluate(
        self,
        records: Iterable[Any] | str | os.PathLike[str],
        *,
        errors: Literal["raise", "collect"] = "raise",
        state: Any = None,
        events: Mapping[str, Any] | None = None,
        transactions: Any = None,
        hierarchy: Any = None,
        tables: Mapping[str, Any] | None = None,
    ) -> Run:
        """Evaluate a population of records (dicts, :class:`Record`, or a DataFrame),
        or of a source: a file (JSON, JSONL, CSV, Parquet, Excel) or a database URL
        with ``table=`` or ``query=`` (see docs/data-sources.md).

        ``events`` maps an event list the plan declares to a source (or rows) of
        its events, each row with its ``payee`` and ``period``; they are joined to
        the records (a workbook of records brings the lists that have a sheet of
        their name).

        With ``errors="collect"`` bad records are reported in ``run.errors`` and
        the good ones are still evaluated; with ``"raise"`` (the default) the
        first error is raised.

        A plan that declares ``transactions`` takes them here (rows each with
        its ``kind``, a DataFrame, or a mapping from kind to rows), with the
        ``hierarchy`` the roll-up rules follow (rows of payee, manager, from,
        to) and ``tables``: assignment tables (rows of key, payee, share, from,
        to) and classification tables (a mapping from key to value), by name.
        See docs/transactions.md.
        """
        return self.compile().evaluate(records, errors=errors, state=state, events=events,
                                       transactions=transactions, hierarchy=hierarchy,
                                       tables=tables)

    # ------------------------------------------------------------ authoring

    def policy(self, policy_id: str) -> PolicyBase:
        """The policy with id ``policy_id``."""
        for p in self.policies:
            if p.id == policy_id:
                return p
        raise KeyError(f"no policy {policy_id!r}; policies: {', '.join(self.policy_ids)}")

    @property
    def policy_ids(self) -> list[str]:
        """The ids of the plan's policies, in order."""
        return [p.id for p in self.policies]

    def with_policy(self, policy: PolicyBase, *, after: str | None = None,
                    before: str | None = None) -> Plan:
        """A copy with ``policy`` added (at the end, or after / before another)."""
        items = list(self.policies)
        if after is not None:
            items.insert(self.policy_ids.index(self._known(after)) + 1, policy)
        elif before is not None:
            items.insert(self.policy_ids.index(self._known(before)), policy)
        else:
            items.append(policy)
        return self.replace_fields(policies=items)

    def without_policy(self, policy_id: str) -> Plan:
        """A copy without the policy ``policy_id``."""
        self._known(policy_id)
        return self.replace_fields(policies=[p for p in self.policies if p.id != policy_id])

    def replace_policy(self, policy_id: str, policy: PolicyBase) -> Plan:
        """A copy with the policy ``policy_id`` replaced by ``policy``."""
        self._known(policy_id)
        return self.replace_fields(
            policies=[policy if p.id == policy_id else p for p in self.policies])

    def with_parameters(self, **values: Any) -> Plan:
        """A copy with parameters overridden (``plan.with_parameters(floor=800)``)."""
        unknown = [k for k in values if k not in self.parameters]
        if unknown:
            hint = did_you_mean(unknown[0], self.parameters)
            raise KeyError(f"unknown parameter {unknown[0]!r}" + (f"; {hint}" if hint else ""))
        return self.replace_fields(parameters={**self.parameters, **values})

    def replace_fields(self, **changes: Any) -> Plan:
        """A validated copy with some top-level fields changed."""
        data = self.model_dump(mode="python", exclude_defaults=True, by_alias=True)
        data.update({k: _dump(v) for k, v in changes.items()})
        new = Plan.model_validate(data)
        return new

    def _known(self, policy_id: str) -> str:
        if policy_id not in self.policy_ids:
            hint = did_you_mean(policy_id, self.policy_ids)
            raise KeyError(f"no policy {policy_id!r}" + (f"; {hint}" if hint else ""))
        return policy_id

    # ------------------------------------------------------------ files

    def to_data(self) -> dict[str, Any]:
        """The plan as plain data, as it would be written in a file."""
        return self.model_dump(mode="python", exclude_defaults=True, by_alias=True)

    def to_yaml(self) -> str:
        """The plan as YAML text that :func:`load_plan` reads back to an equal plan."""
        return dump_yaml(self.to_data())

    @property
    def source_file(self) -> str | None:
        """The file the plan was loaded from, if any."""
        return self._file


class _Fields:
    """A kind's fields, its inherited ones included, as the crediting rules' check reads
    them."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields


def _dump(value: Any) -> Any:
    if isinstance(value, StrictModel):
        return value.model_dump(mode="python", exclude_defaults=True, by_alias=True)
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- loading


def load_plan(source: str | os.PathLike[str], *, file: str | None = None) -> Plan:
    """Load a plan from a file path or from YAML text, or raise :class:`PlanError`.

    A string holding a newline or a ``:`` is read as YAML text; otherwise as a path.
    """
    return _load(source, file, compiled=True)


def check_plan(source: str | os.PathLike[str]) -> Plan:
    """What ``incentives validate`` does: load a plan as :func:`load_plan` does, every
    check made (the model, every formula, the measures), but without preparing it for
    evaluation (the engine, its kernels and record reader: made from what these checks
    passed, they refuse nothing; :meth:`Plan.compile` makes them when asked)."""
    return _load(source, None, compiled=False)


def _load(source: str | os.PathLike[str], file: str | None, *, compiled: bool) -> Plan:
    text, name = _read_source(source, file)
    data, lines = load_yaml(text, file=name)
    if not isinstance(data, dict):
        raise PlanError("a plan is a mapping with name, inputs and policies", file=name,
                        line=lines.get((), 1))
    if "plan" in data and len(data) == 1 and isinstance(data["plan"], dict):
        data = data["plan"]
        lines = {k[1:]: v for k, v in lines.items() if k[:1] == ("plan",)}
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise plan_error(exc, data, lines, name) from None
    except IncentivesError:
        raise
    except _UNEXPECTED as exc:  # a validator met a shape it did not expect
        raise PlanError(f"cannot read this plan ({type(exc).__name__}: {exc})", file=name,
                        line=lines.get(())) from exc
    plan._file = name
    plan._lines = lines
    try:
        if compiled:
            plan.compile()
        else:  # the checks plan.compile() makes, in its order
            plan._compile_policies()
            plan.compile_measures()
    except IncentivesError:
        raise
    except _UNEXPECTED as exc:
        raise PlanError(f"cannot compile this plan ({type(exc).__name__}: {exc})", file=name,
                        line=lines.get(())) from exc
    return plan


#: Errors that are a defect, not a plan error, if they escape a validator or a compiler;
#: ``load_plan`` still reports them as a :class:`PlanError` (chained), never raw.
_UNEXPECTED = (TypeError, KeyError, AttributeError, IndexError, ValueError, RecursionError,
               ArithmeticError)


def _read_source(source: str | os.PathLike[str], file: str | None) -> tuple[str, str | None]:
    if isinstance(source, str) and ("\n" in source or ":" in source.split("/")[-1]):
        return source, file
    path = Path(source)
    from .errors import PlanLimitError
    from .fileio import read_bytes_capped
    from .yamlio import MAX_TEXT

    def too_large(message: str) -> PlanError:
        return PlanLimitError(message, file=str(source))

    try:  # a device or an endless FIFO is cut off: at most 4 bytes a character, and a BOM
        raw = read_bytes_capped(path, 4 * MAX_TEXT + 3, "the plan file", error=too_large)
    except OSError as exc:
        raise PlanError(f"cannot read the plan file: {exc.strerror or exc}",
                        file=str(source)) from None
    try:
        # (UTF-8 without the BOM: what the "utf-8-sig" codec reads, without importing it)
        return raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8"), file or str(source)
    except UnicodeDecodeError:
        raise PlanError("the plan file is not UTF-8 text", file=str(source)) from None
