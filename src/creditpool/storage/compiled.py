"""SQLAlchemy Core statements compiled once per dialect and run on the driver's cursor.

The statements every change runs (the lock, the live grants, the ledger rows, the counters,
the consumption and hold rows) are declared as Core statements over ``storage.tables``, so
that their columns and types come from the one schema. Running them through
``Connection.execute`` costs more than SQLite takes to run them (building the cache key,
the execution context, the result object: bench/RESULTS.md), so each is compiled ONCE per
dialect to its SQL text, and its values go through the very processors SQLAlchemy itself
would apply (``UTCDateTime`` as text on SQLite, JSON, booleans), derived from the columns'
types, before reaching the driver's own cursor inside the connection's transaction.

A ``Write`` reads nothing back (an INSERT or UPDATE whose SET columns are ``keys``: each
becomes a parameter named after its column); a ``Query`` builds one typed row per result
row (``row(*values)``: a NamedTuple, a dataclass, or a function of the values).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import UpdateBase

R = TypeVar("R")
Processor = Callable[[Any], Any]
Params = dict[str, Any]

# sqlite3 takes named parameters (``:name``) as well as the dialect's default ``?``: named
# ones let every dialect take the same dict of parameters.
_SQLITE_NAMED = sqlite.pysqlite.dialect(paramstyle="named")


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor], ...]  # only parameters whose type converts values
    results: tuple[Processor | None, ...]
    converts: bool  # whether any result column does

    def bind(self, params: Params) -> Params:
        if not self.binds:
            return params
        bound = dict(params)
        for name, process in self.binds:
            if name in bound:
                bound[name] = process(bound[name])
        return bound


def _compile(
    statement: Select[Any] | UpdateBase, dialect: Dialect, keys: Sequence[str]
) -> _Compiled:
    target = _SQLITE_NAMED if dialect.name == "sqlite" else dialect
    compiled = statement.compile(dialect=target, column_keys=list(keys) or None)
    binds = []
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(target).bind_processor(target)
        if process is not None:
            binds.append((name, process))
    results: tuple[Processor | None, ...] = ()
    if isinstance(statement, Select):
        results = tuple(
            column.type.dialect_impl(target).result_processor(target, None)
            for column in statement.selected_columns
        )
    return _Compiled(str(compiled), tuple(binds), results, any(results))


class _Statement:
    def __init__(self, statement: Select[Any] | UpdateBase, keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self.keys = tuple(keys)
        self._by_dialect: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def compiled(self, dialect: Dialect, keys: tuple[str, ...] = ()) -> _Compiled:
        """The statement for ``dialect``; a ``Write`` without keys of its own sets the
        columns ``keys`` (one text per set of columns, each compiled once)."""
        found = self._by_dialect.get((dialect.name, keys))
        if found is None:
            found = _compile(self.statement, dialect, self.keys or keys)
            self._by_dialect[(dialect.name, keys)] = found
        return found

    def sql(self, dialect: Dialect) -> str:
        return self.compiled(dialect).sql


class Write(_Statement):
    """A statement run for its effect, its rows (if any) never read: an INSERT or UPDATE,
    or a SELECT of a function such as ``pg_notify``. It sets the columns ``keys`` or, without
    them, the columns its parameters name (an INSERT of whole rows: ``table.insert()``)."""


class Query(_Statement, Generic[R]):
    """A SELECT whose rows are read as ``row(*values)``, values converted by column type."""

    def __init__(self, statement: Select[Any], row: Callable[..., R]) -> None:
        super().__init__(statement)
        self.select = statement
        self.row = row

    def rows(self, dialect: Dialect, raw: Sequence[Sequence[Any]]) -> list[R]:
        compiled = self.compiled(dialect)
        make, results = self.row, compiled.results
        if not compiled.converts:
            return [make(*values) for values in raw]
        return [
            make(
                *[
                    v if p is None or v is None else p(v)
                    for p, v in zip(results, values, strict=True)
                ]
            )
            for values in raw
        ]


def texts(statement: Select[Any]) -> dict[str, str]:
    """A statement's SQL for each dialect, by name: for statements run on a cursor of their
    own (a report's server-side cursor) or outside the library (the benchmark's ``COPY``)."""
    from sqlalchemy.dialects.postgresql import psycopg  # the dialect, not the driver

    dialects: tuple[Dialect, ...] = (_SQLITE_NAMED, psycopg.dialect())  # type: ignore[no-untyped-call]
    return {d.name: _compile(statement, d, ()).sql for d in dialects}


def run(conn: Connection, statement: Write, params: Params | list[Params]) -> None:
    """Run a write on the driver's cursor, inside the connection's transaction: one row's
    parameters, or several rows' (``executemany``; nothing for none). A failure rolls the
    transaction back."""
    many = None
    if isinstance(params, list):
        if not params:
            return
        if len(params) > 1:
            many = params
        params = params[0]
    # A write of whole rows is compiled for the columns its parameters name.
    compiled = statement.compiled(conn.dialect, () if statement.keys else tuple(params))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if many is not None:
            cursor.executemany(compiled.sql, [compiled.bind(p) for p in many])
        else:
            cursor.execute(compiled.sql, compiled.bind(params))
    finally:
        cursor.close()


def fetch(conn: Connection, query: Query[R], params: Params) -> list[R]:
    """The typed rows of a query run like ``run``."""
    compiled = query.compiled(conn.dialect)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, compiled.bind(params))
        raw = cursor.fetchall()
    finally:
        cursor.close()
    return query.rows(conn.dialect, raw)


def fetch_together(
    conn: Connection, queries: Sequence[tuple[Query[Any], Params]]
) -> list[list[Any]]:
    """The typed rows of several independent queries. On PostgreSQL they travel in one
    pipeline (one round trip; the server still runs them in order, so a query after a
    ``FOR UPDATE`` reads under that lock); on SQLite they simply run one after the other."""
    if conn.dialect.name != "postgresql":
        return [fetch(conn, query, params) for query, params in queries]
    driver = conn.connection.driver_connection
    assert driver is not None
    cursors = [driver.cursor() for _ in queries]
    try:
        with driver.pipeline():
            for cursor, (query, params) in zip(cursors, queries, strict=True):
                compiled = query.compiled(conn.dialect)
                cursor.execute(compiled.sql, compiled.bind(params))
        return [
            query.rows(conn.dialect, cursor.fetchall())
            for cursor, (query, _) in zip(cursors, queries, strict=True)
        ]
    finally:
        for cursor in cursors:
            cursor.close()
