"""Racing writers on one database, each on its own connection (as separate server processes
would be): the same idempotency key has one outcome, a key scoped beyond one organization
(``ScopedKey``: the HTTP API's keys, scoped to the API key) takes effect in one organization
only, and concurrent creations and upserts never fail with a database error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import pytest

from creditpool import (
    AlreadyExists,
    Consumption,
    CreditPool,
    Feature,
    Grant,
    IdempotencyConflict,
    Member,
    NotFound,
)
from creditpool.commands import Consume
from creditpool.idempotency.service import ScopedKey
from tests.integration.dbstate import snapshot

THREADS = 8
ROUNDS = 4
T = TypeVar("T")


def all_at_once(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run the calls in threads released together; each one's result or exception."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BaseException:
        start.wait(timeout=30)
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(calls)) as threads:
        return list(threads.map(run, calls))


def only(outcomes: list[Any], *kinds: type) -> None:
    unexpected = [o for o in outcomes if not isinstance(o, kinds)]
    assert unexpected == [], unexpected


# -- the same key, racing ----------------------------------------------------------------


@pytest.mark.parametrize("scoped", [False, True], ids=["library-key", "scoped-key"])
def test_racing_duplicates_of_a_ledger_change_apply_it_once_and_all_get_its_result(
    pool: CreditPool, scoped: bool
) -> None:
    pool.create_org("acme")
    pool.grant("acme", "100")
    for n in range(ROUNDS):
        c_key: str | ScopedKey = ScopedKey("api-key-1", f"c-{n}") if scoped else f"c-{n}"
        g_key: str | ScopedKey = ScopedKey("api-key-1", f"g-{n}") if scoped else f"g-{n}"
        consume = partial(pool.consume, "acme", "report", user_id="u-1", idempotency_key=c_key)
        consumed = all_at_once([consume] * THREADS)
        only(consumed, Consumption)
        assert all(c == consumed[0] for c in consumed)
        grant = partial(pool.grant, "acme", "1", reference=f"INV-{n}", idempotency_key=g_key)
        granted = all_at_once([grant] * THREADS)
        only(granted, Grant)
        assert all(g == granted[0] for g in granted)
    assert len(pool.consumptions("acme")) == ROUNDS
    assert pool.balance("acme").left == Decimal(100) - Decimal("0.5") * ROUNDS + ROUNDS
    assert pool.verify() == []


@pytest.mark.parametrize("scoped", [False, True], ids=["library-key", "scoped-key"])
def test_racing_duplicates_of_a_void_and_a_refund_all_get_the_first_result(
    pool: CreditPool, scoped: bool
) -> None:
    """A duplicate that waited for the first one's lock must see its record: run again, a
    void would be refused (grant_voided) instead of replayed."""
    pool.create_org("acme")
    for n in range(ROUNDS):
        pool.grant("acme", "10")
        grant = pool.grant("acme", "5")
        used = pool.consume("acme", "report", user_id="u-1")
        v_key: str | ScopedKey = ScopedKey("api-key-1", f"v-{n}") if scoped else f"v-{n}"
        r_key: str | ScopedKey = ScopedKey("api-key-1", f"r-{n}") if scoped else f"r-{n}"
        void = partial(pool.void_grant, "acme", grant.id, reason="x", idempotency_key=v_key)
        voided = all_at_once([void] * THREADS)
        only(voided, Grant)
        assert all(v == voided[0] for v in voided)
        refund = partial(pool.refund, "acme", used.id or 0, reason="x", idempotency_key=r_key)
        refunds = all_at_once([refund] * THREADS)
        only(refunds, type(pool.refund("acme", used.id or 0, reason="x", idempotency_key=r_key)))
        assert all(r == refunds[0] for r in refunds)
    assert [e.action for e in pool.ledger("acme")].count("void") == ROUNDS
    assert pool.verify() == []


def test_racing_duplicates_in_batches_charge_once(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.grant("acme", "100")
    key = ScopedKey("api-key-1", "batched")
    call = Consume("report", user_id="u-1", idempotency_key=key)
    outcomes = all_at_once([lambda: pool.consume_batch("acme", [call, call])] * THREADS)
    only(outcomes, list)
    results = [o.result for batch in outcomes for o in batch if o.result]  # type: ignore[union-attr]
    assert len(results) == 2 * THREADS
    assert all(r == results[0] for r in results)
    assert len(pool.consumptions("acme")) == 1


# -- a scoped key in two organizations ----------------------------------------------------


def consume_alone(pool: CreditPool, org: str, key: ScopedKey) -> Consumption:
    return pool.consume(org, "report", user_id="u-1", idempotency_key=key)


def consume_in_batch(pool: CreditPool, org: str, key: ScopedKey) -> Consumption:
    [outcome] = pool.consume_batch(org, [Consume("report", user_id="u-1", idempotency_key=key)])
    if outcome.error is not None:
        raise outcome.error
    assert outcome.result is not None
    return outcome.result


def test_a_scoped_key_takes_effect_in_one_organization_only_however_the_calls_race(
    pool: CreditPool,
) -> None:
    for n in range(ROUNDS):
        a, b = f"a-{n}", f"b-{n}"
        for org in (a, b):
            pool.create_org(org)
            pool.grant(org, "10")
        key = ScopedKey("api-key-1", f"k-{n}")
        calls: list[Callable[[], Any]] = [
            partial((consume_alone, consume_in_batch)[i // 2 % 2], pool, (a, b)[i % 2], key)
            for i in range(THREADS)
        ]
        outcomes = all_at_once(calls)
        only(outcomes, IdempotencyConflict, Consumption)
        charged = len(pool.consumptions(a)) + len(pool.consumptions(b))
        assert charged == 1
        assert pool.balance(a).left + pool.balance(b).left == Decimal("19.5")
    assert pool.verify() == []


@pytest.mark.parametrize("operation", ["consume", "batch", "grant", "void", "refund"])
def test_a_scoped_key_reused_on_another_organization_is_a_conflict_and_changes_nothing(
    pool: CreditPool, operation: str
) -> None:
    for org in ("acme", "globex"):
        pool.create_org(org)
        pool.grant(org, "10")
        pool.consume(org, "report", user_id="u-1")
    key = ScopedKey("api-key-1", "k")

    def run(org: str) -> object:
        if operation == "consume":
            return consume_alone(pool, org, key)
        if operation == "batch":
            return consume_in_batch(pool, org, key)
        if operation == "grant":
            return pool.grant(org, "5", idempotency_key=key)
        if operation == "void":
            return pool.void_grant(org, 1, reason="x", idempotency_key=key)
        return pool.refund(org, 2, reason="x", idempotency_key=key)

    first = run("acme")
    assert run("acme") == first  # replayed in its own organization
    state = snapshot(pool, "globex")
    with pytest.raises(IdempotencyConflict):
        run("globex")
    assert snapshot(pool, "globex") == state
    # Another API key's key of the same text is another key; a plain library key stays
    # per organization.
    assert run_other_scope(pool, operation) is not None
    assert pool.verify() == []


def run_other_scope(pool: CreditPool, operation: str) -> object:
    key = ScopedKey("api-key-2", "k")
    if operation in ("consume", "batch"):
        return pool.consume("globex", "report", user_id="u-1", idempotency_key=key)
    return pool.grant("globex", "5", idempotency_key="k")


def test_a_plain_library_key_may_be_reused_in_another_organization(pool: CreditPool) -> None:
    for org in ("acme", "globex"):
        pool.create_org(org)
        pool.grant(org, "10")
    a = pool.consume("acme", "report", user_id="u-1", idempotency_key="req-1")
    b = pool.consume("globex", "report", user_id="u-1", idempotency_key="req-1")
    assert (a.org_id, b.org_id) == ("acme", "globex")
    [again] = pool.consume_batch(
        "globex", [Consume("report", user_id="u-1", idempotency_key="req-1")]
    )
    assert again.replayed
    assert again.result == b


# -- creations and upserts, racing (no keys) ----------------------------------------------


def test_racing_upserts_all_succeed(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_team("acme", "t-1")
    for n in range(ROUNDS):
        features = all_at_once(
            [partial(pool.set_feature, f"new-{n}", name="N", cost="1")] * THREADS
        )
        only(features, Feature)
        members = all_at_once([partial(pool.set_member, "acme", f"u-{n}", team_id="t-1")] * THREADS)
        only(members, Member)
    assert len(pool.members("acme")) == ROUNDS


def test_racing_creations_create_once_and_refuse_the_rest_as_already_existing(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    for n in range(ROUNDS):
        for create in (
            partial(pool.create_team, "acme", f"t-{n}"),
            partial(pool.create_org, f"org-{n}"),
        ):
            outcomes = all_at_once([create] * THREADS)
            refused = [o for o in outcomes if isinstance(o, AlreadyExists)]
            assert len(refused) == THREADS - 1, outcomes
            assert not any(isinstance(o, Exception) for o in outcomes if o not in refused)
    assert len(pool.teams("acme")) == ROUNDS
    with pytest.raises(NotFound):
        pool.org("org-x")
