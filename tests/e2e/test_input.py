"""Input over HTTP against a real server: what cannot be stored and written back out is
refused before anything is written (never a charge that answers 500), and the OpenAPI
document says exactly what the server accepts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from creditpool.validation import METADATA_DEPTH_MAX, time_zones
from tests.e2e.conftest import Server
from tests.e2e.tenants import Tenant, new_tenant
from tests.integration.dbstate import snapshot

LONE = "\ud800"
PROBLEM = "application/problem+json"


@pytest.fixture
def t(shared: Server) -> Iterator[Tenant]:
    with new_tenant(shared) as fresh:
        fresh.pool.grant(fresh.org, "100")
        yield fresh


def raw(value: Any) -> bytes:
    """JSON text as a client may send it: lone surrogates written as \\u escapes."""
    return json.dumps(value).encode()


def post(client: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    headers["Content-Type"] = "application/json"
    content = body if isinstance(body, bytes) else raw(body)
    return client.post(path, content=content, headers=headers)


def refused(response: httpx.Response, code: str = "invalid_input") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


def consume_body(**fields: Any) -> dict[str, Any]:
    return {"feature": "report", "user_id": "u-1", **fields}


# -- text that cannot be written back out ------------------------------------------------

UNWRITABLE_METADATA = {
    "value": {"x": LONE},
    "key": {LONE: "x"},
    "nested value": {"a": [{"b": f"c{LONE}"}]},
    "nested key": {"a": {"b": [{f"k{LONE}": 1}]}},
    "NUL key": {"a\x00": 1},
    "NUL nested": {"a": ["\x00"]},
}


@pytest.mark.parametrize("metadata", UNWRITABLE_METADATA.values(), ids=UNWRITABLE_METADATA.keys())
def test_metadata_that_cannot_be_written_back_is_refused_before_any_charge(
    t: Tenant, metadata: dict[str, Any]
) -> None:
    before = snapshot(t.pool, t.org)
    service = t.client()
    path = f"/v1/orgs/{t.org}/consumptions"
    for _ in range(2):  # a retry with the same key is refused the same way
        refused(post(service, path, consume_body(metadata=metadata), **{"Idempotency-Key": "k"}))
    assert snapshot(t.pool, t.org) == before
    listed = service.get(path)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []


TEXT_FIELDS: list[tuple[str, str, str, dict[str, Any], str]] = [
    ("service", "POST", "/v1/orgs", {"id": "new-org"}, "name"),
    ("service", "PATCH", "/v1/orgs/{org}", {}, "name"),
    ("service", "POST", "/v1/orgs/{org}/teams", {"id": "t-9"}, "name"),
    ("service", "PUT", "/v1/features/{feature}", {"cost": "1"}, "name"),
    ("service", "PUT", "/v1/features/{feature}", {"unit_rate": "0.1"}, "unit"),
    ("service", "POST", "/v1/orgs/{org}/consumptions", consume_body(), "feature_name"),
    ("service", "POST", "/v1/orgs/{org}/consumptions", consume_body(), "action"),
    ("service", "POST", "/v1/orgs/{org}/consumptions", consume_body(), "integration"),
    ("staff", "POST", "/v1/orgs/{org}/grants", {"amount": "1"}, "note"),
    ("staff", "POST", "/v1/orgs/{org}/grants", {"amount": "1"}, "reference"),
    ("staff", "POST", "/v1/orgs/{org}/grants/{grant}/void", {}, "reason"),
    ("service", "POST", "/v1/orgs/{org}/consumptions/{consumption}/refund", {}, "reason"),
]


@pytest.mark.parametrize("bad", [LONE, "a\x00b"], ids=["lone surrogate", "NUL"])
@pytest.mark.parametrize(
    ("role", "method", "path", "body", "field"),
    TEXT_FIELDS,
    ids=[f"{m} {p} {f}" for _, m, p, _, f in TEXT_FIELDS],
)
def test_every_text_field_refuses_what_cannot_be_written_back(
    t: Tenant, role: str, method: str, path: str, body: dict[str, Any], field: str, bad: str
) -> None:
    used = t.pool.consume(t.org, "report", user_id="u-1")
    grant = t.pool.grants(t.org)[0]
    url = path.format(org=t.org, feature=f"f-{t.org}", grant=grant.id, consumption=used.id)
    before = snapshot(t.pool, t.org)
    features = t.pool.features()
    payload = raw({**body, field: bad})
    response = t.client(role).request(
        method, url, content=payload, headers={"Content-Type": "application/json"}
    )
    refused(response)
    assert snapshot(t.pool, t.org) == before
    assert t.pool.features() == features
    assert all(o.id != "new-org" for o in t.pool.orgs(limit=1000))


def test_deep_metadata_is_refused_with_a_clear_problem_and_the_limit_itself_is_kept(
    t: Tenant,
) -> None:
    def nested(depth: int) -> Any:
        value: Any = "leaf"
        for _ in range(depth - 1):
            value = [value]
        return value

    path = f"/v1/orgs/{t.org}/consumptions"
    too_deep = post(t.client(), path, consume_body(metadata={"a": nested(METADATA_DEPTH_MAX + 1)}))
    refused(too_deep)
    assert "deep" in too_deep.json()["detail"]
    at_limit = {"a": nested(METADATA_DEPTH_MAX)}
    kept = post(t.client(), path, consume_body(metadata=at_limit))
    assert kept.status_code == 201, kept.text
    assert kept.json()["metadata"] == at_limit
    assert t.client().get(f"{path}/{kept.json()['id']}").json()["metadata"] == at_limit


@pytest.mark.parametrize(
    "number",
    ["9007199254740992", "-9007199254740992", "1" * 30, "1e400", "NaN", "Infinity", "1e300"],
)
def test_numbers_in_metadata_that_would_not_round_trip_are_refused(t: Tenant, number: str) -> None:
    before = snapshot(t.pool, t.org)
    body = b'{"feature": "report", "user_id": "u-1", "metadata": {"n": [' + number.encode() + b"]}}"
    refused(post(t.client(), f"/v1/orgs/{t.org}/consumptions", body))
    assert snapshot(t.pool, t.org) == before


def test_numbers_in_metadata_round_trip_exactly(t: Tenant) -> None:
    metadata = {"max": 2**53 - 1, "min": -(2**53 - 1), "f": 0.1, "tiny": 1e-300, "neg": -2.5}
    path = f"/v1/orgs/{t.org}/consumptions"
    created = post(t.client(), path, consume_body(metadata=metadata))
    assert created.status_code == 201, created.text
    assert created.json()["metadata"] == metadata
    assert t.client().get(f"{path}/{created.json()['id']}").json()["metadata"] == metadata


# -- request JSON ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"feature": "report", "user_id": "u-1", "user_id": "u-2"}',
        b'{"feature": "report", "user_id": "u-1", "metadata": {"a": 1, "a": 2}}',
        b'{"feature": "report", "user_id": "u-1", "metadata": {"x": [{"b": 1, "b": 1}]}}',
    ],
    ids=["top level", "metadata", "nested"],
)
def test_a_json_body_with_a_duplicate_key_is_refused(t: Tenant, body: bytes) -> None:
    before = snapshot(t.pool, t.org)
    response = post(t.client(), f"/v1/orgs/{t.org}/consumptions", body)
    refused(response)
    assert "duplicate" in response.json()["detail"]
    assert snapshot(t.pool, t.org) == before


# -- amounts and counts ------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [" 1", "1 ", "01", "+1", "1.", ".5", "1.00001", "1.50000", "1e3", "-1", "0", 5, 1.5, True],
    ids=repr,
)
def test_an_amount_is_a_plain_decimal_string_or_422_invalid_amount(t: Tenant, amount: Any) -> None:
    before = snapshot(t.pool, t.org)
    response = post(t.client("staff"), f"/v1/orgs/{t.org}/grants", {"amount": amount})
    refused(response, "invalid_amount")
    assert snapshot(t.pool, t.org) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/v1/orgs/{org}", {"low_balance_thresholds": [10]}),
        ("POST", "/v1/orgs/{org}/teams", {"id": "t-2", "monthly_limit": 5}),
        ("PATCH", "/v1/orgs/{org}/teams/t-1", {"monthly_limit": 5.0}),
        ("PUT", "/v1/features/f-1", {"name": "F", "cost": 1}),
        ("PUT", "/v1/features/f-1", {"name": "F", "unit_rate": 0.5}),
        ("POST", "/v1/orgs/{org}/consumptions", consume_body(quantity=2)),
    ],
    ids=["threshold", "team limit", "team limit patch", "cost", "unit rate", "quantity"],
)
def test_a_json_number_as_any_amount_is_422_invalid_amount(
    t: Tenant, method: str, path: str, body: dict[str, Any]
) -> None:
    t.pool.create_team(t.org, "t-1")
    response = t.client().request(method, path.format(org=t.org), json=body)
    refused(response, "invalid_amount")


def test_a_whole_request_count_written_as_a_json_float_is_the_integer(t: Tenant) -> None:
    body = b'{"feature": "report", "user_id": "u-1", "requests": 1607637.0, "breakdown": {"calls": 2.0}}'
    created = post(t.client(), f"/v1/orgs/{t.org}/consumptions", body)
    assert created.status_code == 201, created.text
    assert created.json()["requests"] == 1607637
    assert created.json()["breakdown"] == {"calls": 2}
    refused(post(t.client(), f"/v1/orgs/{t.org}/consumptions", consume_body(requests=1.5)))


# -- paths, queries and headers ----------------------------------------------------------


@pytest.mark.parametrize("object_id", ["1.0", "01", "+1", "1e0", " 1", "1_0"])
def test_an_object_id_in_a_path_is_a_plain_positive_integer(t: Tenant, object_id: str) -> None:
    t.pool.consume(t.org, "report", user_id="u-1")
    for kind in ("grants", "consumptions"):
        response = t.client().get(f"/v1/orgs/{t.org}/{kind}/{object_id}")
        refused(response)


def test_a_patch_may_not_set_a_name_or_time_zone_to_null(t: Tenant) -> None:
    t.pool.create_team(t.org, "t-1")
    for path, body in [
        (f"/v1/orgs/{t.org}", {"name": None}),
        (f"/v1/orgs/{t.org}", {"timezone": None}),
        (f"/v1/orgs/{t.org}/teams/t-1", {"name": None}),
    ]:
        refused(t.client().patch(path, json=body))


def test_a_feature_has_exactly_one_price(t: Tenant) -> None:
    service = t.client()
    both = {"name": "F", "cost": "1", "unit_rate": "0.5"}
    refused(service.put("/v1/features/f-2", json=both))
    refused(service.put("/v1/features/f-2", json={"name": "F"}))
    refused(service.put("/v1/features/f-2", json={"name": "F", "cost": "1", "unit": "x"}))
    # What clients send today (nulls for the other price) is still accepted.
    fixed = {"name": "F", "cost": "1", "unit_rate": None, "unit": None}
    assert service.put("/v1/features/f-2", json=fixed).status_code == 200
    rate = {"name": "F", "cost": None, "unit_rate": "0.5", "unit": "item"}
    assert service.put("/v1/features/f-2", json=rate).json()["unit_rate"] == "0.50"


def test_every_time_zone_of_the_document_is_accepted_and_no_other(t: Tenant) -> None:
    document = t.client().get("/openapi.json").json()
    zones = resolve(
        document, document["components"]["schemas"]["OrgCreate"]["properties"]["timezone"]
    )["enum"]
    assert set(zones) == time_zones()
    for zone in ("Pacific/Chatham", "Etc/GMT+5", zones[-1]):
        response = t.client().patch(f"/v1/orgs/{t.org}", json={"timezone": zone})
        assert response.status_code == 200, response.text
    for zone in ("Mars/Olympus", "europe/berlin", "Europe/Berlin ", "localtime"):
        refused(t.client().patch(f"/v1/orgs/{t.org}", json={"timezone": zone}))


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\xe9", "a\tb"], ids=repr)
def test_an_idempotency_key_is_1_to_255_printable_ascii_characters(t: Tenant, key: str) -> None:
    before = snapshot(t.pool, t.org)
    response = t.client().post(
        f"/v1/orgs/{t.org}/consumptions",
        json=consume_body(),
        headers={"Idempotency-Key": key.encode("latin-1")},  # type: ignore[dict-item]
    )
    refused(response)
    assert snapshot(t.pool, t.org) == before


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/orgs/{org}/usage/teams?month=2026-00", 422),
        ("/v1/orgs/{org}/usage/teams?month=1969-12", 422),
        ("/v1/orgs/{org}/usage/teams?month=2026-12", 200),
        ("/v1/orgs/{org}/reports/usage?from=2026-02-30", 422),
        ("/v1/orgs/{org}/reports/usage?from=2026-1-01", 422),
        ("/v1/orgs/{org}/reports/usage?from=2026-11-01&to=2026-11-30", 200),
    ],
)
def test_months_and_days_are_real_calendar_ones(t: Tenant, path: str, status: int) -> None:
    response = t.client().get(path.format(org=t.org))
    assert response.status_code == status, response.text


# -- the document ------------------------------------------------------------------------


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def non_null(schema: dict[str, Any]) -> list[dict[str, Any]]:
    options = schema.get("anyOf", [schema])
    return [s for s in options if s.get("type") != "null"]


def test_the_document_declares_the_shapes_the_server_checks(t: Tenant) -> None:
    document = t.client().get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    # Amounts are decimal strings, never JSON numbers.
    for model, field in [
        ("GrantCreate", "amount"),
        ("TeamCreate", "monthly_limit"),
        ("TeamUpdate", "monthly_limit"),
        ("ConsumeBody", "quantity"),
    ]:
        for option in non_null(schemas[model]["properties"][field]):
            option = resolve(document, option)
            assert option["type"] == "string", (model, field)
            assert option["pattern"].startswith("^"), (model, field)
    # A PATCH never sets a name or a time zone to null.
    for model in ("OrgUpdate", "TeamUpdate"):
        name = schemas[model]["properties"]["name"]
        assert "anyOf" not in name
        assert name["type"] == "string"
    assert "anyOf" not in schemas["OrgUpdate"]["properties"]["timezone"]
    # A feature has a fixed cost or a unit rate, never both.
    put = document["paths"]["/v1/features/{key}"]["put"]
    body = resolve(document, put["requestBody"]["content"]["application/json"]["schema"])
    assert len(body["oneOf"]) == 2
    # Path ids, days, months and headers say what they accept.
    parameters = {
        (path, p["name"]): p["schema"]
        for path, item in document["paths"].items()
        for operation in item.values()
        for p in operation.get("parameters", [])
    }
    grant_id = parameters[("/v1/orgs/{org}/grants/{grant_id}", "grant_id")]
    assert grant_id == {"type": "string", "pattern": "^[1-9][0-9]{0,17}$", "title": "Grant Id"}
    assert non_null(parameters[("/v1/orgs/{org}/reports/usage", "from")])[0]["format"] == "date"
    month = non_null(parameters[("/v1/orgs/{org}/usage/teams", "month")])[0]
    assert month["pattern"].endswith("-(0[1-9]|1[0-2])$")
    event_id = non_null(parameters[("/v1/orgs/{org}/events", "last-event-id")])[0]
    assert event_id["pattern"] == "^[0-9]{0,18}$"
    key = parameters[("/v1/orgs/{org}/consumptions", "Idempotency-Key")]
    assert key["maxLength"] == 255
    assert "pattern" in key
