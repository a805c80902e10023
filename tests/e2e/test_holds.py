"""Holds over HTTP against a real server process, on both backends: reserve, settle below
and above the hold, release, idempotent replays, refusals that change nothing, paging, the
balance's ``held``, and the Python clients."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditpool import (
    Consumption,
    CreditPool,
    Hold,
    HoldNotOpen,
    HoldStatus,
    InsufficientCredits,
)
from creditpool.client import REPLAYED_HEADER, AsyncClient, Client, Retry
from tests.e2e.conftest import start_server, stop_process
from tests.e2e.tenants import Tenant, money
from tests.support import SqliteTemplates

FAST = Retry(attempts=3, backoff_s=0.01, backoff_s_max=0.05)


def holds_of(t: Tenant) -> str:
    return f"/v1/orgs/{t.org}/holds"


def post(
    client: httpx.Client, path: str, body: dict[str, Any] | None = None, key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(path, json=body if body is not None else {}, headers=headers)


def hold_body(amount: str | None = "10", **more: Any) -> dict[str, Any]:
    return {"feature": "topic_detection", "user_id": "u-1", "amount": amount, **more}


def balance(t: Tenant) -> dict[str, Decimal]:
    data = t.client("admin").get(f"/v1/orgs/{t.org}/balance").json()
    return {k: Decimal(data[k]) for k in ("total", "used", "left", "held")}


def test_a_hold_moves_credits_from_left_to_held_and_settle_below_gives_the_rest_back(
    t: Tenant,
) -> None:
    t.pool.grant(t.org, "100", granted_by="setup")
    service = t.client()
    created = post(service, holds_of(t), hold_body("10", ttl_s=600, action="detect"))
    assert created.status_code == 201, created.text
    hold = Hold.model_validate_json(created.content)
    assert (hold.status, hold.amount, hold.feature, hold.user_id) == (
        HoldStatus.OPEN,
        Decimal(10),
        "topic_detection",
        "u-1",
    )
    assert (hold.expires_at - hold.created_at).total_seconds() == 600
    assert sum(a.amount for a in hold.allocations) == Decimal(10)
    assert balance(t) == {"total": 100, "used": 0, "left": 90, "held": 10}

    path = f"{holds_of(t)}/{hold.id}"
    assert Hold.model_validate_json(service.get(path).content) == hold
    settled = post(service, f"{path}/settle", {"cost": "7.25", "requests": 3})
    assert settled.status_code == 201, settled.text
    consumption = Consumption.model_validate_json(settled.content)
    assert (consumption.cost, consumption.hold_id, consumption.status.value) == (
        Decimal("7.25"),
        hold.id,
        "paid",
    )
    assert (consumption.feature, consumption.user_id, consumption.action) == (
        "topic_detection",
        "u-1",
        "detect",
    )
    assert consumption.requests == 3
    assert balance(t) == {
        "total": 100,
        "used": Decimal("7.25"),
        "left": Decimal("92.75"),
        "held": 0,
    }
    after = Hold.model_validate_json(service.get(path).content)
    assert (after.status, after.consumption_id) == (HoldStatus.SETTLED, consumption.id)
    # The settled consumption is a consumption like any other: listed and refundable.
    assert service.get(f"/v1/orgs/{t.org}/consumptions/{consumption.id}").json()["hold_id"] == (
        hold.id
    )
    refund = post(service, f"/v1/orgs/{t.org}/consumptions/{consumption.id}/refund")
    assert refund.status_code == 200, refund.text
    assert balance(t)["left"] == 100
    assert t.pool.verify(t.org) == []


def test_settle_above_the_hold_charges_the_difference_from_the_other_credits(t: Tenant) -> None:
    t.pool.grant(t.org, "20", granted_by="setup")
    service = t.client()
    hold = post(service, holds_of(t), hold_body("5")).json()
    settled = post(service, f"{holds_of(t)}/{hold['id']}/settle", {"cost": "12"})
    assert settled.status_code == 201, settled.text
    assert Decimal(settled.json()["cost"]) == 12
    assert balance(t) == {"total": 20, "used": 12, "left": 8, "held": 0}
    assert t.pool.verify(t.org) == []


def test_settle_by_quantity_prices_it_from_the_catalog(t: Tenant) -> None:
    t.pool.grant(t.org, "20", granted_by="setup")
    service = t.client()
    hold = post(service, holds_of(t), hold_body(None, quantity="500")).json()
    assert Decimal(hold["amount"]) == 5  # 500 items at 0.01
    settled = post(service, f"{holds_of(t)}/{hold['id']}/settle", {"quantity": "321"})
    assert settled.status_code == 201, settled.text
    assert Decimal(settled.json()["cost"]) == Decimal("3.21")
    assert Decimal(settled.json()["quantity"]) == 321


def test_release_gives_every_held_credit_back(t: Tenant) -> None:
    t.pool.grant(t.org, "30", granted_by="setup")
    service = t.client()
    hold = post(service, holds_of(t), hold_body("12.5")).json()
    assert balance(t) == {"total": 30, "used": 0, "left": Decimal("17.5"), "held": Decimal("12.5")}
    released = post(service, f"{holds_of(t)}/{hold['id']}/release")
    assert released.status_code == 200, released.text
    body = Hold.model_validate_json(released.content)
    assert (body.status, body.released, body.lost) == (HoldStatus.RELEASED, Decimal("12.5"), 0)
    assert balance(t) == {"total": 30, "used": 0, "left": 30, "held": 0}
    # Without a body too: the release has nothing to say.
    other = post(service, holds_of(t), hold_body("1")).json()
    bare = service.post(f"{holds_of(t)}/{other['id']}/release")
    assert bare.status_code == 200, bare.text
    assert t.pool.verify(t.org) == []


@pytest.mark.parametrize("operation", ["hold", "settle", "release"])
def test_each_hold_mutation_replays_its_first_answer_for_the_same_key(
    t: Tenant, operation: str
) -> None:
    t.pool.grant(t.org, "50", granted_by="setup")
    service = t.client()
    if operation == "hold":
        path, body, status = holds_of(t), hold_body("4"), 201
    else:
        hold = post(service, holds_of(t), hold_body("4")).json()
        path = f"{holds_of(t)}/{hold['id']}/{operation}"
        body = {"cost": "3"} if operation == "settle" else {}
        status = 201 if operation == "settle" else 200
    first = post(service, path, body, key=f"{operation}-1")
    assert first.status_code == status, first.text
    assert REPLAYED_HEADER not in first.headers
    state = money(t)
    again = post(service, path, body, key=f"{operation}-1")
    assert again.status_code == status
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.json() == first.json()
    assert money(t) == state
    # The same key with other arguments is refused, and changes nothing (a release has no
    # arguments but its hold: the key sent to release another hold).
    if operation == "release":
        another = post(service, holds_of(t), hold_body("1")).json()
        path, body = f"{holds_of(t)}/{another['id']}/release", {}
        state = money(t)
    else:
        body = hold_body("5") if operation == "hold" else {"cost": "2"}
    conflict = post(service, path, body, key=f"{operation}-1")
    assert conflict.status_code == 409, conflict.text
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["code"] == "idempotency_conflict"
    assert money(t) == state


@pytest.mark.parametrize("first", ["settle", "release"])
@pytest.mark.parametrize("then", ["settle", "release"])
def test_a_hold_that_is_not_open_refuses_settle_and_release_with_its_status(
    t: Tenant, first: str, then: str
) -> None:
    t.pool.grant(t.org, "50", granted_by="setup")
    service = t.client()
    hold = post(service, holds_of(t), hold_body("4")).json()
    path = f"{holds_of(t)}/{hold['id']}"
    assert post(service, f"{path}/{first}", {"cost": "1"} if first == "settle" else {}).is_success
    state = money(t)
    refused = post(service, f"{path}/{then}", {"cost": "1"} if then == "settle" else {})
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert (problem["code"], problem["status"]) == ("hold_not_open", 409)
    assert problem["hold_status"] == ("settled" if first == "settle" else "released")
    assert money(t) == state


def test_a_hold_past_its_time_to_live_reads_as_expired_and_refuses_settle(t: Tenant) -> None:
    t.pool.grant(t.org, "50", granted_by="setup")
    service = t.client()
    hold = post(service, holds_of(t), hold_body("4", ttl_s=1)).json()
    path = f"{holds_of(t)}/{hold['id']}"
    time.sleep(1.2)  # the server's clock is the real one
    assert service.get(path).json()["status"] == "expired"
    assert balance(t)["held"] == 0
    refused = post(service, f"{path}/settle", {"cost": "1"})
    assert refused.status_code == 409
    assert refused.json()["hold_status"] == "expired"


def test_a_hold_or_a_settle_that_cannot_be_paid_is_refused_with_402_and_changes_nothing(
    t: Tenant,
) -> None:
    t.pool.grant(t.org, "10", granted_by="setup")
    service = t.client()
    state = money(t)
    too_big = post(service, holds_of(t), hold_body("10.0001"))
    assert too_big.status_code == 402, too_big.text
    problem = too_big.json()
    assert problem["code"] == "insufficient_credits"
    assert Decimal(problem["left"]) == 10
    assert money(t) == state
    assert service.get(holds_of(t)).json()["data"] == []

    hold = post(service, holds_of(t), hold_body("6")).json()
    path = f"{holds_of(t)}/{hold['id']}"
    state = money(t)
    over = post(service, f"{path}/settle", {"cost": "10.5"})  # 6 held + 4 left < 10.5
    assert over.status_code == 402, over.text
    assert over.json()["code"] == "insufficient_credits"
    assert money(t) == state
    still = Hold.model_validate_json(service.get(path).content)
    assert still.status is HoldStatus.OPEN
    assert still.model_dump() == Hold.model_validate(hold).model_dump()
    assert post(service, f"{path}/settle", {"cost": "10"}).status_code == 201
    assert balance(t) == {"total": 10, "used": 10, "left": 0, "held": 0}


def test_holds_are_listed_newest_first_in_pages_and_filtered_by_status(t: Tenant) -> None:
    t.pool.grant(t.org, "100", granted_by="setup")
    service = t.client()
    ids = [post(service, holds_of(t), hold_body("1")).json()["id"] for _ in range(5)]
    post(service, f"{holds_of(t)}/{ids[1]}/release")
    post(service, f"{holds_of(t)}/{ids[3]}/settle", {"cost": "1"})
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = service.get(holds_of(t), params=params).json()
        assert len(page["data"]) <= 2
        seen += [h["id"] for h in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    by_status = {
        status: [
            h["id"] for h in service.get(holds_of(t), params={"status": status}).json()["data"]
        ]
        for status in ("open", "settled", "released", "expired")
    }
    assert by_status == {
        "open": [ids[4], ids[2], ids[0]],
        "settled": [ids[3]],
        "released": [ids[1]],
        "expired": [],
    }
    bad = service.get(holds_of(t), params={"status": "closed"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_input"


def test_staff_and_admins_read_holds_members_may_not_and_only_the_service_changes_them(
    t: Tenant,
) -> None:
    t.pool.grant(t.org, "10", granted_by="setup")
    hold = post(t.client(), holds_of(t), hold_body("2")).json()
    path = f"{holds_of(t)}/{hold['id']}"
    for role in ("staff", "admin"):
        reader = t.client(role)
        assert reader.get(holds_of(t)).status_code == 200
        assert reader.get(path).json()["id"] == hold["id"]
        for write in (post(reader, holds_of(t), hold_body("1")), post(reader, f"{path}/release")):
            assert write.status_code == 403
    member = t.client("member")
    assert member.get(holds_of(t)).status_code == 403
    assert member.get(path).status_code == 403
    assert t.client("other_admin").get(path).status_code == 404
    assert balance(t)["held"] == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (hold_body("1.5") | {"amount": 1.5}, "invalid_amount"),
        (hold_body("1", ttl_s=0), "invalid_input"),
        (hold_body("1", ttl_s=86401), "invalid_input"),
        (hold_body("1", ttl_s="60"), "invalid_input"),
        (hold_body("1", extra=True), "invalid_input"),
        ({"user_id": "u-1", "amount": "1"}, "invalid_input"),
        (hold_body("1", quantity="5"), "invalid_input"),
    ],
    ids=[
        "float amount",
        "ttl 0",
        "ttl above a day",
        "ttl as text",
        "unknown field",
        "no feature",
        "amount and quantity",
    ],
)
def test_malformed_holds_are_refused_with_a_problem(
    t: Tenant, body: dict[str, Any], code: str
) -> None:
    t.pool.grant(t.org, "10", granted_by="setup")
    state = money(t)
    refused = post(t.client(), holds_of(t), body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == code
    assert money(t) == state


def test_missing_holds_are_404_problems(t: Tenant) -> None:
    service = t.client()
    for answer in (
        service.get(f"{holds_of(t)}/999"),
        post(service, f"{holds_of(t)}/999/settle", {"cost": "1"}),
        post(service, f"{holds_of(t)}/999/release"),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "not_found"


def test_the_openapi_document_describes_every_hold_route(t: Tenant) -> None:
    document = t.client(None).get("/openapi.json").json()
    paths = document["paths"]
    create = paths["/v1/orgs/{org}/holds"]["post"]
    assert {"201", "401", "402", "403", "404", "409", "413", "422"} <= set(create["responses"])
    schemas = document["components"]["schemas"]
    assert schemas["HoldBody"]["not"]["required"] == ["amount", "quantity"]  # one at most
    assert schemas["SettleBody"]["not"]["required"] == ["cost", "quantity"]
    ttl = schemas["HoldBody"]["properties"]["ttl_s"]["anyOf"][0]
    assert (ttl["type"], ttl["minimum"], ttl["maximum"]) == ("integer", 1, 86400)
    settle = paths["/v1/orgs/{org}/holds/{hold_id}/settle"]["post"]
    assert {"201", "402", "404", "409"} <= set(settle["responses"])
    assert "hold_not_open" in settle["responses"]["409"]["description"]
    release = paths["/v1/orgs/{org}/holds/{hold_id}/release"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in release["parameters"]}
    listing = paths["/v1/orgs/{org}/holds"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "cursor", "limit"}
    assert "hold_status" in schemas["Problem"]["properties"]


def test_the_server_holds_for_its_configured_time_to_live(
    sqlite_templates: SqliteTemplates, tmp_path: Path
) -> None:
    db_url = sqlite_templates.fresh()
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", "10")
        key = pool.create_key("service", name="backend")[1]
    env = {"CREDITPOOL_HOLD_TTL_S_DEFAULT": "30", "CREDITPOOL_HOLD_TTL_S_MAX": "60"}
    base_url, process = start_server(db_url, tmp_path / "server.log", env=env)
    try:
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as http:
            default = Hold.model_validate_json(
                post(http, "/v1/orgs/acme/holds", hold_body("1")).content
            )
            assert (default.expires_at - default.created_at).total_seconds() == 30
            longest = post(http, "/v1/orgs/acme/holds", hold_body("1", ttl_s=60))
            assert longest.status_code == 201, longest.text
            refused = post(http, "/v1/orgs/acme/holds", hold_body("1", ttl_s=61))
            assert refused.status_code == 422, refused.text
            assert refused.json()["code"] == "invalid_input"
    finally:
        stop_process(process)


def test_the_server_writes_a_hold_that_ran_out_on_a_quiet_organization(
    sqlite_templates: SqliteTemplates, tmp_path: Path
) -> None:
    """The periodic sweep writes the hold's end (and announces it to live pages) although
    nothing else happens in the organization; without it, it would wait for a change."""
    db_url = sqlite_templates.fresh()
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", "10")
        key = pool.create_key("service", name="backend")[1]
        env = {"CREDITPOOL_SWEEP_INTERVAL_S": "0.2"}
        base_url, process = start_server(db_url, tmp_path / "server.log", env=env)
        try:
            with httpx.Client(
                base_url=base_url, headers={"Authorization": f"Bearer {key}"}
            ) as http:
                created = post(http, "/v1/orgs/acme/holds", hold_body("4", ttl_s=1))
                assert created.status_code == 201, created.text
                hold_id = created.json()["id"]
            deadline = time.monotonic() + 10
            written: list[str] = []
            while time.monotonic() < deadline and not written:
                time.sleep(0.2)
                with pool.db.engine.connect() as conn:  # the rows, not a read that sweeps
                    written = [
                        r[0]
                        for r in conn.exec_driver_sql(
                            "SELECT action FROM ledger WHERE org_id = 'acme' AND hold_id = ?",
                            (hold_id,),
                        )
                        if r[0] == "hold_expiry"
                    ]
            assert written == ["hold_expiry"]
        finally:
            stop_process(process)


# -- the Python clients ------------------------------------------------------------------


def test_the_client_holds_settles_releases_and_lists(t: Tenant) -> None:
    t.pool.grant(t.org, "40", granted_by="setup")
    with Client(t.server.base_url, t.keys["service"], retry=FAST) as client:
        hold = client.hold(t.org, "topic_detection", user_id="u-1", amount=Decimal("8"), ttl_s=300)
        assert isinstance(hold, Hold)
        assert hold.status is HoldStatus.OPEN
        assert client.hold_of(t.org, hold.id) == hold == t.pool.hold_of(t.org, hold.id)
        assert client.balance(t.org).held == 8
        paid = client.settle(
            t.org, hold.id, cost="9.5", feature_name="Topics", idempotency_key="s1"
        )
        assert isinstance(paid, Consumption)
        assert (paid.cost, paid.hold_id, paid.feature_name) == (Decimal("9.5"), hold.id, "Topics")
        assert (
            client.settle(t.org, hold.id, cost="9.5", feature_name="Topics", idempotency_key="s1")
            == paid
        )
        with pytest.raises(HoldNotOpen) as not_open:
            client.release(t.org, hold.id)
        assert not_open.value.extra["status"] == "settled"
        second = client.hold(t.org, "report", user_id="u-2")  # a fixed price: one use
        assert second.amount == Decimal("0.50")
        released = client.release(t.org, second.id)
        assert released.status is HoldStatus.RELEASED
        with pytest.raises(InsufficientCredits) as refused:
            client.hold(t.org, "report", user_id="u-1", amount="1000")
        assert refused.value.extra["left"] == Decimal("30.5")
        page = client.holds(t.org, limit=1)
        assert [h.id for h in page.data] == [second.id]
        assert [h.id for h in client.iter_holds(t.org, limit=1)] == [second.id, hold.id]
        assert [h.id for h in client.holds(t.org, status="settled").data] == [hold.id]


def test_the_async_client_holds_settles_and_releases(t: Tenant) -> None:
    t.pool.grant(t.org, "40", granted_by="setup")

    async def run() -> None:
        async with AsyncClient(t.server.base_url, t.keys["service"], retry=FAST) as client:
            hold = await client.hold(t.org, "topic_detection", user_id="u-1", quantity="250")
            assert hold.amount == Decimal("2.5")
            assert await client.hold_of(t.org, hold.id) == hold
            paid = await client.settle(t.org, hold.id, quantity=100)
            assert (paid.cost, paid.hold_id) == (Decimal(1), hold.id)
            with pytest.raises(HoldNotOpen) as caught:
                await client.settle(t.org, hold.id, cost="1")
            assert caught.value.extra["status"] == "settled"
            other = await client.hold(t.org, "topic_detection", user_id="u-1", amount="3")
            assert (await client.release(t.org, other.id, idempotency_key="r1")).released == 3
            assert (await client.release(t.org, other.id, idempotency_key="r1")).released == 3
            listed = [h.id async for h in client.iter_holds(t.org, limit=1)]
            assert listed == [other.id, hold.id]
            assert (await client.balance(t.org)).left == 39

    asyncio.run(run())
