"""Engines for SQLite (embedded default) and PostgreSQL (production), from one URL.

SQLite: WAL mode, a busy timeout, and every write transaction opened with
``BEGIN IMMEDIATE``, which takes the database's single write lock up front. SQLite ignores
``FOR UPDATE``; the immediate lock is what serializes writers there (it is coarser than a
row lock: one writer per database, which is SQLite's own limit anyway). Read transactions
open with a plain ``BEGIN`` and never block writers under WAL.

Durability: SQLite runs with ``synchronous = FULL`` by default, so a commit the API has
acknowledged survives a power cut or an operating-system crash (in WAL mode, NORMAL may lose
the last commits then, though never corrupts the file). ``CREDITPOOL_SQLITE_SYNCHRONOUS=normal``
trades that for speed (see ``sqlite_synchronous``).

PostgreSQL: psycopg 3; writers lock the organization's row with ``SELECT ... FOR UPDATE``.
A pooled connection is pinged before use only when it sat idle for a while
(``PING_IDLE_S``): a ping on every checkout is one more round trip on every call, and a
connection used a moment ago is as alive as a ping would show.

The statements of the consume path are SQLAlchemy Core compiled once per dialect and run
on the driver's cursor: see ``storage.compiled``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from creditpool.settings import Settings, SqliteSynchronous
from creditpool.storage.pooling import WatchedQueuePool

READ_ONLY = "creditpool_read_only"
SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 10_000
PING_IDLE_S = 5.0
# Connections a PostgreSQL pool may open beyond ``pool_size``. They are kept once open (see
# ``create``) rather than closed on return as SQLAlchemy's overflow connections are.
POSTGRES_BURST = 10
_CHECKED_IN_AT = "creditpool_checked_in_at"


def sqlite_synchronous(choice: SqliteSynchronous | None = None) -> str:
    """The ``PRAGMA synchronous`` level every SQLite connection gets: ``choice``, else the
    ``CREDITPOOL_SQLITE_SYNCHRONOUS`` setting (default ``full``). The benchmark's raw baseline
    uses it too, so the two are compared on equal terms."""
    return (choice or Settings().sqlite_synchronous).upper()


def normalize_url(url: str) -> str:
    """Accept the URLs people write (postgresql://, postgres://) and pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create(
    url: str, *, pool_size: int = 5, sqlite_synchronous: SqliteSynchronous | None = None
) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_synchronous)
    if parsed.get_backend_name() == "postgresql":
        # At most pool_size + POSTGRES_BURST connections, as with max_overflow=POSTGRES_BURST,
        # but all of them kept: an overflow connection is closed when it comes back to a full
        # pool, so a server running more transactions at once than pool_size (8 or more
        # concurrent consumers per process) opened and closed a PostgreSQL connection (a
        # backend process) every few requests: ~120 new sessions in 5 s in bench/http_api.py.
        # Connections are still opened only when needed.
        try:
            engine = create_engine(
                url,
                pool_size=pool_size + POSTGRES_BURST,
                max_overflow=0,
                poolclass=WatchedQueuePool,  # counts the checkouts that waited (metrics)
            )
        except ModuleNotFoundError as error:  # psycopg is an extra: SQLite needs no driver
            raise ModuleNotFoundError(
                f"PostgreSQL needs its driver ({error.name}): pip install 'creditpool[postgres]'",
                name=error.name,
            ) from None
        _ping_when_idle(engine)
        return engine
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string()!r}: use sqlite or postgresql"
    )


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling, paid only by connections that sat idle."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_IDLE_S:
            return  # brand new, or used a moment ago
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()
        except Exception as error:
            # The pool discards this connection and checks out (or opens) another one.
            raise exc.DisconnectionError(f"stale connection: {error}") from error


def _sqlite_engine(url: str, synchronous: SqliteSynchronous | None) -> Engine:
    parsed = make_url(url)
    level = sqlite_synchronous(synchronous)
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
        # FULL (the default): the WAL is synced at every commit, so an acknowledged change
        # survives a power cut. NORMAL syncs only at checkpoints.
        cursor.execute(f"PRAGMA synchronous = {level}")
        # Checkpoint the WAL every ~40 MB instead of ~4 MB: a hot organization rewrites the
        # same pages, and a rarer checkpoint copies each of them once instead of many times.
        cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        # Straight to the driver: this runs once per transaction on every call.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


# -- the write pipeline --------------------------------------------------------------


def pipelined(conn: Connection, *, commit: bool = False) -> AbstractContextManager[object]:
    """On PostgreSQL, psycopg's pipeline mode for the rest of a change: statements whose
    results nobody reads (the inserts and updates that write a plan) travel together and
    cost one round trip instead of one each; a read still waits for its own answer. An
    error in any of them surfaces before the commit and rolls the transaction back.
    With ``commit``, the transaction's COMMIT is queued after them when the block ends
    without an error (one round trip less): the transaction's own commit then finds
    nothing left to do. The block must be the last thing the transaction does.
    SQLite has no round trips: nothing changes there."""
    if conn.dialect.name != "postgresql":
        return nullcontext()
    driver = conn.connection.driver_connection
    assert driver is not None
    if commit:
        return _committing_pipeline(driver)
    pipeline: AbstractContextManager[object] = driver.pipeline()
    return pipeline


@contextmanager
def _committing_pipeline(driver: Any) -> Iterator[object]:
    with driver.pipeline() as pipeline:
        yield pipeline
        # Queued behind the writes; if one of them failed, PostgreSQL skips it (the
        # pipeline is aborted up to its sync), the error is raised on leaving the pipeline
        # and the transaction is rolled back as usual.
        driver.commit()
