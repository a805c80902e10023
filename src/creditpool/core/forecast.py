"""When Left reaches zero at the recent pace, what expires unused on the way, and where
each team's usage ends the month.

The pace is the paid usage of a window spread evenly over it: ``window_used`` units every
``window_days`` days of 24 hours. The simulation runs event by event (a pending grant
becoming available, a grant expiring) and in between draws at that pace from the active
grants in consumption order (soonest expiry first, permanent last), as consumptions do:
what is left on a grant when it expires is lost, not runway. Held credits are not in
Left, so they are no runway either (a hold is usage already on its way).

Exact, on integers: time in microseconds after ``now``, credits scaled by the window's
length in microseconds, so that the draw of one microsecond is ``window_used`` scaled
units. Only the results are rounded (half up, to units; a run-out instant up, to the
microsecond). Pure: the instant and the organization's zone are handed in.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from creditpool.core.grants import GrantRow, GrantState, consumption_order

WINDOW_DAYS_DEFAULT = 30
WINDOW_DAYS_MAX = 365
# A pool that still has credits this far ahead "lasts beyond" it; losses after it are not
# projected. Ten years of 365 days: further out, a pace says nothing.
HORIZON_DAYS = 3650
DAY = timedelta(days=1)
_US = timedelta(microseconds=1)
_DAY_US = DAY // _US


class ForecastStatus(StrEnum):
    NO_USAGE = "no_usage"  # nothing paid in the window: no pace, nothing runs out
    RUNS_OUT = "runs_out"  # Left reaches zero within the horizon
    LASTS = "lasts"  # Left stays above zero up to the horizon


@dataclass(frozen=True, slots=True)
class TeamPace:
    """A team's paid usage this calendar month so far and in the window (units)."""

    team_id: str | None
    month_used: int
    window_used: int
    limit: int | None


@dataclass(frozen=True, slots=True)
class TeamProjection:
    team_id: str | None
    month_used: int
    projected: int  # month_used + the team's pace x the time left in the month
    limit: int | None

    @property
    def over(self) -> bool:
        """Projected above its limit (a team without a limit never is)."""
        return self.limit is not None and self.projected > self.limit


@dataclass(frozen=True, slots=True)
class Loss:
    """Units projected to expire unused on a day of the organization's zone."""

    on: date
    units: int


@dataclass(frozen=True, slots=True)
class ForecastUnits:
    status: ForecastStatus
    left: int  # Left now: the active grants' remaining (held excluded)
    daily_pace: int  # units per day, rounded half up
    runs_out_at: datetime | None
    runs_out_on: date | None  # the day of ``runs_out_at`` in the organization's zone
    horizon_at: datetime
    horizon_on: date
    losses: tuple[Loss, ...]
    teams: tuple[TeamProjection, ...]

    @property
    def expiring_unused(self) -> int:
        return sum(loss.units for loss in self.losses)


def window_start(now: datetime, window_days: int) -> datetime:
    """The window is [now - window_days x 24 h, now): whole days ending now, so that the
    usage of today counts as soon as it is paid."""
    return now - window_days * DAY


def month_end(now: datetime, zone: str) -> datetime:
    """The first instant of the next calendar month in ``zone``."""
    local = now.astimezone(ZoneInfo(zone))
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return datetime(year, month, 1, tzinfo=ZoneInfo(zone))


def forecast(
    grants: Iterable[GrantRow],
    now: datetime,
    zone: str,
    *,
    window_used: int,
    window_days: int,
    teams: Iterable[TeamPace] = (),
) -> ForecastUnits:
    """The forecast at ``now`` from the live grants (their states at ``now`` decide: active
    grants give their remaining now, pending ones theirs when they start) and the paid usage
    ``window_used`` of the last ``window_days`` days."""
    scale = window_days * _DAY_US  # scaled units per unit
    horizon = HORIZON_DAYS * _DAY_US
    pots = _pots(grants, now, scale, horizon)
    left = sum(p.left for p in pots if p.start == 0) // scale
    runs_out, lost = _simulate(pots, window_used, horizon)
    tz = ZoneInfo(zone)
    by_day: dict[date, int] = {}
    for offset, scaled in lost:
        day = (now + offset * _US).astimezone(tz).date()
        by_day[day] = by_day.get(day, 0) + scaled
    losses = tuple(Loss(day, _round(scaled, scale)) for day, scaled in sorted(by_day.items()))
    runs_out_at = None if runs_out is None else now + runs_out * _US
    if window_used == 0:
        status = ForecastStatus.NO_USAGE
    else:
        status = ForecastStatus.LASTS if runs_out_at is None else ForecastStatus.RUNS_OUT
    horizon_at = now + horizon * _US
    return ForecastUnits(
        status=status,
        left=left,
        daily_pace=_round(window_used, window_days),
        runs_out_at=runs_out_at,
        runs_out_on=None if runs_out_at is None else runs_out_at.astimezone(tz).date(),
        horizon_at=horizon_at,
        horizon_on=horizon_at.astimezone(tz).date(),
        losses=tuple(loss for loss in losses if loss.units > 0),
        teams=tuple(_project(t, now, zone, scale) for t in teams),
    )


def _project(team: TeamPace, now: datetime, zone: str, scale: int) -> TeamProjection:
    """Month to date plus the team's pace over what is left of the month (in its zone)."""
    left_us = (month_end(now, zone) - now) // _US
    projected = team.month_used + _round(team.window_used * left_us, scale)
    return TeamProjection(team.team_id, team.month_used, projected, team.limit)


def _round(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up (both non-negative)."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(slots=True)
class _Pot:
    """A grant's credits in the simulation: scaled units left, from ``start`` (a
    microsecond offset from now) until ``expires`` (None: never)."""

    order: tuple[Any, ...]
    left: int
    start: int
    expires: int | None


def _pots(grants: Iterable[GrantRow], now: datetime, scale: int, horizon: int) -> list[_Pot]:
    pots: list[_Pot] = []
    for g in grants:
        state = g.state_at(now)
        if state is GrantState.ACTIVE:
            start = 0
        elif state is GrantState.PENDING:
            start = (g.starts_at - now) // _US
        else:
            continue
        expires = None if g.expires_at is None else (g.expires_at - now) // _US
        if g.remaining > 0 and start <= horizon and (expires is None or expires > start):
            pots.append(_Pot(consumption_order(g), g.remaining * scale, start, expires))
    return pots


def _by_order(p: _Pot) -> tuple[Any, ...]:
    return p.order


def _simulate(
    pots: list[_Pot], rate: int, horizon: int
) -> tuple[int | None, list[tuple[int, int]]]:
    """(the offset at which Left first reaches zero, or None; the (offset, scaled units)
    lost at each expiry) up to ``horizon``, drawing ``rate`` scaled units a microsecond."""
    active = sorted((p for p in pots if p.start == 0), key=_by_order)
    pending = sorted((p for p in pots if p.start > 0), key=lambda p: p.start)
    instants = {p.start for p in pending}
    instants |= {p.expires for p in pots if p.expires is not None and p.expires <= horizon}
    left = sum(p.left for p in active)
    runs_out = 0 if rate and left == 0 else None
    lost: list[tuple[int, int]] = []
    t = 0
    for at in sorted(instants | {horizon}):
        if rate:
            demand = rate * (at - t)
            if runs_out is None and demand > left:
                runs_out = t - (-left // rate)  # the microsecond Left reaches zero, rounded up
            left -= _draw(active, demand)
        t = at
        # At one instant a grant's availability comes before an expiry, as in the ledger.
        while pending and pending[0].start == at:
            pot = pending.pop(0)
            insort(active, pot, key=_by_order)
            left += pot.left
        while active and active[0].expires == at:
            pot = active.pop(0)
            lost.append((at, pot.left))
            left -= pot.left
        if rate and runs_out is None and left == 0:
            runs_out = at
    return runs_out, lost


def _draw(active: list[_Pot], demand: int) -> int:
    """Take ``demand`` (or all there is) from the front of ``active``; what was taken."""
    taken = 0
    while active and demand > 0:
        pot = active[0]
        take = min(pot.left, demand)
        pot.left -= take
        demand -= take
        taken += take
        if pot.left == 0:
            active.pop(0)
    return taken
