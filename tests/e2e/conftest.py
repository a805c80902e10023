"""A real server process per test module tier: uvicorn in a subprocess on a free port,
on a fresh migrated database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from creditpool import CreditPool
from creditpool.http.protocol import HTTP_PROTOCOL
from tests.support import PostgresTemplates, SqliteTemplates

if TYPE_CHECKING:
    from tests.e2e.tenants import Tenant

STARTUP_S_MAX = 30.0
TEST_SECRET_KEY = "creditpool-tests-secret-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A running server, the database it serves, and a key of every role."""

    base_url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log: Path
    pool: CreditPool
    keys: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, role: str = "service") -> httpx.Client:
        """An HTTP client with the role's key; closed when the server stops."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"}
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """Stop a server as an operator would (SIGTERM: it drains requests, ends event streams
    and stops its webhook worker), and kill it if it takes longer than ``grace_s``."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_server(
    db_url: str,
    log: Path,
    *,
    workers: int = 1,
    port: int | None = None,
    env: dict[str, str] | None = None,
    startup_s: float = STARTUP_S_MAX,
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start a server; ``port`` to restart one where it was, ``env`` for more settings."""
    port = port or free_port()
    # One secret key for every test server: webhook secrets sealed by one process (or the
    # test's own pool) open in the others, and no key file is left in the working directory.
    env = {
        "CREDITPOOL_SECRET_KEY": TEST_SECRET_KEY,
        **os.environ,
        **(env or {}),
        "CREDITPOOL_DATABASE_URL": db_url,
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "creditpool.server.run:app_from_env",
        "--factory",
        "--http",
        HTTP_PROTOCOL,  # as `creditpool serve` runs it: deadlines on slow requests
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if workers > 1:
        command += ["--workers", str(workers)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return base_url, process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not become ready:\n{log.read_text()}")


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server on a fresh database with organizations ``acme`` and ``globex`` and keys:
    service, staff, admin (acme), member (acme, user u-1), other_admin and other_member
    (globex)."""
    pool = CreditPool.open(db_url)
    pool.create_org("acme", name="Acme Inc.", timezone="Europe/Berlin")
    pool.create_org("globex", name="Globex", timezone="America/New_York")
    keys = {
        "service": pool.create_key("service", name="backend")[1],
        "staff": pool.create_key("staff", name="cs@vendor.example")[1],
        "admin": pool.create_key("admin", org_id="acme", name="acme admin")[1],
        "member": pool.create_key("member", org_id="acme", user_id="u-1", name="u-1")[1],
        "other_admin": pool.create_key("admin", org_id="globex", name="globex admin")[1],
        "other_member": pool.create_key("member", org_id="globex", user_id="g-1")[1],
    }
    base_url, process = start_server(db_url, tmp_path / "server.log")
    running = Server(base_url, db_url, process, tmp_path / "server.log", pool, keys)
    yield running
    running.stop()
    pool.close()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def shared(
    request: pytest.FixtureRequest,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A server for the whole module, per backend (see ``tests/e2e/tenants.py``)."""
    from tests.e2e.tenants import shared_server

    with shared_server(
        request, sqlite_templates, postgres_templates, tmp_path_factory.mktemp("server")
    ) as running:
        yield running


@pytest.fixture
def t(shared: Server) -> Iterator[Tenant]:
    """Two fresh organizations on the module's server, with keys of every role."""
    from tests.e2e.tenants import new_tenant

    with new_tenant(shared) as fresh:
        yield fresh
