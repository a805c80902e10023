"""The forecast on the usage page, in a real browser: one sentence under the balance, right
on load and again after a change without a reload, and each team's projected month-end
usage in the team table."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from tests.e2e import test_browser as base
from tests.e2e.conftest import Server
from tests.e2e.test_browser import LIVE_MS, Pages, wait_live

# The browser and the pages, shared with test_browser.py.
playwright_driver = base.playwright_driver
browser = base.browser
pages = base.pages
writer = base.writer

BERLIN = ZoneInfo("Europe/Berlin")
SENTENCE = "[data-forecast-part]"


def day(d: date, today: date) -> str:
    """As the page writes a day: "14 Jan", with the year when it is not this one."""
    return f"{d.day} {d:%b}" + ("" if d.year == today.year else f" {d.year}")


def days_after(delta: timedelta) -> set[str]:
    """The day (in Berlin) ``delta`` from now, as the page writes it, read a little before
    and after the page is built."""
    now = datetime.now(UTC)
    shown = set()
    for slack in (timedelta(0), timedelta(minutes=1)):
        local = (now + slack).astimezone(BERLIN)
        shown.add(day((now + slack + delta).astimezone(BERLIN).date(), local.date()))
    return shown


def seed(server: Server) -> None:
    """acme (Berlin): u-1 of team t-1 (limit 10) paid 30 credits now, 1 a day over the
    window; 70 permanent credits left and 18 more that expire in 10 days: 10 of them are
    used first, 8 expire; then the 70 last 70 days."""
    pool = server.pool
    pool.set_feature("fc-tokens", unit_rate="1", unit="token")
    pool.grant("acme", "100")
    pool.create_team("acme", "t-1", name="Team One", monthly_limit="10")
    pool.set_member("acme", "u-1", team_id="t-1")
    pool.consume("acme", "fc-tokens", user_id="u-1", quantity="30")
    pool.grant("acme", "18", expires_at=datetime.now(UTC) + timedelta(days=10))
    pool.grant("globex", "50")


def test_the_usage_page_says_when_credits_run_out_and_follows_changes_live(
    pages: Pages, writer: httpx.Client
) -> None:
    seed(pages.server)
    runs_out, expires = days_after(timedelta(days=80)), days_after(timedelta(days=10))
    page = pages.portal("admin")
    wait_live(page)
    sentence = page.locator(SENTENCE)
    expected = {
        f"At the pace of the last 30 days, credits run out around {a};"
        f" 8.00 credits expire unused on {b}."
        for a in runs_out
        for b in expires
    }
    assert sentence.inner_text().strip() in expected
    pages.shot(page, "forecast")

    # 60 more: 3 a day; the 18 expiring are used in 6 days, the 10 others in 3 more.
    made = writer.post(
        "/v1/orgs/acme/consumptions",
        json={"feature": "fc-tokens", "user_id": "u-2", "quantity": "60"},
    )
    assert made.status_code == 201, made.text
    after = "|".join(re.escape(d) for d in days_after(timedelta(days=28) / 3))
    expect(sentence).to_have_text(
        re.compile(rf"^At the pace of the last 30 days, credits run out around ({after})\.$"),
        timeout=LIVE_MS,
    )
    pages.shot(page, "forecast-after-consumption")


def test_the_team_table_shows_each_teams_projected_month_end_against_its_limit(
    pages: Pages,
) -> None:
    seed(pages.server)
    page = pages.portal("admin")
    header = page.locator("table.teams thead")
    expect(header).to_contain_text("Projected by month end")
    cell = page.locator('tr[data-team="t-1"] td[data-label="Projected"]')
    expect(cell.locator(".pill-over")).to_have_text("Projected over")
    teams = pages.server.pool.forecast("acme").teams
    assert teams is not None
    # 30 so far + 1 a day to the month's end (the page was read a moment earlier)
    shown = Decimal(cell.inner_text().split()[0].replace(",", ""))
    assert teams[0].team_id == "t-1"
    assert Decimal(0) <= shown - teams[0].projected < Decimal("0.01")
    assert shown >= Decimal(30)


def test_a_member_sees_the_sentence_and_an_unused_pool_says_so(pages: Pages) -> None:
    seed(pages.server)
    member = pages.portal("member", user="u-1")
    expect(member.locator(SENTENCE)).to_contain_text("credits run out around")
    expect(member.locator("table.teams")).to_have_count(0)
    other = pages.portal("admin", org="globex", user="g-1")
    expect(other.locator(SENTENCE)).to_have_text("Credits are not being used.")
