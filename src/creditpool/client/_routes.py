"""Every route of the API as a ``Call``: what to send and how to read the answer.

``Client`` and ``AsyncClient`` differ only in how they send a ``Call``; the arguments, the
encoding of amounts and times, and the decoding into the library's models live here once.
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

from creditpool.auth.models import ApiKey, ApiKeyWithSecret
from creditpool.client._errors import error_from
from creditpool.commands import AMOUNTS, KEY, Command, rules
from creditpool.consumptions.models import Consumption
from creditpool.core.errors import InvalidAmount, InvalidInput
from creditpool.corrections.models import Adjustment
from creditpool.features.models import Feature
from creditpool.forecast.models import Forecast
from creditpool.grants.models import GrantDetail
from creditpool.holds.models import Hold
from creditpool.ledger.models import Balance
from creditpool.orgs.models import Member, Org, Team
from creditpool.queries import WIRE_NAMES, Query
from creditpool.webhooks.models import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)

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


def _optional_amount(value: object, name: str) -> str | None:
    return None if value is None else amount(value, name)


def _segment(value: object, name: str) -> str:
    text = str(value)
    if not text:
        raise InvalidInput(f"{name} must be a non-empty string")
    return quote(text, safe="")


def _org(org_id: str) -> str:
    return f"/v1/orgs/{_segment(org_id, 'org_id')}"


def _params(**values: object) -> dict[str, str]:
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


def _key(given: object) -> str:
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
    decode = cast(Callable[[httpx.Response], M], _one(k.result))

    def build(org_id: str, *args: Any, **kwargs: Any) -> Call[M]:
        made = kind(*args, **kwargs)
        path = k.path.format(**{name: _segment(getattr(made, name), name) for name in ids})
        body = {name: _wire(name, getattr(made, name), amounts) for name in fields}
        key = _key(getattr(made, KEY))
        return Call(k.method, f"{_org(org_id)}/{path}", decode, body=body, idempotency_key=key)

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
    path = k.path.format(**{name: _segment(_id_of(made, name), name) for name in k.path_ids()})
    chosen = {WIRE_NAMES.get(name, name): getattr(made, name) for name in k.filters()}
    paging = {"cursor": cursor, "limit": made.limit}
    params = _params(**paging, **chosen) if k.paging_first else _params(**chosen, **paging)
    return Call("GET", f"/v1/{path}", decode, params)


def _id_of(made: Query, name: str) -> object:
    value = getattr(made, name)
    if value is None:  # only a key's organization is optional: in the library
        raise InvalidInput("over HTTP a key belongs to one organization: give org_id")
    return value


def _wire(name: str, value: object, amounts: frozenset[str]) -> object:
    if name in amounts:
        return _optional_amount(value, name)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _set(body: dict[str, Any], **fields: object) -> dict[str, Any]:
    """Only the fields given: what a PATCH leaves alone is not sent."""
    body.update({k: v for k, v in fields.items() if v is not MISSING})
    return body


# -- decoding ----------------------------------------------------------------------------


def _one(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _page(model: type[M]) -> Callable[[httpx.Response], Page[M]]:
    shape = Page[model]  # type: ignore[valid-type]  # a runtime type argument
    return lambda response: shape.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _health(response: httpx.Response) -> Health:
    data = response.json()
    return Health(status=str(data.get("status")), detail=data.get("detail"))


# -- operations --------------------------------------------------------------------------


def healthz() -> Call[Health]:
    return Call("GET", "/healthz", _health)


def readyz() -> Call[Health]:
    return Call("GET", "/readyz", _health, answers=frozenset({503}), retry=False)


def create_org(
    org_id: str,
    name: str | None,
    timezone: str | None,
    low_balance_thresholds: list[Amount] | tuple[Amount, ...],
    expiry_notice_days: int | None,
    key: str | None,
) -> Call[Org]:
    body = {
        "id": org_id,
        "name": name,
        "timezone": timezone or "UTC",
        "low_balance_thresholds": [amount(v, "threshold") for v in low_balance_thresholds],
        "expiry_notice_days": expiry_notice_days,
    }
    return Call("POST", "/v1/orgs", _one(Org), body=body, idempotency_key=_key(key))


def org(org_id: str) -> Call[Org]:
    return Call("GET", _org(org_id), _one(Org))


def update_org(
    org_id: str,
    name: str | Missing,
    timezone: str | Missing,
    low_balance_thresholds: list[Amount] | tuple[Amount, ...] | Missing | None,
    expiry_notice_days: int | Missing,
    key: str | None,
) -> Call[Org]:
    thresholds: list[str] | Missing | None = None
    if low_balance_thresholds is MISSING:
        thresholds = MISSING
    elif low_balance_thresholds is not None:
        thresholds = [amount(v, "threshold") for v in low_balance_thresholds]
    body = _set(
        {},
        name=name,
        timezone=timezone,
        low_balance_thresholds=thresholds,
        expiry_notice_days=expiry_notice_days,
    )
    return Call("PATCH", _org(org_id), _one(Org), body=body, idempotency_key=_key(key))


def create_team(
    org_id: str,
    team_id: str,
    name: str | None,
    monthly_limit: Amount | None,
    key: str | None,
) -> Call[Team]:
    body = {
        "id": team_id,
        "name": name,
        "monthly_limit": _optional_amount(monthly_limit, "monthly_limit"),
    }
    return Call("POST", f"{_org(org_id)}/teams", _one(Team), body=body, idempotency_key=_key(key))


def update_team(
    org_id: str,
    team_id: str,
    name: str | Missing,
    monthly_limit: Amount | Missing | None,
    key: str | None,
) -> Call[Team]:
    limit = monthly_limit
    if limit is not MISSING and limit is not None:
        limit = amount(limit, "monthly_limit")
    body = _set({}, name=name, monthly_limit=limit)
    path = f"{_org(org_id)}/teams/{_segment(team_id, 'team_id')}"
    return Call("PATCH", path, _one(Team), body=body, idempotency_key=_key(key))


def set_member(
    org_id: str, user_id: str, team_id: str | None, display_name: str | None, key: str | None
) -> Call[Member]:
    path = f"{_org(org_id)}/members/{_segment(user_id, 'user_id')}"
    body = {"team_id": team_id, "display_name": display_name}
    return Call("PUT", path, _one(Member), body=body, idempotency_key=_key(key))


def member(org_id: str, user_id: str) -> Call[Member]:
    return Call("GET", f"{_org(org_id)}/members/{_segment(user_id, 'user_id')}", _one(Member))


def set_feature(
    feature_key: str,
    name: str | None,
    cost: Amount | None,
    unit_rate: Amount | None,
    unit: str | None,
    key: str | None,
) -> Call[Feature]:
    body = {
        "name": name,
        "cost": _optional_amount(cost, "cost"),
        "unit_rate": _optional_amount(unit_rate, "unit_rate"),
        "unit": unit,
    }
    path = f"/v1/features/{_segment(feature_key, 'key')}"
    return Call("PUT", path, _one(Feature), body=body, idempotency_key=_key(key))


def grant_info(org_id: str, grant_id: int) -> Call[GrantDetail]:
    path = f"{_org(org_id)}/grants/{_segment(grant_id, 'grant_id')}"
    return Call("GET", path, _one(GrantDetail))


def adjustment(org_id: str, adjustment_id: int) -> Call[Adjustment]:
    path = f"{_org(org_id)}/adjustments/{_segment(adjustment_id, 'adjustment_id')}"
    return Call("GET", path, _one(Adjustment))


def consumption(org_id: str, consumption_id: int) -> Call[Consumption]:
    path = f"{_org(org_id)}/consumptions/{_segment(consumption_id, 'consumption_id')}"
    return Call("GET", path, _one(Consumption))


def _hold_path(org_id: str, hold_id: int) -> str:
    return f"{_org(org_id)}/holds/{_segment(hold_id, 'hold_id')}"


def hold_of(org_id: str, hold_id: int) -> Call[Hold]:
    return Call("GET", _hold_path(org_id, hold_id), _one(Hold))


def balance(org_id: str, at: datetime | None) -> Call[Balance]:
    return Call("GET", f"{_org(org_id)}/balance", _one(Balance), _params(at=at))


def forecast(org_id: str, window_days: int) -> Call[Forecast]:
    return Call("GET", f"{_org(org_id)}/forecast", _one(Forecast), _params(window_days=window_days))


# -- events and webhooks -----------------------------------------------------------------
# The library pages these lists by the id of the last item seen, which is what the API's
# cursor is: the clients take the library's ``before``/``after`` and send it as the cursor.


ENDPOINTS = "/v1/webhook-endpoints"


def _endpoint(endpoint_id: str) -> str:
    return f"{ENDPOINTS}/{_segment(endpoint_id, 'endpoint_id')}"


def _delivery(endpoint_id: str, delivery_id: int) -> str:
    return f"{_endpoint(endpoint_id)}/deliveries/{_segment(delivery_id, 'delivery_id')}"


def create_webhook_endpoint(
    url: str, event_types: list[str] | None, description: str | None, enabled: bool
) -> Call[WebhookEndpointWithSecret]:
    body: dict[str, Any] = {"url": url, "description": description, "enabled": enabled}
    if event_types is not None:  # None: every event, which the API spells by leaving it out
        body["event_types"] = event_types
    return Call(
        "POST", ENDPOINTS, _one(WebhookEndpointWithSecret), body=body, idempotency_key=_key(None)
    )


def webhook_endpoint(endpoint_id: str) -> Call[WebhookEndpoint]:
    return Call("GET", _endpoint(endpoint_id), _one(WebhookEndpoint))


def update_webhook_endpoint(endpoint_id: str, changes: Mapping[str, Any]) -> Call[WebhookEndpoint]:
    path = _endpoint(endpoint_id)
    body = dict(changes)
    return Call("PATCH", path, _one(WebhookEndpoint), body=body, idempotency_key=_key(None))


def delete_webhook_endpoint(endpoint_id: str) -> Call[None]:
    return Call("DELETE", _endpoint(endpoint_id), _nothing, idempotency_key=_key(None))


def rotate_webhook_secret(endpoint_id: str) -> Call[WebhookEndpointWithSecret]:
    path = f"{_endpoint(endpoint_id)}/rotate-secret"
    return Call("POST", path, _one(WebhookEndpointWithSecret), body={}, idempotency_key=_key(None))


def webhook_delivery(endpoint_id: str, delivery_id: int) -> Call[WebhookDelivery]:
    return Call("GET", _delivery(endpoint_id, delivery_id), _one(WebhookDelivery))


def retry_webhook_delivery(endpoint_id: str, delivery_id: int) -> Call[WebhookDelivery]:
    path = f"{_delivery(endpoint_id, delivery_id)}/retry"
    return Call("POST", path, _one(WebhookDelivery), body={}, idempotency_key=_key(None))


def test_webhook_endpoint(endpoint_id: str) -> Call[WebhookDelivery]:
    path = f"{_endpoint(endpoint_id)}/test"
    return Call("POST", path, _one(WebhookDelivery), body={}, idempotency_key=_key(None))


# -- credit requests ---------------------------------------------------------------------


def _credit_request(org_id: str, request_id: int) -> str:
    return f"{_org(org_id)}/credit-requests/{_segment(request_id, 'request_id')}"


# -- an organization's API keys -------------------------------------------------------------


def _keys_of(org_id: str | None) -> str:
    if org_id is None:
        raise InvalidInput("over HTTP a key belongs to one organization: give org_id")
    return f"{_org(org_id)}/keys"


def _with_secret(response: httpx.Response) -> tuple[ApiKey, str]:
    made = ApiKeyWithSecret.model_validate_json(response.content)
    return made.key, made.secret


def create_key(
    org_id: str | None, role: str, user_id: str | None, name: str | None, key: str | None
) -> Call[tuple[ApiKey, str]]:
    body: dict[str, Any] = {"role": role, "name": name}
    if user_id is not None:  # an admin key names no user: the field is refused
        body["user_id"] = user_id
    return Call("POST", _keys_of(org_id), _with_secret, body=body, idempotency_key=_key(key))


def revoke_key(org_id: str | None, key_id: str, key: str | None) -> Call[ApiKey]:
    path = f"{_keys_of(org_id)}/{_segment(key_id, 'key_id')}/revoke"
    return Call("POST", path, _one(ApiKey), body={}, idempotency_key=_key(key))
