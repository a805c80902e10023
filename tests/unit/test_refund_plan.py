"""The refund plan: restore to the most recent active grants, lose what came from dead ones."""

from __future__ import annotations

import pytest

from creditpool.core.errors import NoActiveGrant
from creditpool.core.grants import GrantRow, RefundPlan, apply_draws, plan_refund
from tests.unit.builders import at, grant, snapshot, units

NOW = at(100)


def by_id(*grants: GrantRow) -> dict[int, GrantRow]:
    return {g.id: g for g in grants}


def test_refund_restores_credits_to_the_most_recent_active_grant() -> None:
    source = grant(1, "10", remaining="6", granted=0, expires=500)
    recent = grant(2, "10", remaining="5", granted=50)
    plan = plan_refund([(1, units("4"))], by_id(source, recent), NOW)
    assert plan == RefundPlan(restored=units("4"), lost=0, restorations=[(2, units("4"))])


def test_refund_breaks_granted_at_ties_by_the_higher_id() -> None:
    a = grant(3, "10", remaining="5", granted=50)
    b = grant(4, "10", remaining="5", granted=50)
    plan = plan_refund([(3, units("1"))], by_id(a, b), NOW)
    assert plan.restorations == [(4, units("1"))]


def test_refund_orders_by_granted_at_not_by_availability_or_expiry() -> None:
    created_late_available_early = grant(1, "10", remaining="5", granted=60, available=60)
    created_early_available_late = grant(2, "10", remaining="5", granted=10, available=90)
    plan = plan_refund(
        [(1, units("1"))], by_id(created_late_available_early, created_early_available_late), NOW
    )
    assert plan.restorations == [(1, units("1"))]


def test_refund_fills_the_most_recent_grant_then_spills_into_the_next() -> None:
    oldest = grant(1, "10", remaining="2", granted=0, expires=500)
    middle = grant(2, "10", remaining="7", granted=10)
    newest = grant(3, "10", remaining="9", granted=20)
    grants = by_id(oldest, middle, newest)
    plan = plan_refund([(1, units("8"))], grants, NOW)
    assert plan.restorations == [(3, units("1")), (2, units("3")), (1, units("4"))]
    assert (plan.restored, plan.lost) == (units("8"), 0)
    apply_draws(grants, plan.restorations, +1)
    assert [g.remaining for g in grants.values()] == [units("6"), units("10"), units("10")]


def test_refund_skips_a_full_most_recent_grant() -> None:
    older = grant(1, "10", remaining="5", granted=0)
    newest_full = grant(2, "10", granted=20)
    plan = plan_refund([(1, units("5"))], by_id(older, newest_full), NOW)
    assert plan.restorations == [(1, units("5"))]


def test_refund_loses_what_was_drawn_from_a_grant_that_has_since_expired() -> None:
    expired = grant(1, "10", remaining="0", granted=0, expires=90)
    active = grant(2, "10", remaining="7", granted=0)
    plan = plan_refund([(1, units("4")), (2, units("3"))], by_id(expired, active), NOW)
    assert plan == RefundPlan(restored=units("3"), lost=units("4"), restorations=[(2, units("3"))])


def test_refund_loses_the_part_drawn_from_a_grant_expiring_at_exactly_now() -> None:
    expiring_now = grant(1, "10", remaining="6", granted=0, expires=100)
    active = grant(2, "10", remaining="10", granted=0)
    plan = plan_refund([(1, units("4"))], by_id(expiring_now, active), NOW)
    assert (plan.restored, plan.lost) == (0, units("4"))
    assert plan.restorations == []


def test_refund_loses_what_was_drawn_from_a_voided_grant() -> None:
    voided = grant(1, "10", remaining="6", granted=0, voided=80)
    active = grant(2, "10", remaining="8", granted=0)
    plan = plan_refund([(1, units("4")), (2, units("2"))], by_id(voided, active), NOW)
    assert plan == RefundPlan(restored=units("2"), lost=units("4"), restorations=[(2, units("2"))])


def test_refund_loses_what_was_drawn_from_a_grant_no_longer_loaded() -> None:
    # The writer drops grants logged as expired or voided from its live set.
    active = grant(2, "10", remaining="8", granted=0)
    plan = plan_refund([(1, units("4")), (2, units("2"))], by_id(active), NOW)
    assert (plan.restored, plan.lost) == (units("2"), units("4"))


def test_refund_never_restores_into_a_more_recent_expired_or_voided_grant() -> None:
    source = grant(1, "10", remaining="5", granted=0)
    recent_expired = grant(2, "10", remaining="0", granted=40, expires=90)
    recent_voided = grant(3, "10", remaining="0", granted=50, voided=95)
    plan = plan_refund([(1, units("5"))], by_id(source, recent_expired, recent_voided), NOW)
    assert plan.restorations == [(1, units("5"))]


def test_refund_never_restores_into_a_pending_grant() -> None:
    source = grant(1, "10", remaining="5", granted=0)
    pending_with_room = grant(2, "10", remaining="0", granted=50, available=200)
    plan = plan_refund([(1, units("5"))], by_id(source, pending_with_room), NOW)
    assert plan.restorations == [(1, units("5"))]


def test_refund_is_refused_when_no_grant_is_active() -> None:
    grants = by_id(
        grant(1, "10", remaining="6", granted=0, expires=100),
        grant(2, "10", granted=0, voided=50),
        grant(3, "10", granted=0, available=101),
    )
    before = snapshot(list(grants.values()))
    with pytest.raises(NoActiveGrant) as caught:
        plan_refund([(1, units("4"))], grants, NOW)
    assert caught.value.code == "no_active_grant"
    assert caught.value.status == 409
    assert snapshot(list(grants.values())) == before


def test_refund_is_refused_with_no_grants_at_all() -> None:
    with pytest.raises(NoActiveGrant):
        plan_refund([(1, units("4"))], {}, NOW)


def test_refund_of_a_consumption_drawn_only_from_dead_grants_restores_nothing() -> None:
    expired = grant(1, "10", remaining="0", granted=0, expires=50)
    active = grant(2, "10", remaining="3", granted=0)
    plan = plan_refund([(1, units("10"))], by_id(expired, active), NOW)
    assert plan == RefundPlan(restored=0, lost=units("10"), restorations=[])


def test_refund_reports_as_lost_what_the_active_grants_have_no_room_for() -> None:
    # Grant 1 (expiring) paid consumption A; consumption B was paid by grant 2. Refunding A
    # refilled grant 2 (most recent); grant 1 then expired empty. B is refundable (drawn from
    # grant 2, still active) but grant 2 is full again: no room, the excess is lost.
    full_again = grant(2, "5", remaining="4", granted=10)
    plan = plan_refund([(2, units("3"))], by_id(full_again), NOW)
    assert plan == RefundPlan(restored=units("1"), lost=units("2"), restorations=[(2, units("1"))])
    apply_draws(by_id(full_again), plan.restorations, +1)
    assert full_again.remaining == full_again.amount


def test_refund_never_lifts_any_grant_above_its_amount() -> None:
    grants = by_id(
        grant(1, "4", remaining="3", granted=0),
        grant(2, "6", remaining="6", granted=5),
        grant(3, "2", remaining="0", granted=9),
    )
    plan = plan_refund([(1, units("20"))], grants, NOW)
    assert plan.restored == units("3")
    assert plan.lost == units("17")
    apply_draws(grants, plan.restorations, +1)  # would raise past the amount
    assert all(g.remaining == g.amount for g in grants.values())


def test_restored_plus_lost_is_what_the_consumption_drew() -> None:
    grants = by_id(
        grant(1, "10", remaining="0", granted=0, expires=90),
        grant(2, "10", remaining="1", granted=0, expires=300),
        grant(3, "10", remaining="9", granted=0),
    )
    drawn = [(1, units("10")), (2, units("9")), (3, units("1"))]
    plan = plan_refund(drawn, grants, NOW)
    assert plan.restored + plan.lost == units("20")
    assert plan.restored == units("10")
    assert sum(a for _, a in plan.restorations) == plan.restored


def test_planning_a_refund_does_not_touch_the_grants() -> None:
    grants = by_id(
        grant(1, "10", remaining="2", granted=0), grant(2, "10", remaining="3", granted=9)
    )
    before = snapshot(list(grants.values()))
    plan_refund([(1, units("8"))], grants, NOW)
    assert snapshot(list(grants.values())) == before
