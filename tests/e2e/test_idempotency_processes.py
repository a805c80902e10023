"""Idempotency across server processes: two uvicorn processes on one database.

For every mutating route of the OpenAPI document (a route added without a case here fails
``test_every_mutating_route_has_a_case``), the same ``Idempotency-Key`` and body are sent from
``THREADS`` threads released together, half to each process. Every answer must be the first
answer (replays carry ``Idempotent-Replayed: true``), or at most a documented 409
``idempotency_in_flight``; never a 5xx, never another refusal; and the change must have
happened exactly once. The same key with another body, or on another path (another
organization included), is a 409 ``idempotency_conflict`` that changes nothing. Over HTTP a
key is scoped to the API key that sent it, across organizations.

Also here: concurrent creations and upserts without a key (no 5xx: a creation that lost the
race is a 409 ``already_exists``, an upsert succeeds).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from creditpool import CreditPool
from creditpool.core.errors import NotFound
from tests.conftest import SKIP_PG, skip_or_fail
from tests.e2e.conftest import start_server, stop_process
from tests.support import PostgresTemplates, SqliteTemplates

pytestmark = pytest.mark.slow

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
THREADS = 8
ROUNDS = 3
MUTATING = {"post", "put", "patch", "delete"}
REPLAYED = "idempotent-replayed"
# Routes that take an Idempotency-Key but deliberately never replay it (documented on the
# route): a retried portal session mints a fresh one-time link, so no usable link is stored.
# So do creating a webhook endpoint and rotating its secret (a stored answer would keep the
# secret in the clear) and deleting one (idempotent by itself: a second DELETE is a 404).
NOT_REPLAYED = {
    ("POST", "/v1/portal-sessions"),
    ("POST", "/v1/webhook-endpoints"),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"),
}


@dataclass
class Processes:
    """Two server processes on one database, and a library pool on it."""

    base_urls: list[str]
    pool: CreditPool
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, process: int, token: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"}
        client = httpx.Client(base_url=self.base_urls[process], headers=headers, timeout=30)
        self.clients.append(client)
        return client


@pytest.fixture(scope="module", params=BACKENDS)
def processes(
    request: pytest.FixtureRequest,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Processes]:
    if request.param == "postgres" and postgres_templates is None:
        skip_or_fail(SKIP_PG)
    if request.param == "sqlite":
        db_url = sqlite_templates.fresh()
    else:
        assert postgres_templates is not None
        db_url = postgres_templates.fresh()
    logs: Path = tmp_path_factory.mktemp("servers")
    pool = CreditPool.open(db_url)
    started = [start_server(db_url, logs / f"server-{i}.log") for i in range(2)]
    running = Processes([base_url for base_url, _ in started], pool)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        for _, process in started:
            stop_process(process)
        pool.close()
        if request.param == "postgres":
            assert postgres_templates is not None
            postgres_templates.drop(db_url)


@dataclass
class Tenant:
    """Two fresh organizations (``org`` and ``other``) and a service and a staff key."""

    procs: Processes
    org: str
    other: str
    tokens: dict[str, str]

    @property
    def pool(self) -> CreditPool:
        return self.procs.pool

    def client(self, process: int, role: str = "service") -> httpx.Client:
        return self.procs.client(process, self.tokens[role])


def new_tenant(procs: Processes) -> Tenant:
    suffix = uuid.uuid4().hex[:10]
    org, other = f"a-{suffix}", f"b-{suffix}"
    procs.pool.create_org(org)
    procs.pool.create_org(other)
    tokens = {
        "service": procs.pool.create_key("service", name="backend")[1],
        "staff": procs.pool.create_key("staff", name="cs@vendor.example")[1],
    }
    return Tenant(procs, org, other, tokens)


@pytest.fixture
def tenant(processes: Processes) -> Tenant:
    return new_tenant(processes)


@dataclass
class Case:
    """One idempotent request, and how to tell that it took effect exactly once."""

    role: str
    method: str
    path: str
    body: dict[str, Any]
    status: int
    other_body: dict[str, Any] | None  # the same key with this body is a conflict (None: a
    # route whose body carries no arguments)
    other_path: str | None  # the same key and body here is a conflict (None: no such path)
    once: Callable[[], None]  # asserts the change happened exactly once, elsewhere nothing


def _org_create(t: Tenant) -> Case:
    new = f"n-{uuid.uuid4().hex[:10]}"

    def once() -> None:
        assert [o.id for o in t.pool.orgs(search=new)] == [new]
        assert t.pool.org(new).name == "Brand new"

    return Case(
        "service", "POST", "/v1/orgs", {"id": new, "name": "Brand new"}, 201,
        {"id": new, "name": "Other name"}, None, once,
    )  # fmt: skip


def _org_update(t: Tenant) -> Case:
    def once() -> None:
        assert t.pool.org(t.org).name == "Renamed"
        assert t.pool.org(t.other).name == t.other

    return Case(
        "service", "PATCH", f"/v1/orgs/{t.org}", {"name": "Renamed"}, 200,
        {"name": "Renamed again"}, f"/v1/orgs/{t.other}", once,
    )  # fmt: skip


def _team_create(t: Tenant) -> Case:
    def once() -> None:
        assert [(x.id, x.monthly_limit) for x in t.pool.teams(t.org)] == [("t-1", Decimal(10))]
        assert t.pool.teams(t.other) == []

    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/teams", {"id": "t-1", "monthly_limit": "10"}, 201,
        {"id": "t-1", "monthly_limit": "11"}, f"/v1/orgs/{t.other}/teams", once,
    )  # fmt: skip


def _team_update(t: Tenant) -> Case:
    t.pool.create_team(t.org, "t-1")
    t.pool.create_team(t.other, "t-1")

    def once() -> None:
        assert t.pool.team(t.org, "t-1").monthly_limit == Decimal(7)
        assert t.pool.team(t.other, "t-1").monthly_limit is None

    return Case(
        "service", "PATCH", f"/v1/orgs/{t.org}/teams/t-1", {"monthly_limit": "7"}, 200,
        {"monthly_limit": "8"}, f"/v1/orgs/{t.other}/teams/t-1", once,
    )  # fmt: skip


def _member_put(t: Tenant) -> Case:
    t.pool.create_team(t.org, "t-1")
    t.pool.create_team(t.other, "t-1")

    def once() -> None:
        assert [(m.user_id, m.team_id) for m in t.pool.members(t.org)] == [("u-9", "t-1")]
        assert t.pool.members(t.other) == []

    return Case(
        "service", "PUT", f"/v1/orgs/{t.org}/members/u-9", {"team_id": "t-1"}, 200,
        {"team_id": None}, f"/v1/orgs/{t.other}/members/u-9", once,
    )  # fmt: skip


def _feature_put(t: Tenant) -> Case:
    key, other = f"f-{uuid.uuid4().hex[:10]}", f"g-{uuid.uuid4().hex[:10]}"

    def once() -> None:
        assert t.pool.feature(key).cost == Decimal("0.75")
        with pytest.raises(NotFound):
            t.pool.feature(other)

    return Case(
        "service", "PUT", f"/v1/features/{key}", {"name": "F", "cost": "0.75"}, 200,
        {"name": "F", "cost": "0.8"}, f"/v1/features/{other}", once,
    )  # fmt: skip


def _grant(t: Tenant) -> Case:
    def once() -> None:
        assert [g.amount for g in t.pool.grants(t.org)] == [Decimal(3)]
        assert t.pool.grants(t.other) == []
        assert t.pool.verify() == []

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/grants", {"amount": "3", "reference": "INV-1"}, 201,
        {"amount": "4", "reference": "INV-1"}, f"/v1/orgs/{t.other}/grants", once,
    )  # fmt: skip


def _void(t: Tenant) -> Case:
    grant = t.pool.grant(t.org, "5")
    twin = t.pool.grant(t.other, "5")
    assert grant.id == twin.id  # ids are per organization: the other path names a real grant

    def once() -> None:
        assert t.pool.grant_info(t.org, grant.id).voided_at is not None
        assert t.pool.grant_info(t.other, twin.id).voided_at is None
        assert [e.action for e in t.pool.ledger(t.org)].count("void") == 1
        assert t.pool.balance(t.other).left == Decimal(5)

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/grants/{grant.id}/void", {"reason": "oops"}, 200,
        {"reason": "other"}, f"/v1/orgs/{t.other}/grants/{twin.id}/void", once,
    )  # fmt: skip


def _grant_update(t: Tenant) -> Case:
    grant = t.pool.grant(t.org, "5", expires_at=datetime.now(UTC) + timedelta(days=3))
    twin = t.pool.grant(t.other, "5", expires_at=datetime.now(UTC) + timedelta(days=3))
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()

    def once() -> None:
        assert [c.kind for c in t.pool.corrections(t.org)] == ["expiry_change"]
        assert [e.action for e in t.pool.ledger(t.org)].count("expiry_change") == 1
        assert t.pool.corrections(t.other) == []

    return Case(
        "staff", "PATCH", f"/v1/orgs/{t.org}/grants/{grant.id}", {"expires_at": later}, 200,
        {"expires_at": None}, f"/v1/orgs/{t.other}/grants/{twin.id}", once,
    )  # fmt: skip


def _adjust(t: Tenant) -> Case:
    t.pool.grant(t.org, "10")
    t.pool.grant(t.other, "10")

    def once() -> None:
        assert t.pool.balance(t.org).left == Decimal("8.5")
        assert [c.kind for c in t.pool.corrections(t.org)] == ["adjustment"]
        assert t.pool.balance(t.other).left == Decimal(10)

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/adjustments", {"credits": "-1.5", "reason": "x"}, 201,
        {"credits": "-1.6", "reason": "x"}, f"/v1/orgs/{t.other}/adjustments", once,
    )  # fmt: skip


def _consume(t: Tenant) -> Case:
    t.pool.grant(t.org, "10")
    t.pool.grant(t.other, "10")

    def once() -> None:
        assert len(t.pool.consumptions(t.org)) == 1
        assert t.pool.balance(t.org).left == Decimal("9.5")
        assert t.pool.consumptions(t.other) == []
        assert t.pool.balance(t.other).left == Decimal(10)

    body = {"feature": "report", "user_id": "u-1"}
    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/consumptions", body, 201,
        {**body, "user_id": "u-2"}, f"/v1/orgs/{t.other}/consumptions", once,
    )  # fmt: skip


def _refund(t: Tenant) -> Case:
    t.pool.grant(t.org, "10")
    t.pool.grant(t.other, "10")
    used = t.pool.consume(t.org, "report", user_id="u-1")
    twin = t.pool.consume(t.other, "report", user_id="u-1")
    assert used.id == twin.id is not None

    def once() -> None:
        assert t.pool.consumption(t.org, used.id or 0).status == "refunded"
        assert t.pool.balance(t.org).left == Decimal(10)
        assert [e.action for e in t.pool.ledger(t.org)].count("refund") == 1
        assert t.pool.consumption(t.other, twin.id or 0).status == "paid"

    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/consumptions/{used.id}/refund", {"reason": "bad"},
        200, {"reason": "worse"}, f"/v1/orgs/{t.other}/consumptions/{twin.id}/refund", once,
    )  # fmt: skip


def _hold(t: Tenant) -> Case:
    t.pool.grant(t.org, "10")
    t.pool.grant(t.other, "10")

    def once() -> None:
        assert [h.amount for h in t.pool.holds(t.org)] == [Decimal(2)]
        assert t.pool.balance(t.org).held == Decimal(2)
        assert t.pool.holds(t.other) == []
        assert t.pool.verify() == []

    body = {"feature": "report", "user_id": "u-1", "amount": "2"}
    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/holds", body, 201,
        {**body, "amount": "3"}, f"/v1/orgs/{t.other}/holds", once,
    )  # fmt: skip


def _settle(t: Tenant) -> Case:
    t.pool.grant(t.org, "10")
    t.pool.grant(t.other, "10")
    held = t.pool.hold(t.org, "report", user_id="u-1", amount="2")
    twin = t.pool.hold(t.other, "report", user_id="u-1", amount="2")
    assert held.id == twin.id

    def once() -> None:
        assert [c.cost for c in t.pool.consumptions(t.org)] == [Decimal(1)]
        assert t.pool.balance(t.org).left == Decimal(9)
        assert t.pool.hold_of(t.other, twin.id).status == "open"
        assert t.pool.verify() == []

    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/holds/{held.id}/settle", {"cost": "1"}, 201,
        {"cost": "1.5"}, f"/v1/orgs/{t.other}/holds/{twin.id}/settle", once,
    )  # fmt: skip


def _release(t: Tenant) -> Case:
    t.pool.grant(t.org, "10")
    t.pool.grant(t.other, "10")
    held = t.pool.hold(t.org, "report", user_id="u-1", amount="2")
    other = t.pool.hold(t.org, "report", user_id="u-1", amount="1")
    twin = t.pool.hold(t.other, "report", user_id="u-1", amount="2")

    def once() -> None:
        assert t.pool.hold_of(t.org, held.id).status == "released"
        assert t.pool.hold_of(t.org, other.id).status == "open"
        assert [e.action for e in t.pool.ledger(t.org)].count("release") == 1
        assert t.pool.hold_of(t.other, twin.id).status == "open"

    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/holds/{held.id}/release", {}, 200,
        None, f"/v1/orgs/{t.org}/holds/{other.id}/release", once,
    )  # fmt: skip


def _credit_request(t: Tenant) -> Case:
    def once() -> None:
        assert [r.amount for r in t.pool.credit_requests(t.org)] == [Decimal(50)]
        assert t.pool.credit_requests(t.other) == []
        assert len(t.pool.events(t.org, type="credits.requested")) == 1

    return Case(
        "service", "POST", f"/v1/orgs/{t.org}/credit-requests", {"amount": "50"}, 201,
        {"amount": "60"}, f"/v1/orgs/{t.other}/credit-requests", once,
    )  # fmt: skip


def _requested(t: Tenant) -> tuple[int, int]:
    asked = t.pool.request_credits(t.org, "20", requested_by="admin")
    twin = t.pool.request_credits(t.other, "20", requested_by="admin")
    assert asked.id == twin.id  # ids are per organization
    return asked.id, twin.id


def _credit_request_grant(t: Tenant) -> Case:
    rid, twin = _requested(t)

    def once() -> None:
        assert [g.amount for g in t.pool.grants(t.org)] == [Decimal(20)]
        assert t.pool.grants(t.other) == []
        assert [r.status for r in t.pool.credit_requests(t.other)] == ["open"]

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/credit-requests/{rid}/grant", {}, 201,
        {"amount": "25"}, f"/v1/orgs/{t.other}/credit-requests/{twin}/grant", once,
    )  # fmt: skip


def _credit_request_dismiss(t: Tenant) -> Case:
    rid, twin = _requested(t)

    def once() -> None:
        assert [r.status for r in t.pool.credit_requests(t.org)] == ["dismissed"]
        assert [r.status for r in t.pool.credit_requests(t.other)] == ["open"]

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/credit-requests/{rid}/dismiss", {}, 200,
        None, f"/v1/orgs/{t.other}/credit-requests/{twin}/dismiss", once,
    )  # fmt: skip


def _endpoint(t: Tenant) -> str:
    return t.pool.create_webhook_endpoint(f"https://hooks.{t.org}.example/x").id


def _endpoint_update(t: Tenant) -> Case:
    endpoint = _endpoint(t)

    def once() -> None:
        assert t.pool.webhook_endpoint(endpoint).description == "first"

    return Case(
        "service", "PATCH", f"/v1/webhook-endpoints/{endpoint}", {"description": "first"}, 200,
        {"description": "second"}, None, once,
    )  # fmt: skip


def _endpoint_test(t: Tenant) -> Case:
    endpoint = _endpoint(t)

    def once() -> None:
        assert len(t.pool.webhook_deliveries(endpoint)) == 1

    return Case(
        "service", "POST", f"/v1/webhook-endpoints/{endpoint}/test", {}, 201,
        None, None, once,
    )  # fmt: skip


def _delivery_retry(t: Tenant) -> Case:
    endpoint = _endpoint(t)
    delivery = t.pool.test_webhook_endpoint(endpoint)

    def once() -> None:
        assert len(t.pool.webhook_deliveries(endpoint)) == 1

    return Case(
        "service", "POST", f"/v1/webhook-endpoints/{endpoint}/deliveries/{delivery.id}/retry",
        {}, 200, None, None, once,
    )  # fmt: skip


def _key_create(t: Tenant) -> Case:
    def once() -> None:
        assert [(k.role.value, k.name) for k in t.pool.keys(org_id=t.org)] == [("admin", "k")]
        assert t.pool.keys(org_id=t.other) == []

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/keys", {"role": "admin", "name": "k"}, 201,
        {"role": "admin", "name": "other"}, f"/v1/orgs/{t.other}/keys", once,
    )  # fmt: skip


def _key_revoke(t: Tenant) -> Case:
    key, secret = t.pool.create_key("admin", org_id=t.org)
    other, _ = t.pool.create_key("admin", org_id=t.org)

    def once() -> None:
        assert [k.id for k in t.pool.keys(org_id=t.org) if k.revoked_at] == [key.id]
        assert t.pool.authenticate(secret) is None

    return Case(
        "staff", "POST", f"/v1/orgs/{t.org}/keys/{key.id}/revoke", {}, 200,
        None, f"/v1/orgs/{t.org}/keys/{other.id}/revoke", once,
    )  # fmt: skip


CASES: dict[tuple[str, str], Callable[[Tenant], Case]] = {
    ("POST", "/v1/orgs/{org}/keys"): _key_create,
    ("POST", "/v1/orgs/{org}/keys/{key_id}/revoke"): _key_revoke,
    ("POST", "/v1/orgs/{org}/credit-requests"): _credit_request,
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/grant"): _credit_request_grant,
    ("POST", "/v1/orgs/{org}/credit-requests/{request_id}/dismiss"): _credit_request_dismiss,
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): _endpoint_update,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/test"): _endpoint_test,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry"): _delivery_retry,
    ("POST", "/v1/orgs"): _org_create,
    ("PATCH", "/v1/orgs/{org}"): _org_update,
    ("POST", "/v1/orgs/{org}/teams"): _team_create,
    ("PATCH", "/v1/orgs/{org}/teams/{team}"): _team_update,
    ("PUT", "/v1/orgs/{org}/members/{user}"): _member_put,
    ("PUT", "/v1/features/{key}"): _feature_put,
    ("POST", "/v1/orgs/{org}/grants"): _grant,
    ("POST", "/v1/orgs/{org}/grants/{grant_id}/void"): _void,
    ("PATCH", "/v1/orgs/{org}/grants/{grant_id}"): _grant_update,
    ("POST", "/v1/orgs/{org}/adjustments"): _adjust,
    ("POST", "/v1/orgs/{org}/consumptions"): _consume,
    ("POST", "/v1/orgs/{org}/consumptions/{consumption_id}/refund"): _refund,
    ("POST", "/v1/orgs/{org}/holds"): _hold,
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/settle"): _settle,
    ("POST", "/v1/orgs/{org}/holds/{hold_id}/release"): _release,
}


def _all_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the calls in threads released together."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as threads:
        return list(threads.map(run, calls))


def _send(client: httpx.Client, method: str, path: str, body: Any, key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return lambda: client.request(method, path, json=body, headers=headers)


def _code(response: httpx.Response) -> str | None:
    if response.headers.get("content-type") != "application/problem+json":
        return None
    code: str = response.json()["code"]
    return code


def _conflict(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert _code(response) == "idempotency_conflict", response.text


def test_every_mutating_route_has_a_case(processes: Processes) -> None:
    document = httpx.get(f"{processes.base_urls[0]}/openapi.json").json()
    mutating = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in MUTATING
    }
    assert mutating - NOT_REPLAYED - CASES.keys() == set(), "mutating routes without a case"
    assert CASES.keys() - mutating == set(), "cases for routes that are gone"


@pytest.mark.parametrize("route", sorted(CASES), ids=" ".join)
def test_the_same_key_and_body_from_two_processes_has_one_outcome(
    processes: Processes, route: tuple[str, str]
) -> None:
    for _ in range(ROUNDS):
        t = new_tenant(processes)
        case = CASES[route](t)
        key = f"k-{uuid.uuid4().hex}"
        clients = [t.client(i % 2, case.role) for i in range(THREADS)]
        answers = _all_at_once([_send(c, case.method, case.path, case.body, key) for c in clients])
        summary = [(a.status_code, _code(a), a.headers.get(REPLAYED)) for a in answers]
        successes = [a for a in answers if a.status_code == case.status]
        firsts = [a for a in successes if REPLAYED not in a.headers]
        assert len(firsts) == 1, summary
        for answer in answers:
            if answer.status_code == 409 and _code(answer) == "idempotency_in_flight":
                continue  # documented: a duplicate that found the first one still running
            assert answer.status_code == case.status, summary
            assert answer.json() == firsts[0].json()
            assert answer is firsts[0] or answer.headers[REPLAYED] == "true"
        # The same key with another body, or on another path: refused, by either process.
        for process in (0, 1):
            client = t.client(process, case.role)
            if case.other_body is not None:
                _conflict(client.request(case.method, case.path, json=case.other_body,
                                         headers={"Idempotency-Key": key}))  # fmt: skip
            if case.other_path is not None:
                _conflict(client.request(case.method, case.other_path, json=case.body,
                                         headers={"Idempotency-Key": key}))  # fmt: skip
        case.once()


@pytest.mark.parametrize("route", ["consumptions", "grants"])
def test_one_key_sent_to_two_organizations_at_once_takes_effect_in_one(
    processes: Processes, route: str
) -> None:
    for _ in range(ROUNDS):
        t = new_tenant(processes)
        role, body = ("service", {"feature": "report", "user_id": "u-1"})
        if route == "grants":
            role, body = ("staff", {"amount": "2"})
        else:
            t.pool.grant(t.org, "10")
            t.pool.grant(t.other, "10")
        key = f"k-{uuid.uuid4().hex}"
        orgs = [t.org, t.other]
        calls = [
            _send(t.client(i % 2, role), "POST", f"/v1/orgs/{orgs[i // 2 % 2]}/{route}", body, key)
            for i in range(THREADS)
        ]
        answers = _all_at_once(calls)
        by_org = [answers[i] for i in range(THREADS) if i // 2 % 2 == 0]
        by_other = [answers[i] for i in range(THREADS) if i // 2 % 2 == 1]
        summary = [(a.status_code, _code(a)) for a in answers]
        assert all(a.status_code < 500 for a in answers), summary
        won = [side for side in (by_org, by_other) if any(a.status_code == 201 for a in side)]
        assert len(won) == 1, summary
        lost = by_other if won[0] is by_org else by_org
        assert all(a.status_code == 201 for a in won[0]), summary
        assert all(_code(a) == "idempotency_conflict" for a in lost), summary
        if route == "grants":
            assert len(t.pool.grants(t.org)) + len(t.pool.grants(t.other)) == 1
        else:
            left = t.pool.balance(t.org).left + t.pool.balance(t.other).left
            assert left == Decimal("19.5")
            assert len(t.pool.consumptions(t.org)) + len(t.pool.consumptions(t.other)) == 1


def test_a_key_used_on_a_ledger_route_is_refused_on_another_route_and_back(
    tenant: Tenant,
) -> None:
    t = tenant
    t.pool.grant(t.org, "10")
    service = [t.client(0), t.client(1)]
    consume = {"feature": "report", "user_id": "u-1"}
    path = f"/v1/orgs/{t.org}/consumptions"
    assert (
        service[0].post(path, json=consume, headers={"Idempotency-Key": "k-1"}).status_code == 201
    )
    feature = {"name": "F", "cost": "1"}
    _conflict(service[1].put("/v1/features/f-k1", json=feature, headers={"Idempotency-Key": "k-1"}))
    assert service[1].put("/v1/features/f-k2", json=feature, headers={"Idempotency-Key": "k-2"}).status_code == 200  # fmt: skip
    _conflict(service[0].post(path, json=consume, headers={"Idempotency-Key": "k-2"}))
    assert len(t.pool.consumptions(t.org)) == 1
    assert t.pool.balance(t.org).left == Decimal("9.5")
    with pytest.raises(NotFound):
        t.pool.feature("f-k1")


def test_concurrent_creations_and_upserts_without_a_key_never_answer_5xx(
    tenant: Tenant,
) -> None:
    t = tenant
    for _ in range(ROUNDS):
        tag = uuid.uuid4().hex[:10]
        clients = [t.client(i % 2) for i in range(THREADS)]
        upserts = [
            ("PUT", f"/v1/features/f-{tag}", {"name": "F", "cost": "0.5"}),
            ("PUT", f"/v1/orgs/{t.org}/members/u-{tag}", {}),
        ]
        for method, path, body in upserts:
            answers = _all_at_once([_send(c, method, path, body, None) for c in clients])
            assert [a.status_code for a in answers] == [200] * THREADS, [a.text for a in answers]
        creations = [
            ("/v1/orgs", {"id": f"o-{tag}"}),
            (f"/v1/orgs/{t.org}/teams", {"id": f"t-{tag}"}),
        ]
        for path, body in creations:
            answers = _all_at_once([_send(c, "POST", path, body, None) for c in clients])
            summary = sorted((a.status_code, _code(a)) for a in answers)
            assert summary == [(201, None)] + [(409, "already_exists")] * (THREADS - 1)
