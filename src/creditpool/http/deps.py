"""Request-scoped dependencies: the pool, the caller, path parameters with limits."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import Field, PlainValidator

from creditpool.http.replay import Replayer
from creditpool.pool import CreditPool
from creditpool.validation import ID_PATTERN


def _pool(request: Request) -> CreditPool:
    pool: CreditPool = request.app.state.pool
    return pool


def _replayer(request: Request) -> Replayer:
    replayer: Replayer = request.app.state.replayer
    return replayer


def _matching(pattern: str, convert: Any, expected: str) -> Any:
    """A validator: the text must match ``pattern`` whole, then ``convert`` reads it."""
    regex = re.compile(pattern)

    def validate(value: Any) -> Any:
        if isinstance(value, str) and regex.fullmatch(value):
            try:
                return convert(value)
            except ValueError:
                pass
        raise ValueError(f"expected {expected}")

    return PlainValidator(validate, json_schema_input_type=Annotated[str, Field(pattern=pattern)])


# Grants and consumptions are numbered per organization from 1: a path names one with its
# number written plainly (not "1.0", "01" or "+1").
OBJECT_ID_PATTERN = r"^[1-9][0-9]{0,17}$"
# Years 1970 to 9998: nothing happened before 1970, and 9999 has no month after it.
YEAR = r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
MONTH_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])$"
DAY_PATTERN = rf"^{YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"

Pool = Annotated[CreditPool, Depends(_pool)]
Replay = Annotated[Replayer, Depends(_replayer)]
OrgId = Annotated[str, Path(pattern=ID_PATTERN, description="The organization's id")]
TeamId = Annotated[str, Path(pattern=ID_PATTERN)]
UserId = Annotated[str, Path(pattern=ID_PATTERN)]
FeatureKey = Annotated[str, Path(pattern=ID_PATTERN)]
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]
SearchText = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
ObjectId = Annotated[
    int, _matching(OBJECT_ID_PATTERN, int, "a positive whole number such as 42"), Path()
]
Month = Annotated[str, Field(pattern=MONTH_PATTERN, examples=["2026-11"])]
# A calendar day (the document says `format: date`; 2026-02-30 is not one).
Day = Annotated[
    date,
    _matching(DAY_PATTERN, date.fromisoformat, "a calendar day YYYY-MM-DD from 1970 to 9998"),
    Field(json_schema_extra={"format": "date"}, examples=["2026-11-01"]),
]
