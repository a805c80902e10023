"""One transaction per service call, with the instant it happens at."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

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


@contextmanager
def writing(engine: Engine, clock: Clock) -> Iterator[Tx]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite): commits on success."""
    with engine.begin() as conn:
        yield Tx(conn, read_clock(clock))


@contextmanager
def reading(engine: Engine, clock: Clock) -> Iterator[Tx]:
    """A read transaction: one consistent snapshot, never blocks writers."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{READ_ONLY: True})
        with conn.begin():
            yield Tx(conn, read_clock(clock))
