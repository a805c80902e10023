"""All SQL about consumptions, allocations and restorations. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from creditpool.queries import Consumptions
from creditpool.repositories.pages import listed, where_given
from creditpool.storage import compiled
from creditpool.storage.tables import (
    allocations,
    consumptions,
    features,
    grants,
    members,
    restorations,
    teams,
)
from creditpool.storage.types import DbRow


class Pricing(NamedTuple):
    rate: int
    per_unit: bool
    team_id: str | None
    team_limit: int | None
    usage_month: str | None
    usage_units: int | None


# The statements of every consumption (see storage.compiled).
_TEAM = (
    select(members.c.team_id)
    .where(members.c.org_id == bindparam("org_id"), members.c.user_id == bindparam("user_id"))
    .scalar_subquery()
)


def _of_team(column: Any) -> Any:
    where = (teams.c.org_id == bindparam("org_id"), teams.c.id == _TEAM)
    return select(column).where(*where).scalar_subquery().label(column.name)


_PRICING = compiled.Query(
    select(
        features.c.rate,
        features.c.per_unit,
        _TEAM.label("team_id"),
        _of_team(teams.c.monthly_limit).label("team_limit"),
        _of_team(teams.c.usage_month),
        _of_team(teams.c.usage_units),
    ).where(features.c["key"] == bindparam("feature")),
    Pricing,
)
_INSERT = compiled.Write(consumptions.insert())
_INSERT_ALLOCATION = compiled.Write(allocations.insert())


def pricing_query(
    org_id: str, feature: str, user_id: str
) -> tuple[compiled.Query[Pricing], compiled.Params]:
    """The feature's price now and the user's team now: one row, none if no such feature."""
    return _PRICING, {"org_id": org_id, "user_id": user_id, "feature": feature}


def pricing(conn: Connection, org_id: str, feature: str, user_id: str) -> Pricing | None:
    """The feature's price now and the user's team now, in one round trip."""
    rows = compiled.fetch(conn, *pricing_query(org_id, feature, user_id))
    return rows[0] if rows else None


def insert(conn: Connection, values: dict[str, Any], draws: list[tuple[int, int]]) -> None:
    """A new consumption (its columns named by ``values``) and its allocations."""
    rows = [
        {"org_id": values["org_id"], "consumption_id": values["id"], "grant_id": g, "amount": a}
        for g, a in draws
    ]
    compiled.run(conn, _INSERT, values)
    compiled.run(conn, _INSERT_ALLOCATION, rows)


def team_paid_units(
    conn: Connection, org_id: str, team_id: str, start: datetime, end: datetime
) -> int:
    """What a team's paid consumptions in [start, end) cost."""
    query = select(func.coalesce(func.sum(consumptions.c.cost), 0)).where(
        consumptions.c.org_id == org_id,
        consumptions.c.team_id == team_id,
        consumptions.c.status == "paid",
        consumptions.c.created_at >= start,
        consumptions.c.created_at < end,
    )
    return int(conn.execute(query).scalar_one())


_SAVE_TEAM_USAGE = compiled.Write(
    update(teams).where(teams.c.org_id == bindparam("o"), teams.c.id == bindparam("t")),
    keys=("usage_month", "usage_units"),
)


def save_team_usage(conn: Connection, org_id: str, usage: dict[str, tuple[str, int]]) -> None:
    params = [
        {"o": org_id, "t": t, "usage_month": m, "usage_units": u} for t, (m, u) in usage.items()
    ]
    compiled.run(conn, _SAVE_TEAM_USAGE, params)


def team_usage_counter(conn: Connection, org_id: str, team_id: str) -> tuple[str | None, int]:
    row = conn.execute(
        select(teams.c.usage_month, teams.c.usage_units).where(
            teams.c.org_id == org_id, teams.c.id == team_id
        )
    ).first()
    return (None, 0) if row is None else (row.usage_month, int(row.usage_units))


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


def search(conn: Connection, asked: Consumptions) -> Sequence[DbRow]:
    """Newest first; ``before_id`` is the cursor of the next page."""
    c = consumptions.c
    query = select(consumptions).where(c.org_id == asked.org_id)
    if asked.since is not None:
        query = query.where(c.created_at >= asked.since)
    if asked.until is not None:
        query = query.where(c.created_at < asked.until)
    query = where_given(
        query,
        (c.feature, asked.feature),
        (c.user_id, asked.user_id),
        (c.team_id, asked.team_id),
        (c.status, asked.status),
    )
    return conn.execute(listed(query, c.id, asked)).all()


def funded_by(conn: Connection, org_id: str, grant_id: int) -> list[tuple[int, int]]:
    """(consumption id, amount) of everything a grant paid for."""
    query = (
        select(allocations.c.consumption_id, allocations.c.amount)
        .where(allocations.c.org_id == org_id, allocations.c.grant_id == grant_id)
        .order_by(allocations.c.consumption_id)
    )
    return [(int(c), int(a)) for c, a in conn.execute(query)]
