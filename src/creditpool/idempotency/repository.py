"""All SQL about idempotency keys. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from creditpool.storage.tables import idempotency_keys as keys
from creditpool.storage.types import DbRow


def get(conn: Connection, org_id: str, key: str) -> DbRow | None:
    query = select(keys.c.operation, keys.c.request_hash, keys.c.result).where(
        keys.c.org_id == org_id, keys.c.key == key
    )
    return conn.execute(query).first()


def insert(
    conn: Connection,
    *,
    org_id: str,
    key: str,
    operation: str,
    request_hash: str,
    result: dict[str, Any],
    created_at: datetime,
) -> None:
    conn.execute(
        keys.insert().values(
            org_id=org_id,
            key=key,
            operation=operation,
            request_hash=request_hash,
            result=result,
            created_at=created_at,
        )
    )


def delete_older_than(conn: Connection, cutoff: datetime) -> int:
    return conn.execute(delete(keys).where(keys.c.created_at < cutoff)).rowcount
