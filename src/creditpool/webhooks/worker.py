"""The delivery worker: the outbox's events to the vendor's endpoints, at least once.

One loop per server process (and ``creditpool webhooks deliver`` to run one alone):

1. **fan out**: events not yet dispatched become one delivery per enabled endpoint that
   wants their type and existed when they were written (a new endpoint is not sent the
   backlog); the statement that finds them marks them dispatched (``FOR UPDATE SKIP
   LOCKED``: the workers of several processes split the events, none is fanned out twice);
2. **claim**, in the same transaction, the due deliveries, likewise skipping locked rows,
   leased by the statement that finds them (their next attempt moves past the lease, their
   attempt count goes up);
3. **send** each outside any transaction (a round's concurrently), signed, with a timeout,
   following no redirect;
4. **record** in one transaction the attempts answered within ``ROUND_WAIT_S``; a send
   still waiting (a slow receiver, up to the timeout) stays in flight and is recorded by a
   later round, so it holds up no other endpoint's deliveries. A 2xx is delivered; anything else
   is retried after the next delay of the schedule (with jitter), or failed when the
   schedule is spent. An endpoint failing with no success for ``webhook_disable_after_s``
   is disabled, with the reason. Every attempt is logged.

A round is two transactions of a few statements whatever its size (bench/RESULTS.md,
"Webhooks"), and under load rounds begin at most every ``ROUND_INTERVAL_S``, so that the
deliveries of many commits share one.

A worker that dies between 2 and 4 leaves its deliveries leased: they fall due again when
the lease ends, so an event may arrive twice (receivers deduplicate on ``webhook-id``) but
never not at all.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from creditpool.repositories import outbox
from creditpool.repositories import webhooks as repository
from creditpool.repositories.outbox import EventRow
from creditpool.repositories.webhooks import DeliveryRow, EndpointRow
from creditpool.settings import Settings
from creditpool.storage.uow import Database, Tx
from creditpool.webhooks import network, signing
from creditpool.webhooks.network import RefusedAddress
from creditpool.webhooks.secrets import SecretBox
from creditpool.webhooks.service import new_delivery

log = logging.getLogger(__name__)
FAN_OUT_BATCH = 500
# Rounds begin at most this often unless the previous one was full (see Deliverer.run).
ROUND_INTERVAL_S = 0.1
# How long a round waits for its sends' answers before it records those that came and goes
# on. A send still waiting (up to the timeout) stays in flight and is recorded by a later
# round, so a slow receiver holds up no other endpoint's deliveries.
ROUND_WAIT_S = 0.25
USER_AGENT = "creditpool-webhooks/1"
RESPONSE_EXCERPT = 1000
JITTER = 0.1
# Told of each recorded attempt (the server's metrics): ``delivered``, ``retrying`` or
# ``failed`` (no retry left), and how long the attempt took in seconds.
AttemptListener = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class Job:
    delivery: DeliveryRow
    event: EventRow
    endpoint: EndpointRow


@dataclass(frozen=True, slots=True)
class Result:
    at: datetime
    duration_ms: int
    status_code: int | None = None
    response: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(event: EventRow) -> bytes:
    """The Standard Webhooks payload: ``{"type", "timestamp", "data"}``."""
    payload = {"type": event.type, "timestamp": event.at.isoformat(), "data": event.data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class Deliverer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        box: SecretBox,
        clock: Callable[[], datetime],
    ) -> None:
        self._write = db.write
        self._read = db.read
        self.settings = settings
        self.box = box
        self.clock = clock
        self.networks = network.parse_networks(settings.webhook_allowed_networks)
        self.delays = settings.webhook_retry_delays_s
        self.wake = threading.Event()
        self.on_attempt: AttemptListener | None = None
        self._sqlite = db.dialect == "sqlite"
        # A transport, not a client: it follows no redirect, sets no cookie and goes through
        # no proxy (nor trusts the environment for its certificates).
        self._http = httpx.HTTPTransport(
            trust_env=False,
            limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
        )
        self._timeout = httpx.Timeout(settings.webhook_timeout_s).as_dict()
        # The secrets opened during the current round (sealed -> plain): each endpoint's
        # once per round rather than once per attempt; none kept between rounds.
        self._opened: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(
            settings.webhook_concurrency, thread_name_prefix="creditpool-webhook"
        )
        self._in_flight: dict[Future[Result], Job] = {}  # sent, answer not recorded yet

    # -- the steps -----------------------------------------------------------------------

    def fan_out(self) -> int:
        """Make the deliveries of events not dispatched yet; how many events were."""
        with self._write() as tx:
            taken = self._fan_out(tx)
        return len(taken)

    def _fan_out(self, tx: Tx) -> dict[str, EventRow]:
        """The events taken (marked dispatched) in ``tx``, their deliveries made."""
        pending = repository.take_events(tx.conn, FAN_OUT_BATCH)
        if not pending:
            return {}
        endpoints = repository.enabled_endpoints(tx.conn)
        rows = [
            new_delivery(e.id, event.id, event.org_id, tx.now)
            for event in pending
            for e in endpoints
            # an endpoint hears what happened after it was created, not the backlog
            if e.wants(event.type) and e.created_at <= event.created_at
        ]
        repository.insert_deliveries(tx.conn, rows)
        return {event.id: event for event in pending}

    def claim(self, limit: int) -> list[Job]:
        """Fan out, then lease up to ``limit`` due deliveries with their events and
        endpoints: one transaction of a few statements whatever the count."""
        with self._write() as tx:
            found = self._fan_out(tx)
            lease = timedelta(seconds=self.settings.webhook_timeout_s + 5)
            due = repository.claim_due(tx.conn, tx.now, tx.now + lease, limit)
            if not due:
                return []
            missing = {d.event_id for d in due} - found.keys()
            found.update(repository.events_by_id(tx.conn, missing))
            endpoints = repository.endpoints_of(tx.conn, {d.endpoint_id for d in due})
        jobs = []
        for d in due:
            event, endpoint = found.get(d.event_id), endpoints.get(d.endpoint_id)
            if event is not None and endpoint is not None:
                jobs.append(Job(d.row(event.type), event, endpoint))
        return jobs

    def send(self, job: Job) -> Result:
        started = time.perf_counter()
        at = self.clock()
        response: httpx.Response | None = None
        try:
            target = network.resolve(job.endpoint.url, self.networks)
            body = body_of(job.event)
            headers = signing.headers(
                self._secrets(job.endpoint, at), job.event.id, int(at.timestamp()), body
            )
            headers["host"] = target.host
            headers["user-agent"] = USER_AGENT
            # Straight to the transport: no redirect is followed, no proxy or cookie applies,
            # and the client's per-request work (a third of a send's CPU) is skipped.
            request = httpx.Request(
                "POST",
                target.url,
                content=body,
                headers=headers,
                extensions={
                    "timeout": self._timeout,
                    "sni_hostname": target.host.rsplit(":", 1)[0],
                },
            )
            response = self._http.handle_request(request)
            text = _excerpt(response, started + self.settings.webhook_timeout_s)
            return Result(at, _ms(started), response.status_code, text or None)
        except RefusedAddress as error:
            return Result(at, _ms(started), error=str(error)[:500])
        except httpx.TimeoutException:
            return Result(at, _ms(started), error="timed out")
        except Exception as error:  # connection refused, TLS, a secret that will not open...
            return Result(at, _ms(started), error=f"{type(error).__name__}: {error}"[:500])
        finally:
            if response is not None:
                response.close()

    def record(self, done: list[tuple[Job, Result]]) -> None:
        """Record a round's attempts in one transaction: every attempt in the log (one
        ``executemany``), the successes in two statements whatever their count, each
        failure with its own next attempt (and its endpoint's health)."""
        delivered = [job for job, result in done if result.ok]
        failed = [job for job, result in done if not result.ok]
        succeeded = {job.delivery.endpoint_id for job in delivered}
        with self._write() as tx:
            repository.record_attempts(
                tx.conn,
                [
                    {
                        "delivery_id": job.delivery.id,
                        "at": result.at,
                        "duration_ms": result.duration_ms,
                        "status_code": result.status_code,
                        "response": result.response,
                        "error": result.error,
                    }
                    for job, result in done
                ],
            )
            failing: dict[str, EndpointRow] = {}
            if failed:  # locked first, all in one order (see endpoints_of)
                involved = succeeded | {job.delivery.endpoint_id for job in failed}
                failing = repository.endpoints_of(tx.conn, involved, lock=True)
            repository.record_delivered(
                tx.conn, [job.delivery.id for job in delivered], succeeded, tx.now
            )
            if failed:
                repository.reschedule(tx.conn, [self._next(tx, job) for job in failed])
                for endpoint_id in sorted({job.delivery.endpoint_id for job in failed}):
                    endpoint = failing.get(endpoint_id)
                    if endpoint is not None:
                        # a success of this round has just cleared failing_since
                        since = None if endpoint_id in succeeded else endpoint.failing_since
                        self._failing(tx, endpoint, since or tx.now)
        if self.on_attempt is not None:
            for job, result in done:
                self.on_attempt(self._outcome(job, result), result.duration_ms / 1000)

    def _outcome(self, job: Job, result: Result) -> str:
        if result.ok:
            return "delivered"
        return "retrying" if job.delivery.attempts <= len(self.delays) else "failed"

    def _next(self, tx: Tx, job: Job) -> tuple[int, str, datetime | None]:
        """A failed attempt's delivery: due again after the schedule's next delay (with
        jitter), or failed when the schedule is spent (the claim counted the attempt)."""
        attempts = job.delivery.attempts
        if attempts <= len(self.delays):
            delay = self.delays[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
            return job.delivery.id, "pending", tx.now + timedelta(seconds=delay)
        return job.delivery.id, "failed", None

    def _failing(self, tx: Tx, endpoint: EndpointRow, since: datetime) -> None:
        """An endpoint that failed in this round: failing since ``since``; disabled once
        that is ``webhook_disable_after_s`` ago."""
        change: dict[str, object] = {"failing_since": since}
        limit = timedelta(seconds=self.settings.webhook_disable_after_s)
        if endpoint.enabled and tx.now - since >= limit:
            change.update(
                enabled=False,
                disabled_reason=f"disabled at {tx.now.isoformat()}: no successful delivery"
                f" since {since.isoformat()}",
            )
            log.warning("webhook endpoint %s disabled: failing since %s", endpoint.id, since)
        repository.update_endpoint(tx.conn, endpoint.id, change)

    def _secrets(self, endpoint: EndpointRow, at: datetime) -> list[str]:
        secrets = [self._open(endpoint.secret)]
        if endpoint.old_secret and endpoint.old_secret_until and at < endpoint.old_secret_until:
            secrets.append(self._open(endpoint.old_secret))
        return secrets

    def _open(self, sealed: str) -> str:
        plain = self._opened.get(sealed)
        if plain is None:
            plain = self._opened[sealed] = self.box.open(sealed)
        return plain

    # -- the loop ------------------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing to fan out and nothing due: read without taking a write lock (SQLite has
        one), so that an idle worker costs one indexed read per poll."""
        with self._read() as tx:
            return not outbox.any_undispatched(tx.conn) and not repository.any_due(tx.conn, tx.now)

    @property
    def round_size(self) -> int:
        return self.settings.webhook_concurrency * 4

    def run_once(self) -> int:
        """Fan out, send what is due, and record the answers that came within
        ``ROUND_WAIT_S`` (later ones by a later round, or ``close``); how many deliveries
        were sent. Sends in flight count against the round's size."""
        # On PostgreSQL the claim's transaction is as cheap as the idle check when there is
        # nothing to do (and it is skipped when there is), so it is made only on SQLite,
        # whose write transaction would lock out every writer.
        if self._sqlite and not self._in_flight and self.idle():
            return 0
        room = self.round_size - len(self._in_flight)
        jobs = self.claim(room) if room > 0 else []
        for job in jobs:
            self._in_flight[self._pool.submit(self.send, job)] = job
        if self._in_flight:
            self._record_answered(ROUND_WAIT_S)
        return len(jobs)

    def _record_answered(self, wait_s: float | None) -> None:
        """Record the sends that are answered within ``wait_s`` (None: all of them)."""
        done, _ = wait(self._in_flight, timeout=wait_s)
        answered = [(self._in_flight.pop(future), future.result()) for future in done]
        self._opened.clear()
        if not answered:
            return
        try:
            self.record(answered)
        except Exception:  # lost: the leases end and the deliveries are sent again
            log.exception("could not record %d webhook deliveries", len(answered))

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set. After a full round, at once; else when woken (a
        commit in this process) or every poll interval, but never sooner than
        ``ROUND_INTERVAL_S`` after the previous round began: under load, the events of
        that interval's commits go out together, in one round of a few statements, rather
        than one round per commit."""
        pause = min(ROUND_INTERVAL_S, self.settings.webhook_poll_s)
        while not stop.is_set():
            self.wake.clear()
            began = time.monotonic()
            try:
                busy = self.run_once()
            except Exception:
                log.exception("webhook delivery round failed")
                busy = 0
            if busy >= self.round_size:
                continue
            self.wake.wait(self.settings.webhook_poll_s)
            rest = began + pause - time.monotonic()
            if rest > 0:
                stop.wait(rest)

    def close(self) -> None:
        """Record the sends still in flight (each ends within the timeout), then stop."""
        if self._in_flight:
            self._record_answered(None)
        self._pool.shutdown(wait=True)
        self._http.close()


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The answer's first characters, read by the attempt's deadline: httpx's timeout
    bounds each read, so a receiver dripping its answer (or sending gigabytes) would
    otherwise hold the worker past the timeout and the lease."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        if time.perf_counter() > deadline:
            raise httpx.ReadTimeout("the answer took longer than the timeout")
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_EXCERPT * 4:  # enough for RESPONSE_EXCERPT characters
            break
    if time.perf_counter() > deadline:
        raise httpx.ReadTimeout("the answer took longer than the timeout")
    encoding = response.encoding or "utf-8"
    return b"".join(chunks).decode(encoding, errors="replace")[:RESPONSE_EXCERPT]


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
