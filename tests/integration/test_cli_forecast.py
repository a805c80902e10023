"""``creditpool forecast``: one paragraph and the teams' table, its JSON, one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_cli import as_json, fails, iso, ok

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def acme(db_url: str) -> str:
    """In Berlin: 100 credits, a team t-1 (limit 40) with u-1, who paid 30 just now: a pace
    of 1 credit a day over 30 days, so the 70 left last 70 days."""
    ok(db_url, "orgs", "create", "acme", "--timezone", "Europe/Berlin")
    ok(db_url, "features", "set", "tokens", "--unit-rate", "1", "--unit", "token")
    ok(db_url, "grant", "acme", "100")
    ok(db_url, "teams", "create", "acme", "t-1", "--name", "Team One", "--monthly-limit", "40")
    ok(db_url, "members", "set", "acme", "u-1", "--team", "t-1")
    ok(db_url, "consume", "acme", "tokens", "--user", "u-1", "--quantity", "30")
    return db_url


def days_from_now(days: int) -> set[str]:
    """The day in Berlin ``days`` from now, read just before and just after a command."""
    now = datetime.now(UTC)
    return {
        (now + timedelta(days=days, seconds=s)).astimezone(BERLIN).date().isoformat()
        for s in (0, 60)
    }


def test_forecast_prints_a_paragraph_and_the_teams_projected_to_month_end(acme: str) -> None:
    expected = days_from_now(70)
    out = ok(acme, "forecast", "acme")
    paragraph, _, table = out.partition("\n")
    assert paragraph.startswith(
        "At the pace of the last 30 days (1.00 credits a day), the 70.00 credits left run out"
        " around "
    )
    assert any(f"run out around {day}." in paragraph for day in expected), paragraph
    assert paragraph.endswith("Days in Europe/Berlin.")
    assert "expire unused" not in paragraph
    assert "Teams in " in table
    row = next(line for line in table.splitlines() if "t-1" in line)
    assert row.split()[:4] == ["t-1", "Team", "One", "30.00"]  # then projected, limit, over
    assert row.split()[5:] == ["40.00", "yes" if Decimal(row.split()[4]) > 40 else "no"]


def test_forecast_json_is_the_model(acme: str) -> None:
    found = as_json(acme, "forecast", "acme", "--window-days", "7")
    assert (found["status"], found["window_days"], found["left"]) == ("runs_out", 7, "70.00")
    assert found["daily_pace"] == "4.2857"  # 30 / 7
    [team] = found["teams"]
    assert (team["team_id"], team["used"], team["monthly_limit"]) == ("t-1", "30.00", "40.00")


def test_forecast_names_what_expires_unused(acme: str) -> None:
    soon = datetime.now(UTC) + timedelta(days=5)
    ok(acme, "grant", "acme", "20", "--expires-at", iso(soon))
    out = ok(acme, "forecast", "acme").splitlines()[0]
    # 5 of the 20 are used (1 a day, soonest expiry first) before they expire.
    day = soon.astimezone(BERLIN).date().isoformat()
    assert f" 15.00 credits expire unused (15.00 on {day})." in out


def test_forecast_of_an_unused_pool_says_so(db_url: str) -> None:
    ok(db_url, "orgs", "create", "acme")
    ok(db_url, "grant", "acme", "10")
    out = ok(db_url, "forecast", "acme", "--window-days", "1")
    assert out.strip() == (
        "No credits were paid in the last day: credits are not being used. Days in UTC."
    )


def test_forecast_of_a_pool_that_lasts_says_until_when_it_looks(db_url: str) -> None:
    ok(db_url, "orgs", "create", "acme")
    ok(db_url, "grant", "acme", "100000")
    ok(db_url, "consume", "acme", "report", "--user", "u-1")  # 0.50 in 30 days
    out = ok(db_url, "forecast", "acme")
    assert "the 99999.50 credits left last beyond " in out


@pytest.mark.parametrize("days", ["0", "366"])
def test_a_bad_window_is_one_line(acme: str, days: str) -> None:
    line = fails(acme, "forecast", "acme", "--window-days", days)
    assert line == "error: invalid_input: window_days must be a whole number from 1 to 365"


def test_the_forecast_of_an_unknown_org_is_one_line_not_found(acme: str) -> None:
    assert fails(acme, "forecast", "nope").startswith("error: not_found:")
