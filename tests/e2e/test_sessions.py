"""Browser sessions over plain HTTP against a real server: one-time portal links, the
session cookie's flags, CSRF on every form, expiry, staff sign-in, and organizations kept
apart (another organization's pages, API and stream answer 404)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from unittest import mock

import httpx
import pytest

from creditpool.http.cookies import COOKIE, SessionCodec
from creditpool.sessions import service as sessions_service
from creditpool.sessions.models import SessionClaims
from creditpool.storage.uow import Database
from tests.e2e.conftest import Server

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def portal_link(server: Server, org: str = "acme", user: str = "u-1", role: str = "admin") -> str:
    response = server.client("service").post(
        "/v1/portal-sessions", json={"org_id": org, "user_id": user, "role": role}
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return url


def browser(server: Server) -> httpx.Client:
    """A client without a key, keeping cookies like a browser, not following redirects."""
    client = httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False)
    server.clients.append(client)
    return client


def signed_in(
    server: Server, role: str = "admin", org: str = "acme", user: str = "u-1"
) -> httpx.Client:
    client = browser(server)
    response = client.get(portal_link(server, org, user, role))
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)


def test_a_portal_link_signs_in_once_and_redirects_to_the_usage_page(server: Server) -> None:
    minted = server.client("service").post(
        "/v1/portal-sessions", json={"org_id": "acme", "user_id": "u-1", "role": "admin"}
    )
    assert minted.status_code == 201
    expires_at = datetime.fromisoformat(minted.json()["expires_at"])
    assert timedelta(0) < expires_at - datetime.now(UTC) <= timedelta(minutes=5)
    url = minted.json()["url"]
    assert url.startswith(f"{server.base_url}/portal/")

    first = browser(server).get(url)
    assert first.status_code == 303
    assert first.headers["location"] == "/app/orgs/acme"
    again = browser(server).get(url)
    assert again.status_code == 410
    assert "text/html" in again.headers["content-type"]


def test_the_session_cookie_is_httponly_samesite_lax_and_expiring(server: Server) -> None:
    response = browser(server).get(portal_link(server))
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path"} <= flags
    assert "samesite=lax" in cookie.lower()


def test_an_unknown_or_expired_link_opens_no_session(server: Server) -> None:
    assert browser(server).get("/portal/not-a-real-token").status_code == 404
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    an_hour_ago_db = Database(server.pool.db.engine, lambda: an_hour_ago)
    link = sessions_service.open_link(an_hour_ago_db, "acme", "u-1", "admin", timedelta(minutes=5))
    client = browser(server)
    response = client.get(f"/portal/{link.token}")
    assert response.status_code == 410
    assert COOKIE not in client.cookies
    assert client.get("/app/orgs/acme").status_code == 401


def test_only_the_service_and_staff_roles_mint_links_for_existing_organizations(
    server: Server,
) -> None:
    body = {"org_id": "acme", "user_id": "u-1", "role": "admin"}
    assert server.client("staff").post("/v1/portal-sessions", json=body).status_code == 201
    for role in ("admin", "member"):
        assert server.client(role).post("/v1/portal-sessions", json=body).status_code == 403
    missing = server.client("service").post(
        "/v1/portal-sessions", json={**body, "org_id": "nowhere"}
    )
    assert missing.status_code == 404
    bad_role = server.client("service").post("/v1/portal-sessions", json={**body, "role": "staff"})
    assert bad_role.status_code == 422


def test_a_session_opens_its_own_organization_and_nothing_of_another(server: Server) -> None:
    client = signed_in(server)
    assert client.get("/app/orgs/acme").status_code == 200
    assert client.get("/v1/orgs/acme/balance").status_code == 200
    foreign_page = client.get("/app/orgs/globex")
    assert foreign_page.status_code == 404
    assert "text/html" in foreign_page.headers["content-type"]
    assert client.get("/app/orgs/globex/credits").status_code == 404
    assert client.get("/v1/orgs/globex/balance").status_code == 404
    with client.stream("GET", "/v1/orgs/globex/events") as stream:
        assert stream.status_code == 404


def test_a_member_session_sees_the_balance_and_only_its_own_usage(server: Server) -> None:
    server.pool.grant("acme", "10", granted_by="setup")
    own = server.pool.consume("acme", "report", user_id="u-1")
    other = server.pool.consume("acme", "report", user_id="u-2")
    client = signed_in(server, role="member", user="u-1")
    page = client.get("/app/orgs/acme")
    assert page.status_code == 200
    assert f'data-consumption="{own.id}"' in page.text
    assert f'data-consumption="{other.id}"' not in page.text
    assert client.get(f"/app/orgs/acme/history/{own.id}").status_code == 200
    assert client.get(f"/app/orgs/acme/history/{other.id}").status_code == 404
    assert client.get("/app/orgs/acme/credits").status_code == 403
    assert client.get("/v1/orgs/acme/ledger").status_code == 403


def test_every_form_post_needs_the_session_csrf_token(server: Server) -> None:
    server.pool.create_team("acme", "t-1", name="Team One")
    client = signed_in(server)
    token = csrf_of(client, "/app/orgs/acme")
    path = "/app/orgs/acme/teams/t-1/limit"
    assert client.post(path, data={"monthly_limit": "50"}).status_code == 403
    assert client.post(path, data={"monthly_limit": "50", "csrf": "forged"}).status_code == 403
    assert server.pool.team("acme", "t-1").monthly_limit is None
    saved = client.post(path, data={"monthly_limit": "50", "csrf": token})
    assert saved.status_code == 303
    assert str(server.pool.team("acme", "t-1").monthly_limit) == "50.00"
    # Another session's token is no good either.
    other = signed_in(server)
    assert other.post(path, data={"monthly_limit": "7", "csrf": token}).status_code == 403


def test_a_session_changes_nothing_through_the_api_without_its_csrf_header(
    server: Server,
) -> None:
    server.pool.create_team("acme", "t-1", name="Team One")
    client = signed_in(server)
    path = "/v1/orgs/acme/teams/t-1"
    refused = client.patch(path, json={"monthly_limit": "5"})
    assert refused.status_code == 403
    token = csrf_of(client, "/app/orgs/acme")
    allowed = client.patch(path, json={"monthly_limit": "5"}, headers={"X-CSRF-Token": token})
    assert allowed.status_code == 200


def test_page_routes_that_change_things_are_post_only(server: Server) -> None:
    client = signed_in(server)
    assert client.get("/app/orgs/acme/teams/t-1/limit").status_code == 405
    assert client.get("/app/logout").status_code == 405


def test_an_expired_or_tampered_session_cookie_is_refused(server: Server) -> None:
    secret = sessions_service.session_secret(server.pool.db)
    claims = SessionClaims(
        role="admin", org_id="acme", user_id="u-1", name="u-1", key_id=None, csrf="x"
    )
    codec = SessionCodec(secret, 3600)
    fresh = codec.dumps(claims)
    nine_hours_ago = time.time() - 9 * 3600
    with mock.patch("itsdangerous.timed.time.time", return_value=nine_hours_ago):
        stale = codec.dumps(claims)
    for value, status in ((fresh, 200), (stale, 401), (fresh[:-2] + "xx", 401)):
        client = browser(server)
        client.cookies.set(COOKIE, value)
        assert client.get("/app/orgs/acme").status_code == status
        assert client.get("/v1/orgs/acme/balance").status_code == (200 if status == 200 else 401)


def test_signing_out_ends_the_session(server: Server) -> None:
    client = signed_in(server)
    token = csrf_of(client, "/app/orgs/acme")
    response = client.post("/app/logout", data={"csrf": token})
    assert response.status_code == 200
    assert COOKIE not in client.cookies
    assert client.get("/app/orgs/acme").status_code == 401


def test_staff_sign_in_with_a_staff_key_only(server: Server) -> None:
    client = browser(server)
    form = client.get("/staff/login")
    login_csrf = CSRF.search(form.text)
    assert login_csrf is not None
    token = login_csrf.group(1)
    assert client.post("/staff/login", data={"key": server.keys["staff"]}).status_code == 403
    refused = client.post("/staff/login", data={"key": server.keys["admin"], "csrf": token})
    assert refused.status_code == 401
    token = CSRF.search(refused.text).group(1)  # type: ignore[union-attr]
    response = client.post("/staff/login", data={"key": server.keys["staff"], "csrf": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/staff"
    assert client.get("/staff").status_code == 200
    assert client.get("/staff/orgs/globex").status_code == 200
    # An admin's session is no staff session.
    assert signed_in(server).get("/staff").status_code == 403
    assert browser(server).get("/staff").headers["location"] == "/staff/login"


def test_a_revoked_staff_key_ends_its_sessions(server: Server) -> None:
    key, secret = server.pool.create_key("staff", name="leaving@vendor.example")
    client = browser(server)
    token = CSRF.search(client.get("/staff/login").text).group(1)  # type: ignore[union-attr]
    client.post("/staff/login", data={"key": secret, "csrf": token})
    assert client.get("/staff").status_code == 200
    server.pool.revoke_key(key.id)
    deadline = time.monotonic() + 10
    while client.get("/staff").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert client.get("/staff").status_code == 303


def test_bearer_keys_work_as_before_and_win_over_a_cookie(server: Server) -> None:
    client = signed_in(server)  # an acme admin session
    globex = client.get(
        "/v1/orgs/globex/balance",
        headers={"Authorization": f"Bearer {server.keys['other_admin']}"},
    )
    assert globex.status_code == 200
    bad = client.get("/v1/orgs/acme/balance", headers={"Authorization": "Bearer cpk_nope_x"})
    assert bad.status_code == 401


@pytest.mark.parametrize("path", ["/demo/admin", "/demo/staff"])
def test_demo_links_exist_only_when_serving_the_demo(server: Server, path: str) -> None:
    assert browser(server).get(path).status_code == 404
