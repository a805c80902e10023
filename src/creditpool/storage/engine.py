"""Engines for SQLite (embedded default) and PostgreSQL (production), from one URL.

SQLite: WAL mode, a busy timeout, and every write transaction opened with
``BEGIN IMMEDIATE``, which takes the database's single write lock up front. SQLite ignores
``FOR UPDATE``; the immediate lock is what serializes writers there (it is coarser than a
row lock: one writer per database, which is SQLite's own limit anyway). Read transactions
open with a plain ``BEGIN`` and never block writers under WAL.

PostgreSQL: psycopg 3; writers lock the organization's row with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

READ_ONLY = "creditpool_read_only"
SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalize_url(url: str) -> str:
    """Accept the URLs people write (postgresql://, postgres://) and pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create(url: str, *, pool_size: int = 5) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string()!r}: use sqlite or postgresql"
    )


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 60}}
    if memory:
        raise ValueError("an in-memory SQLite database cannot be shared: give a file path")
    kwargs["poolclass"] = NullPool if parsed.query.get("nullpool") else None
    if kwargs["poolclass"] is None:
        del kwargs["poolclass"]
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves: pysqlite's own BEGIN is deferred and late.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"
