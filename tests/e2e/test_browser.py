"""The pages in a real browser: Debian's chromium driven by Playwright, against real
server processes. Live updates come from the event stream; on PostgreSQL the change is made
through a second server process, so the page sees it only if the fan-out crosses processes.

Screenshots of every page land in ``test-output/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.conftest import skip_or_fail
from tests.e2e.conftest import Server, start_server, stop_process

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LIVE_MS = 2000  # a change must be on an open page within 2 seconds, without a reload
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    path = os.environ.get("CREDITPOOL_TEST_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        skip_or_fail(
            f"chromium not found at {path}: install Debian's chromium (apt-get install"
            " chromium) or set CREDITPOOL_TEST_CHROMIUM to run the browser tests"
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    path = os.environ.get("CREDITPOOL_TEST_CHROMIUM", "/usr/bin/chromium")
    launched = playwright_driver.chromium.launch(
        executable_path=path, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@dataclass
class Pages:
    """Browser contexts (one per person) on one server; screenshots named by the test."""

    server: Server
    browser: Browser
    name: str
    contexts: list[BrowserContext]

    def person(self, width: int = 1280) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context.new_page()

    def portal(self, role: str = "admin", org: str = "acme", user: str = "u-1") -> Page:
        """A person who opened a portal link minted by the vendor's backend."""
        response = self.server.client("service").post(
            "/v1/portal-sessions", json={"org_id": org, "user_id": user, "role": role}
        )
        assert response.status_code == 201, response.text
        page = self.person()
        page.goto(response.json()["url"])
        return page

    def staff(self) -> Page:
        page = self.person()
        page.goto(f"{self.server.base_url}/staff/login")
        page.fill("input[name=key]", self.server.keys["staff"])
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/staff$"))
        return page

    def shot(self, page: Page, label: str) -> None:
        folder = SHOTS / self.name
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{label}.png"), full_page=True)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(server: Server, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    opened = Pages(server, browser, name, [])
    yield opened
    opened.close()


def seed(server: Server) -> None:
    """acme: 100 credits, team t-1 (limit 10) with u-1 and u-2, two uses."""
    pool = server.pool
    pool.grant("acme", "100", granted_by="setup", note="Annual plan", reference="INV-1")
    pool.create_team("acme", "t-1", name="Team One", monthly_limit="10")
    pool.set_member("acme", "u-1", team_id="t-1")
    pool.set_member("acme", "u-2", team_id="t-1")
    pool.consume("acme", "report", user_id="u-1", feature_name="Weekly digest")
    pool.consume("acme", "action_plan", user_id="u-2", feature_name="Fix onboarding")
    pool.grant("globex", "50", granted_by="setup")


def wait_live(page: Page) -> None:
    """The page's stream is open (the indicator says so)."""
    expect(page.locator("[data-live-status]").first).to_have_class(re.compile(r"\bon\b"))


def left(page: Page) -> str:
    return page.locator('[data-balance="left"]').first.inner_text()


@pytest.fixture
def writer(server: Server, tmp_path: Path) -> Iterator[httpx.Client]:
    """The vendor's backend, talking to ANOTHER server process on the same database when
    that database is PostgreSQL (on SQLite, one process serves the file: the same one)."""
    if not server.db_url.startswith("postgresql"):
        yield server.client("service")
        return
    base_url, process = start_server(server.db_url, tmp_path / "second.log")
    headers = {"Authorization": f"Bearer {server.keys['service']}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        yield client
    stop_process(process)


def test_an_open_usage_page_shows_a_consumption_and_a_refund_without_reloading(
    pages: Pages, writer: httpx.Client
) -> None:
    seed(pages.server)
    page = pages.portal("admin")
    expect(page.locator("h1")).to_have_text("Acme Inc.")
    wait_live(page)
    assert left(page) == "99.00"
    pages.shot(page, "usage-before")
    bar = page.locator("[data-balance-bar] .bar-fill")
    width_before = bar.evaluate("el => el.style.width")

    made = writer.post(
        "/v1/orgs/acme/consumptions",
        json={"feature": "topic_detection", "user_id": "u-2", "quantity": "500"},
    )
    assert made.status_code == 201, made.text
    consumption = made.json()
    row = page.locator(f'tr[data-consumption="{consumption["id"]}"]')
    cost = Decimal(consumption["cost"])
    expect(page.locator('[data-balance="left"]').first).to_have_text(
        str(Decimal("99.00") - cost), timeout=LIVE_MS
    )
    expect(page.locator('[data-balance="used"]').first).to_have_text(
        str(Decimal("1.00") + cost), timeout=LIVE_MS
    )
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row).to_contain_text("Paid")
    expect(row).to_contain_text(consumption["cost"])
    assert bar.evaluate("el => el.style.width") != width_before
    assert page.locator("tbody[data-history-body] tr").first.get_attribute(
        "data-consumption"
    ) == str(consumption["id"])
    pages.shot(page, "usage-after-consumption")

    refunded = writer.post(f"/v1/orgs/acme/consumptions/{consumption['id']}/refund", json={})
    assert refunded.status_code == 200, refunded.text
    expect(page.locator('[data-balance="left"]').first).to_have_text("99.00", timeout=LIVE_MS)
    expect(row).to_contain_text("Refunded", timeout=LIVE_MS)
    pages.shot(page, "usage-after-refund")


def test_two_pages_of_one_organization_both_update(pages: Pages, writer: httpx.Client) -> None:
    seed(pages.server)
    admin = pages.portal("admin")
    member = pages.portal("member", user="u-1")
    for page in (admin, member):
        wait_live(page)
    made = writer.post("/v1/orgs/acme/consumptions", json={"feature": "report", "user_id": "u-1"})
    assert made.status_code == 201, made.text
    for page in (admin, member):
        expect(page.locator('[data-balance="left"]').first).to_have_text("98.50", timeout=LIVE_MS)
        row = page.locator(f'tr[data-consumption="{made.json()["id"]}"]')
        expect(row).to_be_visible(timeout=LIVE_MS)
    pages.shot(admin, "admin")
    pages.shot(member, "member")
    # The member's page lists only the member's own usage.
    assert member.locator("tr[data-consumption]").count() == 2


def test_a_member_of_another_organization_is_refused_the_page_and_the_stream(
    pages: Pages,
) -> None:
    seed(pages.server)
    page = pages.portal("member", org="globex", user="g-1")
    expect(page.locator("h1")).to_have_text("Globex")
    answer = page.goto(f"{pages.server.base_url}/app/orgs/acme")
    assert answer is not None
    assert answer.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    pages.shot(page, "foreign-page")
    status = page.evaluate(
        "async () => (await fetch('/v1/orgs/acme/events', {credentials: 'same-origin'})).status"
    )
    assert status == 404
    assert page.evaluate("async () => (await fetch('/v1/orgs/acme/balance')).status") == 404


def test_staff_grants_credits_and_the_open_usage_page_updates(pages: Pages) -> None:
    seed(pages.server)
    admin = pages.portal("admin")
    wait_live(admin)
    staff = pages.staff()
    expect(staff.locator("table.orgs")).to_contain_text("Acme Inc.")
    pages.shot(staff, "staff-orgs")
    staff.fill("input[name=q]", "glob")
    staff.click("form.search button")
    expect(staff.locator("table.orgs tbody tr")).to_have_count(1)
    expect(staff.locator("table.orgs")).to_contain_text("Globex")
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    pages.shot(staff, "staff-org")
    staff.fill("input[name=amount]", "250.5")
    staff.fill("input[name=note]", "Goodwill credits")
    staff.fill("input[name=reference]", "CS-77")
    staff.click("#grant button[type=submit]")
    expect(staff.locator(".alert-ok")).to_contain_text("added")
    expect(admin.locator('[data-balance="left"]').first).to_have_text("349.50", timeout=LIVE_MS)
    expect(admin.locator('[data-balance="total"]').first).to_have_text("350.50")
    pages.shot(admin, "usage-after-grant")

    # Voiding asks first, then removes what is left of the grant.
    grant = max(pages.server.pool.grants("acme"), key=lambda g: g.id)
    assert grant.note == "Goodwill credits"
    assert grant.granted_by == "cs@vendor.example"
    staff.click(f'a[href$="/grants/{grant.id}/void"]')
    expect(staff.locator("h1")).to_contain_text(f"Void grant #{grant.id}?")
    pages.shot(staff, "staff-void-confirm")
    staff.fill("input[name=reason]", "wrong organization")
    staff.click("button.danger")
    expect(staff.locator(".alert-ok")).to_contain_text("voided")
    expect(admin.locator('[data-balance="left"]').first).to_have_text("99.00", timeout=LIVE_MS)


def test_an_admin_edits_a_team_limit(pages: Pages) -> None:
    seed(pages.server)
    page = pages.portal("admin")
    row = page.locator('tr[data-team="t-1"]')
    expect(row).to_contain_text("10.00")
    row.locator("input[name=monthly_limit]").fill("0.25")
    row.locator("button").click()
    expect(page.locator(".alert-ok")).to_contain_text("saved")
    row = page.locator('tr[data-team="t-1"]')
    expect(row).to_contain_text("0.25")
    expect(row).to_contain_text("Over limit")  # 1.00 used this month: shown, never blocking
    assert str(pages.server.pool.team("acme", "t-1").monthly_limit) == "0.25"
    pages.shot(page, "team-limit")
    row.locator("input[name=monthly_limit]").fill("-3")
    row.locator("button").click()
    expect(page.locator(".alert-error")).to_be_visible()
    assert str(pages.server.pool.team("acme", "t-1").monthly_limit) == "0.25"
    # A member sees no teams and no form.
    member = pages.portal("member", user="u-1")
    expect(member.locator("#teams")).to_have_count(0)


def test_history_filters_and_paging(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    for i in range(30):
        made = pool.consume("acme", "agent_recommendation", user_id="u-2", feature_name=f"n{i}")
        if i % 10 == 0:
            assert made.id is not None
            pool.refund("acme", made.id, reason="downvoted")
    page = pages.portal("admin")
    rows = page.locator("tbody[data-history-body] tr[data-consumption]")
    expect(rows).to_have_count(25)
    first_page = set(rows.evaluate_all("rs => rs.map(r => r.dataset.consumption)"))
    page.click("a[rel=next]")
    expect(rows).to_have_count(7)  # 32 in all
    second_page = set(rows.evaluate_all("rs => rs.map(r => r.dataset.consumption)"))
    assert first_page.isdisjoint(second_page)
    assert len(first_page | second_page) == 32
    pages.shot(page, "history-page-2")

    page.goto(f"{pages.server.base_url}/app/orgs/acme")
    page.select_option("select[name=feature]", "report")
    page.click(".filters button")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Weekly digest")
    page.select_option("select[name=feature]", "")
    page.select_option("select[name=status]", "refunded")
    page.click(".filters button")
    expect(rows).to_have_count(3)
    pages.shot(page, "history-refunded")
    page.select_option("select[name=status]", "")
    page.fill("input[name=user]", "u-1")
    page.click(".filters button")
    expect(rows).to_have_count(1)
    page.fill("input[name=user]", "")
    page.select_option("select[name=team]", "t-1")
    page.fill("input[name=from]", "2000-01-01")
    page.fill("input[name=to]", "2000-01-31")
    page.click(".filters button")
    expect(page.locator("tbody[data-history-body]")).to_contain_text("No usage matches")


def test_the_credits_page_lists_grants_and_downloads_a_report(pages: Pages) -> None:
    seed(pages.server)
    page = pages.portal("admin")
    page.click("nav a:text('Credits')")
    expect(page.locator("h1")).to_have_text("Credits")
    expect(page.locator("table")).to_contain_text("Annual plan")
    pages.shot(page, "credits")
    with page.expect_download() as download:
        page.select_option("select[name=kind]", "usage")
        page.click("#reports button:text('Download these days')")
    saved = download.value
    assert saved.suggested_filename.startswith("acme")
    text = Path(saved.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("Usage time,Feature type")
    phone = pages.person(width=390)
    phone.goto(pages.server.base_url + "/app/orgs/acme")  # no session in this context
    expect(phone.locator("h1")).to_have_text("Please sign in")
    pages.shot(phone, "signed-out-phone")


def test_the_report_form_offers_periods_and_keeps_its_values_after_an_error(
    pages: Pages,
) -> None:
    seed(pages.server)
    page = pages.portal("admin")
    page.goto(f"{pages.server.base_url}/app/orgs/acme/credits")
    page.select_option("select[name=kind]", "balance")
    page.check("input[name=format][value=xlsx]")
    with page.expect_download() as download:
        page.click("#reports button:text('Last month')")
    name = download.value.suggested_filename
    assert re.fullmatch(r"acme_credit-balance_(\d{4}-\d\d)-01_\1-(28|29|30|31)\.xlsx", name), name
    with page.expect_download() as download:
        page.click("#reports button:text('All time')")
    first, last = re.findall(r"\d{4}-\d\d-\d\d", download.value.suggested_filename)
    assert first <= last
    page.fill("input[name=from]", "2026-11-30")
    page.fill("input[name=to]", "2026-11-01")
    page.click("#reports button:text('Download these days')")
    expect(page.locator("#reports [role=alert]")).to_contain_text("before it starts")
    expect(page.locator("input[name=from]")).to_have_value("2026-11-30")
    expect(page.locator("input[name=to]")).to_have_value("2026-11-01")
    expect(page.locator("select[name=kind]")).to_have_value("balance")
    expect(page.locator("input[name=format][value=xlsx]")).to_be_checked()
    pages.shot(page, "report-error")


# -- holds --------------------------------------------------------------------------------


def figure(page: Page, name: str) -> str:
    return page.locator(f'[data-balance="{name}"]').first.inner_text()


def test_the_balance_card_shows_held_only_while_credits_are_held_and_updates_live(
    pages: Pages, writer: httpx.Client
) -> None:
    seed(pages.server)
    page = pages.portal("admin")
    wait_live(page)
    held = page.locator('[data-show-nonzero="held"]').first
    expect(held).to_be_hidden()

    made = writer.post(
        "/v1/orgs/acme/holds",
        json={"feature": "topic_detection", "user_id": "u-2", "amount": "10"},
    )
    assert made.status_code == 201, made.text
    hold_id = made.json()["id"]
    balance = page.locator('[data-balance="left"]').first
    expect(balance).to_have_text("89.00", timeout=LIVE_MS)
    expect(held).to_be_visible()
    expect(held).to_contain_text("10.00")
    assert (figure(page, "used"), figure(page, "total")) == ("1.00", "100.00")
    pages.shot(page, "held")

    # Settled below the hold: the cost is used, the rest comes back, Held disappears.
    settled = writer.post(f"/v1/orgs/acme/holds/{hold_id}/settle", json={"cost": "4.5"})
    assert settled.status_code == 201, settled.text
    consumption = settled.json()
    expect(balance).to_have_text("94.50", timeout=LIVE_MS)
    expect(held).to_be_hidden()
    assert figure(page, "used") == "5.50"
    row = page.locator(f'tr[data-consumption="{consumption["id"]}"]')
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(row).to_contain_text("4.50")
    expect(row).to_contain_text(f"hold #{hold_id}")
    pages.shot(page, "settled")

    # Released: everything comes back.
    again = writer.post(
        "/v1/orgs/acme/holds", json={"feature": "report", "user_id": "u-1", "amount": "3"}
    )
    assert again.status_code == 201, again.text
    expect(balance).to_have_text("91.50", timeout=LIVE_MS)
    expect(held).to_contain_text("3.00")
    released = writer.post(f"/v1/orgs/acme/holds/{again.json()['id']}/release", json={})
    assert released.status_code == 200, released.text
    expect(balance).to_have_text("94.50", timeout=LIVE_MS)
    expect(held).to_be_hidden()
    assert figure(page, "used") == "5.50"


def test_the_history_shows_a_settled_consumption_with_its_hold(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    held = pool.hold("acme", "topic_detection", user_id="u-1", amount="2")
    made = pool.settle("acme", held.id, quantity="150", feature_name="NPS comments")
    page = pages.portal("admin")
    row = page.locator(f'tr[data-consumption="{made.id}"]')
    expect(row).to_contain_text("NPS comments")
    expect(row).to_contain_text("1.50")
    expect(row).to_contain_text(f"hold #{held.id}")
    member = pages.portal("member", user="u-1")
    expect(member.locator(f'tr[data-consumption="{made.id}"]')).to_contain_text("Paid")


def test_the_staff_console_lists_open_holds_and_follows_them_live(
    pages: Pages, writer: httpx.Client
) -> None:
    seed(pages.server)
    first = writer.post(
        "/v1/orgs/acme/holds",
        json={"feature": "topic_detection", "user_id": "u-2", "amount": "7", "ttl_s": 3600},
    )
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    holds = staff.locator("[data-open-holds] tr[data-hold]")
    expect(holds).to_have_count(1)
    expect(holds.first).to_contain_text("7.00")
    expect(holds.first).to_contain_text("Topic Detection")
    expect(staff.locator('[data-show-nonzero="held"]').first).to_contain_text("7.00")
    grants = staff.locator("section", has=staff.locator("#grants-title"))
    expect(grants).to_contain_text("+ 7.00 held")  # remaining 92.00 of the grant's 100.00
    wait_live(staff)
    pages.shot(staff, "staff-open-holds")

    second = writer.post(
        "/v1/orgs/acme/holds", json={"feature": "report", "user_id": "u-1", "ttl_s": 1}
    )
    assert second.status_code == 201, second.text
    second_id = second.json()["id"]
    expect(holds).to_have_count(2, timeout=LIVE_MS)
    expect(holds.first).to_have_attribute("data-hold", str(second_id))
    ledger = staff.locator("[data-ledger-body] tr[data-seq]")
    expect(ledger.first).to_contain_text("hold", timeout=LIVE_MS)
    expect(staff.locator('[data-balance="left"]').first).to_have_text("91.50")

    # The short hold runs out; the next change writes its expiry first.
    staff.wait_for_timeout(1100)
    made = writer.post("/v1/orgs/acme/consumptions", json={"feature": "report", "user_id": "u-1"})
    assert made.status_code == 201, made.text
    expect(holds).to_have_count(1, timeout=LIVE_MS)
    expect(staff.locator("[data-ledger-body]")).to_contain_text("hold_expiry", timeout=LIVE_MS)
    expect(staff.locator('[data-balance="left"]').first).to_have_text("91.50")

    released = writer.post(f"/v1/orgs/acme/holds/{first_id}/release", json={})
    assert released.status_code == 200, released.text
    expect(staff.locator("[data-open-holds]")).to_contain_text("No open holds", timeout=LIVE_MS)
    expect(staff.locator('[data-balance="left"]').first).to_have_text("98.50")
    expect(staff.locator('[data-show-nonzero="held"]').first).to_be_hidden()
    expect(ledger.first).to_contain_text("release", timeout=LIVE_MS)
    seqs = ledger.evaluate_all("rs => rs.map(r => Number(r.dataset.seq))")
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)
    pages.shot(staff, "staff-holds-released")
