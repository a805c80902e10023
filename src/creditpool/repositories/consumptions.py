"""All SQL about consumptions, allocations and restorations. Never commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.engine import Connection

from creditpool.storage.engine import bind_json, bind_time, driver_sql, fetch, run
from creditpool.storage.tables import allocations, consumptions, grants, restorations
from creditpool.storage.types import DbRow


# The statements of every consumption: plain SQL (see storage.engine).
class Pricing(NamedTuple):
    rate: int
    per_unit: bool
    team_id: str | None


_PRICING = driver_sql(
    "SELECT f.rate, f.per_unit, (SELECT m.team_id FROM members m"
    " WHERE m.org_id = :org_id AND m.user_id = :user_id) AS team_id"
    " FROM features f WHERE f.key = :feature"
)
_COLUMNS = (
    "org_id, id, created_at, feature, feature_name, action, integration, user_id, team_id,"
    " quantity, rate, cost, breakdown, requests, metadata, status, hold_id"
)
_INSERT = driver_sql(
    f"INSERT INTO consumptions ({_COLUMNS}) VALUES ("
    + ", ".join(":" + c.strip() for c in _COLUMNS.split(","))
    + ")",
    json_params=("breakdown", "metadata"),
)
_INSERT_ALLOCATION = driver_sql(
    "INSERT INTO allocations (org_id, consumption_id, grant_id, amount)"
    " VALUES (:org_id, :consumption_id, :grant_id, :amount)"
)


def pricing(conn: Connection, org_id: str, feature: str, user_id: str) -> Pricing | None:
    """The feature's price now and the user's team now, in one round trip."""
    params = {"org_id": org_id, "user_id": user_id, "feature": feature}
    rows = fetch(conn, _PRICING, params)
    return Pricing(int(rows[0][0]), bool(rows[0][1]), rows[0][2]) if rows else None


def insert(conn: Connection, values: dict[str, Any], draws: list[tuple[int, int]]) -> None:
    dialect = conn.dialect.name
    row = {
        **values,
        "created_at": bind_time(dialect, values["created_at"]),
        "breakdown": bind_json(values["breakdown"]),
        "metadata": bind_json(values["metadata"]),
    }
    rows = [
        {"org_id": values["org_id"], "consumption_id": values["id"], "grant_id": g, "amount": a}
        for g, a in draws
    ]
    run(conn, _INSERT, row)
    run(conn, _INSERT_ALLOCATION, rows[0] if len(rows) == 1 else rows)


def get(conn: Connection, org_id: str, consumption_id: int) -> DbRow | None:
    query = select(consumptions).where(
        consumptions.c.org_id == org_id, consumptions.c.id == consumption_id
    )
    return conn.execute(query).first()


def allocations_of(
    conn: Connection, org_id: str, ids: list[int]
) -> dict[int, list[tuple[int, int]]]:
    return _movements(conn, allocations, org_id, ids)


def restorations_of(
    conn: Connection, org_id: str, ids: list[int]
) -> dict[int, list[tuple[int, int]]]:
    return _movements(conn, restorations, org_id, ids)


def _movements(
    conn: Connection, table: Any, org_id: str, ids: list[int]
) -> dict[int, list[tuple[int, int]]]:
    found: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    if not ids:
        return found
    # In the order the rules produced them (so a stored result equals the first one):
    # allocations in consumption order, restorations most recent grant first.
    g = grants.c
    if table is allocations:
        order = [g.expires_at.is_(None), g.expires_at, g.available_from, g.granted_at, g.id]
    else:
        order = [g.granted_at.desc(), g.id.desc()]
    query = (
        select(table.c.consumption_id, table.c.grant_id, table.c.amount)
        .join(grants, (grants.c.org_id == table.c.org_id) & (grants.c.id == table.c.grant_id))
        .where(table.c.org_id == org_id, table.c.consumption_id.in_(ids))
        .order_by(table.c.consumption_id, *order)
    )
    for cid, gid, amount in conn.execute(query):
        found[cid].append((gid, amount))
    return found


def mark_refunded(
    conn: Connection,
    org_id: str,
    consumption_id: int,
    *,
    at: datetime,
    reason: str | None,
    restored: int,
    lost: int,
    draws: list[tuple[int, int]],
) -> None:
    query = update(consumptions).where(
        consumptions.c.org_id == org_id, consumptions.c.id == consumption_id
    )
    conn.execute(
        query.values(
            status="refunded",
            refunded_at=at,
            refund_reason=reason,
            refund_restored=restored,
            refund_lost=lost,
        )
    )
    if draws:
        conn.execute(
            restorations.insert(),
            [
                {"org_id": org_id, "consumption_id": consumption_id, "grant_id": g, "amount": a}
                for g, a in draws
            ],
        )


def search(
    conn: Connection,
    org_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    feature: str | None,
    user_id: str | None,
    team_id: str | None,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> Sequence[DbRow]:
    """Newest first; ``before_id`` is the cursor of the next page."""
    c = consumptions.c
    query = select(consumptions).where(c.org_id == org_id).order_by(c.id.desc()).limit(limit)
    # Each condition is built only when its value is given: `column >= None` is an error.
    conditions: list[tuple[object, Callable[[], ColumnElement[bool]]]] = [
        (since, lambda: c.created_at >= since),
        (until, lambda: c.created_at < until),
        (feature, lambda: c.feature == feature),
        (user_id, lambda: c.user_id == user_id),
        (team_id, lambda: c.team_id == team_id),
        (status, lambda: c.status == status),
        (before_id, lambda: c.id < before_id),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition())
    return conn.execute(query).all()


def funded_by(conn: Connection, org_id: str, grant_id: int) -> list[tuple[int, int]]:
    """(consumption id, amount) of everything a grant paid for."""
    query = (
        select(allocations.c.consumption_id, allocations.c.amount)
        .where(allocations.c.org_id == org_id, allocations.c.grant_id == grant_id)
        .order_by(allocations.c.consumption_id)
    )
    return [(int(c), int(a)) for c, a in conn.execute(query)]
