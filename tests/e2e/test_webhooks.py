"""Webhooks end to end: a real server (its delivery worker and sweep running) and a real
receiver that verifies every delivery with the official ``standardwebhooks`` package.

Every event type is caused through the public API and arrives signed with the right data;
a failing receiver gets the same ``webhook-id`` until it answers 2xx; a server killed with
SIGKILL between commit and delivery delivers after its restart; two processes on one
PostgreSQL deliver each event once; URLs pointing inside are refused by default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditpool import CreditPool
from tests.e2e.conftest import Server, free_port, start_server
from tests.e2e.receiver import Arrival, Receiver, receiving

ENV = {
    "CREDITPOOL_SECRET_KEY": "e2e webhook test key, not a secret",
    "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "CREDITPOOL_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2",
    "CREDITPOOL_SWEEP_INTERVAL_S": "0.5",
    "CREDITPOOL_WEBHOOK_TIMEOUT_S": "2",
}
ORG = "acme"


def launch(
    db_url: str, tmp_path: Path, *, env: dict[str, str] | None = None, workers: int = 1
) -> Server:
    """A server on ``db_url`` with organization ``acme``, a ``job`` feature of 1 credit, and
    keys of every role."""
    pool = CreditPool.open(db_url)
    pool.create_org(ORG, name="Acme Inc.", timezone="Europe/Berlin")
    pool.set_feature("job", name="Job", cost="1")
    keys = {
        "service": pool.create_key("service", name="backend")[1],
        "staff": pool.create_key("staff", name="cs@vendor.example")[1],
        "admin": pool.create_key("admin", org_id=ORG, name="acme admin")[1],
        "member": pool.create_key("member", org_id=ORG, user_id="u-1", name="u-1")[1],
    }
    log = tmp_path / "server.log"
    base_url, process = start_server(db_url, log, env=ENV if env is None else env, workers=workers)
    return Server(base_url, db_url, process, log, pool, keys)


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    running = launch(db_url, tmp_path)
    yield running
    running.stop()
    running.pool.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def subscribe(server: Server, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    """An endpoint at the receiver; the receiver verifies with its secret."""
    response = server.client().post("/v1/webhook-endpoints", json={"url": receiver.url, **fields})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    assert endpoint["secret"].startswith("whsec_")
    receiver.secrets = [endpoint["secret"]]
    return endpoint


def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def consume(server: Server, user: str = "u-1") -> dict[str, Any]:
    return ok(
        server.client().post(
            f"/v1/orgs/{ORG}/consumptions", json={"feature": "job", "user_id": user}
        )
    )


def grant(server: Server, amount: str, **fields: Any) -> dict[str, Any]:
    body = {"amount": amount, **fields}
    return ok(server.client("staff").post(f"/v1/orgs/{ORG}/grants", json=body))


def event_log(server: Server) -> dict[str, str]:
    """Every event of the organization: id -> type."""
    found: dict[str, str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = ok(server.client().get(f"/v1/orgs/{ORG}/event-log", params=params), 200)
        found.update({e["id"]: e["type"] for e in page["data"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def contains(data: dict[str, Any], model: dict[str, Any]) -> bool:
    return all(data.get(k) == v for k, v in model.items())


def cause_every_event(server: Server) -> dict[str, Any]:
    """Cause each event type through the API; the answers that the events' data must show."""
    admin, service, staff, org = (
        server.client("admin"),
        server.client(),
        server.client("staff"),
        f"/v1/orgs/{ORG}",
    )
    ok(admin.patch(org, json={"low_balance_thresholds": ["5", "2"]}), 200)
    ok(service.post(f"{org}/teams", json={"id": "t-1", "monthly_limit": "2"}))
    ok(service.put(f"{org}/members/u-1", json={"team_id": "t-1"}), 200)
    seen: dict[str, Any] = {"grant": grant(server, "10")}
    seen["consumptions"] = [consume(server) for _ in range(6)]  # Left 4: low (5), team over 2
    held = ok(
        service.post(f"{org}/holds", json={"feature": "job", "user_id": "u-1", "amount": "1"})
    )
    seen["released"] = ok(service.post(f"{org}/holds/{held['id']}/release", json={}), 200)
    held = ok(
        service.post(f"{org}/holds", json={"feature": "job", "user_id": "u-1", "amount": "1"})
    )
    seen["held"] = held
    seen["settled"] = ok(service.post(f"{org}/holds/{held['id']}/settle", json={"cost": "1"}))
    first = seen["consumptions"][0]["id"]
    seen["refunded"] = ok(service.post(f"{org}/consumptions/{first}/refund", json={}), 200)
    while ok(service.get(f"{org}/balance"), 200)["left"] not in ("0", "0.00"):
        consume(server)  # Left 4 -> 0: low (2), then depleted
    recovering = grant(server, "20")  # recovered
    seen["voided"] = ok(staff.post(f"{org}/grants/{recovering['id']}/void", json={}), 200)
    # Staff corrections (Left 0 -> 1 -> 0: no threshold crossed again).
    credit = {"credits": "1", "reason": "goodwill"}
    seen["adjusted"] = ok(staff.post(f"{org}/adjustments", json=credit))
    ok(staff.post(f"{org}/adjustments", json={"credits": "-1", "reason": "undone"}))
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    first_grant = f"{org}/grants/{seen['grant']['id']}"
    seen["rescheduled"] = ok(staff.patch(first_grant, json={"expires_at": later}), 200)
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    seen["expiring"] = grant(server, "5", expires_at=soon)  # expiring soon now, expired later
    seen["request"] = ok(
        admin.post(f"{org}/credit-requests", json={"amount": "50", "message": "more please"})
    )
    return seen


EVERY_TYPE = [
    "grant.created",
    "consumption.created",
    "consumption.refunded",
    "grant.voided",
    "balance.low",
    "balance.depleted",
    "balance.recovered",
    "team.limit_crossed",
    "hold.created",
    "hold.released",
    "hold.settled",
    "grant.expired",
    "grant.expiring_soon",
    "credits.requested",
    "adjustment.created",
    "grant.expiry_changed",
]


def test_every_event_type_arrives_signed_with_its_data(server: Server, receiver: Receiver) -> None:
    subscribe(server, receiver)
    seen = cause_every_event(server)
    for event_type in EVERY_TYPE:
        receiver.wait_type(event_type, timeout_s=15)
    arrivals = list(receiver.arrivals)
    assert all(a.verified for a in arrivals), [a.type for a in arrivals if not a.verified]
    logged = event_log(server)
    assert {a.webhook_id: a.type for a in arrivals}.items() <= logged.items()
    assert all(a.body["timestamp"] and a.data["org_id"] == ORG for a in arrivals)

    def one(event_type: str) -> dict[str, Any]:
        return receiver.of_type(event_type)[0].data

    assert contains(one("grant.created"), seen["grant"])
    created = {a.data["id"]: a.data for a in receiver.of_type("consumption.created")}
    for c in seen["consumptions"]:
        assert contains(created[c["id"]], c)
    assert contains(one("consumption.refunded"), seen["refunded"])
    assert contains(one("grant.voided"), seen["voided"])
    assert {a.data["id"] for a in receiver.of_type("hold.created")} >= {seen["held"]["id"]}
    assert contains(one("hold.released"), seen["released"])
    settled = one("hold.settled")
    assert (settled["hold_id"], settled["consumption_id"]) == (
        seen["held"]["id"],
        seen["settled"]["id"],
    )
    # Each threshold fires once per fall below it: after the grant of 20 (recovered), its
    # void falls below both again, and so does the short grant's expiry.
    lows = sorted(a.data["threshold"] for a in receiver.of_type("balance.low"))
    assert lows == ["2.00"] * 3 + ["5.00"] * 3, lows
    assert one("balance.depleted")["left"] in ("0", "0.00")
    team = one("team.limit_crossed")
    assert team["team_id"] == "t-1"
    assert len(receiver.of_type("team.limit_crossed")) == 1
    expiring = seen["expiring"]["id"]
    assert one("grant.expiring_soon")["grant_id"] == expiring
    assert one("grant.expired")["grant_id"] == expiring
    assert one("grant.expired")["credits_lost"] in ("5", "5.00")
    adjusted = {a.data["id"]: a.data for a in receiver.of_type("adjustment.created")}
    assert contains(adjusted[seen["adjusted"]["id"]], seen["adjusted"])
    assert sorted(a["reason"] for a in adjusted.values()) == ["goodwill", "undone"]
    changed = one("grant.expiry_changed")
    assert contains(changed, seen["rescheduled"])
    assert changed["expires_before"] is None  # it was permanent
    asked = one("credits.requested")
    assert contains(asked, seen["request"])
    assert asked["requested_by"] == "acme admin"


def test_a_failing_receiver_gets_the_same_delivery_until_it_answers_2xx(
    server: Server, receiver: Receiver
) -> None:
    receiver.answer = lambda n: 500 if n < 2 else 200
    endpoint = subscribe(server, receiver, event_types=["grant.created"])
    grant(server, "10")
    arrived = receiver.wait_for(lambda found: len(found) >= 3)
    time.sleep(0.5)  # nothing more comes
    assert [a.status for a in receiver.arrivals] == [500, 500, 200]
    assert len({a.webhook_id for a in arrived}) == 1
    assert all(a.verified for a in arrived)
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    deliveries = wait_for_deliveries(server, path, "delivered")
    assert len(deliveries) == 1
    delivery = deliveries[0]
    assert delivery["event_id"] == arrived[0].webhook_id
    assert delivery["attempt_count"] == 3
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]
    assert delivery["attempts"][0]["response"] == "receiver says no"
    one = ok(server.client("staff").get(f"{path}/{delivery['id']}"), 200)
    assert one == delivery
    listed = ok(server.client().get("/v1/webhook-endpoints"), 200)["data"]
    assert listed[0]["last_success_at"] is not None
    assert listed[0]["failing_since"] is None


def wait_for_deliveries(server: Server, path: str, status: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        items: list[dict[str, Any]] = ok(server.client().get(path), 200)["data"]
        if (items and all(d["status"] == status for d in items)) or time.monotonic() > deadline:
            return items
        time.sleep(0.1)


def test_retry_and_test_send_again_with_the_same_id(server: Server, receiver: Receiver) -> None:
    endpoint = subscribe(server, receiver, event_types=["grant.created"])
    base = f"/v1/webhook-endpoints/{endpoint['id']}"
    test = ok(server.client().post(f"{base}/test"))
    assert test["event_type"] == "webhook.test"
    assert receiver.wait_type("webhook.test")[0].data["endpoint_id"] == endpoint["id"]
    grant(server, "1")
    first = receiver.wait_type("grant.created")[0]
    delivered = wait_for_deliveries(server, f"{base}/deliveries?status=delivered", "delivered")
    again = next(d for d in delivered if d["event_type"] == "grant.created")
    ok(server.client().post(f"{base}/deliveries/{again['id']}/retry"), 200)
    second = receiver.wait_type("grant.created", 2)[1]
    assert second.webhook_id == first.webhook_id
    assert second.verified


def test_after_a_rotation_both_secrets_sign_until_the_old_one_expires(
    server: Server, receiver: Receiver
) -> None:
    endpoint = subscribe(server, receiver, event_types=["grant.created"])
    old = endpoint["secret"]
    rotated = ok(server.client().post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"), 200)
    new = rotated["secret"]
    assert new != old
    assert rotated["previous_secret_expires_at"] is not None
    assert "secret" not in ok(server.client().get(f"/v1/webhook-endpoints/{endpoint['id']}"), 200)
    grant(server, "1")
    arrival = receiver.wait_type("grant.created")[0]
    assert len(arrival.signature.split(" ")) == 2
    for secret in (old, new):
        receiver.secrets = [secret]
        assert verifies(receiver, arrival), secret


def verifies(receiver: Receiver, arrival: Arrival) -> bool:
    body = json.dumps(arrival.body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "webhook-id": arrival.webhook_id,
        "webhook-timestamp": arrival.timestamp,
        "webhook-signature": arrival.signature,
    }
    return receiver.verify(body, headers)


INSIDE = ["http://127.0.0.1:9/x", "http://169.254.169.254/", "http://[::1]/", "http://localhost/"]


def test_urls_inside_are_refused_by_default(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k != "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS"}
    server = launch(db_url, tmp_path, env=env)
    try:
        service = server.client()
        made = ok(service.post("/v1/webhook-endpoints", json={"url": "https://hooks.example.com/"}))
        for url in INSIDE:
            response = service.post("/v1/webhook-endpoints", json={"url": url})
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "invalid_input"
            patched = service.patch(f"/v1/webhook-endpoints/{made['id']}", json={"url": url})
            assert patched.status_code == 422, patched.text
        assert len(ok(service.get("/v1/webhook-endpoints"), 200)["data"]) == 1
    finally:
        server.stop()
        server.pool.close()


def test_roles(server: Server) -> None:
    service, staff = server.client(), server.client("staff")
    made = ok(service.post("/v1/webhook-endpoints", json={"url": "https://hooks.example.com/"}))
    one = f"/v1/webhook-endpoints/{made['id']}"
    for role in ("admin", "member"):
        client = server.client(role)
        for method, path in (
            ("GET", "/v1/webhook-endpoints"),
            ("GET", one),
            ("POST", f"{one}/test"),
        ):
            assert client.request(method, path).status_code == 403, (role, method, path)
        assert (
            client.post("/v1/webhook-endpoints", json={"url": "https://x.example/"}).status_code
            == 403
        )
    assert staff.get(one).status_code == 200
    assert staff.get(f"{one}/deliveries").status_code == 200
    assert staff.post(f"{one}/test").status_code == 403
    assert staff.patch(one, json={"enabled": False}).status_code == 403
    assert staff.delete(one).status_code == 403
    assert ok(service.patch(one, json={"enabled": False}), 200)["enabled"] is False
    requests = f"/v1/orgs/{ORG}/credit-requests"
    assert server.client("member").post(requests, json={"amount": "5"}).status_code == 403
    assert server.client("member").get(requests).status_code == 403
    assert staff.post(requests, json={"amount": "5"}).status_code == 403
    asked = ok(server.client("admin").post(requests, json={"amount": "5"}))
    assert server.client("admin").post(f"{requests}/{asked['id']}/grant").status_code == 403
    granted = ok(staff.post(f"{requests}/{asked['id']}/grant", json={"note": "welcome"}))
    assert granted["amount"] in ("5", "5.00")
    assert granted["granted_by"] == "cs@vendor.example"
    assert staff.post(f"{requests}/{asked['id']}/dismiss").status_code == 409
    listed = ok(staff.get(requests, params={"status": "granted"}), 200)["data"]
    assert [r["grant_id"] for r in listed] == [granted["id"]]
    assert server.client("member").get(f"/v1/orgs/{ORG}/event-log").status_code == 403
    assert ok(server.client("admin").get(f"/v1/orgs/{ORG}/event-log"), 200)["data"]
    assert service.delete(one).status_code == 204
    assert service.get(one).status_code == 404


def test_a_server_killed_between_commit_and_delivery_delivers_after_restart(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    pool = CreditPool.open(db_url)
    pool.create_org(ORG, name="Acme Inc.")
    pool.set_feature("job", name="Job", cost="1")
    pool.grant(ORG, "100", granted_by="setup")
    key = pool.create_key("service", name="backend")[1]
    log = tmp_path / "server.log"
    _, process = start_server(db_url, log, port=port, env=ENV)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    try:
        endpoint = ok(
            client.post(
                "/v1/webhook-endpoints",
                json={"url": receiver.url, "event_types": ["consumption.created"]},
            )
        )
        receiver.secrets = [endpoint["secret"]]
        receiver.delay_s = 1.0  # deliveries are in flight when the kill comes
        made = {
            ok(
                client.post(f"/v1/orgs/{ORG}/consumptions", json={"feature": "job", "user_id": "u"})
            )["id"]
            for _ in range(10)
        }
        process.kill()
        process.wait()
        receiver.delay_s = 0
        _, process = start_server(db_url, log, port=port, env=ENV)
        receiver.wait_for(
            lambda found: made <= {a.data["id"] for a in found if a.status == 200}, timeout_s=30
        )
        assert all(a.verified for a in receiver.arrivals)
    finally:
        client.close()
        process.kill()
        process.wait()
        pool.close()


def test_two_processes_on_postgresql_deliver_each_event_once(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    if not db_url.startswith("postgres"):
        pytest.skip("SQLite runs one server process")
    server = launch(db_url, tmp_path, workers=2)
    try:
        grant(server, "100")
        subscribe(server, receiver, event_types=["consumption.created"])
        made = {consume(server)["id"] for _ in range(40)}
        receiver.wait_type("consumption.created", 40, timeout_s=20)
        time.sleep(1.0)  # a second copy would come now
        ids = [a.webhook_id for a in receiver.arrivals]
        assert len(ids) == len(set(ids)) == 40
        assert {a.data["id"] for a in receiver.arrivals} == made
    finally:
        server.stop()
        server.pool.close()
