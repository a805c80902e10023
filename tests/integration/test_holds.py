"""Holds through the library, on SQLite and PostgreSQL: the balance (Used = Total − Left −
Held) now and at past instants, settle above and below, release, the end of a hold's time to
live at its exact instant, idempotency, and refusals that change nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditpool import (
    CreditPool,
    HoldNotOpen,
    HoldStatus,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidInput,
    NotFound,
)
from tests.integration.dbstate import snapshot
from tests.support import FakeClock

# topic_detection costs 0.01 credit per item; report 0.5 per use (the seeded catalog).


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def balance(pool: CreditPool, at: object = None) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    b = pool.balance("acme", at)  # type: ignore[arg-type]
    assert b.used == b.total - b.left - b.held
    return (b.total, b.left, b.held, b.used)


def test_held_credits_leave_left_and_are_not_used(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "10")
    h = acme.hold("acme", "topic_detection", user_id="u", quantity="300")  # 3 credits
    assert (h.status, h.amount, h.expires_at) == (
        HoldStatus.OPEN,
        Decimal("3"),
        clock.now + timedelta(minutes=15),
    )
    assert balance(acme) == (10, 7, 3, 0)
    assert acme.grants("acme")[0].held == 3
    assert acme.grants("acme")[0].remaining == 7
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "topic_detection", user_id="u", quantity="701")
    assert acme.verify("acme") == []


def test_a_hold_above_left_is_refused_and_writes_nothing(acme: CreditPool) -> None:
    acme.grant("acme", "1")
    before = snapshot(acme, "acme")
    with pytest.raises(InsufficientCredits):
        acme.hold("acme", "report", user_id="u", amount="1.0001", idempotency_key="k")
    assert snapshot(acme, "acme") == before
    with pytest.raises(NotFound):
        acme.hold("acme", "no-such-feature", user_id="u", amount="1")
    with pytest.raises(InvalidInput):
        acme.hold("acme", "report", user_id="u", amount="1", ttl_s=acme.hold_ttl_s_max + 1)
    with pytest.raises(InvalidInput):
        acme.hold("acme", "topic_detection", user_id="u", amount="1", quantity="2")
    assert snapshot(acme, "acme") == before


def test_settle_below_gives_the_rest_back_and_is_a_normal_consumption(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "10")
    h = acme.hold("acme", "topic_detection", user_id="u", amount="5", metadata={"job": 1})
    clock.advance(minutes=5)
    c = acme.settle("acme", h.id, quantity="120", requests=3)  # 1.2 credits
    assert (c.cost, c.hold_id, c.status, c.requests, c.metadata) == (
        Decimal("1.2"),
        h.id,
        "paid",
        3,
        {"job": 1},
    )
    closed = acme.hold_of("acme", h.id)
    assert (closed.status, closed.consumption_id, closed.released, closed.lost) == (
        HoldStatus.SETTLED,
        c.id,
        Decimal("3.8"),
        0,
    )
    assert balance(acme) == (10, Decimal("8.8"), 0, Decimal("1.2"))
    actions = [(e.action, e.credits) for e in acme.ledger("acme")]
    assert actions[-3:] == [("hold", 5), ("release", 5), ("consumption", Decimal("1.2"))]
    refund = acme.refund("acme", c.id)
    assert refund.restored == Decimal("1.2")
    assert balance(acme) == (10, 10, 0, 0)
    assert acme.verify("acme") == []


def test_settle_above_the_hold_charges_the_rest_or_refuses_and_keeps_it_open(
    acme: CreditPool,
) -> None:
    acme.grant("acme", "10")
    h = acme.hold("acme", "report", user_id="u", amount="4")
    before = snapshot(acme, "acme")
    with pytest.raises(InsufficientCredits):
        acme.settle("acme", h.id, cost="10.0001")
    assert snapshot(acme, "acme") == before
    assert acme.hold_of("acme", h.id).status == HoldStatus.OPEN
    c = acme.settle("acme", h.id, cost="10")
    assert c.cost == 10
    assert balance(acme) == (10, 0, 0, 10)
    assert acme.verify("acme") == []


def test_release_returns_everything_and_twice_is_refused(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    h = acme.hold("acme", "report", user_id="u", amount="4")
    released = acme.release("acme", h.id)
    assert (released.status, released.released, released.lost) == (HoldStatus.RELEASED, 4, 0)
    assert balance(acme) == (10, 10, 0, 0)
    with pytest.raises(HoldNotOpen) as refused:
        acme.release("acme", h.id)
    assert refused.value.extra["status"] == "released"
    with pytest.raises(HoldNotOpen):
        acme.settle("acme", h.id, cost="1")
    with pytest.raises(NotFound):
        acme.release("acme", h.id + 100)
    assert acme.verify("acme") == []


def test_what_was_held_on_an_expired_grant_is_lost(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "5", expires_at=clock.now + timedelta(minutes=10))
    acme.grant("acme", "5")
    h = acme.hold("acme", "report", user_id="u", amount="7", ttl_s=3600)  # 5 + 2
    clock.advance(minutes=10)
    assert balance(acme) == (5, 3, 2, 0)
    released = acme.release("acme", h.id)
    assert (released.released, released.lost) == (2, 5)
    assert balance(acme) == (5, 5, 0, 0)
    assert acme.verify("acme") == []


def test_what_was_held_on_a_voided_grant_is_lost(acme: CreditPool) -> None:
    g = acme.grant("acme", "5")
    acme.grant("acme", "5", expires_at=None)
    h = acme.hold("acme", "report", user_id="u", amount="3")  # on grant 1 (oldest first)
    acme.void_grant("acme", g.id)
    assert balance(acme) == (5, 5, 0, 0)
    c = acme.settle("acme", h.id, cost="1")  # the held part is gone: charged from grant 2
    assert [a.grant_id for a in c.allocations] == [g.id + 1]
    assert acme.hold_of("acme", h.id).lost == 3
    assert acme.verify("acme") == []


def test_a_hold_ends_at_its_exact_instant(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "10")
    start = clock.now
    h = acme.hold("acme", "report", user_id="u", amount="4", ttl_s=60)
    clock.advance(seconds=59.999999)
    assert acme.hold_of("acme", h.id).status == HoldStatus.OPEN
    assert balance(acme)[1:3] == (6, 4)
    clock.set(start + timedelta(seconds=60))
    # read right: nothing has written the end yet
    assert balance(acme) == (10, 10, 0, 0)
    assert acme.hold_of("acme", h.id).status == HoldStatus.EXPIRED
    with pytest.raises(HoldNotOpen) as refused:
        acme.settle("acme", h.id, cost="1")
    assert refused.value.extra["status"] == "expired"
    [end] = [e for e in acme.ledger("acme") if e.action == "hold_expiry"]
    assert (end.at, end.credits, end.hold_id) == (start + timedelta(seconds=60), 4, h.id)
    # the past stays exact
    assert balance(acme, start + timedelta(seconds=30)) == (10, 6, 4, 0)
    assert balance(acme, start + timedelta(seconds=60)) == (10, 10, 0, 0)
    assert acme.verify("acme") == []


def test_sweep_writes_ends_and_a_later_change_comes_after_them(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "10")
    h = acme.hold("acme", "report", user_id="u", amount="4", ttl_s=60)
    clock.advance(minutes=5)
    acme.consume("acme", "report", user_id="u")
    entries = acme.ledger("acme")
    assert [e.action for e in entries[-2:]] == ["hold_expiry", "consumption"]
    assert entries[-2].at < entries[-1].at
    assert acme.hold_of("acme", h.id).closed_at == entries[-2].at


def test_past_balances_count_what_was_held_then(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "10")
    t0 = clock.now
    h = acme.hold("acme", "report", user_id="u", amount="4")
    clock.advance(minutes=1)
    acme.settle("acme", h.id, cost="1")
    clock.advance(minutes=1)
    assert balance(acme, t0 + timedelta(seconds=30)) == (10, 6, 4, 0)
    assert balance(acme, t0 + timedelta(minutes=1, seconds=1)) == (10, 9, 0, 1)


def test_each_hold_mutation_is_idempotent(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    h = acme.hold("acme", "report", user_id="u", amount="4", idempotency_key="h")
    assert acme.hold("acme", "report", user_id="u", amount="4", idempotency_key="h") == h
    with pytest.raises(IdempotencyConflict):
        acme.hold("acme", "report", user_id="u", amount="5", idempotency_key="h")
    c = acme.settle("acme", h.id, cost="1", idempotency_key="s")
    assert acme.settle("acme", h.id, cost="1", idempotency_key="s") == c
    with pytest.raises(IdempotencyConflict):
        acme.settle("acme", h.id, cost="2", idempotency_key="s")
    h2 = acme.hold("acme", "report", user_id="u", amount="1")
    r = acme.release("acme", h2.id, idempotency_key="r")
    assert acme.release("acme", h2.id, idempotency_key="r") == r
    assert balance(acme) == (10, 9, 0, 1)
    assert acme.verify("acme") == []


def test_holds_list_newest_first_by_status_and_paged(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    ids = [acme.hold("acme", "report", user_id="u", amount="1").id for _ in range(3)]
    acme.release("acme", ids[0])
    assert [h.id for h in acme.holds("acme")] == ids[::-1]
    assert [h.id for h in acme.holds("acme", status="open")] == ids[:0:-1]
    assert [h.id for h in acme.holds("acme", status="released")] == [ids[0]]
    page = acme.holds("acme", limit=2)
    assert [h.id for h in acme.holds("acme", before_id=page[-1].id)] == [ids[0]]
    with pytest.raises(InvalidInput):
        acme.holds("acme", status="closed")


def test_settle_without_a_cost_charges_what_the_hold_was_for(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    by_quantity = acme.hold("acme", "topic_detection", user_id="u", quantity="200")
    assert acme.settle("acme", by_quantity.id).cost == 2  # 200 items at 0.01, priced now
    by_amount = acme.hold("acme", "topic_detection", user_id="u", amount="3")
    assert acme.settle("acme", by_amount.id).cost == 3
    assert balance(acme) == (10, 5, 0, 5)
