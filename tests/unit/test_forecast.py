"""The forecast: the day Left reaches zero at the recent pace (credits that expire first are
lost, not runway), what expires unused, and each team's projected month-end usage."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from creditpool.core.forecast import (
    HORIZON_DAYS,
    ForecastStatus,
    ForecastUnits,
    Loss,
    TeamPace,
    forecast,
    month_end,
    window_start,
)
from creditpool.core.grants import GrantRow, consumption_order
from tests.unit.builders import T0, units

DAY_US = 86_400_000_000


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def grant(
    gid: int,
    amount: str,
    *,
    remaining: str | None = None,
    available: float | None = None,
    expires: float | None = None,
    held: str = "0",
) -> GrantRow:
    """A grant created 10 days before T0; ``available``/``expires`` in days after T0."""
    return GrantRow(
        id=gid,
        amount=units(amount),
        remaining=units(amount if remaining is None else remaining),
        granted_at=day(-10),
        available_from=day(-10 if available is None else available),
        expires_at=None if expires is None else day(expires),
        held=units(held),
    )


def run(
    grants: list[GrantRow],
    per_day: str = "10",
    *,
    window_days: int = 30,
    zone: str = "UTC",
    now: datetime = T0,
    teams: tuple[TeamPace, ...] = (),
) -> ForecastUnits:
    """The forecast at ``now`` with a window that paid ``per_day`` credits a day."""
    return forecast(
        grants,
        now,
        zone,
        window_used=units(per_day) * window_days,
        window_days=window_days,
        teams=teams,
    )


def test_credits_run_out_when_left_is_drawn_at_the_pace() -> None:
    f = run([grant(1, "100")], per_day="10")
    assert f.status is ForecastStatus.RUNS_OUT
    assert f.left == units("100")
    assert f.daily_pace == units("10")
    assert f.runs_out_at == day(10)
    assert f.runs_out_on == date(2026, 1, 11)
    assert f.losses == ()
    assert f.expiring_unused == 0


def test_credits_that_expire_before_they_are_used_are_lost_not_runway() -> None:
    # 100 credits expiring in 5 days and 50 that never expire, at 10 a day: 50 of the
    # first are used, the other 50 expire; the 50 permanent last 5 more days (not 10).
    f = run([grant(1, "50"), grant(2, "100", expires=5)], per_day="10")
    assert f.left == units("150")
    assert f.losses == (Loss(date(2026, 1, 6), units("50")),)
    assert f.expiring_unused == units("50")
    assert f.runs_out_at == day(10)


def test_the_soonest_expiring_grant_is_drawn_first() -> None:
    # At 10 a day the grant expiring on day 4 is used up by day 3, then the one expiring on
    # day 10 is drawn to zero exactly when it expires: nothing is lost.
    f = run([grant(1, "70", expires=10), grant(2, "30", expires=4)], per_day="10")
    assert f.losses == ()
    assert f.runs_out_at == day(10)
    # Drawn in the other order, 30 would have been lost on day 4.


def test_an_expiry_that_takes_left_to_zero_is_the_run_out() -> None:
    # Day 0-2 draws 20 of grant 2 (10 lost on day 2); grant 1 gives 80 until day 10 and
    # loses its last 20 then: Left is zero at that expiry.
    f = run([grant(1, "100", expires=10), grant(2, "30", expires=2)], per_day="10")
    assert f.losses == (Loss(date(2026, 1, 3), units("10")), Loss(date(2026, 1, 11), units("20")))
    assert f.expiring_unused == units("30")
    assert f.runs_out_at == day(10)
    assert f.status is ForecastStatus.RUNS_OUT


def test_a_pending_grant_that_becomes_available_extends_the_runway() -> None:
    f = run([grant(1, "50"), grant(2, "100", available=3)], per_day="10")
    assert f.left == units("50")  # the pending grant is not in Left yet
    assert f.runs_out_at == day(15)


def test_a_pending_grant_after_the_run_out_does_not_move_the_first_run_out() -> None:
    f = run([grant(1, "20"), grant(2, "100", available=5, expires=7)], per_day="10")
    assert f.runs_out_at == day(2)
    # It arrives on day 5 and 20 of it is used before it expires on day 7.
    assert f.losses == (Loss(date(2026, 1, 8), units("80")),)


def test_a_grant_arriving_the_instant_left_reaches_zero_is_no_run_out() -> None:
    f = run([grant(1, "50"), grant(2, "30", available=5)], per_day="10")
    assert f.runs_out_at == day(8)


def test_a_pending_grant_that_expires_before_it_is_reached_is_lost_whole() -> None:
    # Once available, the pending grant is drawn first (it expires first): 10 of 40.
    f = run([grant(1, "1000"), grant(2, "40", available=2, expires=3)], per_day="10")
    assert f.losses == (Loss(date(2026, 1, 4), units("30")),)


def test_an_unused_pool_says_so_and_every_expiring_credit_is_lost() -> None:
    grants = [grant(1, "100", expires=5), grant(2, "7", available=2, expires=9), grant(3, "5")]
    f = run(grants, per_day="0")
    assert f.status is ForecastStatus.NO_USAGE
    assert f.runs_out_at is None
    assert f.runs_out_on is None
    assert f.daily_pace == 0
    assert f.left == units("105")
    assert f.losses == (Loss(date(2026, 1, 6), units("100")), Loss(date(2026, 1, 10), units("7")))


def test_an_unused_empty_pool_is_not_used_rather_than_run_out() -> None:
    f = run([], per_day="0")
    assert (f.status, f.left, f.runs_out_at, f.losses) == (ForecastStatus.NO_USAGE, 0, None, ())


def test_a_used_pool_with_nothing_left_has_run_out_now() -> None:
    f = run([grant(1, "10", remaining="0"), grant(2, "50", available=4)], per_day="1")
    assert f.status is ForecastStatus.RUNS_OUT
    assert f.runs_out_at == T0


def test_a_pool_that_lasts_past_the_horizon_says_so() -> None:
    f = run([grant(1, "1000000")], per_day="1")
    assert f.status is ForecastStatus.LASTS
    assert f.runs_out_at is None
    assert f.horizon_at == T0 + timedelta(days=HORIZON_DAYS)
    assert f.horizon_on == date(2035, 12, 30)


def test_nothing_beyond_the_horizon_is_projected() -> None:
    grants = [
        grant(1, "1000000", expires=HORIZON_DAYS + 1),
        grant(2, "10", available=HORIZON_DAYS + 1),
    ]
    f = run(grants, per_day="1")
    assert f.status is ForecastStatus.LASTS
    assert f.losses == ()


def test_held_credits_are_not_runway() -> None:
    f = run([grant(1, "100", remaining="40", held="60")], per_day="10")
    assert f.left == units("40")
    assert f.runs_out_at == day(4)


def test_expired_and_exhausted_grants_count_for_nothing() -> None:
    f = run([grant(1, "100", expires=-1), grant(2, "10", remaining="0"), grant(3, "5")], "1")
    assert f.left == units("5")
    assert f.runs_out_at == day(5)


def test_the_run_out_instant_is_exact_to_the_microsecond_rounded_up() -> None:
    # 7 units a day against 1 unit: 1/7 of a day = 12,342,857,142.857... microseconds.
    f = forecast([grant(1, "0.0001")], T0, "UTC", window_used=7, window_days=1)
    assert f.runs_out_at == T0 + timedelta(microseconds=12_342_857_143)


def test_losses_and_the_pace_are_exact_units_rounded_half_up() -> None:
    # 1 credit in 3 days: the pace is 3,333.33 units a day (3,333), and a credit expiring
    # after 1 day keeps 6,666.67 units unused (6,667).
    f = forecast(
        [grant(1, "1", expires=1), grant(2, "5")], T0, "UTC", window_used=units("1"), window_days=3
    )
    assert f.daily_pace == 3333
    assert f.losses == (Loss(date(2026, 1, 2), 6667),)
    # Half a unit rounds up: 1 unit over 2 days is 0.5 a day.
    assert forecast([], T0, "UTC", window_used=1, window_days=2).daily_pace == 1


def test_losses_of_one_day_are_summed_in_the_organizations_zone() -> None:
    # Expiries at 20:00 and 23:30 UTC on 3 January: one day in UTC, two in Berlin.
    grants = [grant(1, "10", expires=2 + 8 / 24), grant(2, "20", expires=2 + 11.5 / 24)]
    assert run(grants, "0").losses == (Loss(date(2026, 1, 3), units("30")),)
    berlin = run(grants, "0", zone="Europe/Berlin").losses
    assert berlin == (Loss(date(2026, 1, 3), units("10")), Loss(date(2026, 1, 4), units("20")))


def test_the_run_out_day_is_the_day_in_the_organizations_zone() -> None:
    # One credit an hour against 227.5: Left runs out at 23:30 UTC on 10 January.
    grants = [grant(1, "227.5")]
    f = run(grants, "24")
    assert f.runs_out_at == datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
    assert f.runs_out_on == date(2026, 1, 10)
    assert run(grants, "24", zone="Europe/Berlin").runs_out_on == date(2026, 1, 11)
    assert run(grants, "24", zone="America/Los_Angeles").runs_out_on == date(2026, 1, 10)
    assert run(grants, "24", zone="Pacific/Kiritimati").runs_out_on == date(2026, 1, 11)


def test_a_team_is_projected_to_month_end_at_its_own_pace() -> None:
    # T0 is noon on 1 January (UTC): 30.5 days are left in the month. A team that paid 30
    # credits in the window uses 1 a day: 10 so far + 30.5 = 40.5.
    teams = (
        TeamPace("a", units("10"), units("30"), units("40")),
        TeamPace("b", units("10"), units("30"), units("40.5")),
        TeamPace("c", units("10"), units("30"), None),
        TeamPace(None, 0, units("3"), None),
    )
    f = run([grant(1, "100")], teams=teams)
    by_team = {t.team_id: t for t in f.teams}
    assert [t.team_id for t in f.teams] == ["a", "b", "c", None]
    assert by_team["a"].projected == units("40.5")
    assert by_team["a"].over
    assert by_team["b"].projected == units("40.5")
    assert not by_team["b"].over
    assert by_team["c"].limit is None
    assert not by_team["c"].over
    assert by_team["c"].month_used == units("10")
    assert by_team[None].projected == units("3.05")


def test_a_team_without_usage_is_projected_at_what_it_used() -> None:
    f = run([], "0", teams=(TeamPace("a", units("5"), 0, units("4")),))
    assert f.teams[0].projected == units("5")
    assert f.teams[0].over


def test_the_month_ends_at_midnight_of_the_organizations_zone() -> None:
    late = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)  # already 1 February in Berlin
    assert month_end(late, "UTC") == datetime(2026, 2, 1, tzinfo=UTC)
    assert month_end(late, "Europe/Berlin") == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert month_end(datetime(2026, 12, 31, 12, tzinfo=UTC), "UTC") == datetime(
        2027, 1, 1, tzinfo=UTC
    )
    team = (TeamPace("a", 0, units("30"), None),)  # 1 credit a day
    assert run([], now=late, teams=team).teams[0].projected == units("0.0208")  # 30 minutes
    in_berlin = run([], now=late, zone="Europe/Berlin", teams=team).teams[0]
    assert in_berlin.projected == units("27.9792")  # 27 days 23.5 hours


def test_the_window_is_whole_days_of_24_hours_ending_now() -> None:
    assert window_start(T0, 30) == T0 - timedelta(days=30)
    assert window_start(T0, 1) == T0 - timedelta(hours=24)


# -- against a reference model: a day at a time --------------------------------------

Plan = tuple[int, int, int | None]  # units, first day (0: active now), expiry day


def built(plans: list[Plan]) -> list[GrantRow]:
    grants = [grant(i, "1", available=p[1], expires=p[2]) for i, p in enumerate(plans)]
    for g, p in zip(grants, plans, strict=True):
        g.amount = g.remaining = p[0]
    return grants


def reference(plans: list[Plan], pace: int) -> tuple[Fraction | None, dict[int, int]]:
    """Whole-day events and a whole number of units a day: the day loop is exact. (The
    day Left first reaches zero, as a fraction of days; the units lost on each day.)"""
    grants = built(plans)
    order = sorted(range(len(plans)), key=lambda i: consumption_order(grants[i]))
    left: dict[int, int] = {}
    lost: dict[int, int] = {}
    runs_out: Fraction | None = None
    last = max([p[1] for p in plans] + [p[2] or 0 for p in plans] + [0])
    for d in range(last + 2):
        left |= {i: p[0] for i, p in enumerate(plans) if p[1] == d}
        for i in [i for i in left if plans[i][2] == d]:
            lost[d] = lost.get(d, 0) + left.pop(i)
        total = sum(left.values())
        if pace and runs_out is None and total < pace:
            runs_out = d + Fraction(total, pace)
        due = pace
        for i in [i for i in order if i in left]:
            take = min(left[i], due)
            left[i] -= take
            due -= take
    if pace and runs_out is None:
        runs_out = last + 2 + Fraction(sum(left.values()), pace)
    return runs_out, {d: u for d, u in lost.items() if u}


plans = st.lists(
    st.tuples(st.integers(1, 10**7), st.integers(0, 30), st.none() | st.integers(1, 30)).map(
        lambda p: (p[0], p[1], None if p[2] is None else p[1] + p[2])
    ),
    max_size=8,
)


@given(plans, st.just(0) | st.integers(10**4, 10**6))
def test_the_simulation_matches_a_day_by_day_reference(plans: list[Plan], pace: int) -> None:
    f = forecast(built(plans), T0, "UTC", window_used=pace, window_days=1)
    runs_out, lost = reference(plans, pace)
    if runs_out is None:
        assert f.runs_out_at is None
    else:
        assert f.runs_out_at == T0 + timedelta(microseconds=math.ceil(runs_out * DAY_US))
    assert f.losses == tuple(Loss(day(d).date(), u) for d, u in sorted(lost.items()))
    assert f.expiring_unused == sum(lost.values())
