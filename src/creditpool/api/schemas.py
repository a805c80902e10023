"""Shapes shared by every endpoint: pages, amounts, limits."""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, TypeVar, overload

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from creditpool.core.errors import InvalidAmount
from creditpool.validation import ID_PATTERN

T = TypeVar("T")

# Text without control characters (tabs and line breaks are fine)
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500
# An amount in a request: a decimal string such as "0.50" (an integer is fine too). A JSON
# float is accepted by the schema only to be refused by the library with invalid_amount.
AmountIn = Annotated[StrictStr | StrictInt | StrictFloat, Field(examples=["10.00"])]
Limit = Annotated[int, Field(ge=1, le=PAGE_SIZE_MAX)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
Text = Annotated[str, Field(max_length=2000, pattern=PRINTABLE)]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_8601(value: Any) -> Any:
    """Pydantic would read a number (``at=0.5``) as seconds since 1970; only ISO 8601 here."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not _ISO_DATE.match(value)
    ):
        raise ValueError("expected an ISO 8601 date-time with offset, such as 2026-11-02T09:00Z")
    return value


# An instant in a request: ISO 8601 with an offset (a naive one is refused).
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]


class Body(BaseModel):
    """A request body: unknown fields are refused, so that typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class Items(BaseModel, Generic[T]):
    items: list[T]


@overload
def exact(value: str | int | float, field: str = ...) -> str | int: ...
@overload
def exact(value: str | int | float | None, field: str = ...) -> str | int | None: ...
def exact(value: str | int | float | None, field: str = "amount") -> str | int | None:
    """A JSON number with a fraction arrives as a binary float: it cannot be exact."""
    if isinstance(value, float):
        raise InvalidAmount(f'{field} must be a decimal string such as "0.50", not a JSON float')
    return value
