"""The Python client's event, webhook and credit-request methods against a real server (its
delivery worker running) and a real receiver that verifies each signature."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditpool import (
    CreditPool,
    CreditRequest,
    CreditRequestStatus,
    DeliveryStatus,
    Event,
    Grant,
    InvalidAmount,
    InvalidInput,
    NotFound,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)
from creditpool.client import AsyncClient, Client, Retry
from tests.e2e.conftest import Server, start_server
from tests.e2e.receiver import Receiver, receiving

FAST = Retry(attempts=3, backoff_s=0.01, backoff_s_max=0.05)
ENV = {
    "CREDITPOOL_SECRET_KEY": "e2e client webhook test key, not a secret",
    "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "CREDITPOOL_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2",
    "CREDITPOOL_WEBHOOK_TIMEOUT_S": "2",
}


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    pool = CreditPool.open(db_url)
    pool.create_org("acme", name="Acme Inc.")
    keys = {
        "service": pool.create_key("service", name="backend")[1],
        "staff": pool.create_key("staff", name="cs@vendor.example")[1],
        "admin": pool.create_key("admin", org_id="acme", name="acme admin")[1],
    }
    log = tmp_path / "server.log"
    base_url, process = start_server(db_url, log, env=ENV)
    running = Server(base_url, db_url, process, log, pool, keys)
    yield running
    running.stop()
    pool.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def client_of(server: Server, role: str = "service") -> Client:
    return Client(server.base_url, server.keys[role], retry=FAST)


def test_client_manages_endpoints_and_reads_their_deliveries(
    server: Server, receiver: Receiver
) -> None:
    with client_of(server) as client:
        made = client.create_webhook_endpoint(receiver.url, description="sync")
        assert isinstance(made, WebhookEndpointWithSecret)
        assert made.secret.startswith("whsec_")
        assert (made.event_types, made.enabled) == ([], True)
        receiver.secrets = [made.secret]
        other = client.create_webhook_endpoint(
            receiver.url, event_types=["grant.created"], enabled=False
        )
        listed = client.webhook_endpoints()
        assert sorted(e.id for e in listed) == sorted([made.id, other.id])
        assert all(type(e) is WebhookEndpoint for e in listed)
        first = min(made.id, other.id)
        assert [e.id for e in client.webhook_endpoints(after=first)] == [max(made.id, other.id)]
        assert len(client.webhook_endpoints(limit=1)) == 1
        assert client.webhook_endpoint(made.id).description == "sync"
        changed = client.update_webhook_endpoint(other.id, enabled=True, description=None)
        assert (changed.enabled, changed.description) == (True, None)

        queued = client.test_webhook_endpoint(made.id)
        assert isinstance(queued, WebhookDelivery)
        [arrival] = receiver.wait_type("webhook.test")
        assert arrival.verified
        assert arrival.webhook_id == queued.event_id
        delivered = _wait_delivered(client, made.id, queued.id)
        assert [a.status_code for a in delivered.attempts] == [200]
        assert [d.id for d in client.webhook_deliveries(made.id)] == [queued.id]
        assert client.webhook_deliveries(made.id, status=DeliveryStatus.PENDING) == []
        again = client.retry_webhook_delivery(made.id, queued.id)
        assert again.status is DeliveryStatus.PENDING
        assert len(receiver.wait_type("webhook.test", 2)) == 2

        rotated = client.rotate_webhook_secret(made.id)
        assert rotated.secret != made.secret
        assert rotated.previous_secret_expires_at is not None

        client.delete_webhook_endpoint(other.id)
        with pytest.raises(NotFound):
            client.webhook_endpoint(other.id)
        with pytest.raises(InvalidInput):
            client.create_webhook_endpoint("ftp://nowhere")


def _wait_delivered(client: Client, endpoint_id: str, delivery_id: int) -> WebhookDelivery:
    for _ in range(100):
        d = client.webhook_delivery(endpoint_id, delivery_id)
        if d.status is DeliveryStatus.DELIVERED:
            return d
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} not delivered: {d}")


def test_client_reads_events_and_answers_credit_requests(server: Server) -> None:
    with client_of(server, "admin") as admin, client_of(server, "staff") as staff:
        asked = admin.request_credits("acme", "500", message="Q4 push")
        assert isinstance(asked, CreditRequest)
        assert (asked.amount, asked.requested_by) == (500, "acme admin")
        assert admin.request_credits("acme", 7, idempotency_key="r-1") == admin.request_credits(
            "acme", 7, idempotency_key="r-1"
        )
        second = staff.credit_requests("acme")[0]
        with pytest.raises(InvalidAmount):
            admin.request_credits("acme", 1.5)  # type: ignore[arg-type]  # refused before sending

        granted = staff.grant_credit_request("acme", asked.id, amount="400", note="ok")
        assert isinstance(granted, Grant)
        assert (granted.amount, granted.granted_by) == (400, "cs@vendor.example")
        dismissed = staff.dismiss_credit_request("acme", second.id)
        assert dismissed.status is CreditRequestStatus.DISMISSED
        assert staff.credit_requests("acme", status=CreditRequestStatus.OPEN) == []

    with client_of(server) as service:
        events = service.events("acme")
        assert all(isinstance(e, Event) for e in events)
        types = [e.type for e in events]
        assert types.count("credits.requested") == 2
        assert "grant.created" in types
        [requested] = service.events("acme", type="credits.requested", limit=1)
        older = service.events("acme", type="credits.requested", before=requested.id)
        assert [e.data["amount"] for e in older] == ["500.00"]
        with pytest.raises(NotFound):
            service.events("nobody")


def test_async_client_has_the_same_methods(server: Server, receiver: Receiver) -> None:
    async def scenario() -> None:
        async with AsyncClient(server.base_url, server.keys["service"], retry=FAST) as client:
            made = await client.create_webhook_endpoint(receiver.url)
            receiver.secrets = [made.secret]
            assert [e.id for e in await client.webhook_endpoints()] == [made.id]
            queued = await client.test_webhook_endpoint(made.id)
            assert (await client.webhook_delivery(made.id, queued.id)).event_type == (
                "webhook.test"
            )
            assert [d.id for d in await client.webhook_deliveries(made.id, limit=5)] == [queued.id]
            asked = await client.request_credits("acme", "3")
            assert [r.id for r in await client.credit_requests("acme")] == [asked.id]
            assert (await client.events("acme", limit=1))[0].type == "credits.requested"
            [arrival] = await asyncio.to_thread(receiver.wait_type, "webhook.test")
            assert arrival.verified
            await client.delete_webhook_endpoint(made.id)
            assert await client.webhook_endpoints() == []

    asyncio.run(scenario())
