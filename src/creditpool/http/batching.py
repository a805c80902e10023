"""Group commit for a hot organization's concurrent consumptions, in the event loop.

A row lock per request caps one organization at one transaction at a time: every request
pays for a lock, a commit (an fsync on PostgreSQL) and its round trips alone. Here the
requests for one organization that arrive while its transaction is running wait in a queue;
the next transaction takes all of them (up to ``BATCH_SIZE_MAX``): one lock, one commit,
each request still all-or-nothing (a refusal writes nothing for that request and does not
disturb the others) and answered with its own result.

The queue lives in the event loop: a request that waits is a future, not a thread parked
on a lock, and a batch costs ONE hand-off to a database thread whatever its size. A
request that finds its organization idle runs at once (a batch of one, no added latency);
what queued meanwhile is drained by a task of the batcher, batch after batch, until the
queue is empty. The transactions run on the batcher's own threads (``threads``: more than
the database pool's connections would only wait for one), through
``loop.run_in_executor`` (no capacity limiter or cancel scope per call, as anyio's
``to_thread`` has).

A request cancelled while its batch runs (its client went away) changes nothing here: the
batch's transaction runs to its end on its thread and the other requests get their
answers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from creditpool.commands import Consume
from creditpool.core.errors import CreditPoolError
from creditpool.pool import BatchOutcome, CreditPool

BATCH_SIZE_MAX = 64
THREADS = 16  # the PostgreSQL pool's ceiling per process (storage.engine) plus one

_Result = BatchOutcome | BaseException


class ConsumeBatcher:
    def __init__(
        self, pool: CreditPool, batch_size_max: int = BATCH_SIZE_MAX, threads: int = THREADS
    ) -> None:
        self.pool = pool
        self.batch_size_max = batch_size_max
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="creditpool-consume")
        self._queues: dict[str, deque[tuple[Consume, asyncio.Future[_Result]]]] = {}
        self._leading: set[str] = set()
        self._drains: set[asyncio.Task[None]] = set()

    async def consume(self, org_id: str, call: Consume) -> BatchOutcome:
        """The consumption's outcome (``replayed`` when its key was known)."""
        if org_id in self._leading:  # a transaction of this organization is running
            waiting: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
            self._queues.setdefault(org_id, deque()).append((call, waiting))
            result = await waiting
        else:
            self._leading.add(org_id)
            try:
                (result,) = await self._run(org_id, [call])
            finally:
                self._hand_over(org_id)
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def _hand_over(self, org_id: str) -> None:
        if self._queues.get(org_id):
            task = asyncio.get_running_loop().create_task(self._drain(org_id))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        else:
            self._leading.discard(org_id)
            self._queues.pop(org_id, None)

    async def _drain(self, org_id: str) -> None:
        queue = self._queues[org_id]
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), self.batch_size_max))]
                results = await self._run(org_id, [call for call, _ in batch])
                for (_, waiting), result in zip(batch, results, strict=True):
                    if not waiting.done():
                        waiting.set_result(result)
        finally:
            while queue:  # only when the loop is shutting down
                _, waiting = queue.popleft()
                if not waiting.done():
                    waiting.set_result(CreditPoolError("the server is shutting down"))
            self._leading.discard(org_id)
            self._queues.pop(org_id, None)

    async def _run(self, org_id: str, calls: list[Consume]) -> list[_Result]:
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(
                self._executor, self.pool.consume_batch, org_id, calls
            )
        except CreditPoolError as error:  # e.g. the organization does not exist
            return [error] * len(calls)
        except Exception as error:
            if len(calls) == 1:
                return [error]
            # One request must not sink the others: retry each on its own.
            results: list[_Result] = []
            for call in calls:
                results.extend(await self._run(org_id, [call]))
            return results
        return list(outcomes)
