"""The ledger: exact instants of availability and expiry, balances in the past, verify."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, update

from creditpool import Balance, CreditPool
from creditpool.storage.tables import allocations, consumptions, grants, ledger, restorations
from tests.support import FakeClock

ZERO = Decimal(0)


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def _rows(pool: CreditPool) -> list[tuple[datetime, str, str, Decimal, Decimal, Decimal]]:
    return [
        (e.at, e.action, e.method, e.credits, e.total_before, e.total_after)
        for e in pool.ledger("acme")
    ]


def test_expiry_and_availability_are_written_at_their_instants_before_a_later_change(
    acme: CreditPool, clock: FakeClock
) -> None:
    t0 = clock.now
    acme.grant("acme", "5", expires_at=t0 + timedelta(days=1))
    acme.grant(
        "acme", "7", available_from=t0 + timedelta(days=2), expires_at=t0 + timedelta(days=3)
    )
    acme.grant("acme", "3", available_from=t0 + timedelta(hours=12))
    acme.consume("acme", "report", user_id="u-1")  # 0.5 from the 5
    clock.set(t0 + timedelta(days=4))  # nothing ran in between
    acme.consume("acme", "report", user_id="u-1")
    assert _rows(acme) == [
        (t0, "grant_added", "added", Decimal("5"), 0, Decimal("5")),
        (t0, "consumption", "used", Decimal("0.5"), Decimal("5"), Decimal("4.5")),
        (
            t0 + timedelta(hours=12),
            "grant_added",
            "added",
            Decimal("3"),
            Decimal("4.5"),
            Decimal("7.5"),
        ),
        (t0 + timedelta(days=1), "expiry", "expired", Decimal("4.5"), Decimal("7.5"), Decimal("3")),
        (t0 + timedelta(days=2), "grant_added", "added", Decimal("7"), Decimal("3"), Decimal("10")),
        (t0 + timedelta(days=3), "expiry", "expired", Decimal("7"), Decimal("10"), Decimal("3")),
        (
            t0 + timedelta(days=4),
            "consumption",
            "used",
            Decimal("0.5"),
            Decimal("3"),
            Decimal("2.5"),
        ),
    ]
    assert [e.seq for e in acme.ledger("acme")] == list(range(1, 8))
    assert acme.verify() == []


def test_sweep_writes_the_due_entries_without_any_other_change(
    pool: CreditPool, clock: FakeClock
) -> None:
    pool.create_org("acme")
    pool.create_org("globex")
    t0 = clock.now
    pool.grant("acme", "5", expires_at=t0 + timedelta(hours=1))
    pool.grant("globex", "2", available_from=t0 + timedelta(hours=2))
    clock.advance(hours=3)
    assert pool.sweep() == 2
    assert pool.sweep() == 0
    clock.advance(days=1)  # the sweep stamped the entries with their instants, not "now"
    acme = [(e.at, e.action) for e in pool.ledger("acme")]
    globex = [(e.at, e.action) for e in pool.ledger("globex")]
    assert acme == [(t0, "grant_added"), (t0 + timedelta(hours=1), "expiry")]
    assert globex == [(t0 + timedelta(hours=2), "grant_added")]


def test_an_exhausted_grant_expires_without_a_ledger_entry(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "0.5", expires_at=clock.now + timedelta(hours=1))
    acme.consume("acme", "report", user_id="u-1")
    clock.advance(hours=2)
    assert [e.action for e in acme.ledger("acme")] == ["grant_added", "consumption"]
    assert acme.verify() == []


def test_ledger_since_and_until_select_a_window(acme: CreditPool, clock: FakeClock) -> None:
    t0 = clock.now
    for _ in range(3):
        acme.grant("acme", "1")
        clock.advance(hours=1)
    window = acme.ledger("acme", since=t0 + timedelta(hours=1), until=t0 + timedelta(hours=2))
    assert [e.at for e in window] == [t0 + timedelta(hours=1)]
    assert [e.seq for e in acme.ledger("acme", after_seq=1, limit=1)] == [2]


def test_balance_at_a_past_instant_equals_what_balance_said_then(
    acme: CreditPool, clock: FakeClock
) -> None:
    t0 = clock.now
    seen: list[Balance] = []

    def look() -> None:
        seen.append(acme.balance("acme"))
        clock.advance(seconds=1)  # a balance at an instant includes what happens at it

    look()
    acme.grant("acme", "5", expires_at=t0 + timedelta(days=2))
    acme.grant(
        "acme", "4", available_from=t0 + timedelta(days=1), expires_at=t0 + timedelta(days=5)
    )
    acme.grant("acme", "2")
    look()
    clock.advance(hours=3)
    acme.consume("acme", "action_plan", user_id="u-1")
    look()
    clock.advance(hours=20)  # just before the pending grant starts
    look()
    clock.advance(hours=1)  # it is available now; nothing was written
    look()
    c = acme.consume("acme", "report", user_id="u-1")
    void_me = acme.grant("acme", "3")
    look()
    clock.advance(days=1, hours=1)  # the first grant expired
    look()
    assert c.id is not None
    acme.refund("acme", c.id)
    acme.void_grant("acme", void_me.id)
    look()
    clock.advance(days=10)  # everything expiring has expired
    look()
    acme.consume("acme", "agent_recommendation", user_id="u-1")
    look()
    clock.advance(days=1)
    for then in seen:
        assert acme.balance("acme", at=then.at) == then, then.at
    assert [b.left for b in seen] == [
        0,
        Decimal("7"),
        Decimal("6.5"),
        Decimal("6.5"),
        Decimal("10.5"),
        Decimal("13"),
        Decimal("9"),
        Decimal("6"),
        Decimal("2"),
        Decimal("1.75"),
    ]
    assert [b.upcoming for b in seen[:5]] == [0, 4, 4, 4, 0]


def test_balance_before_the_first_grant_is_zero(acme: CreditPool, clock: FakeClock) -> None:
    before = clock.now - timedelta(days=1)
    acme.grant("acme", "10")
    acme.consume("acme", "report", user_id="u-1")
    balance = acme.balance("acme", at=before)
    assert (balance.total, balance.left, balance.used, balance.upcoming) == (ZERO, ZERO, ZERO, ZERO)


def test_verify_is_empty_after_a_busy_history(acme: CreditPool, clock: FakeClock) -> None:
    acme.create_team("acme", "sales", monthly_limit="1")
    acme.set_member("acme", "u-1", team_id="sales")
    acme.grant("acme", "3", expires_at=clock.now + timedelta(days=1))
    g = acme.grant("acme", "4")
    acme.grant("acme", "2", available_from=clock.now + timedelta(hours=5))
    made = [acme.consume("acme", "report", user_id="u-1") for _ in range(8)]
    acme.set_feature("topic_detection", unit_rate="0.0123", unit="item")
    made.append(acme.consume("acme", "topic_detection", user_id="u-2", quantity="17"))
    clock.advance(hours=25)
    for c in made[::3]:
        assert c.id is not None
        acme.refund("acme", c.id)
    acme.void_grant("acme", g.id)
    assert acme.verify() == []
    assert acme.verify("acme") == []


def test_verify_reports_a_grant_whose_remaining_was_tampered_with(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    acme.consume("acme", "report", user_id="u-1")
    assert acme.verify() == []
    with acme.db.engine.begin() as conn:
        conn.execute(
            update(grants)
            .where(grants.c.org_id == "acme", grants.c.id == g.id)
            .values(remaining=100_000)
        )
    problems = acme.verify()
    assert any(f"grant {g.id}" in p and "remaining" in p for p in problems), problems


def test_verify_reports_a_broken_ledger_chain(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    acme.consume("acme", "report", user_id="u-1")
    with acme.db.engine.begin() as conn:
        conn.execute(
            update(ledger)
            .where(ledger.c.org_id == "acme", ledger.c.seq == 2)
            .values(total_before=1)
        )
    problems = acme.verify()
    assert any("ledger #2" in p for p in problems), problems


def test_verify_reports_a_remaining_above_the_amount(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    with acme.db.engine.begin() as conn:
        conn.execute(
            update(grants)
            .where(grants.c.org_id == "acme", grants.c.id == g.id)
            .values(remaining=200_000, amount=100_000)
        )
    assert any("outside 0..10.00" in p for p in acme.verify())


def test_verify_names_each_tampered_consumption_once_in_id_order(acme: CreditPool) -> None:
    """verify streams consumptions, allocations, restorations and entries side by side (in
    id order): every tampered consumption is named, with the figures it found, and the
    untouched ones in between are not."""
    g = acme.grant("acme", "10")
    made: list[int] = []
    for _ in range(6):
        made_id = acme.consume("acme", "report", user_id="u-1").id
        assert made_id is not None
        made.append(made_id)
    refunded = made[4]
    acme.refund("acme", refunded)
    with acme.db.engine.begin() as conn:
        # the second consumption lost its allocation
        conn.execute(
            delete(allocations).where(
                allocations.c.org_id == "acme", allocations.c.consumption_id == made[1]
            )
        )
        # the fourth consumption's entry now names the third
        conn.execute(
            update(ledger)
            .where(ledger.c.org_id == "acme", ledger.c.consumption_id == made[3])
            .values(consumption_id=made[2])
        )
        # the refunded one's restoration is gone; the last one gained one
        conn.execute(
            update(restorations)
            .where(restorations.c.org_id == "acme", restorations.c.consumption_id == refunded)
            .values(consumption_id=made[5])
        )
    problems = acme.verify()
    assert [p for p in problems if "consumption" in p] == [
        f"acme: consumption {made[1]}: allocations sum to 0.00, cost 0.50",
        f"acme: consumption {made[2]}: ledger charges [5000, 5000] instead of one entry of its cost",
        f"acme: consumption {made[3]}: ledger charges None instead of one entry of its cost",
        f"acme: consumption {refunded}: restored 0.00 + lost 0.00 != cost",
        f"acme: consumption {refunded}: ledger refunds [5000] != restored 0.00",
        f"acme: consumption {made[5]}: paid but has restorations",
    ]
    assert [p for p in problems if "grant" in p] == [
        f"acme: grant {g.id}: remaining 7.50 != amount - drawn + restored - voided - held"
        " + given back + adjusted = 8.00"
    ]


def test_verify_names_each_tampered_hold_in_id_order(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    holds_made = [acme.hold("acme", "report", user_id="u-1", amount="1").id for _ in range(4)]
    settled = acme.settle("acme", holds_made[1], cost="0.5")
    acme.release("acme", holds_made[2])
    with acme.db.engine.begin() as conn:
        # the first hold's entry now names the fourth
        conn.execute(
            update(ledger)
            .where(ledger.c.org_id == "acme", ledger.c.hold_id == holds_made[0])
            .values(hold_id=holds_made[3])
        )
        # the settled hold's consumption names the released one
        conn.execute(
            update(consumptions)
            .where(consumptions.c.org_id == "acme", consumptions.c.id == settled.id)
            .values(hold_id=holds_made[2])
        )
    problems = [p for p in acme.verify() if "hold " in p]
    assert problems == [
        f"acme: hold {holds_made[0]}: ledger holds None instead of one entry of its amount",
        f"acme: hold {holds_made[1]}: settled by consumption {settled.id}, which names hold None",
        f"acme: hold {holds_made[3]}: ledger holds [10000, 10000] instead of one entry of its"
        " amount",
    ]


def test_balance_in_the_past_counts_only_the_grants_of_that_instant(
    acme: CreditPool, clock: FakeClock
) -> None:
    """A past balance reads the grants active or pending then; a hold still open then on a
    grant that had expired holds nothing (its credits left with the grant)."""
    start = clock.now
    acme.grant("acme", "5", expires_at=start + timedelta(hours=1))
    acme.grant("acme", "10")
    acme.grant("acme", "3", available_from=start + timedelta(hours=3))
    acme.hold("acme", "report", user_id="u-1", amount="1", ttl_s=7200)  # on the first grant
    clock.advance(minutes=90)
    acme.consume("acme", "report", user_id="u-1")
    at = acme.balance("acme", at=start + timedelta(minutes=70))
    assert (at.total, at.left, at.held, at.used, at.upcoming) == (
        Decimal("10"),
        Decimal("10"),
        ZERO,
        ZERO,
        Decimal("3"),
    )
    before = acme.balance("acme", at=start + timedelta(minutes=30))
    assert (before.total, before.left, before.held, before.used, before.upcoming) == (
        Decimal("15"),
        Decimal("14"),
        Decimal("1"),
        ZERO,
        Decimal("3"),
    )
