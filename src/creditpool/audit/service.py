"""The audit trail of changes that write no ledger entry, and of refunds: who did what,
and when.

Ledger changes are their own record (the ledger, a grant's ``granted_by``, a correction's
``by``; a feature's price history keeps ``changed_by``). Creating or changing an
organization, creating or revoking an API key, minting a portal link and refunding a
consumption are recorded here: one row of ``audit_log``, written in the change's own
transaction (so a record exists exactly when its change committed; an idempotent replay
changed nothing and records nothing), and one line on the ``creditpool.audit`` logger
(JSON with ``CREDITPOOL_LOG_FORMAT=json``) as it is made. The row is the record.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from creditpool.audit.models import AuditRecord
from creditpool.queries import AuditLog
from creditpool.repositories import audit as repository
from creditpool.storage.types import DbRow

log = logging.getLogger("creditpool.audit")


def record(
    conn: Connection,
    action: str,
    *,
    by: str | None,
    at: datetime,
    org_id: str | None = None,
    **fields: Any,
) -> None:
    """Write the record in the transaction of ``conn``, and log it."""
    details = {k: _plain(v) for k, v in fields.items()}
    repository.insert_record(conn, at=at, org_id=org_id, by=by, action=action, details=details)
    who = by if by is not None else "unknown"
    shown = " ".join(f"{k}={v}" for k, v in details.items() if v is not None)
    payload = {"action": action, "by": by, "at": at.isoformat(), "org_id": org_id, **details}
    log.info("%s by %s at %s %s", action, who, at.isoformat(), shown, extra={"fields": payload})


def records(conn: Connection, asked: AuditLog) -> list[AuditRecord]:
    return [_model(r) for r in repository.list_records(conn, asked)]


def _model(row: DbRow) -> AuditRecord:
    return AuditRecord(
        id=row.id, at=row.at, org_id=row.org_id, by=row.by, action=row.action,
        details=dict(row.details),
    )  # fmt: skip


def _plain(value: Any) -> Any:
    """JSON-ready: instants as ISO text, amounts and enums as their text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value.value if hasattr(value, "value") else value)
