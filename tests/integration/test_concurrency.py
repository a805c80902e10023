"""Real OS processes racing on one database: no overspend, no partial charge, no lost
update, on SQLite (one write lock) and PostgreSQL (the organization's row lock); holds,
settles, releases and holds running out included."""

from __future__ import annotations

import multiprocessing
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.pool import Pool
from typing import Any

import pytest
from sqlalchemy import func, select

from creditpool import CreditPool, HoldStatus
from creditpool.storage.tables import allocations, consumptions
from tests.integration.dbstate import allocation_rows
from tests.integration.workers import Outcome, consume_many, hold_many, init, refund_many

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
    with pool.db.engine.connect() as conn:
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


def test_holds_settles_releases_and_consumptions_racing_never_overspend(
    db_url: str, racers: Pool
) -> None:
    """Six processes hold, then in turn settle below the hold, settle above it (the excess
    may be refused: the hold is then released), release it, or leave it (one second) to run
    out; two processes consume; all on one organization that cannot pay for everything."""
    amount, attempts = Decimal(1), 15
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", "30", expires_at=_now() + timedelta(days=1))
        pool.grant("acme", "30")
        jobs: list[Job] = [(hold_many, (db_url, "acme", amount, attempts))] * 6
        jobs += [(consume_many, (db_url, ["acme"], 25))] * 2
        outcomes = _race(racers, jobs)
        held = {hid: a for o in outcomes for hid, a in o.held}
        settled = {hid: (cid, cost) for o in outcomes for hid, cid, cost in o.settled}
        released = {hid: r for o in outcomes for hid, r in o.released}
        abandoned = [hid for o in outcomes for hid in o.abandoned]
        charged = [c for o in outcomes for c in o.charged]
        assert sum(len(o.held) + len(o.hold_refused) for o in outcomes) == 6 * attempts
        assert held, "no hold was made"
        assert set(held.values()) == {amount}
        # Every hold ended one way, and each way happened.
        assert sorted(held) == sorted([*settled, *released, *abandoned])
        assert len(held) == len(settled) + len(released) + len(abandoned)
        assert min(len(settled), len(released), len(abandoned)) > 0
        assert {cost for _, cost in settled.values()} <= {amount / 2, amount * 3 / 2}
        # Refusals only when truly short: a hold when Left < its amount, a settle when Left
        # could not pay its excess over what was held.
        assert all(left < a for o in outcomes for a, left in o.hold_refused)
        for o in outcomes:
            for _, cost, on_hold, left in o.settle_refused:
                assert on_hold == amount
                assert left < cost - on_hold
        assert all(left < COST for o in outcomes for left in o.refused)

        # The abandoned holds run out (one second each) and are written at their instants.
        last = max((pool.hold_of("acme", hid).expires_at for hid in abandoned), default=_now())
        time.sleep(max(0.0, (last - _now()).total_seconds()) + 0.05)
        pool.sweep()
        holds = {h.id: h for h in pool.holds("acme", limit=500)}
        assert sorted(holds) == sorted(held)
        assert pool.holds("acme", status="open", limit=500) == []
        for hid, (cid, cost) in settled.items():
            h = holds[hid]
            assert (h.status, h.consumption_id, h.lost) == (HoldStatus.SETTLED, cid, Decimal(0))
            assert h.released == max(Decimal(0), amount - cost)
            c = pool.consumption("acme", cid)
            assert (c.hold_id, c.cost, c.status) == (hid, cost, "paid")
        for hid in released:
            assert (holds[hid].status, holds[hid].released, holds[hid].lost) == (
                HoldStatus.RELEASED,
                amount,
                Decimal(0),
            )
        for hid in abandoned:
            assert (holds[hid].status, holds[hid].released, holds[hid].lost) == (
                HoldStatus.EXPIRED,
                amount,
                Decimal(0),
            )
        for h in holds.values():
            assert sum(a.amount for a in h.allocations) == h.amount

        # Nothing overspent, nothing negative, every credit accounted for.
        paid = pool.consumptions("acme", status="paid", limit=500)
        assert sorted(c.id for c in paid if c.id is not None) == sorted(
            [*(cid for _, cid, _ in charged), *(cid for cid, _ in settled.values())]
        )
        assert _count(pool, consumptions, "acme") == len(paid)
        spent = sum((c.cost for c in paid), Decimal(0))
        assert spent <= 60
        balance = pool.balance("acme")
        assert (balance.total, balance.held, balance.used) == (Decimal(60), Decimal(0), spent)
        assert balance.left == 60 - spent
        assert all(g.remaining >= 0 and g.held == 0 for g in pool.grants("acme"))
        ledger = pool.ledger("acme")
        previous = Decimal(0)
        for e in ledger:
            assert e.total_before == previous
            assert e.total_after >= 0
            previous = e.total_after
        assert previous == balance.left
        actions = [e.action for e in ledger]
        assert actions.count("hold") == len(held)
        expiries = {e.hold_id: e for e in ledger if e.action == "hold_expiry" and e.hold_id}
        assert sorted(expiries) == sorted(abandoned)
        for hid, e in expiries.items():
            assert (e.at, e.total_after - e.total_before) == (holds[hid].expires_at, amount)
        assert pool.verify() == []
