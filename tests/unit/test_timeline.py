"""Availability and expiry take effect at their own instants, in time order, exactly once."""

from __future__ import annotations

from itertools import pairwise

from creditpool.core.grants import GrantRow
from creditpool.core.timeline import (
    ADDED,
    EXPIRY,
    LedgerDraft,
    catch_up,
    logged_left,
    next_event_at,
)
from tests.unit.builders import TICK, at, grant, units


def logged(g: GrantRow, *, added: bool = True, expired: bool = False) -> GrantRow:
    g.added_logged = added
    g.expiry_logged = expired
    return g


def events(drafts: list[LedgerDraft]) -> list[tuple[object, ...]]:
    return [
        (d.at, d.action, d.method, d.credits, d.total_before, d.total_after, d.grant_id)
        for d in drafts
    ]


def test_catch_up_drafts_availability_and_expiry_at_their_own_instants_in_time_order() -> None:
    expiring = grant(1, "10", remaining="4", granted=0, expires=30)
    pending = grant(2, "5", granted=0, available=20)
    later = grant(3, "7", granted=0, available=40, expires=50)
    grants = [logged(expiring), pending, later]
    drafts = catch_up(grants, at(60))
    assert events(drafts) == [
        (at(20), ADDED, "added", units("5"), units("4"), units("9"), 2),
        (at(30), EXPIRY, "expired", units("4"), units("9"), units("5"), 1),
        (at(40), ADDED, "added", units("7"), units("5"), units("12"), 3),
        (at(50), EXPIRY, "expired", units("7"), units("12"), units("5"), 3),
    ]


def test_catch_up_keeps_an_unbroken_before_after_chain_from_the_logged_left() -> None:
    grants = [
        logged(grant(1, "3", granted=0)),
        grant(2, "2", granted=0, available=5, expires=9),
        grant(3, "4", granted=1, available=7),
    ]
    start = logged_left(grants)
    drafts = catch_up(grants, at(10))
    assert drafts[0].total_before == start == units("3")
    for previous, draft in pairwise(drafts):
        assert draft.total_before == previous.total_after
    assert drafts[-1].total_after == logged_left(grants) == units("7")
    assert [d.at for d in drafts] == sorted(d.at for d in drafts)


def test_catch_up_marks_the_grants_logged() -> None:
    g = grant(1, "5", granted=0, available=5, expires=9)
    catch_up([g], at(9))
    assert (g.added_logged, g.expiry_logged) == (True, True)


def test_catch_up_is_idempotent() -> None:
    grants = [grant(1, "5", granted=0, available=5, expires=9), grant(2, "1", granted=0)]
    assert len(catch_up(grants, at(10))) == 3
    assert catch_up(grants, at(10)) == []
    assert logged_left(grants) == units("1")


def test_catch_up_includes_events_at_exactly_upto_and_nothing_after() -> None:
    now_available = grant(1, "5", granted=0, available=10)
    just_after = grant(2, "5", granted=0, available=10, expires=20)
    drafts = catch_up([now_available, just_after], at(20) - TICK)
    assert [(d.action, d.grant_id) for d in drafts] == [(ADDED, 1), (ADDED, 2)]
    assert not just_after.expiry_logged
    assert [(d.action, d.grant_id) for d in catch_up([now_available, just_after], at(20))] == [
        (EXPIRY, 2)
    ]


def test_catch_up_drafts_nothing_before_a_grant_starts() -> None:
    g = grant(1, "5", granted=0, available=10)
    assert catch_up([g], at(10) - TICK) == []
    assert not g.added_logged


def test_catch_up_stamps_availability_at_creation_when_available_from_is_backdated() -> None:
    g = grant(1, "5", granted=10, available=0, expires=60)
    drafts = catch_up([g], at(10))
    assert [d.at for d in drafts] == [at(10)]


def test_catch_up_drafts_nothing_for_a_backdated_grant_before_it_was_created() -> None:
    g = grant(1, "5", granted=10, available=0)
    assert catch_up([g], at(5)) == []
    assert not g.added_logged
    assert next_event_at([g]) == at(10)


def test_catch_up_records_an_exhausted_grant_expiring_without_a_zero_credit_entry() -> None:
    empty = logged(grant(1, "5", remaining="0", granted=0, expires=10))
    full = logged(grant(2, "3", granted=0, expires=20))
    drafts = catch_up([empty, full], at(30))
    assert [(d.grant_id, d.credits) for d in drafts] == [(2, units("3"))]
    assert empty.expiry_logged
    assert all(d.credits > 0 for d in drafts)


def test_catch_up_ignores_voided_grants() -> None:
    voided = grant(1, "5", granted=0, available=10, expires=20, voided=5)
    assert catch_up([voided], at(30)) == []
    assert not voided.added_logged


def test_catch_up_puts_availability_before_expiry_at_the_same_instant() -> None:
    expiring = logged(grant(2, "4", granted=0, expires=10))
    arriving = grant(1, "6", granted=0, available=10)
    drafts = catch_up([expiring, arriving], at(10))
    assert [(d.action, d.grant_id) for d in drafts] == [(ADDED, 1), (EXPIRY, 2)]
    assert [d.total_after for d in drafts] == [units("10"), units("6")]


def test_catch_up_orders_simultaneous_events_of_a_kind_by_grant_id() -> None:
    grants = [grant(5, "1", granted=0, available=10), grant(2, "1", granted=0, available=10)]
    assert [d.grant_id for d in catch_up(grants, at(10))] == [2, 5]


def test_catch_up_logs_a_grant_whose_whole_life_passed_unwatched() -> None:
    g = grant(1, "5", granted=0, available=10, expires=20)
    drafts = catch_up([g], at(1000))
    assert events(drafts) == [
        (at(10), ADDED, "added", units("5"), 0, units("5"), 1),
        (at(20), EXPIRY, "expired", units("5"), units("5"), 0, 1),
    ]


def test_logged_left_counts_started_unexpired_unvoided_grants() -> None:
    grants = [
        logged(grant(1, "1", granted=0)),
        logged(grant(2, "2", granted=0, expires=5), expired=True),
        logged(grant(3, "4", granted=0, voided=5)),
        grant(4, "8", granted=0, available=50),
        logged(grant(5, "16", remaining="3", granted=0)),
    ]
    assert logged_left(grants) == units("4")


def test_next_event_at_is_the_earliest_unlogged_event() -> None:
    grants = [
        logged(grant(1, "1", granted=0, expires=50)),
        grant(2, "1", granted=0, available=30, expires=40),
        logged(grant(3, "1", granted=0, expires=20), expired=True),
    ]
    assert next_event_at(grants) == at(30)
    catch_up(grants, at(30))
    assert next_event_at(grants) == at(40)
    catch_up(grants, at(45))
    assert next_event_at(grants) == at(50)


def test_next_event_at_is_none_when_nothing_is_due_ever() -> None:
    grants = [logged(grant(1, "1", granted=0)), grant(2, "1", granted=0, expires=9, voided=1)]
    assert next_event_at(grants) is None
    assert next_event_at([]) is None


def test_next_event_at_skips_voided_grants() -> None:
    grants = [
        grant(1, "1", granted=0, available=5, voided=1),
        grant(2, "1", granted=0, available=9),
    ]
    assert next_event_at(grants) == at(9)
