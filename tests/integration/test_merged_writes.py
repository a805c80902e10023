"""A change's writes travel to PostgreSQL as one statement (``storage.compiled.merged``),
and only when none of them needs another's effect; elsewhere the block changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from creditpool import CreditPool
from creditpool.repositories import idempotency as idempotency_repo
from creditpool.repositories import orgs as orgs_repo
from creditpool.storage import compiled
from creditpool.storage import engine as engines
from creditpool.storage.conflicts import lost_a_race
from creditpool.storage.tables import idempotency_keys, orgs
from tests.support import FakeClock

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def engine(pool: CreditPool, db_url: str, clock: FakeClock) -> Iterator[Engine]:
    pool.create_org("acme")
    pool.grant("acme", "5", expires_at=clock.now + timedelta(days=3))
    created = engines.create(db_url)
    yield created
    created.dispose()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the PostgreSQL driver is given (the boundary of the database)."""
    statements: list[str] = []
    execute = psycopg.Cursor.execute

    def recording(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        statements.append(str(query))
        return execute(self, query, params, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", recording)
    return statements


def _key(conn: Connection, key: str) -> None:
    idempotency_repo.insert(
        conn,
        org_id="acme",
        key=key,
        operation="consume",
        request_hash="h" * 64,
        result={"id": 1},
        created_at=AT,
    )


def _counters(conn: Connection, seq: int) -> None:
    orgs_repo.save_counters(conn, "acme", ledger_seq=seq, object_seq=seq, ledger_at=AT)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_consumption_s_writes_reach_postgresql_as_one_statement(
    pool: CreditPool, sent: list[str]
) -> None:
    pool.create_org("acme")
    pool.grant("acme", "5")
    sent.clear()
    first = pool.consume("acme", "report", user_id="u-1", idempotency_key="k-1")
    writes = [s for s in sent if s.startswith(("INSERT", "UPDATE", "WITH"))]
    assert len(writes) == 1, writes
    for part in ("consumptions", "allocations", "ledger", "events", "idempotency_keys"):
        assert f"INSERT INTO {part} " in writes[0]
    assert "UPDATE grants" in writes[0]
    assert "UPDATE orgs" in writes[0]
    assert "pg_notify" in writes[0]
    # All of it landed: the balance, the entry, the key that replays.
    assert pool.balance("acme").left == Decimal("4.5")
    assert [e.action for e in pool.ledger("acme")][-1] == "consumption"
    again = pool.consume("acme", "report", user_id="u-1", idempotency_key="k-1")
    assert again.id == first.id
    assert pool.balance("acme").left == Decimal("4.5")
    pool.verify()


def test_writes_that_change_the_same_row_run_one_after_the_other(engine: Engine) -> None:
    with engine.begin() as conn, compiled.merged(conn):
        _counters(conn, 7)
        _counters(conn, 9)  # the same row again: merged, one of the two would be lost
    with engine.connect() as conn:
        assert conn.execute(select(orgs.c.ledger_seq).where(orgs.c.id == "acme")).scalar() == 9


def test_a_read_inside_the_block_sees_the_writes_made_before_it(engine: Engine) -> None:
    with engine.begin() as conn, compiled.merged(conn):
        _key(conn, "k-read")
        queries = idempotency_repo.lock_queries(conn.dialect.name, "acme", "k-read")
        found = idempotency_repo.parse_locked(
            conn.dialect.name, compiled.fetch_together(conn, queries)
        )
        assert found is not None
        assert found.key.stored is not None


def test_a_statement_run_the_usual_way_inside_the_block_comes_after_the_writes(
    engine: Engine,
) -> None:
    with engine.begin() as conn, compiled.merged(conn):
        _counters(conn, 11)
        seq = conn.execute(select(orgs.c.ledger_seq).where(orgs.c.id == "acme")).scalar()
    assert seq == 11


def test_a_key_recorded_twice_is_a_lost_race_and_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        _key(conn, "k-twice")

    def twice() -> None:
        with engine.begin() as conn, compiled.merged(conn):
            _counters(conn, 42)
            _key(conn, "k-twice")

    with pytest.raises((psycopg.errors.UniqueViolation, sqlite3.IntegrityError)) as raised:
        twice()
    assert lost_a_race(raised.value)
    with engine.connect() as conn:
        assert conn.execute(select(orgs.c.ledger_seq).where(orgs.c.id == "acme")).scalar() != 42
        keys = conn.execute(select(idempotency_keys.c.key)).scalars().all()
        assert keys == ["k-twice"]


def test_an_update_merges_only_alone_on_its_table_and_naming_each_row_once() -> None:
    save = orgs_repo._SAVE_SEQS
    insert = idempotency_repo._INSERT
    one = {"org_id": "a", "ledger_seq": 1, "object_seq": 1, "ledger_at": AT}
    other = {**one, "org_id": "b"}

    def batch(*writes: tuple[compiled.Write, list[dict[str, Any]]]) -> Any:
        dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
        return [(w, w.compiled(dialect), rows) for w, rows in writes]

    assert compiled._independent(batch((insert, [{}]), (save, [one, other])))
    assert not compiled._independent(batch((save, [one]), (save, [other])))
    assert not compiled._independent(batch((save, [one, dict(one)])))
