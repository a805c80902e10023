"""Code run in separate OS processes (``spawn``) by the concurrency tests.

Kept apart from the test module so that a child imports only the library. The processes
are started once (a ``spawn`` pool) with a shared barrier: every job opens its own
CreditPool on the system clock, waits at the barrier so that all jobs of a race start
together (which also puts each job in a process of its own), and returns its outcome
(never raises).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.synchronize import Barrier
from typing import Any

from creditpool import CreditPool, InsufficientCredits

_start: Barrier | None = None
BARRIER_TIMEOUT_S = 120


def init(barrier: Barrier) -> None:
    """Pool initializer: a barrier can only reach a child when the child is created."""
    global _start
    _start = barrier


def _wait() -> None:
    assert _start is not None, "workers.init was not run in this process"
    _start.wait(timeout=BARRIER_TIMEOUT_S)


@dataclass
class Outcome:
    worker: int
    pid: int = field(default_factory=os.getpid)
    charged: list[tuple[str, int, Decimal]] = field(default_factory=list)  # org, id, cost
    refused: list[Decimal] = field(default_factory=list)  # the Left each refusal reported
    refunds: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # Holds: (hold id, amount) made; (amount, Left reported) refused;
    # (hold id, consumption id, cost) settled; (hold id, cost, held, Left) settles refused
    # (each then released); (hold id, released) released; hold ids left to run out.
    held: list[tuple[int, Decimal]] = field(default_factory=list)
    hold_refused: list[tuple[Decimal, Decimal]] = field(default_factory=list)
    settled: list[tuple[int, int, Decimal]] = field(default_factory=list)
    settle_refused: list[tuple[int, Decimal, Decimal, Decimal]] = field(default_factory=list)
    released: list[tuple[int, Decimal]] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # anything unexpected, e.g. "locked"


def consume_many(url: str, org_ids: list[str], attempts: int, worker: int) -> Outcome:
    outcome = Outcome(worker)
    try:
        with CreditPool.open(url) as pool:
            _wait()
            for i in range(attempts):
                org_id = org_ids[i % len(org_ids)]
                try:
                    c = pool.consume(org_id, "report", user_id=f"u-{worker}")
                    assert c.id is not None
                    outcome.charged.append((org_id, c.id, c.cost))
                except InsufficientCredits as refused:
                    outcome.refused.append(refused.extra["left"])
    except Exception as error:  # reported, then asserted on by the test
        outcome.errors.append(repr(error))
    return outcome


def refund_many(url: str, org_id: str, consumption_ids: list[int], worker: int) -> Outcome:
    outcome = Outcome(worker)
    try:
        with CreditPool.open(url) as pool:
            _wait()
            for cid in consumption_ids:
                r = pool.refund(org_id, cid, reason=f"worker {worker}")
                outcome.refunds.append((cid, r.model_dump()))
    except Exception as error:
        outcome.errors.append(repr(error))
    return outcome


HOLD_MODES = ("below", "above", "release", "abandon")


def hold_many(url: str, org_id: str, amount: Decimal, attempts: int, worker: int) -> Outcome:
    """Hold ``amount`` ``attempts`` times, each then, in turn (from the worker's own place in
    HOLD_MODES, so that every mode runs early whichever process gets ahead): settled below
    it (half), settled above it (one and a half: the excess comes from the other credits,
    which may refuse it; the hold is then released), released, or abandoned (a one-second
    hold left to run out). Every call carries an idempotency key."""
    outcome = Outcome(worker)
    try:
        with CreditPool.open(url) as pool:
            _wait()
            for i in range(attempts):
                mode = HOLD_MODES[(worker + i) % len(HOLD_MODES)]
                key = f"w{worker}-{i}"
                ttl_s = 1 if mode == "abandon" else 600
                try:
                    h = pool.hold(
                        org_id, "topic_detection", user_id=f"u-{worker}", amount=amount,
                        ttl_s=ttl_s, idempotency_key=f"{key}-hold",
                    )  # fmt: skip
                except InsufficientCredits as refused:
                    outcome.hold_refused.append((amount, refused.extra["left"]))
                    continue
                outcome.held.append((h.id, h.amount))
                if mode == "abandon":
                    outcome.abandoned.append(h.id)
                    continue
                if mode == "release":
                    r = pool.release(org_id, h.id, idempotency_key=f"{key}-release")
                    outcome.released.append((h.id, r.released))
                    continue
                cost = amount / 2 if mode == "below" else amount * 3 / 2
                try:
                    c = pool.settle(org_id, h.id, cost=cost, idempotency_key=f"{key}-settle")
                except InsufficientCredits as refused:
                    extra = refused.extra
                    outcome.settle_refused.append(
                        (h.id, cost, extra.get("held", h.amount), extra["left"])
                    )
                    r = pool.release(org_id, h.id, idempotency_key=f"{key}-release")
                    outcome.released.append((h.id, r.released))
                    continue
                assert c.id is not None
                assert c.hold_id == h.id
                outcome.settled.append((h.id, c.id, c.cost))
    except Exception as error:  # reported, then asserted on by the test
        outcome.errors.append(repr(error))
    return outcome
