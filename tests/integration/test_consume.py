"""Consuming: the order across grants, all or nothing, dry runs, what is stored."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditpool import (
    Allocation,
    ConsumptionStatus,
    CreditPool,
    InsufficientCredits,
    InvalidInput,
    NotFound,
)
from tests.integration.dbstate import snapshot
from tests.support import FakeClock


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def test_expiring_grants_are_drawn_first_soonest_first_then_permanent(
    acme: CreditPool, clock: FakeClock
) -> None:
    permanent = acme.grant("acme", "1")
    later = acme.grant("acme", "1", expires_at=clock.now + timedelta(days=9))
    sooner = acme.grant("acme", "0.5", expires_at=clock.now + timedelta(days=2))
    order = []
    for _ in range(5):
        c = acme.consume("acme", "report", user_id="u-1")
        order.append([(a.grant_id, a.amount) for a in c.allocations])
    assert order == [
        [(sooner.id, Decimal("0.5"))],
        [(later.id, Decimal("0.5"))],
        [(later.id, Decimal("0.5"))],
        [(permanent.id, Decimal("0.5"))],
        [(permanent.id, Decimal("0.5"))],
    ]


def test_ties_on_expiry_are_broken_by_available_from_then_id(
    acme: CreditPool, clock: FakeClock
) -> None:
    expiry = clock.now + timedelta(days=5)
    second = acme.grant("acme", "0.5", expires_at=expiry)
    clock.advance(minutes=1)
    third = acme.grant("acme", "0.5", expires_at=expiry)
    first = acme.grant(
        "acme", "0.5", expires_at=expiry, available_from=clock.now - timedelta(days=1)
    )
    drawn = [acme.consume("acme", "report", user_id="u").allocations[0].grant_id for _ in range(3)]
    assert drawn == [first.id, second.id, third.id]


def test_a_consumption_spans_several_grants_with_one_allocation_each(
    acme: CreditPool, clock: FakeClock
) -> None:
    a = acme.grant("acme", "0.2", expires_at=clock.now + timedelta(days=1))
    b = acme.grant("acme", "0.2", expires_at=clock.now + timedelta(days=2))
    c = acme.grant("acme", "5")
    used = acme.consume("acme", "report", user_id="u-1")
    assert used.allocations == (
        Allocation(grant_id=a.id, amount=Decimal("0.2")),
        Allocation(grant_id=b.id, amount=Decimal("0.2")),
        Allocation(grant_id=c.id, amount=Decimal("0.1")),
    )
    assert [g.remaining for g in acme.grants("acme")] == [0, 0, Decimal("4.9")]
    assert used.id is not None
    assert acme.consumption("acme", used.id).allocations == used.allocations
    assert [(f.consumption_id, f.amount) for f in acme.funded_by("acme", b.id)] == [
        (used.id, Decimal("0.2"))
    ]


def test_a_stored_consumption_lists_its_allocations_in_the_order_they_were_drawn(
    acme: CreditPool, clock: FakeClock
) -> None:
    permanent = acme.grant("acme", "1")
    expiring = acme.grant("acme", "0.2", expires_at=clock.now + timedelta(days=1))
    used = acme.consume("acme", "report", user_id="u-1")
    assert [a.grant_id for a in used.allocations] == [expiring.id, permanent.id]
    assert acme.consumption("acme", _id(used.id)) == used
    assert acme.consumptions("acme") == [used]


def _id(value: int | None) -> int:
    assert value is not None
    return value


def test_insufficient_credits_refuses_the_whole_consumption_and_changes_nothing(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "0.3", expires_at=clock.now + timedelta(days=1))
    acme.grant("acme", "0.1")
    state = snapshot(acme, "acme")
    with pytest.raises(InsufficientCredits) as refused:
        acme.consume("acme", "report", user_id="u-1", idempotency_key="k-1")
    assert refused.value.extra == {"left": Decimal("0.4"), "required": Decimal("0.5")}
    assert refused.value.status == 402
    assert snapshot(acme, "acme") == state
    assert acme.consumptions("acme") == []
    assert acme.verify() == []
    # The key was not spent on the refusal: after a top-up the same key charges.
    acme.grant("acme", "1")
    assert acme.consume("acme", "report", user_id="u-1", idempotency_key="k-1").cost == Decimal(
        "0.5"
    )


def test_consuming_exactly_the_balance_leaves_zero_and_then_refuses(acme: CreditPool) -> None:
    acme.grant("acme", "1")
    acme.consume("acme", "report", user_id="u-1")
    acme.consume("acme", "report", user_id="u-1")
    assert acme.balance("acme").left == 0
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "agent_recommendation", user_id="u-1")
    assert acme.balance("acme").used == Decimal("1")


def test_an_expired_grant_is_not_drawn_from_at_its_expiry_instant(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "10", expires_at=clock.now + timedelta(hours=1))
    clock.advance(hours=1)
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "report", user_id="u-1")


def test_a_dry_run_shows_cost_and_allocations_and_writes_nothing(
    acme: CreditPool, clock: FakeClock
) -> None:
    soon = acme.grant("acme", "0.1", expires_at=clock.now + timedelta(days=1))
    rest = acme.grant("acme", "10")
    state = snapshot(acme, "acme")
    preview = acme.consume("acme", "report", user_id="u-1", dry_run=True)
    assert preview.status is ConsumptionStatus.DRY_RUN
    assert preview.id is None
    assert preview.cost == Decimal("0.5")
    assert preview.allocations == (
        Allocation(grant_id=soon.id, amount=Decimal("0.1")),
        Allocation(grant_id=rest.id, amount=Decimal("0.4")),
    )
    assert snapshot(acme, "acme") == state
    real = acme.consume("acme", "report", user_id="u-1")
    assert real.allocations == preview.allocations


def test_a_dry_run_beyond_the_balance_raises_insufficient_credits(acme: CreditPool) -> None:
    acme.grant("acme", "0.1")
    state = snapshot(acme, "acme")
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "report", user_id="u-1", dry_run=True)
    assert snapshot(acme, "acme") == state


def test_everything_given_to_a_consumption_is_stored_with_it(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "100")
    given = acme.consume(
        "acme",
        "report",
        user_id="u-17",
        feature_name="Q3 pipeline",
        action="publish",
        integration="slack-mcp",
        breakdown={"calls": 12, "emails": 40, "web_searches": 3},
        requests=2,
        metadata={"trace": "abc", "nested": {"list": [1, 2, "três"]}},
    )
    assert given.id is not None
    stored = acme.consumption("acme", given.id)
    assert stored == given
    assert stored.created_at == clock.now
    assert (stored.feature, stored.feature_name, stored.action) == (
        "report",
        "Q3 pipeline",
        "publish",
    )
    assert (stored.integration, stored.user_id, stored.requests) == ("slack-mcp", "u-17", 2)
    assert stored.breakdown == {"calls": 12, "emails": 40, "web_searches": 3}
    assert stored.metadata == {"trace": "abc", "nested": {"list": [1, 2, "três"]}}
    assert stored.status is ConsumptionStatus.PAID


@pytest.mark.parametrize(
    "bad",
    [
        {"breakdown": {"calls": -1}},
        {"requests": -2},
        {"quantity": 1.5},
        {"user_id": ""},
        {"feature_name": "x" * 501},
    ],
)
def test_malformed_consumptions_are_refused_and_change_nothing(
    acme: CreditPool, bad: dict[str, object]
) -> None:
    acme.grant("acme", "10")
    state = snapshot(acme, "acme")
    arguments: dict[str, object] = {"user_id": "u-1", **bad}
    with pytest.raises(InvalidInput):
        acme.consume("acme", "report", **arguments)  # type: ignore[arg-type]
    assert snapshot(acme, "acme") == state


def test_consuming_in_an_unknown_org_is_not_found(pool: CreditPool) -> None:
    with pytest.raises(NotFound):
        pool.consume("nobody", "report", user_id="u-1")
    with pytest.raises(NotFound):
        pool.consume("nobody", "report", user_id="u-1", dry_run=True)


def test_consumptions_are_listed_newest_first_with_filters_and_pages(
    acme: CreditPool, clock: FakeClock
) -> None:
    acme.grant("acme", "100")
    acme.create_team("acme", "sales")
    acme.set_member("acme", "u-1", team_id="sales")
    made = []
    for i in range(6):
        feature = "report" if i % 2 == 0 else "agent_recommendation"
        made.append(acme.consume("acme", feature, user_id=f"u-{i % 3}"))
        clock.advance(hours=1)
    ids = [c.id for c in made]
    assert [c.id for c in acme.consumptions("acme")] == ids[::-1]
    page = acme.consumptions("acme", limit=4)
    assert [c.id for c in page] == ids[:1:-1]
    assert page[-1].id is not None
    assert [c.id for c in acme.consumptions("acme", before_id=page[-1].id)] == ids[1::-1]
    assert [c.id for c in acme.consumptions("acme", feature="report")] == ids[::2][::-1]
    assert [c.id for c in acme.consumptions("acme", user_id="u-1")] == [ids[4], ids[1]]
    assert [c.id for c in acme.consumptions("acme", team_id="sales")] == [ids[4], ids[1]]
    window = acme.consumptions("acme", since=made[1].created_at, until=made[3].created_at)
    assert [c.id for c in window] == [ids[2], ids[1]]
    assert acme.consumptions("acme", status="refunded") == []
    assert len(acme.consumptions("acme", status="paid")) == 6
    with pytest.raises(InvalidInput):
        acme.consumptions("acme", status="free")
