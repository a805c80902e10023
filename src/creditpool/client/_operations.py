"""Every operation of the HTTP API, written once for both clients.

Each function here has the public signature and documentation of a client method and returns
what to send: a ``Call`` (one request: its method, path, body and how its answer is read,
with the encoding of ``_routes.py``) or ``Pages`` (a list read page by page). A list
that the clients take a page at a time (a ``cursor``, and an iterator beside it) is read
by its query (``creditpool.queries``): such a method's parameters are the query's fields,
so it hands them on as they are (``locals()``, its arguments and nothing else yet).
``Operations`` lists them once as methods (``_binding.py``): ``Client`` sends what they
build and waits, ``AsyncClient`` returns awaitables. So a parameter is named in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from creditpool import commands as cmd
from creditpool import queries as q
from creditpool.audit.models import AuditRecord
from creditpool.auth.models import ApiKey, ApiKeyWithSecret
from creditpool.client import _routes as routes
from creditpool.client._binding import listing, operation, walk
from creditpool.client._routes import (
    MISSING,
    Amount,
    Call,
    Health,
    Missing,
    Page,
    Pages,
    amount,
    health,
    key_or_new,
    nothing,
    one,
    only_given,
    optional_amount,
    org_path,
    query_params,
    segment,
)
from creditpool.consumptions.models import Consumption
from creditpool.core.errors import InvalidInput
from creditpool.core.forecast import WINDOW_DAYS_DEFAULT
from creditpool.corrections.models import Adjustment, Correction
from creditpool.credit_requests.models import CreditRequest
from creditpool.features.models import Feature, FeaturePrice
from creditpool.forecast.models import Forecast
from creditpool.grants.models import Grant, GrantDetail
from creditpool.holds.models import Hold
from creditpool.ledger.models import Balance, LedgerEntry
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.webhooks.models import (
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def healthz() -> Call[Health]:
    """Whether the server process is alive."""
    return Call("GET", "/healthz", health)


def readyz() -> Call[Health]:
    """Whether the server reaches its database at the newest migration (never retried)."""
    return Call("GET", "/readyz", health, answers=frozenset({503}), retry=False)


# -- organizations, teams, members ---------------------------------------------------


def create_org(
    org_id: str,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    low_balance_thresholds: list[Amount] | tuple[Amount, ...] = (),
    expiry_notice_days: int | None = None,
    idempotency_key: str | None = None,
) -> Call[Org]:
    """Create an organization; ``org_id`` is the vendor's own identifier. Its low-balance
    alerts and expiry notice period (default 7 days) may be set at once."""
    body = {
        "id": org_id,
        "name": name,
        "timezone": timezone or "UTC",
        "low_balance_thresholds": [amount(v, "threshold") for v in low_balance_thresholds],
        "expiry_notice_days": expiry_notice_days,
    }
    return Call(
        "POST", "/v1/orgs", one(Org), body=body, idempotency_key=key_or_new(idempotency_key)
    )


def orgs(
    *, cursor: str | None = None, limit: int | None = None, search: str | None = None
) -> Call[Page[Org]]:
    """One page of organizations in id order, optionally matching ``search``."""
    return routes.page(q.Orgs, Org, locals())


def iter_orgs(*, search: str | None = None, limit: int | None = None) -> Pages[Org]:
    """Every organization, fetching page after page of ``limit``."""
    return routes.walk(q.Orgs, Org, locals())


def org(org_id: str) -> Call[Org]:
    return Call("GET", org_path(org_id), one(Org))


def update_org(
    org_id: str,
    *,
    name: str | Missing = MISSING,
    timezone: str | Missing = MISSING,
    low_balance_thresholds: list[Amount] | tuple[Amount, ...] | Missing | None = MISSING,
    expiry_notice_days: int | Missing = MISSING,
    idempotency_key: str | None = None,
) -> Call[Org]:
    """Change the name, time zone, low-balance thresholds or expiry notice period;
    others stay as they are."""
    thresholds: list[str] | Missing | None = None
    if low_balance_thresholds is MISSING:
        thresholds = MISSING
    elif low_balance_thresholds is not None:
        thresholds = [amount(v, "threshold") for v in low_balance_thresholds]
    body = only_given(
        {},
        name=name,
        timezone=timezone,
        low_balance_thresholds=thresholds,
        expiry_notice_days=expiry_notice_days,
    )
    key = key_or_new(idempotency_key)
    return Call("PATCH", org_path(org_id), one(Org), body=body, idempotency_key=key)


def create_team(
    org_id: str,
    team_id: str,
    *,
    name: str | None = None,
    monthly_limit: Amount | None = None,
    idempotency_key: str | None = None,
) -> Call[Team]:
    """Create a team, optionally with an (informational) monthly limit."""
    body = {
        "id": team_id,
        "name": name,
        "monthly_limit": optional_amount(monthly_limit, "monthly_limit"),
    }
    path = f"{org_path(org_id)}/teams"
    return Call("POST", path, one(Team), body=body, idempotency_key=key_or_new(idempotency_key))


def update_team(
    org_id: str,
    team_id: str,
    *,
    name: str | Missing = MISSING,
    monthly_limit: Amount | Missing | None = MISSING,
    idempotency_key: str | None = None,
) -> Call[Team]:
    """Change the name or the monthly limit (None removes the limit)."""
    limit = monthly_limit
    if limit is not MISSING and limit is not None:
        limit = amount(limit, "monthly_limit")
    body = only_given({}, name=name, monthly_limit=limit)
    path = f"{org_path(org_id)}/teams/{segment(team_id, 'team_id')}"
    return Call("PATCH", path, one(Team), body=body, idempotency_key=key_or_new(idempotency_key))


def set_team_limit(
    org_id: str,
    team_id: str,
    monthly_limit: Amount | None,
    *,
    idempotency_key: str | None = None,
) -> Call[Team]:
    """Set (or with None remove) a team's monthly limit."""
    return update_team(
        org_id, team_id, monthly_limit=monthly_limit, idempotency_key=idempotency_key
    )


def set_member(
    org_id: str,
    user_id: str,
    *,
    team_id: str | None = None,
    display_name: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Member]:
    """Put a member in a team (or in none); future consumptions are attributed to it.
    The member is replaced as a whole: None is no team, no display name."""
    body = {"team_id": team_id, "display_name": display_name}
    key = key_or_new(idempotency_key)
    return Call("PUT", _member(org_id, user_id), one(Member), body=body, idempotency_key=key)


def member(org_id: str, user_id: str) -> Call[Member]:
    return Call("GET", _member(org_id, user_id), one(Member))


def _member(org_id: str, user_id: str) -> str:
    return f"{org_path(org_id)}/members/{segment(user_id, 'user_id')}"


# -- features ------------------------------------------------------------------------


def set_feature(
    key: str,
    *,
    name: str | None = None,
    cost: Amount | None = None,
    unit_rate: Amount | None = None,
    unit: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Feature]:
    """Price a feature from now on: a fixed ``cost`` per use, or a ``unit_rate`` per
    ``unit`` (its history records the API key's name as ``changed_by``)."""
    body = {
        "name": name,
        "cost": optional_amount(cost, "cost"),
        "unit_rate": optional_amount(unit_rate, "unit_rate"),
        "unit": unit,
    }
    path = f"/v1/features/{segment(key, 'key')}"
    return Call("PUT", path, one(Feature), body=body, idempotency_key=key_or_new(idempotency_key))


# -- grants --------------------------------------------------------------------------


def grant_info(org_id: str, grant_id: int) -> Call[GrantDetail]:
    """A grant with the consumptions it ``funded``."""
    path = f"{org_path(org_id)}/grants/{segment(grant_id, 'grant_id')}"
    return Call("GET", path, one(GrantDetail))


def adjustment(org_id: str, adjustment_id: int) -> Call[Adjustment]:
    path = f"{org_path(org_id)}/adjustments/{segment(adjustment_id, 'adjustment_id')}"
    return Call("GET", path, one(Adjustment))


def audit_log(
    org_id: str, *, cursor: str | int | None = None, limit: int | None = None
) -> Call[Page[AuditRecord]]:
    """One page of the organization's audit trail (settings, keys, portal links,
    refunds: who, when, what), newest first."""
    return routes.page(q.AuditLog, AuditRecord, locals())


def corrections(
    org_id: str,
    *,
    kind: str | None = None,
    grant_id: int | None = None,
    cursor: str | int | None = None,
    limit: int | None = None,
) -> Call[Page[Correction]]:
    """One page of the staff corrections (who, when, why), newest first."""
    return routes.page(q.Corrections, Correction, locals())


# -- consumptions and refunds --------------------------------------------------------


def consumptions(
    org_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    feature: str | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    status: str | None = None,
    cursor: str | int | None = None,
    limit: int | None = None,
) -> Call[Page[Consumption]]:
    """One page of consumptions, newest first (``status``: paid or refunded)."""
    return routes.page(q.Consumptions, Consumption, locals())


def iter_consumptions(
    org_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    feature: str | None = None,
    user_id: str | None = None,
    team_id: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> Pages[Consumption]:
    """Every matching consumption, newest first, page after page."""
    return routes.walk(q.Consumptions, Consumption, locals())


def consumption(org_id: str, consumption_id: int) -> Call[Consumption]:
    path = f"{org_path(org_id)}/consumptions/{segment(consumption_id, 'consumption_id')}"
    return Call("GET", path, one(Consumption))


# -- holds ---------------------------------------------------------------------------


def holds(
    org_id: str,
    *,
    status: str | None = None,
    cursor: str | int | None = None,
    limit: int | None = None,
) -> Call[Page[Hold]]:
    """One page of holds, newest first (``status``: open, settled, released, expired)."""
    return routes.page(q.Holds, Hold, locals())


def iter_holds(org_id: str, *, status: str | None = None, limit: int | None = None) -> Pages[Hold]:
    """Every matching hold, newest first, page after page."""
    return routes.walk(q.Holds, Hold, locals())


def hold_of(org_id: str, hold_id: int) -> Call[Hold]:
    path = f"{org_path(org_id)}/holds/{segment(hold_id, 'hold_id')}"
    return Call("GET", path, one(Hold))


# -- balance and ledger --------------------------------------------------------------


def balance(org_id: str, at: datetime | None = None) -> Call[Balance]:
    """Total, used, left, held and upcoming, now or at a past instant ``at``."""
    return Call("GET", f"{org_path(org_id)}/balance", one(Balance), query_params(at=at))


def forecast(org_id: str, *, window_days: int = WINDOW_DAYS_DEFAULT) -> Call[Forecast]:
    """When Left reaches zero at the pace of the paid usage of the last ``window_days``
    days (1 to 365) ending now, what expires unused, and each team's projected month-end
    usage against its limit (``teams`` is None for a member's key)."""
    asked = query_params(window_days=window_days)
    return Call("GET", f"{org_path(org_id)}/forecast", one(Forecast), asked)


def ledger(
    org_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | int | None = None,
    limit: int | None = None,
) -> Call[Page[LedgerEntry]]:
    """One page of ledger entries, oldest first."""
    return routes.page(q.Ledger, LedgerEntry, locals())


def iter_ledger(
    org_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
) -> Pages[LedgerEntry]:
    """Every ledger entry in order, page after page."""
    return routes.walk(q.Ledger, LedgerEntry, locals())


# -- events and webhooks -------------------------------------------------------------
# The library pages these lists by the id of the last item seen, which is what the API's
# cursor is: the clients take the library's ``before``/``after`` and send it as the cursor.

ENDPOINTS = "/v1/webhook-endpoints"


def _endpoint(endpoint_id: str) -> str:
    return f"{ENDPOINTS}/{segment(endpoint_id, 'endpoint_id')}"


def _delivery(endpoint_id: str, delivery_id: int) -> str:
    return f"{_endpoint(endpoint_id)}/deliveries/{segment(delivery_id, 'delivery_id')}"


def create_webhook_endpoint(
    url: str,
    *,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool = True,
) -> Call[WebhookEndpointWithSecret]:
    """A new endpoint (a service key); its secret is in the answer, and never again."""
    body: dict[str, Any] = {"url": url, "description": description, "enabled": enabled}
    if event_types is not None:  # None: every event, which the API spells by leaving it out
        body["event_types"] = event_types
    made = one(WebhookEndpointWithSecret)
    return Call("POST", ENDPOINTS, made, body=body, idempotency_key=key_or_new(None))


def webhook_endpoint(endpoint_id: str) -> Call[WebhookEndpoint]:
    return Call("GET", _endpoint(endpoint_id), one(WebhookEndpoint))


def update_webhook_endpoint(endpoint_id: str, **changes: Any) -> Call[WebhookEndpoint]:
    """Change ``url``, ``event_types``, ``description`` or ``enabled``; only those given."""
    path, body = _endpoint(endpoint_id), dict(changes)
    return Call("PATCH", path, one(WebhookEndpoint), body=body, idempotency_key=key_or_new(None))


def delete_webhook_endpoint(endpoint_id: str) -> Call[None]:
    return Call("DELETE", _endpoint(endpoint_id), nothing, idempotency_key=key_or_new(None))


def rotate_webhook_secret(endpoint_id: str) -> Call[WebhookEndpointWithSecret]:
    """A new secret; the old one keeps signing beside it for 24 hours."""
    return _post(f"{_endpoint(endpoint_id)}/rotate-secret", WebhookEndpointWithSecret)


def webhook_delivery(endpoint_id: str, delivery_id: int) -> Call[WebhookDelivery]:
    return Call("GET", _delivery(endpoint_id, delivery_id), one(WebhookDelivery))


def retry_webhook_delivery(endpoint_id: str, delivery_id: int) -> Call[WebhookDelivery]:
    """Send a delivery again now."""
    return _post(f"{_delivery(endpoint_id, delivery_id)}/retry", WebhookDelivery)


def test_webhook_endpoint(endpoint_id: str) -> Call[WebhookDelivery]:
    """Send the endpoint a ``webhook.test`` event."""
    return _post(f"{_endpoint(endpoint_id)}/test", WebhookDelivery)


def _post(path: str, model: type[M], key: str | None = None) -> Call[M]:
    """A POST with an empty body (the action is in the path) that answers ``model``."""
    return Call("POST", path, one(model), body={}, idempotency_key=key_or_new(key))


# -- an organization's API keys ------------------------------------------------------


def create_key(
    role: str,
    *,
    org_id: str | None = None,
    user_id: str | None = None,
    name: str | None = None,
    idempotency_key: str | None = None,
) -> Call[tuple[ApiKey, str]]:
    """A new ``admin`` or ``member`` (with ``user_id``) key of ``org_id`` and its secret
    token, shown once (a retry with the same ``idempotency_key`` shows it again)."""
    body: dict[str, Any] = {"role": role, "name": name}
    if user_id is not None:  # an admin key names no user: the field is refused
        body["user_id"] = user_id
    key = key_or_new(idempotency_key)
    return Call("POST", _keys_of(org_id), _with_secret, body=body, idempotency_key=key)


def revoke_key(
    key_id: str, *, org_id: str | None = None, idempotency_key: str | None = None
) -> Call[ApiKey]:
    """Revoke one of ``org_id``'s keys: it stops working within seconds."""
    path = f"{_keys_of(org_id)}/{segment(key_id, 'key_id')}/revoke"
    return _post(path, ApiKey, idempotency_key)


def _keys_of(org_id: str | None) -> str:
    if org_id is None:
        raise InvalidInput("over HTTP a key belongs to one organization: give org_id")
    return f"{org_path(org_id)}/keys"


def _with_secret(response: httpx.Response) -> tuple[ApiKey, str]:
    made = ApiKeyWithSecret.model_validate_json(response.content)
    return made.key, made.secret


class Operations:
    """The operations as methods: ``Client`` and ``AsyncClient`` inherit them and say how
    a ``Call`` is sent (``_send``)."""

    healthz = operation(healthz)
    readyz = operation(readyz)
    create_org = operation(create_org)
    orgs = operation(orgs)
    iter_orgs = walk(iter_orgs)
    org = operation(org)
    update_org = operation(update_org)
    create_team = operation(create_team)
    teams = listing(routes.pages(q.Teams, Team))
    update_team = operation(update_team)
    set_team_limit = operation(set_team_limit)
    set_member = operation(set_member)
    member = operation(member)
    members = listing(routes.pages(q.Members, Member))
    team_usage = listing(routes.pages(q.TeamUsage, TeamUsage))
    features = listing(routes.pages(q.Features, Feature))
    set_feature = operation(set_feature)
    feature_prices = listing(routes.pages(q.FeaturePrices, FeaturePrice))
    grant = operation(routes.command(cmd.Grant))
    grants = listing(routes.pages(q.Grants, Grant))
    grant_info = operation(grant_info)
    void_grant = operation(routes.command(cmd.VoidGrant))
    change_grant_expiry = operation(routes.command(cmd.ChangeGrantExpiry))
    adjust = operation(routes.command(cmd.Adjust))
    adjustment = operation(adjustment)
    audit_log = operation(audit_log)
    corrections = operation(corrections)
    consume = operation(routes.command(cmd.Consume))
    consumptions = operation(consumptions)
    iter_consumptions = walk(iter_consumptions)
    consumption = operation(consumption)
    refund = operation(routes.command(cmd.Refund))
    hold = operation(routes.command(cmd.Hold))
    settle = operation(routes.command(cmd.Settle))
    release = operation(routes.command(cmd.Release))
    holds = operation(holds)
    iter_holds = walk(iter_holds)
    hold_of = operation(hold_of)
    balance = operation(balance)
    forecast = operation(forecast)
    ledger = operation(ledger)
    iter_ledger = walk(iter_ledger)
    events = operation(routes.items(q.Events, Event))
    create_webhook_endpoint = operation(create_webhook_endpoint)
    webhook_endpoints = listing(routes.pages(q.WebhookEndpoints, WebhookEndpoint))
    webhook_endpoint = operation(webhook_endpoint)
    update_webhook_endpoint = operation(update_webhook_endpoint)
    delete_webhook_endpoint = operation(delete_webhook_endpoint)
    rotate_webhook_secret = operation(rotate_webhook_secret)
    webhook_deliveries = operation(routes.items(q.WebhookDeliveries, WebhookDelivery))
    webhook_delivery = operation(webhook_delivery)
    retry_webhook_delivery = operation(retry_webhook_delivery)
    test_webhook_endpoint = operation(test_webhook_endpoint)
    request_credits = operation(routes.command(cmd.RequestCredits))
    credit_requests = listing(routes.pages(q.CreditRequests, CreditRequest))
    grant_credit_request = operation(routes.command(cmd.GrantCreditRequest))
    dismiss_credit_request = operation(routes.command(cmd.DismissCreditRequest))
    create_key = operation(create_key)
    keys = listing(routes.pages(q.Keys, ApiKey))
    revoke_key = operation(revoke_key)
