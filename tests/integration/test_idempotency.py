"""Idempotency keys: replay the first result, refuse other arguments, per organization."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditpool import CreditPool, IdempotencyConflict, InvalidInput
from creditpool.http import repository as http_store
from creditpool.pool import IDEMPOTENCY_KEY_RETENTION
from tests.integration.dbstate import snapshot
from tests.support import FakeClock


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def test_the_same_consume_key_and_arguments_return_the_first_result_and_write_nothing(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "10")
    first = acme.consume("acme", "report", user_id="u-1", requests=2, idempotency_key="c-1")
    state = snapshot(acme, "acme")
    clock.advance(minutes=5)
    again = acme.consume("acme", "report", user_id="u-1", requests=2, idempotency_key="c-1")
    assert again == first
    assert snapshot(acme, "acme") == state


def test_the_same_key_with_other_arguments_is_a_conflict_and_changes_nothing(
    acme: CreditPool,
) -> None:
    acme.grant("acme", "10")
    acme.consume("acme", "report", user_id="u-1", idempotency_key="c-1")
    state = snapshot(acme, "acme")
    with pytest.raises(IdempotencyConflict) as refused:
        acme.consume("acme", "report", user_id="u-2", idempotency_key="c-1")
    assert refused.value.status == 409
    with pytest.raises(IdempotencyConflict):
        acme.consume("acme", "action_plan", user_id="u-1", idempotency_key="c-1")
    with pytest.raises(IdempotencyConflict):
        acme.grant("acme", "1", idempotency_key="c-1")  # same key, another operation
    assert snapshot(acme, "acme") == state


def test_a_replayed_grant_does_not_grant_twice(acme: CreditPool, clock: FakeClock) -> None:
    first = acme.grant("acme", "10", reference="INV-1", idempotency_key="g-1")
    clock.advance(minutes=1)
    again = acme.grant("acme", "10", reference="INV-1", idempotency_key="g-1")
    assert again == first
    assert len(acme.grants("acme")) == 1
    assert acme.balance("acme").total == Decimal("10")
    with pytest.raises(IdempotencyConflict):
        acme.grant("acme", "11", reference="INV-1", idempotency_key="g-1")


def test_a_replayed_void_and_refund_return_their_first_results(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    acme.grant("acme", "10")
    c = acme.consume("acme", "report", user_id="u-1")
    assert c.id is not None
    refund = acme.refund("acme", c.id, reason="bad", idempotency_key="r-1")
    assert acme.refund("acme", c.id, reason="bad", idempotency_key="r-1") == refund
    with pytest.raises(IdempotencyConflict):
        acme.refund("acme", c.id, reason="other", idempotency_key="r-1")
    voided = acme.void_grant("acme", g.id, by="cs", idempotency_key="v-1")
    state = snapshot(acme, "acme")
    assert acme.void_grant("acme", g.id, by="cs", idempotency_key="v-1") == voided
    assert snapshot(acme, "acme") == state
    assert acme.verify() == []


def test_keys_are_per_organization(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_org("globex")
    pool.grant("acme", "10", idempotency_key="same")
    pool.grant("globex", "20", idempotency_key="same")
    a = pool.consume("acme", "report", user_id="u-1", idempotency_key="k")
    b = pool.consume("globex", "action_plan", user_id="u-9", idempotency_key="k")
    assert (a.org_id, b.org_id) == ("acme", "globex")
    assert pool.balance("acme").left == Decimal("9.5")
    assert pool.balance("globex").left == Decimal("19.5")
    assert len(pool.consumptions("acme")) == len(pool.consumptions("globex")) == 1


def test_a_replay_still_writes_the_expiries_that_fell_due(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "1")
    acme.grant("acme", "2", expires_at=clock.now + timedelta(hours=1))
    first = acme.consume("acme", "report", user_id="u-1", idempotency_key="c-1")
    clock.advance(hours=2)
    assert acme.consume("acme", "report", user_id="u-1", idempotency_key="c-1") == first
    assert acme.balance("acme").left == Decimal("1")
    assert acme.verify() == []


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_malformed_key_is_refused(acme: CreditPool, key: str) -> None:
    acme.grant("acme", "10")
    state = snapshot(acme, "acme")
    with pytest.raises(InvalidInput):
        acme.consume("acme", "report", user_id="u-1", idempotency_key=key)
    assert snapshot(acme, "acme") == state


def test_sweep_forgets_http_responses_with_the_library_keys_after_the_retention(
    pool: CreditPool, clock: FakeClock
) -> None:
    pool.create_org("acme")
    pool.grant("acme", "5", idempotency_key="g-1")
    with pool.db.write() as tx:
        http_store.put_response(
            tx.conn,
            scope="key-1",
            key="k",
            org_id="acme",
            fingerprint="f",
            status=201,
            body="{}",
            created_at=tx.now,
        )
    clock.advance(seconds=IDEMPOTENCY_KEY_RETENTION.total_seconds() - 1)
    pool.sweep()
    with pool.db.write() as tx:
        assert http_store.get_response(tx.conn, "key-1", "k") is not None
    clock.advance(seconds=2)
    pool.sweep()
    with pool.db.write() as tx:
        assert http_store.get_response(tx.conn, "key-1", "k") is None
    # the library's key is gone too: the same key grants again
    pool.grant("acme", "5", idempotency_key="g-1")
    assert len(pool.grants("acme")) == 2
