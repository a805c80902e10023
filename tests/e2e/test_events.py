"""The event stream against real server processes: ledger changes arrive in order, across
processes (PostgreSQL), a reconnect with Last-Event-ID misses nothing, strangers are
refused, and the stream keeps itself alive and ends on time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server

EVENTS = "/v1/orgs/acme/events"
ARRIVAL_S_MAX = 2.0


@contextmanager
def stream(
    client: httpx.Client, *, read_s: float = ARRIVAL_S_MAX, **options: Any
) -> Iterator[Iterator[dict[str, Any]]]:
    """The stream's events ({id, event, data} or {comment}), waiting at most ``read_s``
    for each line; the first one (``retry``) has been read when this yields."""
    timeout = httpx.Timeout(10.0, read=read_s)
    with client.stream("GET", EVENTS, timeout=timeout, **options) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = parse(response.iter_lines())
        assert next(frames) == {"retry": "2000"}
        yield frames


def parse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    frame: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in frame:
                frame["data"] = json.loads(frame["data"])
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(": ")
            frame[name] = value


def next_events(frames: Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while len(events) < count:
        frame = next(frames)
        if "comment" not in frame:
            events.append(frame)
    return events


def funded(server: Server) -> int:
    """acme with credits; its last ledger seq."""
    server.pool.grant("acme", "100")
    return server.pool.ledger("acme")[-1].seq


def consume(client: httpx.Client) -> dict[str, Any]:
    response = client.post(
        "/v1/orgs/acme/consumptions", json={"feature": "report", "user_id": "u-1"}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def second_process(server: Server, tmp_path: Path) -> Iterator[str]:
    """Another server process on the same database; its base URL."""
    if not server.db_url.startswith("postgres"):
        pytest.skip("SQLite runs one server process: cross-process fan-out is PostgreSQL's")
    base_url, process = start_server(server.db_url, tmp_path / "second.log")
    yield base_url
    stop_process(process)


def test_a_stream_on_one_process_sees_changes_made_through_another_within_2_s(
    server: Server, second_process: str
) -> None:
    start = funded(server)
    service = {"Authorization": f"Bearer {server.keys['service']}"}
    with (
        httpx.Client(base_url=second_process, headers=service, timeout=30) as other,
        stream(server.client("admin"), params={"after": start}) as frames,
    ):
        began = time.monotonic()
        consumption = consume(other)
        [used] = next_events(frames, 1)
        assert time.monotonic() - began < ARRIVAL_S_MAX
        assert used["data"]["entry"]["consumption_id"] == consumption["id"]
        assert used["data"]["entry"]["method"] == "used"
        began = time.monotonic()
        refund = other.post(f"/v1/orgs/acme/consumptions/{consumption['id']}/refund", json={})
        assert refund.status_code in (200, 201), refund.text
        [refunded] = next_events(frames, 1)
        assert time.monotonic() - began < ARRIVAL_S_MAX
        assert refunded["data"]["entry"]["method"] == "refunded"
        assert Decimal(refunded["data"]["balance"]["left"]) == Decimal("100")


def test_events_arrive_in_ledger_order_with_their_seq_as_id_and_the_balance_after(
    server: Server,
) -> None:
    start = funded(server)
    service = server.client("service")
    with stream(server.client("member"), params={"after": start}) as frames:
        with ThreadPoolExecutor(8) as executor:  # concurrent: the server batches them
            list(executor.map(lambda _: consume(service), range(16)))
        events = next_events(frames, 16)
    ledger = server.pool.ledger("acme", after_seq=start)
    assert [int(e["id"]) for e in events] == [e.seq for e in ledger]
    assert [int(e["id"]) for e in events] == list(range(start + 1, start + 17))
    assert {e["event"] for e in events} == {"ledger"}
    assert [e["data"]["entry"]["seq"] for e in events] == [e.seq for e in ledger]
    last = events[-1]["data"]
    balance = server.client("service").get("/v1/orgs/acme/balance").json()
    assert last["balance"]["left"] == balance["left"] == last["entry"]["total_after"]
    assert (last["balance"]["total"], last["balance"]["used"]) == ("100.00", "8.00")


def test_a_reconnect_with_last_event_id_gets_exactly_what_was_missed(server: Server) -> None:
    start = funded(server)
    service = server.client("service")
    admin = server.client("admin")
    with stream(admin, params={"after": start}) as frames:
        consume(service)
        [seen] = next_events(frames, 1)
    # Disconnected: three changes happen meanwhile.
    missed = [consume(service)["id"] for _ in range(3)]
    with stream(admin, headers={"Last-Event-ID": seen["id"]}) as frames:
        resumed = next_events(frames, 3)
        assert [int(e["id"]) for e in resumed] == [int(seen["id"]) + n for n in (1, 2, 3)]
        assert [e["data"]["entry"]["consumption_id"] for e in resumed] == missed
        live = consume(service)["id"]
        [after] = next_events(frames, 1)
        assert after["data"]["entry"]["consumption_id"] == live


def test_a_stream_without_a_resume_point_starts_with_the_next_change(server: Server) -> None:
    funded(server)
    service = server.client("service")
    consume(service)
    with stream(server.client("admin")) as frames:
        time.sleep(0.2)
        consumption = consume(service)
        [event] = next_events(frames, 1)
    assert event["data"]["entry"]["consumption_id"] == consumption["id"]


def test_a_stranger_is_refused_the_stream(server: Server) -> None:
    for role in ("other_member", "other_admin"):
        response = server.client(role).get(EVENTS)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    anonymous = httpx.get(f"{server.base_url}{EVENTS}", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    bad = server.client("service").get(EVENTS, headers={"Last-Event-ID": "x"})
    assert bad.status_code == 422


def test_a_stream_sends_heartbeats_and_ends_after_its_lifetime(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDITPOOL_SSE_HEARTBEAT_S", "0.3")
    monkeypatch.setenv("CREDITPOOL_SSE_LIFETIME_S_MAX", "2")
    base_url, process = start_server(server.db_url, tmp_path / "short.log")
    headers = {"Authorization": f"Bearer {server.keys['admin']}"}
    try:
        with httpx.Client(base_url=base_url, headers=headers) as client:
            began = time.monotonic()
            with stream(client) as frames:
                rest = list(frames)  # ends when the server ends the stream
            lasted = time.monotonic() - began
    finally:
        stop_process(process)
    assert rest.count({"comment": "heartbeat"}) >= 4
    assert set(map(str, rest)) == {str({"comment": "heartbeat"})}
    assert 1.9 <= lasted < 4.0
