"""The delivery worker: the outbox's events to the vendor's endpoints, at least once.

One loop per server process (and ``creditpool webhooks deliver`` to run one alone):

1. **fan out**: events not yet dispatched become one delivery per enabled endpoint that
   wants their type and existed when they were written (a new endpoint is not sent the
   backlog), in one transaction (``FOR UPDATE SKIP LOCKED``: the workers of several
   processes split the events, none is fanned out twice);
2. **claim** the due deliveries, likewise skipping locked rows, and lease them (their next
   attempt moves past the lease, their attempt count goes up) in a short transaction;
3. **send** each outside any transaction, signed, with a timeout, following no redirect;
4. **record** the attempt: a 2xx is delivered; anything else is retried after the next
   delay of the schedule (with jitter), or failed when the schedule is spent. An endpoint
   failing with no success for ``webhook_disable_after_s`` is disabled, with the reason.

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
from concurrent.futures import ThreadPoolExecutor
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
        self._http = httpx.Client(
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            trust_env=False,  # never through a proxy the environment names
            headers={"user-agent": "creditpool-webhooks/1"},
            limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
        )
        self._pool = ThreadPoolExecutor(
            settings.webhook_concurrency, thread_name_prefix="creditpool-webhook"
        )

    # -- the steps -----------------------------------------------------------------------

    def fan_out(self) -> int:
        """Make the deliveries of events not dispatched yet; how many events were."""
        with self._write() as tx:
            pending = outbox.undispatched(tx.conn, FAN_OUT_BATCH)
            if not pending:
                return 0
            endpoints = repository.list_endpoints(tx.conn, enabled=True)
            rows = [
                new_delivery(e.id, event.id, event.org_id, tx.now)
                for event in pending
                for e in endpoints
                # an endpoint hears what happened after it was created, not the backlog
                if e.wants(event.type) and e.created_at <= event.created_at
            ]
            repository.insert_deliveries(tx.conn, rows)
            outbox.mark_dispatched(tx.conn, [event.id for event in pending])
        if rows:
            self.wake.set()
        return len(pending)

    def claim(self, limit: int) -> list[Job]:
        """Lease up to ``limit`` due deliveries, with their events and endpoints (three
        queries whatever the count)."""
        with self._write() as tx:
            due = repository.due(tx.conn, tx.now, limit)
            if not due:
                return []
            lease = timedelta(seconds=self.settings.webhook_timeout_s + 5)
            repository.claim(tx.conn, [d.id for d in due], tx.now + lease, tx.now)
            found = outbox.get_many(tx.conn, [d.event_id for d in due])
            endpoints = repository.endpoints_by_id(tx.conn, {d.endpoint_id for d in due})
        return [
            Job(d, found[d.event_id], endpoints[d.endpoint_id])
            for d in due
            if d.event_id in found and d.endpoint_id in endpoints
        ]

    def send(self, job: Job) -> Result:
        started = time.perf_counter()
        at = self.clock()
        try:
            target = network.resolve(job.endpoint.url, self.networks)
            body = body_of(job.event)
            headers = signing.headers(
                self._secrets(job.endpoint, at), job.event.id, int(at.timestamp()), body
            )
            headers["host"] = target.host
            with self._http.stream(
                "POST",
                target.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.host.rsplit(":", 1)[0]},
            ) as response:
                text = _excerpt(response, started + self.settings.webhook_timeout_s)
            return Result(at, _ms(started), response.status_code, text or None)
        except RefusedAddress as error:
            return Result(at, _ms(started), error=str(error)[:500])
        except httpx.TimeoutException:
            return Result(at, _ms(started), error="timed out")
        except Exception as error:  # connection refused, TLS, a secret that will not open...
            return Result(at, _ms(started), error=f"{type(error).__name__}: {error}"[:500])

    def record(self, done: list[tuple[Job, Result]]) -> None:
        """Record a round's attempts in one transaction: the successes in a few statements
        whatever their count; each failure with its own next attempt."""
        with self._write() as tx:
            repository.insert_attempts(
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
            delivered = [job for job, result in done if result.ok]
            repository.mark_delivered(
                tx.conn,
                [job.delivery.id for job in delivered],
                {job.delivery.endpoint_id for job in delivered},
                tx.now,
            )
            for job, result in done:
                if not result.ok:
                    self._failed(tx, job, job.delivery.attempts + 1)  # the claim counted it
        if self.on_attempt is not None:
            for job, result in done:
                self.on_attempt(self._outcome(job, result), result.duration_ms / 1000)

    def _outcome(self, job: Job, result: Result) -> str:
        if result.ok:
            return "delivered"
        return "retrying" if job.delivery.attempts + 1 <= len(self.delays) else "failed"

    def _failed(self, tx: Tx, job: Job, attempts: int) -> None:
        d = job.delivery
        if attempts <= len(self.delays):
            delay = self.delays[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
            values = {"status": "pending", "next_attempt_at": tx.now + timedelta(seconds=delay)}
        else:
            values = {"status": "failed", "next_attempt_at": None}
        repository.update_delivery(tx.conn, d.id, values)
        endpoint = repository.get_endpoint(tx.conn, d.endpoint_id, lock=True)
        if endpoint is None:
            return
        since = endpoint.failing_since or tx.now
        change: dict[str, object] = {"failing_since": since}
        limit = timedelta(seconds=self.settings.webhook_disable_after_s)
        if endpoint.enabled and tx.now - since >= limit:
            change.update(
                enabled=False,
                disabled_reason=f"disabled at {tx.now.isoformat()}: no successful delivery"
                f" since {since.isoformat()}",
            )
            log.warning("webhook endpoint %s disabled: failing since %s", endpoint.id, since)
        repository.update_endpoint(tx.conn, d.endpoint_id, change)

    def _secrets(self, endpoint: EndpointRow, at: datetime) -> list[str]:
        secrets = [self.box.open(endpoint.secret)]
        if endpoint.old_secret and endpoint.old_secret_until and at < endpoint.old_secret_until:
            secrets.append(self.box.open(endpoint.old_secret))
        return secrets

    # -- the loop ------------------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing to fan out and nothing due: read without taking a write lock (SQLite has
        one), so that an idle worker costs one indexed read per poll."""
        with self._read() as tx:
            return not outbox.any_undispatched(tx.conn) and not repository.any_due(tx.conn, tx.now)

    def run_once(self) -> int:
        """Fan out, then send what is due; how many deliveries were attempted."""
        if self.idle():
            return 0
        self.fan_out()
        jobs = self.claim(self.settings.webhook_concurrency * 4)
        results = list(self._pool.map(self.send, jobs))
        if jobs:
            try:
                self.record(list(zip(jobs, results, strict=True)))
            except Exception:  # lost: the leases end and the deliveries are sent again
                log.exception("could not record %d webhook deliveries", len(jobs))
        return len(jobs)

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set: at once after any work, else every poll interval
        or when woken (a commit in this process)."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("webhook delivery round failed")
                busy = 0
            if not busy:
                self.wake.wait(self.settings.webhook_poll_s)
                self.wake.clear()

    def close(self) -> None:
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
