"""The SQL only pages need: daily usage by feature, the ledger's last sequence number, the
display names of the users a page shows. Never commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement, case

from creditpool.storage.tables import consumptions, ledger, members

_TICK = timedelta(microseconds=1)


def last_seq(conn: Connection, org_id: str) -> int:
    """The newest ledger entry's number (0 when none): the point a page is rendered at."""
    query = select(func.max(ledger.c.seq)).where(ledger.c.org_id == org_id)
    return int(conn.execute(query).scalar() or 0)


def display_names(conn: Connection, org_id: str, user_ids: Iterable[str]) -> dict[str, str]:
    """The display names of those of ``user_ids`` who have one: user id to name."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    m = members.c
    query = select(m.user_id, m.display_name).where(
        m.org_id == org_id, m.user_id.in_(wanted), m.display_name.is_not(None)
    )
    return {str(user): str(name) for user, name in conn.execute(query)}


def daily_usage(
    conn: Connection,
    org_id: str,
    zone: str,
    start: datetime,
    end: datetime,
    user_id: str | None = None,
) -> dict[tuple[date, str], int]:
    """Paid units per (day in ``zone``, feature) of consumptions in [start, end): one
    grouped query. PostgreSQL converts the zone itself; SQLite, which has no zones,
    shifts each time by the zone's offset in force then (a CASE over the few offset
    changes inside the range), which is exact across daylight-saving changes."""
    c = consumptions.c
    local_day: ColumnElement[object]
    if conn.dialect.name == "postgresql":
        local_day = cast(func.timezone(zone, c.created_at), Date)
    else:
        local_day = func.date(c.created_at, _sqlite_shift(c.created_at, zone, start, end))
    query = (
        select(local_day.label("local_day"), c.feature, func.sum(c.cost))
        .where(
            c.org_id == org_id,
            c.status == "paid",
            c.created_at >= start,
            c.created_at < end,
        )
        .group_by(literal_column("local_day"), c.feature)
    )
    if user_id is not None:
        query = query.where(c.user_id == user_id)
    found: dict[tuple[date, str], int] = {}
    for day, feature, units in conn.execute(query):
        key = (day if isinstance(day, date) else date.fromisoformat(day), str(feature))
        found[key] = int(units)
    return found


def _sqlite_shift(
    column: ColumnElement[datetime], zone: str, start: datetime, end: datetime
) -> ColumnElement[str]:
    segments = offset_segments(ZoneInfo(zone), start, end)
    modifier = [f"{int(offset.total_seconds()):+d} seconds" for _, offset in segments]
    if len(segments) == 1:
        return literal_column(f"'{modifier[0]}'")
    whens = [(column < until, modifier[i]) for i, (until, _) in enumerate(segments[:-1])]
    return case(*whens, else_=modifier[-1])


def offset_segments(
    zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, timedelta]]:
    """[(until, offset)]: the zone's UTC offset is ``offset`` before ``until`` (and after
    the previous segment's until); the last segment's until is ``end``. Changes are found
    day by day, then to the microsecond by bisection."""
    segments: list[tuple[datetime, timedelta]] = []
    at, current = start, _offset(zone, start)
    while at < end:
        step = min(at + timedelta(days=1), end)
        if _offset(zone, step) != current:
            low, high = at, step  # the offset changes in (low, high]
            while high - low > _TICK:
                middle = low + (high - low) / 2
                if _offset(zone, middle) == current:
                    low = middle
                else:
                    high = middle
            segments.append((high, current))
            at, current = high, _offset(zone, high)
            continue
        at = step
    segments.append((end, current))
    return segments


def _offset(zone: ZoneInfo, at: datetime) -> timedelta:
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None
    return offset
