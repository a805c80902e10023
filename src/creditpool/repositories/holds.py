"""All SQL about holds and the grants they hold credits on. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from creditpool.core.holds import HoldRow, HoldState
from creditpool.queries import Holds
from creditpool.repositories.pages import listed
from creditpool.storage import compiled
from creditpool.storage.tables import grants, hold_allocations, holds
from creditpool.storage.types import DbRow

# Allocations in the grants' consumption order, as the grants stand now: the order the
# rules drew them in, unless a grant's expiry was changed since.
_ORDER = (
    grants.c.expires_at.is_(None),
    grants.c.expires_at,
    grants.c.available_from,
    grants.c.granted_at,
    grants.c.id,
)
_GRANT_OF_ALLOCATION = (grants.c.org_id == hold_allocations.c.org_id) & (
    grants.c.id == hold_allocations.c.grant_id
)


class _OpenDraw(NamedTuple):
    """One allocation of an open hold, with the hold's own columns."""

    id: int
    amount: int
    expires_at: datetime
    grant_id: int
    drawn: int


# The statements of every hold, settle and release (see storage.compiled).
_INSERT = compiled.Write(holds.insert())
_INSERT_ALLOCATION = compiled.Write(hold_allocations.insert())
_OPEN_ONE = compiled.Query(
    select(
        holds.c.id,
        holds.c.amount,
        holds.c.expires_at,
        hold_allocations.c.grant_id,
        hold_allocations.c.amount,
    )
    .join(
        hold_allocations,
        (hold_allocations.c.org_id == holds.c.org_id) & (hold_allocations.c.hold_id == holds.c.id),
    )
    .join(grants, _GRANT_OF_ALLOCATION)
    .where(
        holds.c.org_id == bindparam("org_id"),
        holds.c.id == bindparam("id"),
        holds.c.status == bindparam("open"),
    )
    .order_by(*_ORDER),
    _OpenDraw,
)


def insert(conn: Connection, values: dict[str, Any], draws: list[tuple[int, int]]) -> None:
    """A new hold (its columns named by ``values``) and its allocations."""
    compiled.run(conn, _INSERT, values)
    rows = [
        {"org_id": values["org_id"], "hold_id": values["id"], "grant_id": g, "amount": a}
        for g, a in draws
    ]
    compiled.run(conn, _INSERT_ALLOCATION, rows)


def get(conn: Connection, org_id: str, hold_id: int) -> DbRow | None:
    query = select(holds).where(holds.c.org_id == org_id, holds.c.id == hold_id)
    return conn.execute(query).first()


def search(conn: Connection, asked: Holds) -> Sequence[DbRow]:
    """Newest first; ``before_id`` is the cursor of the next page. ``status`` is the stored
    one (an open hold past its time to live is still stored open until written)."""
    query = select(holds).where(holds.c.org_id == asked.org_id)
    if asked.status is not None:
        # The page's ids first, from ``ix_holds_org_status_id`` alone (in page order, no
        # row of another status read), then their rows by primary key. Asked for the rows
        # at once, SQLite walks the primary key and skips the other statuses' holds.
        ids = select(holds.c.id).where(
            holds.c.org_id == asked.org_id, holds.c.status == asked.status
        )
        query = query.where(holds.c.id.in_(listed(ids, holds.c.id, asked).scalar_subquery()))
    return conn.execute(listed(query, holds.c.id, asked)).all()


def allocations_of(
    conn: Connection, org_id: str, ids: list[int]
) -> dict[int, list[tuple[int, int]]]:
    found: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    if not ids:
        return found
    a = hold_allocations.c
    query = (
        select(a.hold_id, a.grant_id, a.amount)
        .join(grants, _GRANT_OF_ALLOCATION)
        .where(a.org_id == org_id, a.hold_id.in_(ids))
        .order_by(a.hold_id, *_ORDER)
    )
    for hid, gid, amount in conn.execute(query):
        found[hid].append((gid, amount))
    return found


def load_open(conn: Connection, org_id: str, until: datetime | None = None) -> dict[int, HoldRow]:
    """The open holds (those ending at or before ``until`` when given), with their
    allocations: ``load_open_of`` of one organization."""
    return {h.id: h for h in load_open_of(conn, [org_id], until).get(org_id, [])}


def load_open_of(
    conn: Connection, org_ids: Sequence[str], until: datetime | None = None
) -> dict[str, list[HoldRow]]:
    """The open holds of several organizations in ONE statement (the holds joined to their
    allocations): each one's open holds (ending at or before ``until`` when given), in id
    order, with their allocations in the order their grants are drawn. An organization
    without any is absent."""
    found: dict[str, list[HoldRow]] = {}
    if not org_ids:
        return found
    a = hold_allocations.c
    query = (
        select(holds.c.org_id, holds.c.id, holds.c.amount, holds.c.expires_at, a.grant_id, a.amount)
        .outerjoin(hold_allocations, (a.org_id == holds.c.org_id) & (a.hold_id == holds.c.id))
        .outerjoin(grants, _GRANT_OF_ALLOCATION)
        .where(holds.c.org_id.in_(org_ids), holds.c.status == HoldState.OPEN.value)
        .order_by(holds.c.org_id, holds.c.id, *_ORDER)
    )
    if until is not None:
        query = query.where(holds.c.expires_at <= until)
    last_key: tuple[str, int] | None = None
    last = None
    for org_id, hold_id, amount, expires_at, grant_id, drawn in conn.execute(query):
        if last is None or last_key != (org_id, hold_id):
            last, last_key = HoldRow(hold_id, amount, expires_at, []), (org_id, hold_id)
            found.setdefault(org_id, []).append(last)
        if grant_id is not None:
            last.allocations.append((grant_id, drawn))
    return found


def load_open_one(conn: Connection, org_id: str, hold_id: int) -> HoldRow | None:
    """Hold ``hold_id`` if it is open, with its allocations, in one round trip."""
    params = {"org_id": org_id, "id": hold_id, "open": HoldState.OPEN.value}
    rows = compiled.fetch(conn, _OPEN_ONE, params)
    if not rows:
        return None
    first = rows[0]
    return HoldRow(first.id, first.amount, first.expires_at, [(r.grant_id, r.drawn) for r in rows])


# Written inside the change's write pipeline (see storage.compiled).
_CLOSE = compiled.Write(
    update(holds).where(holds.c.org_id == bindparam("o"), holds.c.id == bindparam("i")),
    keys=("status", "closed_at", "released", "lost", "consumption_id"),
)
_RETURNED = compiled.Write(
    update(hold_allocations).where(
        hold_allocations.c.org_id == bindparam("o"),
        hold_allocations.c.hold_id == bindparam("h"),
        hold_allocations.c.grant_id == bindparam("g"),
    ),
    keys=("returned",),
)


def save(conn: Connection, org_id: str, rows: list[HoldRow]) -> None:
    """Write the closing of holds (status, instant, what was given back and lost, and per
    grant what went back to it)."""
    for h in rows:
        back = dict(h.returned or [])
        params = [
            {"o": org_id, "h": h.id, "g": g, "returned": back.get(g, 0)} for g, _ in h.allocations
        ]
        compiled.run(conn, _RETURNED, params)
        closing = {
            "o": org_id,
            "i": h.id,
            "status": h.status.value,
            "closed_at": h.closed_at,
            "released": h.released,
            "lost": h.lost,
            "consumption_id": h.consumption_id,
        }
        compiled.run(conn, _CLOSE, closing)


def held_at(
    conn: Connection, org_id: str, t: datetime, longest_s: int | None
) -> list[tuple[int, int]]:
    """(grant id, amount) held at instant ``t`` by the holds open then: created at or
    before ``t`` and neither closed nor run out by then. ``longest_s``: the longest time to
    live the organization's holds were given (``orgs.longest_hold_s``), so a hold open at
    ``t`` ends in (t, t + longest_s]: an index range of ``ix_holds_org_expires`` of the
    holds near ``t``, however long the history before and after it. None (no hold made
    since that column came): every hold ending after ``t``."""
    h, a = holds.c, hold_allocations.c
    query = (
        select(a.grant_id, a.amount)
        .select_from(holds)
        .join(hold_allocations, (a.org_id == h.org_id) & (a.hold_id == h.id))
        .where(
            h.org_id == org_id,
            h.expires_at > t,
            h.created_at <= t,
            (h.closed_at.is_(None)) | (h.closed_at > t),
        )
    )
    if longest_s is not None:
        query = query.where(h.expires_at <= t + timedelta(seconds=longest_s))
    return [(int(g), int(x)) for g, x in conn.execute(query)]
