"""Every page on a phone (390 px) and on a desktop (1280 px), in a real browser: no sideways
scrolling, tables stacked into labelled rows on the phone, the chart's newest days in view,
the team limit editor usable, and axe-core (bundled by the axe-playwright-python package,
no CDN) finding no serious or critical violation. The history's row details open with the
keyboard. Full-page screenshots land in ``test-output/`` (gitignored): ``usage-390.png``...

One server per module and backend, one seeded organization for the module; each page is
opened in a fresh browser context of the width it is checked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, FloatRect, Locator, Page, expect

from creditpool import CreditPool
from creditpool.settings import Settings
from tests.e2e import test_browser as base
from tests.e2e.conftest import Server
from tests.e2e.tenants import Tenant, new_tenant

# The browser, shared with test_browser.py.
playwright_driver = base.playwright_driver
browser = base.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-output"
PHONE, DESKTOP = 390, 1280
WIDTHS = (PHONE, DESKTOP)
AXE_SCRIPT = (resources.files("axe_playwright_python") / "axe.min.js").read_text("utf-8")
BLOCKING = ("serious", "critical")
# Tables that become stacked rows (label: value) on a phone.
STACKED = "table.stackable"


@dataclass
class Site:
    """The module's organization, seeded with a bit of everything the pages show."""

    tenant: Tenant
    ids: dict[str, int] = field(default_factory=dict)
    contexts: list[BrowserContext] = field(default_factory=list)

    @property
    def org(self) -> str:
        return self.tenant.org

    @property
    def base_url(self) -> str:
        return self.tenant.server.base_url

    def person(self, browser: Browser, width: int) -> Page:
        context = browser.new_context(viewport={"width": width, "height": 860})
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return context.new_page()

    def portal(self, browser: Browser, width: int, role: str = "admin", user: str = "u-1") -> Page:
        answer = self.tenant.client("service").post(
            "/v1/portal-sessions", json={"org_id": self.org, "user_id": user, "role": role}
        )
        assert answer.status_code == 201, answer.text
        page = self.person(browser, width)
        page.goto(answer.json()["url"])
        expect(page.locator("h1")).to_have_text("Acme Inc.")
        return page

    def staff(self, browser: Browser, width: int) -> Page:
        page = self.person(browser, width)
        page.goto(f"{self.base_url}/staff/login")
        page.fill("input[name=key]", self.tenant.keys["staff"])
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/staff$"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


def seed(pool: CreditPool, org: str) -> dict[str, int]:
    """Grants in every state, two teams, a named and an unnamed member, uses with every
    detail, a refund that restored and one whose credits were lost, holds, a request."""
    ids: dict[str, int] = {}
    now = pool.db.now()
    trial = pool.grant(org, "5", note="Trial", granted_by="setup")
    lost = pool.consume(org, "report", user_id="u-2", feature_name="Trial digest")
    pool.void_grant(org, trial.id, by="setup", reason="entered twice")
    main = pool.grant(
        org, "100", note="Annual plan 2026", reference="INV-2026-0042", granted_by="setup"
    )
    pool.grant(
        org, "50", available_from=now + timedelta(days=20), note="Next quarter",
        granted_by="setup",
    )  # fmt: skip
    pool.grant(org, "10", expires_at=now + timedelta(days=10), note="Promo", granted_by="setup")
    pool.create_team(org, "t-1", name="Sales EMEA", monthly_limit="10")
    pool.create_team(org, "t-2", name="Research and development")
    pool.set_member(org, "u-1", team_id="t-1", display_name="Ana López")
    pool.set_member(org, "u-2", team_id="t-2")
    rich = pool.consume(
        org,
        "agent_recommendation",
        user_id="u-1",
        feature_name="Weekly pipeline review for the EMEA sales team",
        action="publish",
        integration="salesforce",
        breakdown={"calls": 12, "emails": 3},
        requests=4,
        metadata={"ticket": "T-42", "tags": ["q3", "emea"]},
    )
    back = pool.consume(org, "action_plan", user_id="u-1", feature_name="Fix onboarding")
    for i in range(4):
        pool.consume(org, "topic_detection", user_id="u-2", quantity=str(150 * (i + 1)))
    assert lost.id is not None
    assert rich.id is not None
    assert back.id is not None
    pool.refund(org, back.id, reason="downvoted by the user")
    pool.refund(org, lost.id, reason="charged the wrong user")
    held = pool.hold(org, "topic_detection", user_id="u-2", amount="3", ttl_s=3600)
    settled = pool.hold(org, "topic_detection", user_id="u-1", amount="2")
    pool.settle(org, settled.id, quantity="120", feature_name="NPS comments")
    asked = pool.request_credits(org, "500", requested_by="u-1", message="For the Q3 launch")
    ids.update(
        main=main.id, rich=rich.id, back=back.id, lost=lost.id, hold=held.id, request=asked.id
    )
    return ids


@pytest.fixture(scope="module")
def site(shared: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with new_tenant(shared) as tenant:
        made = Site(tenant, seed(tenant.pool, tenant.org))
        key_file = tmp_path_factory.mktemp("keys") / "secret.key"
        with CreditPool.open(shared.db_url, settings=Settings(secret_key_file=str(key_file))) as p:
            # An event type this module never raises: nothing is ever sent to these.
            p.create_webhook_endpoint(
                "https://hooks.example.com/creditpool/a-rather-long-path/for-the-billing-sync",
                event_types=["grant.expired"],
                description="Billing sync",
            )
            p.create_webhook_endpoint("https://hooks.example.com/old", enabled=False)
        yield made
        made.close()


@pytest.fixture
def closing(site: Site) -> Iterator[Site]:
    """The site, with the browser contexts a test opened closed after it."""
    yield site
    site.close()


# -- what every page is checked for ------------------------------------------------------


def box_of(locator: Locator) -> FloatRect:
    box = locator.bounding_box()
    assert box is not None, locator
    return box


def within(box: FloatRect, width: int) -> FloatRect:
    """The box is inside the viewport's width (not cut off on either side)."""
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width, box
    return box


def shot(page: Page, name: str, width: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def no_sideways_scrolling(page: Page) -> None:
    sizes = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5
                && !el.closest('.chart-box, .visually-hidden, table.stackable thead'))
            .slice(0, 5).map(el => el.outerHTML.slice(0, 120))"""
    )
    assert sizes["scroll"] <= sizes["inner"], (sizes, wide)
    assert wide == [], wide


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SCRIPT)
    found: dict[str, Any] = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in found["violations"]
        if v["impact"] in BLOCKING
    ]


def accessible(page: Page) -> None:
    violations = axe_violations(page)
    assert violations == [], json.dumps(violations, indent=1)


CELLS = """() => [...document.querySelectorAll('table.stackable tbody td')]
    .filter(td => td.getClientRects().length > 0)
    .map(td => ({
        label: td.getAttribute('data-label'),
        empty: td.closest('tr').classList.contains('empty') || td.colSpan > 1,
        display: getComputedStyle(td).display,
        before: getComputedStyle(td, '::before').content,
    }))"""


COLUMNS = """() => [...document.querySelectorAll('table.stackable')]
    .filter(t => t.getClientRects().length > 0 && t.querySelector('tbody tr:not(.empty) td'))
    .map(t => ({
        display: getComputedStyle(t).display,
        heads: [...t.querySelectorAll('thead th')].map(c => Math.round(c.getBoundingClientRect().x)),
        cells: [...t.querySelector('tbody tr:not(.empty)').cells]
            .map(c => Math.round(c.getBoundingClientRect().x)),
    }))"""


def stacked_rows(page: Page, width: int) -> int:
    """Every cell of a stacked table is labelled; on a phone each is a row that shows its
    label before its value, and the column heads are hidden; on a desktop it is a table.
    Returns how many labelled cells were checked."""
    cells = [c for c in page.evaluate(CELLS) if not c["empty"]]
    unlabelled = [c for c in cells if not c["label"]]
    assert unlabelled == [], unlabelled
    for cell in cells:
        if width == PHONE:
            assert cell["display"] != "table-cell", cell
            assert cell["before"] == json.dumps(cell["label"], ensure_ascii=False), cell
        else:
            assert cell["display"] == "table-cell", cell
            assert cell["before"] in ("none", "normal"), cell
    heads = page.locator(f"{STACKED} thead")
    for i in range(heads.count()):
        box = heads.nth(i).bounding_box()
        if width == PHONE:
            assert box is None or box["height"] <= 1, box
        else:
            assert box_of(heads.nth(i))["height"] > 10
    if width == DESKTOP:  # one grid: each column's head above its cells
        tables = page.evaluate(COLUMNS)
        for table in tables:
            assert table["display"] == "table", table
            assert table["heads"] == table["cells"], table
    return len(cells)


# -- every page, at both widths ------------------------------------------------------------

Opener = Callable[[Site, Browser, int], Page]


def usage(site: Site, browser: Browser, width: int) -> Page:
    page = site.portal(browser, width)
    base.wait_live(page)
    return page


def member_usage(site: Site, browser: Browser, width: int) -> Page:
    page = site.portal(browser, width, role="member", user="u-1")
    base.wait_live(page)
    return page


def credits(site: Site, browser: Browser, width: int) -> Page:
    page = site.portal(browser, width)
    page.goto(f"{site.base_url}/app/orgs/{site.org}/credits")
    expect(page.locator("h1")).to_have_text("Credits")
    return page


def staff_orgs(site: Site, browser: Browser, width: int) -> Page:
    page = site.staff(browser, width)
    expect(page.locator("table.orgs")).to_contain_text("Acme Inc.")
    return page


def staff_org(site: Site, browser: Browser, width: int) -> Page:
    page = site.staff(browser, width)
    page.goto(f"{site.base_url}/staff/orgs/{site.org}")
    base.wait_live(page)
    return page


def staff_webhooks(site: Site, browser: Browser, width: int) -> Page:
    page = site.staff(browser, width)
    page.goto(f"{site.base_url}/staff/webhooks")
    expect(page.locator("table.webhooks")).to_contain_text("Billing sync")
    return page


def staff_void(site: Site, browser: Browser, width: int) -> Page:
    page = site.staff(browser, width)
    page.goto(f"{site.base_url}/staff/orgs/{site.org}/grants/{site.ids['main']}/void")
    expect(page.locator("h1")).to_contain_text("Void grant")
    return page


def staff_request_grant(site: Site, browser: Browser, width: int) -> Page:
    request_id = site.ids["request"]
    page = site.staff(browser, width)
    page.goto(f"{site.base_url}/staff/orgs/{site.org}/credit-requests/{request_id}/grant")
    expect(page.locator("h1")).to_contain_text("Grant credit request")
    return page


def staff_login(site: Site, browser: Browser, width: int) -> Page:
    page = site.person(browser, width)
    page.goto(f"{site.base_url}/staff/login")
    expect(page.locator("h1")).to_have_text("Staff sign-in")
    return page


def error(site: Site, browser: Browser, width: int) -> Page:
    page = site.portal(browser, width)
    answer = page.goto(f"{site.base_url}/app/orgs/{site.tenant.other}")
    assert answer is not None
    assert answer.status == 404
    expect(page.locator("h1")).to_have_text("Page not found")
    return page


def signed_out(site: Site, browser: Browser, width: int) -> Page:
    page = site.portal(browser, width)
    page.click(".who button")
    expect(page.locator("h1")).to_have_text("You are signed out")
    return page


PAGES: dict[str, Opener] = {
    "usage": usage,
    "usage-member": member_usage,
    "credits": credits,
    "staff": staff_orgs,
    "staff-org": staff_org,
    "staff-webhooks": staff_webhooks,
    "staff-void": staff_void,
    "staff-request-grant": staff_request_grant,
    "staff-login": staff_login,
    "error": error,
    "signed-out": signed_out,
}
# The pages whose tables must be stacked (and so have labelled cells) on a phone.
WITH_TABLES = {"usage", "usage-member", "credits", "staff", "staff-org", "staff-webhooks"}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_fits_the_width_stacks_its_tables_and_passes_axe(
    closing: Site, browser: Browser, name: str, width: int
) -> None:
    page = PAGES[name](closing, browser, width)
    shot(page, name, width)
    no_sideways_scrolling(page)
    checked = stacked_rows(page, width)
    assert (checked > 0) == (name in WITH_TABLES), checked
    accessible(page)


# -- the chart, the team limit editor, the history's row details ---------------------------

HIT_TITLES = "svg => [...svg.querySelectorAll('rect.hit > title')].map(t => t.textContent)"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_chart_fits_the_width_and_shows_the_newest_days(
    closing: Site, browser: Browser, width: int
) -> None:
    page = usage(closing, browser, width)
    shown = page.locator("#chart .chart-box svg:visible")
    expect(shown).to_have_count(1)
    every_day = page.locator("#chart .chart-wide svg").evaluate(HIT_TITLES)
    days = shown.evaluate(HIT_TITLES)
    assert len(every_day) == 30
    assert len(days) == (14 if width == PHONE else 30)
    assert days == every_day[-len(days) :]  # the newest ones, today last
    box = shown.locator("xpath=..")
    sizes = box.evaluate("b => ({scroll: b.scrollWidth, client: b.clientWidth})")
    assert sizes["scroll"] <= sizes["client"], sizes  # it scales: nothing scrolls away
    within(box_of(shown.locator("rect.hit").last), width)
    assert box_of(shown.locator("text.axis").last)["height"] >= 9  # readable, not a speck
    if width == PHONE:
        expect(page.locator("#chart .narrow-only")).to_contain_text("the last 14 days")
    else:
        expect(page.locator("#chart .narrow-only")).to_be_hidden()


def test_the_team_limit_editor_is_usable_on_a_phone(closing: Site, browser: Browser) -> None:
    page = usage(closing, browser, PHONE)
    row = page.locator('tr[data-team="t-1"]')
    field, save = row.locator("input[name=monthly_limit]"), row.locator("button")
    for control in (field, save):
        expect(control).to_be_visible()
        control.scroll_into_view_if_needed()
        box = within(box_of(control), PHONE)
        assert box["height"] >= 24, box  # big enough to tap
        hit = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y)?.closest('input, button')?.outerHTML",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert str(hit).startswith(("<input", "<button")), hit  # nothing covers it
    field.fill("12.5")
    save.click()
    expect(page.locator(".alert-ok")).to_contain_text("saved")
    row = page.locator('tr[data-team="t-1"]')
    expect(row.locator('[data-label="Monthly limit"]')).to_have_text("12.50")
    no_sideways_scrolling(page)
    shot(page, "team-limit", PHONE)
    row.locator("input[name=monthly_limit]").fill("10")
    row.locator("button").click()
    expect(page.locator('tr[data-team="t-1"] [data-label="Monthly limit"]')).to_have_text("10.00")
    assert str(closing.tenant.pool.team(closing.org, "t-1").monthly_limit) == "10.00"


def details_of(page: Page, consumption_id: int) -> tuple[Locator, Locator]:
    """A history row's opener and the row its details open into."""
    opener = page.locator(f'tr[data-consumption="{consumption_id}"] button.row-opener')
    return opener, page.locator(f"#consumption-{consumption_id}-details")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_history_row_opens_its_details_with_the_keyboard(
    closing: Site, browser: Browser, width: int
) -> None:
    pool, org = closing.tenant.pool, closing.org
    rich = pool.consumption(org, closing.ids["rich"])
    page = usage(closing, browser, width)
    opener, details = details_of(page, closing.ids["rich"])
    expect(opener).to_have_attribute("aria-expanded", "false")
    opener.focus()
    page.keyboard.press("Enter")
    expect(details).to_be_visible()
    expect(opener).to_have_attribute("aria-expanded", "true")
    expect(opener).to_have_attribute("aria-controls", f"consumption-{rich.id}-details")
    facts = {
        "action": "publish",
        "integration": "salesforce",
        "breakdown": "calls: 12, emails: 3",
        "requests": "4",
    }
    for name, text in facts.items():
        expect(details.locator(f'[data-detail="{name}"]')).to_have_text(text)
    metadata = details.locator('[data-detail="metadata"]').inner_text()
    assert json.loads(metadata) == {"tags": ["q3", "emea"], "ticket": "T-42"}
    drawn = ", ".join(f"grant #{a.grant_id}: {a.amount}" for a in rich.allocations)
    expect(details.locator('[data-detail="grants"]')).to_have_text(drawn)
    expect(details).to_contain_text("Ana López (u-1)")
    expect(details.locator('[data-detail="reason"]')).to_have_count(0)  # not refunded
    no_sideways_scrolling(page)
    shot(page, "usage-details", width)
    accessible(page)

    page.keyboard.press("Enter")  # the same button closes them
    expect(details).to_be_hidden()
    expect(opener).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Space")
    expect(details).to_be_visible()


def test_a_refunded_rows_details_say_why_and_what_was_restored_or_lost(
    closing: Site, browser: Browser
) -> None:
    pool, org = closing.tenant.pool, closing.org
    page = usage(closing, browser, PHONE)
    restored = pool.refund(org, closing.ids["back"])  # a second refund answers the first
    opener, details = details_of(page, closing.ids["back"])
    opener.click()
    expect(details.locator('[data-detail="reason"]')).to_have_text("downvoted by the user")
    back = ", ".join(f"grant #{a.grant_id}: {a.amount}" for a in restored.restorations)
    expect(details.locator('[data-detail="restored"]')).to_have_text(
        f"{restored.restored} to {back}"
    )
    expect(details.locator('[data-detail="lost"]')).to_have_text("0.00")

    opener, details = details_of(page, closing.ids["lost"])
    opener.click()
    expect(details.locator('[data-detail="reason"]')).to_have_text("charged the wrong user")
    expect(details.locator('[data-detail="restored"]')).to_have_text("0.00")
    expect(details.locator('[data-detail="lost"]')).to_contain_text("0.50")
    expect(details.locator('[data-detail="lost"]')).to_contain_text("expired or been voided")
    no_sideways_scrolling(page)
    shot(page, "usage-refund-details", PHONE)
    accessible(page)


def test_open_details_follow_a_refund_live(closing: Site, browser: Browser) -> None:
    service = closing.tenant.client("service")
    page = usage(closing, browser, PHONE)
    made = service.post(
        f"/v1/orgs/{closing.org}/consumptions",
        json={"feature": "report", "user_id": "u-1", "action": "export"},
    )
    assert made.status_code == 201, made.text
    made_id = made.json()["id"]
    opener, details = details_of(page, made_id)
    expect(opener).to_be_visible(timeout=base.LIVE_MS)
    expect(page.locator(f'tr[data-consumption="{made_id}"] [data-label="User"]')).to_have_text(
        "Ana López"
    )
    opener.click()
    expect(details.locator('[data-detail="action"]')).to_have_text("export")
    refunded = service.post(
        f"/v1/orgs/{closing.org}/consumptions/{made_id}/refund", json={"reason": "a test"}
    )
    assert refunded.status_code == 200, refunded.text
    expect(details.locator('[data-detail="reason"]')).to_have_text("a test", timeout=base.LIVE_MS)
    expect(page.locator(f'tr[data-consumption="{made_id}"]')).to_contain_text("Refunded")
    expect(details_of(page, made_id)[0]).to_have_attribute("aria-expanded", "true")


def test_a_member_opens_only_their_own_rows_details(closing: Site, browser: Browser) -> None:
    page = member_usage(closing, browser, PHONE)
    expect(page.locator(".page-head")).to_contain_text("your own usage (Ana López)")
    opener, details = details_of(page, closing.ids["rich"])
    opener.click()
    expect(details.locator('[data-detail="integration"]')).to_have_text("salesforce")
    others = f"/app/orgs/{closing.org}/history/{closing.ids['lost']}/details"  # u-2's
    status = page.evaluate("async url => (await fetch(url)).status", others)
    assert status == 404
    assert page.locator(f'tr[data-consumption="{closing.ids["lost"]}"]').count() == 0


def test_pages_show_display_names_instead_of_user_ids(closing: Site, browser: Browser) -> None:
    page = usage(closing, browser, DESKTOP)
    users = page.locator("tbody[data-history-body] td[data-user]")
    shown = dict(zip(users.evaluate_all("cs => cs.map(c => c.dataset.user)"),
                     users.all_inner_texts(), strict=True))  # fmt: skip
    assert shown == {"u-1": "Ana López", "u-2": "u-2"}
    expect(page.locator('datalist#users option[value="u-1"]')).to_have_attribute(
        "label", "Ana López"
    )
    page.goto(f"{closing.base_url}/app/orgs/{closing.org}/credits")
    asked = page.locator(f'tr[data-request="{closing.ids["request"]}"] [data-label="By"]')
    expect(asked).to_have_text("Ana López")  # asked by u-1
    staff = staff_org(closing, browser, DESKTOP)
    asked = staff.locator(f'tr[data-request="{closing.ids["request"]}"] [data-label="By"]')
    expect(asked).to_have_text("Ana López")
    hold = staff.locator(f'tr[data-hold="{closing.ids["hold"]}"] [data-label="User"]')
    expect(hold).to_have_text("u-2")
    closing.tenant.pool.set_member(closing.org, "u-2", team_id="t-2", display_name="Bo Chen")
    staff.reload()
    expect(hold).to_have_text("Bo Chen")
    closing.tenant.pool.set_member(closing.org, "u-2", team_id="t-2")


def test_row_details_are_refused_to_who_may_not_see_the_row(closing: Site) -> None:
    """Over plain HTTP: no session, another organization's admin, an id that is not there."""
    tenant, path = closing.tenant, f"/app/orgs/{closing.org}/history/{closing.ids['rich']}"

    def session(org: str, role: str = "admin", user: str = "u-1") -> httpx.Client:
        link = tenant.client("service").post(
            "/v1/portal-sessions", json={"org_id": org, "user_id": user, "role": role}
        )
        assert link.status_code == 201, link.text
        client = tenant.client(None)
        assert client.get(link.json()["url"]).status_code == 303
        return client

    assert tenant.client(None).get(f"{path}/details").status_code == 401
    assert session(tenant.other).get(f"{path}/details").status_code == 404
    admin = session(closing.org)
    assert admin.get(f"/app/orgs/{closing.org}/history/999999999/details").status_code == 404
    answer = admin.get(f"{path}/details")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert 'id="consumption-' in answer.text
    assert "salesforce" in answer.text
    assert "Ana López" in admin.get(path).text  # the row a live update fetches
