"""Fixtures shared by every tier.

``db_url`` is a fresh, migrated database per test: SQLite always, PostgreSQL too when
CREDITPOOL_TEST_POSTGRES_URL is set (the test is then run once per backend). Without the
variable the PostgreSQL runs are skipped with a message saying so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditpool import CreditPool
from tests.support import FakeClock, PostgresTemplates, SqliteTemplates, postgres_admin_url

# Production's SQLite default is synchronous=FULL (a commit is on disk before it is
# acknowledged; tests/integration/test_durability.py checks that default). A test cannot
# pull the power, so the suite runs with NORMAL, which only differs on power loss, and saves
# an fsync per commit (SQLite tests ran 2-3x slower with FULL).
os.environ.setdefault("CREDITPOOL_SQLITE_SYNCHRONOUS", "normal")
# Webhook secrets are sealed with the server's key: one for the whole suite (pools in the
# test process and server processes alike), so no key file lands in the working directory.
os.environ.setdefault("CREDITPOOL_SECRET_KEY", "creditpool test suite key, not a secret")

SKIP_PG = "PostgreSQL not configured: set CREDITPOOL_TEST_POSTGRES_URL to run on it"


def skip_or_fail(reason: str) -> None:
    """Skip where a part is missing; in CI (CREDITPOOL_TEST_REQUIRE_ALL=1) fail instead."""
    if os.environ.get("CREDITPOOL_TEST_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[PostgresTemplates | None]:
    url = postgres_admin_url()
    if url is None:
        yield None
        return
    templates = PostgresTemplates(url)
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres" and postgres_admin_url() is None:
        skip_or_fail(SKIP_PG)
    return name


def _fresh_database(
    backend: str, sqlite_templates: SqliteTemplates, postgres_templates: PostgresTemplates | None
) -> Iterator[str]:
    if backend == "sqlite":
        yield sqlite_templates.fresh()
        return
    assert postgres_templates is not None
    url = postgres_templates.fresh()
    yield url
    postgres_templates.drop(url)


db_url = pytest.fixture(_fresh_database, name="db_url")
# A second fresh database of the same backend (two states side by side).
other_db_url = pytest.fixture(_fresh_database, name="other_db_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pool(db_url: str, clock: FakeClock) -> Iterator[CreditPool]:
    with CreditPool.open(db_url, clock=clock) as opened:
        yield opened


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path
