"""What every policy shares: its spec model, its compiled form, the compile context.

A policy has two halves:

- a *spec*: a frozen pydantic model, what a plan file says (``type``, ``id``,
  ``label``, ``when`` and the mechanism's own fields). Specs validate strictly
  (unknown keys are errors with a suggestion) and dump back to YAML.
- a *compiled* policy: made once when the plan compiles, with its formulas
  checked and compiled, its tables prepared; it evaluates states cheaply.

A payee-scoped compiled policy implements :meth:`Compiled.apply` (one payee);
a team-scoped one sets ``scope = "group"`` (or ``"population"``) and
implements :meth:`Compiled.apply_group`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic._internal._decorators import ModelSerializerDecoratorInfo, PydanticDescriptorProxy
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import PydanticCustomError, PydanticUndefined, core_schema

from ..errors import EvaluationError, PlanError, did_you_mean
from ..formulas import Formula, NameType, compile_formula
from ..money import CONTEXT, MAX_DIGITS, ZERO, Rounding, parse_number_text
from ..runtime import Line, PayeeState, PeriodContext
from ..wording import Shape, Working, generic_working

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from ..kernel import KernelWriter
    from ..yamlio import LineMap

__all__ = [
    "CompileContext",
    "Compiled",
    "Expr",
    "Identifier",
    "PolicyBase",
    "PolicySpec",
    "StrictModel",
    "explains",
    "flatten_policies",
    "policy_titles",
]

Scope = Literal["payee", "group", "population"]

def _one_printable_line(value: str) -> str:
    """``value``, or an error if it holds a control character (a line break, ESC, a
    bidirectional override...): labels, names and ids are shown on one line."""
    if value.isprintable():  # (every control character is unprintable)
        return value
    from ..errors import CONTROL_CHARACTERS

    found = CONTROL_CHARACTERS.search(value)
    if found is not None:
        raise PydanticCustomError(
            "control_character",
            "control character U+{code}: a label, a name or an id is one line of printable text",
            {"code": f"{ord(found.group()):04X}"})
    return value


class _After:
    """``pydantic.AfterValidator(func)`` for a ``func`` of the value alone: the same core
    schema, without pydantic reading the function's signature again for every field of
    every model that uses the type (a plan's models have hundreds)."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.func, schema=handler(source))


class _Before(_After):
    """``pydantic.BeforeValidator(func)``, as :class:`_After` is ``AfterValidator``."""

    __slots__ = ()

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.func, schema=handler(source))


_ONE_LINE = _After(_one_printable_line)

#: Text shown on one line (a label, a name): any language, no control characters.
Label = Annotated[str, _ONE_LINE]

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z\u00C0-\uFFFF][A-Za-z0-9_\u00C0-\uFFFF]*$",
                           max_length=64),
    _ONE_LINE,
]


def _to_expr(value: Any) -> Any:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return value


#: A formula, written as text (``"traffic_revenue * 0.02"``) or as a number.
Expr = Annotated[
    str,
    _Before(_to_expr),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
                    "x-formula": True}),
]


class PathError(ValueError):
    """A validation error that knows where, inside the model, it belongs.

    Raise it from a model validator with the path below the model (e.g.
    ``("tiers", 2, "from")``); plan loading adds it to the error's location.
    """

    def __init__(self, message: str, *path: str | int) -> None:
        super().__init__(message)
        self.path = path


class _PlanErrors(ModelMetaclass):
    """Models built in Python report a bad value as a located PlanError.

    Only a direct call (``Tiered(id=..., ...)``) goes through here; loading a
    plan file validates the data itself and locates errors with file and line.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ValidationError as exc:
            from .validation import plan_error

            raise plan_error(exc, kwargs, {}, None) from None


class StrictModel(BaseModel, metaclass=_PlanErrors):
    """A frozen model whose unknown keys are errors with a did-you-mean.

    Built in Python (``Tiered(id=..., ...)``, ``Plan(...)``), a bad value is a
    :class:`~incentives.PlanError` with its path and a suggestion, as from a
    plan file (it is a ``ValueError`` too).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known: set[str] = set()
            for name, f in cls.model_fields.items():
                known.add(name)
                if f.alias:
                    known.add(f.alias)
            for key in data:
                if key not in known:
                    hint = did_you_mean(str(key), known) or (
                        "known keys: " + ", ".join(sorted(known))
                    )
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key {key!r}; {hint}",
                        {"key": key, "hint": hint},
                    )
        return data

    @model_validator(mode="before")
    @classmethod
    def _number_text(cls, data: Any) -> Any:
        """A number field given as text (``min: "1e999999"``) is read as a record's
        number is (:func:`incentives.money.parse_number_text`): in range, no digit
        separators, ASCII digits only."""
        if not isinstance(data, Mapping):
            return data
        names = _decimal_fields(cls)
        for key, value in data.items():
            if key not in names:
                continue
            items = enumerate(value) if isinstance(value, list) else [(None, value)]
            for i, item in items:
                if isinstance(item, str) and _decimal_text(item):
                    try:
                        parse_number_text(item.strip(), what="number")
                    except ValueError as exc:
                        raise PathError(str(exc), *((key,) if i is None else (key, i))) \
                            from None
        return data


def _decimal_fields(cls: type[BaseModel]) -> frozenset[str]:
    """The names (and aliases) of ``cls``'s fields that hold a Decimal (or a list of
    Decimals) and nothing else."""
    found = _DECIMAL_FIELDS.get(cls)
    if found is None:
        names: set[str] = set()
        for name, f in cls.model_fields.items():
            kinds = set(get_args(f.annotation)) - {type(None)} or {f.annotation}
            kinds = {Decimal if get_origin(k) is list and get_args(k) == (Decimal,) else k
                     for k in kinds}
            if kinds == {Decimal}:
                names.add(name)
                if f.alias:
                    names.add(f.alias)
        found = _DECIMAL_FIELDS[cls] = frozenset(names)
    return found


_DECIMAL_FIELDS: dict[type, frozenset[str]] = {}


def _decimal_text(text: str) -> bool:
    """Whether Python's Decimal reads ``text`` (anything else is pydantic's to report)."""
    try:
        Decimal(text[:200])
    except ArithmeticError:
        return False
    return True


def _wrap_serializer(func: Callable[..., Any]) -> Any:
    """``@pydantic.model_serializer(mode="wrap")``: what that decorator makes, made here
    without importing :mod:`pydantic.functional_serializers` (its dataclasses are a
    hundredth of ``incentives validate``; a test keeps the two the same)."""
    return PydanticDescriptorProxy(func, ModelSerializerDecoratorInfo(
        mode="wrap", return_type=PydanticUndefined, when_used="always"))  # type: ignore[arg-type]


class PolicyBase(StrictModel):
    """Fields every policy has."""

    #: the policy type: the tag that says which mechanism this is
    type: str
    #: unique in the plan; later formulas read the policy's result by this name
    id: Identifier
    #: shown on statements and tables (any language)
    label: Label | None = None
    #: a condition: the policy applies only to payees for whom it holds (else its result is zero)
    when: Expr | None = None

    #: "payee", "group" (sees every payee of its group) or "population"
    scope: ClassVar[Scope] = "payee"
    #: how a line of this policy is worded on a statement: ``statement(c, line, spec)``
    #: gives the rows under the line (see :mod:`incentives.wording`); set by :func:`explains`
    statement: ClassVar[Working] = staticmethod(generic_working)
    #: whether a line's details are this policy's, for a statement without its plan
    #: (None: never guessed); set by :func:`explains`
    looks_like: ClassVar[Shape | None] = None

    def _keep_type(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        if isinstance(data, dict) and "type" not in data:
            data = {"type": self.type, **data}
        return data

    _keep_type = _wrap_serializer(_keep_type)

    def publishes(self) -> dict[str, NameType]:
        """Names this policy makes available to later policies, with their types."""
        return {self.id: "number"}

    def compile(self, ctx: CompileContext) -> Compiled:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def title(self) -> str:
        """The label, or the id when there is none."""
        return self.label or self.id


class _OfItsType:
    """How pydantic validates a :data:`PolicySpec`: by the class its ``type:`` tag
    names, that class (and its module) made on first use, so a plan builds the
    models of the policy types it names and no others.

    A mapping whose ``type`` is a known tag, or a policy object, is validated by
    that one class. Anything else (no ``type``, an unknown one, not a mapping)
    goes through the discriminated union of every policy type, which refuses it
    with pydantic's own error (the suggestion of the closest type, see
    :func:`~.validation.plan_error`). The JSON Schema is the union's, so
    ``incentives schema`` lists every type.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(_policy_of_its_type)

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        if _IN_SCHEMA:  # a policy inside a policy (larger_of's): each type by reference
            from . import POLICY_TYPES

            return handler(core_schema.tagged_union_schema(
                {tag: core_schema.definition_reference_schema(_ref_of(cls))
                 for tag, cls in POLICY_TYPES.items()}, discriminator="type"))
        _IN_SCHEMA.append(True)
        try:
            return handler(_every_policy().core_schema)
        finally:
            _IN_SCHEMA.pop()


_IN_SCHEMA: list[bool] = []


def _ref_of(cls: type[BaseModel]) -> str:
    """The reference of a model's core schema (its name in a schema's definitions)."""
    found: Any = cls.__pydantic_core_schema__
    while found["type"] == "definitions":
        found = found["schema"]
    ref: str = found["ref"]
    return ref


def _policy_of_its_type(value: Any) -> PolicyBase:
    from . import POLICY_TYPES, policy_class

    tag = value.get("type") if isinstance(value, dict) else getattr(value, "type", None) \
        if isinstance(value, PolicyBase) else None
    if isinstance(tag, str) and tag in POLICY_TYPES:
        return policy_class(tag).model_validate(value)
    # the union refuses it, with the error (and the suggestion) it always gave
    found: PolicyBase = _every_policy().validate_python(value)
    return found


@lru_cache(maxsize=1)
def _every_policy() -> TypeAdapter[Any]:
    """The discriminated union of every policy type (every policy module imported)."""
    from typing import Union

    from pydantic import Field, TypeAdapter

    from . import POLICY_TYPES

    choices = tuple(POLICY_TYPES.values())
    union: Any = Annotated[Union[choices], Field(discriminator="type")]  # noqa: UP007
    return TypeAdapter(union)


if TYPE_CHECKING:
    PolicySpec = PolicyBase
else:
    #: A plan's policy (a :class:`PolicyBase` subclass), chosen by its ``type:`` tag.
    PolicySpec = Annotated[PolicyBase, _OfItsType()]


class CompileContext:
    """Where a policy is compiled: the names it may use, and where errors point."""

    def __init__(
        self,
        *,
        names: dict[str, NameType],
        rounding: Rounding,
        file: str | None = None,
        lines: LineMap | None = None,
        later: Mapping[str, str] | None = None,
        prefix: tuple[str | int, ...] = (),
        policy: str | None = None,
        events: Mapping[str, Mapping[str, NameType]] | None = None,
        tables: Mapping[str, Mapping[str, str]] | None = None,
        measures: Mapping[str, str] | None = None,
        kinds: Mapping[str, str | None] | None = None,
    ) -> None:
        self.names = names
        self.events = dict(events or {})
        #: the plan's classification tables (key -> value), by name
        self.tables: Mapping[str, Mapping[str, str]] = tables or {}
        #: the names the plan's measures make, each to its aggregation ("sum", "count"... or
        #: "events"); None: not known (a context made by hand)
        self.measures = measures
        #: the plan's transaction kinds, each to the kind its ``refers_to`` names (or None);
        #: None: not known (a context made by hand)
        self.kinds = kinds
        self.rounding = rounding
        self.file = file
        self.lines = lines or {}
        self.later = dict(later or {})
        self.prefix = prefix
        self.policy = policy

    def sub(self, *path: str | int, policy: str | None = None) -> CompileContext:
        """A context for a part of this one (a policy inside a plan, a child policy)."""
        return CompileContext(
            names=self.names, rounding=self.rounding, file=self.file, lines=self.lines,
            later=self.later, prefix=(*self.prefix, *path), policy=policy or self.policy,
            events=self.events, tables=self.tables, measures=self.measures, kinds=self.kinds,
        )

    def event_fields(self, name: str, *path: str | int) -> dict[str, NameType]:
        """The declared fields of the event list ``name``, or a plan error."""
        if name not in self.events:
            raise self.error(f"unknown event list {name!r}", *path,
                             suggestion=did_you_mean(name, self.events)
                             or "declare it under inputs.events")
        return dict(self.events[name])

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of the longest known prefix of ``path``."""
        full = tuple(path)
        while full:
            if full in self.lines:
                return self.lines[full]
            full = full[:-1]
        return self.lines.get(())

    def where(self, *path: str | int) -> dict[str, Any]:
        full = (*self.prefix, *path)
        return {"file": self.file, "line": self.line(full), "path": full, "policy": self.policy}

    def error(self, message: str, *path: str | int, suggestion: str | None = None) -> PlanError:
        """A plan error located at ``path`` (relative to this context)."""
        return PlanError(message, suggestion=suggestion, **self.where(*path))

    def formula(
        self,
        source: str | Decimal | int,
        *path: str | int,
        expect: NameType | None = "number",
        extra: Mapping[str, NameType] | None = None,
    ) -> Formula:
        """Check and compile a formula found at ``path``."""
        names = self.names if not extra else {**self.names, **extra}
        try:
            return compile_formula(source, names, rounding=self.rounding,
                                   where=self.where(*path), expect=expect)
        except PlanError as exc:
            name = getattr(exc, "name", None)
            if name and name in self.later and name not in names:
                maker = self.later[name]
                exc.suggestion = (
                    f"a policy cannot read its own result {name!r} (circular reference)"
                    if maker == self.policy else
                    f"{name!r} is made by policy {maker!r}, which runs later: "
                    "policies run in plan order (a circular reference if it reads this one)")
                raise exc.located() from None
            raise

    def number(self, source: str | Decimal | int | None, *path: str | int) -> Formula | None:
        """Compile an optional numeric formula."""
        if source is None:
            return None
        return self.formula(source, *path, expect="number")

    def condition(self, source: str | None, *path: str | int) -> Formula | None:
        """Compile an optional condition."""
        if source is None:
            return None
        return self.formula(source, *path, expect=None)

    def define(self, names: Mapping[str, NameType]) -> None:
        """Make ``names`` visible to the policies compiled after this point."""
        for n, t in names.items():
            self.names.setdefault(n, t)
        for n in names:
            self.later.pop(n, None)


class Compiled:
    """A policy ready to evaluate. Subclasses implement ``apply`` or ``apply_group``."""

    scope: Scope = "payee"
    line_type: str = "pay"

    def __init__(self, spec: PolicyBase, ctx: CompileContext) -> None:
        self.spec = spec
        self.id = spec.id
        self.label = spec.title
        self.scope = spec.scope
        self.when = ctx.condition(spec.when, "when")
        self.round: Callable[[Decimal], Decimal] = ctx.rounding.rounder()
        # a power-of-ten quantum rounds with one quantize, written out in line()
        self._quantum = ctx.rounding.plain_quantum
        self._mode = ctx.rounding.decimal_mode
        # a zero line's amount, made once: what quantize gives for zero, never "-0.00"
        self._zero = Decimal(0).quantize(self._quantum) if self._quantum is not None else None

    def applies(self, s: PayeeState) -> bool:
        """Whether the ``when`` condition holds for ``s`` (always, with none)."""
        return self.when is None or bool(self.when(s.env))

    def skip(self, s: PayeeState) -> None:
        """What a policy leaves behind when its ``when`` is false: its name is zero."""
        s.env[self.id] = ZERO

    def applying(self, states: list[PayeeState]) -> list[PayeeState]:
        """The states this policy applies to (a new list, in order); every other one is
        skipped (see :meth:`skip`)."""
        if self.when is None:
            return list(states)
        chosen: list[PayeeState] = []
        for s in states:
            if self.applies(s):
                chosen.append(s)
            else:
                self.skip(s)
        return chosen

    def apply(self, s: PayeeState) -> None:  # pragma: no cover - abstract
        """Evaluate this policy for one payee."""
        raise NotImplementedError

    def emit(self, w: KernelWriter) -> bool:
        """Write this policy's evaluation for one payee into a kernel (see
        :mod:`incentives.kernel`): code doing exactly what :meth:`apply` does,
        in the same order. Return False (the default) to be called as it is.

        The code runs with ``s`` (the :class:`PayeeState`), ``e`` (its
        environment), ``lines`` and ``values`` in scope. A line explained lazily
        captures the values it used by the fields of the policy's record, as
        :meth:`apply` does (:meth:`KernelWriter.record
        <incentives.kernel.KernelWriter.record>`).
        """
        return False

    def apply_group(
        self, states: list[PayeeState], group: str | None, period: PeriodContext
    ) -> None:
        """Evaluate this policy for every payee of a group (team-scoped policies)."""
        for s in states:
            if self.applies(s):
                self.apply(s)
            else:
                self.skip(s)

    def line(self, s: PayeeState, amount: Decimal, details: dict[str, Any] | None = None,
             *, type: str | None = None,
             explain: Callable[[Any], dict[str, Any]] | None = None,
             captured: Any = None) -> Decimal:
        """Round ``amount`` once and add it as this policy's line; return it rounded.

        ``details`` explain the amount; or, lazily, ``explain(captured)`` builds
        them when first read, from the policy's record of the values it used (a
        named tuple, or its values in the order of its fields; see
        :class:`~incentives.Line`).
        """
        if amount.__class__ is not Decimal or not amount.is_finite() or amount.adjusted() >= MAX_DIGITS:
            amount = checked_amount(amount)
        q = self._quantum
        rounded = amount.quantize(q, self._mode, CONTEXT) if q is not None else self.round(amount)
        if not rounded:
            rounded = abs(rounded) if self._zero is None else self._zero  # never "-0.00"
        # PayeeState.add_line, written out: this runs for every line of every payee
        s.lines.append(Line(self.id, self.label, rounded, type or self.line_type, details,
                            explain, captured))
        total = s.total = s.total + rounded
        env = s.env
        env["total"] = total
        pid = self.id
        env[pid] = env[pid] + rounded if pid in env else rounded
        return rounded

    def group_lines(self, states: Sequence[PayeeState], amounts: Sequence[Decimal],
                    explain: Callable[[Any, int], dict[str, Any]], found: Any) -> None:
        """A team policy's lines, one for each of a group's ``states``: state ``i`` gets
        ``amounts[i]``, explained lazily by ``explain(found, i)``, where ``found`` is
        the policy's record of what it found for the whole group (one record, shared
        by its members' lines, not copied for each): each line captures its member's
        index ``i``, and explains itself by ``functools.partial(explain, found)``.
        Otherwise what :meth:`line` does, and the policy's name is set to the
        member's line (one line a member)."""
        pid, label, line_type = self.id, self.label, self.line_type
        q, mode, zero = self._quantum, self._mode, self._zero
        explain_member = partial(explain, found)  # one for the group
        for i, (s, amount) in enumerate(zip(states, amounts, strict=True)):
            if (amount.__class__ is not Decimal or not amount.is_finite()
                    or amount.adjusted() >= MAX_DIGITS):
                amount = checked_amount(amount)
            rounded = amount.quantize(q, mode, CONTEXT) if q is not None else self.round(amount)
            if not rounded:
                rounded = abs(rounded) if zero is None else zero  # never "-0.00"
            s.lines.append(Line(pid, label, rounded, line_type, None, explain_member, i))
            total = s.total = s.total + rounded
            env = s.env
            env["total"] = total
            env[pid] = rounded


def checked_amount(amount: Any) -> Decimal:
    """An amount that is not a finite Decimal of at most MAX_DIGITS whole digits is refused."""
    if isinstance(amount, int) and not isinstance(amount, bool):
        amount = Decimal(amount)
    if not isinstance(amount, Decimal):
        raise EvaluationError(f"the amount is {type(amount).__name__} {amount!r}, not a number")
    if not amount.is_finite() or amount.adjusted() >= MAX_DIGITS:
        raise EvaluationError(f"the amount {amount:.6E} is too large "
                              f"(at most {MAX_DIGITS} digits before the point)")
    return amount


def names_of(specs: Iterable[PolicyBase]) -> dict[str, str]:
    """Every name published by ``specs``, mapped to the policy that publishes it."""
    out: dict[str, str] = {}
    for spec in specs:
        for n in spec.publishes():
            out.setdefault(n, spec.id)
    return out


def flatten_policies(policies: Sequence[PolicyBase]) -> list[PolicyBase]:
    """``policies`` and, after each one that combines others, its children (depth first)."""
    out: list[PolicyBase] = []
    for p in policies:
        out.append(p)
        children = getattr(p, "policies", None)
        if isinstance(children, list):
            out.extend(flatten_policies(children))
    return out


def policy_titles(policies: Sequence[PolicyBase]) -> dict[str, str]:
    """Each policy's id mapped to its title, combined policies' children included."""
    return {p.id: p.title for p in flatten_policies(policies)}
def explains(*classes: type[PolicyBase],
             looks_like: Shape | None = None) -> Callable[[Working], Working]:
    """Register the decorated function as the statement working of ``classes``' lines.

    ``working(c, line, spec) -> list[Step]`` words one line: ``c`` is the statement's
    :class:`~incentives.wording.Wording`, ``line`` the :class:`~incentives.Line` (its
    ``details`` as the policy recorded them), ``spec`` the policy (None when the
    statement has no plan). ``looks_like(details)`` says whether details are this
    policy's, for statements without a plan; the policies are tried in the order of
    :data:`incentives.policies.POLICY_TYPES`.
    """
    def register(working: Working) -> Working:
        for cls in classes:
            cls.statement = staticmethod(working)
            if looks_like is not None:
                cls.looks_like = staticmethod(looks_like)
        return working

    return register
