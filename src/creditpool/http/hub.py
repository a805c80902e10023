"""One hub per server process: it learns that an organization's ledger grew, reads the new
entries ONCE, and hands them to every stream of that organization in this process.

How it learns: on PostgreSQL one LISTEN connection per process (``OrgWriter.finish``
sends ``pg_notify`` inside the writing transaction, so only committed changes are
announced, to every process); on SQLite (one process) the pool's after-commit listeners.
A notification is only a hint: the ledger's seq is the truth. Each stream asks for entries
after the last seq it delivered and repairs any gap from the ledger, and the hub re-reads
every watched organization's last seq periodically (``recheck_s``), so a dropped
notification or a dropped LISTEN connection delays an event, never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from creditpool.http import feed
from creditpool.http.feed import Batch
from creditpool.pool import CreditPool
from creditpool.repositories import events as repository

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # entries read at once (a long catch-up is read in pages)
QUEUE_SIZE_MAX = 64  # batches a slow stream may fall behind before it repairs from the ledger
RECHECK_ORGS_MAX = 500  # organizations per periodic re-check query
LISTEN_RETRY_S = 1.0
RETRY_MS = 2000  # how long EventSource waits before reconnecting


@dataclass(eq=False)
class Subscription:
    org_id: str
    queue: asyncio.Queue[Batch | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE_MAX)
    )
    stale: bool = False  # a batch was dropped: repair from the ledger

    def deliver(self, batch: Batch | None) -> None:
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.stale = True  # the stream is awake (its queue is full) and will repair


@dataclass(eq=False)
class _Org:
    subs: set[Subscription] = field(default_factory=set)
    cursor: int | None = None  # newest seq read and handed out (None: being set up)
    wanted: int = 0  # newest seq announced
    fetching: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(
        self,
        pool: CreditPool,
        *,
        heartbeat_s: float,
        lifetime_s: float,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.pool = pool
        self.db = pool.db
        self.heartbeat_s = heartbeat_s
        self.lifetime_s = lifetime_s
        # Missed announcements are looked for as often as heartbeats are sent.
        self.recheck_s = heartbeat_s
        self.page_size = page_size
        self._orgs: dict[str, _Org] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._undo: list[Callable[[], None]] = []
        self.listening = asyncio.Event()  # announcements reach this hub (LISTEN is up)

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.db.dialect == "postgresql":
            self._spawn(self._listen())
        else:
            self._undo.append(self.pool.on_commit(self._announce_threadsafe))
            self.listening.set()
        self._spawn(self._recheck_forever())
        self._end_streams_on_exit_signal()

    async def stop(self) -> None:
        self.end_streams()
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def end_streams(self) -> None:
        """Every open stream ends (the server is stopping; clients reconnect elsewhere)."""
        self._closing = True
        for state in self._orgs.values():
            for sub in state.subs:
                sub.deliver(None)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one stream ---------------------------------------------------------------------

    async def stream(self, org_id: str, after: int) -> AsyncIterator[str]:
        """The SSE text of one stream: entries with seq > ``after`` in ledger order,
        heartbeats while quiet, ending after ``lifetime_s``."""
        loop = asyncio.get_running_loop()
        heartbeat_s = self.heartbeat_s
        deadline = loop.time() + self.lifetime_s
        yield f"retry: {RETRY_MS}\n\n"
        sub, cursor = await self._subscribe(org_id)
        try:
            last = after
            if last < cursor:  # the hub already handed out entries this stream has not seen
                async for chunk, reached in self._read_from_ledger(org_id, last):
                    yield chunk
                    last = reached
            while not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(min(heartbeat_s, remaining)):
                        batch = await sub.queue.get()
                except TimeoutError:
                    if deadline - loop.time() > 0:
                        yield ": heartbeat\n\n"
                    continue
                if batch is None:
                    break
                if sub.stale or batch.first_seq > last + 1:
                    sub.stale = False  # a batch was dropped or missed: the ledger has it
                    async for chunk, reached in self._read_from_ledger(org_id, last):
                        yield chunk
                        last = reached
                chunk = batch.frames_after(last)
                if chunk:
                    yield chunk
                    last = batch.last_seq
            # The server is stopping: reconnect after a spread-out while, so that the
            # streams of a stopped process do not all land on the others at once.
            yield f"retry: {random.randint(RETRY_MS, 3 * RETRY_MS)}\n\n"
        finally:
            self._unsubscribe(sub)

    async def _read_from_ledger(self, org_id: str, after: int) -> AsyncIterator[tuple[str, int]]:
        """Catch up from the ledger (in pages): each page's events and the seq reached."""
        while True:
            batch = await asyncio.to_thread(feed.read_after, self.db, org_id, after, self.page_size)
            if batch is None:
                return
            after = batch.last_seq
            yield batch.frames_after(-1), after
            if batch.complete:
                return

    async def _subscribe(self, org_id: str) -> tuple[Subscription, int]:
        """Register a stream; returns it and the newest seq the hub has handed out for the
        organization (everything after it reaches the stream through its queue)."""
        while True:
            state = self._orgs.get(org_id)
            if state is None:
                state = self._orgs[org_id] = _Org()
                try:
                    seqs = await asyncio.to_thread(feed.ledger_seqs, self.db, [org_id])
                    state.cursor = seqs.get(org_id, 0)
                finally:
                    state.ready.set()
                    if state.cursor is None and self._orgs.get(org_id) is state:
                        del self._orgs[org_id]
                self._fetch_if_behind(org_id, state)
            else:
                await state.ready.wait()
                if state.cursor is None or self._orgs.get(org_id) is not state:
                    continue  # its set-up failed, or it was dropped meanwhile: again
            sub = Subscription(org_id)
            state.subs.add(sub)
            return sub, state.cursor

    def _unsubscribe(self, sub: Subscription) -> None:
        state = self._orgs.get(sub.org_id)
        if state is None:
            return
        state.subs.discard(sub)
        if not state.subs:
            del self._orgs[sub.org_id]

    # -- announcements and fan-out ------------------------------------------------------

    def announce(self, org_id: str, seq: int) -> None:
        """``org_id``'s ledger reaches ``seq`` (committed). Runs on the event loop."""
        state = self._orgs.get(org_id)
        if state is None:
            return  # nobody here watches it
        state.wanted = max(state.wanted, seq)
        self._fetch_if_behind(org_id, state)

    def _announce_threadsafe(self, org_id: str, seq: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self.announce, org_id, seq)

    def _fetch_if_behind(self, org_id: str, state: _Org) -> None:
        if state.cursor is not None and state.wanted > state.cursor and not state.fetching:
            state.fetching = True
            self._spawn(self._fetch(org_id, state))

    async def _fetch(self, org_id: str, state: _Org) -> None:
        """Read the new entries once and hand them to every stream of the organization.
        Announcements arriving meanwhile are served by the next round (coalesced)."""
        try:
            while state.subs and state.cursor is not None and state.wanted > state.cursor:
                try:
                    batch = await asyncio.to_thread(
                        feed.read_after, self.db, org_id, state.cursor, self.page_size
                    )
                except Exception:  # the database is away: the periodic re-check retries
                    log.exception("reading the ledger of %s failed", org_id)
                    return
                if batch is None:
                    state.wanted = state.cursor
                    return
                state.cursor = batch.last_seq
                state.wanted = max(state.wanted, state.cursor)
                for sub in list(state.subs):
                    sub.deliver(batch)
        finally:
            state.fetching = False

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                await self.recheck()
            except Exception:
                log.exception("re-checking the watched organizations failed")

    async def recheck(self) -> None:
        """Compare every watched organization's last seq with what was handed out."""
        org_ids = [o for o, state in self._orgs.items() if state.cursor is not None]
        for i in range(0, len(org_ids), RECHECK_ORGS_MAX):
            chunk = org_ids[i : i + RECHECK_ORGS_MAX]
            seqs = await asyncio.to_thread(feed.ledger_seqs, self.db, chunk)
            for org_id, seq in seqs.items():
                self.announce(org_id, seq)

    # -- PostgreSQL: one LISTEN connection per process -----------------------------------

    async def _listen(self) -> None:
        import psycopg  # here: only PostgreSQL listens, and SQLite needs no postgres extra

        url = self.db.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {repository.CHANNEL}")
                    self.listening.set()
                    await self.recheck()  # what was announced while not listening
                    await self._receive(conn)
            except (psycopg.Error, OSError) as error:
                self.listening.clear()
                log.warning("LISTEN connection lost (%s); reconnecting", error)
            await asyncio.sleep(LISTEN_RETRY_S)

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for note in conn.notifies(timeout=self.recheck_s):
                parsed = repository.parse_announcement(note.payload)
                if parsed is not None:
                    self.announce(*parsed)
            await conn.execute("SELECT 1")  # quiet for a while: is the connection alive?

    # -- ending streams when the server stops ---------------------------------------------

    def _end_streams_on_exit_signal(self) -> None:
        """uvicorn waits for open responses before it stops, and a stream stays open for
        minutes: on SIGTERM/SIGINT end them first, then let the server's handler run."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue

            def handler(
                number: int,
                frame: FrameType | None,
                previous: Callable[[int, FrameType | None], Any] = previous,
            ) -> None:
                loop.call_soon_threadsafe(self.end_streams)
                previous(number, frame)

            signal.signal(signum, handler)
            self._undo.append(_restore(signum, handler, previous))


def _restore(
    signum: int, ours: Callable[..., Any], previous: Callable[..., Any]
) -> Callable[[], None]:
    def undo() -> None:
        if signal.getsignal(signum) is ours:
            signal.signal(signum, previous)

    return undo
