"""Concurrent writers that collide: statements that settle a collision in the database, and
the errors after which a transaction is simply run again.

Off the consume path (which is plain SQL, see ``storage.engine``); both dialects have
``INSERT ... ON CONFLICT`` (SQLite since 3.24), so upserts and "create unless it exists"
need no read first and no savepoint: a read-then-insert lets two writers both see "absent"
and one of them fail on the primary key.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

# unique_violation, serialization_failure, deadlock_detected
RETRY_SQLSTATES = frozenset({"23505", "40001", "40P01"})
Insert = postgresql.Insert | sqlite.Insert


def insert(conn: Connection, table: Table) -> Insert:
    """An INSERT of the connection's dialect, with ``on_conflict_do_nothing/_do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def inserted(conn: Connection, statement: Insert) -> bool:
    """Run an ``INSERT ... ON CONFLICT DO NOTHING``: whether it inserted its row. (Told by
    RETURNING: the psycopg dialect does not report a row count for an INSERT.)"""
    table = statement.table
    assert isinstance(table, Table)
    first_key = next(iter(table.primary_key.columns))
    return conn.execute(statement.returning(first_key)).first() is not None


def lost_a_race(error: BaseException) -> bool:
    """Whether ``error`` (SQLAlchemy's or the driver's own) means a concurrent transaction
    got there first, so that running the same transaction again gives a clean answer: a
    unique violation (it committed the same row), a deadlock or a serialization failure."""
    orig = getattr(error, "orig", None) or error
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in RETRY_SQLSTATES
    return isinstance(orig, sqlite3.IntegrityError) and "UNIQUE" in str(orig)
