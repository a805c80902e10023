"""Shapes shared by every endpoint: pages, amounts, counts, texts, limits.

Each shape says in the OpenAPI document exactly what the server accepts (a pattern, a
range, an enum), so that a request the document allows is never refused for its form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ForwardRef, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from creditpool import validation as check
from creditpool.core.errors import InvalidAmount, InvalidInput
from creditpool.core.money import (
    MAX_CREDITS,
    MAX_QUANTITY,
    SCALE,
    parse_credits,
    parse_quantity,
    parse_signed_credits,
)
from creditpool.validation import ID_PATTERN, NAME_PATTERN, TEXT_PATTERN

T = TypeVar("T")

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500
Limit = Annotated[int, Field(ge=1, le=PAGE_SIZE_MAX)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
# A pattern on a string also refuses lone surrogates (pydantic cannot match them).
Name = Annotated[str, Field(max_length=check.NAME_LENGTH_MAX, pattern=NAME_PATTERN)]
Text = Annotated[str, Field(max_length=check.TEXT_LENGTH_MAX, pattern=TEXT_PATTERN)]
ShortText = Annotated[str, Field(max_length=check.NAME_LENGTH_MAX, pattern=TEXT_PATTERN)]


def whole_number(value: Any) -> Any:
    """JSON does not tell 1607637.0 from 1607637 (JSON Schema's ``integer`` is both): a
    number with no fraction is that integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[StrictInt, Field(ge=0, le=check.COUNT_MAX), BeforeValidator(whole_number)]

# The descriptive fields of a use of a feature (a consumption, a hold, a settle) and a
# feature's unit, with the limits the library checks (``validation``).
FeatureName = Annotated[str, Field(max_length=check.FEATURE_NAME_LENGTH_MAX, pattern=TEXT_PATTERN)]
UsageAction = Annotated[
    str, Field(max_length=check.ACTION_LENGTH_MAX, pattern=TEXT_PATTERN, examples=["publish"])
]
UnitName = Annotated[
    str, Field(max_length=check.UNIT_LENGTH_MAX, pattern=NAME_PATTERN, examples=["item"])
]
Breakdown = Annotated[
    dict[Id, Count],
    Field(
        max_length=check.BREAKDOWN_KEYS_MAX,
        examples=[{"calls": 12, "emails": 40, "web_searches": 3}],
    ),
]


# -- amounts -----------------------------------------------------------------------------


def decimal_pattern(scale: int, whole_max: int, *, zero: bool = False) -> str:
    """Decimal strings from the smallest step above 0 (or 0 itself) to ``whole_max`` (a
    power of ten), with at most ``scale`` fractional digits, written plainly: no sign,
    exponent, spaces, group separators, or leading zeros."""
    digits = len(str(whole_max)) - 1
    if whole_max != 10**digits or digits < 1 or scale < 1:
        raise ValueError("whole_max must be a power of ten, scale at least 1")
    fraction = rf"(\.[0-9]{{1,{scale}}})?"
    small = "|".join(
        "0" * k + "[1-9]" + (f"[0-9]{{0,{scale - 1 - k}}}" if k < scale - 1 else "")
        for k in range(scale)
    )
    options = [
        f"[1-9][0-9]{{0,{digits - 1}}}{fraction}",
        rf"{whole_max}(\.0{{1,{scale}}})?",
        rf"0\.({small})",
    ]
    if zero:
        options.append(rf"0(\.0{{1,{scale}}})?")
    return "^(" + "|".join(options) + ")$"


def amount(pattern: str, parse: Callable[[str], object], example: str, what: str) -> PlainValidator:
    """The rule of an amount in a request (``Annotated[str, amount(...)]``): a decimal
    string matching ``pattern``, which the document shows. A JSON number is refused (a
    fraction arrives as a binary float: it cannot be exact), and so is any other spelling,
    with the problem code ``invalid_amount`` and the library's reason where it has one."""
    regex = re.compile(pattern)

    def validate(value: Any) -> str:
        if isinstance(value, str) and regex.fullmatch(value):
            return value
        raise PydanticCustomError("invalid_amount", "{reason}", {"reason": _why(value)})

    def _why(value: Any) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f'must be a decimal string such as "{example}", not a JSON number'
        if not isinstance(value, str):
            return f'must be a decimal string such as "{example}"'
        try:
            parse(value)
        except InvalidAmount as error:
            return error.detail
        return f'must be written plainly, such as "{example}" ({what})'

    shown = Annotated[str, Field(pattern=pattern, examples=[example])]
    return PlainValidator(validate, json_schema_input_type=shown)


PLAIN = "no sign, exponent, spaces or leading zeros"
Credits = Annotated[
    str,
    amount(
        decimal_pattern(SCALE, MAX_CREDITS),
        parse_credits,
        "10.00",
        f"more than 0, at most {MAX_CREDITS}, at most {SCALE} decimals; {PLAIN}",
    ),
]
CreditsOrZero = Annotated[
    str,
    amount(
        decimal_pattern(SCALE, MAX_CREDITS, zero=True),
        lambda v: parse_credits(v, allow_zero=True),
        "100.00",
        f"0 to {MAX_CREDITS}, at most {SCALE} decimals; {PLAIN}",
    ),
]
# An adjustment's credits: signed, never zero ("-5.25" debits, "5.25" credits back).
SignedCredits = Annotated[
    str,
    amount(
        "^-?" + decimal_pattern(SCALE, MAX_CREDITS)[1:],
        parse_signed_credits,
        "-5.00",
        f"negative debits, positive credits back; not 0, at most {MAX_CREDITS} either way,"
        f" at most {SCALE} decimals; no exponent, spaces or leading zeros",
    ),
]
Quantity = Annotated[
    str,
    amount(
        decimal_pattern(SCALE, MAX_QUANTITY),
        parse_quantity,
        "120",
        f"more than 0, at most {MAX_QUANTITY}, at most {SCALE} decimals; {PLAIN}",
    ),
]


# -- time zones and metadata -------------------------------------------------------------


def _library_check(checker: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The library's own check, its refusal as a validation error of the field."""

    def validate(value: Any) -> Any:
        try:
            return checker(value)
        except InvalidInput as error:
            raise ValueError(error.detail) from None

    return validate


TimeZone = Annotated[
    str,
    AfterValidator(_library_check(check.timezone)),
    WithJsonSchema(
        {"type": "string", "enum": sorted(check.time_zones()), "examples": ["Europe/Berlin"]}
    ),
]

_N = check.METADATA_NUMBER_MAX
_MetadataText = Annotated[str, Field(pattern=r"^[^\x00]*$")]
# The document's picture of metadata (the server's check is ``validation.metadata``: the
# same, plus at most METADATA_DEPTH_MAX levels and METADATA_BYTES_MAX bytes).
# (Typed Any: it only draws the document, and mypy does not follow a recursive alias.)
_ITSELF: Any = ForwardRef("MetadataValue")
MetadataValue: Any = TypeAliasType(
    "MetadataValue",
    _MetadataText
    | Annotated[StrictInt, Field(ge=-_N, le=_N)]
    | Annotated[float, Field(ge=-_N, le=_N, allow_inf_nan=False)]
    | StrictBool
    | list[_ITSELF]
    | dict[_MetadataText, _ITSELF]
    | None,
)
Metadata = Annotated[
    dict[str, Any],
    PlainValidator(
        _library_check(check.metadata),
        json_schema_input_type=dict[_MetadataText, MetadataValue],
    ),
    Field(
        description=(
            "Free-form JSON about the use: text without NUL, numbers within ±(2**53 - 1),"
            f" at most {check.METADATA_DEPTH_MAX} levels deep and"
            f" {check.METADATA_BYTES_MAX} bytes"
        )
    ),
]


# -- instants ----------------------------------------------------------------------------

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
    """One page of a list (every list is one): ``data`` in the list's order, ``has_more``
    when another page follows, and ``next_cursor``, the opaque ``cursor`` that asks for it
    (null on the last page)."""

    data: list[T]
    has_more: bool
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last one"
    )


def refuse_null(value: Any) -> Any:
    """A field a PATCH may leave out but not set to null (a name): use as a ``before``
    field validator, which runs only for a value that was given."""
    if value is None:
        raise ValueError("may be left out, but not set to null")
    return value


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable() -> Any:
    """The ``Field`` of a field a PATCH may leave out but not set to null. Type it
    ``X | SkipJsonSchema[None]`` (constraints inside ``X``) and refuse null with
    ``refuse_null``: the document then says ``X`` only."""
    return Field(default=None, json_schema_extra=_without_default)


class DeclaredModelMeta(ModelMetaclass):
    """A model whose fields come partly from a declaration the class names (a command's
    body: ``http.bodies``; a list's query parameters: ``http.paging``): ``fill`` puts them
    in the class's namespace before pydantic reads it. There is no public pydantic hook for
    this, hence its internal metaclass, pinned by the lock file (docs/ARCHITECTURE.md)."""

    declaration = ""  # the class attribute that names the declaration

    def __new__(
        mcs, name: str, bases: tuple[type[Any], ...], namespace: dict[str, Any], **kwargs: Any
    ) -> type:
        declared = namespace.get(mcs.declaration)
        if declared is not None:
            mcs.fill(namespace, declared)
        return super().__new__(mcs, name, bases, namespace, **kwargs)

    @staticmethod
    def fill(namespace: dict[str, Any], declared: Any, /) -> None:
        raise NotImplementedError
