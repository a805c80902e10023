"""Test helpers: a clock that tests move, and fresh migrated databases.

Every test database is built by the real Alembic migrations once per session (a template),
then copied per test: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from creditpool.storage import engine as engines
from creditpool.storage import migrate

POSTGRES_ENV = "CREDITPOOL_TEST_POSTGRES_URL"
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """An injectable clock: ``clock()`` reads it, ``advance`` moves it forward."""

    now: datetime = field(default=START)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return when


def postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _libpq(url: str) -> str:
    return engines.normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


class SqliteTemplates:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template.db"
        engine = engines.create(f"sqlite:///{self.template}")
        migrate.upgrade(engine)
        engine.dispose()  # the last connection to close checkpoints the WAL into the file

    def fresh(self) -> str:
        path = self.root / f"t-{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"


class PostgresTemplates:
    def __init__(self, admin_url: str) -> None:
        self.admin_url = _libpq(admin_url)
        self.template = f"cp_template_{uuid.uuid4().hex[:8]}"
        self.created: list[str] = []
        self._execute(f'CREATE DATABASE "{self.template}"')
        engine = engines.create(_with_database(self.admin_url, self.template))
        migrate.upgrade(engine)
        engine.dispose()

    def _execute(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.encode())

    def fresh(self) -> str:
        name = f"cp_test_{uuid.uuid4().hex[:12]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return _with_database(self.admin_url, name)

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2]
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in [*self.created, self.template]:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
