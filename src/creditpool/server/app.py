"""The FastAPI application: one CreditPool per process, routers of every domain."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from creditpool.api.consumptions import router as consumptions_router
from creditpool.api.corrections import router as corrections_router
from creditpool.api.credit_requests import router as credit_requests_router
from creditpool.api.events import router as events_router
from creditpool.api.features import router as features_router
from creditpool.api.forecast import router as forecast_router
from creditpool.api.grants import router as grants_router
from creditpool.api.holds import router as holds_router
from creditpool.api.keys import router as keys_router
from creditpool.api.ledger import router as ledger_router
from creditpool.api.orgs import router as orgs_router
from creditpool.api.reports import router as reports_router
from creditpool.api.sessions import router as sessions_router
from creditpool.api.webhooks import router as webhooks_router
from creditpool.http import access, metrics, openapi, problems, ratelimit
from creditpool.http.batching import ConsumeBatcher
from creditpool.http.cookies import Sessions
from creditpool.http.hub import Hub
from creditpool.http.limits import BodyLimitMiddleware
from creditpool.http.replay import Replayer
from creditpool.http.security import KeyCache
from creditpool.pool import CreditPool
from creditpool.settings import Settings
from creditpool.web import errors as web_errors
from creditpool.web.console import router as console_router
from creditpool.web.console_corrections import router as console_corrections_router
from creditpool.web.console_prices import router as console_prices_router
from creditpool.web.console_refunds import router as console_refunds_router
from creditpool.web.endpoints import router as web_router
from creditpool.web.render import STATIC

log = logging.getLogger(__name__)
# The API's routers of the domains, in the document's order.
API_ROUTERS = (
    orgs_router,
    features_router,
    grants_router,
    corrections_router,
    consumptions_router,
    holds_router,
    ledger_router,
    forecast_router,
    credit_requests_router,
    webhooks_router,
    keys_router,
)
# A request is matched against the routes in the order they were included, and an included
# router's own routes one by one (FastAPI 0.165 even matches a router twice: to pick it,
# then its route): a consumption, the hot request, was tried against some 25 routes of the
# routers before its own (up to 0.7 ms of CPU per request in one process). Its router is
# included first; the document keeps the order above (``openapi.install``'s ``order``).
# docs/ARCHITECTURE.md, "The hot route is matched first".
MATCHED_FIRST = (consumptions_router,)
DESCRIPTION = """\
A prepaid credit pool per organization. Amounts are exact decimal strings ("0.50").
Every error is an RFC 9457 problem (`application/problem+json`) with a stable `code`.
Mutations accept an `Idempotency-Key` header.
"""


def create_app(pool: CreditPool, settings: Settings | None = None) -> FastAPI:
    """The app over ``pool``; ``settings`` tunes it (defaults: ``Settings()``'s defaults)."""
    settings = settings or Settings.model_construct()
    hub = Hub(pool, heartbeat_s=settings.sse_heartbeat_s, lifetime_s=settings.sse_lifetime_s_max)
    batcher = ConsumeBatcher(pool)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop_watching = metrics.watch(pool)
        await hub.start()
        sweeper = asyncio.create_task(_sweeping(pool, settings.sweep_interval_s))
        sampler = asyncio.create_task(metrics.sampling())
        stop_delivering = _delivering(pool) if settings.webhook_worker else None
        yield
        sweeper.cancel()
        sampler.cancel()
        if stop_delivering is not None:
            await asyncio.to_thread(stop_delivering)
        await hub.stop()
        await asyncio.to_thread(batcher.close)
        stop_watching()
        pool.close()
        metrics.process_exited()

    app = FastAPI(
        title="creditpool",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        **openapi.APP_OPTIONS,  # docs from packaged assets (no CDN); operation ids
        dependencies=[Depends(ratelimit.rate_limited)],  # per key, after authentication
    )
    app.state.pool = pool
    app.state.key_cache = KeyCache()
    app.state.replayer = Replayer(pool)
    app.state.batcher = batcher
    app.state.hub = hub
    problems.install(app)
    for router in (*MATCHED_FIRST, *(r for r in API_ROUTERS if r not in MATCHED_FIRST)):
        app.include_router(router)
    app.include_router(reports_router)
    app.include_router(sessions_router)
    # Pages: the same pool, the same authorization (a session cookie is a principal).
    app.state.sessions = Sessions(pool.db, settings)
    app.include_router(web_router)
    for console in (
        console_router,
        console_refunds_router,
        console_prices_router,
        console_corrections_router,
    ):
        app.include_router(console)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    web_errors.install(app)
    app.include_router(events_router)
    _operations(app, pool, settings)
    order = [route.path for r in API_ROUTERS for route in r.routes if isinstance(route, APIRoute)]
    openapi.install(app, order=order)
    return app


async def _sweeping(pool: CreditPool, interval_s: float) -> None:
    """Every ``interval_s``: write the entries that fell due (a hold's or a grant's end, a
    grant's start) where nothing else happened, so that they are announced to live pages.
    Each process sweeps; the organization's lock makes concurrent sweeps harmless."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(pool.sweep)
        except Exception:  # a failed sweep is retried at the next interval
            log.exception("periodic sweep failed")


def _delivering(pool: CreditPool) -> Callable[[], None]:
    """Start this process's webhook delivery worker in a thread; returns what stops it.

    The worker polls (``webhook_poll_s``) for what other processes committed, and each
    commit of this process wakes it at once, so a delivery usually leaves within
    milliseconds of its event's commit."""
    worker = pool.webhook_worker()
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(stop,), name="creditpool-webhooks", daemon=True
    )
    undo = pool.on_commit(lambda org_id, seq: worker.wake.set())
    worker.on_attempt = metrics.webhook_attempt
    thread.start()

    def stopping() -> None:
        undo()
        stop.set()
        worker.wake.set()
        # A round in flight ends within the delivery timeout; what it had not recorded is
        # sent again when its lease ends (at least once).
        thread.join(timeout=pool.settings.webhook_timeout_s + 5)
        worker.close()

    return stopping


def _operations(app: FastAPI, pool: CreditPool, settings: Settings) -> None:
    """Health, metrics, the rate limit, request ids and logs; the body limit."""
    ratelimit.install(app, ratelimit.RateLimiter.of(settings.rate_limit, settings.rate_limit_burst))
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(metrics.MetricsMiddleware)  # outside: times and counts every answer
    if settings.log_format == "json":
        access.log_as_json()
    app.add_middleware(access.AccessMiddleware, log_requests=settings.log_format == "json")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "Not ready"}})
    def readyz() -> Response:
        """The database is reachable and its schema is at the newest migration."""
        try:
            ready = pool.db.schema_is_current()
        except Exception as error:  # any failure to reach the database means "not ready"
            return JSONResponse({"status": "unavailable", "detail": type(error).__name__}, 503)
        if not ready:
            return JSONResponse({"status": "migrations pending"}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics of every worker (``CREDITPOOL_METRICS_TOKEN``: a bearer token)."""
        authorization = request.headers.get("authorization")
        return metrics.metrics_response(authorization, settings.metrics_token)
