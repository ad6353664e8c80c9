"""Per-product rate tables: a reward per unit of each product sold.

New business is rewarded by product, by how hard it is to sell:

>>> from incentives import Plan, RateTable
>>> rt = RateTable(id="new_business", items={"new_fax": 60, "new_ipvpn": 260})
>>> plan = Plan(name="demo", inputs={"metrics": {"new_fax": {"default": 0}, "new_ipvpn": {"default": 0}}},
...             policies=[rt])
>>> plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"new_fax": 3}}]).results[0].total
Decimal('180.00')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field, field_validator

from ..money import CONTEXT, ZERO
from ..runtime import Explained, Line, PayeeState, money_places, money_text
from ..wording import Step, Wording, signed_sum
from .base import (
    CompileContext,
    Compiled,
    Expr,
    Identifier,
    Label,
    PolicyBase,
    StrictModel,
    explains,
)

if TYPE_CHECKING:
    from ..kernel import KernelWriter

__all__ = ["RateItem", "RateTable"]


class RateItem(StrictModel):
    """One product: how many were sold (``quantity``, default the metric named like
    the item) and the reward ``per_unit``."""

    #: how many were sold (default: the metric named like the item)
    quantity: Expr | None = None
    #: the reward per unit (a formula)
    per_unit: Expr
    #: the product's name on statements
    label: Label | None = None

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        """The schema accepts the shorthand too: a number alone is short for ``{per_unit: <number>}``."""
        return {"anyOf": [{"type": "string"}, {"type": "number"}, handler(core_schema)]}


class RateTable(PolicyBase):
    """Sum over products of quantity x per-unit reward. ``items`` maps a product
    id to a per-unit amount, or to a :class:`RateItem`."""

    type: Literal["rate_table"] = "rate_table"
    #: product id to a per-unit reward, or to a mapping with quantity, per_unit and label
    items: dict[Identifier, RateItem] = Field(min_length=1)

    @field_validator("items", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ({"per_unit": v} if isinstance(v, (int, str, Decimal)) and not isinstance(v, bool) else v)
                for k, v in value.items()
            }
        return value

    def compile(self, ctx: CompileContext) -> Compiled:
        return _CompiledRateTable(self, ctx)


class ItemUse(NamedTuple):
    """One item of a rate table line, as it was used (a rate table line captures one
    for each item of its table, in order)."""

    #: the quantity sold
    quantity: Decimal
    #: the rate per unit
    per_unit: Decimal


class _CompiledRateTable(Compiled):
    line_type = "new_business"

    def __init__(self, spec: RateTable, ctx: CompileContext) -> None:
        super().__init__(spec, ctx)
        self.items = [
            (
                key,
                item.label or key,
                ctx.formula(item.quantity if item.quantity is not None else key,
                            "items", key, "quantity"),
                ctx.formula(item.per_unit, "items", key, "per_unit"),
            )
            for key, item in spec.items.items()
        ]
        self._explain = Explained(self.details, self.json_details)

    def apply(self, s: PayeeState) -> None:
        env = s.env
        total = ZERO
        used: list[ItemUse] = []  # the quantity and unit rate of each item
        for _, _, qty_f, unit_f in self.items:
            qty = qty_f.fn(env)
            unit = unit_f.fn(env)
            total += qty * unit
            used.append(ItemUse(qty, unit))
        self.line(s, total, explain=self._explain, captured=tuple(used))

    def emit(self, w: KernelWriter) -> bool:
        total = w.temp("t")
        w(f"{total} = _ZERO")
        used = []
        for _, _, qty_f, unit_f in self.items:
            qty = w.evaluate(qty_f)
            unit = w.evaluate(unit_f)
            w(f"{total} = {total} + {qty} * {unit}")
            used.append(w.record(ItemUse, quantity=qty, per_unit=unit))
        w.line(self, total, explain=self._explain, captured=f"({', '.join(used)},)")
        return True

    def details(self, used: Iterable[Iterable[Any]]) -> dict[str, Any]:
        """The line's details (the items sold) from the quantities and rates it used
        (an :class:`ItemUse` for each item of the table, in order)."""
        rows = []
        for (key, label, _, _), item in zip(self.items, map(ItemUse._make, used), strict=True):
            if item.quantity:
                rows.append({"item": key, "label": label, "quantity": item.quantity,
                             "per_unit": item.per_unit, "amount": item.quantity * item.per_unit})
        return {"items": rows}

    def json_details(self, used: Iterable[Iterable[Any]], amount: Decimal
                     ) -> dict[str, Any] | None:
        """What ``jsonable(line.details)`` gives, built straight from the capture
        (``None`` when a quantity or a rate is not a Decimal: built as it is then)."""
        places = money_places(amount)
        rows = []
        for (key, label, _, _), (quantity, per_unit) in zip(self.items, used, strict=True):
            if quantity:
                if quantity.__class__ is not Decimal or per_unit.__class__ is not Decimal:
                    return None
                rows.append({"item": key, "label": label, "quantity": str(quantity),
                             "per_unit": str(per_unit),
                             "amount": money_text(CONTEXT.multiply(quantity, per_unit),
                                                  places)})
        return {"items": rows}


# ------------------------------------------------------------------ statement
def looks_like(d: Mapping[str, Any]) -> bool:
    """Whether ``d`` is a rate table's details: its items and nothing else."""
    return set(d) == {"items"}


@explains(RateTable, looks_like=looks_like)
def statement(c: Wording, line: Line, spec: RateTable | None) -> list[Step]:
    """A rate table line: quantity x rate for each item, and their sum."""
    f = c.fmt
    steps = []
    parts = []
    for row in line.details.get("items", []):
        label = row.get("label") or row.get("item")
        item = str(row.get("item"))
        name = f"{label} ({item})" if label != item else item
        amt = f.money(row.get("amount"))
        parts.append(amt)
        steps.append(Step(name, f"{f.num(row.get('quantity'))} x {f.num(row.get('per_unit'))}",
                          amt))
    if not parts:
        steps.append(Step(c.t("nothing sold"), None, f.money(ZERO)))
    elif len(parts) > 1:
        steps.append(Step(c.t("sum"), signed_sum(parts), f.money(line.amount)))
    return steps
