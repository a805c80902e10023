"""Grant states at an instant: pending, active, expired, voided, or not yet created."""

from __future__ import annotations

import pytest

from creditpool.core.grants import GrantState
from tests.unit.builders import TICK, at, grant

PENDING, ACTIVE, EXPIRED, VOIDED = (
    GrantState.PENDING,
    GrantState.ACTIVE,
    GrantState.EXPIRED,
    GrantState.VOIDED,
)


def test_grant_has_no_state_before_it_was_created() -> None:
    g = grant(1, granted=10, available=20, expires=30)
    assert g.state_at(at(10) - TICK) is None
    assert g.state_at(at(0)) is None
    assert not g.is_active(at(0))


def test_grant_is_pending_from_creation_until_just_before_available_from() -> None:
    g = grant(1, granted=0, available=10, expires=20)
    assert g.state_at(at(0)) is PENDING
    assert g.state_at(at(10) - TICK) is PENDING
    assert not g.is_active(at(10) - TICK)


def test_grant_is_active_at_exactly_available_from() -> None:
    g = grant(1, granted=0, available=10, expires=20)
    assert g.state_at(at(10)) is ACTIVE
    assert g.is_active(at(10))


def test_grant_is_still_active_just_before_expires_at() -> None:
    g = grant(1, granted=0, available=10, expires=20)
    assert g.state_at(at(20) - TICK) is ACTIVE


def test_grant_is_expired_at_exactly_expires_at_and_after() -> None:
    g = grant(1, granted=0, available=10, expires=20)
    assert g.state_at(at(20)) is EXPIRED
    assert g.state_at(at(10_000)) is EXPIRED
    assert not g.is_active(at(20))


def test_permanent_grant_stays_active_forever() -> None:
    g = grant(1, granted=0)
    assert g.state_at(at(0)) is ACTIVE
    assert g.state_at(at(10**7)) is ACTIVE


def test_grant_is_voided_from_voided_at_on() -> None:
    g = grant(1, granted=0, expires=100, voided=15)
    assert g.state_at(at(15) - TICK) is ACTIVE
    assert g.state_at(at(15)) is VOIDED
    assert not g.is_active(at(15))


def test_voided_grant_stays_voided_after_its_expiry() -> None:
    g = grant(1, granted=0, expires=20, voided=15)
    assert g.state_at(at(20)) is VOIDED
    assert g.state_at(at(50)) is VOIDED


def test_grant_voided_while_pending_never_becomes_active() -> None:
    g = grant(1, granted=0, available=30, voided=5)
    assert g.state_at(at(4)) is PENDING
    assert g.state_at(at(5)) is VOIDED
    assert g.state_at(at(30)) is VOIDED


def test_starts_at_is_available_from_when_it_is_after_creation() -> None:
    g = grant(1, granted=0, available=10)
    assert g.starts_at == at(10)


def test_starts_at_is_the_creation_time_when_available_from_is_backdated() -> None:
    g = grant(1, granted=10, available=0, expires=60)
    assert g.starts_at == at(10)
    assert g.state_at(at(5)) is None  # not yet created, though "available"
    assert g.state_at(at(10)) is ACTIVE


@pytest.mark.parametrize(
    ("minute", "state"),
    [(0, PENDING), (9.99, PENDING), (10, ACTIVE), (19.99, ACTIVE), (20, EXPIRED), (25, EXPIRED)],
)
def test_grant_state_walks_pending_active_expired_over_time(
    minute: float, state: GrantState
) -> None:
    assert grant(1, granted=0, available=10, expires=20).state_at(at(minute)) is state
