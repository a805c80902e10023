"""A feature's price history: every price set is kept, with its instant and who set it;
a new price applies from that instant and past consumptions keep the rate they paid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from creditpool import CreditPool, InvalidAmount, InvalidInput, NotFound
from tests.support import FakeClock


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    pool.grant("acme", "100")
    return pool


def test_the_history_starts_with_the_price_in_force_when_it_began(pool: CreditPool) -> None:
    [first] = pool.feature_prices("report")
    feature = pool.feature("report")
    assert (first.feature, first.name, first.cost, first.unit_rate) == (
        "report",
        "Report",
        Decimal("0.5"),
        None,
    )
    assert first.since == feature.updated_at
    assert first.changed_by is None
    [variable] = pool.feature_prices("topic_detection")
    assert variable.cost is None
    assert variable.unit_rate == pool.feature("topic_detection").unit_rate
    assert variable.unit == pool.feature("topic_detection").unit


def test_each_price_set_joins_the_history_newest_first_with_who_and_when(
    acme: CreditPool, clock: FakeClock
) -> None:
    clock.advance(hours=1)
    acme.set_feature("report", cost="0.75", changed_by="cs@vendor.example")
    first_change = clock.now
    clock.advance(hours=1)
    acme.set_feature("report", name="Report v2", cost="1", changed_by="ops")
    history = acme.feature_prices("report")
    assert [(p.cost, p.name, p.changed_by) for p in history] == [
        (Decimal("1"), "Report v2", "ops"),
        (Decimal("0.75"), "Report", "cs@vendor.example"),
        (Decimal("0.5"), "Report", None),
    ]
    assert [p.since for p in history[:2]] == [clock.now, first_change]
    assert history[0].since == acme.feature("report").updated_at


def test_a_new_price_applies_from_its_instant_and_past_consumptions_keep_theirs(
    acme: CreditPool, clock: FakeClock
) -> None:
    before = acme.consume("acme", "report", user_id="u-1")
    clock.advance(minutes=5)
    acme.set_feature("report", cost="2", changed_by="cs")
    after = acme.consume("acme", "report", user_id="u-1")
    assert (before.cost, after.cost) == (Decimal("0.5"), Decimal("2"))
    assert before.id is not None
    assert acme.consumption("acme", before.id).cost == Decimal("0.5")
    assert (before.unit_rate, after.unit_rate) == (Decimal("0.5"), Decimal("2"))
    newest = acme.feature_prices("report")[0]
    assert newest.since <= after.created_at
    assert newest.cost == after.unit_rate


def test_a_variable_price_joins_the_history_with_its_unit(acme: CreditPool) -> None:
    acme.set_feature("topic_detection", unit_rate="0.002", unit="item", changed_by="cs")
    newest = acme.feature_prices("topic_detection")[0]
    assert (newest.cost, newest.unit_rate, newest.unit) == (None, Decimal("0.002"), "item")


def test_a_new_feature_starts_its_own_history(pool: CreditPool) -> None:
    pool.set_feature("summary", cost="0.3", changed_by="cs")
    assert [(p.feature, p.cost, p.changed_by) for p in pool.feature_prices("summary")] == [
        ("summary", Decimal("0.3"), "cs")
    ]


def test_the_history_pages_with_before_id_and_limit(pool: CreditPool) -> None:
    for cost in ("1", "2", "3"):
        pool.set_feature("report", cost=cost)
    first = pool.feature_prices("report", limit=2)
    assert [p.cost for p in first] == [Decimal(3), Decimal(2)]
    rest = pool.feature_prices("report", before_id=first[-1].id, limit=2)
    assert [p.cost for p in rest] == [Decimal(1), Decimal("0.5")]
    assert pool.feature_prices("report", before_id=rest[-1].id) == []


def test_a_refused_price_adds_nothing_to_the_history(pool: CreditPool) -> None:
    before = pool.feature_prices("report")
    with pytest.raises(InvalidAmount):
        pool.set_feature("report", cost="-1", changed_by="cs")
    with pytest.raises(InvalidInput):
        pool.set_feature("report", cost="1", unit_rate="1", changed_by="cs")
    with pytest.raises(InvalidInput):
        pool.set_feature("report", cost="1", changed_by="\x00")
    assert pool.feature_prices("report") == before
    assert pool.feature("report").cost == Decimal("0.5")


def test_the_history_of_an_unknown_feature_is_not_found(pool: CreditPool) -> None:
    with pytest.raises(NotFound):
        pool.feature_prices("teleport")
    with pytest.raises(InvalidInput):
        pool.feature_prices("report", limit=0)
    with pytest.raises(InvalidInput):
        pool.feature_prices("report", before_id=0)
