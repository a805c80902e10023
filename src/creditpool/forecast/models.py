from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from creditpool.core.forecast import ForecastStatus
from creditpool.models import Model


class ExpiringUnused(Model):
    """Credits projected to expire unused on a day of the organization's zone."""

    on: date
    credits: Decimal


class TeamForecast(Model):
    """A team's paid usage this calendar month (the org's zone) and where it is projected to
    end the month at the team's own pace of the window, against its limit."""

    team_id: str | None  # None: consumptions of users in no team
    name: str
    used: Decimal
    projected: Decimal
    monthly_limit: Decimal | None
    projected_over: bool  # projected above the limit (never without a limit)


class Forecast(Model):
    """When Left reaches zero at the pace of the paid usage of the window [window_start,
    at); credits that expire before the pace uses them are lost, not runway.

    ``status``: ``no_usage`` (nothing paid in the window: nothing runs out), ``runs_out``
    (at ``runs_out_at``, the day ``runs_out_on`` in the org's zone; ``at`` itself when Left
    is already zero) or ``lasts`` (credits left at ``horizon_on``, as far as it looks).
    ``teams`` is null over HTTP for a key that may not read usage summaries (a member)."""

    org_id: str
    at: datetime
    timezone: str
    window_days: int
    window_start: datetime
    window_used: Decimal  # paid (not refunded) usage in the window
    daily_pace: Decimal  # window_used / window_days
    left: Decimal  # Left now: held credits are not runway
    status: ForecastStatus
    runs_out_at: datetime | None
    runs_out_on: date | None
    horizon_on: date
    expiring_unused: Decimal
    expiring: tuple[ExpiringUnused, ...]  # by day, the earliest first
    month: str  # YYYY-MM of the team projections
    teams: tuple[TeamForecast, ...] | None
