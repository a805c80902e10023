from __future__ import annotations

from decimal import Decimal

from creditpool import CreditPool


def test_a_grant_then_a_consumption_leaves_the_difference(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.grant("acme", "10")
    pool.consume("acme", "report", user_id="u-1")
    assert pool.balance("acme").left == Decimal("9.50")
    assert pool.verify() == []
