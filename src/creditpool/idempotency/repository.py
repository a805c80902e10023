"""All SQL about idempotency keys. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from creditpool.storage.engine import (
    bind_json,
    bind_time,
    driver_sql,
    read_json,
    read_time,
    run,
)
from creditpool.storage.tables import http_idempotency
from creditpool.storage.tables import idempotency_keys as keys
from creditpool.storage.types import DbRow

# The organization's row, locked, with the stored result of the key if there is one: the
# first statement of every mutation, in one round trip. On SQLite the transaction already
# holds the write lock (BEGIN IMMEDIATE); PostgreSQL locks the org row only (the key's side
# of the outer join may be empty).
_LOCK_ORG_WITH_KEY = driver_sql(
    "SELECT o.id, o.timezone, o.low_balance_thresholds, o.ledger_seq, o.object_seq,"
    " o.ledger_at, o.next_event_at, k.operation, k.request_hash, k.result"
    " FROM orgs o LEFT JOIN idempotency_keys k ON k.org_id = o.id AND k.key = :key"
    " WHERE o.id = :org_id",
    " FOR UPDATE OF o",
)
_INSERT = driver_sql(
    "INSERT INTO idempotency_keys (org_id, key, operation, request_hash, result, created_at)"
    " VALUES (:org_id, :key, :operation, :request_hash, :result, :created_at)",
    json_params=("result",),
)


@dataclass(frozen=True, slots=True)
class LockedOrg:
    """The locked organization's counters, and what its idempotency key recorded."""

    id: str
    timezone: str
    low_balance_thresholds: list[int]
    ledger_seq: int
    object_seq: int
    ledger_at: datetime | None
    next_event_at: datetime | None
    stored: StoredKey | None


@dataclass(frozen=True, slots=True)
class StoredKey:
    operation: str
    request_hash: str
    result: dict[str, Any]


def lock_query(org_id: str, key: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    """Lock the organization's row for this transaction and read its key's record."""
    return _LOCK_ORG_WITH_KEY, {"org_id": org_id, "key": key}


def parse_locked(dialect: str, rows: list[Any]) -> LockedOrg | None:
    if not rows:
        return None
    row = rows[0]
    stored = None
    if row[7] is not None:
        stored = StoredKey(row[7], row[8], read_json(dialect, row[9]))
    return LockedOrg(
        id=row[0],
        timezone=row[1],
        low_balance_thresholds=read_json(dialect, row[2]),
        ledger_seq=row[3],
        object_seq=row[4],
        ledger_at=read_time(row[5]),
        next_event_at=read_time(row[6]),
        stored=stored,
    )


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
    run(
        conn,
        _INSERT,
        {
            "org_id": org_id,
            "key": key,
            "operation": operation,
            "request_hash": request_hash,
            "result": bind_json(result),
            "created_at": bind_time(conn.dialect.name, created_at),
        },
    )


def delete_older_than(conn: Connection, cutoff: datetime) -> int:
    """Forget every idempotency record older than ``cutoff``: the library's keys and the
    HTTP layer's stored responses alike (one retention for both)."""
    forgotten = conn.execute(delete(keys).where(keys.c.created_at < cutoff)).rowcount
    responses = delete(http_idempotency).where(http_idempotency.c.created_at < cutoff)
    return forgotten + conn.execute(responses).rowcount
