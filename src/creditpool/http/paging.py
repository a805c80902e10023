"""Lists over HTTP: the query parameters they share, and the page they answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Query

from creditpool.http.schemas import Instant, Page

T = TypeVar("T")

Since = Annotated[Instant | None, Query(alias="from")]
Until = Annotated[Instant | None, Query(alias="to")]
# The id of the last item seen: the next page is older (consumptions, holds).
BeforeId = Annotated[int | None, Query(ge=1, le=2**62)]


def page(found: list[T], limit: int, cursor: Callable[[T], object]) -> Page[T]:
    """One page of a list read with ``limit + 1`` rows: the extra row only tells that there
    is more, and the last item kept names where the next page starts."""
    more = len(found) > limit
    return Page(items=found[:limit], next_cursor=str(cursor(found[limit - 1])) if more else None)
