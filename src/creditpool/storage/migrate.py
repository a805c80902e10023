"""Bring a database to the newest schema with Alembic, safely from many processes at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

# Alembic is imported where it is used, when a pool is opened: it costs most of a second,
# which `import creditpool` and `creditpool --help` need not pay.
if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Upgrade to head. A no-op (one cheap read) when already there.

    Concurrent callers are serialized inside env.py (``BEGIN IMMEDIATE`` on SQLite, an
    advisory lock on PostgreSQL) and re-read the version after taking the lock.
    """
    from alembic import command

    if current_revision(engine) == head_revision(engine):
        return
    command.upgrade(alembic_config(engine), "head")


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine)
