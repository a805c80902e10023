"""Webhook delivery rules end to end (issue 11), on a real server whose worker runs with a
short retry schedule, a 1 s timeout and endpoints disabled after 2 s of failures:

- no redirect is followed: a 3xx is a failed attempt, the place it points to hears nothing;
- a receiver slower than the timeout is a timed-out attempt, retried;
- an endpoint failing with no success is disabled, and the API says why;
- the delivery log shows each attempt's status, duration, response excerpt and the next
  attempt;
- secrets are sealed at rest: neither the endpoint's row nor a recorded HTTP answer holds
  the ``whsec_`` value.

Each test sends its own endpoint a ``webhook.test`` event (delivered to that endpoint only),
so one server serves the module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from creditpool import CreditPool
from tests.conftest import SKIP_PG, skip_or_fail
from tests.e2e.conftest import BACKENDS, Server, start_server
from tests.e2e.receiver import receiving
from tests.support import PostgresTemplates, SqliteTemplates

TIMEOUT_S = 1.0
DISABLE_AFTER_S = 2.0
ENV = {
    "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "CREDITPOOL_WEBHOOK_RETRY_SCHEDULE": ",".join(["0.3"] * 12),
    "CREDITPOOL_WEBHOOK_TIMEOUT_S": str(TIMEOUT_S),
    "CREDITPOOL_WEBHOOK_DISABLE_AFTER_S": str(DISABLE_AFTER_S),
}
Delivery = dict[str, Any]


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    if request.param == "postgres" and postgres_templates is None:
        skip_or_fail(SKIP_PG)
    if request.param == "sqlite":
        db_url = sqlite_templates.fresh()
    else:
        assert postgres_templates is not None
        db_url = postgres_templates.fresh()
    pool = CreditPool.open(db_url)
    keys = {
        "service": pool.create_key("service", name="backend")[1],
        "staff": pool.create_key("staff", name="cs@vendor.example")[1],
    }
    log = tmp_path_factory.mktemp("server") / "server.log"
    base_url, process = start_server(db_url, log, env=ENV)
    running = Server(base_url, db_url, process, log, pool, keys)
    try:
        yield running
    finally:
        running.stop()
        pool.close()
        if request.param == "postgres" and postgres_templates is not None:
            postgres_templates.drop(db_url)


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def endpoint_at(server: Server, url: str, **headers: str) -> dict[str, Any]:
    made = ok(
        server.client().post("/v1/webhook-endpoints", json={"url": url}, headers=headers), 201
    )
    assert made["secret"].startswith("whsec_")
    return made


def send_test(server: Server, endpoint: dict[str, Any]) -> Delivery:
    return ok(server.client().post(f"/v1/webhook-endpoints/{endpoint['id']}/test"), 201)


def delivery_when(
    server: Server, endpoint: dict[str, Any], predicate: Callable[[Delivery], bool]
) -> Delivery:
    """The endpoint's only delivery, read over HTTP until ``predicate`` holds."""
    path = f"/v1/webhook-endpoints/{endpoint['id']}/deliveries"
    deadline = time.monotonic() + 15
    while True:
        [delivery] = ok(server.client().get(path))["data"]
        if predicate(delivery):
            return delivery
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in 15 s: {delivery}")
        time.sleep(0.05)


@contextmanager
def redirecting(to: str, status: int) -> Iterator[str]:
    """A receiver that answers every delivery with a redirect to ``to``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(status)
            self.send_header("location", to)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"moved")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed_and_is_no_delivery(server: Server, status: int) -> None:
    with receiving() as elsewhere, redirecting(elsewhere.url, status) as url:
        endpoint = endpoint_at(server, url)
        send_test(server, endpoint)
        delivery = delivery_when(server, endpoint, lambda d: len(d["attempts"]) >= 2)
        assert delivery["status"] != "delivered"
        assert delivery["delivered_at"] is None
        first = delivery["attempts"][0]
        assert (first["status_code"], first["response"], first["error"]) == (
            status,
            "moved",
            None,
        )
        time.sleep(0.3)
        assert elsewhere.arrivals == []


def test_a_receiver_slower_than_the_timeout_is_a_timed_out_attempt_retried_later(
    server: Server,
) -> None:
    with receiving() as receiver:
        receiver.delay_s = TIMEOUT_S + 1
        endpoint = endpoint_at(server, receiver.url)
        receiver.secrets = [endpoint["secret"]]
        sent = send_test(server, endpoint)
        assert sent["status"] == "pending"
        delivery = delivery_when(server, endpoint, lambda d: len(d["attempts"]) >= 2)
        assert delivery["status"] != "delivered"
        for attempt in delivery["attempts"][:2]:
            assert attempt["status_code"] is None
            assert attempt["error"] == "timed out"
            assert TIMEOUT_S * 1000 <= attempt["duration_ms"] < (TIMEOUT_S + 1) * 1000
        assert delivery["attempt_count"] >= 2  # retried after the timeout
        receiver.delay_s = 0


def test_an_endpoint_failing_without_success_is_disabled_and_the_api_says_why(
    server: Server,
) -> None:
    with receiving() as receiver:
        receiver.answer = lambda n: 500
        endpoint = endpoint_at(server, receiver.url)
        path = f"/v1/webhook-endpoints/{endpoint['id']}"
        send_test(server, endpoint)
        # the log shows the failures and when the next attempt comes
        failing = delivery_when(server, endpoint, lambda d: len(d["attempts"]) >= 1)
        assert failing["attempts"][0]["status_code"] == 500
        assert failing["attempts"][0]["response"] == "receiver says no"
        assert failing["attempts"][0]["duration_ms"] >= 0
        if failing["status"] == "pending":
            assert failing["next_attempt_at"] is not None
        deadline = time.monotonic() + 15
        while ok(server.client().get(path))["enabled"]:
            assert time.monotonic() < deadline, "never disabled"
            time.sleep(0.1)
        for role in ("service", "staff"):
            shown = ok(server.client(role).get(path))
            assert shown["enabled"] is False
            assert shown["failing_since"] is not None
            assert shown["last_success_at"] is None
            reason = shown["disabled_reason"]
            assert reason.startswith("disabled at ")
            assert "no successful delivery since" in reason
            listed = ok(server.client(role).get("/v1/webhook-endpoints"))["data"]
            assert next(e for e in listed if e["id"] == endpoint["id"]) == shown
        # disabled: nothing more is sent, not even a test
        tried = len(receiver.arrivals)
        send_test(server, endpoint)
        time.sleep(1.0)
        assert len(receiver.arrivals) == tried
        # enabled again: a fresh start, and the pending deliveries go out
        receiver.answer = lambda n: 200
        enabled = ok(server.client().patch(path, json={"enabled": True}))
        assert (enabled["failing_since"], enabled["disabled_reason"]) == (None, None)
        receiver.wait_for(lambda found: any(a.status == 200 for a in found))


def test_secrets_are_sealed_at_rest_even_when_the_request_had_an_idempotency_key(
    server: Server,
) -> None:
    endpoint = endpoint_at(server, "https://hooks.vendor.example/", **{"Idempotency-Key": "wh-1"})
    rotated = ok(
        server.client().post(
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
            headers={"Idempotency-Key": "wh-2"},
        )
    )
    with server.pool.db.read() as tx:
        row = tx.conn.execute(
            text("SELECT secret, old_secret FROM webhook_endpoints WHERE id = :id"),
            {"id": endpoint["id"]},
        ).one()
        recorded = [r[0] for r in tx.conn.exec_driver_sql("SELECT body FROM http_idempotency")]
    stored = [*row, *(str(b) for b in recorded)]
    for secret in (endpoint["secret"], rotated["secret"]):
        for value in stored:
            assert secret not in value
            assert secret.removeprefix("whsec_") not in value
    assert all(row)
    assert "secret" not in ok(server.client().get(f"/v1/webhook-endpoints/{endpoint['id']}"))
