from __future__ import annotations

from tests.e2e.conftest import Server


def test_a_consumption_through_a_real_server_is_charged_once_per_idempotency_key(
    server: Server,
) -> None:
    staff, service = server.client("staff"), server.client("service")
    assert staff.post("/v1/orgs/acme/grants", json={"amount": "5"}).status_code == 201
    body = {"feature": "report", "user_id": "u-1"}
    first = service.post("/v1/orgs/acme/consumptions", json=body, headers={"Idempotency-Key": "k"})
    again = service.post("/v1/orgs/acme/consumptions", json=body, headers={"Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert server.pool.balance("acme").left == 4.5
