"""Statements compiled once per dialect (``storage.compiled``) read and write values as the
column types do: aware UTC datetimes (text on SQLite), JSON, booleans; and the typed rows
of the repositories read every grant the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from creditpool import CreditPool
from creditpool.repositories import grants as grants_repo
from creditpool.repositories import idempotency as idempotency_repo
from creditpool.repositories import orgs as orgs_repo
from creditpool.storage import compiled
from creditpool.storage import engine as engines
from creditpool.storage.tables import grants, orgs
from tests.support import FakeClock

AT = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def engine(pool: CreditPool, db_url: str, clock: FakeClock) -> Iterator[Engine]:
    pool.create_org("acme")
    pool.grant("acme", "5", expires_at=clock.now + timedelta(days=3))
    created = engines.create(db_url)
    yield created
    created.dispose()


def _lock(conn: Connection, key: str | None) -> idempotency_repo.LockedWithKey:
    queries = idempotency_repo.lock_queries(conn.dialect.name, "acme", key)
    found = idempotency_repo.parse_locked(conn.dialect.name, compiled.fetch_together(conn, queries))
    assert found is not None
    return found


def test_the_lock_reads_typed_counters_and_instants_survive_a_round_trip(engine: Engine) -> None:
    other_zone = AT.astimezone(timezone(timedelta(hours=-5)))
    with engine.begin() as conn:
        orgs_repo.save_counters(
            conn, "acme", ledger_seq=7, object_seq=9, ledger_at=other_zone, next_event_at=None
        )
        locked = _lock(conn, None)
    assert locked.org == orgs_repo.LockedOrg("acme", "UTC", [], 7, 9, AT, None, 7, None, None)
    assert locked.org.ledger_at is not None
    assert locked.org.ledger_at.tzinfo == UTC
    assert locked.key == idempotency_repo.KeyRecord(None, None)
    with engine.connect() as conn:  # the same value as SQLAlchemy's own reading
        stored = conn.execute(select(orgs.c.ledger_at).where(orgs.c.id == "acme")).scalar_one()
    assert stored == AT


def test_a_naive_instant_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive"), engine.begin() as conn:
        orgs_repo.save_counters(
            conn, "acme", ledger_seq=1, object_seq=1, ledger_at=AT.replace(tzinfo=None)
        )


def test_a_key_record_is_read_with_the_lock_and_alone(engine: Engine) -> None:
    result = {"id": 3, "nested": {"list": [1, "two", None]}, "none": None}
    with engine.begin() as conn:
        idempotency_repo.insert(
            conn,
            org_id="acme",
            key="k-1",
            operation="consume",
            request_hash="h" * 64,
            result=result,
            created_at=AT,
        )
        idempotency_repo.claim(conn, [("scope", "sent", "acme", "h" * 64)], AT)
    expected = idempotency_repo.StoredKey("consume", "h" * 64, result)
    with engine.begin() as conn:
        assert _lock(conn, "k-1").key == (expected, None)
        assert idempotency_repo.get(conn, "acme", "k-1", "scope", "sent") == (
            expected,
            idempotency_repo.ScopeClaim("acme", ledger=True),
        )
        assert idempotency_repo.get(conn, "acme", "k-2") == (None, None)


def test_grants_are_read_the_same_way_by_the_live_set_and_by_every_other_reader(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        (live,) = grants_repo.load_live(conn, "acme").values()
        (full,) = grants_repo.list_for_org(conn, "acme")
        assert live == grants_repo.to_grant_row(full)
        live.remaining, live.added_logged, live.held = 10_000, True, 20_000
        grants_repo.save_working_copies(conn, "acme", [live])
    with engine.connect() as conn:
        row = conn.execute(select(grants).where(grants.c.org_id == "acme")).one()
    assert (row.remaining, row.added_logged, row.expiry_logged, row.held) == (
        10_000,
        True,
        False,
        20_000,
    )


def test_an_empty_batch_of_rows_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        grants_repo.save_working_copies(conn, "acme", [])
        idempotency_repo.claim(conn, [], AT)
