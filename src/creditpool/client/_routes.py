"""What a request of the API is (a ``Call``: what to send and how to read the answer; a list's
``Pages``), and what every operation (``_operations.py``) builds one with: the encoding of
amounts, path segments and times, the decoding into the library's models, and the requests
made from a command or a query.

``Client`` and ``AsyncClient`` differ only in how they send a ``Call``; the arguments, the
encoding and the decoding live here and in ``_operations.py``, once.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from creditpool.client._errors import error_from
from creditpool.commands import AMOUNTS, KEY, Command, rules
from creditpool.core.errors import InvalidAmount, InvalidInput
from creditpool.queries import WIRE_NAMES, Query

T = TypeVar("T")
P = ParamSpec("P")
U = TypeVar("U")
M = TypeVar("M", bound=BaseModel)

Amount: TypeAlias = str | int | Decimal
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING = _Missing.MISSING
"""The default of fields a PATCH leaves alone (None is a value: "remove the limit")."""

Missing: TypeAlias = _Missing


class Page(BaseModel, Generic[T]):
    """One page of a list: ``data``, and when ``has_more``, the ``next_cursor`` to pass as
    ``cursor`` for the next page (None on the last)."""

    model_config = ConfigDict(frozen=True)

    data: list[T]
    has_more: bool
    next_cursor: str | None


class Health(BaseModel):
    """The answer of ``/healthz`` or ``/readyz``."""

    model_config = ConfigDict(frozen=True)

    status: str
    detail: str | None = None

    @property
    def ok(self) -> bool:
        """Alive (``/healthz``) or ready to serve (``/readyz``)."""
        return self.status in ("ok", "ready")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request. A mutation carries its idempotency key, fixed for every attempt."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    idempotency_key: str | None = None
    answers: frozenset[int] = frozenset()  # error statuses that are answers, not failures
    retry: bool = True

    @property
    def mutating(self) -> bool:
        return self.idempotency_key is not None

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        """Built once: every attempt sends the very same bytes and key."""
        headers: dict[str, str] = {}
        content: bytes | None = None
        if self.idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = self.idempotency_key
        if self.body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(self.body, default=_json_default).encode()
        return http.build_request(
            self.method, self.path, params=self.params, content=content, headers=headers
        )

    def result(self, response: httpx.Response) -> T:
        if response.is_success or response.status_code in self.answers:
            return self.decode(response)
        raise error_from(response)

    def answer(self, sent: httpx.Response | httpx.TransportError) -> T:
        """What the last attempt gave: the result, or the error it ended in."""
        if isinstance(sent, httpx.TransportError):
            raise sent
        return self.result(sent)

    def map(self, then: Callable[[T], U]) -> Call[U]:
        """The same request, its answer passed through ``then``."""
        decode = self.decode
        return dataclasses.replace(self, decode=lambda response: then(decode(response)))  # type: ignore[arg-type, return-value]


@dataclass(frozen=True)
class Pages(Generic[T]):
    """Items read page by page: from the cursor ``start`` (the library's ``after`` or
    ``before``: an id is its item's cursor), one page when ``limit`` is given here, else
    every page to the end. A ``listing`` collects them, a ``walk`` iterates."""

    fetch: Callable[[str | None], Call[Page[T]]]
    start: object = None
    limit: int | None = None

    def first(self) -> Call[Page[T]]:
        return self.fetch(None if self.start is None else str(self.start))

    def after(self, page: Page[T]) -> Call[Page[T]] | None:
        """The next page's request, or None when ``page`` ends the list."""
        if self.limit is not None or not page.has_more:
            return None
        return self.fetch(page.next_cursor)


# -- encoding ----------------------------------------------------------------------------


def amount(value: object, name: str = "amount") -> str:
    """An amount as the exact decimal string the API wants; floats are refused here."""
    if isinstance(value, bool | float):
        raise InvalidAmount(f"{name} must be a decimal string, an int or a Decimal, not a float")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidAmount(f"{name} must be a finite number, not {value!r}")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise InvalidAmount(f"{name} must be a decimal string, an int or a Decimal")


def optional_amount(value: object, name: str) -> str | None:
    return None if value is None else amount(value, name)


def segment(value: object, name: str) -> str:
    text = str(value)
    if not text:
        raise InvalidInput(f"{name} must be a non-empty string")
    return quote(text, safe="")


def org_path(org_id: str) -> str:
    return f"/v1/orgs/{segment(org_id, 'org_id')}"


def query_params(**values: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        out[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    return out


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def key_or_new(given: object) -> str:
    if given is None:
        return str(uuid.uuid4())
    if not isinstance(given, str):
        raise InvalidInput("over HTTP an idempotency key is a string")
    return given


def command(kind: Callable[P, Command[M]]) -> Callable[Concatenate[str, P], Call[M]]:
    """The request of a client method made from a command (``creditpool.commands``): the
    organization's id, then the command's fields, which go in the path (its ids) or the
    body (amounts as exact decimal strings, mappings as objects); the key in the header."""
    k = cast(type[Command[M]], kind)
    ids, fields = k.path_ids(), k.body_fields()
    amounts = frozenset(name for name, r, _ in rules(k) if r in AMOUNTS)
    decode = cast(Callable[[httpx.Response], M], one(k.result))

    def build(org_id: str, *args: Any, **kwargs: Any) -> Call[M]:
        made = kind(*args, **kwargs)
        path = k.path.format(**{name: segment(getattr(made, name), name) for name in ids})
        body = {name: _wire(name, getattr(made, name), amounts) for name in fields}
        key = key_or_new(getattr(made, KEY))
        return Call(k.method, f"{org_path(org_id)}/{path}", decode, body=body, idempotency_key=key)

    build.__doc__ = k.doc()
    build.__signature__ = k.method_signature()  # type: ignore[attr-defined]
    return cast(Callable[Concatenate[str, P], Call[M]], build)


def pages(kind: Callable[P, Query], model: type[M]) -> Callable[P, Pages[M]]:
    """The requests of a client list method made from a query (``creditpool.queries``):
    the query's fields, which go in the path (its ids) or the query string (by their wire
    names; the limit as it is), read page by page from the query's cursor on."""
    k = cast(type[Query], kind)
    decode = _page(model)

    def build(*args: Any, **kwargs: Any) -> Pages[M]:
        made = kind(*args, **kwargs)
        return Pages(
            lambda cursor: _fetch(made, decode, cursor), getattr(made, k.cursor), made.limit
        )

    build.__doc__ = k.doc()
    build.__signature__ = k.method_signature(f"Pages[{model.__name__}]")  # type: ignore[attr-defined]
    return cast(Callable[P, Pages[M]], build)


def items(kind: Callable[P, Query], model: type[M]) -> Callable[P, Call[list[M]]]:
    """The request of a client method made from a query whose cursor the clients take as
    the library does (an item's id: ``before``): one page, its items."""
    k = cast(type[Query], kind)
    decode = _page(model)

    def build(*args: Any, **kwargs: Any) -> Call[list[M]]:
        made = kind(*args, **kwargs)
        cursor = getattr(made, k.cursor)
        return _fetch(made, decode, None if cursor is None else str(cursor)).map(_data)

    build.__doc__ = k.doc()
    build.__signature__ = k.method_signature(f"Call[list[{model.__name__}]]")  # type: ignore[attr-defined]
    return cast(Callable[P, Call[list[M]]], build)


def _data(page: Page[T]) -> list[T]:
    return page.data


def page(kind: type[Query], model: type[M], given: Mapping[str, Any]) -> Call[Page[M]]:
    """One page of a list, the request of a client method that takes the query's fields
    (``given``: its arguments) with the ``cursor`` of a page in place of the query's."""
    fields = dict(given)
    cursor = fields.pop("cursor")
    made = kind(**fields)
    return _fetch(made, _page(model), None if cursor is None else str(cursor))


def walk(kind: type[Query], model: type[M], given: Mapping[str, Any]) -> Pages[M]:
    """Every item of a list, page after page of the query's ``limit``: the requests of a
    client method that takes the query's fields (``given``: its arguments)."""
    made = kind(**given)
    decode = _page(model)
    return Pages(lambda cursor: _fetch(made, decode, cursor))


def _fetch(
    made: Query, decode: Callable[[httpx.Response], Page[M]], cursor: str | None
) -> Call[Page[M]]:
    """The request of one page of ``made`` from ``cursor`` on: the query's ids in the
    path, its filters by their wire names in the query string, and the paging."""
    k = type(made)
    path = k.path.format(**{name: segment(_id_of(made, name), name) for name in k.path_ids()})
    chosen = {WIRE_NAMES.get(name, name): getattr(made, name) for name in k.filters()}
    paging = {"cursor": cursor, "limit": made.limit}
    params = (
        query_params(**paging, **chosen) if k.paging_first else query_params(**chosen, **paging)
    )
    return Call("GET", f"/v1/{path}", decode, params)


def _id_of(made: Query, name: str) -> object:
    value = getattr(made, name)
    if value is None:  # only a key's organization is optional: in the library
        raise InvalidInput("over HTTP a key belongs to one organization: give org_id")
    return value


def _wire(name: str, value: object, amounts: frozenset[str]) -> object:
    if name in amounts:
        return optional_amount(value, name)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def only_given(body: dict[str, Any], **fields: object) -> dict[str, Any]:
    """Only the fields given: what a PATCH leaves alone is not sent."""
    body.update({k: v for k, v in fields.items() if v is not MISSING})
    return body


# -- decoding ----------------------------------------------------------------------------


def one(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _page(model: type[M]) -> Callable[[httpx.Response], Page[M]]:
    shape = Page[model]  # type: ignore[valid-type]  # a runtime type argument
    return lambda response: shape.model_validate_json(response.content)


def nothing(response: httpx.Response) -> None:
    return None


def health(response: httpx.Response) -> Health:
    data = response.json()
    return Health(status=str(data.get("status")), detail=data.get("detail"))
