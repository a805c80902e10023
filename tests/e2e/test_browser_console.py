"""The staff console's corrections that are not ledger changes, in a real browser (see
test_browser.py for the set-up): each is reviewed on a confirmation page first (no script
needed), refusals are shown in the form with nothing changed, and what was done is done by
the signed-in staff member."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import Page, expect

from creditpool.web.console_views import KEYS_PAGE_SIZE
from tests.e2e import test_browser as base
from tests.e2e.test_browser import Pages, seed

# The browser test fixtures, shared with test_browser.py.
playwright_driver = base.playwright_driver
browser = base.browser
pages = base.pages

CONFIRM = "button[name=step][value=confirm]"
CHANGE = "button[name=step][value=edit]"


def review(page: Page) -> None:
    page.click("form button[type=submit]:has-text('Review')")


def test_staff_create_an_organization_and_edit_its_settings_after_confirming(
    pages: Pages,
) -> None:
    pool = pages.server.pool
    staff = pages.staff()
    staff.click("a:has-text('New organization')")
    staff.fill("input[name=id]", "acme")  # taken: refused at review, nothing created
    review(staff)
    expect(staff.locator(".alert-error")).to_contain_text("already exists")
    staff.fill("input[name=id]", "initech")
    staff.fill("input[name=name]", "Initech")
    staff.select_option("select[name=timezone]", "Europe/Paris")
    staff.fill("input[name=thresholds]", "100, -20")
    review(staff)
    expect(staff.locator(".alert-error")).to_contain_text("threshold")
    assert [o.id for o in pool.orgs()] == ["acme", "globex"]
    staff.fill("input[name=thresholds]", "100, 20")
    staff.fill("input[name=expiry_notice_days]", "10")
    review(staff)
    expect(staff.locator("h1")).to_have_text("Create Initech?")
    expect(staff.locator("dl.facts")).to_contain_text("Europe/Paris")
    pages.shot(staff, "new-org-confirm")
    assert [o.id for o in pool.orgs()] == ["acme", "globex"]  # nothing yet
    staff.click(CONFIRM)
    expect(staff).to_have_url(re.compile(r"/staff/orgs/initech\?created=1$"))
    expect(staff.locator(".alert-ok")).to_contain_text("Initech created")
    org = pool.org("initech")
    assert (org.name, org.timezone, org.expiry_notice_days) == ("Initech", "Europe/Paris", 10)
    assert org.low_balance_thresholds == (Decimal(100), Decimal(20))

    staff.click("a:has-text('Edit settings')")
    expect(staff.locator("input[name=expiry_notice_days]")).to_have_value("10")
    review(staff)  # nothing changed: said so
    expect(staff.locator(".alert-error")).to_contain_text("Nothing to change")
    staff.fill("input[name=name]", "Initech SA")
    staff.fill("input[name=expiry_notice_days]", "3")
    review(staff)
    expect(staff.locator("dl.facts")).to_contain_text("Initech → Initech SA")
    staff.click(CHANGE)  # back to the form, as it was filled in
    expect(staff.locator("input[name=name]")).to_have_value("Initech SA")
    staff.fill("input[name=thresholds]", "abc")
    review(staff)
    expect(staff.locator(".alert-error")).to_be_visible()
    assert pool.org("initech").name == "Initech"
    staff.fill("input[name=thresholds]", "50")
    review(staff)
    pages.shot(staff, "settings-confirm")
    staff.click(CONFIRM)
    expect(staff.locator(".alert-ok")).to_contain_text("Settings saved")
    org = pool.org("initech")
    assert (org.name, org.expiry_notice_days, org.low_balance_thresholds) == (
        "Initech SA",
        3,
        (Decimal(50),),
    )


def test_staff_create_a_key_see_its_secret_once_and_revoke_it(pages: Pages) -> None:
    pool = pages.server.pool
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    staff.click("a:has-text('API keys')")
    staff.select_option("select[name=role]", "member")
    review(staff)  # a member key needs its user
    expect(staff.locator(".alert-error")).to_contain_text("user")
    staff.fill("input[name=user_id]", "u-9")
    staff.fill("input[name=name]", "Dashboard")
    review(staff)
    expect(staff.locator("h1")).to_have_text("Create a member key for Acme Inc.?")
    before = {k.id for k in pool.keys(org_id="acme")}
    staff.click(CONFIRM)
    secret = staff.locator("input[data-secret]").input_value()
    pages.shot(staff, "key-secret")
    made = pool.authenticate(secret)
    assert made is not None
    assert (made.role.value, made.org_id, made.user_id, made.name) == (
        "member",
        "acme",
        "u-9",
        "Dashboard",
    )
    assert {k.id for k in pool.keys(org_id="acme")} - before == {made.id}
    staff.click("a:has-text('Done')")
    row = staff.locator(f'tr[data-key="{made.id}"]')
    expect(row).to_contain_text("Dashboard")
    expect(staff.locator("table.keys")).not_to_contain_text(secret)
    row.locator("a:has-text('Revoke')").click()
    expect(staff.locator("h1")).to_have_text(f"Revoke key {made.id}?")
    assert pool.authenticate(secret) is not None  # asking changed nothing
    staff.click(CONFIRM)
    expect(staff.locator(".alert-ok")).to_contain_text(f"Key {made.id} revoked")
    assert pool.authenticate(secret) is None
    expect(staff.locator(f'tr[data-key="{made.id}"] a:has-text("Revoke")')).to_have_count(0)


def test_staff_mint_a_portal_link_that_opens_the_usage_page_once(pages: Pages) -> None:
    seed(pages.server)
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    staff.click("a:has-text('Sign-in link')")
    staff.fill("input[name=user_id]", "u 1")
    review(staff)
    expect(staff.locator(".alert-error")).to_contain_text("user id")
    staff.fill("input[name=user_id]", "u-1")
    staff.select_option("select[name=role]", "admin")
    review(staff)
    expect(staff.locator("h1")).to_have_text("Mint a sign-in link for u-1?")
    staff.click(CONFIRM)
    link = staff.locator("input[data-secret]").input_value()
    expect(staff.locator("dl.facts")).to_contain_text("Expires")
    pages.shot(staff, "portal-link")
    assert link.startswith(f"{pages.server.base_url}/portal/")
    user = pages.person()
    user.goto(link)
    expect(user).to_have_url(re.compile(r"/app/orgs/acme$"))
    expect(user.locator("h1")).to_contain_text("Acme Inc.")
    again = pages.person()
    answer = again.goto(link)
    assert answer is not None
    assert answer.status == 410


def test_staff_refund_a_consumption_with_a_reason_and_the_ledger_shows_it(
    pages: Pages,
) -> None:
    seed(pages.server)  # two uses: report (0.50) by u-1, action plan (0.50) by u-2
    pool = pages.server.pool
    used = next(c for c in pool.consumptions("acme") if c.feature == "report")
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme")
    row = staff.locator(f'#consumptions tr[data-consumption="{used.id}"]')
    row.locator("a:has-text('Refund')").click()
    expect(staff.locator("h1")).to_have_text(f"Refund consumption #{used.id}?")
    pages.shot(staff, "refund-confirm")
    reason = staff.locator("input[name=reason]")
    reason.evaluate("e => e.removeAttribute('required')")  # the server checks too
    staff.click("button.danger")
    expect(staff.locator(".alert-error")).to_contain_text("reason")
    assert pool.consumption("acme", used.id or 0).status == "paid"
    staff.fill("input[name=reason]", "wrong answer")
    staff.click("button.danger")
    expect(staff.locator(".alert-ok")).to_contain_text(f"Consumption #{used.id} refunded")
    expect(staff.locator("#ledger tbody tr").first).to_contain_text("refund")
    pages.shot(staff, "org-after-refund")
    refunded = pool.consumption("acme", used.id or 0)
    assert (refunded.status, refunded.refund_reason) == ("refunded", "wrong answer")
    assert pool.balance("acme").left == Decimal("99.50")
    # Asked again (a page opened before): the first refund is shown, nothing changes.
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme/consumptions/{used.id}/refund")
    expect(staff.locator("h1")).to_have_text(f"Consumption #{used.id} is refunded")
    expect(staff.locator("dl.facts")).to_contain_text("wrong answer")


def test_a_refund_shows_why_it_is_refused_and_a_second_one_the_first(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    report, plan = sorted(pool.consumptions("acme"), key=lambda c: c.id or 0)
    staff = pages.staff()
    base_url = f"{pages.server.base_url}/staff/orgs/acme/consumptions"
    # Refunded meanwhile by the vendor's backend: the submit shows that first refund.
    staff.goto(f"{base_url}/{report.id}/refund")
    pool.refund("acme", report.id or 0, reason="downvoted")
    staff.fill("input[name=reason]", "duplicate")
    staff.click("button.danger")
    expect(staff.locator(".alert-warn")).to_contain_text("Already refunded")
    expect(staff.locator("dl.facts")).to_contain_text("downvoted")
    expect(staff.locator("dl.facts")).to_contain_text("0.50")
    pages.shot(staff, "refund-already")
    # No active grant to give the credits back to: refused, with the reason, nothing changes.
    for grant in pool.grants("acme"):
        pool.void_grant("acme", grant.id, by="setup")
    staff.goto(f"{base_url}/{plan.id}/refund")
    staff.fill("input[name=reason]", "late")
    staff.click("button.danger")
    expect(staff.locator(".alert-error")).to_contain_text("No active grant")
    expect(staff.locator("input[name=reason]")).to_have_value("late")
    assert pool.consumption("acme", plan.id or 0).status == "paid"


def test_staff_change_a_feature_price_which_applies_from_then_on(pages: Pages) -> None:
    seed(pages.server)
    pool = pages.server.pool
    staff = pages.staff()
    staff.click("nav a:has-text('Features')")
    row = staff.locator('tr[data-feature="report"]')
    expect(row).to_contain_text("0.50")
    pages.shot(staff, "features")
    row.locator("a:has-text('Change price')").click()
    staff.fill("input[name=cost]", "abc")
    review(staff)
    expect(staff.locator(".alert-error")).to_be_visible()
    assert len(pool.feature_prices("report")) == 1
    staff.fill("input[name=cost]", "0.75")
    review(staff)
    expect(staff.locator("h1")).to_have_text("Change the price of Report?")
    expect(staff.locator("dl.facts")).to_contain_text("0.75 per use")
    assert pool.feature("report").cost == Decimal("0.5")  # nothing yet
    staff.click(CONFIRM)
    expect(staff.locator(".alert-ok")).to_contain_text("New price saved")
    first = staff.locator("table.prices tbody tr").first
    expect(first).to_contain_text("0.75")
    expect(first).to_contain_text("cs@vendor.example")
    expect(staff.locator("table.prices tbody tr")).to_have_count(2)
    pages.shot(staff, "feature-history")
    later = pool.consume("acme", "report", user_id="u-1")
    assert later.cost == Decimal("0.75")
    earlier = [c for c in pool.consumptions("acme") if c.feature == "report"][-1]
    assert earlier.cost == Decimal("0.5")


def confirmation_form(page: Page) -> dict[str, str | float | bool]:
    """The confirmation form's fields (hidden ones included) and its confirm button.

    Waits for the form first: `all()` does not wait, and read before the review page
    has loaded it finds no fields at all.
    """
    form = page.locator("[data-confirm] form")
    expect(form).to_be_visible()
    fields: dict[str, str | float | bool] = {
        str(i.get_attribute("name")): i.input_value()
        for i in form.locator("input[type=hidden]").all()
    }
    return {**fields, "step": "confirm"}


def test_a_confirmation_submitted_twice_makes_one_key_and_shows_the_same_secret(
    pages: Pages,
) -> None:
    pool = pages.server.pool
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme/keys")
    staff.fill("input[name=name]", "Twice")
    review(staff)
    fields = confirmation_form(staff)
    action = f"{pages.server.base_url}/staff/orgs/acme/keys"
    answers = [staff.request.post(action, form=fields) for _ in range(2)]
    shown = [re.findall(r'value="(cpk_[^"]+)"', a.text()) for a in answers]
    assert len(shown[0]) == 1
    assert shown[1] == shown[0]
    assert [k.name for k in pool.keys(org_id="acme")].count("Twice") == 1


def test_an_organization_admin_may_not_use_the_console(pages: Pages) -> None:
    pool = pages.server.pool
    admin = pages.portal("admin")
    base_url = pages.server.base_url
    for path in ("/staff/orgs/acme/keys", "/staff/new-org", "/staff/features",
                 "/staff/orgs/acme/consumptions", "/staff/orgs/acme/portal-link"):  # fmt: skip
        answer = admin.goto(f"{base_url}{path}")
        assert answer is not None
        assert answer.status == 403, path
    csrf = admin.locator("input[name=csrf]").first.input_value()
    refused = admin.request.post(
        f"{base_url}/staff/new-org",
        form={"id": "sneaky", "timezone": "UTC", "expiry_notice_days": "7", "step": "confirm",
              "csrf": csrf},
    )  # fmt: skip
    assert refused.status == 403
    assert [o.id for o in pool.orgs()] == ["acme", "globex"]


def test_a_later_page_of_keys_links_back_to_the_first(pages: Pages) -> None:
    pool = pages.server.pool
    for n in range(KEYS_PAGE_SIZE + 1):
        pool.create_key("member", org_id="acme", user_id=f"paged-{n}")
    staff = pages.staff()
    staff.goto(f"{pages.server.base_url}/staff/orgs/acme/keys")
    expect(staff.get_by_role("link", name="« First page")).to_have_count(0)
    staff.get_by_role("link", name="Next »").click()
    expect(staff).to_have_url(re.compile(r"/staff/orgs/acme/keys\?after="))
    staff.get_by_role("link", name="« First page").click()
    expect(staff).to_have_url(f"{pages.server.base_url}/staff/orgs/acme/keys")
