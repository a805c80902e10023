from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, RootModel, Tag, model_validator

from creditpool.core.money import RATE_SCALE, SCALE, parse_credits, parse_rate
from creditpool.features.service import PRICE_MAX_CREDITS
from creditpool.http.schemas import PLAIN, Body, Name, UnitName, amount, decimal_pattern

Cost = Annotated[
    str,
    amount(
        decimal_pattern(SCALE, PRICE_MAX_CREDITS),
        lambda v: parse_credits(v, field="cost"),
        "0.50",
        f"more than 0, at most {PRICE_MAX_CREDITS}, at most {SCALE} decimals; {PLAIN}",
    ),
]
Rate = Annotated[
    str,
    amount(
        decimal_pattern(RATE_SCALE, PRICE_MAX_CREDITS),
        parse_rate,
        "0.0025",
        f"more than 0, at most {PRICE_MAX_CREDITS}, at most {RATE_SCALE} decimals; {PLAIN}",
    ),
]


class FixedPrice(Body):
    """A fixed ``cost`` per use."""

    name: Name | None = None
    cost: Cost
    unit_rate: None = None
    unit: None = None


class PerUnitPrice(Body):
    """A ``unit_rate`` per ``unit`` (e.g. per feedback item); the quantity comes with each
    consumption."""

    name: Name | None = None
    cost: None = None
    unit_rate: Rate
    unit: UnitName | None = Field(default=None, description="None: 'unit'")


def _price_kind(value: Any) -> str:
    """Which shape a body is: the one of the price it gives (a fixed cost, else a rate)."""
    if isinstance(value, dict):
        return "fixed" if value.get("cost") is not None else "per_unit"
    return "fixed" if getattr(value, "cost", None) is not None else "per_unit"


class FeaturePut(
    RootModel[
        Annotated[
            Annotated[FixedPrice, Tag("fixed")] | Annotated[PerUnitPrice, Tag("per_unit")],
            Discriminator(_price_kind),
        ]
    ]
):
    """A fixed ``cost`` per use, or a ``unit_rate`` per ``unit``: exactly one of them (each
    shape has the other's price null). The ``name`` may be left out when the feature exists
    (it keeps its name)."""

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_price(cls, value: Any) -> Any:
        if isinstance(value, dict):
            priced = [k for k in ("cost", "unit_rate") if value.get(k) is not None]
            if len(priced) != 1:
                raise ValueError(
                    "give a feature either a fixed cost per use or a unit_rate per unit"
                    + (", not both" if priced else "")
                )
        return value
