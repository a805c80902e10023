"""Grants: states, validation, voiding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from creditpool import (
    CreditPool,
    GrantState,
    GrantVoided,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    NotFound,
    PoolLimitExceeded,
)
from creditpool.core.money import MAX_CREDITS, MAX_POOL_CREDITS
from tests.integration.dbstate import snapshot
from tests.support import FakeClock

ZERO = Decimal(0)


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def test_a_grant_stores_what_it_was_given(acme: CreditPool, clock: FakeClock) -> None:
    expires = clock.now + timedelta(days=30)
    g = acme.grant(
        "acme",
        "100.1234",
        expires_at=expires,
        granted_by="cs@vendor",
        note="welcome",
        reference="INV-1",
    )
    assert g == acme.grant_info("acme", g.id)
    assert g.amount == g.remaining == Decimal("100.1234")
    assert (g.granted_at, g.available_from, g.expires_at) == (clock.now, clock.now, expires)
    assert (g.granted_by, g.note, g.reference) == ("cs@vendor", "welcome", "INV-1")
    assert g.state is GrantState.ACTIVE


def test_a_grant_goes_from_pending_to_active_to_expired(acme: CreditPool, clock: FakeClock) -> None:
    start = clock.now + timedelta(days=1)
    g = acme.grant("acme", "10", available_from=start, expires_at=start + timedelta(days=1))
    assert g.state is GrantState.PENDING
    balance = acme.balance("acme")
    assert (balance.total, balance.left, balance.upcoming) == (ZERO, ZERO, Decimal("10"))
    clock.set(start - timedelta(microseconds=1))
    assert acme.grant_info("acme", g.id).state is GrantState.PENDING
    clock.set(start)
    assert acme.grant_info("acme", g.id).state is GrantState.ACTIVE
    balance = acme.balance("acme")
    assert (balance.total, balance.left, balance.upcoming) == (Decimal("10"), Decimal("10"), ZERO)
    clock.set(start + timedelta(days=1))
    assert acme.grant_info("acme", g.id).state is GrantState.EXPIRED
    balance = acme.balance("acme")
    assert (balance.total, balance.left, balance.upcoming) == (ZERO, ZERO, ZERO)


def test_a_pending_grant_cannot_be_consumed_before_it_starts(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "10", available_from=clock.now + timedelta(hours=1))
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "report", user_id="u-1")
    clock.advance(hours=1)
    assert acme.consume("acme", "report", user_id="u-1").cost == Decimal("0.5")


@pytest.mark.parametrize(
    ("available_days", "expires_days"),
    [(None, 0), (None, -1), (2, 2), (2, 1)],
)
def test_expires_at_must_be_in_the_future_and_after_available_from(
    acme: CreditPool, clock: FakeClock, available_days: int | None, expires_days: int
) -> None:
    available = None if available_days is None else clock.now + timedelta(days=available_days)
    with pytest.raises(InvalidInput):
        acme.grant(
            "acme",
            "10",
            available_from=available,
            expires_at=clock.now + timedelta(days=expires_days),
        )
    assert acme.grants("acme") == []


@pytest.mark.parametrize("amount", ["0", "-1", "1.00001", "NaN", "Infinity", "1e13", 1.5, ""])
def test_a_bad_amount_is_refused_and_nothing_is_granted(acme: CreditPool, amount: object) -> None:
    with pytest.raises(InvalidAmount):
        acme.grant("acme", amount)  # type: ignore[arg-type]
    assert acme.grants("acme") == []
    assert acme.ledger("acme") == []


def test_a_naive_expiry_is_refused(acme: CreditPool) -> None:
    with pytest.raises(InvalidInput):
        acme.grant("acme", "1", expires_at=datetime(2030, 1, 1))


def test_a_grant_to_an_unknown_org_is_not_found(pool: CreditPool) -> None:
    with pytest.raises(NotFound):
        pool.grant("nobody", "1")


def test_voiding_an_active_grant_removes_its_remaining_with_a_voided_entry(
    acme: CreditPool, clock: FakeClock
) -> None:
    keep = acme.grant("acme", "5")
    g = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=1))
    acme.consume("acme", "report", user_id="u-1")  # drawn from the expiring grant
    clock.advance(minutes=5)
    voided = acme.void_grant("acme", g.id, by="cs@vendor", reason="duplicate")
    assert voided.state is GrantState.VOIDED
    assert (voided.voided_at, voided.voided_by, voided.void_reason) == (
        clock.now,
        "cs@vendor",
        "duplicate",
    )
    assert voided.remaining == 0
    last = acme.ledger("acme")[-1]
    assert (last.action, last.method, last.credits) == ("void", "voided", Decimal("9.5"))
    assert (last.total_before, last.total_after) == (Decimal("14.5"), Decimal("5"))
    assert (last.at, last.grant_id) == (clock.now, g.id)
    balance = acme.balance("acme")
    assert (balance.total, balance.left) == (Decimal("5"), Decimal("5"))
    assert acme.grant_info("acme", keep.id).state is GrantState.ACTIVE
    assert acme.verify() == []


def test_voiding_a_pending_grant_writes_no_ledger_entry(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "3")
    g = acme.grant("acme", "10", available_from=clock.now + timedelta(days=1))
    entries = acme.ledger("acme")
    voided = acme.void_grant("acme", g.id)
    assert voided.state is GrantState.VOIDED
    assert acme.ledger("acme") == entries
    assert acme.balance("acme").upcoming == 0
    clock.advance(days=2)  # the voided grant never becomes available
    assert acme.ledger("acme") == entries
    assert acme.balance("acme").left == Decimal("3")
    assert acme.verify() == []


def test_voiding_twice_raises_grant_voided_and_changes_nothing(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    acme.void_grant("acme", g.id)
    state = snapshot(acme, "acme")
    with pytest.raises(GrantVoided):
        acme.void_grant("acme", g.id)
    assert snapshot(acme, "acme") == state


def test_voiding_an_unknown_grant_is_not_found(acme: CreditPool) -> None:
    with pytest.raises(NotFound):
        acme.void_grant("acme", 999)
    with pytest.raises(InvalidInput):
        acme.void_grant("acme", 0)


def test_a_voided_grant_is_not_drawn_from(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    acme.void_grant("acme", g.id)
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "report", user_id="u-1")


def test_grants_of_one_org_are_invisible_to_another(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_org("globex")
    g = pool.grant("acme", "10")
    assert pool.grants("globex") == []
    with pytest.raises(NotFound):
        pool.grant_info("globex", g.id)
    with pytest.raises(NotFound):
        pool.void_grant("globex", g.id)
    assert pool.balance("globex").total == 0


def test_grants_lists_every_state_in_id_order(acme: CreditPool, clock: FakeClock) -> None:
    active = acme.grant("acme", "1")
    expiring = acme.grant("acme", "2", expires_at=clock.now + timedelta(hours=1))
    pending = acme.grant("acme", "3", available_from=clock.now + timedelta(days=3))
    voided = acme.void_grant("acme", acme.grant("acme", "4").id)
    clock.advance(hours=2)
    states = [(g.id, g.state) for g in acme.grants("acme")]
    assert states == [
        (active.id, GrantState.ACTIVE),
        (expiring.id, GrantState.EXPIRED),
        (pending.id, GrantState.PENDING),
        (voided.id, GrantState.VOIDED),
    ]


def test_an_aware_non_utc_expiry_is_the_same_instant(acme: CreditPool) -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2027, 1, 1, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    g = acme.grant("acme", "1", expires_at=local)
    assert g.expires_at == datetime(2027, 1, 1, 3, 0, tzinfo=UTC)
    assert acme.grant_info("acme", g.id).expires_at == local


def test_an_org_is_granted_at_most_the_pool_limit_and_a_grant_past_it_changes_nothing(
    acme: CreditPool, clock: FakeClock
) -> None:
    # Today's cap: 10 grants of the largest amount. Without a cap, the 923rd made every sum
    # of the pool overflow a 64-bit integer (a 500: "bigint out of range" / OverflowError).
    assert MAX_POOL_CREDITS == 10 * MAX_CREDITS
    for _ in range(9):
        acme.grant("acme", MAX_CREDITS)
    # expired credits still count: they may have been spent, and paid usage is summed
    acme.grant("acme", MAX_CREDITS - 1, expires_at=clock.now + timedelta(days=1))
    clock.advance(days=2)
    acme.grant("acme", "1")  # exactly at the limit
    before = snapshot(acme, "acme")
    for amount in ("0.0001", MAX_CREDITS):
        with pytest.raises(PoolLimitExceeded) as refused:
            acme.grant("acme", amount, idempotency_key=f"past-{amount}")
        assert refused.value.code == "pool_limit_exceeded"
        assert refused.value.status == 422
        assert isinstance(refused.value, InvalidAmount)
        assert f"at most {MAX_POOL_CREDITS} credits" in refused.value.detail
        assert refused.value.extra["granted"] == Decimal(MAX_POOL_CREDITS)
        assert snapshot(acme, "acme") == before
    assert acme.verify("acme") == []


def test_voided_credits_free_room_under_the_pool_limit(acme: CreditPool) -> None:
    grants = [acme.grant("acme", MAX_CREDITS) for _ in range(10)]
    acme.consume("acme", "report", user_id="u-1")
    with pytest.raises(PoolLimitExceeded):
        acme.grant("acme", "1")
    acme.void_grant("acme", grants[0].id)  # the 0.50 spent from it stays granted
    acme.grant("acme", MAX_CREDITS - Decimal("0.5"))
    with pytest.raises(PoolLimitExceeded):
        acme.grant("acme", "0.0001")
    assert acme.verify("acme") == []


def test_every_sum_of_a_pool_at_its_limit_is_exact(acme: CreditPool) -> None:
    """Balance, team usage, reports and verify add up a full pool without overflowing,
    also after the same credits are drawn again and again (consume, refund, consume)."""
    for _ in range(10):
        acme.grant("acme", MAX_CREDITS)
    acme.set_feature("bulk", name="Bulk", unit_rate="10000")
    acme.create_team("acme", "t", name="T", monthly_limit=MAX_CREDITS)
    acme.set_member("acme", "u-1", team_id="t")
    for _ in range(3):
        c = acme.consume("acme", "bulk", user_id="u-1", quantity=10**9)
        assert c.cost == MAX_POOL_CREDITS
        assert c.id is not None
        acme.refund("acme", c.id)
    acme.consume("acme", "bulk", user_id="u-1", quantity=10**9)
    balance = acme.balance("acme")
    assert balance.total == balance.used == MAX_POOL_CREDITS
    assert balance.left == 0
    [usage] = acme.team_usage("acme")
    assert usage.used == MAX_POOL_CREDITS
    rows = list(acme.report("acme", "usage").rows())
    assert sum(Decimal(str(r[6])) for r in rows) == MAX_POOL_CREDITS
    assert acme.verify("acme") == []


def test_the_usage_page_shows_the_pending_and_soon_expiring_grants_of_the_live_ones(
    acme: CreditPool, clock: FakeClock
) -> None:
    """The page reads only the live grants (neither voided nor logged as expired): the
    pending ones and the active ones expiring within 30 days with credits left."""
    from creditpool.http.security import Principal
    from creditpool.web import service as web

    expired = acme.grant("acme", "1", expires_at=clock.now + timedelta(hours=1))
    voided = acme.grant("acme", "2", expires_at=clock.now + timedelta(days=5))
    soon = acme.grant("acme", "3", expires_at=clock.now + timedelta(days=10))
    later = acme.grant("acme", "4", expires_at=clock.now + timedelta(days=60))
    pending = acme.grant("acme", "5", available_from=clock.now + timedelta(days=2))
    unlogged = acme.grant("acme", "6", expires_at=clock.now + timedelta(hours=2))
    acme.void_grant("acme", voided.id)
    clock.advance(minutes=90)
    acme.consume("acme", "report", user_id="u-1")  # logs the first grant's expiry
    clock.advance(hours=1)  # the sixth expires; nothing logs it
    key, _ = acme.create_key("admin", org_id="acme")
    page = web.usage_page(acme.db, Principal(key), "acme", web.HistoryFilters(), None, 30)
    assert [g.id for g in page.upcoming] == [pending.id]
    # not the expired, voided, far-off or expired-but-not-yet-logged ones
    assert [g.id for g in page.expiring] == [soon.id]
    assert {expired.id, voided.id, later.id, unlogged.id}.isdisjoint(
        g.id for g in page.upcoming + page.expiring
    )
