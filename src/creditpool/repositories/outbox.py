"""All SQL of the events outbox. Never commits.

Events are written in the transaction of the change that caused them; the delivery worker
reads the ones not yet dispatched (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that the
workers of several processes never take the same ones), and the pages and the API read an
organization's recent events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from creditpool.core.events import EventDraft
from creditpool.queries import Events
from creditpool.repositories.pages import listed, where_given
from creditpool.storage import compiled
from creditpool.storage.tables import events


@dataclass(frozen=True, slots=True)
class EventRow:
    id: str
    org_id: str | None
    type: str
    at: datetime
    ledger_seq: int | None
    data: dict[str, Any]
    created_at: datetime


EVENT_COLUMNS = (
    events.c.id,
    events.c.org_id,
    events.c.type,
    events.c.at,
    events.c.ledger_seq,
    events.c.data,
    events.c.created_at,
)


_INSERT = compiled.Write(events.insert())


def _row(r: Any) -> EventRow:
    return EventRow(r.id, r.org_id, r.type, r.at, r.ledger_seq, r.data, r.created_at)


def insert_events(
    conn: Connection, org_id: str | None, drafts: list[EventDraft], now: datetime
) -> None:
    """Write ``drafts``; one whose ``dedupe`` the organization already has is dropped."""
    if not drafts:
        return
    rows = [
        {
            "id": d.id,
            "org_id": org_id,
            "type": d.type.value,
            "at": d.at,
            "ledger_seq": d.ledger_seq,
            "data": d.data,
            "created_at": now,
            "dispatched": False,
            "dedupe": d.dedupe,
        }
        for d in drafts
    ]
    plain = [r for r in rows if r["dedupe"] is None]
    once = [r for r in rows if r["dedupe"] is not None]
    if plain:  # on every change: compiled once (see storage.compiled)
        compiled.run(conn, _INSERT, plain)
    if once:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(events).on_conflict_do_nothing(), once)


def undispatched(conn: Connection, limit: int) -> list[EventRow]:
    """The oldest events no worker has fanned out yet, locked (skipping locked ones)."""
    query = (
        select(*EVENT_COLUMNS)
        .where(events.c.dispatched.is_(False))
        .order_by(events.c.created_at, events.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_row(r) for r in conn.execute(query)]


def mark_dispatched(conn: Connection, ids: list[str]) -> None:
    if ids:
        conn.execute(update(events).where(events.c.id.in_(ids)).values(dispatched=True))


def recent(conn: Connection, asked: Events) -> list[EventRow]:
    """An organization's events, newest first (``before``: an event id, for paging)."""
    ours = select(*EVENT_COLUMNS).where(events.c.org_id == asked.org_id)
    query = where_given(ours, (events.c.type, asked.type))
    return [_row(r) for r in conn.execute(listed(query, events.c.id, asked))]


def after_seq(conn: Connection, org_id: str, ledger_seq: int, upto: int) -> list[EventRow]:
    """The organization's events that follow ledger entries ``ledger_seq`` (exclusive) to
    ``upto`` (inclusive), oldest first: what a live page has not seen yet."""
    query = (
        select(*EVENT_COLUMNS)
        .where(
            events.c.org_id == org_id,
            events.c.ledger_seq > ledger_seq,
            events.c.ledger_seq <= upto,
        )
        .order_by(events.c.ledger_seq, events.c.id)
    )
    return [_row(r) for r in conn.execute(query)]


def get(conn: Connection, event_id: str) -> EventRow | None:
    row = conn.execute(select(*EVENT_COLUMNS).where(events.c.id == event_id)).first()
    return None if row is None else _row(row)


def get_many(conn: Connection, event_ids: list[str]) -> dict[str, EventRow]:
    query = select(*EVENT_COLUMNS).where(events.c.id.in_(set(event_ids)))
    return {r.id: _row(r) for r in conn.execute(query)}


def any_undispatched(conn: Connection) -> bool:
    query = select(events.c.id).where(events.c.dispatched.is_(False)).limit(1)
    return conn.execute(query).first() is not None
