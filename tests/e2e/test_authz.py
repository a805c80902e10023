"""Who may do what, route by route, against a real server.

``EXPECTED`` is the whole authorization table: every operation of the OpenAPI document and,
per role, whether it is allowed. The walk calls every operation with a key of every role, with
keys of another organization, with no key and with bad keys, and checks each answer. A route
added to the API without a line here fails the test, and so does a line for a route that is
gone.

One server process per module and backend (starting one takes seconds); each test gets its own
pair of organizations and keys of every role on it, so tests stay independent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from creditpool.http.routing import AuthorizedRoute, guards_of
from creditpool.server.app import create_app
from tests.e2e.conftest import Server
from tests.e2e.tenants import Tenant, money, new_tenant

ROLES = ("service", "staff", "admin", "member")
FOREIGN = ("other_admin", "other_member")  # keys of globex, asking about acme
MISSING_ORG = "no-such-org"

OK = "ok"  # a 2xx
NO = "forbidden"  # 403
PUBLIC = "public"  # no key needed

# (method, path) -> the answer for service, staff, admin, member.
EXPECTED: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ("POST", "/v1/orgs"): (OK, OK, NO, NO),
    ("GET", "/v1/orgs"): (OK, OK, NO, NO),
    ("GET", "/v1/orgs/{org}"): (OK, OK, OK, NO),
    ("PATCH", "/v1/orgs/{org}"): (OK, OK, OK, NO),  # thresholds only: see BODIES
    ("POST", "/v1/orgs/{org}/teams"): (OK, NO, NO, NO),
    ("GET", "/v1/orgs/{org}/teams"): (OK, OK, OK, NO),
    ("PATCH", "/v1/orgs/{org}/teams/{team}"): (OK, NO, OK, NO),  # monthly limit only
    ("PUT", "/v1/orgs/{org}/members/{user}"): (OK, NO, NO, NO),
    ("GET", "/v1/orgs/{org}/members/{user}"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/members"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/usage/teams"): (OK, OK, OK, NO),
    ("GET", "/v1/features"): (OK, OK, OK, OK),
    ("PUT", "/v1/features/{key}"): (OK, OK, NO, NO),
    ("GET", "/v1/features/{key}/prices"): (OK, OK, OK, OK),
    ("POST", "/v1/orgs/{org}/grants"): (NO, OK, NO, NO),
    ("GET", "/v1/orgs/{org}/grants"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/grants/{grant_id}"): (OK, OK, OK, NO),
    ("POST", "/v1/orgs/{org}/grants/{grant_id}/void"): (NO, OK, NO, NO),
    # Staff corrections are staff's; who corrected what is read like the ledger.
    ("PATCH", "/v1/orgs/{org}/grants/{grant_id}"): (NO, OK, NO, NO),
    ("POST", "/v1/orgs/{org}/adjustments"): (NO, OK, NO, NO),
    ("GET", "/v1/orgs/{org}/adjustments/{adjustment_id}"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/corrections"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/audit"): (OK, OK, NO, NO),
    ("POST", "/v1/orgs/{org}/consumptions"): (OK, NO, NO, NO),
    ("GET", "/v1/orgs/{org}/consumptions"): (OK, OK, OK, OK),  # a member: its own
    ("GET", "/v1/orgs/{org}/consumptions/{consumption_id}"): (OK, OK, OK, OK),
    ("POST", "/v1/orgs/{org}/consumptions/{consumption_id}/refund"): (OK, OK, NO, NO),
    # Holds: the vendor's backend reserves and settles; staff and admins read them as they
    # read every consumption; a member sees only their effect on the balance (held).
    ("POST", "/v1/orgs/{org}/holds"): (OK, NO, NO, NO),
    ("GET", "/v1/orgs/{org}/holds"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/holds/{hold_id}"): (OK, OK, OK, NO),
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/settle"): (OK, NO, NO, NO),
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/release"): (OK, NO, NO, NO),
    ("GET", "/v1/orgs/{org}/balance"): (OK, OK, OK, OK),
    ("GET", "/v1/orgs/{org}/forecast"): (OK, OK, OK, OK),  # teams: null for a member
    ("GET", "/v1/orgs/{org}/ledger"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/events"): (OK, OK, OK, OK),  # every user sees balance changes
    ("GET", "/v1/orgs/{org}/reports/usage"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/reports/balance"): (OK, OK, OK, NO),
    ("GET", "/v1/orgs/{org}/reports/purchases"): (OK, OK, OK, NO),
    ("POST", "/v1/portal-sessions"): (OK, OK, NO, NO),
    # An organization's admin and member keys: staff (and the vendor's backend) manage them.
    ("POST", "/v1/orgs/{org}/keys"): (OK, OK, NO, NO),
    ("GET", "/v1/orgs/{org}/keys"): (OK, OK, NO, NO),
    ("POST", "/v1/orgs/{org}/keys/{key_id}/revoke"): (OK, OK, NO, NO),
    # Events and webhooks: endpoints are the vendor backend's, staff inspect them; an
    # organization's admin reads its event log and asks for credits, staff answer.
    ("GET", "/v1/orgs/{org}/event-log"): (OK, OK, OK, NO),
    ("POST", "/v1/orgs/{org}/credit-requests"): (OK, NO, OK, NO),
    ("GET", "/v1/orgs/{org}/credit-requests"): (OK, OK, OK, NO),
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/grant"): (NO, OK, NO, NO),
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/dismiss"): (NO, OK, NO, NO),
    ("POST", "/v1/webhook-endpoints"): (OK, NO, NO, NO),
    ("GET", "/v1/webhook-endpoints"): (OK, OK, NO, NO),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}"): (OK, OK, NO, NO),
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): (OK, NO, NO, NO),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): (OK, NO, NO, NO),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): (OK, OK, NO, NO),
    ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}"): (OK, OK, NO, NO),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry"): (
        OK,
        NO,
        NO,
        NO,
    ),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/test"): (OK, NO, NO, NO),
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): (OK, NO, NO, NO),  # last: it is gone
    ("GET", "/healthz"): (PUBLIC, PUBLIC, PUBLIC, PUBLIC),
    ("GET", "/readyz"): (PUBLIC, PUBLIC, PUBLIC, PUBLIC),
}


@pytest.fixture
def tenant(shared: Server) -> Iterator[Tenant]:
    with new_tenant(shared) as fresh:
        yield fresh


def same_answer(a: httpx.Response, a_id: object, b: httpx.Response, b_id: object) -> bool:
    """Two answers are the same but for the id each names (status, headers that matter and
    every field of the body)."""

    def blanked(response: httpx.Response, value: object) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        pattern = rf"(?<![\w-]){re.escape(str(value))}(?![\w-])"
        body["detail"] = re.sub(pattern, "<id>", body["detail"])
        return body

    return (
        a.status_code == b.status_code
        and a.headers["content-type"] == b.headers["content-type"]
        and blanked(a, a_id) == blanked(b, b_id)
    )


@dataclass
class Objects:
    """Objects of the tenant's organization that the calls name."""

    grant_id: int
    void_grant_id: int
    own_consumption_id: int  # by u-1, the member key's user
    other_consumption_id: int  # by u-2
    refund_consumption_id: int
    hold_id: int  # read
    settle_hold_id: int
    release_hold_id: int
    endpoint_id: str = ""  # disabled: nothing is sent
    delivery_id: int = 0
    grant_request_id: int = 0
    dismiss_request_id: int = 0
    key_id: str = ""  # an admin key of the organization, revoked by the walk
    adjustment_id: int = 0


# (method, path) -> the request body, a function of the tenant and the role (creations by
# several roles must not collide).
BODIES: dict[tuple[str, str], Callable[[Tenant, str], dict[str, Any]]] = {
    ("POST", "/v1/orgs"): lambda t, role: {"id": f"{t.org}-{role}", "name": "New Org"},
    ("PATCH", "/v1/orgs/{org}"): lambda t, _: {"low_balance_thresholds": ["10.00", "5"]},
    ("POST", "/v1/orgs/{org}/teams"): lambda t, role: {"id": f"team-{role}", "monthly_limit": "2"},
    ("PATCH", "/v1/orgs/{org}/teams/{team}"): lambda t, _: {"monthly_limit": "50.00"},
    ("PUT", "/v1/orgs/{org}/members/{user}"): lambda t, _: {"team_id": "t-1"},
    ("PUT", "/v1/features/{key}"): lambda t, _: {"name": "Custom", "cost": "1.25"},
    ("POST", "/v1/orgs/{org}/grants"): lambda t, role: {"amount": "5", "note": f"by {role}"},
    ("POST", "/v1/orgs/{org}/grants/{grant_id}/void"): lambda t, _: {"reason": "mistake"},
    ("PATCH", "/v1/orgs/{org}/grants/{grant_id}"): lambda t, _: {
        "expires_at": "2099-01-01T00:00:00Z",
        "reason": "renewal",
    },
    ("POST", "/v1/orgs/{org}/adjustments"): lambda t, _: {"credits": "-0.01", "reason": "x"},
    ("POST", "/v1/orgs/{org}/consumptions"): lambda t, _: {"feature": "report", "user_id": "u-1"},
    ("POST", "/v1/orgs/{org}/consumptions/{consumption_id}/refund"): lambda t, _: {"reason": "x"},
    ("POST", "/v1/orgs/{org}/keys"): lambda t, role: {"role": "admin", "name": f"by {role}"},
    ("POST", "/v1/orgs/{org}/keys/{key_id}/revoke"): lambda t, _: {},
    ("POST", "/v1/orgs/{org}/holds"): lambda t, _: {
        "feature": "report",
        "user_id": "u-1",
        "amount": "1",
    },
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/settle"): lambda t, _: {"cost": "0.75"},
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/release"): lambda t, _: {},
    ("POST", "/v1/portal-sessions"): lambda t, _: {
        "org_id": t.org,
        "user_id": "u-1",
        "role": "member",
    },
    ("POST", "/v1/orgs/{org}/credit-requests"): lambda t, role: {"amount": "5", "message": role},
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/grant"): lambda t, _: {"note": "ok"},
    ("POST", "/v1/webhook-endpoints"): lambda t, role: {
        "url": f"https://hooks.example.com/{role}",
        "enabled": False,
    },
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): lambda t, role: {"description": role},
}


def seed(t: Tenant) -> Objects:
    """103 credits in two grants, a team t-1 with u-1 and u-2, three uses of 0.50, three
    open holds of 1; the feature ``custom`` the feature paths name (whichever test runs
    first: no test may count on another's PUT having made it)."""
    pool = t.pool
    pool.set_feature("custom", cost="1", changed_by="setup")
    grant = pool.grant(t.org, "100", granted_by="setup")
    to_void = pool.grant(t.org, "3", granted_by="setup")
    pool.create_team(t.org, "t-1", name="Team One", monthly_limit="100")
    pool.set_member(t.org, "u-1", team_id="t-1")
    pool.set_member(t.org, "u-2", team_id="t-1")
    own = pool.consume(t.org, "report", user_id="u-1")
    other = pool.consume(t.org, "report", user_id="u-2")
    to_refund = pool.consume(t.org, "action_plan", user_id="u-1")
    holds = [pool.hold(t.org, "report", user_id="u-1", amount="1") for _ in range(3)]
    pool.grant(t.other, "10", granted_by="setup")
    assert own.id is not None
    assert other.id is not None
    assert to_refund.id is not None
    ids = [h.id for h in holds]
    endpoint = pool.create_webhook_endpoint("https://hooks.example.com/authz", enabled=False)
    delivery = pool.test_webhook_endpoint(endpoint.id)
    to_grant, to_dismiss = (
        pool.request_credits(t.org, "5", requested_by="setup") for _ in range(2)
    )
    return Objects(
        grant.id,
        to_void.id,
        own.id,
        other.id,
        to_refund.id,
        *ids,
        endpoint_id=endpoint.id,
        delivery_id=delivery.id,
        grant_request_id=to_grant.id,
        dismiss_request_id=to_dismiss.id,
        key_id=pool.create_key("admin", org_id=t.org, name="to revoke")[0].id,
        adjustment_id=_net_zero_adjustment(pool, t.org),
    )


def _net_zero_adjustment(pool: Any, org: str) -> int:
    """An adjustment to read, undone at once: the balance the tests read is unchanged."""
    debit = pool.adjust(org, "-0.01", reason="setup", by="setup")
    pool.adjust(org, "0.01", reason="undo", by="setup")
    return int(debit.id)


def url(path: str, objects: Objects, org: str) -> str:
    values = {
        "org": org,
        "team": "t-1",
        "user": "u-1",
        "key": "custom",
        "grant_id": objects.grant_id,
        "consumption_id": objects.own_consumption_id,
        "hold_id": objects.hold_id,
        "endpoint_id": objects.endpoint_id,
        "delivery_id": objects.delivery_id,
        "request_id": objects.grant_request_id,
        "key_id": objects.key_id,
        "adjustment_id": objects.adjustment_id,
    }
    if path.endswith("/dismiss"):
        values["request_id"] = objects.dismiss_request_id
    if path.endswith("/void"):
        values["grant_id"] = objects.void_grant_id
    if path.endswith("/refund"):
        values["consumption_id"] = objects.refund_consumption_id
    if path.endswith("/settle"):
        values["hold_id"] = objects.settle_hold_id
    if path.endswith("/release"):
        values["hold_id"] = objects.release_hold_id
    return path.format(**values)


def call(
    t: Tenant,
    client: httpx.Client,
    operation: tuple[str, str],
    role: str,
    objects: Objects,
    org: str | None = None,
) -> httpx.Response:
    method, path = operation
    body = BODIES.get(operation)
    if path.endswith("/events"):  # a stream: its status and headers, not its long body
        with client.stream(method, url(path, objects, org or t.org)) as response:
            if response.status_code >= 300:
                response.read()
        return response
    return client.request(
        method,
        url(path, objects, org or t.org),
        json=body(t, role) if body is not None else None,
    )


def operations(server: Server) -> set[tuple[str, str]]:
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
    }


def test_the_table_names_every_operation_of_the_openapi_document_and_no_other(
    shared: Server,
) -> None:
    served = operations(shared)
    assert served - EXPECTED.keys() == set(), "routes without an authorization expectation"
    assert EXPECTED.keys() - served == set(), "expectations for routes that no longer exist"
    assert BODIES.keys() <= EXPECTED.keys()


def test_every_operation_answers_each_role_as_the_table_says(tenant: Tenant) -> None:
    objects = seed(tenant)
    failures: list[str] = []
    for operation, expected in EXPECTED.items():
        for role, outcome in zip(ROLES, expected, strict=True):
            response = call(tenant, tenant.client(role), operation, role, objects)
            status, label = response.status_code, f"{role} {' '.join(operation)}"
            if outcome in (OK, PUBLIC) and not 200 <= status < 300:
                failures.append(f"{label}: {status} {response.text[:200]}")
            if outcome == NO and (status != 403 or response.json()["code"] != "forbidden"):
                failures.append(f"{label}: {status}, expected 403")
    assert failures == []


def test_keys_of_another_organization_get_the_same_404_as_for_a_missing_organization(
    tenant: Tenant,
) -> None:
    objects = seed(tenant)
    failures: list[str] = []
    for operation in EXPECTED:
        if "{org}" not in operation[1]:
            continue
        for role in FOREIGN:
            client = tenant.client(role)
            foreign = call(tenant, client, operation, role, objects)
            missing = call(tenant, client, operation, role, objects, org=MISSING_ORG)
            label = f"{role} {' '.join(operation)}"
            if foreign.status_code != 404 or foreign.json()["code"] != "not_found":
                failures.append(f"{label}: {foreign.status_code}, expected 404")
            elif not same_answer(foreign, tenant.org, missing, MISSING_ORG):
                failures.append(f"{label}: leaks existence: {foreign.text} vs {missing.text}")
    assert failures == []
    # And it is the answer a permitted key gets for an organization that does not exist.
    truly_missing = tenant.client("service").get(f"/v1/orgs/{MISSING_ORG}")
    foreign = tenant.client("other_admin").get(f"/v1/orgs/{tenant.org}")
    assert same_answer(truly_missing, MISSING_ORG, foreign, tenant.org)


def test_keys_of_another_organization_follow_their_role_outside_organizations(
    tenant: Tenant,
) -> None:
    objects = seed(tenant)
    for operation, expected in EXPECTED.items():
        if "{org}" in operation[1]:
            continue
        for role, own_role in zip(FOREIGN, ("admin", "member"), strict=True):
            response = call(tenant, tenant.client(role), operation, role, objects)
            if expected[ROLES.index(own_role)] == NO:
                assert response.status_code == 403, f"{role} {operation}"
            else:
                assert 200 <= response.status_code < 300, f"{role} {operation}"


BAD_AUTHORIZATIONS = {
    "no key": None,
    "unknown key": "Bearer cpk_0123456789abcdef_nope",
    "empty key": "Bearer",
    "basic auth": "Basic dXNlcjpwYXNz",
    "no scheme": "cpk_0123456789abcdef_nope",
}


def test_every_operation_refuses_a_missing_or_bad_key_with_401(tenant: Tenant) -> None:
    objects = seed(tenant)
    before = money(tenant)
    failures: list[str] = []
    for name, authorization in BAD_AUTHORIZATIONS.items():
        headers = {"Authorization": authorization} if authorization is not None else {}
        client = tenant.client(None, **headers)
        for operation, expected in EXPECTED.items():
            response = call(tenant, client, operation, "anonymous", objects)
            label = f"{name}: {' '.join(operation)}"
            if expected[0] == PUBLIC:
                if response.status_code != 200:
                    failures.append(f"{label}: {response.status_code}, expected 200")
            elif response.status_code != 401 or response.json()["code"] != "unauthorized":
                failures.append(f"{label}: {response.status_code}, expected 401")
            elif response.headers.get("www-authenticate") != "Bearer":
                failures.append(f"{label}: no WWW-Authenticate: Bearer")
    assert failures == []
    assert money(tenant) == before


def test_a_revoked_key_is_refused(tenant: Tenant) -> None:
    key, token = tenant.pool.create_key("service", name="revoked")
    tenant.pool.revoke_key(key.id)
    response = tenant.client(None, Authorization=f"Bearer {token}").get("/v1/features")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_a_member_sees_only_its_own_consumptions(tenant: Tenant) -> None:
    objects = seed(tenant)
    member, base = tenant.client("member"), f"/v1/orgs/{tenant.org}/consumptions"
    listed = member.get(base).json()["data"]
    assert {c["user_id"] for c in listed} == {"u-1"}
    assert len(listed) == 2
    filtered = member.get(base, params={"user": "u-2"}).json()["data"]
    assert {c["user_id"] for c in filtered} == {"u-1"}
    own = member.get(f"{base}/{objects.own_consumption_id}")
    assert own.status_code == 200
    assert own.json()["user_id"] == "u-1"
    # Another user's consumption answers exactly like one that does not exist.
    theirs = member.get(f"{base}/{objects.other_consumption_id}")
    missing_id = objects.refund_consumption_id + 10_000
    missing = member.get(f"{base}/{missing_id}")
    assert theirs.status_code == 404
    assert same_answer(theirs, objects.other_consumption_id, missing, missing_id)
    # Every other role of the organization sees everyone's.
    for role in ("admin", "service", "staff"):
        items = tenant.client(role).get(base).json()["data"]
        assert {c["user_id"] for c in items} == {"u-1", "u-2"}


def test_a_member_reads_balance_and_features_and_nothing_else_of_its_org(
    tenant: Tenant,
) -> None:
    seed(tenant)
    member = tenant.client("member")
    seen = member.get(f"/v1/orgs/{tenant.org}/balance").json()
    assert (seen["left"], Decimal(seen["held"])) == ("98.50", 3)
    assert member.get("/v1/features").status_code == 200
    for path in ("", "/grants", "/ledger", "/teams", "/members", "/usage/teams", "/holds"):
        assert member.get(f"/v1/orgs/{tenant.org}{path}").status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Renamed"},
        {"timezone": "UTC"},
        {"name": "Renamed", "low_balance_thresholds": ["1"]},
        {"timezone": "UTC", "low_balance_thresholds": ["1"]},
    ],
    ids=["name", "timezone", "name and thresholds", "timezone and thresholds"],
)
def test_an_admin_may_not_rename_its_org_or_change_its_time_zone(
    tenant: Tenant, body: dict[str, Any]
) -> None:
    response = tenant.client("admin").patch(f"/v1/orgs/{tenant.org}", json=body)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    org = tenant.pool.org(tenant.org)
    assert (org.name, org.timezone, org.low_balance_thresholds) == (
        "Acme Inc.",
        "Europe/Berlin",
        (),
    )


def test_an_admin_sets_thresholds_and_team_limits_but_not_team_names(tenant: Tenant) -> None:
    seed(tenant)
    admin = tenant.client("admin")
    patched = admin.patch(f"/v1/orgs/{tenant.org}", json={"low_balance_thresholds": ["7.5"]})
    assert patched.status_code == 200
    assert tenant.pool.org(tenant.org).low_balance_thresholds == (Decimal("7.5"),)
    team = f"/v1/orgs/{tenant.org}/teams/t-1"
    assert admin.patch(team, json={"monthly_limit": "42"}).status_code == 200
    assert tenant.pool.team(tenant.org, "t-1").monthly_limit == Decimal(42)
    renamed = admin.patch(team, json={"name": "X", "monthly_limit": "1"})
    assert renamed.status_code == 403
    unchanged = tenant.pool.team(tenant.org, "t-1")
    assert (unchanged.name, unchanged.monthly_limit) == ("Team One", Decimal(42))


def test_a_grant_records_the_staff_key_name_and_staff_may_not_consume_hold_or_manage_teams(
    tenant: Tenant,
) -> None:
    objects = seed(tenant)
    staff, org = tenant.client("staff"), f"/v1/orgs/{tenant.org}"
    granted = staff.post(f"/v1/orgs/{tenant.other}/grants", json={"amount": "2.5"})
    assert granted.status_code == 201
    assert granted.json()["granted_by"] == "cs@vendor.example"
    consume = staff.post(f"{org}/consumptions", json={"feature": "report", "user_id": "x"})
    assert consume.status_code == 403
    hold = staff.post(f"{org}/holds", json={"feature": "report", "user_id": "x"})
    assert hold.status_code == 403
    assert staff.post(f"{org}/teams", json={"id": "t-s"}).status_code == 403
    assert staff.put(f"{org}/members/u-9", json={}).status_code == 403
    # The console's corrections that are not ledger changes are staff's too.
    refund = staff.post(f"{org}/consumptions/{objects.own_consumption_id}/refund", json={})
    assert refund.status_code == 200
    assert staff.post("/v1/orgs", json={"id": f"{tenant.org}-s"}).status_code == 201


def test_refused_calls_change_nothing(tenant: Tenant) -> None:
    objects = seed(tenant)
    org = f"/v1/orgs/{tenant.org}"
    before = money(tenant)
    entries = tenant.pool.ledger(tenant.org, limit=500)
    for role in ("admin", "member", "other_admin", "other_member", "service"):
        client = tenant.client(role)
        client.post(f"{org}/grants", json={"amount": "1000"})
        client.post(f"{org}/grants/{objects.grant_id}/void", json={})
        if role != "service":
            client.post(f"{org}/consumptions", json={"feature": "report", "user_id": "u-1"})
            client.post(f"{org}/consumptions/{objects.own_consumption_id}/refund", json={})
            client.post(f"{org}/holds", json={"feature": "report", "user_id": "u-1"})
            client.post(f"{org}/holds/{objects.settle_hold_id}/settle", json={"cost": "0.5"})
            client.post(f"{org}/holds/{objects.release_hold_id}/release", json={})
    assert money(tenant) == before
    assert tenant.pool.ledger(tenant.org, limit=500) == entries
    assert tenant.pool.grant_info(tenant.org, objects.grant_id).voided_at is None
    assert [h.status.value for h in tenant.pool.holds(tenant.org)] == ["open"] * 3


# Bodies no route accepts: the answer must still say who may call, never what is wrong with
# the body (that would tell a caller without the right about the route's input).
MALFORMED_BODIES: dict[str, bytes] = {
    "not json": b'{"id": ',
    "wrong types": b'{"id": 5, "amount": 1.5, "feature": [], "reason": {"a": 1}}',
    "duplicate keys": b'{"reason": "a", "reason": "b"}',
    "not an object": b'["a", "list"]',
    "lone surrogate": b'{"reason": "\\ud800", "metadata": {"\\ud800": 1}}',
    "not utf-8": b"\xff\xfe{",
}
MUTATING = [op for op in EXPECTED if op[0] in {"POST", "PUT", "PATCH", "DELETE"}]


def send_raw(
    t: Tenant, client: httpx.Client, operation: tuple[str, str], objects: Objects, body: bytes
) -> httpx.Response:
    method, path = operation
    headers = {"Content-Type": "application/json", "Idempotency-Key": "k" * 300}
    return client.request(method, url(path, objects, t.org), content=body, headers=headers)


def test_a_forbidden_key_gets_403_before_its_body_is_looked_at(tenant: Tenant) -> None:
    objects = seed(tenant)
    before = money(tenant)
    clients = {role: tenant.client(role) for role in ROLES}
    failures: list[str] = []
    for operation in MUTATING:
        for role, outcome in zip(ROLES, EXPECTED[operation], strict=True):
            if outcome != NO:
                continue
            for name, body in MALFORMED_BODIES.items():
                response = send_raw(tenant, clients[role], operation, objects, body)
                if response.status_code != 403 or response.json()["code"] != "forbidden":
                    label = f"{role} {' '.join(operation)} with {name}"
                    failures.append(f"{label}: {response.status_code} {response.text[:120]}")
    assert failures == []
    assert money(tenant) == before


def test_a_key_of_another_organization_gets_404_before_its_body_is_looked_at(
    tenant: Tenant,
) -> None:
    objects = seed(tenant)
    clients = {role: tenant.client(role) for role in FOREIGN}
    failures: list[str] = []
    for operation in MUTATING:
        if "{org}" not in operation[1]:
            continue
        for role in FOREIGN:
            for name, body in MALFORMED_BODIES.items():
                response = send_raw(tenant, clients[role], operation, objects, body)
                if response.status_code != 404 or response.json()["code"] != "not_found":
                    label = f"{role} {' '.join(operation)} with {name}"
                    failures.append(f"{label}: {response.status_code} {response.text[:120]}")
    assert failures == []


def test_a_missing_key_gets_401_before_its_body_is_looked_at(tenant: Tenant) -> None:
    objects = seed(tenant)
    anonymous = tenant.client(None)
    failures: list[str] = []
    for operation in MUTATING:
        for name, body in MALFORMED_BODIES.items():
            response = send_raw(tenant, anonymous, operation, objects, body)
            if response.status_code != 401:
                label = f"{' '.join(operation)} with {name}"
                failures.append(f"{label}: {response.status_code} {response.text[:120]}")
    assert failures == []


def test_a_forbidden_key_gets_403_before_its_query_is_looked_at(tenant: Tenant) -> None:
    member = tenant.client("member")
    for path in (
        "/ledger?limit=0",
        "/grants/1.0",
        "/usage/teams?month=13",
        "/reports/usage?from=x",
    ):
        response = member.get(f"/v1/orgs/{tenant.org}{path}")
        assert response.status_code == 403, f"{path}: {response.text}"


def test_every_api_route_declares_the_action_it_needs(shared: Server) -> None:
    """Authorization is declared per route (a ``Allowed`` dependency), so that the route
    class can check it before the body is read; a new route without one fails here."""
    app = create_app(shared.pool)
    routes = [
        (context.path, context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.path.startswith("/v1/")
    ]
    assert len(routes) == len([op for op in EXPECTED if op[1].startswith("/v1/")])
    missing = [
        f"{sorted(route.methods)} {path}"
        for path, route in routes
        if not isinstance(route, AuthorizedRoute) or not guards_of(route)
    ]
    assert missing == []
