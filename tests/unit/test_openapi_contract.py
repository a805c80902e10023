"""The OpenAPI document as a client generator reads it: stable snake_case operation ids,
every enum and answer schema named, dry runs and reports typed, amounts as decimal strings.
(tests/e2e/test_generated_client.py runs a generated client against a server.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from creditpool import CreditPool
from creditpool.http.openapi import DECIMAL_PATTERN, METHODS
from creditpool.server.app import create_app

# The operation ids are a client's function names: renaming one breaks every client.
OPERATION_IDS = {
    ("post", "/v1/orgs"): "create_org",
    ("get", "/v1/orgs"): "list_orgs",
    ("get", "/v1/orgs/{org}"): "get_org",
    ("patch", "/v1/orgs/{org}"): "update_org",
    ("post", "/v1/orgs/{org}/teams"): "create_team",
    ("get", "/v1/orgs/{org}/teams"): "list_teams",
    ("patch", "/v1/orgs/{org}/teams/{team}"): "update_team",
    ("put", "/v1/orgs/{org}/members/{user}"): "put_member",
    ("get", "/v1/orgs/{org}/members/{user}"): "get_member",
    ("get", "/v1/orgs/{org}/members"): "list_members",
    ("get", "/v1/orgs/{org}/usage/teams"): "list_team_usage",
    ("get", "/v1/features"): "list_features",
    ("put", "/v1/features/{key}"): "put_feature",
    ("post", "/v1/orgs/{org}/grants"): "create_grant",
    ("get", "/v1/orgs/{org}/grants"): "list_grants",
    ("get", "/v1/orgs/{org}/grants/{grant_id}"): "get_grant",
    ("post", "/v1/orgs/{org}/grants/{grant_id}/void"): "void_grant",
    ("patch", "/v1/orgs/{org}/grants/{grant_id}"): "update_grant",
    ("post", "/v1/orgs/{org}/adjustments"): "create_adjustment",
    ("get", "/v1/orgs/{org}/adjustments/{adjustment_id}"): "get_adjustment",
    ("get", "/v1/orgs/{org}/corrections"): "list_corrections",
    ("get", "/v1/orgs/{org}/audit"): "list_audit_records",
    ("post", "/v1/orgs/{org}/consumptions"): "consume",
    ("get", "/v1/orgs/{org}/consumptions"): "list_consumptions",
    ("get", "/v1/orgs/{org}/consumptions/{consumption_id}"): "get_consumption",
    ("post", "/v1/orgs/{org}/consumptions/{consumption_id}/refund"): "refund_consumption",
    ("post", "/v1/orgs/{org}/holds"): "create_hold",
    ("get", "/v1/orgs/{org}/holds"): "list_holds",
    ("get", "/v1/orgs/{org}/holds/{hold_id}"): "get_hold",
    ("post", "/v1/orgs/{org}/holds/{hold_id}/settle"): "settle_hold",
    ("post", "/v1/orgs/{org}/holds/{hold_id}/release"): "release_hold",
    ("get", "/v1/orgs/{org}/balance"): "get_balance",
    ("get", "/v1/orgs/{org}/ledger"): "list_ledger_entries",
    ("get", "/v1/orgs/{org}/forecast"): "get_forecast",
    ("post", "/v1/orgs/{org}/credit-requests"): "request_credits",
    ("get", "/v1/orgs/{org}/credit-requests"): "list_credit_requests",
    ("post", "/v1/orgs/{org}/credit-requests/{request_id}/grant"): "grant_credit_request",
    ("post", "/v1/orgs/{org}/credit-requests/{request_id}/dismiss"): "dismiss_credit_request",
    ("post", "/v1/webhook-endpoints"): "create_webhook_endpoint",
    ("get", "/v1/webhook-endpoints"): "list_webhook_endpoints",
    ("get", "/v1/webhook-endpoints/{endpoint_id}"): "get_webhook_endpoint",
    ("patch", "/v1/webhook-endpoints/{endpoint_id}"): "update_webhook_endpoint",
    ("delete", "/v1/webhook-endpoints/{endpoint_id}"): "delete_webhook_endpoint",
    ("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): "rotate_webhook_secret",
    ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): "list_webhook_deliveries",
    (
        "get",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}",
    ): "get_webhook_delivery",
    (
        "post",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
    ): "retry_webhook_delivery",
    ("post", "/v1/webhook-endpoints/{endpoint_id}/test"): "send_test_webhook",
    ("get", "/v1/orgs/{org}/event-log"): "list_events",
    ("get", "/v1/orgs/{org}/reports/usage"): "get_usage_report",
    ("get", "/v1/orgs/{org}/reports/balance"): "get_balance_report",
    ("get", "/v1/orgs/{org}/reports/purchases"): "get_purchases_report",
    ("post", "/v1/portal-sessions"): "create_portal_session",
    ("post", "/v1/orgs/{org}/keys"): "create_api_key",
    ("get", "/v1/orgs/{org}/keys"): "list_api_keys",
    ("post", "/v1/orgs/{org}/keys/{key_id}/revoke"): "revoke_api_key",
    ("get", "/v1/features/{key}/prices"): "list_feature_prices",
    ("get", "/v1/orgs/{org}/events"): "stream_events",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path: Path = tmp_path_factory.mktemp("openapi") / "doc.db"
    pool = CreditPool.open(f"sqlite:///{path}")
    try:
        yield create_app(pool).openapi()
    finally:
        pool.close()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def test_operation_ids_are_the_stable_snake_case_names(document: dict[str, Any]) -> None:
    found = {(method, path): op["operationId"] for method, path, op in operations(document)}
    assert found == OPERATION_IDS
    assert len(set(found.values())) == len(found), "operation ids must be unique"
    for (method, path), name in found.items():
        assert SNAKE_CASE.match(name), name
        # No trace of FastAPI's generated ids: the path joined with "_" and the method.
        assert "v1" not in name, name
        assert "__" not in name, name
        assert not name.endswith(f"_{method}"), name
        segments = [s for s in re.split(r"[/{}\-]+", path) if s]
        assert len(segments) < 2 or "_".join(segments[:2]) not in name, name


def enum_nodes(node: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where
        for key, value in node.items():
            if key != "headers":  # a response header's ["true"]: generators skip headers
                yield from enum_nodes(value, (*where, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from enum_nodes(value, (*where, str(i)))


def test_every_enum_is_a_named_schema_listed_once(document: dict[str, Any]) -> None:
    places = list(enum_nodes(document))
    inline = [p for p in places if not (len(p) == 3 and p[:2] == ("components", "schemas"))]
    assert inline == [], inline
    schemas = document["components"]["schemas"]
    values = [frozenset(schemas[p[2]]["enum"]) for p in places]
    assert len(values) == len(set(values)), "two components with the same values"
    assert schemas["OrgCreate"]["properties"]["timezone"]["$ref"].endswith("/TimeZone")
    assert schemas["Problem"]["properties"]["hold_status"]["$ref"].endswith("/HoldStatus")
    filters = {
        p["name"]: p for p in document["paths"]["/v1/orgs/{org}/consumptions"]["get"]["parameters"]
    }
    assert "RecordedConsumptionStatus" in str(filters["status"]["schema"])


def test_time_zone_members_have_distinct_names(document: dict[str, Any]) -> None:
    zones = document["components"]["schemas"]["TimeZone"]
    names = zones["x-enum-varnames"]
    assert len(names) == len(zones["enum"]) == len(set(names))
    named = dict(zip(zones["enum"], names, strict=True))
    assert (named["Etc/GMT+5"], named["Etc/GMT-5"]) == ("ETC_GMT_PLUS_5", "ETC_GMT_MINUS_5")
    assert named["Europe/Berlin"] == "EUROPE_BERLIN"


def test_every_json_body_and_answer_is_a_named_schema(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        bodies = [op.get("requestBody", {}), *op["responses"].values()]
        for body in bodies:
            for media, content in body.get("content", {}).items():
                if media.endswith("json") and content.get("schema"):  # {}: any JSON
                    schema = content["schema"]  # a named schema, or one or null (a body)
                    options = [o for o in schema.get("anyOf", [schema]) if o != {"type": "null"}]
                    assert [list(o) for o in options] == [["$ref"]], (method, path, media)
    for name in document["components"]["schemas"]:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name), name


def test_a_dry_run_answer_has_the_consumption_schema(document: dict[str, Any]) -> None:
    answers = document["paths"]["/v1/orgs/{org}/consumptions"]["post"]["responses"]
    for status in ("200", "201"):
        schema = answers[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Consumption"}, status


def test_reports_are_declared_as_bytes(document: dict[str, Any]) -> None:
    for kind in ("usage", "balance", "purchases"):
        answer = document["paths"][f"/v1/orgs/{{org}}/reports/{kind}"]["get"]["responses"]["200"]
        content = answer["content"]
        assert next(iter(content)) == "application/octet-stream"  # the type generators know
        for media in content.values():
            assert media["schema"] == {"type": "string", "format": "binary"}


def test_every_amount_of_an_answer_is_a_decimal_string(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model, field in [
        ("Balance", "left"),
        ("Forecast", "daily_pace"),
        ("Forecast", "expiring_unused"),
        ("ExpiringUnused", "credits"),
        ("TeamForecast", "projected"),
        ("TeamForecast", "monthly_limit"),
        ("Consumption", "cost"),
        ("Consumption", "quantity"),
        ("Allocation", "amount"),
        ("Grant", "remaining"),
        ("LedgerEntry", "credits"),
        ("Refund", "restored"),
        ("Feature", "unit_rate"),
        ("FeaturePrice", "cost"),
        ("Problem", "left"),
    ]:
        prop = schemas[model]["properties"][field]
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        assert [(o["type"], o["pattern"]) for o in options] == [("string", DECIMAL_PATTERN)], (
            model,
            field,
        )
    pattern = re.compile(DECIMAL_PATTERN)
    for good in ("0", "0.50", "-12.0000", "10.12345678"):
        assert pattern.match(good), good
    for bad in ("1e5", "+1", ".5", "1.", " 1", "NaN"):
        assert not pattern.match(bad), bad


def test_metadata_is_described_without_a_recursive_union(document: dict[str, Any]) -> None:
    value = document["components"]["schemas"]["MetadataValue"]
    assert {"anyOf", "oneOf", "type"}.isdisjoint(value)
    assert value["items"] == value["additionalProperties"]
    assert value["pattern"] == r"^[^\x00]*$"
    assert value["maximum"] == -value["minimum"] == 2**53 - 1
