"""Hold, settle and release plans, and a hold's end at its exact instant: each rule, on its
failure side too."""

from __future__ import annotations

import pytest

from creditpool.core.balance import summarize
from creditpool.core.errors import InsufficientCredits
from creditpool.core.grants import GrantRow, apply_draws, left_at
from creditpool.core.holds import (
    HoldRow,
    HoldState,
    apply_hold,
    apply_release,
    close,
    plan_hold,
    plan_release,
    plan_settle,
)
from creditpool.core.invariant import InvariantBroken
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.timeline import catch_up, next_event_at
from tests.unit.builders import at, grant, units

NOW = at(100)


def held(grants: list[GrantRow], amount: str, hid: int = 1, ttl: float = 15) -> HoldRow:
    """Hold ``amount`` on these logged grants at NOW; the working copies change."""
    by_id = {g.id: g for g in grants}
    draws = plan_hold(grants, units(amount), NOW)
    apply_hold(by_id, draws)
    return HoldRow(hid, units(amount), at(100 + ttl), draws)


def logged(*grants: GrantRow) -> list[GrantRow]:
    for g in grants:
        g.added_logged = True
    return list(grants)


def test_a_hold_draws_in_consumption_order_and_may_span_grants() -> None:
    soon, late = grant(1, "10", expires=300), grant(2, "10", expires=900)
    grants = logged(late, soon)
    h = held(grants, "15")
    assert h.allocations == [(1, units("10")), (2, units("5"))]
    assert (soon.remaining, soon.held, late.remaining, late.held) == (
        0,
        units("10"),
        units("5"),
        units("5"),
    )
    b = summarize(grants, NOW)
    assert (b.total, b.left, b.held, b.used) == (units("20"), units("5"), units("15"), 0)


def test_a_hold_above_left_is_refused_and_changes_nothing() -> None:
    g = grant(1, "10")
    grants = logged(g)
    held(grants, "4")
    with pytest.raises(InsufficientCredits):
        plan_hold(grants, units("6.0001"), NOW)
    assert (g.remaining, g.held) == (units("6"), units("4"))


def test_held_credits_cannot_be_consumed_by_others() -> None:
    grants = logged(grant(1, "10"))
    held(grants, "10")
    with pytest.raises(InsufficientCredits):
        plan_hold(grants, units("0.0001"), NOW)
    assert left_at(grants, NOW) == 0


def test_settle_below_the_hold_draws_in_consumption_order_and_gives_the_rest_back() -> None:
    soon, late = grant(1, "10", expires=300), grant(2, "10", expires=900)
    grants = logged(soon, late)
    h = held(grants, "15")
    by_id = {g.id: g for g in grants}
    plan = plan_settle(h, by_id, units("12"), NOW)
    assert plan.draws == [(1, units("10")), (2, units("2"))]
    assert (plan.extra, plan.given_back, plan.release.lost) == (0, units("3"), 0)
    apply_release(h, by_id, plan.release)
    apply_draws(by_id, plan.draws, -1)
    assert (soon.remaining, soon.held, late.remaining, late.held) == (0, 0, units("8"), 0)


def test_settle_above_the_hold_charges_the_difference_from_other_credits() -> None:
    a, b = grant(1, "10", expires=300), grant(2, "10")
    grants = logged(a, b)
    h = held(grants, "6")  # all on grant 1
    by_id = {g.id: g for g in grants}
    plan = plan_settle(h, by_id, units("13"), NOW)
    assert plan.extra == units("7")
    # the hold's 6 and the other 4 of grant 1 first, then 3 from grant 2
    assert plan.draws == [(1, units("10")), (2, units("3"))]
    apply_release(h, by_id, plan.release)
    apply_draws(by_id, plan.draws, -1)
    assert (a.remaining, a.held, b.remaining) == (0, 0, units("7"))


def test_settle_above_the_hold_without_enough_other_credits_is_refused() -> None:
    g = grant(1, "10")
    grants = logged(g)
    h = held(grants, "6")
    with pytest.raises(InsufficientCredits) as refused:
        plan_settle(h, {1: g}, units("10.0001"), NOW)
    assert refused.value.extra["held"] == units("6") / 10_000
    assert (g.remaining, g.held, h.status) == (units("4"), units("6"), HoldState.OPEN)
    assert plan_settle(h, {1: g}, units("10"), NOW).extra == units("4")  # exactly enough


def test_what_was_held_on_an_expired_or_voided_grant_is_lost() -> None:
    expiring, voided, kept = grant(1, "5", expires=110), grant(2, "5", expires=120), grant(3, "5")
    grants = logged(expiring, voided, kept)
    h = held(grants, "12")
    later = at(130)
    voided.voided_at = at(115)
    by_id = {g.id: g for g in grants}
    release = plan_release(h, by_id, later)
    assert (release.returned, release.lost) == ([(3, units("2"))], units("10"))
    settle = plan_settle(h, by_id, units("1"), later)
    assert (settle.draws, settle.release.lost) == ([(3, units("1"))], units("10"))
    assert settle.given_back == units("1")


def test_release_twice_and_settle_after_release_are_refused() -> None:
    grants = logged(grant(1, "10"))
    h = held(grants, "5")
    by_id = {g.id: g for g in grants}
    release = plan_release(h, by_id, NOW)
    apply_release(h, by_id, release)
    close(h, HoldState.RELEASED, NOW, release, release.released)
    assert (h.status, h.released, h.returned) == (HoldState.RELEASED, units("5"), [(1, units("5"))])
    with pytest.raises(InvariantBroken):
        plan_release(h, by_id, NOW)
    with pytest.raises(InvariantBroken):
        plan_settle(h, by_id, units("1"), NOW)


def test_a_grant_never_holds_more_than_its_amount() -> None:
    g = grant(1, "10")
    with pytest.raises(InvariantBroken):
        apply_hold({1: g}, [(1, units("10.0001"))])


def test_a_hold_ends_at_its_exact_instant_with_its_own_entry() -> None:
    g = grant(1, "10")
    grants = logged(g)
    h = held(grants, "4", ttl=15)  # ends at 115
    assert next_event_at(grants, [h]) == at(115)
    assert catch_up(grants, at(114.99), [h]) == []
    assert h.status is HoldState.OPEN
    [entry] = catch_up(grants, at(115), [h])
    assert (entry.at, entry.action, entry.method, entry.hold_id) == (
        at(115),
        LedgerAction.HOLD_EXPIRY,
        LedgerMethod.RELEASED,
        1,
    )
    assert (entry.total_before, entry.total_after) == (units("6"), units("10"))
    assert (h.status, h.closed_at, h.released, g.held, g.remaining) == (
        HoldState.EXPIRED,
        at(115),
        units("4"),
        0,
        units("10"),
    )
    assert next_event_at(grants, [h]) is None


def test_a_grant_expiring_with_the_hold_is_gone_first_and_its_part_is_lost() -> None:
    expiring, kept = grant(1, "6", expires=115), grant(2, "5")
    grants = logged(expiring, kept)
    h = held(grants, "8", ttl=15)  # 6 on grant 1, 2 on grant 2; the grant and hold end at 115
    expiring.remaining, expiring.held = units("1"), units("5")  # as if 1 had been released
    h.allocations = [(1, units("5")), (2, units("2"))]
    h.amount = units("7")
    drafts = catch_up(grants, at(115), [h])
    assert [d.action for d in drafts] == [LedgerAction.EXPIRY, LedgerAction.HOLD_EXPIRY]
    assert [d.credits for d in drafts] == [units("1"), units("2")]
    assert (h.released, h.lost, expiring.held) == (units("2"), units("5"), 0)


def test_a_hold_whose_credits_were_all_lost_ends_without_an_entry() -> None:
    expiring = grant(1, "5", expires=110)
    grants = logged(expiring)
    h = held(grants, "5", ttl=15)
    drafts = catch_up(grants, at(120), [h])
    assert [d.action for d in drafts] == []  # the grant had nothing left: no expiry entry
    assert (h.status, h.released, h.lost) == (HoldState.EXPIRED, 0, units("5"))
