"""Real OS processes racing on one database: no overspend, no partial charge, no lost
update, on SQLite (one write lock) and PostgreSQL (the organization's row lock)."""

from __future__ import annotations

import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.pool import Pool
from typing import Any

import pytest
from sqlalchemy import func, select

from creditpool import CreditPool
from creditpool.storage.tables import allocations, consumptions
from tests.integration.dbstate import allocation_rows
from tests.integration.workers import Outcome, consume_many, init, refund_many

pytestmark = pytest.mark.slow

PROCESSES = 8
COST = Decimal("0.5")
SPAWN = multiprocessing.get_context("spawn")


Job = tuple[Callable[..., Outcome], tuple[Any, ...]]


@pytest.fixture(scope="module")
def racers() -> Iterator[Pool]:
    """PROCESSES spawned OS processes, started once for every race of this module."""
    with SPAWN.Pool(PROCESSES, initializer=init, initargs=(SPAWN.Barrier(PROCESSES),)) as pool:
        yield pool


def _race(racers: Pool, jobs: list[Job]) -> list[Outcome]:
    """Run the jobs, one per process, released together; collect their outcomes."""
    assert len(jobs) == PROCESSES  # the barrier waits for exactly that many
    pending = [racers.apply_async(target, (*args, i)) for i, (target, args) in enumerate(jobs)]
    outcomes = [p.get(timeout=300) for p in pending]
    assert len({o.pid for o in outcomes}) == PROCESSES  # really in parallel processes
    assert [o.errors for o in outcomes] == [[] for _ in outcomes]  # e.g. "database is locked"
    return outcomes


def _now() -> datetime:
    return datetime.now(UTC)


def _charged_by_consumption(pool: CreditPool, org_id: str) -> dict[int, int]:
    sums: dict[int, int] = defaultdict(int)
    for cid, _, units in allocation_rows(pool, org_id):
        sums[cid] += units
    return sums


def _count(pool: CreditPool, table: Any, org_id: str) -> int:
    query = select(func.count()).select_from(table).where(table.c.org_id == org_id)
    with pool.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_processes_consuming_from_one_org_never_overspend(db_url: str, racers: Pool) -> None:
    attempts = 40  # 8 x 40 = 320 tries for 200 affordable uses
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", "30.3", expires_at=_now() + timedelta(days=1))
        pool.grant("acme", "20.2", expires_at=_now() + timedelta(days=2))
        pool.grant("acme", "49.75")  # 100.25 in all: 200 uses and 0.25 that is never enough
        outcomes = _race(racers, [(consume_many, (db_url, ["acme"], attempts))] * PROCESSES)
        charged = [c for o in outcomes for c in o.charged]
        refused = [r for o in outcomes for r in o.refused]
        assert len(charged) == 200
        assert len(refused) == PROCESSES * attempts - 200
        assert all(left < COST for left in refused)  # refused only when truly short
        assert sum(cost for _, _, cost in charged) == Decimal("100")
        assert len({cid for _, cid, _ in charged}) == 200
        balance = pool.balance("acme")
        assert (balance.left, balance.used) == (Decimal("0.25"), Decimal("100"))
        # Refusals were whole: no consumption or allocation rows beyond the charged ones.
        assert _count(pool, consumptions, "acme") == 200
        sums = _charged_by_consumption(pool, "acme")
        assert sorted(sums) == sorted(cid for _, cid, _ in charged)
        assert set(sums.values()) == {5000}
        assert all(g.remaining >= 0 for g in pool.grants("acme"))
        ledger = pool.ledger("acme")
        assert [e.action for e in ledger].count("consumption") == 200
        assert ledger[-1].total_after == Decimal("0.25")
        assert pool.verify() == []


def test_refunds_racing_consumptions_keep_every_credit_accounted_for(
    db_url: str, racers: Pool
) -> None:
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", "20")
        pool.grant("acme", "20.25", expires_at=_now() + timedelta(days=1))
        made = [pool.consume("acme", "report", user_id="u-0") for _ in range(60)]
        ids = [c.id for c in made if c.id is not None]
        # Four refunders: every consumption is refunded by two of them, in opposite orders.
        halves = [ids[:30], ids[30:]]
        jobs: list[Job] = [
            (refund_many, (db_url, "acme", halves[0])),
            (refund_many, (db_url, "acme", halves[0][::-1])),
            (refund_many, (db_url, "acme", halves[1])),
            (refund_many, (db_url, "acme", halves[1][::-1])),
        ]
        jobs += [(consume_many, (db_url, ["acme"], 25))] * 4
        outcomes = _race(racers, jobs)
        results: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for o in outcomes:
            for cid, result in o.refunds:
                results[cid].append(result)
        assert sorted(results) == sorted(ids)
        for cid, pair in results.items():
            assert len(pair) == 2
            assert pair[0] == pair[1], cid  # the second refund returned the first result
            assert (pair[0]["restored"], pair[0]["lost"]) == (COST, 0)
        charged = [c for o in outcomes for c in o.charged]
        paid = pool.consumptions("acme", status="paid", limit=1000)
        assert sorted(c.id for c in paid if c.id is not None) == sorted(
            cid for _, cid, _ in charged
        )
        assert len(pool.consumptions("acme", status="refunded", limit=1000)) == 60
        balance = pool.balance("acme")
        assert balance.left == Decimal("40.25") - COST * len(charged)
        assert balance.used == COST * len(charged)
        assert balance.left >= 0
        assert pool.verify() == []


def test_processes_consuming_in_different_orgs_do_not_disturb_each_other(
    db_url: str, racers: Pool
) -> None:
    orgs = [f"org-{i}" for i in range(PROCESSES)]
    with CreditPool.open(db_url) as pool:
        for org_id in orgs:
            pool.create_org(org_id)
            pool.grant(org_id, "10.25")  # 20 uses each
        # Each process works in its own org, and in its neighbour's: two writers per org.
        jobs: list[Job] = [
            (consume_many, (db_url, [orgs[i], orgs[(i + 1) % PROCESSES]], 30))
            for i in range(PROCESSES)
        ]
        outcomes = _race(racers, jobs)
        per_org: dict[str, int] = defaultdict(int)
        for o in outcomes:
            for org_id, _, _ in o.charged:
                per_org[org_id] += 1
        assert per_org == dict.fromkeys(orgs, 20)
        assert sum(len(o.refused) for o in outcomes) == PROCESSES * 30 - PROCESSES * 20
        for org_id in orgs:
            assert pool.balance(org_id).left == Decimal("0.25")
            assert _count(pool, consumptions, org_id) == 20
            assert _count(pool, allocations, org_id) == 20
            assert [e.seq for e in pool.ledger(org_id)] == list(range(1, 22))
        assert pool.verify() == []
