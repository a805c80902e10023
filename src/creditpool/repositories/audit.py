"""All SQL about the audit trail. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from creditpool.storage.tables import audit_log
from creditpool.storage.types import DbRow


def insert_record(
    conn: Connection,
    *,
    at: datetime,
    org_id: str | None,
    by: str | None,
    action: str,
    details: dict[str, Any],
) -> None:
    conn.execute(
        insert(audit_log).values(at=at, org_id=org_id, by=by, action=action, details=details)
    )


def list_records(
    conn: Connection, org_id: str | None, before_id: int | None, limit: int
) -> Sequence[DbRow]:
    """Newest first (an organization's, or every one with ``org_id`` None)."""
    query = select(audit_log)
    if org_id is not None:
        query = query.where(audit_log.c.org_id == org_id)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit)).all()
