"""Group commit: concurrent consumptions of one organization share one transaction, and
each is still all-or-nothing with its own answer."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from creditpool import CreditPool, IdempotencyConflict, InsufficientCredits, InvalidAmount
from creditpool.commands import Consume
from creditpool.http.batching import ConsumeBatcher


def test_a_batch_charges_each_call_on_its_own_and_refuses_only_what_does_not_fit(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    pool.grant("acme", "1.00")
    calls = [
        Consume("report", user_id="u-1"),  # 0.50
        Consume("topic_detection", user_id="u-2", quantity="1.00001"),  # malformed
        Consume("report", user_id="u-3"),  # 0.50: the last credits
        Consume("agent_recommendation", user_id="u-4"),  # 0.25: nothing left
    ]
    outcomes = pool.consume_batch("acme", calls)
    assert [o.result is not None for o in outcomes] == [True, False, True, False]
    assert isinstance(outcomes[1].error, InvalidAmount)
    assert isinstance(outcomes[3].error, InsufficientCredits)
    assert [o.result.cost for o in outcomes if o.result] == [Decimal("0.50"), Decimal("0.50")]
    assert pool.balance("acme").left == 0
    assert len(pool.consumptions("acme")) == 2
    assert [e.method for e in pool.ledger("acme")] == ["added", "used", "used"]
    assert pool.verify() == []


def test_a_key_repeated_in_one_batch_or_across_batches_charges_once(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.grant("acme", "10")
    first = pool.consume_batch(
        "acme",
        [
            Consume("report", user_id="u-1", idempotency_key="k"),
            Consume("report", user_id="u-1", idempotency_key="k"),
        ],
    )
    assert first[0].result == first[1].result
    assert (first[0].replayed, first[1].replayed) == (False, True)
    again = pool.consume_batch("acme", [Consume("report", user_id="u-1", idempotency_key="k")])
    assert again[0].result == first[0].result
    assert again[0].replayed
    single = pool.consume("acme", "report", user_id="u-1", idempotency_key="k")
    assert single == first[0].result
    other = pool.consume_batch("acme", [Consume("report", user_id="u-2", idempotency_key="k")])
    assert isinstance(other[0].error, IdempotencyConflict)
    assert pool.balance("acme").left == Decimal("9.50")
    assert pool.verify() == []


def test_concurrent_requests_are_committed_together_and_never_overspend(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    pool.grant("acme", "10.00")  # room for exactly 40 agent recommendations (0.25)
    batcher = ConsumeBatcher(pool)
    sizes: list[int] = []
    original = pool.consume_batch

    def recording(org_id: str, calls: list[Consume]) -> list:  # type: ignore[type-arg]
        sizes.append(len(calls))
        return original(org_id, calls)

    pool.consume_batch = recording  # type: ignore[method-assign]
    charged: list[Decimal] = []
    refused: list[Exception] = []

    async def client(n: int) -> None:
        for i in range(5):
            try:
                outcome = await batcher.consume(
                    "acme",
                    Consume("agent_recommendation", user_id=f"u-{n}", idempotency_key=f"{n}-{i}"),
                )
                result = outcome.unwrap()
                assert not outcome.replayed
                charged.append(result.cost)
            except InsufficientCredits as error:
                refused.append(error)

    async def clients() -> None:
        await asyncio.gather(*(client(n) for n in range(16)))

    try:
        asyncio.run(clients())
    finally:
        batcher.close()
    assert len(charged) == 40
    assert len(refused) == 40
    assert sum(charged) == Decimal("10.00")
    assert pool.balance("acme").left == 0
    assert sum(sizes) == 80
    assert max(sizes) > 1, "concurrent requests of one organization should share a batch"
    assert pool.verify() == []


def test_a_failing_batch_is_retried_call_by_call(pool: CreditPool) -> None:
    """One call that breaks the batch's transaction must not sink the others."""
    pool.create_org("acme")
    pool.grant("acme", "10.00")
    batcher = ConsumeBatcher(pool)
    original = pool.consume_batch

    def failing(org_id: str, calls: list[Consume]) -> list:  # type: ignore[type-arg]
        if any(c.user_id == "bad" for c in calls):
            raise RuntimeError("boom")
        return original(org_id, calls)

    pool.consume_batch = failing  # type: ignore[method-assign]

    async def together() -> list[object]:
        calls = [Consume("report", user_id=u) for u in ("u-1", "u-2", "bad", "u-3")]
        return await asyncio.gather(
            *(batcher.consume("acme", c) for c in calls), return_exceptions=True
        )

    try:
        results = asyncio.run(together())
    finally:
        batcher.close()
    assert [isinstance(r, RuntimeError) for r in results] == [False, False, True, False]
    assert pool.balance("acme").left == Decimal("8.50")


def test_an_unknown_organization_fails_every_call_of_the_batch(pool: CreditPool) -> None:
    batcher = ConsumeBatcher(pool)
    try:
        with pytest.raises(Exception, match="not found"):
            asyncio.run(batcher.consume("nope", Consume("report", user_id="u-1")))
    finally:
        batcher.close()
