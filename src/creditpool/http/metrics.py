"""Prometheus metrics, summed over every server process.

``creditpool serve`` gives its workers a ``PROMETHEUS_MULTIPROC_DIR`` (server/run.py): each
process then keeps its values in files there (prometheus_client's multiprocess mode), and
``/metrics``, whichever worker answers, reads them all. Without it (one process run by hand,
the tests' apps) the values live in this process's registry. The library and the webhook
worker know nothing of Prometheus: they report through a ``LedgerObserver``, a pool wait
listener and the worker's ``on_attempt``, which ``watch`` connects here.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import Callable

from fastapi import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from starlette.types import Message, Receive, Scope, Send

from creditpool.core.ledger import LedgerAction
from creditpool.core.money import UNIT
from creditpool.http import problems
from creditpool.http.middleware import HttpMiddleware
from creditpool.pool import CreditPool
from creditpool.storage import pooling

SAMPLE_INTERVAL_S = 5.0  # how stale another worker's process figures may be
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
REGISTRY = CollectorRegistry()
if not MULTIPROCESS:  # in multiprocess mode each worker's own figures are copied instead
    ProcessCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)

LATENCY = Histogram(
    "creditpool_http_request_duration_seconds",
    "HTTP request latency by route template and status (event streams excluded)",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
IN_FLIGHT = Gauge(
    "creditpool_http_requests_in_flight",
    "HTTP requests being answered (event streams are counted apart)",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
STREAMS = Gauge(
    "creditpool_event_streams_open",
    "Open server-sent event streams",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
REPLAYS = Counter(
    "creditpool_idempotent_replays",
    "Requests answered by replaying a stored answer (Idempotent-Replayed: true)",
    ["route"],
    registry=REGISTRY,
)
OPERATIONS = Counter(
    "creditpool_ledger_operations",
    "Ledger changes run, by operation and result (ok, replayed, error or a refusal's code)",
    ["operation", "result"],
    registry=REGISTRY,
)
CREDITS = Counter(
    "creditpool_credits",
    "Credits moved by committed ledger entries, by movement",
    ["movement"],
    registry=REGISTRY,
)
DB_IN_USE = Gauge(
    "creditpool_db_connections_in_use",
    "Database connections checked out of the pool",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
DB_WAITS = Counter(
    "creditpool_db_pool_waits",
    "Checkouts that found every pooled connection in use and waited",
    registry=REGISTRY,
)
DB_WAIT_SECONDS = Counter(
    "creditpool_db_pool_wait_seconds",
    "Time spent waiting for a pooled connection",
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "creditpool_webhook_attempts",
    "Webhook delivery attempts by result: delivered, retrying or failed (no retry left)",
    ["result"],
    registry=REGISTRY,
)
WEBHOOK_DURATION = Histogram(
    "creditpool_webhook_attempt_duration_seconds",
    "Webhook delivery attempt duration",
    registry=REGISTRY,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMPTIONS = Counter(
    "creditpool_consumptions",
    "Charged consumptions by feature",
    ["feature"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "creditpool_refusals",
    "Refused consumptions by feature and code",
    ["feature", "code"],
    registry=REGISTRY,
)
MOVEMENTS = {
    LedgerAction.GRANT_ADDED: "granted",
    LedgerAction.CONSUMPTION: "consumed",
    LedgerAction.REFUND: "refunded",
    LedgerAction.EXPIRY: "expired",
    LedgerAction.VOID: "voided",
    LedgerAction.HOLD: "held",
    LedgerAction.RELEASE: "released",
    LedgerAction.HOLD_EXPIRY: "released",
}
WEBHOOK_RESULTS = ("delivered", "retrying", "failed")
for _movement in sorted(set(MOVEMENTS.values())):  # present from the start, at 0
    CREDITS.labels(_movement)
for _result in WEBHOOK_RESULTS:
    WEBHOOK_ATTEMPTS.labels(_result)


class LedgerMetrics:
    """The pool's ``LedgerObserver``: operations and credits moved."""

    def operations(self, done: list[tuple[str, str]]) -> None:
        for operation, result in done:
            OPERATIONS.labels(operation, result).inc()

    def entries(self, written: list[tuple[str, int]]) -> None:
        for action, units in written:
            CREDITS.labels(MOVEMENTS.get(LedgerAction(action), action)).inc(units / UNIT)


def webhook_attempt(result: str, duration_s: float) -> None:
    """The delivery worker's ``on_attempt``."""
    WEBHOOK_ATTEMPTS.labels(result).inc()
    WEBHOOK_DURATION.observe(duration_s)


def _waited(seconds: float) -> None:
    DB_WAITS.inc()
    DB_WAIT_SECONDS.inc(seconds)


def watch(pool: CreditPool) -> Callable[[], None]:
    """Count what ``pool`` does (changes, entries, connections); returns what stops it."""
    engine = pool.db.engine

    def checked_out(*_: object) -> None:
        DB_IN_USE.inc()

    def checked_in(*_: object) -> None:
        DB_IN_USE.dec()

    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
    undo = [pool.observe(LedgerMetrics()), pooling.on_wait(_waited)]

    def stop() -> None:
        for step in undo:
            step()
        event.remove(engine, "checkout", checked_out)
        event.remove(engine, "checkin", checked_in)

    return stop


# -- process figures in multiprocess mode ----------------------------------------------

_OWN = CollectorRegistry()
ProcessCollector(registry=_OWN)
GCCollector(registry=_OWN)
_COPIES: dict[str, Gauge] = {}


def sample_process() -> None:
    """Copy this process's CPU, memory, file descriptors and garbage collector figures into
    gauges every worker's ``/metrics`` reads (labelled by ``pid``; a stopped worker's are
    removed by ``mark_process_dead``). Only in multiprocess mode, where prometheus_client's
    own collectors would show the answering process alone; each worker calls it every few
    seconds."""
    if not MULTIPROCESS:
        return
    for family in _OWN.collect():
        for sample in family.samples:
            gauge = _COPIES.get(sample.name)
            if gauge is None:
                gauge = Gauge(
                    sample.name,
                    family.documentation,
                    list(sample.labels),
                    registry=None,
                    multiprocess_mode="liveall",
                )
                _COPIES[sample.name] = gauge
            (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)


def process_exited() -> None:
    """This worker stops: its live gauges leave the sums."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# -- the endpoint and the middleware ----------------------------------------------------


def metrics_response(authorization: str | None, token: str | None) -> Response:
    """The exposition; with ``token`` set, only for ``Authorization: Bearer <token>``."""
    if token and not hmac.compare_digest(
        (authorization or "").encode(), f"Bearer {token}".encode()
    ):
        return problems.problem(
            401, "unauthorized", "Unauthorized", "/metrics needs `Authorization: Bearer <token>`"
        )
    if MULTIPROCESS:
        sample_process()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        PlatformCollector(registry=registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def route_of(scope: Scope) -> str:
    """The route template (``/v1/orgs/{org}/grants``), never the raw path."""
    return getattr(scope.get("route"), "path", "unmatched")


class MetricsMiddleware(HttpMiddleware):
    """Times every HTTP request and labels it with its route template; counts requests in
    flight, open event streams (a response of ``text/event-stream`` moves from the one to
    the other) and replayed answers."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status, stream, replayed = 500, False, False
        IN_FLIGHT.inc()

        async def observed(message: Message) -> None:
            nonlocal status, stream, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    name = name.lower()
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        stream = True
                        IN_FLIGHT.dec()
                        STREAMS.inc()
                    elif name == b"idempotent-replayed" and value == b"true":
                        replayed = True
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            (STREAMS if stream else IN_FLIGHT).dec()
            route = route_of(scope)
            if not stream:
                elapsed = time.perf_counter() - started
                LATENCY.labels(scope["method"], route, str(status)).observe(elapsed)
            if replayed:
                REPLAYS.labels(route).inc()


async def sampling(interval_s: float = SAMPLE_INTERVAL_S) -> None:
    """Every ``interval_s``: ``sample_process`` (a task of each worker's lifespan)."""
    while True:
        sample_process()
        await asyncio.sleep(interval_s)
