"""Every list of the API has one shape, ``{"data": [...], "has_more": bool, "next_cursor":
str | null}``, and is paged with ``limit`` and ``cursor`` (the ``next_cursor`` fed back):
in the document, over HTTP to the last page, and through the Python client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from creditpool.client import Client
from tests.e2e.tenants import Tenant

# Each list, by its path in the document, and the field that names an item.
LISTS = {
    "/v1/orgs": "id",
    "/v1/orgs/{org}/teams": "id",
    "/v1/orgs/{org}/members": "user_id",
    "/v1/orgs/{org}/usage/teams": "team_id",
    "/v1/features": "key",
    "/v1/orgs/{org}/grants": "id",
    "/v1/orgs/{org}/consumptions": "id",
    "/v1/orgs/{org}/holds": "id",
    "/v1/orgs/{org}/ledger": "seq",
    "/v1/orgs/{org}/credit-requests": "id",
    "/v1/orgs/{org}/event-log": "id",
    "/v1/webhook-endpoints": "id",
    "/v1/webhook-endpoints/{endpoint_id}/deliveries": "id",
    "/v1/orgs/{org}/keys": "id",
    "/v1/features/{key}/prices": "id",
    "/v1/orgs/{org}/corrections": "id",
    "/v1/orgs/{org}/audit": "id",
}


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def answers(doc: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of an operation's 200, resolved (None: not JSON)."""
    content = operation.get("responses", {}).get("200", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    return None if schema is None else resolve(doc, schema)


def test_every_list_in_the_document_is_a_page_with_limit_and_a_string_cursor(t: Tenant) -> None:
    doc = t.client().get("/openapi.json").json()
    paged = set()
    for path, operations in doc["paths"].items():
        schema = answers(doc, operations.get("get", {}))
        if schema is None:
            continue
        assert schema.get("type") != "array", f"{path} answers a bare array"
        properties = schema.get("properties", {})
        assert "items" not in properties, f"{path} answers the old list shape"
        if "data" not in properties:
            continue
        paged.add(path)
        assert set(schema["required"]) == {"data", "has_more", "next_cursor"}, path
        assert properties["data"]["type"] == "array"
        assert properties["has_more"]["type"] == "boolean"
        cursor_types = {s.get("type") for s in properties["next_cursor"]["anyOf"]}
        assert cursor_types == {"string", "null"}, path
        params = {p["name"]: p for p in operations["get"]["parameters"] if p["in"] == "query"}
        assert params["limit"]["schema"]["type"] == "integer", path
        assert params["cursor"]["schema"]["type"] == "string", path  # as next_cursor is
        assert "pattern" in params["cursor"]["schema"], path
    assert paged == set(LISTS)


def seed(t: Tenant) -> dict[str, str]:
    """At least two items in every list; the path parameters to reach them."""
    pool = t.pool
    pool.set_feature("report", cost="1")
    pool.set_feature("summary", cost="2")
    for team in ("ops", "eng"):
        pool.create_team(t.org, team)
    for user, team in (("u-1", "eng"), ("u-2", "ops"), ("u-3", None)):
        pool.set_member(t.org, user, team_id=team)
    for amount in ("10", "20"):
        pool.grant(t.org, amount)
    for user in ("u-1", "u-2", "u-3"):
        pool.consume(t.org, "report", user_id=user)
    for credits in ("-1", "1"):  # two corrections
        pool.adjust(t.org, credits, reason="lists", by="cs")
    pool.update_org(t.org, name="Lists", by="cs")  # with its creation: two audit records
    for _ in range(2):
        pool.hold(t.org, "report", user_id="u-1")
        pool.request_credits(t.org, "5", requested_by="admin")
    endpoint = pool.create_webhook_endpoint("https://hooks.example.com/lists", enabled=False)
    pool.create_webhook_endpoint("https://hooks.example.com/lists-2", enabled=False)
    for _ in range(2):
        pool.test_webhook_endpoint(endpoint.id)
    return {"org": t.org, "endpoint_id": endpoint.id, "key": "report"}


def walk(client: httpx.Client, path: str, limit: int) -> list[dict[str, Any]]:
    """Page after page of ``limit`` to the last, checking each page's shape."""
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(1000):
        response = client.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
        page = response.json()
        assert set(page) == {"data", "has_more", "next_cursor"}
        pages.append(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        assert len(page["data"]) == limit
        assert isinstance(page["next_cursor"], str)
        assert page["next_cursor"]
        params["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path}: no last page")


def test_every_list_walks_to_its_last_page_one_item_at_a_time(t: Tenant) -> None:
    values = seed(t)
    client = t.client("service")
    for template, key in LISTS.items():
        path = template.format(**values)
        whole = walk(client, path, 500)
        assert len(whole) == 1, path
        everything = [item[key] for item in whole[0]["data"]]
        assert len(everything) >= 2, path
        pages = walk(client, path, 1)
        assert [item[key] for page in pages for item in page["data"]] == everything, path
        assert [page["has_more"] for page in pages[:-1]] == [True] * (len(pages) - 1)


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/v1/orgs/{org}/grants", "abc"),
        ("/v1/orgs/{org}/ledger", "-1"),
        ("/v1/orgs/{org}/teams", ""),
        ("/v1/orgs/{org}/event-log", "42"),
        ("/v1/orgs/{org}/consumptions", "1" * 19),
    ],
)
def test_a_cursor_no_page_gave_is_refused_as_a_problem(t: Tenant, path: str, cursor: str) -> None:
    response = t.client().get(path.format(org=t.org), params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_client_lists_follow_every_page_or_return_one_page_of_limit(t: Tenant) -> None:
    users = [f"u-{n:03d}" for n in range(60)]  # more than the server's page of 50
    for user in users:
        t.pool.set_member(t.org, user)
    with Client(t.server.base_url, api_key=t.keys["service"]) as client:
        assert [m.user_id for m in client.members(t.org)] == users
        one_page = client.members(t.org, after="u-010", limit=3)
        assert [m.user_id for m in one_page] == ["u-011", "u-012", "u-013"]
        asked = [client.request_credits(t.org, "1") for _ in range(3)]
        newest = client.credit_requests(t.org, before_id=asked[2].id, limit=1)
        assert [r.id for r in newest] == [asked[1].id]
        assert [g.id for g in client.grants(t.org, after_id=1, limit=1)] == []
