"""``/docs`` (Swagger UI) and ``/redoc`` work without a network: the server serves their
assets itself (from the ``fastapi-offline`` package). Checked in Debian's chromium with
every request to anything but the server aborted."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from tests.conftest import skip_or_fail
from tests.e2e.conftest import Server
from tests.e2e.test_browser import CHROMIUM_ARGS

RENDER_MS = 20_000  # the bundles are large and the machine may be busy


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    path = os.environ.get("CREDITPOOL_TEST_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        skip_or_fail(f"chromium not found at {path} (set CREDITPOOL_TEST_CHROMIUM)")
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


@pytest.fixture
def offline(browser: Browser, server: Server) -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request off the server is aborted; the list of those requests."""
    context = browser.new_context()
    own = urlsplit(server.base_url).netloc
    blocked: list[str] = []

    def only_the_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            blocked.append(f"{route.request.resource_type} {route.request.url}")
            route.abort()

    context.route("**/*", only_the_server)
    yield context.new_page(), blocked
    context.close()


def test_swagger_ui_renders_every_operation_offline(
    server: Server, offline: tuple[Page, list[str]]
) -> None:
    page, blocked = offline
    page.goto(f"{server.base_url}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=RENDER_MS)
    consume = page.locator(".opblock-summary-path", has_text="/v1/orgs/{org}/consumptions")
    expect(consume.first).to_be_visible()
    operations = page.locator(".opblock").count()
    assert operations >= 40, operations
    assert blocked == []


def test_redoc_renders_the_operations_offline(
    server: Server, offline: tuple[Page, list[str]]
) -> None:
    page, blocked = offline
    page.goto(f"{server.base_url}/redoc")
    heading = page.get_by_role("heading", name=re.compile(r"consume Consume$"))
    expect(heading).to_be_visible(timeout=RENDER_MS)
    # ReDoc's bundle links the "API docs by Redocly" logo from its CDN: a decorative image,
    # missing offline. Nothing the page needs (script, style, font, data) goes out.
    assert [b for b in blocked if not b.startswith("image ")] == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_name_no_other_host(server: Server, path: str) -> None:
    html = httpx.get(f"{server.base_url}{path}").text
    assert re.findall(r"""(?:src|href)=["']?(https?:|//)""", html) == []
    for asset in re.findall(r"""(?:src|href)=["']?(/[^"'\s>]+)""", html):
        assert httpx.get(f"{server.base_url}{asset}").status_code == 200, asset
