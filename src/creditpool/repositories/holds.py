"""All SQL about holds and the grants they hold credits on. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.core.holds import HoldRow, HoldState
from creditpool.storage.engine import bind_json, bind_time, driver_sql, fetch, read_time, run
from creditpool.storage.tables import grants, hold_allocations, holds
from creditpool.storage.types import DbRow

_COLUMNS = (
    "org_id, id, status, amount, created_at, expires_at, feature, user_id, team_id, quantity,"
    " feature_name, action, integration, metadata, released, lost"
)
_INSERT = driver_sql(
    f"INSERT INTO holds ({_COLUMNS}) VALUES ("
    + ", ".join(":" + c.strip() for c in _COLUMNS.split(","))
    + ")",
    json_params=("metadata",),
)
_INSERT_ALLOCATION = driver_sql(
    "INSERT INTO hold_allocations (org_id, hold_id, grant_id, amount)"
    " VALUES (:org_id, :hold_id, :grant_id, :amount)"
)
_OPEN_ONE = driver_sql(
    "SELECT h.id, h.amount, h.expires_at, a.grant_id, a.amount FROM holds h"
    " JOIN hold_allocations a ON a.org_id = h.org_id AND a.hold_id = h.id"
    " JOIN grants g ON g.org_id = a.org_id AND g.id = a.grant_id"
    " WHERE h.org_id = :org_id AND h.id = :id AND h.status = :open"
    " ORDER BY g.expires_at IS NULL, g.expires_at, g.available_from, g.granted_at, g.id"
)
# Allocations in the order the rules produced them: the grants' consumption order.
_ORDER = (
    grants.c.expires_at.is_(None),
    grants.c.expires_at,
    grants.c.available_from,
    grants.c.granted_at,
    grants.c.id,
)


def insert(conn: Connection, values: dict[str, Any], draws: list[tuple[int, int]]) -> None:
    row = {
        **values,
        "created_at": bind_time(conn.dialect.name, values["created_at"]),
        "expires_at": bind_time(conn.dialect.name, values["expires_at"]),
        "metadata": bind_json(values["metadata"]),
    }
    run(conn, _INSERT, row)
    rows = [
        {"org_id": values["org_id"], "hold_id": values["id"], "grant_id": g, "amount": a}
        for g, a in draws
    ]
    run(conn, _INSERT_ALLOCATION, rows[0] if len(rows) == 1 else rows)


def get(conn: Connection, org_id: str, hold_id: int) -> DbRow | None:
    query = select(holds).where(holds.c.org_id == org_id, holds.c.id == hold_id)
    return conn.execute(query).first()


def search(
    conn: Connection, org_id: str, *, status: str | None, before_id: int | None, limit: int
) -> Sequence[DbRow]:
    """Newest first; ``before_id`` is the cursor of the next page. ``status`` is the stored
    one (an open hold past its time to live is still stored open until written)."""
    query = select(holds).where(holds.c.org_id == org_id).order_by(holds.c.id.desc())
    if status is not None:
        query = query.where(holds.c.status == status)
    if before_id is not None:
        query = query.where(holds.c.id < before_id)
    return conn.execute(query.limit(limit)).all()


def allocations_of(
    conn: Connection, org_id: str, ids: list[int]
) -> dict[int, list[tuple[int, int]]]:
    found: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    if not ids:
        return found
    a = hold_allocations.c
    query = (
        select(a.hold_id, a.grant_id, a.amount)
        .join(grants, (grants.c.org_id == a.org_id) & (grants.c.id == a.grant_id))
        .where(a.org_id == org_id, a.hold_id.in_(ids))
        .order_by(a.hold_id, *_ORDER)
    )
    for hid, gid, amount in conn.execute(query):
        found[hid].append((gid, amount))
    return found


def load_open(conn: Connection, org_id: str, until: datetime | None = None) -> dict[int, HoldRow]:
    """The open holds (those ending at or before ``until`` when given), with their
    allocations."""
    query = select(holds.c.id, holds.c.amount, holds.c.expires_at).where(
        holds.c.org_id == org_id, holds.c.status == HoldState.OPEN.value
    )
    if until is not None:
        query = query.where(holds.c.expires_at <= until)
    rows = conn.execute(query.order_by(holds.c.id)).all()
    draws = allocations_of(conn, org_id, [r.id for r in rows])
    return {r.id: HoldRow(r.id, r.amount, r.expires_at, draws[r.id]) for r in rows}


def load_open_one(conn: Connection, org_id: str, hold_id: int) -> HoldRow | None:
    """Hold ``hold_id`` if it is open, with its allocations, in one round trip."""
    rows = fetch(conn, _OPEN_ONE, {"org_id": org_id, "id": hold_id, "open": HoldState.OPEN.value})
    if not rows:
        return None
    draws = [(int(r[3]), int(r[4])) for r in rows]
    expires_at = read_time(rows[0][2])
    assert expires_at is not None
    return HoldRow(int(rows[0][0]), int(rows[0][1]), expires_at, draws)


# Written inside the change's write pipeline: plain SQL (see storage.engine).
_CLOSE = driver_sql(
    "UPDATE holds SET status = :status, closed_at = :closed_at, released = :released,"
    " lost = :lost, consumption_id = :consumption_id WHERE org_id = :org_id AND id = :id"
)
_RETURNED = driver_sql(
    "UPDATE hold_allocations SET returned = :returned"
    " WHERE org_id = :org_id AND hold_id = :hold_id AND grant_id = :grant_id"
)


def save(conn: Connection, org_id: str, rows: list[HoldRow]) -> None:
    """Write the closing of holds (status, instant, what was given back and lost, and per
    grant what went back to it)."""
    for h in rows:
        back = dict(h.returned or [])
        params = [
            {"org_id": org_id, "hold_id": h.id, "grant_id": g, "returned": back.get(g, 0)}
            for g, _ in h.allocations
        ]
        run(conn, _RETURNED, params[0] if len(params) == 1 else params)
        closing = {
            "org_id": org_id,
            "id": h.id,
            "status": h.status.value,
            "closed_at": bind_time(conn.dialect.name, h.closed_at),
            "released": h.released,
            "lost": h.lost,
            "consumption_id": h.consumption_id,
        }
        run(conn, _CLOSE, closing)


def held_at(conn: Connection, org_id: str, t: datetime) -> list[tuple[int, int]]:
    """(grant id, amount) held at instant ``t`` by the holds open then: created at or
    before ``t`` and neither closed nor run out by then."""
    h, a = holds.c, hold_allocations.c
    query = (
        select(a.grant_id, a.amount)
        .join(holds, (h.org_id == a.org_id) & (h.id == a.hold_id))
        .where(
            a.org_id == org_id,
            h.created_at <= t,
            h.expires_at > t,
            (h.closed_at.is_(None)) | (h.closed_at > t),
        )
    )
    return [(int(g), int(x)) for g, x in conn.execute(query)]
