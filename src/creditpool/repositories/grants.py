"""All SQL about grants. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, false, func, select, update
from sqlalchemy.engine import Connection

from creditpool.core.grants import GrantRow
from creditpool.storage import compiled
from creditpool.storage.tables import grants
from creditpool.storage.types import DbRow

# A grant as the rules see it: the columns named after ``GrantRow``'s fields, read the same
# way by the live set of a change and by every other reader (``to_grant_row``). Its
# ``amount`` is what it can hold: the credits voided from it in part are gone from it (a
# live grant's ``voided_credits`` are only those; a whole void takes it out of the set).
_FIELDS = tuple(f.name for f in fields(GrantRow))
_RULE_COLUMNS = tuple(
    (grants.c.amount - grants.c.voided_credits).label("amount")
    if name == "amount"
    else grants.c[name]
    for name in _FIELDS
)

# Read and written on every change of an organization (see storage.compiled).
_LIVE = compiled.Query(
    select(*_RULE_COLUMNS)
    .where(
        grants.c.org_id == bindparam("org_id"),
        grants.c.expiry_logged == false(),
        grants.c.voided_at.is_(None),
    )
    .order_by(grants.c.id),
    GrantRow,
)
_SAVE = compiled.Write(
    update(grants).where(grants.c.org_id == bindparam("o"), grants.c.id == bindparam("i")),
    keys=("remaining", "added_logged", "expiry_logged", "held", "expiry_noticed"),
)
# The same without ``expiry_logged``, a column of ``ix_grants_live``: SQLite rewrites an
# index entry whenever an UPDATE names one of its columns, even to the value it had, so a
# consumption (which changes ``remaining`` only) would dirty a page of that index too.
_SAVE_UNLISTED = compiled.Write(
    update(grants).where(grants.c.org_id == bindparam("o"), grants.c.id == bindparam("i")),
    keys=("remaining", "added_logged", "held", "expiry_noticed"),
)


def live_query(org_id: str) -> tuple[compiled.Query[GrantRow], compiled.Params]:
    """Every grant that can still matter to Left: neither voided nor logged as expired."""
    return _LIVE, {"org_id": org_id}


def load_live(conn: Connection, org_id: str) -> dict[int, GrantRow]:
    return by_id(compiled.fetch(conn, *live_query(org_id)))


_LIVE_OF_MANY = (
    select(grants.c.org_id, *_RULE_COLUMNS)
    .where(
        grants.c.org_id.in_(bindparam("org_ids", expanding=True)),
        grants.c.expiry_logged == false(),
        grants.c.voided_at.is_(None),
    )
    .order_by(grants.c.org_id, grants.c.id)
)


def load_live_of(conn: Connection, org_ids: Sequence[str]) -> dict[str, list[GrantRow]]:
    """``load_live`` for several organizations in one statement: each one's live grants
    in id order (an organization without any is absent)."""
    found: dict[str, list[GrantRow]] = {}
    if not org_ids:
        return found
    for org_id, *rest in conn.execute(_LIVE_OF_MANY, {"org_ids": list(org_ids)}):
        found.setdefault(org_id, []).append(GrantRow(*rest))
    return found


def by_id(rows: list[GrantRow]) -> dict[int, GrantRow]:
    return {g.id: g for g in rows}


def to_grant_row(row: DbRow) -> GrantRow:
    """The rules' view of a full grant row (see ``_RULE_COLUMNS``). A grant voided whole
    keeps its full amount: it only counts before it was voided, when a balance at a past
    instant rebuilds it (``ledger.service.balance``)."""
    m = row._mapping
    values = {name: m[name] for name in _FIELDS}
    if m["voided_at"] is None:
        values["amount"] -= m["voided_credits"]
    return GrantRow(**values)


def save_working_copies(
    conn: Connection, org_id: str, rows: list[GrantRow], *, expiry_logged_changed: bool = True
) -> None:
    """Write the grants' mutable columns; without ``expiry_logged_changed`` (none of
    ``rows`` was logged as expired since it was read) ``expiry_logged`` is left as it is."""
    params = [
        {
            "o": org_id,
            "i": g.id,
            "remaining": g.remaining,
            "added_logged": g.added_logged,
            "expiry_logged": g.expiry_logged,
            "held": g.held,
            "expiry_noticed": g.expiry_noticed,
        }
        for g in rows
    ]
    if not expiry_logged_changed:
        for p in params:
            del p["expiry_logged"]
    compiled.run(conn, _SAVE if expiry_logged_changed else _SAVE_UNLISTED, params)


def granted_units(conn: Connection, org_id: str) -> int:
    """What the organization was ever granted, net of voided credits (every grant)."""
    total = func.coalesce(func.sum(grants.c.amount - grants.c.voided_credits), 0)
    return int(conn.execute(select(total).where(grants.c.org_id == org_id)).scalar_one())


def insert(conn: Connection, **values: Any) -> None:
    conn.execute(grants.insert().values(**values))


def get(conn: Connection, org_id: str, grant_id: int) -> DbRow | None:
    query = select(grants).where(grants.c.org_id == org_id, grants.c.id == grant_id)
    return conn.execute(query).first()


def list_for_org(
    conn: Connection, org_id: str, *, counting_at: datetime | None = None, live: bool = False
) -> Sequence[DbRow]:
    """Every grant, or with ``counting_at`` only those a balance at that instant counts:
    created by then and neither voided nor expired by then (active or pending then), so a
    balance in the past reads the grants of its time, not every grant ever made. With
    ``live`` only the live ones (neither voided nor logged as expired, ``ix_grants_live``)."""
    query = select(grants).where(grants.c.org_id == org_id).order_by(grants.c.id)
    if live:
        query = query.where(grants.c.expiry_logged == false(), grants.c.voided_at.is_(None))
    if counting_at is not None:
        g, t = grants.c, counting_at
        query = query.where(
            g.granted_at <= t,
            g.voided_at.is_(None) | (g.voided_at > t),
            g.expires_at.is_(None) | (g.expires_at > t),
        )
    return conn.execute(query).all()


def set_expiry(conn: Connection, org_id: str, grant_id: int, expires_at: Any) -> None:
    query = update(grants).where(grants.c.org_id == org_id, grants.c.id == grant_id)
    conn.execute(query.values(expires_at=expires_at))


def void_part(conn: Connection, org_id: str, grant_id: int, credits: int) -> None:
    """Credits voided from a grant that stays: its ``remaining`` is the working copy's."""
    query = update(grants).where(grants.c.org_id == org_id, grants.c.id == grant_id)
    conn.execute(query.values(voided_credits=grants.c.voided_credits + credits))


def void(conn: Connection, org_id: str, grant_id: int, **values: Any) -> None:
    query = update(grants).where(grants.c.org_id == org_id, grants.c.id == grant_id)
    values["voided_credits"] = grants.c.voided_credits + values.pop("voided_credits")
    conn.execute(query.values(remaining=0, held=0, **values))
