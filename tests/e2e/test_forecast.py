"""GET /v1/orgs/{org}/forecast against a real server: every role of the organization reads
it (a member without the teams), another organization's key gets a 404, a window outside
1 to 365 days a 422 problem (after authorization), and the clients read it as the library's
model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from creditpool import Forecast, ForecastStatus, InvalidInput
from creditpool.client import AsyncClient, Client, Retry
from tests.e2e.tenants import Tenant

PROBLEM = "application/problem+json"
FAST = Retry(attempts=2, backoff_s=0.01, backoff_s_max=0.05)


def seed(t: Tenant) -> None:
    """100 credits, a team t-1 (limit 40) with u-1; 30 credits paid by u-1 now: a pace of 1
    a day over 30 days, so the 70 left last 70 days."""
    pool = t.pool
    pool.set_feature("fc-tokens", unit_rate="1", unit="token")
    pool.grant(t.org, "100")
    pool.create_team(t.org, "t-1", name="Team One", monthly_limit="40")
    pool.set_member(t.org, "u-1", team_id="t-1")
    pool.consume(t.org, "fc-tokens", user_id="u-1", quantity="30")


def test_the_forecast_answers_the_run_out_and_the_teams_with_decimal_strings(t: Tenant) -> None:
    seed(t)
    before = datetime.now(UTC)
    response = t.client("admin").get(f"/v1/orgs/{t.org}/forecast")
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["window_days"], body["timezone"]) == (
        "runs_out",
        30,
        "Europe/Berlin",
    )
    assert (body["left"], body["window_used"], body["daily_pace"]) == ("70.00", "30.00", "1.00")
    assert (body["expiring_unused"], body["expiring"]) == ("0.00", [])
    runs_out_at = datetime.fromisoformat(body["runs_out_at"])
    assert before + timedelta(days=70) <= runs_out_at <= after + timedelta(days=70)
    assert (
        body["runs_out_on"] == runs_out_at.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    )
    [team] = body["teams"]
    assert (team["team_id"], team["used"], team["monthly_limit"]) == ("t-1", "30.00", "40.00")
    projected = Decimal(team["projected"])
    assert projected >= Decimal("30.00")
    assert team["projected_over"] is (projected > Decimal("40"))


def test_every_role_of_the_org_reads_it_and_a_member_without_the_teams(t: Tenant) -> None:
    seed(t)
    for role in ("service", "staff", "admin"):
        answer = t.client(role).get(f"/v1/orgs/{t.org}/forecast")
        assert answer.status_code == 200, (role, answer.text)
        assert [team["team_id"] for team in answer.json()["teams"]] == ["t-1"], role
    member = t.client("member").get(f"/v1/orgs/{t.org}/forecast")
    assert member.status_code == 200, member.text
    assert member.json()["teams"] is None
    assert member.json()["status"] == "runs_out"


@pytest.mark.parametrize("role", ["other_admin", "other_member"])
def test_another_orgs_key_gets_not_found_before_its_input_is_read(t: Tenant, role: str) -> None:
    seed(t)
    for query in ("", "?window_days=0"):
        answer = t.client(role).get(f"/v1/orgs/{t.org}/forecast{query}")
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["code"] == "not_found"


def test_no_key_is_unauthorized(t: Tenant) -> None:
    answer = t.client(None).get(f"/v1/orgs/{t.org}/forecast?window_days=0")
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


@pytest.mark.parametrize("window", ["0", "366", "-1", "abc", "7.5", ""])
def test_a_window_outside_1_to_365_days_is_a_422_problem(t: Tenant, window: str) -> None:
    answer = t.client("admin").get(f"/v1/orgs/{t.org}/forecast?window_days={window}")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["code"] == "invalid_input"


def test_the_window_is_the_one_asked_for(t: Tenant) -> None:
    seed(t)
    body = t.client("member").get(f"/v1/orgs/{t.org}/forecast?window_days=365").json()
    assert (body["window_days"], body["window_used"], body["daily_pace"]) == (
        365,
        "30.00",
        "0.0822",  # 30 / 365
    )


def test_an_unknown_org_is_not_found(t: Tenant) -> None:
    answer = t.client("service").get("/v1/orgs/no-such-org/forecast")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_an_unused_pool_says_so(t: Tenant) -> None:
    t.pool.grant(t.org, "5")
    body = t.client("service").get(f"/v1/orgs/{t.org}/forecast").json()
    assert (body["status"], body["runs_out_at"], body["runs_out_on"]) == ("no_usage", None, None)


def test_the_clients_read_the_forecast_as_the_librarys_model(t: Tenant) -> None:
    seed(t)
    base, admin, member = t.server.base_url, t.keys["admin"], t.keys["member"]
    with Client(base, admin, retry=FAST) as client:
        got = client.forecast(t.org, window_days=7)
        with pytest.raises(InvalidInput):
            client.forecast(t.org, window_days=0)
    expected = t.pool.forecast(t.org, window_days=7)
    assert isinstance(got, Forecast)
    assert got.status is ForecastStatus.RUNS_OUT
    fields = ("org_id", "window_days", "window_used", "daily_pace", "left", "expiring", "month")
    assert [getattr(got, f) for f in fields] == [getattr(expected, f) for f in fields]
    assert got.teams is not None
    assert [(x.team_id, x.used, x.monthly_limit) for x in got.teams] == [
        ("t-1", Decimal("30.00"), Decimal("40.00"))
    ]

    async def read() -> Forecast:
        async with AsyncClient(base, member, retry=FAST) as client:
            return await client.forecast(t.org)

    seen = asyncio.run(read())
    assert (seen.window_days, seen.left, seen.teams) == (30, Decimal("70.00"), None)
