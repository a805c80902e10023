"""All SQL of the HTTP layer: the idempotency store. Never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.storage.tables import http_idempotency as store
from creditpool.storage.types import DbRow


def get_response(conn: Connection, scope: str, key: str) -> DbRow | None:
    query = select(store.c.fingerprint, store.c.status, store.c.body).where(
        store.c.scope == scope, store.c.key == key
    )
    return conn.execute(query).first()


def put_response(
    conn: Connection,
    *,
    scope: str,
    key: str,
    org_id: str | None,
    fingerprint: str,
    status: int,
    body: str,
    created_at: datetime,
) -> None:
    conn.execute(
        store.insert().values(
            scope=scope,
            key=key,
            org_id=org_id,
            fingerprint=fingerprint,
            status=status,
            body=body,
            created_at=created_at,
        )
    )
