"""All SQL about grants. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from creditpool.core.grants import GrantRow
from creditpool.storage.engine import driver_sql, fetch, read_time, run
from creditpool.storage.tables import grants
from creditpool.storage.types import DbRow

# Read and written on every change of an organization: plain SQL (see storage.engine).
_LIVE = driver_sql(
    "SELECT id, amount, remaining, granted_at, available_from, expires_at, added_logged,"
    " expiry_logged, held FROM grants"
    " WHERE org_id = :org_id AND expiry_logged = :no AND voided_at IS NULL ORDER BY id"
)
_SAVE = driver_sql(
    "UPDATE grants SET remaining = :r, added_logged = :a, expiry_logged = :e, held = :h"
    " WHERE org_id = :o AND id = :i"
)


def live_query(org_id: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Every grant that can still matter to Left: neither voided nor logged as expired."""
    return _LIVE, {"org_id": org_id, "no": False}


def load_live(conn: Connection, org_id: str) -> dict[int, GrantRow]:
    return parse_live(fetch(conn, *live_query(org_id)))


def parse_live(rows: list[Any]) -> dict[int, GrantRow]:
    return {
        r[0]: GrantRow(
            r[0],
            r[1],
            r[2],
            read_time(r[3]),  # type: ignore[arg-type]
            read_time(r[4]),  # type: ignore[arg-type]
            read_time(r[5]),
            None,
            bool(r[6]),
            bool(r[7]),
            r[8],
        )
        for r in rows
    }


def to_grant_row(row: DbRow) -> GrantRow:
    m = row._mapping
    return GrantRow(
        id=m["id"],
        amount=m["amount"],
        remaining=m["remaining"],
        granted_at=m["granted_at"],
        available_from=m["available_from"],
        expires_at=m["expires_at"],
        voided_at=m["voided_at"],
        added_logged=m["added_logged"],
        expiry_logged=m["expiry_logged"],
        held=m["held"],
    )


def save_working_copies(conn: Connection, org_id: str, rows: list[GrantRow]) -> None:
    if rows:
        params = [
            {
                "o": org_id,
                "i": g.id,
                "r": g.remaining,
                "a": g.added_logged,
                "e": g.expiry_logged,
                "h": g.held,
            }
            for g in rows
        ]
        run(conn, _SAVE, params)


def granted_units(conn: Connection, org_id: str) -> int:
    """What the organization was ever granted, net of voided credits (every grant)."""
    total = func.coalesce(func.sum(grants.c.amount - grants.c.voided_credits), 0)
    return int(conn.execute(select(total).where(grants.c.org_id == org_id)).scalar_one())


def insert(conn: Connection, **values: Any) -> None:
    conn.execute(grants.insert().values(**values))


def get(conn: Connection, org_id: str, grant_id: int) -> DbRow | None:
    query = select(grants).where(grants.c.org_id == org_id, grants.c.id == grant_id)
    return conn.execute(query).first()


def list_for_org(conn: Connection, org_id: str) -> Sequence[DbRow]:
    query = select(grants).where(grants.c.org_id == org_id).order_by(grants.c.id)
    return conn.execute(query).all()


def void(conn: Connection, org_id: str, grant_id: int, **values: Any) -> None:
    query = update(grants).where(grants.c.org_id == org_id, grants.c.id == grant_id)
    conn.execute(query.values(remaining=0, held=0, **values))
