"""The feature catalog: prices at the time of use, variable costs rounded half-up."""

from __future__ import annotations

from decimal import Decimal

import pytest

from creditpool import CreditPool, InvalidAmount, InvalidInput, NotFound
from tests.integration.dbstate import snapshot


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    pool.grant("acme", "100")
    return pool


def test_the_default_catalog_has_the_four_features_of_the_spec(pool: CreditPool) -> None:
    catalog = {f.key: f for f in pool.features()}
    assert catalog["report"].cost == Decimal("0.5")
    assert catalog["action_plan"].cost == Decimal("0.5")
    assert catalog["agent_recommendation"].cost == Decimal("0.25")
    assert catalog["topic_detection"].cost is None
    assert catalog["topic_detection"].unit_rate is not None


def test_a_price_change_applies_to_later_uses_and_leaves_past_consumptions_alone(
    acme: CreditPool,
) -> None:
    before = acme.consume("acme", "report", user_id="u-1")
    acme.set_feature("report", cost="0.75")
    after = acme.consume("acme", "report", user_id="u-1")
    assert (before.cost, after.cost) == (Decimal("0.5"), Decimal("0.75"))
    assert before.id is not None
    assert acme.consumption("acme", before.id).cost == Decimal("0.5")
    assert acme.balance("acme").used == Decimal("1.25")
    assert acme.feature("report").name == "Report"


def test_an_unknown_feature_is_not_found_and_nothing_is_charged(acme: CreditPool) -> None:
    state = snapshot(acme, "acme")
    with pytest.raises(NotFound):
        acme.consume("acme", "teleport", user_id="u-1")
    with pytest.raises(NotFound):
        acme.feature("teleport")
    assert snapshot(acme, "acme") == state


def test_a_variable_feature_without_quantity_is_refused_and_nothing_is_charged(
    acme: CreditPool,
) -> None:
    state = snapshot(acme, "acme")
    with pytest.raises(InvalidInput):
        acme.consume("acme", "topic_detection", user_id="u-1")
    assert snapshot(acme, "acme") == state


@pytest.mark.parametrize(
    ("rate", "quantity", "cost"),
    [
        ("0.01", "1234", "12.34"),
        ("0.00015", "3", "0.0005"),  # 0.00045 rounds half-up
        ("0.00005", "1", "0.0001"),  # exactly half a unit rounds up
        ("0.000049", "1", None),  # rounds to zero: refused
        ("0.3333", "0.5", "0.1667"),  # 0.16665 rounds up
    ],
)
def test_a_variable_cost_is_rate_times_quantity_rounded_half_up(
    acme: CreditPool, rate: str, quantity: str, cost: str | None
) -> None:
    acme.set_feature("topic_detection", unit_rate=rate, unit="feedback item")
    if cost is None:
        with pytest.raises(InvalidAmount):
            acme.consume("acme", "topic_detection", user_id="u-1", quantity=quantity)
        assert acme.balance("acme").used == 0
        return
    used = acme.consume("acme", "topic_detection", user_id="u-1", quantity=quantity)
    assert used.cost == Decimal(cost)
    assert used.quantity == Decimal(quantity)
    assert used.unit_rate == Decimal(rate)
    assert acme.balance("acme").used == Decimal(cost)


def test_a_new_feature_needs_exactly_one_kind_of_price_and_is_named_after_its_key(
    pool: CreditPool,
) -> None:
    # Named after its key unless named, as organizations and teams are.
    assert pool.set_feature("digest", cost="1").name == "digest"
    with pytest.raises(InvalidInput):
        pool.set_feature("summary", name="Summary", cost="1", unit_rate="0.1")
    with pytest.raises(InvalidInput):
        pool.set_feature("summary", name="Summary")
    with pytest.raises(InvalidAmount):
        pool.set_feature("summary", name="Summary", cost="0.00001")
    created = pool.set_feature("summary", name="Summary", cost="2")
    assert created.cost == Decimal("2")
    assert pool.feature("summary") == created


def test_a_feature_can_switch_from_fixed_to_per_unit_pricing(acme: CreditPool) -> None:
    acme.set_feature("report", unit_rate="0.1", unit="page")
    with pytest.raises(InvalidInput):
        acme.consume("acme", "report", user_id="u-1")
    assert acme.consume("acme", "report", user_id="u-1", quantity="7").cost == Decimal("0.7")


@pytest.mark.parametrize(
    "price",
    [{"cost": "1000000000.0001"}, {"unit_rate": "1000000000.00000001"}, {"cost": "1000000000000"}],
    ids=["cost", "unit rate", "the largest amount"],
)
def test_a_price_over_a_billion_credits_is_refused_before_it_is_stored(
    pool: CreditPool, price: dict[str, str]
) -> None:
    """The stored rate (10**8 per credit) must fit a 64-bit column."""
    with pytest.raises(InvalidAmount, match="at most 1000000000"):
        pool.set_feature("huge", name="Huge", **price)
    assert all(f.key != "huge" for f in pool.features())
    assert pool.set_feature("huge", name="Huge", cost="1000000000").cost == Decimal(10**9)
