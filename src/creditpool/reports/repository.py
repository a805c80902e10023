"""All SQL of the reports. Never commits.

Each report is one SELECT read through a server-side cursor (``stream_results``): psycopg
opens a named cursor and fetches ``batch_rows`` rows per round trip, SQLite steps its
cursor as rows are asked for. Plain driver SQL returns bare tuples, with no per-row work
of the SQL expression layer; the statements are public so that the benchmark can run the
very same SELECT under PostgreSQL's ``COPY`` as its baseline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from creditpool.storage.engine import bind_time, driver_sql

# Paid consumptions only: a refunded consumption is not consumed.
USAGE_SQL = driver_sql(
    "SELECT created_at, feature, feature_name, action, integration, user_id, cost,"
    " CAST(breakdown AS TEXT), requests FROM consumptions"
    " WHERE org_id = :org_id AND status = 'paid' AND created_at >= :lo AND created_at < :hi"
    " ORDER BY created_at, id"
)
BALANCE_SQL = driver_sql(
    "SELECT at, action, method, credits, total_before, total_after, grant_id, consumption_id"
    " FROM ledger WHERE org_id = :org_id AND at >= :lo AND at < :hi ORDER BY seq"
)
PURCHASES_SQL = driver_sql(
    "SELECT granted_at, amount, available_from, expires_at, remaining, voided_at FROM grants"
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
    streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
    result = streaming.exec_driver_sql(statement[dialect], _params(dialect, org_id, lo, hi))
    try:
        yield from result.partitions(batch_rows)
    finally:
        result.close()


def count(conn: Connection, kind: str, org_id: str, lo: datetime, hi: datetime) -> int:
    dialect = conn.dialect.name
    value = conn.exec_driver_sql(
        COUNT_SQL[kind][dialect], _params(dialect, org_id, lo, hi)
    ).scalar()
    return int(value or 0)


def feature_names(conn: Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql(FEATURE_NAMES_SQL[conn.dialect.name]).all()
    return {str(key): str(name) for key, name in rows}
