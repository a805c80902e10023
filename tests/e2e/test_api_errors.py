"""Every error code over HTTP against a real server: RFC 9457 problems with a stable code,
the limits on input, no 5xx for any input, and idempotent replay."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.tenants import Tenant, money

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://creditpool.dev/problems/{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def consume(client: httpx.Client, t: Tenant, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    payload = {"feature": "report", "user_id": "u-1", **body}
    return client.post(f"/v1/orgs/{t.org}/consumptions", json=payload, headers=headers)


# -- every code -------------------------------------------------------------------------


def test_too_little_left_is_402_insufficient_credits_with_the_balance(t: Tenant) -> None:
    t.pool.grant(t.org, "0.25")
    body = problem(consume(t.client(), t), 402, "insufficient_credits")
    assert (body["left"], body["required"]) == ("0.25", "0.50")
    assert money(t)[2] == Decimal("0.25")


def test_a_refund_with_no_active_grant_is_409_no_active_grant(t: Tenant) -> None:
    grant = t.pool.grant(t.org, "5")
    used = consume(t.client(), t).json()
    t.pool.void_grant(t.org, grant.id)
    response = t.client().post(f"/v1/orgs/{t.org}/consumptions/{used['id']}/refund", json={})
    problem(response, 409, "no_active_grant")
    assert t.pool.consumption(t.org, used["id"]).status == "paid"


def test_a_second_void_is_409_grant_voided(t: Tenant) -> None:
    grant = t.pool.grant(t.org, "5")
    staff = t.client("staff")
    assert staff.post(f"/v1/orgs/{t.org}/grants/{grant.id}/void", json={}).status_code == 200
    again = staff.post(f"/v1/orgs/{t.org}/grants/{grant.id}/void", json={"reason": "twice"})
    problem(again, 409, "grant_voided")


def test_creating_an_existing_org_or_team_is_409_already_exists(t: Tenant) -> None:
    service = t.client()
    problem(service.post("/v1/orgs", json={"id": t.org}), 409, "already_exists")
    assert service.post(f"/v1/orgs/{t.org}/teams", json={"id": "a"}).status_code == 201
    problem(service.post(f"/v1/orgs/{t.org}/teams", json={"id": "a"}), 409, "already_exists")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/orgs/{org}/grants/999999",
        "/v1/orgs/{org}/consumptions/999999",
        "/v1/orgs/{org}/members/nobody",
        "/v1/orgs/no-such-org",
        "/v1/orgs/no-such-org/balance",
        "/v1/no/such/route",
        "/nothing-here",
    ],
)
def test_what_does_not_exist_is_404_not_found(t: Tenant, path: str) -> None:
    problem(t.client().get(path.format(org=t.org)), 404, "not_found")


def test_a_missing_key_is_401_unauthorized_with_www_authenticate(t: Tenant) -> None:
    response = t.client(None).get(f"/v1/orgs/{t.org}/balance")
    problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_forbidden_action_is_403_forbidden(t: Tenant) -> None:
    problem(t.client("member").get(f"/v1/orgs/{t.org}/ledger"), 403, "forbidden")


def test_an_unsupported_method_is_405_with_the_allowed_methods(t: Tenant) -> None:
    response = t.client().delete(f"/v1/orgs/{t.org}")
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD, PATCH"
    listed = t.client().put("/v1/orgs", json={})
    problem(listed, 405, "method_not_allowed")
    assert listed.headers["allow"] == "GET, HEAD, POST"


def test_a_body_over_the_limit_is_413_declared_or_streamed(t: Tenant) -> None:
    big = b'{"feature": "report", "user_id": "u-1", "metadata": {"x": "' + b"a" * 70_000 + b'"}}'
    headers = {"Content-Type": "application/json"}
    declared = t.client().post(f"/v1/orgs/{t.org}/consumptions", content=big, headers=headers)
    problem(declared, 413, "payload_too_large")
    chunks = (big[i : i + 8192] for i in range(0, len(big), 8192))
    streamed = t.client().post(f"/v1/orgs/{t.org}/consumptions", content=chunks, headers=headers)
    problem(streamed, 413, "payload_too_large")


@pytest.mark.parametrize(
    "amount",
    [
        "0.00001",
        "-1",
        "0",
        "0.0000",
        1.5,
        "NaN",
        "Infinity",
        "1e3",
        "10000000000000",
        10**30,
        "",
        "1,5",
    ],
    ids=repr,
)
def test_a_bad_amount_is_422_invalid_amount_and_changes_nothing(t: Tenant, amount: Any) -> None:
    response = t.client("staff").post(f"/v1/orgs/{t.org}/grants", json={"amount": amount})
    problem(response, 422, "invalid_amount")
    assert t.pool.grants(t.org) == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/v1/orgs/{org}/consumptions", {"json": {"feature": "report", "user": "u"}}),
        (
            "POST",
            "/v1/orgs/{org}/consumptions",
            {"json": {"feature": "report", "user_id": "u-1", "colour": 1}},
        ),
        ("POST", "/v1/orgs/{org}/consumptions", {"content": b'{"feature": "report",'}),
        ("POST", "/v1/orgs/{org}/consumptions", {"content": b"\xff\xfe\x00"}),
        ("POST", "/v1/orgs/{org}/consumptions", {"json": ["a", "list"]}),
        (
            "POST",
            "/v1/orgs/{org}/consumptions",
            {"json": {"feature": "report", "user_id": "u-1", "dry_run": 0}},
        ),
        (
            "POST",
            "/v1/orgs/{org}/consumptions",
            {"json": {"feature": "report", "user_id": "u-1", "requests": "5"}},
        ),
        ("GET", "/v1/orgs/{org}/usage/teams?month=2026-13", {}),
        ("GET", "/v1/orgs/{org}/usage/teams?month=November", {}),
        ("GET", "/v1/orgs/{org}/balance?at=2026-11-02T09:00:00", {}),
        ("GET", "/v1/orgs/{org}/balance?at=0.5", {}),
        ("GET", "/v1/orgs/{org}/consumptions?from=yesterday", {}),
        ("GET", "/v1/orgs/{org}/consumptions?status=lost", {}),
        ("PATCH", "/v1/orgs/{org}", {"json": {"timezone": "Mars/Olympus"}}),
    ],
    ids=[
        "missing field",
        "unknown field",
        "malformed json",
        "not utf-8",
        "not an object",
        "number as boolean",
        "string as count",
        "bad month",
        "month name",
        "naive datetime",
        "epoch number",
        "not a datetime",
        "unknown status",
        "unknown time zone",
    ],
)
def test_bad_input_is_422_invalid_input(
    t: Tenant, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    headers = {"Content-Type": "application/json"} if "content" in kwargs else {}
    response = t.client().request(method, path.format(org=t.org), headers=headers, **kwargs)
    problem(response, 422, "invalid_input")


# -- limits -----------------------------------------------------------------------------

LONG_ID = "x" * 65


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        ("service", "GET", "/v1/orgs?limit=501", None),
        ("service", "GET", "/v1/orgs/{org}/consumptions?limit=501", None),
        ("service", "GET", "/v1/orgs/{org}/ledger?limit=0", None),
        ("service", "GET", f"/v1/orgs/{LONG_ID}", None),
        ("service", "GET", f"/v1/orgs/{{org}}/members/{LONG_ID}", None),
        ("service", "POST", "/v1/orgs", {"id": LONG_ID}),
        ("service", "POST", "/v1/orgs", {"id": "ok", "name": "n" * 201}),
        (
            "service",
            "POST",
            "/v1/orgs/{org}/consumptions",
            {"feature": "report", "user_id": LONG_ID},
        ),
        (
            "service",
            "POST",
            "/v1/orgs/{org}/consumptions",
            {"feature": "report", "user_id": "u", "requests": -1},
        ),
        (
            "service",
            "POST",
            "/v1/orgs/{org}/consumptions",
            {"feature": "report", "user_id": "u", "breakdown": {str(i): 1 for i in range(33)}},
        ),
        ("staff", "POST", "/v1/orgs/{org}/grants", {"amount": "1", "note": "n" * 2001}),
        ("service", "GET", f"/v1/orgs?search={'s' * 201}", None),
    ],
    ids=[
        "page size over max",
        "consumptions page size",
        "page size zero",
        "long org id in path",
        "long user id in path",
        "long org id in body",
        "long name",
        "long user id in body",
        "negative request count",
        "too many breakdown keys",
        "long note",
        "long search",
    ],
)
def test_input_over_a_limit_is_422(
    t: Tenant, role: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = t.client(role).request(method, path.format(org=t.org), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"invalid_input", "invalid_amount"}


def test_an_overlong_idempotency_key_is_422(t: Tenant) -> None:
    t.pool.grant(t.org, "5")
    problem(consume(t.client(), t, key="k" * 256), 422, "invalid_input")
    assert money(t)[2] == 5


DEEP: Any = []
for _ in range(40):
    DEEP = [DEEP]
NASTY_PATHS = [
    "/v1/orgs/%00",
    "/v1/orgs/a%0Ab",
    "/v1/orgs/%E2%80%AE%F0%9F%92%A5",
    "/v1/orgs/%FF%FE",
    "/v1/orgs/..%2F..%2Fetc",
    "/v1/orgs/{org}/grants/99999999999999999999999999999999",
    "/v1/orgs/{org}/grants/-1",
    "/v1/orgs/{org}/grants/0",
    "/v1/orgs/{org}/grants/1e3",
    "/v1/orgs/{org}/grants/NaN",
    "/v1/orgs/{org}/consumptions?cursor=99999999999999999999999999",
    "/v1/orgs/{org}/ledger?cursor=-5",
    "/v1/orgs/{org}/consumptions?from=9999-12-31T23:59:59%2B14:00",
    "/v1/orgs/{org}/balance?at=0001-01-01T00:00:00-14:00",
    "/v1/orgs/{org}/consumptions?feature=%00&user=%F0%9F%92%A5",
    "/v1/orgs?cursor=%00",
    "/v1/features/%00",
]


def test_no_input_ever_yields_a_5xx(t: Tenant) -> None:
    service, staff = t.client(), t.client("staff")
    failures: list[str] = []
    for path in NASTY_PATHS:
        for response in (service.get(path.format(org=t.org)),):
            if response.status_code >= 500:
                failures.append(f"GET {path}: {response.status_code} {response.text[:200]}")
    nasty_bodies: list[tuple[httpx.Client, str, Any]] = [
        (service, "/v1/orgs", {"id": "a\x00b"}),
        (service, "/v1/orgs", {"id": "\u202e\U0001f4a5"}),
        (service, "/v1/orgs", {"id": "tz", "timezone": "../../etc/passwd"}),
        (service, "/v1/orgs/{org}/consumptions", {"feature": "\x00", "user_id": "\n"}),
        (
            service,
            "/v1/orgs/{org}/consumptions",
            {"feature": "report", "user_id": "u", "metadata": {"a": DEEP}},
        ),
        (
            service,
            "/v1/orgs/{org}/consumptions",
            {"feature": "topic_detection", "user_id": "u", "quantity": "99999999999"},
        ),
        (
            service,
            "/v1/orgs/{org}/consumptions",
            {"feature": "report", "user_id": "u", "requests": 10**100},
        ),
        (staff, "/v1/orgs/{org}/grants", {"amount": "1", "expires_at": "0001-01-01T00:00:00Z"}),
        (
            staff,
            "/v1/orgs/{org}/grants",
            {"amount": "1", "expires_at": "9999-12-31T23:59:59+14:00"},
        ),
        (
            staff,
            "/v1/orgs/{org}/grants",
            {
                "amount": "1",
                "available_from": "2026-01-01T00:00:00Z",
                "expires_at": "2025-01-01T00:00:00Z",
            },
        ),
        (staff, "/v1/orgs/{org}/grants", {"amount": 10**400}),
        (staff, "/v1/orgs/{org}/grants", {"amount": 1e308}),
        (staff, "/v1/orgs/{org}/grants", {"amount": True}),
        (service, "/v1/orgs/{org}/consumptions", None),
        (service, "/v1/orgs/{org}/consumptions", "just a string"),
    ]
    for client, path, body in nasty_bodies:
        response = client.post(path.format(org=t.org), json=body)
        if response.status_code >= 500:
            failures.append(f"POST {path} {body!r}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM
    assert failures == []
    assert t.server.process.poll() is None


# -- idempotent replay ------------------------------------------------------------------


def test_a_replay_returns_the_first_answer_and_charges_once(t: Tenant) -> None:
    t.pool.grant(t.org, "5")
    service = t.client()
    first = consume(service, t, key="order-1")
    again = consume(service, t, key="order-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert money(t)[2] == Decimal("4.50")
    assert len(t.pool.consumptions(t.org)) == 1


def test_a_replayed_grant_and_refund_are_applied_once(t: Tenant) -> None:
    staff, service = t.client("staff"), t.client()
    key = {"Idempotency-Key": "grant-1"}
    grants = [
        staff.post(f"/v1/orgs/{t.org}/grants", json={"amount": "3"}, headers=key) for _ in range(2)
    ]
    assert grants[0].json() == grants[1].json()
    used = consume(service, t).json()
    path = f"/v1/orgs/{t.org}/consumptions/{used['id']}/refund"
    refunds = [service.post(path, json={}, headers={"Idempotency-Key": "r-1"}) for _ in range(2)]
    assert refunds[0].status_code == refunds[1].status_code == 200
    assert refunds[0].json() == refunds[1].json()
    assert money(t)[2] == 3


def test_the_same_key_with_another_body_is_409_idempotency_conflict(t: Tenant) -> None:
    t.pool.grant(t.org, "5")
    service = t.client()
    assert consume(service, t, key="order-2").status_code == 201
    body = problem(consume(service, t, key="order-2", user_id="u-2"), 409, "idempotency_conflict")
    assert "order-2" in body["detail"]
    assert money(t)[2] == Decimal("4.50")


def test_idempotency_keys_are_scoped_to_the_api_key(t: Tenant) -> None:
    t.pool.grant(t.org, "5")
    _, second_key = t.pool.create_key("service", name="another backend")
    one = consume(t.client(), t, key="shared-key")
    other = consume(t.client(None, Authorization=f"Bearer {second_key}"), t, key="shared-key")
    assert one.status_code == other.status_code == 201
    assert one.json()["id"] != other.json()["id"]
    assert "idempotent-replayed" not in other.headers
    assert money(t)[2] == 4


def test_a_refused_request_is_not_remembered_and_its_retry_runs_anew(t: Tenant) -> None:
    service = t.client()
    problem(consume(service, t, key="order-3"), 402, "insufficient_credits")
    t.pool.grant(t.org, "1")
    retried = consume(service, t, key="order-3")
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert money(t)[2] == Decimal("0.50")


def test_a_dry_run_is_answered_200_and_charges_nothing(t: Tenant) -> None:
    t.pool.grant(t.org, "1")
    response = consume(t.client(), t, dry_run=True)
    assert response.status_code == 200
    assert Decimal(response.json()["cost"]) == Decimal("0.50")
    assert money(t)[2] == 1
