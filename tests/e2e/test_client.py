"""The Python client against a real server process: every method, the library's models and
exceptions, and mutations that are applied once however often they are sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from creditpool import (
    AlreadyExists,
    Balance,
    Consumption,
    ConsumptionStatus,
    CreditPoolError,
    Feature,
    Grant,
    GrantState,
    GrantVoided,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    LedgerEntry,
    Member,
    NoActiveGrant,
    NotFound,
    Org,
    Refund,
    Team,
    TeamUsage,
)
from creditpool.client import IDEMPOTENCY_HEADER, REPLAYED_HEADER, AsyncClient, Client, Page, Retry
from creditpool.core.errors import Forbidden, PayloadTooLarge, Unauthorized
from creditpool.grants.models import GrantDetail
from tests.e2e.conftest import Server

FAST = Retry(attempts=3, backoff_s=0.01, backoff_s_max=0.05)
LATER = datetime.now(UTC) + timedelta(days=30)


@contextmanager
def client_of(
    server: Server, role: str = "service", transport: httpx.BaseTransport | None = None
) -> Iterator[Client]:
    with Client(server.base_url, server.keys[role], retry=FAST, transport=transport) as client:
        yield client


def async_client_of(
    server: Server, role: str = "service", transport: httpx.AsyncBaseTransport | None = None
) -> AsyncClient:
    return AsyncClient(server.base_url, server.keys[role], retry=FAST, transport=transport)


class LosesResponses(httpx.BaseTransport):
    """Forwards each request to the server, then for the first ``lose`` mutations drops the
    answer and raises ``error`` instead, as a connection that breaks after the server did
    the work."""

    def __init__(self, error: type[httpx.TransportError], lose: int = 1) -> None:
        self.inner = httpx.HTTPTransport()
        self.error = error
        self.lose = lose
        self.keys: list[str | None] = []
        self.answers: list[httpx.Response] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "GET":
            return response
        self.keys.append(request.headers.get(IDEMPOTENCY_HEADER))
        response.read()
        self.answers.append(response)
        if self.lose > 0:
            self.lose -= 1
            response.close()
            raise self.error("connection lost after the server answered", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncLosesResponses(httpx.AsyncBaseTransport):
    """``LosesResponses`` for ``AsyncClient``."""

    def __init__(self, error: type[httpx.TransportError], lose: int = 1) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.error = error
        self.lose = lose
        self.keys: list[str | None] = []
        self.answers: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "GET":
            return response
        self.keys.append(request.headers.get(IDEMPOTENCY_HEADER))
        await response.aread()
        self.answers.append(response)
        if self.lose > 0:
            self.lose -= 1
            await response.aclose()
            raise self.error("connection lost after the server answered", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def raises(
    error: type[CreditPoolError], call: Callable[[], object], status: int | None = None
) -> CreditPoolError:
    """The call raises exactly ``error`` (not a subclass), with its code and status."""
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error
    assert caught.value.status == (status or error.status)
    return caught.value


# -- every method, typed results ---------------------------------------------------------


def test_client_manages_orgs_teams_members_and_features(server: Server) -> None:
    with client_of(server) as service, client_of(server, "admin") as admin:
        assert service.healthz().ok
        assert service.readyz().ok

        created = service.create_org("initech", name="Initech", timezone="Europe/Paris")
        assert isinstance(created, Org)
        assert (created.id, created.name, created.timezone) == (
            "initech",
            "Initech",
            "Europe/Paris",
        )
        assert service.org("initech") == created == server.pool.org("initech")

        first = service.orgs(limit=2)
        assert isinstance(first, Page)
        assert [o.id for o in first.data] == ["acme", "globex"]
        assert first.next_cursor == "globex"
        assert [o.id for o in service.orgs(cursor=first.next_cursor).data] == ["initech"]
        assert [o.id for o in service.iter_orgs(limit=1)] == ["acme", "globex", "initech"]
        assert [o.id for o in service.orgs(search="GLOB").data] == ["globex"]

        updated = service.update_org(
            "initech", name="Initech SA", low_balance_thresholds=["10", 5, Decimal("2.5")]
        )
        assert updated.name == "Initech SA"
        assert updated.timezone == "Europe/Paris"  # what a PATCH does not name stays
        assert updated.low_balance_thresholds == (Decimal("10"), Decimal("5"), Decimal("2.5"))

        team = service.create_team("acme", "eng", name="Engineering", monthly_limit="100.50")
        assert isinstance(team, Team)
        assert team.monthly_limit == Decimal("100.50")
        assert service.teams("acme") == [team]
        renamed = service.update_team("acme", "eng", name="Eng")
        assert (renamed.name, renamed.monthly_limit) == ("Eng", Decimal("100.50"))
        assert admin.set_team_limit("acme", "eng", 40).monthly_limit == Decimal("40")
        assert admin.update_team("acme", "eng", monthly_limit=None).monthly_limit is None

        member = service.set_member("acme", "u-1", team_id="eng")
        assert member == Member(org_id="acme", user_id="u-1", team_id="eng")
        assert service.member("acme", "u-1") == member
        assert service.members("acme") == [member]
        assert service.members("acme", team_id="other") == []

        usage = service.team_usage("acme")
        assert all(isinstance(u, TeamUsage) for u in usage)
        assert {(u.team_id, u.used) for u in usage} >= {("eng", Decimal("0"))}
        assert service.team_usage("acme", "2020-01")[0].month == "2020-01"

        catalog = {f.key: f for f in service.features()}
        assert catalog["report"].cost == Decimal("0.50")
        assert catalog["topic_detection"].unit_rate == Decimal("0.01")
        summary = service.set_feature("summary", name="Summary", cost=Decimal("0.125"))
        assert isinstance(summary, Feature)
        assert summary.cost == Decimal("0.125")
        per_page = service.set_feature("pages", name="Pages", unit_rate="0.002", unit="page")
        assert (per_page.unit_rate, per_page.unit, per_page.variable) == (
            Decimal("0.002"),
            "page",
            True,
        )
        assert server.pool.feature("summary") == summary


def test_client_grants_consumes_refunds_and_reads_balance_and_ledger(server: Server) -> None:
    before_any_grant = datetime.now(UTC)
    with client_of(server, "staff") as staff, client_of(server) as service:
        expiring = staff.grant("acme", "10", expires_at=LATER, note="trial", reference="INV-1")
        assert isinstance(expiring, Grant)
        assert (expiring.amount, expiring.state) == (Decimal("10"), GrantState.ACTIVE)
        assert (expiring.granted_by, expiring.reference) == ("cs@vendor.example", "INV-1")
        permanent = staff.grant("acme", 5)
        assert staff.grants("acme") == server.pool.grants("acme")

        dry = service.consume("acme", "report", user_id="u-1", dry_run=True)
        assert (dry.id, dry.status, dry.cost) == (None, ConsumptionStatus.DRY_RUN, Decimal("0.50"))
        assert [a.grant_id for a in dry.allocations] == [expiring.id]
        assert service.balance("acme").left == Decimal("15")

        paid = service.consume(
            "acme",
            "report",
            user_id="u-1",
            feature_name="Weekly churn",
            action="publish",
            integration="slack-mcp",
            breakdown={"calls": 3, "emails": 2},
            requests=4,
            metadata={"trace": "abc", "nested": {"ok": True}},
        )
        assert isinstance(paid, Consumption)
        assert (paid.status, paid.cost, paid.action) == (
            ConsumptionStatus.PAID,
            Decimal("0.50"),
            "publish",
        )
        assert paid.breakdown == {"calls": 3, "emails": 2}
        assert paid.metadata == {"trace": "abc", "nested": {"ok": True}}
        topics = service.consume("acme", "topic_detection", user_id="u-2", quantity=Decimal("12.5"))
        assert (topics.quantity, topics.cost) == (Decimal("12.5"), Decimal("0.125"))
        third = service.consume("acme", "agent_recommendation", user_id="u-1")
        assert (
            service.consumption("acme", paid.id or 0)
            == paid
            == server.pool.consumption("acme", paid.id or 0)
        )

        page = service.consumptions("acme", limit=2)
        assert [c.id for c in page.data] == [third.id, topics.id]
        assert page.next_cursor == str(topics.id)
        rest = service.consumptions("acme", limit=2, cursor=page.next_cursor)
        assert ([c.id for c in rest.data], rest.next_cursor) == ([paid.id], None)
        assert [c.id for c in service.iter_consumptions("acme", limit=1)] == [
            third.id,
            topics.id,
            paid.id,
        ]
        assert [c.id for c in service.consumptions("acme", user_id="u-1").data] == [
            third.id,
            paid.id,
        ]
        assert [c.id for c in service.consumptions("acme", feature="topic_detection").data] == [
            topics.id
        ]
        assert service.consumptions("acme", until=before_any_grant).data == []
        assert len(service.consumptions("acme", since=before_any_grant).data) == 3

        refund = service.refund("acme", paid.id or 0, reason="downvoted")
        assert isinstance(refund, Refund)
        assert (refund.restored, refund.lost, refund.reason) == (
            Decimal("0.50"),
            Decimal("0"),
            "downvoted",
        )
        assert service.refund("acme", paid.id or 0, reason="downvoted") == refund
        refunded = service.consumptions("acme", status="refunded").data
        assert [(c.id, c.refund_reason) for c in refunded] == [(paid.id, "downvoted")]
        assert [c.id for c in service.consumptions("acme", status="paid").data] == [
            third.id,
            topics.id,
        ]

        detail = staff.grant_info("acme", expiring.id)
        assert isinstance(detail, GrantDetail)
        assert detail.remaining == Decimal("9.625")  # the refund went back to it
        assert {f.consumption_id: f.amount for f in detail.funded} == {
            paid.id: Decimal("0.50"),
            topics.id: Decimal("0.125"),
            third.id: Decimal("0.25"),
        }
        assert staff.grant_info("acme", permanent.id).funded == ()

        balance = service.balance("acme")
        assert isinstance(balance, Balance)
        assert (balance.total, balance.left, balance.used) == (
            Decimal("15"),
            Decimal("14.625"),
            Decimal("0.375"),
        )
        assert service.balance("acme", at=before_any_grant).total == Decimal("0")

        ledger = service.ledger("acme", limit=3)
        assert all(isinstance(e, LedgerEntry) for e in ledger.data)
        assert ledger.next_cursor == str(ledger.data[-1].seq)
        entries = list(service.iter_ledger("acme", limit=2))
        assert entries == server.pool.ledger("acme")
        assert [e.method for e in entries].count("refunded") == 1

        voided = staff.void_grant("acme", permanent.id, reason="mistake")
        assert (voided.state, voided.void_reason, voided.voided_by) == (
            GrantState.VOIDED,
            "mistake",
            "cs@vendor.example",
        )
        assert voided.remaining == Decimal("0")
        assert service.balance("acme").left == Decimal("9.625")


# -- errors ------------------------------------------------------------------------------


def test_insufficient_credits_raises_with_the_balance_and_charges_nothing(server: Server) -> None:
    with client_of(server, "staff") as staff, client_of(server) as service:
        staff.grant("acme", "0.30")
        error = raises(
            InsufficientCredits, lambda: service.consume("acme", "report", user_id="u-1"), 402
        )
        assert error.extra["left"] == Decimal("0.30")
        assert error.extra["required"] == Decimal("0.50")
        assert isinstance(error.extra["left"], Decimal)
        assert service.balance("acme").left == Decimal("0.30")
        assert service.consumptions("acme").data == []


def test_each_problem_code_raises_the_library_exception(server: Server) -> None:
    with (
        client_of(server, "staff") as staff,
        client_of(server) as service,
        client_of(server, "member") as member,
        Client(server.base_url, "cp_not_a_key", retry=FAST) as stranger,
    ):
        grant = staff.grant("acme", "1")
        paid = service.consume("acme", "report", user_id="u-1", idempotency_key="once")

        def other_body_same_key() -> object:
            return service.consume("acme", "action_plan", user_id="u-1", idempotency_key="once")

        def too_large() -> object:
            return service.consume("acme", "report", user_id="u-1", metadata={"x": "y" * 70_000})

        service.create_team("acme", "eng")
        raises(IdempotencyConflict, other_body_same_key, 409)
        raises(NotFound, lambda: service.org("nope"), 404)
        raises(NotFound, lambda: service.consumption("acme", 10**9), 404)
        raises(NotFound, lambda: service.consume("acme", "no-such-feature", user_id="u-1"), 404)
        raises(InvalidAmount, lambda: staff.grant("acme", "1.23456"), 422)
        raises(InvalidAmount, lambda: staff.grant("acme", "-1"), 422)
        raises(InvalidInput, lambda: service.update_org("acme", timezone="Mars/Olympus"), 422)
        raises(InvalidInput, lambda: service.consumptions("acme", status="lost"), 422)
        raises(AlreadyExists, lambda: service.create_org("acme"), 409)
        raises(AlreadyExists, lambda: service.create_team("acme", "eng"), 409)
        raises(Unauthorized, lambda: stranger.balance("acme"), 401)
        raises(Forbidden, lambda: member.grants("acme"), 403)
        raises(Forbidden, lambda: service.grant("acme", "1"), 403)
        raises(PayloadTooLarge, too_large, 413)
        assert server.pool.balance("acme").left == Decimal("0.50")  # nothing above changed it

        assert staff.void_grant("acme", grant.id).state == GrantState.VOIDED
        raises(GrantVoided, lambda: staff.void_grant("acme", grant.id), 409)
        raises(NoActiveGrant, lambda: service.refund("acme", paid.id or 0), 409)
        assert server.pool.consumption("acme", paid.id or 0).status == ConsumptionStatus.PAID


def test_a_float_amount_is_refused_before_any_request() -> None:
    def no_request(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing should be sent, got {request.method} {request.url}")

    with Client("http://creditpool.invalid", "k", transport=httpx.MockTransport(no_request)) as c:
        bad: Any = 0.5
        for call in (
            lambda: c.grant("acme", bad),
            lambda: c.consume("acme", "topic_detection", user_id="u", quantity=bad),
            lambda: c.create_team("acme", "t", monthly_limit=bad),
            lambda: c.set_team_limit("acme", "t", bad),
            lambda: c.update_org("acme", low_balance_thresholds=[bad]),
            lambda: c.set_feature("f", cost=bad),
            lambda: c.grant("acme", Decimal("NaN")),
        ):
            raises(InvalidAmount, call, 422)


# -- applied once however often sent -----------------------------------------------------


def test_an_idempotent_replay_after_a_lost_response_returns_the_first_answer_and_charges_once(
    server: Server,
) -> None:
    staff, service = server.client("staff"), server.client("service")
    assert staff.post("/v1/orgs/acme/grants", json={"amount": "5"}).status_code == 201
    body = {"feature": "report", "user_id": "u-1"}
    headers = {IDEMPOTENCY_HEADER: "charge-42"}

    lost = service.post("/v1/orgs/acme/consumptions", json=body, headers=headers)
    assert lost.status_code == 201  # the server did the work; pretend the answer never came
    resent = service.post("/v1/orgs/acme/consumptions", json=body, headers=headers)

    assert resent.status_code == 201
    assert resent.headers[REPLAYED_HEADER] == "true"
    assert resent.json() == lost.json()
    assert REPLAYED_HEADER not in lost.headers
    assert server.pool.balance("acme").left == Decimal("4.50")
    assert len(server.pool.consumptions("acme")) == 1


def test_a_consume_retried_after_a_lost_response_is_charged_once(server: Server) -> None:
    transport = LosesResponses(httpx.ReadError)
    with client_of(server, "staff") as staff, client_of(server, transport=transport) as service:
        staff.grant("acme", "5")
        consumption = service.consume("acme", "report", user_id="u-1")

    first, second = transport.answers
    assert first.status_code == 201  # the server charged on the first attempt
    assert second.headers[REPLAYED_HEADER] == "true"
    assert transport.keys[0] is not None
    assert transport.keys == [transport.keys[0]] * 2  # the same key on the retry
    assert consumption == Consumption.model_validate_json(first.content)
    assert server.pool.balance("acme").left == Decimal("4.50")
    assert [c.id for c in server.pool.consumptions("acme")] == [consumption.id]


def test_a_grant_and_a_refund_retried_after_connect_errors_are_applied_once(
    server: Server,
) -> None:
    lossy = LosesResponses(httpx.ConnectError, lose=2)
    with client_of(server, "staff", transport=lossy) as staff, client_of(server) as service:
        grant = staff.grant("acme", "5")  # lost twice, answered on the third attempt
        assert len(lossy.keys) == 3
        assert len(set(lossy.keys)) == 1
        assert [g.id for g in server.pool.grants("acme")] == [grant.id]

        paid = service.consume("acme", "report", user_id="u-1")
        lossy.lose = 1
        with Client(server.base_url, server.keys["service"], retry=FAST, transport=lossy) as again:
            refund = again.refund("acme", paid.id or 0, idempotency_key="refund-1")
        assert lossy.keys[-2:] == ["refund-1", "refund-1"]
        assert refund.restored == Decimal("0.50")
        assert server.pool.balance("acme").left == Decimal("5")
        assert [e.method for e in server.pool.ledger("acme")].count("refunded") == 1


def test_a_client_that_exhausts_its_attempts_raises_the_transport_error(server: Server) -> None:
    lossy = LosesResponses(httpx.ReadError, lose=10)
    with client_of(server, "staff", transport=lossy) as staff:
        with pytest.raises(httpx.ReadError):
            staff.grant("acme", "5")
        assert len(lossy.keys) == FAST.attempts
    assert len(server.pool.grants("acme")) == 1  # sent three times, granted once


# -- AsyncClient ---------------------------------------------------------------------------


def test_async_client_calls_every_route_against_the_server(server: Server) -> None:
    async def scenario() -> None:
        async with (
            async_client_of(server) as service,
            async_client_of(server, "staff") as staff,
            async_client_of(server, "admin") as admin,
        ):
            assert (await service.healthz()).ok
            assert (await service.readyz()).ok
            org = await service.create_org("initech", name="Initech")
            assert await service.org("initech") == org
            assert [o.id for o in (await service.orgs(limit=1)).data] == ["acme"]
            assert [o.id async for o in service.iter_orgs(limit=2)] == ["acme", "globex", "initech"]
            updated = await service.update_org("initech", low_balance_thresholds=("1",))
            assert updated.low_balance_thresholds == (Decimal("1"),)
            team = await service.create_team("acme", "eng", monthly_limit=10)
            assert await service.teams("acme") == [team]
            assert (await service.update_team("acme", "eng", name="E")).name == "E"
            assert (await admin.set_team_limit("acme", "eng", "20")).monthly_limit == Decimal("20")
            member = await service.set_member("acme", "u-1", team_id="eng")
            assert await service.member("acme", "u-1") == member
            assert await service.members("acme", team_id="eng") == [member]
            features = await service.features()
            assert "report" in {f.key for f in features}
            assert (await service.set_feature("summary", name="S", cost="1")).cost == Decimal("1")

            grant = await staff.grant("acme", "10", expires_at=LATER)
            assert await staff.grants("acme") == [grant]
            dry = await service.consume("acme", "report", user_id="u-1", dry_run=True)
            assert dry.status == ConsumptionStatus.DRY_RUN
            paid = await service.consume("acme", "report", user_id="u-1")
            assert paid.team_id == "eng"
            assert await service.consumption("acme", paid.id or 0) == paid
            assert (await service.consumptions("acme", team_id="eng")).data == [paid]
            assert [c async for c in service.iter_consumptions("acme")] == [paid]
            usage = {u.team_id: u.used for u in await service.team_usage("acme")}
            assert usage["eng"] == Decimal("0.50")
            detail = await staff.grant_info("acme", grant.id)
            assert [f.consumption_id for f in detail.funded] == [paid.id]
            refund = await service.refund("acme", paid.id or 0)
            assert refund.restored == Decimal("0.50")
            assert (await service.balance("acme")).left == Decimal("10")
            entries = [e async for e in service.iter_ledger("acme", limit=1)]
            assert entries == server.pool.ledger("acme")
            assert (await service.ledger("acme")).data == entries
            assert (await staff.void_grant("acme", grant.id)).state == GrantState.VOIDED
            assert (await service.balance("acme")).left == Decimal("0")

    asyncio.run(scenario())


def test_async_client_raises_the_library_exceptions(server: Server) -> None:
    async def scenario() -> None:
        async with async_client_of(server) as service, async_client_of(server, "member") as member:
            with pytest.raises(InsufficientCredits) as caught:
                await service.consume("acme", "report", user_id="u-1")
            assert caught.value.extra == {"left": Decimal("0"), "required": Decimal("0.50")}
            with pytest.raises(NotFound):
                await service.org("nope")
            with pytest.raises(Forbidden):
                await member.grants("acme")
            a_float: Any = 0.1
            with pytest.raises(InvalidAmount):
                await service.consume("acme", "topic_detection", user_id="u", quantity=a_float)

    asyncio.run(scenario())


def test_async_consume_retried_after_a_lost_response_is_charged_once(server: Server) -> None:
    server.pool.grant("acme", "5")
    transport = AsyncLosesResponses(httpx.ReadError)

    async def scenario() -> Consumption:
        async with async_client_of(server, transport=transport) as service:
            return await service.consume("acme", "report", user_id="u-1")

    consumption = asyncio.run(scenario())
    assert len(transport.keys) == 2
    assert len(set(transport.keys)) == 1
    assert transport.answers[1].headers[REPLAYED_HEADER] == "true"
    assert [c.id for c in server.pool.consumptions("acme")] == [consumption.id]
    assert server.pool.balance("acme").left == Decimal("4.50")
