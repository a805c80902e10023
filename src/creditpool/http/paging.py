"""Lists over HTTP: the query parameters they share, and the page they answer.

Every list answers a ``Page`` and takes ``limit`` and ``cursor``. A cursor is an opaque
string in the document, the same type as the ``next_cursor`` it comes from, even when the
server reads it as a number; its pattern says what the server accepts.

A list route's query parameters are a ``Params`` model made from the list's query
(``creditpool.queries``): the class names its query (``__query__``) and declares only what
is its own: how the wire takes a filter no other list has (a status, a kind) and a cursor
of its own pattern. The filters several lists share (``FILTERS``), the cursor by the kind
of its field, ``limit`` and the order (the filters, ``limit``, ``cursor``) come from here,
and ``read`` calls the library's method of the same query and answers the page.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field, PlainValidator

from creditpool import queries
from creditpool.http.deps import IdFilter, Month, SearchText
from creditpool.http.schemas import PAGE_SIZE_DEFAULT, DeclaredModelMeta, Instant, Limit, Page
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


# The filters several lists share, as the wire takes them (by the query's field's name).
FILTERS: dict[str, Any] = {
    "since": Since,
    "until": Until,
    "feature": IdFilter,
    "user_id": IdFilter,
    "team_id": IdFilter,
    "search": SearchText,
    "month": Annotated[Month | None, Query()],
}
# The cursor by the query's cursor field, where the list's class declares none.
CURSORS: dict[str, Any] = {"after": NameCursor, "after_seq": SeqCursor}


def _cursor(query: type[queries.Query]) -> Any:
    if query.cursor in CURSORS:
        return CURSORS[query.cursor]
    if query.cursor.endswith("_id"):  # an item's number
        return NumberCursor
    raise TypeError(f"declare the cursor of {query.__name__}: its pattern is its own")


def _order(namespace: dict[str, Any], query: type[queries.Query]) -> None:
    """The parameters in the document's order: the query's filters as the class declares
    them, ``limit``, then the cursor (the paging first for a query that says so); before
    pydantic reads the class."""
    declared: dict[str, Any] = namespace.get("__annotations__", {})
    chosen: dict[str, Any] = {}
    for name in query.filters():
        attribute = _attribute(name)
        if attribute not in declared and name not in FILTERS:
            raise TypeError(f"declare the filter {name} of {query.__name__}")
        chosen[attribute] = declared.get(attribute, FILTERS.get(name))
        namespace.setdefault(attribute, None)
    if set(declared) - {*chosen, "cursor"}:
        raise TypeError(f"declare only the filters of {query.__name__} and its cursor")
    paging = {"limit": Limit, "cursor": declared.get("cursor") or _cursor(query)}
    namespace["__annotations__"] = paging | chosen if query.paging_first else chosen | paging
    namespace["limit"] = PAGE_SIZE_DEFAULT
    namespace.setdefault("cursor", None)


def _attribute(name: str) -> str:
    """A filter's attribute: its wire name (``team``, not ``team_id``), or its own where
    the wire's is a Python word (``since``: an alias says ``from``)."""
    wire = queries.WIRE_NAMES.get(name, name)
    return name if keyword.iskeyword(wire) else wire


class _ParamsMeta(DeclaredModelMeta):
    declaration = "__query__"
    fill = staticmethod(_order)


class Params(BaseModel, metaclass=_ParamsMeta):
    """A list route's query parameters, made from its query (set ``__query__``)."""

    __query__: ClassVar[type[queries.Query]]
    if TYPE_CHECKING:
        limit: int
        cursor: Any

    def chosen(self) -> dict[str, Any]:
        """The query's filters, by the library's names."""
        return {name: getattr(self, _attribute(name)) for name in self.__query__.filters()}

    def read(self, method: Callable[..., list[T]], *ids: object, **given: Any) -> Page[T]:
        """One page: ``method`` (the library's, of this query) called with the path's
        ``ids``, the filters (``given`` in place of the request's), the cursor, and one item
        more than the limit, which only tells that there is more."""
        query = self.__query__
        asked = {**self.chosen(), **given, query.cursor: self.cursor, "limit": self.limit + 1}
        return page(method(*ids, **asked), self.limit, attrgetter(query.item_key))
