"""The migrations build the schema ``storage/tables.py`` declares, on every backend: Alembic's
comparison finds no difference, and every index (its columns, uniqueness and, for a partial
index, its condition, which Alembic does not compare) is the same as ``create_all`` makes."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from creditpool.storage import engine as engines
from creditpool.storage.tables import metadata

FROM_TABLES = "from_tables"  # the PostgreSQL schema create_all builds the declared tables in


def _indexes(conn: Connection, schema: str | None = None) -> dict[str, str]:
    """Every index by name, as the database itself describes it."""
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'"))
        return {name: re.sub(r"\s+", " ", sql or "") for name, sql in rows}
    rows = conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s"),
        {"s": schema or "public"},
    )
    return {name: definition.replace(f"{schema}.", "public.") for name, definition in rows}


def test_the_migrations_make_the_declared_schema(db_url: str, tmp_path: Path) -> None:
    engine = engines.create(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            migrated = _indexes(conn)
        if engine.dialect.name == "sqlite":
            declared_engine = engines.create(f"sqlite:///{tmp_path / 'declared.db'}")
            try:
                with declared_engine.begin() as conn:
                    metadata.create_all(conn)
                with declared_engine.connect() as conn:
                    declared = _indexes(conn)
            finally:
                declared_engine.dispose()
        else:
            with engine.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {FROM_TABLES}"))
                mapped = conn.execution_options(schema_translate_map={None: FROM_TABLES})
                metadata.create_all(mapped)
                declared = _indexes(conn, FROM_TABLES)
                conn.execute(text(f"DROP SCHEMA {FROM_TABLES} CASCADE"))
        migrated.pop("alembic_version_pkc", None)
        migrated = {k: v for k, v in migrated.items() if "alembic_version" not in k}
        assert migrated == declared
    finally:
        engine.dispose()
