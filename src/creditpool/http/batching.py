"""Group commit for a hot organization's concurrent consumptions.

A row lock per request caps one organization at one transaction at a time: every request
pays for a lock, a commit (an fsync on PostgreSQL) and its round trips alone. Here the
requests for one organization that arrive while its transaction is running wait in a queue;
the next transaction takes all of them (up to ``BATCH_SIZE_MAX``): one lock, one commit,
each request still all-or-nothing (a refusal writes nothing for that request and does not
disturb the others) and answered with its own result.

There is no extra thread and no timer: the first waiting request leads. It runs batches
until its own request is done, then hands over to the next waiting request. An organization
without contention gets batches of one, with no added latency.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from creditpool.core.errors import CreditPoolError
from creditpool.pool import BatchOutcome, ConsumeCall, CreditPool

BATCH_SIZE_MAX = 64


@dataclass(eq=False)
class _Waiting:
    call: ConsumeCall
    outcome: BatchOutcome | None = None
    failure: BaseException | None = None
    done: bool = field(default=False)


class ConsumeBatcher:
    def __init__(self, pool: CreditPool, batch_size_max: int = BATCH_SIZE_MAX) -> None:
        self.pool = pool
        self.batch_size_max = batch_size_max
        self._cond = threading.Condition()
        self._queues: dict[str, deque[_Waiting]] = {}
        self._leading: set[str] = set()

    def consume(self, org_id: str, call: ConsumeCall) -> BatchOutcome:
        """The consumption's outcome (``replayed`` when its key was known)."""
        me = _Waiting(call)
        with self._cond:
            self._queues.setdefault(org_id, deque()).append(me)
            while not me.done and org_id in self._leading:
                self._cond.wait()
            if not me.done:
                self._leading.add(org_id)
        if not me.done:
            self._lead(org_id, me)
        if me.failure is not None:
            raise me.failure
        assert me.outcome is not None
        return me.outcome

    def _lead(self, org_id: str, me: _Waiting) -> None:
        try:
            while not me.done:
                with self._cond:
                    queue = self._queues[org_id]
                    batch = [queue.popleft() for _ in range(min(len(queue), self.batch_size_max))]
                self._run(org_id, batch)
                with self._cond:
                    for waiting in batch:
                        waiting.done = True
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._leading.discard(org_id)
                if not self._queues.get(org_id):
                    self._queues.pop(org_id, None)
                self._cond.notify_all()

    def _run(self, org_id: str, batch: list[_Waiting]) -> None:
        try:
            outcomes = self.pool.consume_batch(org_id, [w.call for w in batch])
        except CreditPoolError as error:  # e.g. the organization does not exist
            for waiting in batch:
                waiting.failure = error
            return
        except Exception as error:
            if len(batch) == 1:
                batch[0].failure = error
                return
            # One request must not sink the others: retry each on its own.
            for waiting in batch:
                self._run(org_id, [waiting])
            return
        for waiting, outcome in zip(batch, outcomes, strict=True):
            waiting.outcome = outcome
