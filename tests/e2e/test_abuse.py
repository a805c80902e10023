"""An abuse corpus through every mutating route of the API, against a real server: never a
5xx, nothing changed by a refusal, and nothing accepted that the reads cannot write back.

The routes come from the application itself, so a new route is covered (or fails here for
want of a base body); the fields come from each route's documented body, so a new field gets
every nasty value too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from creditpool.server.app import create_app
from creditpool.storage import tables
from tests.e2e.conftest import Server
from tests.e2e.tenants import Tenant

LONE, LOW = "\ud800", "\udfff"
MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Seeded:
    grant_id: int
    consumption_id: int
    hold_id: int
    endpoint_id: str
    delivery_id: int
    request_id: int
    key_id: str


def seed(t: Tenant) -> Seeded:
    pool = t.pool
    grant = pool.grant(t.org, "100", granted_by="setup")
    pool.grant(t.org, "5", granted_by="setup")
    pool.create_team(t.org, "t-1", name="Team One", monthly_limit="10")
    pool.set_member(t.org, "u-1", team_id="t-1")
    used = pool.consume(t.org, "report", user_id="u-1", metadata={"ok": [1, {"a": "b"}]})
    assert used.id is not None
    held = pool.hold(t.org, "report", user_id="u-1", amount="1", ttl_s=3600)
    endpoint = pool.create_webhook_endpoint("https://hooks.example.com/abuse", enabled=False)
    delivery = pool.test_webhook_endpoint(endpoint.id)
    asked = pool.request_credits(t.org, "5", requested_by="setup")
    key, _ = pool.create_key("member", org_id=t.org, user_id="u-1", name="abuse")
    dispatched(pool)
    return Seeded(grant.id, used.id, held.id, endpoint.id, delivery.id, asked.id, key.id)


def dispatched(pool: Any) -> None:
    """Wait until the server's delivery worker has fanned out the seed's events (it marks
    them), so that the database stays still while refusals are compared."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with pool.db.engine.connect() as conn:
            query = select(tables.events.c.id).where(tables.events.c.dispatched.is_(False))
            if conn.execute(query).first() is None:
                return
        time.sleep(0.05)
    raise AssertionError("the delivery worker did not fan out the seed's events")


# (method, path) -> (role, a body the route accepts). A new mutating route needs a line.
BASE: dict[tuple[str, str], tuple[str, Callable[[Tenant], dict[str, Any]]]] = {
    ("POST", "/v1/orgs"): ("service", lambda t: {"id": f"{t.org}-new", "name": "N"}),
    ("PATCH", "/v1/orgs/{org}"): ("service", lambda t: {"name": "Renamed"}),
    ("POST", "/v1/orgs/{org}/teams"): ("service", lambda t: {"id": "t-2", "monthly_limit": "1"}),
    ("PATCH", "/v1/orgs/{org}/teams/{team}"): ("service", lambda t: {"monthly_limit": "2"}),
    ("PUT", "/v1/orgs/{org}/members/{user}"): ("service", lambda t: {"team_id": "t-1"}),
    ("PUT", "/v1/features/{key}"): ("service", lambda t: {"name": "F", "cost": "0.10"}),
    ("POST", "/v1/orgs/{org}/grants"): ("staff", lambda t: {"amount": "1", "note": "n"}),
    ("POST", "/v1/orgs/{org}/grants/{grant_id}/void"): ("staff", lambda t: {"reason": "r"}),
    ("PATCH", "/v1/orgs/{org}/grants/{grant_id}"): (
        "staff",
        lambda t: {"expires_at": "2099-01-01T00:00:00Z", "reason": "r"},
    ),
    ("POST", "/v1/orgs/{org}/adjustments"): ("staff", lambda t: {"credits": "-1", "reason": "r"}),
    ("POST", "/v1/orgs/{org}/keys"): (
        "staff",
        lambda t: {"role": "member", "user_id": "u-1", "name": "n"},
    ),
    ("POST", "/v1/orgs/{org}/keys/{key_id}/revoke"): ("staff", lambda t: {}),
    ("POST", "/v1/orgs/{org}/consumptions"): (
        "service",
        lambda t: {"feature": "report", "user_id": "u-1", "metadata": {"k": "v"}},
    ),
    ("POST", "/v1/orgs/{org}/consumptions/{consumption_id}/refund"): (
        "service",
        lambda t: {"reason": "r"},
    ),
    ("POST", "/v1/orgs/{org}/holds"): (
        "service",
        lambda t: {"feature": "report", "user_id": "u-1", "amount": "1", "metadata": {"k": "v"}},
    ),
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/settle"): (
        "service",
        lambda t: {"cost": "0.5", "metadata": {"k": "v"}},
    ),
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/release"): ("service", lambda t: {}),
    ("POST", "/v1/portal-sessions"): (
        "service",
        lambda t: {"org_id": t.org, "user_id": "u-1", "role": "member"},
    ),
    ("POST", "/v1/orgs/{org}/credit-requests"): ("service", lambda t: {"amount": "5"}),
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/grant"): (
        "staff",
        lambda t: {"amount": "1", "note": "n"},
    ),
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/dismiss"): ("staff", lambda t: {}),
    ("POST", "/v1/webhook-endpoints"): (
        "service",
        lambda t: {"url": "https://hooks.example.com/x", "description": "d", "enabled": False},
    ),
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): ("service", lambda t: {"description": "d"}),
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): ("service", lambda t: {}),  # no body
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): ("service", lambda t: {}),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/test"): ("service", lambda t: {}),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry"): (
        "service",
        lambda t: {},
    ),
}
AMOUNT_FIELDS = {"amount", "quantity", "monthly_limit", "cost", "unit_rate"}


def deep(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"d": value}
    return value


def at_every_depth(leaf: Callable[[int], Any], depth_max: int = 5) -> list[Any]:
    """``leaf(depth)`` put at depth 1..depth_max, alternating objects and lists."""
    found = []
    for depth in range(1, depth_max + 1):
        value = leaf(depth)
        for i in range(depth - 1):
            value = [value] if i % 2 else {"n": value}
        found.append(value)
    return found


# Values no field accepts (whatever its type).
ANY_FIELD: list[Any] = [
    LONE,
    f"ok{LOW}",
    "a\x00b",
    "x" * 5000,
    10**30,
    -(10**30),
    1e308,
    1.5,
    -1,
    [LONE],
    {LONE: 1},
    {"x": LONE},
    deep(40),
]
# Values no amount accepts.
AMOUNTS: list[Any] = [
    " 1",
    "1 ",
    "1.00001",
    "1e3",
    "-1",
    "NaN",
    "Infinity",
    "0x10",
    "1_000",
    "١",
    "",
    5,
    0,
    True,
    "99999999999999",
]
METADATA: list[Any] = [
    *at_every_depth(lambda d: {"v": LONE}),
    *at_every_depth(lambda d: {LONE: d}),
    *at_every_depth(lambda d: {"v": f"x{LOW}y"}),
    *at_every_depth(lambda d: {f"k\x00{d}": 1}),
    *at_every_depth(lambda d: {"v": ["a", "b\x00"]}),
    *at_every_depth(lambda d: {"v": 2**53 + d}),
    {"too deep": deep(40)},
    [1, 2],
    "text",
]
# Whole bodies no route accepts.
RAW_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"1",
    b"{",
    b"\xff\xfe",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": 1' + b"0" * 5000 + b"}",
    b"[" * 5000 + b"]" * 5000,
]


def body_fields(document: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    """The documented properties of a route's JSON body (of every alternative)."""
    operation = document["paths"][path][method.lower()]
    if "requestBody" not in operation:
        return {}
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]

    def resolve(s: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in s:
            s = schemas[s["$ref"].rsplit("/", 1)[-1]]
        return s

    found: dict[str, dict[str, Any]] = {}
    for option in resolve(schema).get("oneOf", [resolve(schema)]):
        found.update(resolve(option).get("properties", {}))
    return found


def json_types(field: dict[str, Any]) -> set[str]:
    options = field.get("anyOf", [field])
    return {o.get("type", "object" if "$ref" in o else "any") for o in options}


def cases(document: dict[str, Any], method: str, path: str, base: dict[str, Any]) -> list[bytes]:
    """Every nasty body for one route: each field given each nasty value, then whole bodies."""
    found: list[bytes] = []
    if "requestBody" not in document["paths"][path][method.lower()]:
        return found  # a route without a body (DELETE) reads none
    for name, field in body_fields(document, method, path).items():
        types = json_types(field)
        values = list(ANY_FIELD)
        if name in AMOUNT_FIELDS:
            values += AMOUNTS
        if name == "metadata":
            values += METADATA
        if "boolean" in types:
            values = [v for v in values if not isinstance(v, bool)]
        for value in values:
            found.append(json.dumps({**base, name: value}).encode())
    if base:  # a key given twice
        first = next(iter(base))
        duplicated = json.dumps(base)[1:-1]
        found.append(
            (
                "{" + duplicated + ", " + json.dumps(first) + ": " + json.dumps(base[first]) + "}"
            ).encode()
        )
    else:  # a body that takes no arguments refuses any; it may be left out (empty or null)
        found.append(json.dumps({"unexpected": 1}).encode())
    found += [raw for raw in RAW_BODIES if base or raw.strip() not in (b"", b"null")]
    return found


def database(pool: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order: a refusal must change none of them."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with pool.db.engine.connect() as conn:
        for table in tables.metadata.sorted_tables:
            rows = conn.execute(select(table)).all()
            state[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return state


def reads_answer(t: Tenant) -> list[str]:
    """Every read of the organization still answers (nothing stored that cannot be sent)."""
    client = t.client("service")
    failures = []
    org = f"/v1/orgs/{t.org}"
    for path in (
        org,
        f"{org}/consumptions",
        f"{org}/grants",
        f"{org}/holds",
        f"{org}/ledger",
        f"{org}/teams",
        f"{org}/members",
        f"{org}/balance",
        f"{org}/usage/teams",
        f"{org}/reports/usage",
        "/v1/features",
        "/v1/orgs?limit=500",
    ):
        response = client.get(path)
        if response.status_code != 200:
            failures.append(f"GET {path}: {response.status_code} {response.text[:200]}")
    return failures


def url_of(path: str, t: Tenant, seeded: Seeded) -> str:
    return path.format(
        org=t.org,
        team="t-1",
        user="u-1",
        key=f"f-{t.org}",
        grant_id=seeded.grant_id,
        consumption_id=seeded.consumption_id,
        hold_id=seeded.hold_id,
        endpoint_id=seeded.endpoint_id,
        delivery_id=seeded.delivery_id,
        request_id=seeded.request_id,
        key_id=seeded.key_id,
    )


def test_the_corpus_covers_every_mutating_route(shared: Server) -> None:
    app = create_app(shared.pool)
    routes = {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and route.include_in_schema
        for method in (route.methods or set()) & MUTATING_METHODS
    }
    assert routes
    assert routes == BASE.keys()


def test_no_nasty_input_through_any_mutating_route_yields_a_5xx_or_changes_anything(
    t: Tenant,
) -> None:
    seeded = seed(t)
    document = t.client().get("/openapi.json").json()
    failures: list[str] = []
    state = database(t.pool)
    for (method, path), (role, base_body) in BASE.items():
        client = t.client(role)
        url = url_of(path, t, seeded)
        for body in cases(document, method, path, base_body(t)):
            response = client.request(
                method, url, content=body, headers={"Content-Type": "application/json"}
            )
            label = f"{method} {path} {body[:100]!r}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            elif response.is_success:
                failures.append(f"{label}: accepted ({response.status_code})")
                state = database(t.pool)
            elif response.headers["content-type"] != "application/problem+json":
                failures.append(f"{label}: {response.status_code} is not a problem")
        after = database(t.pool)
        if after != state:
            failures.append(f"{method} {path}: a refusal changed the database")
            state = after
        failures += reads_answer(t)
    assert failures == []
    assert t.pool.verify(t.org) == []
