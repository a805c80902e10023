"""All SQL of the reports. Never commits.

Each report is one SELECT read through a server-side cursor (``stream_results``): psycopg
opens a named cursor and fetches ``batch_rows`` rows per round trip, SQLite steps its
cursor as rows are asked for. Plain driver SQL returns bare tuples, with no per-row work
of the SQL expression layer; the statements are public so that the benchmark can run the
very same SELECT under PostgreSQL's ``COPY`` as its baseline.

On PostgreSQL the usage report's CSV can also come formatted by the server itself
(``usage_csv``): ``COPY (SELECT <the cells as text>) TO STDOUT WITH (FORMAT csv)``.
"""

from __future__ import annotations

import json
import select as os_select
import uuid
from collections.abc import Generator, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import String, Text, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import ColumnClause

from creditpool.core.money import SCALE
from creditpool.storage import compiled
from creditpool.storage.tables import consumptions, features, grants, ledger
from creditpool.storage.types import UTCDateTime

_PAID: ColumnClause[str] = literal_column("'paid'", String)
_c, _l, _g = consumptions.c, ledger.c, grants.c


def _in_range(column: Any) -> Any:
    return (column >= bindparam("lo", type_=UTCDateTime)) & (
        column < bindparam("hi", type_=UTCDateTime)
    )


# Paid consumptions only (a refunded consumption is not consumed); a settled hold's
# consumption is one like any other. Timestamps are read as stored (SQLite: UTC text;
# PostgreSQL: timestamptz). Reading them as UTC text on PostgreSQL too (``AT TIME ZONE
# 'UTC'``) was measured slower: the named cursor's batches do not overlap the server's work
# with ours.
_USAGE_WHERE = (_c.org_id == bindparam("org_id")) & (_c.status == _PAID) & _in_range(_c.created_at)
_USAGE: Select[Any] = (
    select(
        _c.created_at,
        _c.feature,
        _c.feature_name,
        _c.action,
        _c.integration,
        _c.user_id,
        _c.cost,
        cast(_c.breakdown, Text),
        _c.requests,
    )
    .where(_USAGE_WHERE)
    .order_by(_c.created_at, _c.id)
)
# Every ledger entry, holds, releases and hold expiries included: the chain counts Left.
_BALANCE_WHERE = (_l.org_id == bindparam("org_id")) & _in_range(_l.at)
_BALANCE: Select[Any] = (
    select(
        _l.at,
        _l.action,
        _l.method,
        _l.credits,
        _l.total_before,
        _l.total_after,
        _l.grant_id,
        _l.consumption_id,
        _l.hold_id,
    )
    .where(_BALANCE_WHERE)
    .order_by(_l.seq)
)
_PURCHASES_WHERE = (_g.org_id == bindparam("org_id")) & _in_range(_g.granted_at)
_PURCHASES: Select[Any] = (
    select(_g.granted_at, _g.amount, _g.available_from, _g.expires_at, _g.remaining, _g.voided_at)
    .where(_PURCHASES_WHERE)
    .order_by(_g.granted_at, _g.id)
)
# Each report's SQL per dialect: public, so that the benchmark runs the very same SELECT
# under PostgreSQL's ``COPY`` as its baseline.
USAGE_SQL = compiled.texts(_USAGE)
BALANCE_SQL = compiled.texts(_BALANCE)
PURCHASES_SQL = compiled.texts(_PURCHASES)
_COUNT = {
    "usage": compiled.Query(
        select(func.count()).select_from(consumptions).where(_USAGE_WHERE), int
    ),
    "balance": compiled.Query(select(func.count()).select_from(ledger).where(_BALANCE_WHERE), int),
    "purchases": compiled.Query(
        select(func.count()).select_from(grants).where(_PURCHASES_WHERE), int
    ),
}


class _FeatureName(NamedTuple):
    key: str
    name: str


_FEATURE_NAMES = compiled.Query(select(features.c["key"], features.c.name), _FeatureName)


def _params(conn: Connection, org_id: str, lo: datetime, hi: datetime) -> dict[str, Any]:
    """The parameters as the dialect stores them (see ``UTCDateTime``)."""
    bound = _COUNT["usage"].compiled(conn.dialect).bind({"lo": lo, "hi": hi})
    return {"org_id": org_id, **bound}


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
    params = _params(conn, org_id, lo, hi)
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


# -- the usage report formatted by PostgreSQL -----------------------------------------------


def _credits_text(units: str) -> str:
    """``format_credits`` in SQL: exact, at least two fractional digits, no trailing zeros
    past them (units 5000 -> 0.50, 12345 -> 1.2345)."""
    exact = f"{units} * 0.{'0' * (SCALE - 1)}1"
    cases = " ".join(
        f"WHEN {units} %% {10 ** (SCALE - digits)} = 0 THEN round({exact}, {digits})"
        for digits in range(2, SCALE)
    )
    return f"CASE {cases} ELSE {exact} END"


_PG_DIALECT = postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]
# Every cell as the report writes it, so that COPY's CSV is the report's own: the instant
# in the session's zone (set to the organization's) with its offset, the feature's display
# name (a JSON object of key -> name, bound once), credits as decimals. An empty string
# becomes NULL: COPY writes NULL as an empty cell and '' as "", the csv module both as
# an empty cell. The breakdown's JSON text comes as it is stored, as COPY writes it
# (quoted when it holds a quote or a comma), between two cells of one ``BREAKDOWN_MARK``
# each (a control character the API refuses in text; the reader copes with one anyway):
# the reader swaps ``,<its cell>,`` for the readable cell (``readable_breakdown``, once per distinct value). Making it
# readable in SQL (json_each and string_agg per row) took the COPY of a million rows from
# 3.4 s to 10.4 s; its hex instead of its text cost PostgreSQL 10-20 % more.
BREAKDOWN_MARK = b"\x01"
USAGE_CSV_COPY = f"""COPY (
SELECT
    to_char(consumptions.created_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'),
    nullif(coalesce(
        CAST(%(feature_names)s AS jsonb) ->> consumptions.feature, consumptions.feature
    ), ''),
    nullif(consumptions.feature_name, ''),
    nullif(consumptions.action, ''),
    nullif(consumptions.integration, ''),
    nullif(consumptions.user_id, ''),
    {_credits_text("consumptions.cost")},
    E'\\x01',
    CAST(consumptions.breakdown AS TEXT),
    E'\\x01',
    consumptions.requests
FROM consumptions
WHERE {_USAGE_WHERE.compile(dialect=_PG_DIALECT)}
ORDER BY consumptions.created_at, consumptions.id
) TO STDOUT WITH (FORMAT csv)"""
# For this transaction only: the organization's zone for to_char, and no JIT (compiling
# the plan of a long report took ~400 ms before its first row).
_CSV_SESSION = "SELECT set_config('TimeZone', %(zone)s, true), set_config('jit', 'off', true)"

CopyRow = bytes | bytearray | memoryview


def usage_csv(
    conn: Connection,
    org_id: str,
    lo: datetime,
    hi: datetime,
    zone: str,
    feature_names: dict[str, str],
) -> Generator[CopyRow, None, None] | None:
    """The usage report's rows in [lo, hi) as PostgreSQL writes them in CSV, one row per
    item (``<7 cells>,<mark>,<breakdown JSON>,<mark>,<requests>\\n``); None when the database
    cannot: not PostgreSQL, or a zone PostgreSQL does not know (checked now, before
    any row, in a savepoint that leaves the transaction usable)."""
    if conn.dialect.name != "postgresql":
        return None
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(_CSV_SESSION, {"zone": zone})
    except DBAPIError:
        return None
    params = {**_params(conn, org_id, lo, hi), "feature_names": json.dumps(feature_names)}
    return _copy_rows(conn, USAGE_CSV_COPY, params)


def _copy_rows(
    conn: Connection, statement: str, params: dict[str, Any]
) -> Generator[CopyRow, None, None]:
    """COPY ... TO STDOUT read as it comes: PostgreSQL sends one message per row, so each
    item is exactly one row, its line end included.

    The rows libpq already holds are taken straight from it (``get_copy_data``): through
    psycopg's ``Copy.read`` (a generator and a wait per row) reading cost about a third
    more of the server's CPU (bench/REPORTS.md). When libpq holds none, ``Copy.read``
    waits for more; the end, when libpq hands it over here, is read as psycopg would.

    Close it before the transaction ends: closed midway (the client went away), psycopg
    cancels the COPY and drains it, while a COPY left open makes the transaction's
    rollback wait forever."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement, params) as copy:
        pgconn = driver.pgconn
        held = pgconn.get_copy_data
        while True:
            size, row = held(1)  # 1: never wait
            if size > 0:
                yield row
            elif size == 0:  # none held yet: psycopg waits (and sees the end if it comes)
                row = copy.read()
                if not row:
                    return
                yield row
            else:  # the end, or an error, came along with the rows held
                _copy_result(pgconn, driver.info.encoding)
                return


def _copy_result(pgconn: Any, encoding: str) -> None:
    """After ``get_copy_data`` said the COPY is over: its results until there are no more
    (what psycopg's ``copy_from`` reads there), then an error among them raised."""
    from psycopg import pq  # here: SQLite needs no postgres extra
    from psycopg.errors import error_from_result

    failed = None
    while True:
        while pgconn.is_busy():
            os_select.select([pgconn.socket], [], [])  # readable
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
            failed = result
    if failed is not None:
        raise error_from_result(failed, encoding=encoding)


def count(conn: Connection, kind: str, org_id: str, lo: datetime, hi: datetime) -> int:
    params = {"org_id": org_id, "lo": lo, "hi": hi}
    return compiled.fetch(conn, _COUNT[kind], params)[0]


_FIRST = select(
    select(func.min(_l.at)).where(_l.org_id == bindparam("org_id")).scalar_subquery(),
    select(func.min(_g.granted_at)).where(_g.org_id == bindparam("org_id")).scalar_subquery(),
    select(func.min(_c.created_at)).where(_c.org_id == bindparam("org_id")).scalar_subquery(),
)


def first_activity(conn: Connection, org_id: str) -> datetime | None:
    """The organization's earliest entry: a ledger entry, a grant or a consumption (a
    pending grant is granted before its ledger entry); None when it has none yet."""
    found = [at for at in conn.execute(_FIRST, {"org_id": org_id}).one() if at is not None]
    return min(found) if found else None


def feature_names(conn: Connection) -> dict[str, str]:
    return {f.key: f.name for f in compiled.fetch(conn, _FEATURE_NAMES, {})}
