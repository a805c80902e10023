"""Shared servers and fresh tenants for the end-to-end tests: one server process per module
and backend (starting one takes seconds); each test gets its own pair of organizations and
keys of every role on it, so tests stay independent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from creditpool import CreditPool
from tests.conftest import SKIP_PG, skip_or_fail
from tests.e2e.conftest import Server, start_server
from tests.support import PostgresTemplates, SqliteTemplates


@contextmanager
def shared_server(
    request: pytest.FixtureRequest,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates | None,
    log_dir: Path,
) -> Iterator[Server]:
    """A server on a fresh database of the backend in ``request.param``, for a whole module."""
    if request.param == "postgres" and postgres_templates is None:
        skip_or_fail(SKIP_PG)
    db_url = sqlite_templates.fresh() if request.param == "sqlite" else None
    if db_url is None:
        assert postgres_templates is not None
        db_url = postgres_templates.fresh()
    pool = CreditPool.open(db_url)
    log = log_dir / "server.log"
    base_url, process = start_server(db_url, log)
    running = Server(base_url, db_url, process, log, pool)
    try:
        yield running
    finally:
        running.stop()
        pool.close()
        if postgres_templates is not None and request.param == "postgres":
            postgres_templates.drop(db_url)


@dataclass
class Tenant:
    """Two fresh organizations on a shared server (``org`` and ``other``) and keys of every
    role: service, staff, admin and member (user u-1) of ``org``, other_admin and
    other_member of ``other``."""

    server: Server
    org: str
    other: str
    keys: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def pool(self) -> CreditPool:
        return self.server.pool

    def client(self, role: str | None = "service", **headers: str) -> httpx.Client:
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        client = httpx.Client(base_url=self.server.base_url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


@contextmanager
def new_tenant(server: Server) -> Iterator[Tenant]:
    pool = server.pool
    suffix = uuid.uuid4().hex[:8]
    org, other = f"acme-{suffix}", f"globex-{suffix}"
    pool.create_org(org, name="Acme Inc.", timezone="Europe/Berlin")
    pool.create_org(other, name="Globex", timezone="America/New_York")
    keys = {
        "service": pool.create_key("service", name="backend")[1],
        "staff": pool.create_key("staff", name="cs@vendor.example")[1],
        "admin": pool.create_key("admin", org_id=org, name="acme admin")[1],
        "member": pool.create_key("member", org_id=org, user_id="u-1", name="u-1")[1],
        "other_admin": pool.create_key("admin", org_id=other, name="globex admin")[1],
        "other_member": pool.create_key("member", org_id=other, user_id="g-1")[1],
    }
    tenant = Tenant(server, org, other, keys)
    try:
        yield tenant
    finally:
        tenant.close()


def money(t: Tenant) -> tuple[Decimal, ...]:
    """The organization's balance now, without the instant it is for."""
    b = t.pool.balance(t.org)
    return (b.total, b.used, b.left, b.held, b.upcoming)
