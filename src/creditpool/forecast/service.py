"""The forecast, read in the caller's one transaction: the live grants as the ledger will
record them now (holds that ran out have given their credits back), the teams and the paid
usage of the window and the month; the core does the rest."""

from __future__ import annotations

from creditpool.core import forecast as core
from creditpool.core.errors import InvalidInput
from creditpool.core.forecast import WINDOW_DAYS_MAX, TeamPace
from creditpool.core.money import to_decimal
from creditpool.forecast.models import ExpiringUnused, Forecast, TeamForecast
from creditpool.ledger.writer import as_of
from creditpool.orgs.service import current_month, month_bounds, require_org
from creditpool.queries import Teams
from creditpool.repositories import forecast as repository
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import orgs as orgs_repo
from creditpool.storage.uow import Tx

NO_TEAM = "No team"


def window_days(value: object) -> int:
    """The window's length: a whole number of days, 1 to ``WINDOW_DAYS_MAX``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= WINDOW_DAYS_MAX:
        raise InvalidInput(f"window_days must be a whole number from 1 to {WINDOW_DAYS_MAX}")
    return value


def forecast(tx: Tx, org_id: str, days: int) -> Forecast:
    """At ``tx.now``, from the paid usage of the last ``days`` days (of 24 hours) ending
    now; teams in id order, then "no team" when its users paid in the window or month."""
    org = require_org(tx, org_id)
    now, zone = tx.now, org.timezone
    start = core.window_start(now, days)
    month = current_month(now, zone)
    usage = {
        u.team_id: u
        for u in repository.paid_usage_by_team(tx.conn, org_id, start, month_bounds(month, zone))
    }
    names: dict[str | None, str] = {}
    paces: list[TeamPace] = []
    for team in orgs_repo.list_teams(tx.conn, Teams(org_id)):
        u = usage.get(team.id)
        names[team.id] = team.name
        paces.append(
            TeamPace(team.id, u.month if u else 0, u.window if u else 0, team.monthly_limit)
        )
    nobody = usage.get(None)
    if nobody is not None and (nobody.month or nobody.window):
        names[None] = NO_TEAM
        paces.append(TeamPace(None, nobody.month, nobody.window, None))
    live = list(grants_repo.load_live(tx.conn, org_id).values())
    window_used = sum(u.window for u in usage.values())
    units = core.forecast(
        as_of(tx, org_id, live, now),
        now,
        zone,
        window_used=window_used,
        window_days=days,
        teams=paces,
    )
    return Forecast(
        org_id=org_id,
        at=now,
        timezone=zone,
        window_days=days,
        window_start=start,
        window_used=to_decimal(window_used),
        daily_pace=to_decimal(units.daily_pace),
        left=to_decimal(units.left),
        status=units.status,
        runs_out_at=units.runs_out_at,
        runs_out_on=units.runs_out_on,
        horizon_on=units.horizon_on,
        expiring_unused=to_decimal(units.expiring_unused),
        expiring=tuple(ExpiringUnused(on=x.on, credits=to_decimal(x.units)) for x in units.losses),
        month=month,
        teams=tuple(_team(t, names[t.team_id]) for t in units.teams),
    )


def _team(t: core.TeamProjection, name: str) -> TeamForecast:
    return TeamForecast(
        team_id=t.team_id,
        name=name,
        used=to_decimal(t.month_used),
        projected=to_decimal(t.projected),
        monthly_limit=None if t.limit is None else to_decimal(t.limit),
        projected_over=t.over,
    )
