"""The HTTP idempotency store (``Replayer``) on a real database, with real threads: a request
still in flight with the same key is refused, and is replayed once it is done."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from fastapi import Request, Response
from pydantic import BaseModel

from creditpool import CreditPool
from creditpool.api.problems import IdempotencyInFlight
from creditpool.api.replay import REPLAYED, Replayer
from creditpool.api.security import Principal
from creditpool.core.errors import IdempotencyConflict

WAIT_S = 10


class Answer(BaseModel):
    n: int


def request(key: str | None, path: str = "/v1/orgs/acme/consumptions") -> Request:
    headers = [(b"idempotency-key", key.encode())] if key is not None else []
    return Request(
        {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}
    )


def caller(pool: CreditPool, name: str = "backend") -> Principal:
    _, token = pool.create_key("service", name=name)
    key = pool.authenticate(token)
    assert key is not None
    return Principal(key)


def counting() -> tuple[list[str | None], Callable[[str | None], BaseModel]]:
    calls: list[str | None] = []

    def run(library_key: str | None) -> BaseModel:
        calls.append(library_key)
        return Answer(n=len(calls))

    return calls, run


def test_a_second_request_with_a_key_still_in_flight_is_refused_then_replayed(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    replayer, who = Replayer(pool), caller(pool)
    entered, release = threading.Event(), threading.Event()
    first: list[Response] = []

    def slow(_: str | None) -> BaseModel:
        entered.set()
        assert release.wait(WAIT_S)
        return Answer(n=1)

    def run_first() -> None:
        first.append(replayer.run(request("k"), who, "acme", {"a": 1}, 201, slow))

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert entered.wait(WAIT_S)
        calls, fast = counting()
        with pytest.raises(IdempotencyInFlight) as refused:
            replayer.run(request("k"), who, "acme", {"a": 1}, 201, fast)
        assert refused.value.status == 409
        assert refused.value.code == "idempotency_in_flight"
        assert calls == []
    finally:
        release.set()
        thread.join(WAIT_S)
    assert first[0].status_code == 201
    replayed = replayer.run(request("k"), who, "acme", {"a": 1}, 201, fast)
    assert (replayed.status_code, replayed.body) == (201, b'{"n":1}')
    assert replayed.headers[REPLAYED] == "true"
    assert calls == []


def test_the_in_flight_guard_is_per_api_key_and_released_after_an_error(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    replayer, one, two = Replayer(pool), caller(pool, "one"), caller(pool, "two")

    def failing(_: str | None) -> BaseModel:
        raise IdempotencyConflict("refused by the library")

    with pytest.raises(IdempotencyConflict):
        replayer.run(request("k"), one, "acme", {}, 201, failing)
    # The failure was not remembered and the key is free again.
    calls, run = counting()
    assert replayer.run(request("k"), one, "acme", {}, 201, run).status_code == 201
    assert replayer.run(request("k"), two, "acme", {}, 201, run).status_code == 201
    assert len(calls) == 2
    assert calls[0] != calls[1]  # the library key is scoped to the API key too


def test_the_same_key_with_another_body_or_path_is_a_conflict(pool: CreditPool) -> None:
    pool.create_org("acme")
    replayer, who = Replayer(pool), caller(pool)
    calls, run = counting()
    replayer.run(request("k"), who, "acme", {"a": 1}, 201, run)
    with pytest.raises(IdempotencyConflict):
        replayer.run(request("k"), who, "acme", {"a": 2}, 201, run)
    with pytest.raises(IdempotencyConflict):
        replayer.run(request("k", "/v1/orgs/acme/grants"), who, "acme", {"a": 1}, 201, run)
    assert len(calls) == 1


def test_without_a_key_every_request_runs(pool: CreditPool) -> None:
    replayer, who = Replayer(pool), caller(pool)
    calls, run = counting()
    for _ in range(3):
        assert replayer.run(request(None), who, None, {}, 200, run).status_code == 200
    assert calls == [None, None, None]
