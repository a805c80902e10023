"""Alembic environment: runs on the engine handed in by creditpool (never from a .ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, text

from creditpool.storage.tables import metadata

MIGRATION_LOCK_ID = 7_150_223_001  # any constant: the PostgreSQL advisory lock for migrations


def run_migrations_online() -> None:
    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError("creditpool migrations run through creditpool.storage.migrate")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_ID}
                )
            context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported")
run_migrations_online()
