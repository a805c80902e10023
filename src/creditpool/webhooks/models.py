"""What the API, the client and the CLI show of webhooks and events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from creditpool.core.statuses import DeliveryStatus as DeliveryStatus
from creditpool.models import Model


class Event(Model):
    """Something that happened to an organization's pool (or, ``webhook.test``, to an
    endpoint): the body of a webhook is ``{"type", "timestamp", "data"}`` of it."""

    id: str
    org_id: str | None
    type: str
    at: datetime
    ledger_seq: int | None
    data: dict[str, Any]


class WebhookEndpoint(Model):
    id: str
    url: str
    description: str | None
    event_types: list[str]  # empty: every event
    enabled: bool
    created_at: datetime
    updated_at: datetime
    # Health: the last 2xx, and since when it has failed without one (None: healthy).
    last_success_at: datetime | None
    failing_since: datetime | None
    disabled_reason: str | None
    # While a rotated-out secret still signs beside the new one.
    previous_secret_expires_at: datetime | None


class WebhookEndpointWithSecret(WebhookEndpoint):
    """An endpoint as created or rotated: the only time its secret is shown."""

    secret: str


class DeliveryAttempt(Model):
    at: datetime
    duration_ms: int
    status_code: int | None  # None: no answer (refused address, timeout, connection error)
    response: str | None  # the first 1,000 characters of the answer's body
    error: str | None


class WebhookDelivery(Model):
    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    org_id: str | None
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[DeliveryAttempt]
