"""The staff console's ledger corrections in a real browser (see test_browser.py for the
set-up): a grant's expiry moved after a confirmation page, part of a grant voided, a manual
adjustment reviewed then made; each goes console -> ledger -> balance at a past instant ->
reports -> verify, and a refusal shows why with nothing changed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from creditpool.reports.formats import csv_chunks
from tests.e2e import test_browser as base
from tests.e2e.test_browser import Pages, seed

playwright_driver = base.playwright_driver
browser = base.browser
pages = base.pages

CONFIRM = "button[name=step][value=confirm]"
D = Decimal


def review(page: Page) -> None:
    page.click("form button[type=submit]:has-text('Review')")


def balance_report(pages: Pages) -> str:
    chunks = pages.server.pool.report("acme", "balance", period="all-time")
    return b"".join(csv_chunks(chunks)).decode()


def test_staff_move_a_grant_expiry_after_confirming(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    then = datetime.now(UTC)
    past = pool.balance("acme", at=then)
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    staff.click("a:has-text('Expiry…') >> nth=-1")  # the oldest grant is listed last
    expect(staff.locator("h1")).to_have_text("Change the expiry of grant #1")
    zone = ZoneInfo(pool.org("acme").timezone)
    yesterday = (datetime.now(zone) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    staff.fill("input[name=expires_at]", yesterday)
    review(staff)
    expect(staff.locator(".alert-error")).to_contain_text("future")
    later = (datetime.now(zone) + timedelta(days=90)).replace(second=0, microsecond=0)
    staff.fill("input[name=expires_at]", later.strftime("%Y-%m-%dT%H:%M"))
    staff.fill("input[name=reason]", "renewal delayed")
    review(staff)
    expect(staff.locator("dl.facts")).to_contain_text("never (permanent)")
    pages.shot(staff, "expiry-confirm")
    assert pool.corrections("acme") == []  # nothing yet
    staff.click(CONFIRM)
    expect(staff).to_have_url(re.compile(r"corrected=expiry"))
    expect(staff.locator(".alert-ok")).to_contain_text("Expiry changed")
    expect(staff.locator("#audit tr[data-correction]")).to_contain_text("renewal delayed")
    (record,) = pool.corrections("acme")
    assert (record.kind, record.reason, record.grant_id) == ("expiry_change", "renewal delayed", 1)
    assert record.by  # the signed-in staff member's key
    assert pool.grant_info("acme", 1).expires_at == later.astimezone(UTC)
    assert pool.ledger("acme")[-1].action == "expiry_change"
    assert pool.balance("acme", at=then) == past
    assert "Grant #1 expiry changed" in balance_report(pages)
    assert pool.verify() == []


def test_staff_void_part_of_a_grant(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    before = pool.balance("acme")
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme/grants/1/void")
    staff.fill("input[name=amount]", "9999")
    staff.click("button:has-text('Void')")
    expect(staff.locator(".alert-error")).to_contain_text("left to void")
    assert pool.balance("acme").left == before.left
    staff.fill("input[name=amount]", "30")
    staff.fill("input[name=reason]", "billed twice")
    staff.click("button:has-text('Void')")
    expect(staff.locator(".alert-ok")).to_contain_text("Grant #1 voided")
    after = pool.balance("acme")
    assert (after.total, after.left, after.used) == (
        before.total - 30,
        before.left - 30,
        before.used,
    )
    grant = pool.grant_info("acme", 1)
    assert (grant.state.value, grant.voided) == ("active", D(30))
    assert [c.kind for c in pool.corrections("acme")] == ["partial_void"]
    assert pool.verify() == []


def test_staff_adjust_the_pool_after_reviewing_it(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    left = pool.balance("acme").left
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    staff.click("a:has-text('Adjust credits')")
    staff.fill("input[name=amount]", "5")
    review(staff)  # no reason: the browser asks for it (required), nothing is sent
    expect(staff.locator("input[name=reason]:invalid")).to_have_count(1)
    expect(staff.locator("h1")).to_contain_text("Adjust the credits of")
    staff.fill("input[name=reason]", "manual usage outside the product")
    review(staff)
    expect(staff.locator("h1")).to_contain_text("Debit 5.00 credits from")
    expect(staff.locator("dl.facts")).to_contain_text(f"{left - 5:.2f}")
    pages.shot(staff, "adjust-confirm")
    staff.click(CONFIRM)
    expect(staff.locator(".alert-ok")).to_contain_text("Adjustment")
    expect(staff.locator("#audit")).to_contain_text("manual usage outside the product")
    assert pool.balance("acme").left == left - 5
    assert pool.ledger("acme")[-1].action == "adjustment"
    # a credit larger than what the grants have used is refused on confirming
    staff.click("a:has-text('Adjust credits')")
    staff.check("input[name=direction][value=credit]")
    staff.fill("input[name=amount]", "500")
    staff.fill("input[name=reason]", "too generous")
    review(staff)
    staff.click(CONFIRM)
    expect(staff.locator(".alert-error")).to_contain_text("grant new credits")
    assert pool.balance("acme").left == left - 5
    assert "Manual adjustment" in balance_report(pages)
    assert pool.verify() == []
