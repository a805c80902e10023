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
