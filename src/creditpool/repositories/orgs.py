"""All SQL about organizations, teams and members. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import EllipsisType
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from creditpool.queries import Members, Orgs, Teams
from creditpool.repositories.pages import listed, where_given
from creditpool.storage import compiled, conflicts
from creditpool.storage.tables import consumptions, members, orgs, teams
from creditpool.storage.types import DbRow


def insert_org(conn: Connection, **values: Any) -> bool:
    """Whether it was inserted (False: an organization with this id exists, or a
    concurrent transaction has just inserted it)."""
    statement = conflicts.insert(conn, orgs).values(ledger_seq=0, object_seq=0, **values)
    return conflicts.inserted(conn, statement.on_conflict_do_nothing(index_elements=[orgs.c.id]))


def get_org(conn: Connection, org_id: str) -> DbRow | None:
    return conn.execute(select(orgs).where(orgs.c.id == org_id)).first()


def get_orgs(conn: Connection, org_ids: Sequence[str]) -> dict[str, DbRow]:
    """The organizations of ``org_ids`` that exist, by id, in one statement."""
    if not org_ids:
        return {}
    rows = conn.execute(select(orgs).where(orgs.c.id.in_(org_ids))).all()
    return {r.id: r for r in rows}


def list_orgs(conn: Connection, asked: Orgs) -> Sequence[DbRow]:
    query = listed(select(orgs), orgs.c.id, asked)
    if asked.search:
        pattern = f"%{asked.search.lower()}%"
        query = query.where(
            func.lower(orgs.c.id).like(pattern) | func.lower(orgs.c.name).like(pattern)
        )
    return conn.execute(query).all()


def all_org_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(orgs.c.id).order_by(orgs.c.id)).scalars())


def due_org_ids(conn: Connection, now: datetime) -> list[str]:
    query = select(orgs.c.id).where(orgs.c.next_event_at <= now).order_by(orgs.c.id)
    return list(conn.execute(query).scalars())


class LockedOrg(NamedTuple):
    """What a change needs of the organization whose row it locked: its counters."""

    id: str
    timezone: str
    low_balance_thresholds: list[int]
    ledger_seq: int
    object_seq: int
    ledger_at: datetime | None
    next_event_at: datetime | None
    expiry_notice_days: int
    alerts: dict[str, Any] | None
    longest_hold_s: int | None


LOCKED_COLUMNS = tuple(orgs.c[name] for name in LockedOrg._fields)
# The first statement of every change: lock the organization's row (``FOR UPDATE`` on
# PostgreSQL; SQLite ignores it, its write transactions begin IMMEDIATE). See
# ``repositories.idempotency.lock_queries`` for the key read in the same round trip.
LOCK = compiled.Query(
    select(*LOCKED_COLUMNS).where(orgs.c.id == bindparam("org_id")).with_for_update(),
    LockedOrg,
)

# Written at the end of every change of an organization (see storage.compiled).
_WHERE_ID = orgs.c.id == bindparam("org_id")
_SAVE_SEQS = compiled.Write(
    update(orgs).where(_WHERE_ID), keys=("ledger_seq", "object_seq", "ledger_at")
)
_SAVE_ALERTS = compiled.Write(update(orgs).where(_WHERE_ID), keys=("alerts",))
_SAVE_LONGEST_HOLD = compiled.Write(update(orgs).where(_WHERE_ID), keys=("longest_hold_s",))
_SAVE_COUNTERS = compiled.Write(
    update(orgs).where(_WHERE_ID),
    keys=("ledger_seq", "object_seq", "ledger_at", "next_event_at"),
)


def save_counters(
    conn: Connection,
    org_id: str,
    *,
    ledger_seq: int,
    object_seq: int,
    ledger_at: datetime | None,
    next_event_at: datetime | EllipsisType | None = ...,
) -> None:
    """The writer's counters; ``next_event_at`` is left alone when not given."""
    params = {
        "org_id": org_id,
        "ledger_seq": ledger_seq,
        "object_seq": object_seq,
        "ledger_at": ledger_at,
    }
    if next_event_at is ...:
        compiled.run(conn, _SAVE_SEQS, params)
    else:
        params["next_event_at"] = next_event_at
        compiled.run(conn, _SAVE_COUNTERS, params)


def save_alerts(conn: Connection, org_id: str, alerts: dict[str, Any] | None) -> None:
    """The low-balance alerts in force (``core/alerts.py``)."""
    compiled.run(conn, _SAVE_ALERTS, {"org_id": org_id, "alerts": alerts})


def save_longest_hold(conn: Connection, org_id: str, seconds: int) -> None:
    """The longest time to live the organization's holds were given (``held_at``'s bound)."""
    compiled.run(conn, _SAVE_LONGEST_HOLD, {"org_id": org_id, "longest_hold_s": seconds})


def update_org(conn: Connection, org_id: str, **values: Any) -> None:
    conn.execute(update(orgs).where(orgs.c.id == org_id).values(**values))


def insert_team(conn: Connection, **values: Any) -> bool:
    """Whether it was inserted (False: the organization has a team with this id)."""
    statement = conflicts.insert(conn, teams).values(**values)
    keys = [teams.c.org_id, teams.c.id]
    return conflicts.inserted(conn, statement.on_conflict_do_nothing(index_elements=keys))


def get_team(conn: Connection, org_id: str, team_id: str) -> DbRow | None:
    query = select(teams).where(teams.c.org_id == org_id, teams.c.id == team_id)
    return conn.execute(query).first()


def list_teams(conn: Connection, asked: Teams) -> Sequence[DbRow]:
    query = select(teams).where(teams.c.org_id == asked.org_id)
    return conn.execute(listed(query, teams.c.id, asked)).all()


def update_team(conn: Connection, org_id: str, team_id: str, **values: Any) -> None:
    query = update(teams).where(teams.c.org_id == org_id, teams.c.id == team_id)
    conn.execute(query.values(**values))


def get_member(conn: Connection, org_id: str, user_id: str) -> DbRow | None:
    query = select(members).where(members.c.org_id == org_id, members.c.user_id == user_id)
    return conn.execute(query).first()


def put_member(
    conn: Connection,
    org_id: str,
    user_id: str,
    team_id: str | None,
    display_name: str | None,
    now: datetime,
) -> None:
    """Insert or update in one statement: two writers of a new member both succeed."""
    changes = {"team_id": team_id, "display_name": display_name, "updated_at": now}
    statement = conflicts.insert(conn, members).values(org_id=org_id, user_id=user_id, **changes)
    keys = [members.c.org_id, members.c.user_id]
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes))


def list_members(conn: Connection, asked: Members) -> Sequence[DbRow]:
    query = select(members).where(members.c.org_id == asked.org_id)
    query = where_given(query, (members.c.team_id, asked.team_id))
    return conn.execute(listed(query, members.c.user_id, asked)).all()


class UsageByTeam(NamedTuple):
    team_id: str | None
    used: int | None  # None: no consumption (SQL's sum of nothing)
    n: int


def paid_usage_by_team(
    conn: Connection, org_id: str, start: datetime, end: datetime
) -> list[UsageByTeam]:
    """Used units and count of paid consumptions in [start, end), per team."""
    query = (
        select(consumptions.c.team_id, func.sum(consumptions.c.cost), func.count())
        .where(
            consumptions.c.org_id == org_id,
            consumptions.c.status == "paid",
            consumptions.c.created_at >= start,
            consumptions.c.created_at < end,
        )
        .group_by(consumptions.c.team_id)
    )
    return [UsageByTeam(*row) for row in conn.execute(query)]
