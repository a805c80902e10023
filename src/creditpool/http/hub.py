"""One hub per server process: it learns that an organization's ledger grew, reads the new
entries ONCE, and hands them to every stream of that organization in this process.

How it learns: on PostgreSQL one LISTEN connection per process (``OrgWriter.finish``
sends ``pg_notify`` inside the writing transaction, so only committed changes are
announced, to every process); on SQLite (one process) the pool's after-commit listeners.
A notification is only a hint: the ledger's seq is the truth. Each stream asks for entries
after the last seq it delivered and repairs any gap from the ledger, and the hub re-reads
every watched organization's last seq periodically (``recheck_s``), so a dropped
notification or a dropped LISTEN connection delays an event, never loses it.

A process with no stream open stops listening after ``LISTEN_IDLE_S``: its LISTEN connection
would otherwise take the notification of every commit of every process for nothing (2-6 % of
a worker's GIL samples in bench/http_api.py). Its next stream listens again before it
reads where it begins, so nothing committed after that read goes unannounced.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
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
LISTEN_IDLE_S = 10.0  # with no stream open this long, stop listening (see the module)
LISTEN_WAIT_S = 5.0  # a new stream waits this long at most for LISTEN (else: re-checks)
RETRY_MS = 2000  # how long EventSource waits before reconnecting
READERS_MAX = 1  # concurrent read rounds per process (each covers many organizations)
# Back-to-back rounds begin at least this far apart: under load a round then covers the
# organizations and entries of this while, instead of a round per commit or two (each
# round's balances, frames and writes cost CPU the consumptions need). A round after a
# quiet spell starts at once; only a busy hub waits, at most this long.
ROUND_SPACING_S = 0.02
TICK_S_MAX = 1.0  # how often heartbeats and lifetimes are looked at (at most)

HEARTBEAT = b": heartbeat\n\n"
_RETRY = f"retry: {RETRY_MS}\n\n".encode()


class _Signal(enum.Enum):
    HEARTBEAT = "heartbeat"  # quiet for heartbeat_s: send a comment
    EXPIRED = "expired"  # the stream's lifetime is over
    CLOSING = "closing"  # the server is stopping


Item = Batch | _Signal


@dataclass(eq=False)
class Subscription:
    """One stream's mailbox. The hub appends and wakes the stream; the stream takes
    everything queued at once (one write however many batches arrived while it slept)."""

    org_id: str
    deadline: float  # loop time at which the stream's lifetime ends
    last_write: float  # loop time of its last write (heartbeats are due after a quiet while)
    items: collections.deque[Item] = field(default_factory=collections.deque)
    waiter: asyncio.Future[None] | None = None
    stale: bool = False  # a batch was dropped: repair from the ledger

    def deliver(self, item: Item) -> None:
        if isinstance(item, Batch) and len(self.items) >= QUEUE_SIZE_MAX:
            self.stale = True  # the stream is awake (its queue is full) and will repair
            return
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> list[Item]:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        items = list(self.items)
        self.items.clear()
        return items


@dataclass(eq=False)
class _Org:
    subs: set[Subscription] = field(default_factory=set)
    cursor: int | None = None  # newest seq read and handed out (None: being set up)
    wanted: int = 0  # newest seq announced
    reading: bool = False  # a reader is reading it (one at a time per organization)
    reading_for: int = 0  # what was announced when that read began
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
        # Heartbeats and lifetimes are looked at by one timer for all streams (not a timer
        # per stream re-armed at every event), a few times per heartbeat period.
        self.tick_s = min(TICK_S_MAX, heartbeat_s / 4, lifetime_s / 4)
        self.page_size = page_size
        self._orgs: dict[str, _Org] = {}
        self._behind: dict[str, _Org] = {}  # organizations the next read round reads
        self._readers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._undo: list[Callable[[], None]] = []
        self.listening = asyncio.Event()  # announcements reach this hub (LISTEN is up)
        self._listener: asyncio.Task[None] | None = None  # the LISTEN connection's task
        self._idle_since = 0.0  # when the last stream ended (or the hub started)

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle_since = self._loop.time()
        if self.db.dialect == "postgresql":
            self._listener = self._spawn(self._listen())
        else:
            self._undo.append(self.pool.on_commit(self._announce_threadsafe))
            self.listening.set()
        self._spawn(self._recheck_forever())
        self._spawn(self._tick_forever())
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
                sub.deliver(_Signal.CLOSING)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- one stream ---------------------------------------------------------------------

    async def stream(self, org_id: str, after: int) -> AsyncIterator[bytes]:
        """The SSE bytes of one stream: entries with seq > ``after`` in ledger order,
        heartbeats while quiet, ending after ``lifetime_s``."""
        loop = asyncio.get_running_loop()
        yield _RETRY
        sub, cursor = await self._subscribe(org_id, loop.time())
        try:
            last = after
            if last < cursor:  # the hub already handed out entries this stream has not seen
                async for chunk, reached in self._read_from_ledger(org_id, last):
                    yield chunk
                    last = reached
            while not self._closing:
                chunks: list[bytes] = []
                heartbeat = ended = False
                for item in await sub.take():
                    if isinstance(item, Batch):
                        if sub.stale or item.first_seq > last + 1:
                            sub.stale = False  # a batch was dropped or missed: the ledger has it
                            async for chunk, reached in self._read_from_ledger(org_id, last):
                                chunks.append(chunk)
                                last = reached
                        chunk = item.frames_after(last)
                        if chunk:
                            chunks.append(chunk)
                            last = item.last_seq
                    elif item is _Signal.HEARTBEAT:
                        heartbeat = True
                    else:
                        ended = True
                        break
                if chunks:
                    yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    sub.last_write = loop.time()
                elif heartbeat and not ended:
                    yield HEARTBEAT
                    sub.last_write = loop.time()
                if ended and not self._closing:
                    return  # its lifetime is over
            # The server is stopping: reconnect after a spread-out while, so that the
            # streams of a stopped process do not all land on the others at once.
            yield f"retry: {random.randint(RETRY_MS, 3 * RETRY_MS)}\n\n".encode()
        finally:
            self._unsubscribe(sub)

    async def _read_from_ledger(self, org_id: str, after: int) -> AsyncIterator[tuple[bytes, int]]:
        """Catch up from the ledger (in pages): each page's events and the seq reached."""
        while True:
            batch = await asyncio.to_thread(feed.read_after, self.db, org_id, after, self.page_size)
            if batch is None:
                return
            after = batch.last_seq
            yield batch.chunk, after
            if batch.complete:
                return

    async def _subscribe(self, org_id: str, now: float) -> tuple[Subscription, int]:
        """Register a stream; returns it and the newest seq the hub has handed out for the
        organization (everything after it reaches the stream through its queue)."""
        while True:
            state = self._orgs.get(org_id)
            if state is None:
                state = self._orgs[org_id] = _Org()
                try:
                    await self._listening_before_reading()
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
            sub = Subscription(org_id, deadline=now + self.lifetime_s, last_write=now)
            if self._closing:
                sub.deliver(_Signal.CLOSING)
            state.subs.add(sub)
            return sub, state.cursor

    def _unsubscribe(self, sub: Subscription) -> None:
        state = self._orgs.get(sub.org_id)
        if state is None:
            return
        state.subs.discard(sub)
        if not state.subs:
            del self._orgs[sub.org_id]
            self._behind.pop(sub.org_id, None)
            if not self._orgs and self._loop is not None:
                self._idle_since = self._loop.time()

    async def _tick_forever(self) -> None:
        """Heartbeats for the streams quiet for ``heartbeat_s`` (each stream's own phase:
        they do not all fire at once), the end for those past their lifetime."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            quiet_since = now - self.heartbeat_s
            for state in self._orgs.values():
                for sub in state.subs:
                    if now >= sub.deadline:
                        sub.deliver(_Signal.EXPIRED)
                    elif sub.last_write <= quiet_since and not sub.items:
                        sub.last_write = now  # asked once per period
                        sub.deliver(_Signal.HEARTBEAT)

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
        if state.cursor is not None and state.wanted > state.cursor:
            self._behind[org_id] = state
            if self._readers < READERS_MAX:
                self._readers += 1
                self._spawn(self._read_rounds())

    async def _read_rounds(self) -> None:
        """Read the new entries once and hand them to every stream of the organization.
        Each round reads every organization announced since the previous round began (and
        not being read by another reader), in one thread hand-off and one transaction;
        announcements arriving meanwhile are served by the next round (coalesced)."""
        loop = asyncio.get_running_loop()
        began = None
        try:
            while True:
                if began is not None:  # a round follows another: not sooner than spaced
                    await asyncio.sleep(max(0.0, began + ROUND_SPACING_S - loop.time()))
                began = loop.time()
                cursors: dict[str, int] = {}
                states: dict[str, _Org] = {}
                for org_id, state in list(self._behind.items()):
                    if state.reading:
                        continue  # its reader takes it again when done
                    del self._behind[org_id]
                    if state.subs and state.cursor is not None and state.wanted > state.cursor:
                        cursors[org_id] = state.cursor
                        states[org_id] = state
                        state.reading = True
                        state.reading_for = state.wanted
                if not cursors:
                    return
                try:
                    batches = await asyncio.to_thread(
                        feed.read_many, self.db, cursors, self.page_size
                    )
                except Exception:  # the database is away: the periodic re-check retries
                    log.exception("reading the ledgers of %d organizations failed", len(cursors))
                    batches = None
                for org_id, state in states.items():
                    state.reading = False
                    if batches is None:
                        continue
                    batch = batches.get(org_id)
                    if batch is None:
                        if state.wanted == state.reading_for:
                            state.wanted = cursors[org_id]  # announced, but nothing new
                        continue
                    state.cursor = batch.last_seq
                    state.wanted = max(state.wanted, batch.last_seq)
                    for sub in state.subs:
                        sub.deliver(batch)
                    if state.wanted > batch.last_seq and self._orgs.get(org_id) is state:
                        self._behind[org_id] = state  # a longer catch-up, or newer news
        finally:
            self._readers -= 1

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

    # -- PostgreSQL: one LISTEN connection per process while streams are open -------------

    async def _listening_before_reading(self) -> None:
        """Listen (again) before a new organization's stream reads where it starts. If
        LISTEN does not come up in time, go on: the periodic re-check then delivers."""
        if self.db.dialect != "postgresql":
            return
        if self._listener is None:
            self._listener = self._spawn(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), LISTEN_WAIT_S)

    def _stop_listening_if_idle(self) -> bool:
        """No stream open for ``LISTEN_IDLE_S``: stop (decided here, synchronously, so that
        a stream arriving from now on starts a new LISTEN connection)."""
        loop = self._loop
        if self._orgs or loop is None or loop.time() - self._idle_since < LISTEN_IDLE_S:
            return False
        self.listening.clear()
        self._listener = None
        return True

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
                    return  # idle: the connection closes; a new stream listens again
            except (psycopg.Error, OSError) as error:
                self.listening.clear()
                log.warning("LISTEN connection lost (%s); reconnecting", error)
            await asyncio.sleep(LISTEN_RETRY_S)

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Announce what is notified until the hub has been without streams for a while."""
        while True:
            async for note in conn.notifies(timeout=min(self.recheck_s, LISTEN_IDLE_S / 2)):
                parsed = repository.parse_announcement(note.payload)
                if parsed is not None:
                    self.announce(*parsed)
            if self._stop_listening_if_idle():
                return
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
