"""All SQL about idempotency keys. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, delete, literal_column, null, select
from sqlalchemy.engine import Connection

from creditpool.repositories import orgs as orgs_repo
from creditpool.repositories.orgs import LockedOrg
from creditpool.storage import compiled
from creditpool.storage.tables import http_idempotency, orgs
from creditpool.storage.tables import idempotency_keys as keys

# A scoped key's claim in its scope (the HTTP layer's table, keyed by API key and key): its
# primary key is what makes the key take effect in one organization only. A ledger change's
# claim has status 0 and no body: its result is the organization's record.
LEDGER_CLAIM_STATUS = 0


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What a key recorded in its organization: the request it answered and its result."""

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


class KeyRecord(NamedTuple):
    """A key's record in its organization and, for a scoped key, its claim."""

    stored: StoredKey | None
    claim: ScopeClaim | None


def _key_record(
    operation: str | None,
    request_hash: str | None,
    result: dict[str, Any] | None,
    claim_org: str | None,
    claim_status: int | None,
) -> KeyRecord:
    stored = None
    if operation is not None:
        assert request_hash is not None
        assert result is not None
        stored = StoredKey(operation, request_hash, result)
    claim = None
    if claim_status is not None:
        claim = ScopeClaim(claim_org, claim_status == LEDGER_CLAIM_STATUS)
    return KeyRecord(stored, claim)


class LockedWithKey(NamedTuple):
    """The locked organization's counters, and what its idempotency key recorded."""

    org: LockedOrg
    key: KeyRecord


def _locked_with_key(*values: Any) -> LockedWithKey:
    split = len(orgs_repo.LOCKED_COLUMNS)
    return LockedWithKey(LockedOrg(*values[:split]), _key_record(*values[split:]))


_NO_KEY = KeyRecord(None, None)


# A key's record, and for a scoped key its claim (a plain key's statements leave
# http_idempotency alone), joined to ``base``.
def _key_read(base: Any, scoped: bool) -> tuple[Any, list[Any]]:
    joined = base.outerjoin(
        keys, and_(keys.c.org_id == bindparam("org_id"), keys.c["key"] == bindparam("key"))
    )
    columns: list[Any] = [keys.c.operation, keys.c.request_hash, keys.c.result]
    if not scoped:
        return joined, [*columns, null().label("claim_org"), null().label("claim_status")]
    h = http_idempotency.c
    joined = joined.outerjoin(
        http_idempotency, and_(h.scope == bindparam("scope"), h["key"] == bindparam("scoped_key"))
    )
    return joined, [*columns, h.org_id.label("claim_org"), h.status.label("claim_status")]


def _get_key(scoped: bool) -> compiled.Query[KeyRecord]:
    base = select(literal_column("1").label("one")).subquery("base")
    joined, columns = _key_read(base, scoped)
    return compiled.Query(select(*columns).select_from(joined), _key_record)


def _lock_with_key(scoped: bool) -> compiled.Query[LockedWithKey]:
    joined, columns = _key_read(orgs, scoped)
    statement = orgs_repo.LOCK.select.add_columns(*columns).select_from(joined)
    return compiled.Query(statement, _locked_with_key)


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
_LOCK_WITH_KEY = {scoped: _lock_with_key(scoped) for scoped in (True, False)}
# A key's record and claim (also for one more key of a batch, under the lock already held).
_GET_KEY = {scoped: _get_key(scoped) for scoped in (True, False)}
_INSERT = compiled.Write(
    keys.insert(), keys=("org_id", "key", "operation", "request_hash", "result", "created_at")
)
_CLAIM = compiled.Write(
    http_idempotency.insert(),
    keys=("scope", "key", "org_id", "fingerprint", "status", "body", "created_at"),
)


def _params(org_id: str, key: str | None, scope: str | None, scoped_key: str | None) -> Any:
    params = {"org_id": org_id, "key": key}
    if scope is not None:
        params.update(scope=scope, scoped_key=scoped_key)
    return params


Query = tuple[compiled.Query[Any], compiled.Params]


def lock_queries(
    dialect: str,
    org_id: str,
    key: str | None,
    scope: str | None = None,
    scoped_key: str | None = None,
) -> list[Query]:
    """Lock the organization's row for this transaction and read its key's record and, for
    a scoped key (``scope`` and ``scoped_key``, the key as its caller sent it), its claim.
    Run them in order (``compiled.fetch_together``) and hand the rows to ``parse_locked``."""
    scoped = scope is not None
    params = _params(org_id, key, scope, scoped_key)
    if dialect != "postgresql":
        return [(_LOCK_WITH_KEY[scoped], params)]
    if key is None:
        return [(orgs_repo.LOCK, {"org_id": org_id})]
    return [(orgs_repo.LOCK, {"org_id": org_id}), (_GET_KEY[scoped], params)]


def parse_locked(dialect: str, results: list[list[Any]]) -> LockedWithKey | None:
    """The rows of ``lock_queries``, in their order (None: no such organization)."""
    if not results[0]:
        return None
    if dialect != "postgresql":
        combined: LockedWithKey = results[0][0]
        return combined
    org: LockedOrg = results[0][0]
    return LockedWithKey(org, results[1][0] if len(results) > 1 else _NO_KEY)


def get(
    conn: Connection,
    org_id: str,
    key: str,
    scope: str | None = None,
    scoped_key: str | None = None,
) -> KeyRecord:
    """A key's record in the organization and, for a scoped key, its claim: one round trip."""
    query = _GET_KEY[scope is not None]
    return compiled.fetch(conn, query, _params(org_id, key, scope, scoped_key))[0]


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
    params = {
        "org_id": org_id,
        "key": key,
        "operation": operation,
        "request_hash": request_hash,
        "result": result,
        "created_at": created_at,
    }
    compiled.run(conn, _INSERT, params)


def claim(
    conn: Connection,
    rows: list[tuple[str, str, str, str]],
    created_at: datetime,
) -> None:
    """Claim scoped keys for a ledger change: (scope, key, org_id, request hash) each.
    Inserted in key order, so that two transactions claiming the same keys cannot deadlock;
    a key claimed meanwhile by a concurrent transaction fails on the primary key."""
    params = [
        {
            "scope": s,
            "key": k,
            "org_id": o,
            "fingerprint": f,
            "status": LEDGER_CLAIM_STATUS,
            "body": "",
            "created_at": created_at,
        }
        for s, k, o, f in sorted(rows)
    ]
    compiled.run(conn, _CLAIM, params)


def delete_older_than(conn: Connection, cutoff: datetime) -> int:
    """Forget every idempotency record older than ``cutoff``: the library's keys and the
    HTTP layer's stored responses alike (one retention for both)."""
    forgotten = conn.execute(delete(keys).where(keys.c.created_at < cutoff)).rowcount
    responses = delete(http_idempotency).where(http_idempotency.c.created_at < cutoff)
    return forgotten + conn.execute(responses).rowcount
