"""All SQL of webhook endpoints, deliveries and attempts. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from creditpool.storage.tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)


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
class DeliveryRow:
    id: int
    endpoint_id: str
    event_id: str
    event_type: str
    org_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


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
_DELIVERY_COLUMNS = (
    _D.id,
    _D.endpoint_id,
    _D.event_id,
    events.c.type,
    _D.org_id,
    _D.status,
    _D.attempts,
    _D.next_attempt_at,
    _D.created_at,
    _D.last_attempt_at,
    _D.delivered_at,
)


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


def list_endpoints(
    conn: Connection,
    *,
    limit: int | None = None,
    after: str | None = None,
    enabled: bool | None = None,
) -> list[EndpointRow]:
    query = select(webhook_endpoints).order_by(_E.id)
    if after is not None:
        query = query.where(_E.id > after)
    if enabled is not None:
        query = query.where(_E.enabled.is_(enabled))
    if limit is not None:
        query = query.limit(limit)
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
    if rows:
        conn.execute(insert(webhook_deliveries), rows)


def insert_delivery(conn: Connection, row: dict[str, Any]) -> int:
    result = conn.execute(insert(webhook_deliveries).values(**row).returning(_D.id))
    return int(result.scalar_one())


def _with_event() -> Any:
    return select(*_DELIVERY_COLUMNS).join(events, events.c.id == _D.event_id)


def due(conn: Connection, now: datetime, limit: int) -> list[DeliveryRow]:
    """Pending deliveries due by ``now`` to enabled endpoints, oldest due first, locked
    (skipping those another worker holds)."""
    query = (
        _with_event()
        .join(webhook_endpoints, and_(_E.id == _D.endpoint_id, _E.enabled.is_(True)))
        .where(_D.status == "pending", _D.next_attempt_at <= now)
        .order_by(_D.next_attempt_at, _D.id)
        .limit(limit)
        .with_for_update(of=webhook_deliveries, skip_locked=True)
    )
    return [_delivery(r) for r in conn.execute(query)]


def get_delivery(conn: Connection, delivery_id: int, *, lock: bool = False) -> DeliveryRow | None:
    query = _with_event().where(_D.id == delivery_id)
    if lock:
        query = query.with_for_update(of=webhook_deliveries)
    row = conn.execute(query).first()
    return None if row is None else _delivery(row)


def list_deliveries(
    conn: Connection,
    endpoint_id: str,
    limit: int,
    before: int | None = None,
    status: str | None = None,
) -> list[DeliveryRow]:
    query = _with_event().where(_D.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(_D.id < before)
    if status is not None:
        query = query.where(_D.status == status)
    return [_delivery(r) for r in conn.execute(query.order_by(_D.id.desc()).limit(limit))]


def update_delivery(conn: Connection, delivery_id: int, values: dict[str, Any]) -> None:
    conn.execute(update(webhook_deliveries).where(_D.id == delivery_id).values(**values))


def claim(conn: Connection, ids: list[int], lease_until: datetime, now: datetime) -> None:
    """Mark deliveries taken until ``lease_until``: if the worker dies while sending, they
    fall due again then (at least once)."""
    conn.execute(
        update(webhook_deliveries)
        .where(_D.id.in_(ids))
        .values(next_attempt_at=lease_until, attempts=_D.attempts + 1, last_attempt_at=now)
    )


def insert_attempts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(webhook_attempts), rows)


def mark_delivered(
    conn: Connection, delivery_ids: list[int], endpoint_ids: set[str], now: datetime
) -> None:
    """Deliveries that got a 2xx, and their endpoints' last success."""
    if not delivery_ids:
        return
    conn.execute(
        update(webhook_deliveries)
        .where(_D.id.in_(delivery_ids))
        .values(status="delivered", delivered_at=now, next_attempt_at=None)
    )
    conn.execute(
        update(webhook_endpoints)
        .where(_E.id.in_(endpoint_ids))
        .values(last_success_at=now, failing_since=None)
    )


def endpoints_by_id(conn: Connection, endpoint_ids: set[str]) -> dict[str, EndpointRow]:
    query = select(webhook_endpoints).where(_E.id.in_(endpoint_ids))
    return {r.id: _endpoint(r) for r in conn.execute(query)}


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
