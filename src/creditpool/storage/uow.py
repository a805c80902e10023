"""The unit of work: ``Database`` is the one way to open a transaction.

A ``Database`` holds the engine and the clock. Services take the ``Tx`` it yields and
never open one themselves; whoever holds the ``Database`` (the library's ``CreditPool``,
a page, the HTTP layer's replay and streams) decides what one transaction covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from creditpool.storage import migrate
from creditpool.storage.engine import READ_ONLY

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Tx:
    """An open transaction and the clock's reading taken when it began."""

    conn: Connection
    now: datetime

    @property
    def dialect(self) -> str:
        return self.conn.dialect.name


def read_clock(clock: Clock) -> datetime:
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the clock returned a naive datetime: it must be timezone-aware")
    return now.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Database:
    """An engine and the clock that stamps its transactions (tests hand in one they
    move). Each transaction reads the clock once, when it begins: ``Tx.now``."""

    engine: Engine
    clock: Clock = system_clock

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def now(self) -> datetime:
        """The clock's reading (aware UTC), outside any transaction."""
        return read_clock(self.clock)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite): commits on success."""
        with self.engine.begin() as conn:
            yield Tx(conn, read_clock(self.clock))

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Tx]:
        """A read transaction; it never blocks writers. On SQLite it is one snapshot; on
        PostgreSQL each statement sees what was committed before it, unless ``snapshot``
        (REPEATABLE READ, one more statement): ask for it when several reads must agree,
        as a page's or a stream's do."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                if snapshot and conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                yield Tx(conn, read_clock(self.clock))

    def schema_is_current(self) -> bool:
        """The schema is at the newest migration (raises when the database is unreachable)."""
        return migrate.is_at_head(self.engine)

    def schema_revision(self) -> str | None:
        return migrate.current_revision(self.engine)

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()
