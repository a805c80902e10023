"""Balance at an instant: Total, Left, Used, upcoming, over grants in every state."""

from __future__ import annotations

from creditpool.core.balance import BalanceUnits, summarize
from creditpool.core.grants import GrantRow
from tests.unit.builders import at, grant, units


def mixed() -> list[GrantRow]:
    return [
        grant(1, "10", remaining="4", granted=0, expires=200),  # active, expiring
        grant(2, "20", granted=0),  # active, permanent
        grant(3, "5", granted=0, available=150),  # pending
        grant(4, "7", remaining="3", granted=0, expires=90),  # expired
        grant(5, "8", granted=0, voided=50),  # voided
    ]


def test_balance_counts_only_active_grants_and_shows_pending_as_upcoming() -> None:
    b = summarize(mixed(), at(100))
    assert b == BalanceUnits(total=units("30"), left=units("24"), held=0, upcoming=units("5"))
    assert b.used == units("6")


def test_balance_follows_the_states_as_time_moves() -> None:
    grants = mixed()
    before_expiry = summarize(grants, at(89))
    assert (before_expiry.total, before_expiry.left) == (units("37"), units("27"))
    pending_arrived = summarize(grants, at(150))
    assert (pending_arrived.total, pending_arrived.left, pending_arrived.upcoming) == (
        units("35"),
        units("29"),
        0,
    )
    after_expiry = summarize(grants, at(200))
    assert (after_expiry.total, after_expiry.left, after_expiry.used) == (
        units("25"),
        units("25"),
        0,
    )


def test_balance_before_any_grant_existed_is_zero_and_has_nothing_upcoming() -> None:
    grants = [grant(1, "10", granted=10, available=20)]
    assert summarize(grants, at(5)) == BalanceUnits(0, 0, 0, 0)
    assert summarize(grants, at(10)).upcoming == units("10")


def test_balance_counts_a_grant_at_exactly_available_from_and_not_at_exactly_expires_at() -> None:
    grants = [grant(1, "3", granted=0, available=10), grant(2, "4", granted=0, expires=10)]
    b = summarize(grants, at(10))
    assert (b.total, b.left, b.upcoming) == (units("3"), units("3"), 0)


def test_balance_at_a_past_instant_takes_left_from_the_ledger() -> None:
    b = summarize(mixed(), at(60), left=units("33"))
    assert b.left == units("33")
    assert b.total == units("37")  # grants 1, 2 and 4 were active at minute 60
    assert b.used == units("4")


def test_held_credits_are_neither_left_nor_used() -> None:
    grants = [grant(1, "10", remaining="6", granted=0)]
    b = summarize(grants, at(5), held=units("1"))
    assert (b.total, b.left, b.held, b.used) == (units("10"), units("6"), units("1"), units("3"))
