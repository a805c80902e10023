"""Running the API: ``creditpool serve`` and the uvicorn factory every worker imports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn
from fastapi import FastAPI

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


@dataclass(frozen=True)
class DemoKeys:
    service: str
    staff: str
    admin: str
    member: str
    org_id: str
    member_user: str


def prepare(database_url: str, *, demo: bool) -> DemoKeys | None:
    """Migrate once (before any worker starts) and, with ``demo``, fill demo data and mint
    keys for every role."""
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    if not demo:
        return None
    from creditpool.demo import existing_demo_orgs, fill_demo

    with CreditPool.open(database_url) as pool:
        orgs = existing_demo_orgs(pool)
    if not orgs:
        orgs = fill_demo(database_url, datetime.now(UTC))
    with CreditPool.open(database_url) as pool:
        org_id = orgs[0]
        member_user = pool.members(org_id)[0].user_id
        return DemoKeys(
            service=pool.create_key("service", name="demo backend")[1],
            staff=pool.create_key("staff", name="cs@demo.example")[1],
            admin=pool.create_key("admin", org_id=org_id, name="demo admin")[1],
            member=pool.create_key(
                "member", org_id=org_id, user_id=member_user, name="demo member"
            )[1],
            org_id=org_id,
            member_user=member_user,
        )


def serve(settings: Settings) -> None:
    """Start uvicorn. SQLite: one process. PostgreSQL: ``settings.workers`` processes."""
    os.environ["CREDITPOOL_DATABASE_URL"] = settings.database_url
    # Workers read their settings from the environment: the demo sign-in links too.
    os.environ["CREDITPOOL_DEMO"] = "1" if settings.demo else "0"
    workers = 1 if settings.database_url.startswith("sqlite") else max(1, settings.workers)
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
    )
