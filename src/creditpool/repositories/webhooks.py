"""All SQL of webhook endpoints, deliveries and attempts. Never commits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from creditpool.queries import WebhookDeliveries, WebhookEndpoints
from creditpool.repositories.outbox import EVENT_COLUMNS, EventRow
from creditpool.repositories.pages import listed, where_given
from creditpool.storage import compiled
from creditpool.storage.tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from creditpool.storage.types import UTCDateTime


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: str
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    secret: str  # sealed (see webhooks/secrets.py)
    old_secret: str | None
    old_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime
    last_success_at: datetime | None
    failing_since: datetime | None
    disabled_reason: str | None

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


@dataclass(frozen=True, slots=True)
class DeliveryColumns:
    """A delivery's own columns, in the order of ``_DELIVERY_OWN_COLUMNS``."""

    id: int
    endpoint_id: str
    event_id: str
    org_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRow(DeliveryColumns):
    """A delivery as the log reads it: its own columns, then its event's type."""

    event_type: str


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_id: int
    at: datetime
    duration_ms: int
    status_code: int | None
    response: str | None
    error: str | None


_E = webhook_endpoints.c
_D = webhook_deliveries.c
_INSERT_DELIVERIES = compiled.Write(webhook_deliveries.insert())
# A delivery row as DeliveryRow reads it: the delivery's own columns, then its event's type.
_DELIVERY_OWN_COLUMNS = (
    _D.id,
    _D.endpoint_id,
    _D.event_id,
    _D.org_id,
    _D.status,
    _D.attempts,
    _D.next_attempt_at,
    _D.created_at,
    _D.last_attempt_at,
    _D.delivered_at,
)
_DELIVERY_COLUMNS = (*_DELIVERY_OWN_COLUMNS, events.c.type)


def _endpoint(r: Any) -> EndpointRow:
    return EndpointRow(**{c.name: r._mapping[c.name] for c in webhook_endpoints.c})


def _delivery(r: Any) -> DeliveryRow:
    return DeliveryRow(*r)


# -- endpoints -----------------------------------------------------------------------------


def insert_endpoint(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(webhook_endpoints).values(**values))


def get_endpoint(conn: Connection, endpoint_id: str, *, lock: bool = False) -> EndpointRow | None:
    query = select(webhook_endpoints).where(_E.id == endpoint_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else _endpoint(row)


def list_endpoints(conn: Connection, asked: WebhookEndpoints) -> list[EndpointRow]:
    query = listed(select(webhook_endpoints), _E.id, asked)
    return [_endpoint(r) for r in conn.execute(query)]


def update_endpoint(conn: Connection, endpoint_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(webhook_endpoints).where(_E.id == endpoint_id).values(**values))


def delete_endpoint(conn: Connection, endpoint_id: str) -> None:
    ids = select(_D.id).where(_D.endpoint_id == endpoint_id)
    conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
    conn.execute(delete(webhook_deliveries).where(_D.endpoint_id == endpoint_id))
    conn.execute(delete(webhook_endpoints).where(_E.id == endpoint_id))


# -- deliveries ----------------------------------------------------------------------------


def insert_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """New deliveries' rows (one ``executemany``: a fan-out makes many)."""
    compiled.run(conn, _INSERT_DELIVERIES, rows)


def insert_delivery(conn: Connection, row: dict[str, Any]) -> int:
    result = conn.execute(insert(webhook_deliveries).values(**row).returning(_D.id))
    return int(result.scalar_one())


def _with_event() -> Any:
    return select(*_DELIVERY_COLUMNS).join(events, events.c.id == _D.event_id)


def get_delivery(conn: Connection, delivery_id: int, *, lock: bool = False) -> DeliveryRow | None:
    query = _with_event().where(_D.id == delivery_id)
    if lock:
        query = query.with_for_update(of=webhook_deliveries)
    row = conn.execute(query).first()
    return None if row is None else _delivery(row)


def list_deliveries(conn: Connection, asked: WebhookDeliveries) -> list[DeliveryRow]:
    status = None if asked.status is None else str(asked.status)  # a DeliveryStatus's text
    query = where_given(
        _with_event().where(_D.endpoint_id == asked.endpoint_id), (_D.status, status)
    )
    return [_delivery(r) for r in conn.execute(listed(query, _D.id, asked))]


def update_delivery(conn: Connection, delivery_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(webhook_deliveries).where(_D.id == delivery_id).values(**values))


def attempts_of(conn: Connection, delivery_ids: list[int]) -> dict[int, list[AttemptRow]]:
    if not delivery_ids:
        return {}
    a = webhook_attempts.c
    query = (
        select(a.delivery_id, a.at, a.duration_ms, a.status_code, a.response, a.error)
        .where(a.delivery_id.in_(delivery_ids))
        .order_by(a.delivery_id, a.at, a.id)
    )
    found: dict[int, list[AttemptRow]] = {i: [] for i in delivery_ids}
    for r in conn.execute(query):
        found[r.delivery_id].append(AttemptRow(*r))
    return found


def health(conn: Connection, endpoint_ids: list[str]) -> dict[str, dict[str, int]]:
    """Deliveries per status for each endpoint."""
    if not endpoint_ids:
        return {}
    query = (
        select(_D.endpoint_id, _D.status, func.count())
        .where(_D.endpoint_id.in_(endpoint_ids))
        .group_by(_D.endpoint_id, _D.status)
    )
    counts: dict[str, dict[str, int]] = {i: {} for i in endpoint_ids}
    for endpoint_id, status, n in conn.execute(query):
        counts[endpoint_id][status] = int(n)
    return counts


def any_due(conn: Connection, now: datetime) -> bool:
    query = (
        select(_D.id)
        .join(webhook_endpoints, and_(_E.id == _D.endpoint_id, _E.enabled.is_(True)))
        .where(_D.status == "pending", _D.next_attempt_at <= now)
        .limit(1)
    )
    return conn.execute(query).first() is not None


# -- the delivery worker's round -----------------------------------------------------------
#
# A round runs a handful of statements whatever its size, each built once here (SQLAlchemy
# then reuses its compiled form: no statement building or cache key per call), and the
# attempts' rows go to the driver in one ``executemany`` (storage.compiled).

# The oldest events not fanned out yet, taken (marked dispatched) in the statement that
# finds them; rows another worker holds are skipped.
_TAKE_EVENTS = (
    update(events)
    .where(
        events.c.id.in_(
            select(events.c.id)
            .where(events.c.dispatched.is_(False))
            .order_by(events.c.created_at, events.c.id)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(skip_locked=True)
        )
    )
    .values(dispatched=True)
    .returning(*EVENT_COLUMNS)
)
_EVENTS_BY_ID = select(*EVENT_COLUMNS).where(events.c.id.in_(bindparam("ids", expanding=True)))
_ENABLED_ENDPOINTS = select(webhook_endpoints).where(_E.enabled.is_(True)).order_by(_E.id)
_ENDPOINTS_BY_ID = select(webhook_endpoints).where(_E.id.in_(bindparam("ids", expanding=True)))
_LOCK_ENDPOINTS = _ENDPOINTS_BY_ID.order_by(_E.id).with_for_update()
# Due deliveries to enabled endpoints, oldest due first, leased in the statement that finds
# them (their next attempt moves past the lease, their attempt count goes up).
_CLAIM = (
    update(webhook_deliveries)
    .where(
        _D.id.in_(
            select(_D.id)
            .join(webhook_endpoints, and_(_E.id == _D.endpoint_id, _E.enabled.is_(True)))
            .where(
                _D.status == "pending",
                _D.next_attempt_at <= bindparam("at_now", type_=UTCDateTime),
            )
            .order_by(_D.next_attempt_at, _D.id)
            .limit(bindparam("limit", type_=Integer))
            .with_for_update(of=webhook_deliveries, skip_locked=True)
        )
    )
    .values(
        next_attempt_at=bindparam("lease_until", type_=UTCDateTime),
        attempts=_D.attempts + 1,
        last_attempt_at=bindparam("at_now", type_=UTCDateTime),
    )
    .returning(*_DELIVERY_OWN_COLUMNS)
)
_INSERT_ATTEMPTS = compiled.Write(webhook_attempts.insert())
_DELIVERED = (
    update(webhook_deliveries)
    .where(_D.id.in_(bindparam("ids", expanding=True)))
    .values(
        status="delivered",
        delivered_at=bindparam("at_now", type_=UTCDateTime),
        next_attempt_at=None,
    )
)
_SUCCEEDED = (
    update(webhook_endpoints)
    .where(_E.id.in_(bindparam("ids", expanding=True)))
    .values(last_success_at=bindparam("at_now", type_=UTCDateTime), failing_since=None)
)
_RESCHEDULE = (
    update(webhook_deliveries)
    .where(_D.id == bindparam("delivery_id"))
    .values(
        status=bindparam("new_status"),
        next_attempt_at=bindparam("next_at", type_=UTCDateTime),
    )
)


def _event(r: Any) -> EventRow:
    return EventRow(*r)


def take_events(conn: Connection, limit: int) -> list[EventRow]:
    """Mark up to ``limit`` of the oldest undispatched events dispatched, and return them
    (oldest first), skipping those another worker holds."""
    taken = [_event(r) for r in conn.execute(_TAKE_EVENTS, {"limit": limit})]
    taken.sort(key=lambda e: (e.created_at, e.id))
    return taken


def events_by_id(conn: Connection, event_ids: set[str]) -> dict[str, EventRow]:
    if not event_ids:
        return {}
    return {r.id: _event(r) for r in conn.execute(_EVENTS_BY_ID, {"ids": list(event_ids)})}


def enabled_endpoints(conn: Connection) -> list[EndpointRow]:
    return [_endpoint(r) for r in conn.execute(_ENABLED_ENDPOINTS)]


def endpoints_of(
    conn: Connection, endpoint_ids: set[str], *, lock: bool = False
) -> dict[str, EndpointRow]:
    """Endpoints by id; with ``lock``, locked in the order of their ids (so that two
    workers locking several never wait for each other in a circle)."""
    if not endpoint_ids:
        return {}
    query = _LOCK_ENDPOINTS if lock else _ENDPOINTS_BY_ID
    found = conn.execute(query, {"ids": sorted(endpoint_ids)})
    return {r.id: _endpoint(r) for r in found}


@dataclass(frozen=True, slots=True)
class Claimed(DeliveryColumns):
    """A delivery as leased: ``attempts`` counts the attempt about to be made."""

    def row(self, event_type: str) -> DeliveryRow:
        """The delivery as the log reads it, with its event's type."""
        return DeliveryRow(**dataclasses.asdict(self), event_type=event_type)


def claim_due(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to enabled endpoints, oldest due first, skipping
    those another worker holds: if the worker dies while sending, they fall due again when
    the lease ends (at least once)."""
    params = {"at_now": now, "lease_until": lease_until, "limit": limit}
    claimed = [Claimed(*r) for r in conn.execute(_CLAIM, params)]
    claimed.sort(key=lambda d: d.id)
    return claimed


def record_attempts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The delivery log's rows (``delivery_id, at, duration_ms, status_code, response,
    error``), in one ``executemany``."""
    compiled.run(conn, _INSERT_ATTEMPTS, rows)


def record_delivered(
    conn: Connection, delivery_ids: list[int], endpoint_ids: set[str], now: datetime
) -> None:
    """Deliveries that got a 2xx, and their endpoints' last success (two statements)."""
    if delivery_ids:
        conn.execute(_DELIVERED, {"ids": delivery_ids, "at_now": now})
        conn.execute(_SUCCEEDED, {"ids": sorted(endpoint_ids), "at_now": now})


def reschedule(conn: Connection, changes: list[tuple[int, str, datetime | None]]) -> None:
    """Failed attempts' deliveries: (id, status, next attempt) each."""
    if changes:
        conn.execute(
            _RESCHEDULE,
            [{"delivery_id": i, "new_status": s, "next_at": n} for i, s, n in changes],
        )
