"""The SQL of the forecast: paid usage per team in the window and this month. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from creditpool.storage.tables import consumptions


class PaidUsage(NamedTuple):
    """A team's paid units (``team_id`` None: consumptions of no team)."""

    team_id: str | None
    window: int  # created at or after the window's start
    month: int  # created in [month start, month end)


def paid_usage_by_team(
    conn: Connection, org_id: str, window_start: datetime, month: tuple[datetime, datetime]
) -> list[PaidUsage]:
    """One pass over the paid (not refunded) consumptions since the earlier of the two
    starts: what each team paid in the window and in the month."""
    created, cost = consumptions.c.created_at, consumptions.c.cost
    month_start, month_end = month
    in_window = func.sum(case((created >= window_start, cost), else_=0))
    in_month = func.sum(case(((created >= month_start) & (created < month_end), cost), else_=0))
    query = (
        select(consumptions.c.team_id, in_window, in_month)
        .where(
            consumptions.c.org_id == org_id,
            consumptions.c.status == "paid",
            created >= min(window_start, month_start),
        )
        .group_by(consumptions.c.team_id)
    )
    return [PaidUsage(team, int(w or 0), int(m or 0)) for team, w, m in conn.execute(query)]
