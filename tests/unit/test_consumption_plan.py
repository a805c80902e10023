"""The consumption plan: which active grants pay a cost, in which order, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from creditpool.core.errors import InsufficientCredits
from creditpool.core.grants import GrantRow, apply_draws, left_at, plan_consumption
from creditpool.core.invariant import InvariantBroken
from tests.unit.builders import at, grant, snapshot, units

NOW = at(100)


def plan_ids(grants: list[GrantRow], cost: str) -> list[int]:
    return [gid for gid, _ in plan_consumption(grants, units(cost), NOW)]


def test_expiring_grants_are_drawn_before_permanent_ones() -> None:
    permanent = grant(1, "10", granted=0)
    expiring = grant(2, "10", granted=50, expires=500)
    assert plan_ids([permanent, expiring], "1") == [2]


def test_the_soonest_expiring_grant_is_drawn_first() -> None:
    late = grant(1, "10", granted=0, expires=900)
    soon = grant(2, "10", granted=50, expires=200)
    later = grant(3, "10", granted=10, expires=400)
    assert plan_ids([late, soon, later], "25") == [2, 3, 1]


def test_expiry_ties_are_broken_by_available_from() -> None:
    later_start = grant(1, "10", granted=0, available=20, expires=300)
    earlier_start = grant(2, "10", granted=0, available=10, expires=300)
    assert plan_ids([later_start, earlier_start], "1") == [2]


def test_expiry_and_start_ties_are_broken_by_granted_at() -> None:
    later_created = grant(1, "10", granted=5, available=30, expires=300)
    earlier_created = grant(2, "10", granted=3, available=30, expires=300)
    assert plan_ids([later_created, earlier_created], "1") == [2]


def test_full_ties_are_broken_by_id() -> None:
    a = grant(7, "10", granted=0, expires=300)
    b = grant(3, "10", granted=0, expires=300)
    assert plan_ids([a, b], "1") == [3]


def test_permanent_grants_are_ordered_by_available_from_then_granted_at_then_id() -> None:
    g1 = grant(1, "10", granted=2, available=40)
    g2 = grant(2, "10", granted=1, available=40)
    g3 = grant(3, "10", granted=0, available=50)
    g4 = grant(4, "10", granted=1, available=40)
    assert plan_ids([g1, g2, g3, g4], "40") == [2, 4, 1, 3]


def test_one_consumption_spans_several_grants_taking_each_only_what_is_due() -> None:
    a = grant(1, "5", remaining="3", granted=0, expires=200)
    b = grant(2, "4", granted=0, expires=300)
    c = grant(3, "5", granted=0)
    plan = plan_consumption([c, b, a], units("9"), NOW)
    assert plan == [(1, units("3")), (2, units("4")), (3, units("2"))]


def test_pending_expired_voided_and_uncreated_grants_are_never_drawn() -> None:
    pending = grant(1, "10", granted=0, available=101, expires=150)
    expired = grant(2, "10", granted=0, expires=100)
    voided = grant(3, "10", granted=0, expires=120, voided=100)
    uncreated = grant(4, "10", granted=101, expires=110)
    active = grant(5, "10", granted=0)
    plan = plan_consumption([pending, expired, voided, uncreated, active], units("10"), NOW)
    assert plan == [(5, units("10"))]


def test_exhausted_grants_get_no_allocation_row() -> None:
    empty = grant(1, "10", remaining="0", granted=0, expires=150)
    full = grant(2, "10", granted=0)
    assert plan_consumption([empty, full], units("1"), NOW) == [(2, units("1"))]


def test_a_grant_becomes_drawable_at_exactly_available_from() -> None:
    g = grant(1, "10", granted=0, available=100)
    assert plan_consumption([g], units("1"), NOW) == [(1, units("1"))]


def test_a_grant_is_not_drawable_at_exactly_expires_at() -> None:
    expiring = grant(1, "10", granted=0, expires=100)
    permanent = grant(2, "10", granted=0)
    assert plan_consumption([expiring, permanent], units("1"), NOW) == [(2, units("1"))]


def test_consumption_is_refused_when_left_is_below_cost_with_left_and_required() -> None:
    active = grant(1, "5", remaining="2.5", granted=0)
    pending = grant(2, "100", granted=0, available=200)  # upcoming credits do not count
    with pytest.raises(InsufficientCredits) as caught:
        plan_consumption([active, pending], units("2.5001"), NOW)
    error = caught.value
    assert error.extra == {"left": Decimal("2.5"), "required": Decimal("2.5001")}
    assert error.code == "insufficient_credits"
    assert error.status == 402


def test_refused_consumption_changes_nothing() -> None:
    grants = [grant(1, "5", granted=0, expires=500), grant(2, "3", granted=0)]
    before = snapshot(grants)
    with pytest.raises(InsufficientCredits):
        plan_consumption(grants, units("8.0001"), NOW)
    assert snapshot(grants) == before


def test_consumption_with_no_active_grant_is_refused_with_zero_left() -> None:
    with pytest.raises(InsufficientCredits) as caught:
        plan_consumption([grant(1, "5", granted=0, expires=50)], units("1"), NOW)
    assert caught.value.extra["left"] == Decimal(0)


def test_consumption_of_exactly_left_succeeds_and_leaves_zero() -> None:
    grants = [grant(1, "5", granted=0, expires=500), grant(2, "3", granted=0)]
    plan = plan_consumption(grants, units("8"), NOW)
    assert plan == [(1, units("5")), (2, units("3"))]
    apply_draws({g.id: g for g in grants}, plan, -1)
    assert left_at(grants, NOW) == 0
    assert [g.remaining for g in grants] == [0, 0]


def test_planning_a_consumption_does_not_touch_the_grants() -> None:
    grants = [grant(1, "5", granted=0, expires=500), grant(2, "3", granted=0)]
    before = snapshot(grants)
    plan_consumption(grants, units("6"), NOW)
    assert snapshot(grants) == before


@pytest.mark.parametrize("cost", [0, -1])
def test_a_consumption_costing_nothing_is_a_programming_error(cost: int) -> None:
    with pytest.raises(InvariantBroken):
        plan_consumption([grant(1, "5", granted=0)], cost, NOW)


def test_apply_draws_takes_and_restores_credits() -> None:
    grants = {1: grant(1, "5", granted=0), 2: grant(2, "5", granted=0)}
    apply_draws(grants, [(1, units("5")), (2, units("1"))], -1)
    assert (grants[1].remaining, grants[2].remaining) == (0, units("4"))
    apply_draws(grants, [(2, units("1"))], +1)
    assert grants[2].remaining == units("5")


def test_apply_draws_refuses_to_make_a_grant_negative() -> None:
    grants = {1: grant(1, "5", remaining="1", granted=0)}
    with pytest.raises(InvariantBroken, match="out of bounds"):
        apply_draws(grants, [(1, units("1.0001"))], -1)


def test_apply_draws_refuses_to_lift_a_grant_above_its_amount() -> None:
    grants = {1: grant(1, "5", remaining="4", granted=0)}
    with pytest.raises(InvariantBroken, match="out of bounds"):
        apply_draws(grants, [(1, units("1.0001"))], +1)


def test_left_at_sums_only_active_grants() -> None:
    grants = [
        grant(1, "5", remaining="2", granted=0),
        grant(2, "7", granted=0, available=200),
        grant(3, "11", granted=0, expires=100),
        grant(4, "13", granted=0, voided=50),
        grant(5, "17", remaining="1", granted=0, expires=101),
    ]
    assert left_at(grants, NOW) == units("3")


def test_expiry_order_compares_instants_not_wall_clock_readings() -> None:
    # 10:00 at +02:00 is 08:00 UTC: it expires before 09:00 UTC.
    plus_two = timezone(timedelta(hours=2))
    expires_at_eight_utc = grant(1, "10", granted=0)
    expires_at_eight_utc.expires_at = datetime(2026, 1, 2, 10, 0, tzinfo=plus_two)
    expires_at_nine_utc = grant(2, "10", granted=0)
    expires_at_nine_utc.expires_at = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    plan = plan_consumption([expires_at_nine_utc, expires_at_eight_utc], units("1"), NOW)
    assert plan == [(1, units("1"))]
