"""A stream hub's round (``http.feed.read_many``) on a real database (SQLite and
PostgreSQL): it reads every organization of the round in a fixed few statements, and the
frames it makes are byte for byte those of reading each organization on its own (its
entries after its seq, then ``ledger.balance``) in the same snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine.default import CACHE_HIT

from creditpool import CreditPool
from creditpool.http import feed
from creditpool.ledger import service as ledger
from creditpool.queries import Ledger
from creditpool.repositories import ledger as ledger_repo
from creditpool.storage.uow import Tx
from tests.support import FakeClock


def one_by_one(tx: Tx, org_id: str, after_seq: int, limit: int) -> feed.Batch | None:
    """What a round read for one organization before rounds were read as a whole: its
    entries, then its balance by ``ledger.balance``."""
    rows = ledger_repo.list_entries(tx.conn, Ledger(org_id, after_seq=after_seq, limit=limit))
    if not rows:
        return None
    balance = ledger.balance(tx, org_id, None).model_dump(mode="json")
    entries = [ledger.entry_model(r) for r in rows]
    frames = [
        f"id: {e.seq}\nevent: ledger\ndata: "
        f"{json.dumps({'entry': e.model_dump(mode='json'), 'balance': balance})}\n\n".encode()
        for e in entries
    ]
    return feed.Batch(
        org_id=org_id,
        seqs=[e.seq for e in entries],
        frames=frames,
        complete=len(rows) < limit,
        chunk=b"".join(frames),
    )


def last_seq(pool: CreditPool, org_id: str) -> int:
    return pool.ledger(org_id)[-1].seq


def scenery(pool: CreditPool, clock: FakeClock) -> dict[str, int]:
    """Organizations in every state a round meets; org -> the seq a stream read up to."""
    cursors: dict[str, int] = {}
    now = clock.now
    # Open holds (not due), one spread over two grants.
    pool.create_org("held")
    pool.grant("held", "1.00", expires_at=now + timedelta(days=2))
    pool.grant("held", "10")
    cursors["held"] = last_seq(pool, "held")
    pool.hold("held", "report", user_id="u-1", amount="2", ttl_s=3600)
    pool.consume("held", "report", user_id="u-1")
    pool.hold("held", "report", user_id="u-2", amount="0.5", ttl_s=7200)
    # A hold that runs out before the round and a grant that expires before it, neither
    # written yet (the round's balance gives them back as the next change will).
    pool.create_org("due")
    pool.grant("due", "1.00", expires_at=now + timedelta(seconds=90))
    pool.grant("due", "5")
    pool.grant("due", "3", expires_at=now + timedelta(days=3))
    cursors["due"] = last_seq(pool, "due") - 1
    pool.hold("due", "report", user_id="u-1", amount="2", ttl_s=60)
    pool.hold("due", "report", user_id="u-1", amount="0.75", ttl_s=3600)
    pool.consume("due", "report", user_id="u-1")
    # A pending grant beside an active one.
    pool.create_org("pending")
    pool.grant("pending", "4")
    pool.grant("pending", "7", available_from=now + timedelta(days=1))
    cursors["pending"] = 0
    # Nothing new since its seq.
    pool.create_org("quiet")
    pool.grant("quiet", "2")
    pool.consume("quiet", "report", user_id="u-1")
    cursors["quiet"] = last_seq(pool, "quiet")
    # More new entries than a round's limit.
    pool.create_org("long")
    pool.grant("long", "20")
    cursors["long"] = last_seq(pool, "long")
    for _ in range(7):
        pool.consume("long", "report", user_id="u-1")
    # An organization that does not exist.
    cursors["gone"] = 0
    clock.advance(seconds=120)
    return cursors


@pytest.mark.parametrize("limit", [3, 500])
def test_a_round_reads_what_each_organization_read_alone_would(
    pool: CreditPool, clock: FakeClock, limit: int
) -> None:
    cursors = scenery(pool, clock)
    with pool.db.read(snapshot=True) as tx:
        expected = {
            org_id: batch
            for org_id, after in cursors.items()
            if (batch := one_by_one(tx, org_id, after, limit)) is not None
        }
        got = feed._read(tx, cursors, limit)
    assert set(expected) == {"held", "due", "pending", "long"}
    assert got == expected
    assert got["long"].complete is (limit > 7)
    assert len(got["long"].seqs) == min(limit, 7)


def test_the_round_s_balances_are_the_pool_s(pool: CreditPool, clock: FakeClock) -> None:
    cursors = scenery(pool, clock)
    got = feed.read_many(pool.db, cursors, 500)
    for org_id, batch in got.items():
        data = json.loads(batch.frames[-1].decode().split("data: ", 1)[1])
        assert data["balance"] == pool.balance(org_id).model_dump(mode="json")
    due = json.loads(got["due"].frames[-1].decode().split("data: ", 1)[1])["balance"]
    assert due["held"] == "0.75"  # the hold that ran out gave its credits back
    pending = json.loads(got["pending"].frames[-1].decode().split("data: ", 1)[1])["balance"]
    assert pending["upcoming"] == "7.00"


def test_read_after_is_a_round_of_one(pool: CreditPool, clock: FakeClock) -> None:
    cursors = scenery(pool, clock)
    for limit in (3, 500):
        many = feed.read_many(pool.db, cursors, limit)
        for org_id, after in cursors.items():
            assert feed.read_after(pool.db, org_id, after, limit) == many.get(org_id)


@pytest.fixture
def statements(pool: CreditPool, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The SQL statements sent to the database from now on, as the driver sees them."""
    sent: list[str] = []
    if pool.db.dialect == "postgresql":
        execute = psycopg.Cursor.execute

        def recording(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append(str(query))
            return execute(self, query, params, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", recording)
        yield sent
        return

    def tracing(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        dbapi_conn.set_trace_callback(sent.append)

    engine = pool.db.engine
    engine.dispose()  # every connection from now on is a traced one
    event.listen(engine, "checkout", tracing)
    yield sent
    event.remove(engine, "checkout", tracing)


def test_a_round_costs_the_same_statements_whatever_its_organizations(
    pool: CreditPool, clock: FakeClock, statements: list[str]
) -> None:
    def fund(org_id: str) -> int:
        pool.create_org(org_id)
        pool.grant(org_id, "10", expires_at=clock.now + timedelta(seconds=90))
        pool.grant(org_id, "10", available_from=clock.now + timedelta(days=1))
        seq = last_seq(pool, org_id)
        pool.hold(org_id, "report", user_id="u-1", amount="1", ttl_s=60)
        pool.consume(org_id, "report", user_id="u-1")
        return seq

    cursors = {f"org-{i:02}": fund(f"org-{i:02}") for i in range(20)}
    clock.advance(seconds=120)  # every hold and the first grant of each are due
    counts = {}
    for n in (1, 2, 20):
        asked = dict(list(cursors.items())[:n])
        statements.clear()
        got = feed.read_many(pool.db, asked, 500)
        assert set(got) == set(asked)
        counts[n] = len(statements)
    assert counts[1] == counts[2] == counts[20], (counts, statements)
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    # The entries, the organizations, their live grants, their due holds.
    assert len(reads) == 4, statements


def test_a_round_s_statement_is_compiled_once_whatever_its_organizations(
    pool: CreditPool, clock: FakeClock
) -> None:
    """The cursors are one parameter: rounds of 1, 2 and 5 organizations (and other seqs)
    reuse the statement SQLAlchemy compiled for the first, as they must at every round of a
    busy hub. (A VALUES list of the pairs was a new compilation each time.)"""
    cursors = scenery(pool, clock)
    hits: list[object] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        context = args[-2]
        if "cursors" in statement:
            hits.append(context.cache_hit)

    event.listen(pool.db.engine, "after_cursor_execute", seen)
    try:
        rounds = [dict(list(cursors.items())[:n]) for n in (5, 1, 2, 5)]
        rounds.append({org_id: max(seq - 1, 0) for org_id, seq in cursors.items()})
        for asked in rounds:
            feed.read_many(pool.db, asked, 500)
    finally:
        event.remove(pool.db.engine, "after_cursor_execute", seen)
    assert len(hits) == len(rounds)
    assert hits[1:] == [CACHE_HIT] * (len(rounds) - 1), hits
