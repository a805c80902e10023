"""All SQL about idempotency keys. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from creditpool.storage.engine import (
    bind_json,
    bind_time,
    driver_sql,
    fetch,
    read_json,
    read_time,
    run,
)
from creditpool.storage.tables import http_idempotency
from creditpool.storage.tables import idempotency_keys as keys

# The organization's row, locked, with the stored result of the key if there is one and, for
# a scoped key (see ``ScopedKey``), its claim in its scope: the first statements of every
# mutation, in one round trip.
#
# SQLite: one statement; the transaction already holds the write lock (BEGIN IMMEDIATE), so
# what it joins is current. PostgreSQL: the lock, then the key's record as a statement of
# its own in the same pipeline. A statement that waited for a row lock sees the locked row
# as its previous holder committed it, but the rows it joins as they were when the
# statement began: joined to the lock, a duplicate that waited for the first request would
# miss the record the first one had just committed, and run again. The statement after the
# lock runs once the lock is held, with a fresh snapshot (READ COMMITTED), like the live
# grants read after it.
_ORG_COLUMNS = (
    "o.id, o.timezone, o.low_balance_thresholds, o.ledger_seq, o.object_seq,"
    " o.ledger_at, o.next_event_at"
)
_KEY_JOIN = " LEFT JOIN idempotency_keys k ON k.org_id = :org_id AND k.key = :key"
# A plain key has no claim: its statements leave http_idempotency alone.
_CLAIM_JOIN = {
    True: " LEFT JOIN http_idempotency h ON h.scope = :scope AND h.key = :scoped_key",
    False: "",
}
_KEY_COLUMNS = {
    True: "k.operation, k.request_hash, k.result, h.org_id, h.status",
    False: "k.operation, k.request_hash, k.result, NULL, NULL",
}
_LOCK_ORG_WITH_KEY = {
    scoped: driver_sql(
        f"SELECT {_ORG_COLUMNS}, {_KEY_COLUMNS[scoped]} FROM orgs o{_KEY_JOIN}"
        f"{_CLAIM_JOIN[scoped]} WHERE o.id = :org_id"
    )
    for scoped in (True, False)
}
_LOCK_ORG = driver_sql(f"SELECT {_ORG_COLUMNS} FROM orgs o WHERE o.id = :org_id", " FOR UPDATE")
# A key's record and claim (also for one more key of a batch, under the lock already held).
_GET_KEY = {
    scoped: driver_sql(
        f"SELECT {_KEY_COLUMNS[scoped]} FROM (SELECT 1 AS one) base{_KEY_JOIN}{_CLAIM_JOIN[scoped]}"
    )
    for scoped in (True, False)
}
_INSERT = driver_sql(
    "INSERT INTO idempotency_keys (org_id, key, operation, request_hash, result, created_at)"
    " VALUES (:org_id, :key, :operation, :request_hash, :result, :created_at)",
    json_params=("result",),
)
# A scoped key's claim in its scope (the HTTP layer's table, keyed by API key and key): its
# primary key is what makes the key take effect in one organization only. A ledger change's
# claim has status 0 and no body: its result is the organization's record above.
LEDGER_CLAIM_STATUS = 0
_CLAIM = driver_sql(
    "INSERT INTO http_idempotency (scope, key, org_id, fingerprint, status, body, created_at)"
    f" VALUES (:scope, :key, :org_id, :fingerprint, {LEDGER_CLAIM_STATUS}, '', :created_at)"
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
    claim: ScopeClaim | None


@dataclass(frozen=True, slots=True)
class StoredKey:
    operation: str
    request_hash: str
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ScopeClaim:
    """Who holds a scoped key: an organization's ledger change (``ledger``), or a request
    the HTTP layer recorded itself (an organization's, or none's: a feature, a new
    organization)."""

    org_id: str | None
    ledger: bool


def _params(org_id: str, key: str | None, scope: str | None, scoped_key: str | None) -> Any:
    params = {"org_id": org_id, "key": key}
    if scope is not None:
        params.update(scope=scope, scoped_key=scoped_key)
    return params


Query = tuple[dict[str, str], dict[str, Any]]


def lock_queries(
    dialect: str,
    org_id: str,
    key: str | None,
    scope: str | None = None,
    scoped_key: str | None = None,
) -> list[Query]:
    """Lock the organization's row for this transaction and read its key's record and, for
    a scoped key (``scope`` and ``scoped_key``, the key as its caller sent it), its claim.
    Run them in order (``fetch_together``) and hand the rows to ``parse_locked``."""
    scoped = scope is not None
    params = _params(org_id, key, scope, scoped_key)
    if dialect != "postgresql":
        return [(_LOCK_ORG_WITH_KEY[scoped], params)]
    if key is None:
        return [(_LOCK_ORG, {"org_id": org_id})]
    return [(_LOCK_ORG, {"org_id": org_id}), (_GET_KEY[scoped], params)]


def _stored(dialect: str, row: Any) -> tuple[StoredKey | None, ScopeClaim | None]:
    """The key's record and claim from the last five columns of a row."""
    operation, request_hash, result, claim_org, claim_status = row[-5:]
    stored = None
    if operation is not None:
        stored = StoredKey(operation, request_hash, read_json(dialect, result))
    claim = None
    if claim_status is not None:
        claim = ScopeClaim(claim_org, claim_status == LEDGER_CLAIM_STATUS)
    return stored, claim


def parse_locked(dialect: str, results: list[list[Any]]) -> LockedOrg | None:
    """The rows of ``lock_queries``, in their order."""
    if not results[0]:
        return None
    row = results[0][0]
    stored, claim = None, None
    if len(results) > 1:
        stored, claim = _stored(dialect, results[1][0])
    elif len(row) > 7:
        stored, claim = _stored(dialect, row)
    return LockedOrg(
        id=row[0],
        timezone=row[1],
        low_balance_thresholds=read_json(dialect, row[2]),
        ledger_seq=row[3],
        object_seq=row[4],
        ledger_at=read_time(row[5]),
        next_event_at=read_time(row[6]),
        stored=stored,
        claim=claim,
    )


def get(
    conn: Connection,
    org_id: str,
    key: str,
    scope: str | None = None,
    scoped_key: str | None = None,
) -> tuple[StoredKey | None, ScopeClaim | None]:
    """A key's record in the organization and, for a scoped key, its claim: one round trip."""
    rows = fetch(conn, _GET_KEY[scope is not None], _params(org_id, key, scope, scoped_key))
    return _stored(conn.dialect.name, rows[0])


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


def claim(
    conn: Connection,
    rows: list[tuple[str, str, str, str]],
    created_at: datetime,
) -> None:
    """Claim scoped keys for a ledger change: (scope, key, org_id, request hash) each.
    Inserted in key order, so that two transactions claiming the same keys cannot deadlock;
    a key claimed meanwhile by a concurrent transaction fails on the primary key."""
    at = bind_time(conn.dialect.name, created_at)
    params = [
        {"scope": s, "key": k, "org_id": o, "fingerprint": f, "created_at": at}
        for s, k, o, f in sorted(rows)
    ]
    if params:
        run(conn, _CLAIM, params)


def delete_older_than(conn: Connection, cutoff: datetime) -> int:
    """Forget every idempotency record older than ``cutoff``: the library's keys and the
    HTTP layer's stored responses alike (one retention for both)."""
    forgotten = conn.execute(delete(keys).where(keys.c.created_at < cutoff)).rowcount
    responses = delete(http_idempotency).where(http_idempotency.c.created_at < cutoff)
    return forgotten + conn.execute(responses).rowcount
