"""All SQL of the HTTP layer: the idempotency store. Never commits.

``http_idempotency`` holds every idempotency key an API key has used: the response of a
directory change (organizations, teams, members, features), or, with status 0 and no body,
the claim of a ledger change, whose result the library keeps with the organization (see
``idempotency.repository``). Its primary key (API key, key) makes a key take effect once.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict, Unpack

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from creditpool.storage import conflicts
from creditpool.storage.tables import http_idempotency as store
from creditpool.storage.types import DbRow


def get_response(conn: Connection, scope: str, key: str) -> DbRow | None:
    query = select(store.c.fingerprint, store.c.status, store.c.body).where(
        store.c.scope == scope, store.c.key == key
    )
    return conn.execute(query).first()


class Record(TypedDict):
    """What is kept of a key besides the response: whose, for which request, which status."""

    scope: str
    key: str
    org_id: str | None
    fingerprint: str
    status: int
    created_at: datetime


def claim(conn: Connection, **record: Unpack[Record]) -> bool:
    """Claim the key for this transaction's change; False when it is taken. A claim that a
    concurrent transaction holds makes this wait until that one ends (PostgreSQL waits on
    the primary key; SQLite has one writer at a time): then the key is taken if it
    committed, and ours if it rolled back. The body is written by ``finish``."""
    return put_response(conn, body="", **record)


def finish(conn: Connection, scope: str, key: str, body: str) -> None:
    """The response of a claimed key, in the transaction that claimed it."""
    query = update(store).where(store.c.scope == scope, store.c.key == key)
    conn.execute(query.values(body=body))


def put_response(conn: Connection, *, body: str, **record: Unpack[Record]) -> bool:
    """Record a response unless the key is taken; whether it was recorded."""
    statement = conflicts.insert(conn, store).values(body=body, **record)
    recorded = statement.on_conflict_do_nothing(index_elements=[store.c.scope, store.c.key])
    return conflicts.inserted(conn, recorded)
