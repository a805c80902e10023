"""All SQL about credit requests. Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from creditpool.repositories.pages import newest_first, where_given
from creditpool.storage.tables import credit_requests as table


def insert_request(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(table).values(**values))


def get(conn: Connection, org_id: str, request_id: int) -> dict[str, Any] | None:
    query = select(table).where(table.c.org_id == org_id, table.c.id == request_id)
    row = conn.execute(query).first()
    return None if row is None else dict(row._mapping)


def list_for_org(
    conn: Connection,
    org_id: str,
    status: str | None,
    before_id: int | None,
    limit: int | None,
) -> list[dict[str, Any]]:
    """Newest first: older than ``before_id``, at most ``limit``."""
    query = where_given(select(table).where(table.c.org_id == org_id), (table.c.status, status))
    rows = conn.execute(newest_first(query, table.c.id, before_id, limit))
    return [dict(r._mapping) for r in rows]


def close(conn: Connection, org_id: str, request_id: int, **values: Any) -> None:
    conn.execute(
        update(table).where(table.c.org_id == org_id, table.c.id == request_id).values(**values)
    )
