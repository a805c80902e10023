"""The forecast through the library, on every backend: the pace of the paid usage of the
window, the grants' schedule, held credits, and the teams' month in the org's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from creditpool import CreditPool, InvalidInput, NotFound
from creditpool.core.forecast import ForecastStatus
from creditpool.forecast.models import ExpiringUnused, TeamForecast
from tests.support import START, FakeClock


def scenario(pool: CreditPool, clock: FakeClock) -> None:
    """In Berlin; 120 credits paid in the last 30 days (4 a day), 270 + 30 left now (20
    more held), 200 more in 20 days."""
    clock.set(START - timedelta(days=40))
    pool.create_org("acme", timezone="Europe/Berlin")
    pool.set_feature("tokens", unit_rate="1", unit="token")
    pool.create_team("acme", "red", name="Red", monthly_limit="50")
    pool.create_team("acme", "blue", name="Blue")
    pool.set_member("acme", "alice", team_id="red")
    pool.set_member("acme", "bob", team_id="blue")
    pool.grant("acme", "300")  # A
    pool.grant("acme", "100", expires_at=START + timedelta(days=5))  # B: drawn first
    pool.grant("acme", "200", available_from=START + timedelta(days=20))  # C, pending

    def use(at: timedelta, user: str, credits: str) -> int:
        clock.set(START + at)
        found = pool.consume("acme", "tokens", user_id=user, quantity=credits).id
        assert found is not None  # recorded (not a dry run)
        return found

    use(-timedelta(days=35), "alice", "10")  # before the window
    use(-timedelta(days=20), "alice", "60")
    refunded = use(-timedelta(days=10), "alice", "50")
    pool.refund("acme", refunded)  # not paid: no pace
    use(-timedelta(days=1), "bob", "30")  # 1 November, 10:00 in Berlin
    use(-timedelta(hours=2), "carol", "30")  # in no team
    # B is empty now, A holds 270. D: 50 more, expiring with B; 20 of it held.
    clock.set(START - timedelta(hours=1))
    pool.grant("acme", "50", expires_at=START + timedelta(days=5))
    pool.hold("acme", "tokens", user_id="alice", amount="20", ttl_s=7200)
    clock.set(START)


def test_the_forecast_projects_the_run_out_from_the_pace_and_the_schedule(
    pool: CreditPool, clock: FakeClock
) -> None:
    scenario(pool, clock)
    f = pool.forecast("acme")
    assert pool.balance("acme").left == f.left == Decimal("300.00")
    assert (f.at, f.timezone, f.window_days) == (START, "Europe/Berlin", 30)
    assert f.window_start == START - timedelta(days=30)
    assert (f.window_used, f.daily_pace) == (Decimal("120.00"), Decimal("4.00"))
    # D's 30 unheld credits: 20 used in 5 days, 10 lost. A: 270 - 60 by day 20, + C's 200
    # = 410, 102.5 days more.
    assert f.expiring == (ExpiringUnused(on=date(2026, 11, 7), credits=Decimal("10.00")),)
    assert f.expiring_unused == Decimal("10.00")
    assert f.status is ForecastStatus.RUNS_OUT
    assert f.runs_out_at == START + timedelta(days=122, hours=12)
    assert f.runs_out_at == datetime(2027, 3, 4, 21, 0, tzinfo=UTC)
    assert f.runs_out_on == date(2027, 3, 4)  # 22:00 in Berlin
    assert f.horizon_on == date(2036, 10, 30)


def test_the_teams_are_projected_to_the_end_of_the_month_in_the_orgs_zone(
    pool: CreditPool, clock: FakeClock
) -> None:
    scenario(pool, clock)
    f = pool.forecast("acme")
    # 10:00 on 2 November in Berlin: 28 days and 14 hours are left in November.
    assert f.month == "2026-11"
    assert f.teams == (
        TeamForecast(
            team_id="blue",
            name="Blue",
            used=Decimal("30.00"),
            projected=Decimal("58.5833"),
            monthly_limit=None,
            projected_over=False,
        ),
        TeamForecast(
            team_id="red",
            name="Red",
            used=Decimal("0.00"),
            projected=Decimal("57.1667"),  # 60 in the window: 2 a day
            monthly_limit=Decimal("50.00"),
            projected_over=True,
        ),
        TeamForecast(
            team_id=None,
            name="No team",
            used=Decimal("30.00"),
            projected=Decimal("58.5833"),
            monthly_limit=None,
            projected_over=False,
        ),
    )
    usage = {u.team_id: u.used for u in pool.team_usage("acme")}
    assert {t.team_id: t.used for t in f.teams} == usage


def test_the_window_starts_exactly_window_days_of_24_hours_before_now(
    pool: CreditPool, clock: FakeClock
) -> None:
    clock.set(START - timedelta(days=8))
    pool.create_org("acme", timezone="Pacific/Auckland")
    pool.set_feature("tokens", unit_rate="1", unit="token")
    pool.grant("acme", "100")
    clock.set(START - timedelta(days=7, microseconds=1))
    pool.consume("acme", "tokens", user_id="u", quantity="5")  # just before the window
    clock.set(START - timedelta(days=7))
    pool.consume("acme", "tokens", user_id="u", quantity="7")  # its first instant
    clock.set(START)
    f = pool.forecast("acme", window_days=7)
    assert (f.window_start, f.window_used, f.daily_pace) == (
        START - timedelta(days=7),
        Decimal("7.00"),
        Decimal("1.00"),
    )
    assert f.runs_out_at == START + timedelta(days=88)
    assert pool.forecast("acme", window_days=8).window_used == Decimal("12.00")


def test_a_pool_without_paid_usage_in_the_window_is_not_used(
    pool: CreditPool, clock: FakeClock
) -> None:
    clock.set(START - timedelta(days=40))
    pool.create_org("acme")
    pool.set_feature("tokens", unit_rate="1", unit="token")
    pool.grant("acme", "100", expires_at=START + timedelta(days=3))
    pool.consume("acme", "tokens", user_id="u", quantity="10")
    clock.set(START - timedelta(days=1))
    refunded = pool.consume("acme", "tokens", user_id="u", quantity="10")
    assert refunded.id is not None
    pool.refund("acme", refunded.id)
    clock.set(START)
    f = pool.forecast("acme")
    assert (f.status, f.runs_out_at, f.runs_out_on) == (ForecastStatus.NO_USAGE, None, None)
    assert (f.window_used, f.daily_pace, f.left) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("90.00"),
    )
    assert f.expiring == (ExpiringUnused(on=date(2026, 11, 5), credits=Decimal("90.00")),)
    assert f.teams == ()


def test_a_pool_that_lasts_beyond_ten_years_says_so(pool: CreditPool, clock: FakeClock) -> None:
    clock.set(START - timedelta(days=1))
    pool.create_org("acme")
    pool.set_feature("tokens", unit_rate="1", unit="token")
    pool.grant("acme", "100000")
    pool.consume("acme", "tokens", user_id="u", quantity="0.3")
    clock.set(START)
    f = pool.forecast("acme")
    assert (f.status, f.runs_out_at) == (ForecastStatus.LASTS, None)
    assert f.daily_pace == Decimal("0.01")


@pytest.mark.parametrize("days", [0, 366, -1, True, 7.0, "30", None])
def test_a_window_outside_1_to_365_whole_days_is_refused(pool: CreditPool, days: object) -> None:
    pool.create_org("acme")
    with pytest.raises(InvalidInput, match="window_days"):
        pool.forecast("acme", window_days=days)  # type: ignore[arg-type]


def test_the_forecast_of_an_unknown_org_is_not_found(pool: CreditPool) -> None:
    with pytest.raises(NotFound):
        pool.forecast("nobody")
    pool.create_org("acme")
    assert pool.forecast("acme", window_days=365).window_days == 365
    assert pool.forecast("acme", window_days=1).status is ForecastStatus.NO_USAGE
