"""All SQL about credit requests. Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from creditpool.queries import CreditRequests
from creditpool.repositories.pages import listed, where_given
from creditpool.storage.tables import credit_requests as table


def insert_request(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(table).values(**values))


def get(conn: Connection, org_id: str, request_id: int) -> dict[str, Any] | None:
    query = select(table).where(table.c.org_id == org_id, table.c.id == request_id)
    row = conn.execute(query).first()
    return None if row is None else dict(row._mapping)


def list_for_org(conn: Connection, asked: CreditRequests) -> list[dict[str, Any]]:
    """Newest first: older than ``before_id``, at most ``limit``."""
    query = select(table).where(table.c.org_id == asked.org_id)
    status = None if asked.status is None else asked.status.value
    rows = conn.execute(listed(where_given(query, (table.c.status, status)), table.c.id, asked))
    return [dict(r._mapping) for r in rows]


def close(conn: Connection, org_id: str, request_id: int, **values: Any) -> None:
    conn.execute(
        update(table).where(table.c.org_id == org_id, table.c.id == request_id).values(**values)
    )
