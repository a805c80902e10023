"""A team's paid usage this calendar month, and ``team.limit_crossed`` when it reaches the
team's monthly limit: once per team and month (a refund that brings it back under does not
re-arm it in the same month).

The month's usage is a counter on the team's row (``teams.usage_month``/``usage_units``),
read with the feature's price and written with the change: no sum over the month's
consumptions on the hot path. A team never counted yet (a database from before the counter)
is counted once from its consumptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from creditpool.core.events import EventType
from creditpool.core.money import to_decimal
from creditpool.orgs.service import current_month, month_bounds
from creditpool.repositories import consumptions as repository

if TYPE_CHECKING:
    from creditpool.ledger.writer import OrgWriter


def _counter(w: OrgWriter, team_id: str, read: tuple[str | None, int]) -> tuple[str, int]:
    """The team's counter for this month, as this transaction has it."""
    month = current_month(w.now, w.timezone)
    counted_month: str | None
    if team_id in w.team_usage:
        counted_month, units = w.team_usage[team_id]
    else:
        counted_month, units = read
        if counted_month is None:  # never counted: from the month's consumptions, once
            start, end = month_bounds(month, w.timezone)
            counted_month = month
            units = repository.team_paid_units(w.conn, w.org_id, team_id, start, end)
        if not w.team_usage:  # written once, at the end, with the final counts
            w.defer(lambda: repository.save_team_usage(w.conn, w.org_id, w.team_usage))
    return month, units if counted_month == month else 0


def count_use(
    w: OrgWriter,
    team_id: str | None,
    cost: int,
    limit: int | None,
    counted: tuple[str | None, int],
) -> None:
    """A paid consumption by a member of ``team_id`` costing ``cost``; ``limit`` is the
    team's monthly limit and ``counted`` its counter as read with the price."""
    if team_id is None:
        return
    month, before = _counter(w, team_id, counted)
    after = before + cost
    w.team_usage[team_id] = (month, after)
    if limit is not None and (before < limit <= after or (limit == 0 and before == 0)):
        w.emit(
            EventType.TEAM_LIMIT_CROSSED,
            {
                "team_id": team_id,
                "month": month,
                "monthly_limit": str(to_decimal(limit)),
                "used": str(to_decimal(after)),
            },
            dedupe=f"team.limit_crossed:{team_id}:{month}",
        )


def count_refund(w: OrgWriter, team_id: str | None, created_at: datetime, cost: int) -> None:
    """A refund takes its consumption's cost out of its month, if that month is counted."""
    if team_id is None:
        return
    month, units = _counter(w, team_id, repository.team_usage_counter(w.conn, w.org_id, team_id))
    if current_month(created_at, w.timezone) == month:
        w.team_usage[team_id] = (month, max(0, units - cost))
    elif team_id not in w.team_usage:
        w.team_usage[team_id] = (month, units)
