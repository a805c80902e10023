"""Bring a database to the newest schema with Alembic, safely from many processes at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Upgrade to head. A no-op (one cheap read) when already there.

    Concurrent callers are serialized inside env.py (``BEGIN IMMEDIATE`` on SQLite, an
    advisory lock on PostgreSQL) and re-read the version after taking the lock.
    """
    if current_revision(engine) == head_revision(engine):
        return
    command.upgrade(alembic_config(engine), "head")


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine)
