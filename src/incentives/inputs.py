"""What a plan declares it reads: metrics, attributes, event lists, parameters.

Every declared input is either required or has a default, so a formula never
meets a missing name: a record that lacks a required input is an error that
names the payee and the field, never a silent zero.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .formulas import NameType
from .policies.base import Identifier, Label, StrictModel

__all__ = [
    "AttributeSpec",
    "DatedValue",
    "EventSpec",
    "FieldLimits",
    "Inputs",
    "MetricSpec",
    "Parameter",
]

Scalar = Decimal | bool | str


def _none_to_empty(value: Any) -> Any:
    return {} if value is None else value


class MetricSpec(StrictModel):
    """A number in a record's ``metrics``. Required unless it has a ``default``."""

    label: Label | None = None
    default: Decimal | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    integer: bool = False
    column: Label | None = Field(default=None, description="the CSV header, when not the name")

    @model_validator(mode="after")
    def _bounds(self) -> MetricSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class AttributeSpec(StrictModel):
    """A fact about the payee in a record's ``attributes`` (grade, employment...)."""

    type: Literal["text", "number", "bool"] = "text"
    label: Label | None = None
    default: Scalar | None = None
    allowed: list[Scalar] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    integer: bool = False
    column: Label | None = None

    @model_validator(mode="before")
    @classmethod
    def _bool_values(cls, data: Any) -> Any:
        """A ``bool`` attribute's default and allowed values are read as a record's are
        (``yes``, ``no``, ``"true"``...): text ``false`` must not be a true default."""
        if not isinstance(data, dict) or data.get("type") != "bool":
            return data

        def as_bool(value: Any) -> Any:
            text = str(value).strip().lower() if isinstance(value, str) else None
            return {"true": True, "yes": True, "1": True,
                    "false": False, "no": False, "0": False}.get(text or "", value)

        data = dict(data)
        if isinstance(data.get("default"), str):
            data["default"] = as_bool(data["default"])
        if isinstance(data.get("allowed"), list):
            data["allowed"] = [as_bool(v) for v in data["allowed"]]
        return data


FieldType = Literal["text", "number", "date", "bool"]


class FieldLimits(StrictModel):
    """What a number field of an event may be, as for a metric: ``min``, ``max``
    (inclusive) and ``integer`` (a whole number)."""

    min: Decimal | None = None
    max: Decimal | None = None
    integer: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> FieldLimits:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class EventSpec(StrictModel):
    """A list of dated facts in a record's ``events`` (e.g. lost customers).

    ``fields`` maps each field to its type; fields in ``optional`` may be absent.
    A number field may be written with its limits in place,
    ``monthly_value: {type: number, min: 0}``: they go to ``limits``.
    """

    label: Label | None = None
    fields: dict[Identifier, FieldType] = Field(min_length=1)
    optional: list[Identifier] = []
    #: the ``min``, ``max`` and ``integer`` of number fields, by field name
    limits: dict[Identifier, FieldLimits] = {}

    @model_validator(mode="before")
    @classmethod
    def _limits_in_place(cls, data: Any) -> Any:
        """``{type: number, min: 0}`` as a field: the type to ``fields``, the rest to
        ``limits``."""
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            return data
        fields = data["fields"]
        if not any(isinstance(v, dict) for v in fields.values()):
            return data
        limits = data.get("limits") or {}
        if not isinstance(limits, dict):
            return data  # reported as not a mapping
        limits = dict(limits)
        plain: dict[Any, Any] = {}
        for name, value in fields.items():
            if isinstance(value, dict):
                rest = dict(value)
                plain[name] = rest.pop("type", "number")
                if rest:
                    if name in limits:
                        raise ValueError(f"the limits of field {name!r} are given twice")
                    limits[name] = rest
            else:
                plain[name] = value
        return {**data, "fields": plain, "limits": limits}

    @model_validator(mode="after")
    def _limits_of_numbers(self) -> EventSpec:
        for name in self.limits:
            if name not in self.fields:
                raise ValueError(f"limits are given for {name!r}, which is not a field")
            if self.fields[name] != "number":
                raise ValueError(f"limits are given for {name!r}, a {self.fields[name]} field "
                                 "(only number fields have limits)")
        return self


class Inputs(StrictModel):
    """The inputs a plan declares."""

    metrics: dict[Identifier, MetricSpec] = {}
    attributes: dict[Identifier, AttributeSpec] = {}
    events: dict[Identifier, EventSpec] = {}
    #: The groups records may name; when given, any other group (or none) is a record error.
    groups: list[str] | None = None

    @field_validator("metrics", "attributes", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(name, str) for name in value):
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {k: _none_to_empty(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _distinct(self) -> Inputs:
        both = set(self.metrics) & set(self.attributes)
        if both:
            raise ValueError(f"declared both as metric and attribute: {', '.join(sorted(both))}")
        return self

    def names(self) -> dict[str, NameType]:
        """The formula names the inputs provide, with their types."""
        out: dict[str, NameType] = {m: "number" for m in self.metrics}
        for a, spec in self.attributes.items():
            out[a] = "number" if spec.type == "number" else spec.type
        for e in self.events:
            out[f"{e}_count"] = "number"
        return out


class Reading(StrictModel):
    """How values from typed tables (SQL databases, Parquet) are read.

    ``floats``: what a floating-point column becomes. ``refuse`` (the default):
    the source is refused, naming the column, since a float is not an exact
    amount; ``shortest``: the shortest decimal that reads back as the same float
    (``0.1`` for the float nearest 0.1); a quantum such as ``0.01``: that
    decimal rounded half up to the quantum. Excel cells are numbers of their own
    kind (see docs/data-sources.md) and are not affected.
    """

    floats: Literal["refuse", "shortest"] | Decimal = "refuse"

    @field_validator("floats", mode="before")
    @classmethod
    def _quantum(cls, value: Any) -> Any:
        if value in ("refuse", "shortest"):
            return value
        number: Decimal | None = None
        if isinstance(value, Decimal) or (isinstance(value, int) and not isinstance(value, bool)):
            number = Decimal(value)
        elif isinstance(value, str):
            from decimal import InvalidOperation

            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                number = None
        if number is None or not number.is_finite() or number <= 0:
            raise ValueError(f"{str(value)[:40]!r}: give refuse, shortest, or a quantum such "
                             "as 0.01")
        return number


class DatedValue(StrictModel):
    """A parameter whose value changes on effective dates."""

    label: Label | None = None
    values: dict[dt.date, Scalar] = Field(min_length=1)

    def at(self, day: dt.date) -> Scalar | None:
        """The value in force on ``day`` (``None`` before the first date)."""
        found = None
        for start in sorted(self.values):
            if start <= day:
                found = self.values[start]
        return found


Parameter = Scalar | DatedValue


def parameter_type(value: Parameter) -> NameType:
    """The formula type of a parameter."""
    sample = value.values[min(value.values)] if isinstance(value, DatedValue) else value
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, Decimal):
        return "number"
    return "text"
