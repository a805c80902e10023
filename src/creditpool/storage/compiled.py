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

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from sqlalchemy import Dialect
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import Update, UpdateBase

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
        # What a merged batch must know (``merged``): the table written, if an UPDATE.
        self.table: str | None = getattr(getattr(statement, "table", None), "name", None)
        self.updates = self.table if isinstance(statement, Update) else None

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
    transaction back. Inside ``merged`` the write waits to travel with the others."""
    many = None
    if isinstance(params, list):
        if not params:
            return
        if len(params) > 1:
            many = params
        params = params[0]
    # A write of whole rows is compiled for the columns its parameters name.
    compiled = statement.compiled(conn.dialect, () if statement.keys else tuple(params))
    waiting: _Waiting | None = conn.info.get(_WAITING)
    if waiting is not None:
        waiting.append((statement, compiled, many if many is not None else [params]))
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if many is not None:
            cursor.executemany(compiled.sql, [compiled.bind(p) for p in many])
        else:
            cursor.execute(compiled.sql, compiled.bind(params))
    finally:
        cursor.close()


def fetch(conn: Connection, query: Query[R], params: Params) -> list[R]:
    """The typed rows of a query run like ``run`` (after any writes waiting in ``merged``)."""
    _flush(conn)
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
    _flush(conn)
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


# -- one statement for a change's writes (PostgreSQL) ---------------------------------------

_Waiting = list[tuple[Write, _Compiled, list[Params]]]
_WAITING = "creditpool.waiting_writes"
_PARAM = re.compile(r"%\(([a-z_0-9]+)\)s")


@contextmanager
def merged(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the writes ``run`` inside the block travel as ONE statement when it
    ends (data-modifying ``WITH`` queries, one per row; a SELECT such as ``pg_notify``
    as the main query): the server parses, plans and executes one statement instead of
    one per row, and the driver sends one (bench/RESULTS.md, "one statement for a
    change's writes"). The parts of one statement run on one snapshot and cannot see
    each other's effects, so the writes are merged only when none needs another's:
    every part is an INSERT of a new row, or an UPDATE of a table no other part writes,
    of rows named once; otherwise they run one after the other, in order, as without
    the block. A read inside the block first sends what waits. Elsewhere (SQLite) the
    block changes nothing."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.info[_WAITING] = []
    try:
        yield
        _flush(conn)
    finally:
        conn.info.pop(_WAITING, None)


def send_waiting_writes_first(conn: Connection, *_: Any) -> None:
    """For SQLAlchemy's ``before_execute`` event (``storage.engine``): a statement run the
    usual way inside ``merged`` comes after the writes waiting there."""
    _flush(conn)


def _flush(conn: Connection) -> None:
    waiting: _Waiting | None = conn.info.get(_WAITING)
    if not waiting:
        return
    conn.info[_WAITING] = []
    driver = conn.connection.driver_connection
    if _independent(waiting):
        from psycopg import RawCursor  # PostgreSQL only: the driver is an optional extra

        sql, values = _merge(waiting)
        with RawCursor(driver) as raw:  # type: ignore[arg-type]
            raw.execute(sql, values)
        return
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        for _, compiled, rows in waiting:
            if len(rows) > 1:
                cursor.executemany(compiled.sql, [compiled.bind(p) for p in rows])
            else:
                cursor.execute(compiled.sql, compiled.bind(rows[0]))
    finally:
        cursor.close()


def _independent(waiting: _Waiting) -> bool:
    """Whether no write of ``waiting`` depends on another's effect: each UPDATE is of a
    table nothing else in the batch writes, and names each row once."""
    tables = [w.table for w, _, _ in waiting]
    for write, _, rows in waiting:
        if write.updates is None:
            continue
        if tables.count(write.updates) > 1:
            return False
        named = [tuple(v for k, v in p.items() if k not in write.keys) for p in rows]
        if len(set(named)) != len(named):
            return False
    return True


_MERGED: dict[tuple[tuple[int, int], ...], tuple[str, tuple[str, ...]]] = {}


def _merge(waiting: _Waiting) -> tuple[str, list[Any]]:
    """The merged statement in PostgreSQL's own ``$n`` placeholders, and its values. It
    runs on a ``RawCursor``: psycopg converts and caches ``%(name)s`` queries only up to
    4,096 bytes and 50 parameters, which a change's writes pass, and converting it anew
    at every call cost more than the statements it saved."""
    shape = tuple((id(compiled), len(rows)) for _, compiled, rows in waiting)
    found = _MERGED.get(shape)
    if found is None:
        found = _merged_sql(waiting)
        if len(_MERGED) < 256:  # a handful of shapes in practice; never unbounded
            _MERGED[shape] = found
    sql, names = found
    values: Params = {}
    for i, (_, compiled, rows) in enumerate(waiting):
        for j, row in enumerate(rows):
            prefix = f"w{i}_{j}_"
            for name, value in compiled.bind(row).items():
                values[prefix + name] = value
    return sql, [values[name] for name in names]


def _merged_sql(waiting: _Waiting) -> tuple[str, tuple[str, ...]]:
    parts: list[str] = []
    selects: list[str] = []
    names: dict[str, int] = {}

    def placeholder(prefix: str, match: re.Match[str]) -> str:
        number = names.setdefault(prefix + match.group(1), len(names) + 1)
        return f"${number}"

    for i, (write, compiled, rows) in enumerate(waiting):
        for j in range(len(rows)):
            prefix = f"w{i}_{j}_"
            text = _PARAM.sub(partial(placeholder, prefix), compiled.sql)
            text = text.replace("%%", "%")  # the pyformat escape, which $n text has not
            if isinstance(write.statement, Select):
                selects.append(f"({text}) AS w{i}_{j}")
            else:
                parts.append(f"w{i}_{j} AS ({text})")
    head = f"WITH {', '.join(parts)} " if parts else ""
    tail = f" FROM {', '.join(selects)}" if selects else ""
    return f"{head}SELECT 1{tail}", tuple(names)
