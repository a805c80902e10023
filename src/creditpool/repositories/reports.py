"""All SQL of the reports. Never commits.

Each report is one SELECT read through a server-side cursor (``stream_results``): psycopg
opens a named cursor and fetches ``batch_rows`` rows per round trip, SQLite steps its
cursor as rows are asked for. Plain driver SQL returns bare tuples, with no per-row work
of the SQL expression layer; the statements are public so that the benchmark can run the
very same SELECT under PostgreSQL's ``COPY`` as its baseline.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from creditpool.storage.engine import bind_time, driver_sql


def _statement(sql: str) -> dict[str, str]:
    """One statement for both drivers. ``utc(column)`` marks the timestamps: read as
    stored (SQLite: UTC text; PostgreSQL: timestamptz). Reading them as UTC text on
    PostgreSQL too (``AT TIME ZONE 'UTC'``) was measured slower: the named cursor's
    batches do not overlap the server's work with ours."""
    sqlite = re.sub(r"utc\((\w+)\)", r"\1", sql)
    postgresql = re.sub(r"utc\((\w+)\)", r"\1", sql)
    return {"sqlite": sqlite, "postgresql": driver_sql(postgresql)["postgresql"]}


# Paid consumptions only (a refunded consumption is not consumed); a settled hold's
# consumption is one like any other.
USAGE_SQL = _statement(
    "SELECT utc(created_at), feature, feature_name, action, integration, user_id, cost,"
    " CAST(breakdown AS TEXT), requests FROM consumptions"
    " WHERE org_id = :org_id AND status = 'paid' AND created_at >= :lo AND created_at < :hi"
    " ORDER BY created_at, id"
)
# Every ledger entry, holds, releases and hold expiries included: the chain counts Left.
BALANCE_SQL = _statement(
    "SELECT utc(at), action, method, credits, total_before, total_after, grant_id,"
    " consumption_id, hold_id FROM ledger WHERE org_id = :org_id AND at >= :lo AND at < :hi"
    " ORDER BY seq"
)
PURCHASES_SQL = _statement(
    "SELECT utc(granted_at), amount, utc(available_from), utc(expires_at), remaining,"
    " voided_at FROM grants"
    " WHERE org_id = :org_id AND granted_at >= :lo AND granted_at < :hi ORDER BY granted_at, id"
)
COUNT_SQL = {
    "usage": driver_sql(
        "SELECT count(*) FROM consumptions WHERE org_id = :org_id AND status = 'paid'"
        " AND created_at >= :lo AND created_at < :hi"
    ),
    "balance": driver_sql(
        "SELECT count(*) FROM ledger WHERE org_id = :org_id AND at >= :lo AND at < :hi"
    ),
    "purchases": driver_sql(
        "SELECT count(*) FROM grants WHERE org_id = :org_id"
        " AND granted_at >= :lo AND granted_at < :hi"
    ),
}
FEATURE_NAMES_SQL = driver_sql("SELECT key, name FROM features")


def _params(dialect: str, org_id: str, lo: datetime, hi: datetime) -> dict[str, Any]:
    return {"org_id": org_id, "lo": bind_time(dialect, lo), "hi": bind_time(dialect, hi)}


def stream(
    conn: Connection,
    statement: dict[str, str],
    org_id: str,
    lo: datetime,
    hi: datetime,
    batch_rows: int,
) -> Iterator[Sequence[Any]]:
    """The rows of ``statement`` in [lo, hi), ``batch_rows`` at a time, as they come."""
    dialect = conn.dialect.name
    params = _params(dialect, org_id, lo, hi)
    if dialect == "postgresql":
        yield from _stream_postgresql(conn, statement[dialect], params, batch_rows)
        return
    streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
    result = streaming.exec_driver_sql(statement[dialect], params)
    try:
        yield from result.partitions(batch_rows)
    finally:
        result.close()


def _stream_postgresql(
    conn: Connection, sql: str, params: dict[str, Any], batch_rows: int
) -> Iterator[Sequence[Any]]:
    """A psycopg server-side (named) cursor in the connection's transaction, fetched
    ``batch_rows`` at a time: plain tuples, one round trip per batch. (SQLAlchemy's
    ``stream_results`` does the same but fetches in small, growing steps.)"""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor(name=f"report_{uuid.uuid4().hex}") as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(batch_rows):
            yield batch


def count(conn: Connection, kind: str, org_id: str, lo: datetime, hi: datetime) -> int:
    dialect = conn.dialect.name
    value = conn.exec_driver_sql(
        COUNT_SQL[kind][dialect], _params(dialect, org_id, lo, hi)
    ).scalar()
    return int(value or 0)


def feature_names(conn: Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql(FEATURE_NAMES_SQL[conn.dialect.name]).all()
    return {str(key): str(name) for key, name in rows}
