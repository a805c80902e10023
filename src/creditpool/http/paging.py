"""Lists over HTTP: the query parameters they share, and the page they answer.

Every list answers a ``Page`` and takes ``limit`` and ``cursor``. A cursor is an opaque
string in the document, the same type as the ``next_cursor`` it comes from, even when the
server reads it as a number; its pattern says what the server accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import Field, PlainValidator

from creditpool.http.schemas import Instant, Page
from creditpool.validation import ID_PATTERN

T = TypeVar("T")

Since = Annotated[Instant | None, Query(alias="from")]
Until = Annotated[Instant | None, Query(alias="to")]

CURSOR_HELP = "The `next_cursor` of the previous page"
# Numbers written plainly (not "01" or "+1"), at most 18 digits (below 2**62).
NUMBER_CURSOR_PATTERN = r"^[1-9][0-9]{0,17}$"
SEQ_CURSOR_PATTERN = r"^(0|[1-9][0-9]{0,17})$"


def cursor(pattern: str, read: Callable[[str], Any] = str) -> PlainValidator:
    """The validator of a ``cursor`` query parameter: a string matching ``pattern`` in the
    document, handed to the route as ``read`` makes it (a number for a list paged by id)."""
    regex = re.compile(pattern)

    def validate(value: Any) -> Any:
        if isinstance(value, str) and regex.fullmatch(value):
            return read(value)
        raise ValueError("expected the next_cursor of a page of this list")

    return PlainValidator(validate, json_schema_input_type=Annotated[str, Field(pattern=pattern)])


# Lists paged by a number: the id (or seq) of the last item seen.
NumberCursor = Annotated[
    int | None, cursor(NUMBER_CURSOR_PATTERN, int), Query(description=CURSOR_HELP)
]
SeqCursor = Annotated[int | None, cursor(SEQ_CURSOR_PATTERN, int), Query(description=CURSOR_HELP)]
# Lists paged by a name (organizations, teams, members, features).
NameCursor = Annotated[str | None, cursor(ID_PATTERN), Query(description=CURSOR_HELP)]


def page(found: list[T], limit: int, cursor: Callable[[T], object]) -> Page[T]:
    """One page of a list read with ``limit + 1`` rows: the extra row only tells that there
    is more, and the last item kept names where the next page starts."""
    kept = found[:limit]
    more = len(found) > limit
    return Page(data=kept, has_more=more, next_cursor=str(cursor(kept[-1])) if more else None)
