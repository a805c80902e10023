"""Refunds: to the most recent active grant, spill, lost parts, twice, no active grant."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditpool import (
    Allocation,
    ConsumptionStatus,
    CreditPool,
    NoActiveGrant,
    NotFound,
)
from tests.integration.dbstate import snapshot
from tests.support import FakeClock


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def _id(value: int | None) -> int:
    assert value is not None
    return value


def test_a_refund_restores_credits_to_the_most_recent_active_grant(
    acme: CreditPool, clock: FakeClock
) -> None:
    old = acme.grant("acme", "1", expires_at=clock.now + timedelta(days=1))
    clock.advance(minutes=1)
    recent = acme.grant("acme", "1")
    c = acme.consume("acme", "report", user_id="u-1")  # drawn from the expiring, older grant
    acme.consume("acme", "report", user_id="u-1")
    acme.consume("acme", "report", user_id="u-1")  # recent: 0.5 left, room 0.5
    clock.advance(minutes=1)
    r = acme.refund("acme", _id(c.id), reason="downvoted")
    assert (r.restored, r.lost) == (Decimal("0.5"), Decimal(0))
    assert r.restorations == (Allocation(grant_id=recent.id, amount=Decimal("0.5")),)
    remaining = {g.id: g.remaining for g in acme.grants("acme")}
    assert remaining == {old.id: 0, recent.id: Decimal("1")}
    refunded = acme.consumption("acme", _id(c.id))
    assert refunded.status is ConsumptionStatus.REFUNDED
    assert (refunded.refunded_at, refunded.refund_reason) == (clock.now, "downvoted")
    entry = acme.ledger("acme")[-1]
    assert (entry.action, entry.method, entry.credits, entry.consumption_id) == (
        "refund",
        "refunded",
        Decimal("0.5"),
        c.id,
    )
    assert acme.verify() == []


def test_a_refund_fills_the_most_recent_grant_then_spills_into_the_next(
    acme: CreditPool,
) -> None:
    older = acme.grant("acme", "1")
    newer = acme.grant("acme", "0.3")
    acme.set_feature("report", cost="1.2")
    c = acme.consume("acme", "report", user_id="u-1")  # both permanent: older (lower id) first
    assert c.allocations == (
        Allocation(grant_id=older.id, amount=Decimal("1")),
        Allocation(grant_id=newer.id, amount=Decimal("0.2")),
    )
    r = acme.refund("acme", _id(c.id))
    assert r.restorations == (
        Allocation(grant_id=newer.id, amount=Decimal("0.2")),
        Allocation(grant_id=older.id, amount=Decimal("1")),
    )
    assert [g.remaining for g in acme.grants("acme")] == [Decimal("1"), Decimal("0.3")]
    assert acme.refund("acme", _id(c.id)) == r  # a second refund: the first result, as it was
    assert acme.verify() == []


def test_the_part_drawn_from_an_expired_grant_is_lost(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "0.2", expires_at=clock.now + timedelta(days=1))
    keep = acme.grant("acme", "5")
    c = acme.consume("acme", "report", user_id="u-1")  # 0.2 expiring + 0.3 permanent
    clock.advance(days=1)
    r = acme.refund("acme", _id(c.id))
    assert (r.restored, r.lost) == (Decimal("0.3"), Decimal("0.2"))
    assert r.restorations == (Allocation(grant_id=keep.id, amount=Decimal("0.3")),)
    assert acme.balance("acme").left == Decimal("5")
    assert acme.verify() == []


def test_the_part_drawn_from_a_voided_grant_is_lost(acme: CreditPool) -> None:
    a = acme.grant("acme", "10")
    c = acme.consume("acme", "report", user_id="u-1")
    acme.void_grant("acme", a.id)
    acme.grant("acme", "1")
    r = acme.refund("acme", _id(c.id))
    assert (r.restored, r.lost, r.restorations) == (Decimal(0), Decimal("0.5"), ())
    assert acme.balance("acme").left == Decimal("1")
    assert acme.verify() == []


def test_a_refund_with_no_active_grant_is_refused_and_changes_nothing(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "1", expires_at=clock.now + timedelta(days=1))
    c = acme.consume("acme", "report", user_id="u-1")
    clock.advance(days=2)
    acme.sweep()
    state = snapshot(acme, "acme")
    with pytest.raises(NoActiveGrant) as refused:
        acme.refund("acme", _id(c.id), idempotency_key="r-1")
    assert refused.value.status == 409
    assert snapshot(acme, "acme") == state
    assert acme.consumption("acme", _id(c.id)).status is ConsumptionStatus.PAID


def test_a_second_refund_returns_the_first_result_and_changes_nothing(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "10")
    c = acme.consume("acme", "report", user_id="u-1")
    first = acme.refund("acme", _id(c.id), reason="downvoted")
    state = snapshot(acme, "acme")
    clock.advance(hours=1)
    again = acme.refund("acme", _id(c.id), reason="other reason")
    assert again == first
    assert snapshot(acme, "acme") == state


def test_refunding_an_unknown_consumption_is_not_found(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    with pytest.raises(NotFound):
        acme.refund("acme", 4242)


def test_refunded_consumptions_are_not_counted_in_team_usage(acme: CreditPool) -> None:
    acme.create_team("acme", "sales", monthly_limit="0.5")
    acme.set_member("acme", "u-1", team_id="sales")
    acme.grant("acme", "10")
    kept = acme.consume("acme", "report", user_id="u-1")
    undone = acme.consume("acme", "action_plan", user_id="u-1")
    assert acme.team_usage("acme")[0].over_limit
    acme.refund("acme", _id(undone.id))
    (sales,) = acme.team_usage("acme")
    assert (sales.used, sales.consumptions, sales.over_limit) == (Decimal("0.5"), 1, False)
    assert [c.id for c in acme.consumptions("acme", status="paid")] == [kept.id]
    assert [c.id for c in acme.consumptions("acme", status="refunded")] == [undone.id]
    assert acme.balance("acme").used == Decimal("0.5")
