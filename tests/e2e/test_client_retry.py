"""The client's retries, keys, encoding and error mapping, against scripted answers (no server):
the failures a real server rarely gives on demand (429, 503, in-flight, odd bodies)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from creditpool import CreditPoolError, InsufficientCredits, InvalidInput, NotFound
from creditpool.client import IDEMPOTENCY_HEADER, AsyncClient, Client, Retry
from creditpool.client._retry import retry_after_s
from creditpool.core.errors import IdempotencyInFlight

URL = "http://creditpool.test"
NO_WAIT = Retry(attempts=3, backoff_s=0, backoff_s_max=0)
BALANCE = {
    "org_id": "acme",
    "at": "2026-01-01T00:00:00+00:00",
    "total": "10.00",
    "used": "0.50",
    "left": "9.50",
    "held": "0.00",
    "upcoming": "0.00",
}
GRANT = {
    "org_id": "acme",
    "id": 7,
    "amount": "10.00",
    "remaining": "10.00",
    "granted_at": "2026-01-01T00:00:00+00:00",
    "available_from": "2026-01-01T00:00:00+00:00",
    "expires_at": None,
    "note": None,
    "reference": None,
    "granted_by": "cs",
    "voided_at": None,
    "voided_by": None,
    "void_reason": None,
    "state": "active",
}


def problem(
    status: int, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {
        "type": "about:blank",
        "title": code,
        "status": status,
        "detail": f"{code}!",
        "code": code,
    }
    return httpx.Response(status, json={**body, **extra}, headers=headers)


class Script:
    """Answers requests in order from a list, and remembers what was sent."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get(IDEMPOTENCY_HEADER) for r in self.sent]

    def body(self, index: int = -1) -> Any:
        return json.loads(self.sent[index].content)


def client(script: Script, retry: Retry = NO_WAIT, api_key: str | None = "k") -> Client:
    return Client(URL, api_key, retry=retry, transport=httpx.MockTransport(script))


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


def test_a_503_is_retried_with_the_same_idempotency_key_until_it_succeeds() -> None:
    script = Script(
        problem(503, "unavailable"), httpx.Response(502), httpx.Response(201, json=GRANT)
    )
    with client(script) as c:
        grant = c.grant("acme", "10")
    assert grant.id == 7
    assert len(script.sent) == 3
    assert len(set(script.keys)) == 1
    assert script.keys[0] is not None
    assert [script.body(i) for i in range(3)] == [script.body(0)] * 3


def test_connection_errors_and_timeouts_are_retried_then_reraised_when_they_persist() -> None:
    script = Script(
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200, json=BALANCE)
    )
    with client(script) as c:
        assert c.balance("acme").left == Decimal("9.50")
    script = Script(*(httpx.RemoteProtocolError("reset") for _ in range(3)))
    with client(script) as c, pytest.raises(httpx.RemoteProtocolError):
        c.consume("acme", "report", user_id="u")
    assert len(script.sent) == 3
    assert len(set(script.keys)) == 1


def test_a_malformed_request_error_is_not_retried() -> None:
    script = Script(httpx.LocalProtocolError("bad header"))
    with client(script) as c, pytest.raises(httpx.LocalProtocolError):
        c.balance("acme")
    assert len(script.sent) == 1


def test_a_429_that_never_clears_raises_the_last_answer_after_the_bounded_attempts(
    waits: list[float],
) -> None:
    script = Script(*(problem(429, "rate_limited", {"Retry-After": "1"}) for _ in range(3)))
    with client(script) as c, pytest.raises(CreditPoolError) as caught:
        c.consume("acme", "report", user_id="u")
    assert len(script.sent) == 3
    assert waits == [1.0, 1.0]  # two waits between three attempts, as the server asked
    assert caught.value.extra["code"] == "rate_limited"
    assert caught.value.extra["status"] == 429


def test_retry_after_is_honoured_and_capped_and_never_shortens_the_backoff(
    waits: list[float],
) -> None:
    retry = Retry(attempts=4, backoff_s=0.5, backoff_s_max=0.5, retry_after_s_max=5)
    script = Script(
        problem(503, "unavailable", {"Retry-After": "2"}),
        problem(503, "unavailable", {"Retry-After": "3600"}),
        problem(503, "unavailable", {"Retry-After": "0"}),
        httpx.Response(200, json=BALANCE),
    )
    with client(script, retry) as c:
        c.balance("acme")
    assert waits[:2] == [2.0, 5.0]
    assert 0.25 <= waits[2] <= 0.5


def test_retry_after_may_be_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    response = httpx.Response(503, headers={"Retry-After": format_datetime(later, usegmt=True)})
    assert 25 <= (retry_after_s(response) or 0) <= 30
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert retry_after_s(httpx.Response(503)) is None


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    retry = Retry(backoff_s=1, backoff_s_max=4)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 4), (10, 4)]:
        delays = {retry.delay_s(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered


def test_a_problem_that_is_an_answer_is_raised_at_once_without_a_retry() -> None:
    script = Script(problem(402, "insufficient_credits", left="0.30", required="0.50"))
    with client(script) as c, pytest.raises(InsufficientCredits) as caught:
        c.consume("acme", "report", user_id="u")
    assert len(script.sent) == 1
    assert caught.value.extra == {"left": Decimal("0.30"), "required": Decimal("0.50")}


def test_a_mutation_still_in_flight_is_retried_until_it_is_replayed() -> None:
    script = Script(problem(409, "idempotency_in_flight"), httpx.Response(201, json=GRANT))
    with client(script) as c:
        assert c.grant("acme", "10").id == 7
    assert len(set(script.keys)) == 1
    assert len(script.sent) == 2


def test_a_mutation_still_in_flight_after_every_attempt_raises_idempotency_in_flight() -> None:
    script = Script(*(problem(409, "idempotency_in_flight") for _ in range(3)))
    with client(script) as c, pytest.raises(IdempotencyInFlight):
        c.grant("acme", "10")
    assert len(script.sent) == 3


def test_each_mutation_gets_a_fresh_uuid4_key_unless_one_is_given_and_reads_get_none() -> None:
    script = Script(
        *(httpx.Response(201, json=GRANT) for _ in range(3)), httpx.Response(200, json=BALANCE)
    )
    with client(script) as c:
        c.grant("acme", "1")
        c.grant("acme", "1")
        c.grant("acme", "1", idempotency_key="invoice-42")
        c.balance("acme")
    first, second, given, read = script.keys
    assert first is not None
    assert second is not None
    assert uuid.UUID(first).version == uuid.UUID(second).version == 4
    assert first != second
    assert (given, read) == ("invoice-42", None)


def test_amounts_and_instants_go_out_exactly() -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    script = Script(httpx.Response(201, json=GRANT), httpx.Response(200, json=BALANCE))
    with client(script) as c:
        c.grant("acme", Decimal("1E+2"), expires_at=at)
        c.balance("acme", at=at)
    assert script.body(0)["amount"] == "100"
    assert script.body(0)["expires_at"] == "2026-03-01T12:30:00+00:00"
    assert script.sent[1].url.params["at"] == "2026-03-01T12:30:00+00:00"
    assert script.sent[1].headers["Authorization"] == "Bearer k"
    assert script.sent[1].headers["User-Agent"].startswith("creditpool-python")


def test_path_segments_are_escaped_and_empty_ones_refused_before_any_request() -> None:
    script = Script(problem(404, "not_found"))
    with client(script) as c:
        with pytest.raises(NotFound):
            c.org("a b/c")
        with pytest.raises(InvalidInput):
            c.org("")
    assert script.sent[0].url.raw_path == b"/v1/orgs/a%20b%2Fc"
    assert len(script.sent) == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            problem(418, "teapot", kind="short"),
            ("teapot!", {"code": "teapot", "status": 418, "kind": "short"}),
        ),
        (
            httpx.Response(502, text="<html>bad gateway</html>"),
            ("HTTP 502: <html>bad gateway</html>", {"status": 502}),
        ),
    ],
)
def test_an_unknown_code_or_a_body_that_is_no_problem_becomes_a_credit_pool_error(
    answer: httpx.Response, expected: tuple[str, dict[str, Any]]
) -> None:
    with client(Script(answer), Retry(attempts=1)) as c, pytest.raises(CreditPoolError) as caught:
        c.balance("acme")
    assert type(caught.value) is CreditPoolError
    assert (caught.value.detail, caught.value.extra) == expected


def test_readyz_reports_an_unready_server_without_raising_or_retrying() -> None:
    script = Script(httpx.Response(503, json={"status": "migrations pending"}))
    with client(script, api_key=None) as c:
        health = c.readyz()
    assert (health.ok, health.status) == (False, "migrations pending")
    assert "Authorization" not in script.sent[0].headers


def test_async_client_retries_with_the_same_key_and_maps_problems() -> None:
    script = Script(
        httpx.ConnectError("refused"),
        problem(503, "unavailable"),
        httpx.Response(201, json=GRANT),
        problem(404, "not_found"),
    )

    async def scenario() -> None:
        async with AsyncClient(URL, "k", retry=NO_WAIT, transport=httpx.MockTransport(script)) as c:
            assert (await c.grant("acme", "10")).id == 7
            with pytest.raises(NotFound):
                await c.void_grant("acme", 99)

    asyncio.run(scenario())
    assert len(script.sent) == 4
    assert len(set(script.keys[:3])) == 1
    assert script.keys[3] != script.keys[0]


def test_a_retry_policy_needs_at_least_one_attempt() -> None:
    make: Callable[[], Retry] = lambda: Retry(attempts=0)  # noqa: E731
    with pytest.raises(ValueError, match="at least 1"):
        make()
