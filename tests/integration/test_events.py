"""The event hub on a real database (SQLite and PostgreSQL): streams get every committed
ledger entry of their organization once, in order, from one read per change, and what a
notification misses the ledger repairs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from creditpool import CreditPool, InsufficientCredits
from creditpool.http import feed as service
from creditpool.http import hub as hub_module
from creditpool.http.hub import Hub
from creditpool.storage.engine import normalize_url
from creditpool.storage.uow import Database

WAIT_S = 5.0
Stream = AsyncIterator[bytes]


def run(test: Callable[[Hub], Awaitable[None]], pool: CreditPool, **options: float) -> None:
    """Run ``test`` with a started hub (short heartbeats) on an event loop."""

    async def main() -> None:
        hub = Hub(
            pool,
            heartbeat_s=options.get("heartbeat_s", 5.0),
            lifetime_s=options.get("lifetime_s", 60.0),
        )
        await hub.start()
        try:
            await asyncio.wait_for(hub.listening.wait(), WAIT_S)
            await test(hub)
        finally:
            await hub.stop()

    asyncio.run(main())


async def open_stream(hub: Hub, org_id: str, after: int) -> Stream:
    stream = hub.stream(org_id, after)
    assert await anext(stream) == b"retry: 2000\n\n"
    return stream


async def read_events(stream: Stream, count: int) -> list[dict[str, Any]]:
    """The next ``count`` events (heartbeats skipped), each as {id, event, data}."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_S):
        while len(events) < count:
            events += parse(await anext(stream))
    assert len(events) == count
    return events


def parse(chunk: bytes) -> list[dict[str, Any]]:
    events = []
    for frame in chunk.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if line[:1] != ":")
        if "id" in fields:
            events.append({**fields, "data": json.loads(fields["data"])})
    return events


async def consume(pool: CreditPool, org_id: str, times: int = 1) -> None:
    for _ in range(times):
        await asyncio.to_thread(pool.consume, org_id, "report", user_id="u-1")


def funded(pool: CreditPool, org_id: str = "acme", amount: str = "100") -> int:
    """A funded organization; its last ledger seq."""
    pool.create_org(org_id)
    pool.grant(org_id, amount)
    return pool.ledger(org_id)[-1].seq


def test_a_stream_gets_each_committed_entry_in_ledger_order_with_the_balance_after(
    pool: CreditPool,
) -> None:
    start = funded(pool)

    async def test(hub: Hub) -> None:
        stream = await open_stream(hub, "acme", start)
        await consume(pool, "acme", 3)
        events = await read_events(stream, 3)
        assert [int(e["id"]) for e in events] == [start + 1, start + 2, start + 3]
        assert {e["event"] for e in events} == {"ledger"}
        assert [e["data"]["entry"]["seq"] for e in events] == [start + 1, start + 2, start + 3]
        assert [e["data"]["entry"]["method"] for e in events] == ["used"] * 3
        last = events[-1]["data"]
        assert Decimal(last["balance"]["left"]) == Decimal(last["entry"]["total_after"])
        assert Decimal(last["balance"]["left"]) == Decimal("98.50")
        assert Decimal(last["balance"]["used"]) == Decimal("1.50")
        await stream.aclose()

    run(test, pool)


def test_a_stream_resumed_after_a_seq_gets_exactly_the_entries_after_it(
    pool: CreditPool,
) -> None:
    start = funded(pool)
    pool.consume("acme", "report", user_id="u-1")
    pool.consume("acme", "report", user_id="u-1")
    pool.consume("acme", "report", user_id="u-1")

    async def test(hub: Hub) -> None:
        stream = await open_stream(hub, "acme", start + 1)
        missed = await read_events(stream, 2)
        assert [int(e["id"]) for e in missed] == [start + 2, start + 3]
        await consume(pool, "acme")
        assert [int(e["id"]) for e in await read_events(stream, 1)] == [start + 4]
        await stream.aclose()

    run(test, pool)


def test_streams_of_other_organizations_get_nothing(pool: CreditPool) -> None:
    start = funded(pool)
    other_start = funded(pool, "globex")

    async def test(hub: Hub) -> None:
        acme = await open_stream(hub, "acme", start)
        globex = await open_stream(hub, "globex", other_start)
        waiting = asyncio.ensure_future(anext(globex))
        await consume(pool, "acme")
        assert [e["data"]["entry"]["org_id"] for e in await read_events(acme, 1)] == ["acme"]
        await asyncio.sleep(0.3)
        assert not waiting.done()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await acme.aclose()
        await globex.aclose()

    run(test, pool)


def test_many_streams_of_one_organization_share_one_read_per_change(
    pool: CreditPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = funded(pool)
    reads: list[int] = []
    read_many = service.read_many

    def counted(db: Database, cursors: dict[str, int], limit: int) -> Any:
        reads.extend(cursors.values())
        return read_many(db, cursors, limit)

    monkeypatch.setattr(service, "read_many", counted)

    async def test(hub: Hub) -> None:
        streams = [await open_stream(hub, "acme", start) for _ in range(20)]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.2)  # every stream is subscribed and waiting
        assert reads == []
        await consume(pool, "acme")
        chunks = await asyncio.wait_for(asyncio.gather(*firsts), WAIT_S)
        assert {int(parse(c)[0]["id"]) for c in chunks} == {start + 1}
        assert reads == [start]
        for s in streams:
            await s.aclose()

    run(test, pool)


def test_a_missed_notification_is_repaired_by_the_periodic_recheck(pool: CreditPool) -> None:
    start = funded(pool)

    async def test(hub: Hub) -> None:
        stream = await open_stream(hub, "acme", start)
        reading = asyncio.ensure_future(read_events(stream, 1))
        await asyncio.sleep(0.2)
        hub.announce = lambda org_id, seq: None  # type: ignore[method-assign]

        async def not_now() -> None:  # no re-check may come between the commit and the check
            pass

        hub.recheck = not_now  # type: ignore[method-assign]
        await consume(pool, "acme")
        await asyncio.sleep(0.3)
        assert not reading.done()
        del hub.announce
        del hub.recheck  # the next periodic re-check finds the org behind the ledger
        assert [int(e["id"]) for e in await reading] == [start + 1]
        await stream.aclose()

    run(test, pool, heartbeat_s=1.0)


def test_a_stream_that_falls_behind_catches_up_from_the_ledger_without_loss(
    pool: CreditPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "QUEUE_SIZE_MAX", 2)
    start = funded(pool)

    async def test(hub: Hub) -> None:
        slow = await open_stream(hub, "acme", start)
        fast = await open_stream(hub, "acme", start)
        firsts = [asyncio.ensure_future(read_events(s, 1)) for s in (slow, fast)]
        await asyncio.sleep(0.2)  # both are subscribed
        await consume(pool, "acme")
        for first in firsts:
            assert [int(e["id"]) for e in await first] == [start + 1]
        # ``slow`` is not read now: its queue overflows while ``fast`` keeps up.
        for n in range(2, 8):
            await consume(pool, "acme")
            assert [int(e["id"]) for e in await read_events(fast, 1)] == [start + n]
        rest = await read_events(slow, 6)
        assert [int(e["id"]) for e in rest] == list(range(start + 2, start + 8))
        await slow.aclose()
        await fast.aclose()

    run(test, pool)


def test_a_stream_sends_heartbeats_while_quiet_and_ends_after_its_lifetime(
    pool: CreditPool,
) -> None:
    start = funded(pool)

    async def test(hub: Hub) -> None:
        stream = await open_stream(hub, "acme", start)
        chunks = []
        async with asyncio.timeout(WAIT_S):
            chunks = [chunk async for chunk in stream]
        assert chunks.count(b": heartbeat\n\n") >= 2
        assert set(chunks) == {b": heartbeat\n\n"}

    run(test, pool, heartbeat_s=0.2, lifetime_s=1.0)


def test_stopping_the_hub_ends_open_streams(pool: CreditPool) -> None:
    start = funded(pool)

    async def test(hub: Hub) -> None:
        stream = await open_stream(hub, "acme", start)
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.2)
        hub.end_streams()
        # The stream says when to come back (an SSE ``retry:`` hint), then ends.
        hint = await asyncio.wait_for(waiting, WAIT_S)
        assert "retry:" in str(hint)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(stream), WAIT_S)

    run(test, pool)


def test_a_rolled_back_change_is_never_announced_and_a_committed_one_is(
    pool: CreditPool, db_url: str
) -> None:
    if not db_url.startswith("postgres"):
        pytest.skip("NOTIFY is PostgreSQL's; SQLite announces in process after the commit")
    funded(pool, amount="0.50")
    conninfo = normalize_url(db_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as listener:
        listener.execute("LISTEN creditpool_ledger")
        pool.consume("acme", "report", user_id="u-1")
        with pytest.raises(InsufficientCredits):
            pool.consume("acme", "report", user_id="u-1")
        payloads = [n.payload for n in listener.notifies(timeout=1.0)]
    assert payloads == [f"acme:{pool.ledger('acme')[-1].seq}"]


def test_rounds_that_follow_each_other_are_spaced_and_one_after_a_quiet_while_is_not(
    pool: CreditPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load a round covers what was committed during ROUND_SPACING_S (fewer, larger
    rounds); a round after a quiet while starts at once (no added latency when idle)."""
    starts = {org: funded(pool, org) for org in ("a", "b", "c")}
    spacing = 0.4
    monkeypatch.setattr(hub_module, "ROUND_SPACING_S", spacing)
    began: list[tuple[float, list[str]]] = []
    read_many = service.read_many

    def slow(db: Database, cursors: dict[str, int], limit: int) -> Any:
        began.append((time.monotonic(), sorted(cursors)))
        time.sleep(0.1)  # a round that takes a while: news arrives meanwhile
        return read_many(db, cursors, limit)

    monkeypatch.setattr(service, "read_many", slow)

    async def test(hub: Hub) -> None:
        streams = {org: await open_stream(hub, org, seq) for org, seq in starts.items()}
        firsts = [asyncio.ensure_future(read_events(s, 1)) for s in streams.values()]
        await asyncio.sleep(0.2)  # every stream is subscribed and waiting
        committed = time.monotonic()
        await consume(pool, "a")
        await asyncio.sleep(0.05)  # the first round is reading a
        await consume(pool, "b")
        await consume(pool, "c")
        for events in await asyncio.gather(*firsts):
            assert [e["event"] for e in events] == ["ledger"]
        assert began[0][1] == ["a"]
        assert began[0][0] - committed < spacing  # at once, after the quiet while
        assert began[1][1] == ["b", "c"]  # one round for both, spaced from the first
        assert began[1][0] - began[0][0] >= spacing - 0.01
        await asyncio.sleep(spacing * 2)  # quiet again
        next_a = asyncio.ensure_future(read_events(streams["a"], 1))
        await asyncio.sleep(0.05)
        quiet_commit = time.monotonic()
        await consume(pool, "a")
        await next_a
        assert began[2][0] - quiet_commit < spacing
        for stream in streams.values():
            await stream.aclose()

    run(test, pool)


def test_a_hub_without_streams_stops_listening_and_its_next_stream_listens_again(
    pool: CreditPool, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no stream open for LISTEN_IDLE_S the process stops taking every commit's
    notification; a new stream listens again before it reads where it starts, and gets
    what is committed next by notification (the re-check is minutes away here)."""
    if not db_url.startswith("postgres"):
        pytest.skip("NOTIFY is PostgreSQL's; SQLite announces in process after the commit")
    monkeypatch.setattr(hub_module, "LISTEN_IDLE_S", 0.3)
    start = funded(pool)

    async def stopped_listening(hub: Hub) -> None:
        async with asyncio.timeout(WAIT_S):
            while hub.listening.is_set():
                await asyncio.sleep(0.05)

    async def test(hub: Hub) -> None:
        await stopped_listening(hub)  # it listened at start, and nobody watches
        heard: list[tuple[str, int]] = []
        announce = hub.announce
        hub.announce = lambda org_id, seq: heard.append((org_id, seq))  # type: ignore[method-assign]
        await consume(pool, "acme")
        await asyncio.sleep(0.5)
        assert heard == []  # not listening: the commit was not heard
        hub.announce = announce  # type: ignore[method-assign]

        stream = await open_stream(hub, "acme", start)
        assert [int(e["id"]) for e in await read_events(stream, 1)] == [start + 1]
        assert hub.listening.is_set()
        began = time.monotonic()
        await consume(pool, "acme")
        assert [int(e["id"]) for e in await read_events(stream, 1)] == [start + 2]
        assert time.monotonic() - began < 5  # by notification: the re-check is 60 s away
        await asyncio.sleep(0.6)
        assert hub.listening.is_set()  # a stream is open: it keeps listening
        await stream.aclose()
        await stopped_listening(hub)  # the last stream ended: it stops again

    run(test, pool, heartbeat_s=60.0)
