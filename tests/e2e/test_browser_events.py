"""Events on the pages, in a real browser (see test_browser.py for the set-up): the
low-balance banner and the team table and chart following changes live, credit requests
from an organization admin to staff, and the staff console's webhooks page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from creditpool import CreditPool
from creditpool.settings import Settings
from tests.e2e import test_browser as base
from tests.e2e.test_browser import LIVE_MS, Pages, seed, wait_live

# The browser test fixtures, shared with test_browser.py.
playwright_driver = base.playwright_driver
browser = base.browser
pages = base.pages
writer = base.writer


def consume(writer: httpx.Client, quantity: str) -> None:
    """Topic detection costs 0.01 credits per item."""
    made = writer.post(
        "/v1/orgs/acme/consumptions",
        json={"feature": "topic_detection", "user_id": "u-2", "quantity": quantity},
    )
    assert made.status_code == 201, made.text


def test_the_low_balance_banner_the_teams_and_the_chart_follow_changes_live(
    pages: Pages, writer: httpx.Client
) -> None:
    seed(pages.server)  # Left 99.00; team t-1 used 1.00 of its 10.00
    pages.server.pool.update_org("acme", low_balance_thresholds=["60", "20"])
    usage = pages.portal("admin")
    credits = pages.portal("admin")
    credits.goto(f"{pages.server.base_url}/app/orgs/acme/credits")
    for page in (usage, credits):
        wait_live(page)
        expect(page.locator("[data-balance-alert]")).to_be_hidden()
    team = usage.locator('tr[data-team="t-1"]')
    expect(team).not_to_contain_text("Over limit")

    consume(writer, "5000")  # 50.00: Left 49.00, below 60 (not 20)
    for page in (usage, credits):
        banner = page.locator("[data-balance-alert]")
        expect(banner).to_be_visible(timeout=LIVE_MS)
        expect(banner).to_contain_text("running low")
        expect(banner.locator("[data-alert-when=low] [data-alert-left]")).to_have_text("49.00")
        expect(banner.locator("[data-alert-threshold]")).to_have_text("60.00")
    expect(team).to_contain_text("51.00", timeout=LIVE_MS)
    expect(team).to_contain_text("Over limit")
    expect(usage.locator("[data-chart-part] .legend")).to_contain_text("Topic Detection")
    pages.shot(usage, "usage-low")

    consume(writer, "4900")  # Left 0.00
    for page in (usage, credits):
        banner = page.locator("[data-balance-alert]")
        expect(banner).to_contain_text("No credits left", timeout=LIVE_MS)
        expect(banner.locator("[data-alert-when=low]")).to_be_hidden()
    pages.shot(credits, "credits-depleted")

    granted = pages.server.client("staff").post("/v1/orgs/acme/grants", json={"amount": "100"})
    assert granted.status_code == 201, granted.text
    for page in (usage, credits):
        expect(page.locator("[data-balance-alert]")).to_be_hidden(timeout=LIVE_MS)
        expect(page.locator('[data-balance="left"]').first).to_have_text("100.00")
    # A page opened now agrees with the live one.
    usage.reload()
    expect(usage.locator("[data-balance-alert]")).to_be_hidden()
    expect(usage.locator('tr[data-team="t-1"]')).to_contain_text("100.00")


def request_credits(page: Page, amount: str, message: str) -> str:
    page.fill("#request input[name=amount]", amount)
    page.fill("#request textarea[name=message]", message)
    page.click("#request button[type=submit]")
    sent = page.locator("#request .alert-ok")
    expect(sent).to_contain_text("sent")
    found = re.search(r"#(\d+)", sent.inner_text())
    assert found is not None
    return found.group(1)


def test_an_admin_requests_credits_and_staff_grants_them(pages: Pages) -> None:
    seed(pages.server)
    admin = pages.portal("admin")
    usage = pages.portal("admin")
    wait_live(usage)
    admin.click("nav a:text('Credits')")
    request_id = request_credits(admin, "500", "For the Q3 launch")
    row = admin.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_contain_text("500.00")
    expect(row).to_contain_text("Open")
    expect(row).to_contain_text("u-1")
    pages.shot(admin, "credits-requested")
    asked = pages.server.pool.credit_requests("acme")
    assert [(str(r.id), r.requested_by, r.message) for r in asked] == [
        (request_id, "u-1", "For the Q3 launch")
    ]

    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    open_row = staff.locator(f'#requests tr[data-request="{request_id}"]')
    expect(open_row).to_contain_text("For the Q3 launch")
    expect(staff.locator("#events")).to_contain_text("credits.requested")
    pages.shot(staff, "staff-open-request")
    open_row.locator("a:text('Grant')").click()
    expect(staff.locator("h1")).to_contain_text(f"Grant credit request #{request_id}?")
    expect(staff.locator("input[name=amount]")).to_have_value("500.00")
    staff.fill("input[name=amount]", "450")
    pages.shot(staff, "staff-grant-request")
    staff.click("button:text('Grant credits')")
    expect(staff.locator(".alert-ok")).to_contain_text("added")
    expect(staff.locator("#requests")).to_contain_text("No open requests")
    expect(staff.locator("#events")).to_contain_text("grant.created")
    expect(usage.locator('[data-balance="left"]').first).to_have_text("549.00", timeout=LIVE_MS)
    admin.reload()
    expect(row).to_contain_text("Granted")

    # Another request, dismissed.
    second = request_credits(admin, "10", "")
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    staff.locator(f'#requests tr[data-request="{second}"] button:text("Dismiss")').click()
    expect(staff.locator(".alert-ok")).to_contain_text(f"#{second} dismissed")
    expect(staff.locator("#requests")).to_contain_text("No open requests")
    admin.reload()
    expect(admin.locator(f'tr[data-request="{second}"]')).to_contain_text("Dismissed")

    # A member has no credits page, and cannot ask.
    member = pages.portal("member", user="u-2")
    expect(member.locator("nav a:text('Credits')")).to_have_count(0)
    answer = member.goto(f"{pages.server.base_url}/app/orgs/acme/credits")
    assert answer is not None
    assert answer.status == 403


def test_the_staff_console_lists_webhook_endpoints_with_their_health(
    pages: Pages, tmp_path: Path
) -> None:
    settings = Settings(secret_key_file=str(tmp_path / "secret.key"))
    with CreditPool.open(pages.server.db_url, settings=settings) as pool:
        made = pool.create_webhook_endpoint(
            "https://hooks.example.com/creditpool",
            event_types=["balance.low", "credits.requested"],
            description="Billing sync",
        )
        off = pool.create_webhook_endpoint("https://hooks.example.com/old")
        pool.update_webhook_endpoint(off.id, enabled=False)
    staff = pages.staff()
    staff.click("nav a:text('Webhooks')")
    expect(staff.locator("h1")).to_have_text("Webhooks")
    row = staff.locator(f'tr[data-endpoint="{made.id}"]')
    expect(row).to_contain_text("https://hooks.example.com/creditpool")
    expect(row).to_contain_text("Billing sync")
    expect(row).to_contain_text("balance.low, credits.requested")
    expect(row).to_contain_text("Enabled")
    expect(staff.locator(f'tr[data-endpoint="{off.id}"]')).to_contain_text("Disabled")
    pages.shot(staff, "staff-webhooks")
