"""The HTTP idempotency store (``Replayer``) on a real database, with real threads: a
duplicate of a request still in flight waits for it and replays its answer, and is refused
only if the first one is still running after the wait."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from fastapi import Request, Response
from pydantic import BaseModel

from creditpool import CreditPool
from creditpool.core.errors import IdempotencyConflict
from creditpool.http.problems import IdempotencyInFlight
from creditpool.http.replay import REPLAYED, Replayer
from creditpool.http.security import Principal

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


def test_a_duplicate_still_in_flight_after_the_wait_is_refused_then_replayed(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    replayer, who = Replayer(pool, in_flight_wait_s=0.2), caller(pool)
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


def test_a_duplicate_waits_for_the_request_in_flight_and_replays_its_answer(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    replayer, who = Replayer(pool, in_flight_wait_s=WAIT_S), caller(pool)
    entered, release = threading.Event(), threading.Event()
    answers: list[Response] = []

    def slow(_: str | None) -> BaseModel:
        entered.set()
        assert release.wait(WAIT_S)
        return Answer(n=1)

    calls, fast = counting()
    first = threading.Thread(
        target=lambda: answers.append(replayer.run(request("k"), who, "acme", {}, 201, slow))
    )
    first.start()
    assert entered.wait(WAIT_S)
    second = threading.Thread(
        target=lambda: answers.append(replayer.run(request("k"), who, "acme", {}, 201, fast))
    )
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting, not refused
    release.set()
    first.join(WAIT_S)
    second.join(WAIT_S)
    assert [(a.status_code, a.body) for a in answers] == [(201, b'{"n":1}')] * 2
    assert [a.headers.get(REPLAYED) for a in answers] == [None, "true"]
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


def test_duplicates_in_two_processes_get_the_first_answer_of_a_directory_change(
    pool: CreditPool,
) -> None:
    """Two Replayers (two processes: no shared in-flight set) racing one key: the change's
    transaction claims the key first, so duplicates wait on the claim and replay."""
    pool.create_org("acme")
    who = caller(pool)
    replayers = [Replayer(pool), Replayer(pool)]
    for n in range(3):
        answers = _race_team_creation(pool, replayers, who, f"k-{n}", f"t-{n}")
        assert {(a.status_code, a.body) for a in answers} == {(201, answers[0].body)}
        assert sorted(str(a.headers.get(REPLAYED)) for a in answers) == ["None"] + ["true"] * 7
        with pytest.raises(IdempotencyConflict):
            replayers[1].run(
                request(f"k-{n}", "/v1/orgs/acme/teams"),
                who,
                "acme",
                {"id": "other"},
                201,
                lambda _: pool.create_team("acme", "other"),
            )
    assert [t.id for t in pool.teams("acme")] == ["t-0", "t-1", "t-2"]


def _race_team_creation(
    pool: CreditPool, replayers: list[Replayer], who: Principal, key: str, team: str
) -> list[Response]:
    threads = 8
    start = threading.Barrier(threads)
    answers: list[Response] = []

    def create(replayer: Replayer) -> None:
        start.wait(WAIT_S)
        path = request(key, "/v1/orgs/acme/teams")
        fn = lambda _: pool.create_team("acme", team)  # noqa: E731
        answers.append(replayer.run(path, who, "acme", {"id": team}, 201, fn))

    racing = [threading.Thread(target=create, args=(replayers[i % 2],)) for i in range(threads)]
    for thread in racing:
        thread.start()
    for thread in racing:
        thread.join(WAIT_S * 2)
    assert len(answers) == threads
    return answers
