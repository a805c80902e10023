"""All SQL about the audit trail. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from creditpool.queries import AuditLog
from creditpool.repositories.pages import listed, where_given
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


def list_records(conn: Connection, asked: AuditLog) -> Sequence[DbRow]:
    """Newest first (an organization's, or every one with ``org_id`` None)."""
    query = where_given(select(audit_log), (audit_log.c.org_id, asked.org_id))
    return conn.execute(listed(query, audit_log.c.id, asked)).all()
