"""Running the API: ``creditpool serve`` and the uvicorn factory every worker imports."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from creditpool.demo import DemoKeys, prepare_demo
from creditpool.http.protocol import HTTP_PROTOCOL
from creditpool.pool import CreditPool
from creditpool.server.app import create_app
from creditpool.settings import Settings
from creditpool.storage import migrate
from creditpool.storage.engine import create as create_engine


def app_from_env() -> FastAPI:
    """The uvicorn factory: each worker process opens its own pool from the settings."""
    settings = Settings()
    pool = CreditPool.open(
        settings.database_url,
        migrate_schema=False,
        hold_ttl_s_default=settings.hold_ttl_s_default,
        hold_ttl_s_max=settings.hold_ttl_s_max,
        settings=settings,
    )
    return create_app(pool, settings)


def prepare(database_url: str, *, demo: bool) -> DemoKeys | None:
    """Migrate once (before any worker starts) and, with ``demo``, fill demo data and give
    a key for every role (the ones stored beside the database while they work)."""
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    if not demo:
        return None
    return prepare_demo(database_url, datetime.now(UTC))


def serve(settings: Settings) -> None:
    """Start uvicorn. SQLite: one process. PostgreSQL: ``settings.workers`` processes."""
    os.environ["CREDITPOOL_DATABASE_URL"] = settings.database_url
    # Workers read their settings from the environment: the demo sign-in links too.
    os.environ["CREDITPOOL_DEMO"] = "1" if settings.demo else "0"
    workers = 1 if settings.database_url.startswith("sqlite") else max(1, settings.workers)
    if workers > 1:
        metrics_dir()
    uvicorn.run(
        "creditpool.server.run:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
        proxy_headers=True,
        # httptools with deadlines for request headers and bodies and a header size limit
        # (api/http.py); the limits are settings, read by each worker.
        http=HTTP_PROTOCOL,
        # SIGTERM: stop accepting, end the event streams (each with a retry hint), let the
        # requests in progress finish for up to this long.
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
    )


def metrics_dir() -> Path:
    """Where the workers keep their metrics (prometheus_client's multiprocess mode, so that
    /metrics sums them all): ``PROMETHEUS_MULTIPROC_DIR`` when set, emptied of an earlier
    run's files, else a new temporary directory removed at exit. Set before any worker
    starts: prometheus_client picks its mode when a worker imports it."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="creditpool-metrics-"))
        atexit.register(shutil.rmtree, path, True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path
