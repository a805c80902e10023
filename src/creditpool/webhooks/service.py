"""Webhook endpoints (the vendor's), their deliveries, and organizations' events."""

from __future__ import annotations

import secrets as random
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from creditpool import validation as check
from creditpool.core.errors import InvalidInput, NotFound
from creditpool.core.events import EventDraft, EventType
from creditpool.queries import Events, WebhookDeliveries, WebhookEndpoints
from creditpool.repositories import outbox
from creditpool.repositories import webhooks as repository
from creditpool.repositories.outbox import EventRow
from creditpool.repositories.rows import as_model
from creditpool.repositories.webhooks import AttemptRow, DeliveryRow, EndpointRow
from creditpool.storage.uow import Tx
from creditpool.webhooks import network
from creditpool.webhooks.models import (
    DeliveryAttempt,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)
from creditpool.webhooks.network import IPNetwork, RefusedAddress
from creditpool.webhooks.secrets import SecretBox, SecretKeyMismatch, new_secret

URL_LENGTH_MAX = 2000
DESCRIPTION_LENGTH_MAX = 500
# A rotated-out secret keeps signing beside the new one this long, so that the receiver
# can switch without missing a delivery.
OLD_SECRET_TTL = timedelta(hours=24)
SUBSCRIBABLE = sorted(t.value for t in EventType if t is not EventType.WEBHOOK_TEST)


def _endpoint_id() -> str:
    return "we_" + random.token_hex(12)


def check_url(url: object, networks: list[IPNetwork]) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url must be an http or https URL")
    url = url.strip()
    if len(url) > URL_LENGTH_MAX:
        raise InvalidInput(f"url must be at most {URL_LENGTH_MAX} characters")
    check.text(url, "url", URL_LENGTH_MAX)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError as error:  # e.g. an unbalanced "[" (IPv6 literal), port 99999
        raise InvalidInput(f"url is not a valid URL: {error}") from error
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"url must be an http or https URL with a host: {url}")
    try:
        network.check_url(url, networks)
    except RefusedAddress as error:
        raise InvalidInput(f"url: {error}") from error
    return url


def check_event_types(types: object) -> list[str]:
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidInput("event_types must be a list of event types (empty: every event)")
    unknown = sorted(set(types) - set(SUBSCRIBABLE))
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0]!r}; the types are: {', '.join(SUBSCRIBABLE)}"
        )
    return sorted(set(types))


def create_endpoint(
    tx: Tx,
    box: SecretBox,
    networks: list[IPNetwork],
    *,
    url: str,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool = True,
) -> WebhookEndpointWithSecret:
    secret = new_secret()
    endpoint_id = _endpoint_id()
    values = {
        "id": endpoint_id,
        "url": check_url(url, networks),
        "description": check.text(description, "description", DESCRIPTION_LENGTH_MAX),
        "event_types": check_event_types(event_types or []),
        "enabled": bool(enabled),
        "secret": box.seal(secret),
        "created_at": tx.now,
        "updated_at": tx.now,
    }
    repository.insert_endpoint(tx.conn, values)
    return _with_secret(require_endpoint(tx, endpoint_id), secret)


def require_endpoint(tx: Tx, endpoint_id: str, *, lock: bool = False) -> EndpointRow:
    row = repository.get_endpoint(tx.conn, endpoint_id, lock=lock)
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id!r} not found")
    return row


def get_endpoint(tx: Tx, endpoint_id: str) -> WebhookEndpoint:
    return to_model(require_endpoint(tx, endpoint_id))


ALL = WebhookEndpoints()  # every endpoint


def list_endpoints(tx: Tx, asked: WebhookEndpoints = ALL) -> list[WebhookEndpoint]:
    return [to_model(r) for r in repository.list_endpoints(tx.conn, asked)]


def endpoints_health(tx: Tx) -> list[tuple[WebhookEndpoint, dict[str, int]]]:
    """Every endpoint with its deliveries counted per status (the staff console's health
    view), read in the caller's transaction so that the two agree."""
    endpoints = list_endpoints(tx)
    counts = repository.health(tx.conn, [e.id for e in endpoints])
    return [(e, counts.get(e.id, {})) for e in endpoints]


def update_endpoint(
    tx: Tx, networks: list[IPNetwork], endpoint_id: str, changes: dict[str, Any]
) -> WebhookEndpoint:
    unknown = set(changes) - {"url", "event_types", "description", "enabled"}
    if unknown:
        raise InvalidInput(f"cannot change {sorted(unknown)[0]!r} of a webhook endpoint")
    current = require_endpoint(tx, endpoint_id, lock=True)
    values: dict[str, Any] = {"updated_at": tx.now}
    if "url" in changes:
        values["url"] = check_url(changes["url"], networks)
    if "event_types" in changes:
        values["event_types"] = check_event_types(changes["event_types"] or [])
    if "description" in changes:
        values["description"] = check.text(
            changes["description"], "description", DESCRIPTION_LENGTH_MAX
        )
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise InvalidInput("enabled must be true or false")
        values["enabled"] = changes["enabled"]
        if changes["enabled"] and not current.enabled:  # enabled again: a fresh start
            values.update(failing_since=None, disabled_reason=None)
    repository.update_endpoint(tx.conn, endpoint_id, values)
    return get_endpoint(tx, endpoint_id)


def delete_endpoint(tx: Tx, endpoint_id: str) -> None:
    require_endpoint(tx, endpoint_id, lock=True)
    repository.delete_endpoint(tx.conn, endpoint_id)


def rotate_secret(tx: Tx, box: SecretBox, endpoint_id: str) -> WebhookEndpointWithSecret:
    """A new secret; the current one keeps signing beside it for 24 hours."""
    current = require_endpoint(tx, endpoint_id, lock=True)
    secret = new_secret()
    try:
        box.open(current.secret)
        old, until = current.secret, tx.now + OLD_SECRET_TTL
    except SecretKeyMismatch:
        # Sealed under another server key: it could not sign, and kept it would fail every
        # delivery for 24 hours (the rotation is what the refusal tells the vendor to do).
        old, until = None, None
    repository.update_endpoint(
        tx.conn,
        endpoint_id,
        {
            "secret": box.seal(secret),
            "old_secret": old,
            "old_secret_until": until,
            "updated_at": tx.now,
        },
    )
    return _with_secret(require_endpoint(tx, endpoint_id), secret)


def deliveries(tx: Tx, asked: WebhookDeliveries) -> list[WebhookDelivery]:
    require_endpoint(tx, asked.endpoint_id)
    rows = repository.list_deliveries(tx.conn, asked)
    attempts = repository.attempts_of(tx.conn, [r.id for r in rows])
    return [delivery_model(r, attempts[r.id]) for r in rows]


def get_delivery(tx: Tx, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
    row = repository.get_delivery(tx.conn, delivery_id)
    if row is None or row.endpoint_id != endpoint_id:
        raise NotFound(f"delivery {delivery_id} of webhook endpoint {endpoint_id!r} not found")
    return delivery_model(row, repository.attempts_of(tx.conn, [row.id])[row.id])


def retry(tx: Tx, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now, whatever its status (a delivered one is sent once more:
    receivers deduplicate on ``webhook-id``)."""
    get_delivery(tx, endpoint_id, delivery_id)
    repository.update_delivery(
        tx.conn, delivery_id, {"status": "pending", "next_attempt_at": tx.now}
    )
    return get_delivery(tx, endpoint_id, delivery_id)


def send_test(tx: Tx, endpoint_id: str) -> WebhookDelivery:
    """A ``webhook.test`` event, delivered to this endpoint only (to a disabled endpoint,
    once it is enabled again)."""
    endpoint = require_endpoint(tx, endpoint_id)
    draft = EventDraft(
        EventType.WEBHOOK_TEST,
        tx.now,
        {"endpoint_id": endpoint.id, "url": endpoint.url, "message": "a test from creditpool"},
    )
    outbox.insert_events(tx.conn, None, [draft], tx.now)
    outbox.mark_dispatched(tx.conn, [draft.id])
    delivery_id = repository.insert_delivery(
        tx.conn, new_delivery(endpoint.id, draft.id, None, tx.now)
    )
    return get_delivery(tx, endpoint_id, delivery_id)


def new_delivery(endpoint_id: str, event_id: str, org_id: str | None, now: Any) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "org_id": org_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def org_events(tx: Tx, asked: Events) -> list[Event]:
    return [event_model(r) for r in outbox.recent(tx.conn, asked)]


# -- models --------------------------------------------------------------------------------


def to_model(row: EndpointRow) -> WebhookEndpoint:
    expires = row.old_secret_until if row.old_secret else None
    return as_model(WebhookEndpoint, row, previous_secret_expires_at=expires)


def _with_secret(row: EndpointRow, secret: str) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret(**to_model(row).model_dump(), secret=secret)


def delivery_model(row: DeliveryRow, attempts: list[AttemptRow]) -> WebhookDelivery:
    return as_model(
        WebhookDelivery,
        row,
        attempt_count=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        attempts=[as_model(DeliveryAttempt, a) for a in attempts],
    )


def event_model(row: EventRow) -> Event:
    return as_model(Event, row)
