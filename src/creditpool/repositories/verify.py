"""What ``verify`` reads: an organization's whole history, streamed in key order. Never
commits.

Every query here is read ``STREAM_ROWS`` rows at a time (a server-side cursor on
PostgreSQL; SQLite steps its statement), so ``verify`` holds a few thousand rows at once
whatever the size of the history. The rows of one consumption (or hold) come from several
tables; each is read ordered by that id, so the caller merges them as it walks the ids:
the allocations' and holds' primary keys give that order; the ledger's entries of a
consumption or hold are sorted by the database (on disk past its memory budget), not in
Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.engine import Connection

from creditpool.storage.tables import (
    consumptions,
    hold_allocations,
    holds,
    ledger,
)

STREAM_ROWS = 2_000  # rows fetched at a time


def _stream(conn: Connection, query: Select[Any]) -> Iterator[Any]:
    result = conn.execute(query.execution_options(yield_per=STREAM_ROWS))
    try:
        for rows in result.partitions():  # a list at a time: cheaper than row by row
            yield from rows
    finally:
        result.close()  # also when the caller stops early: the cursor goes at once


def entries(conn: Connection, org_id: str) -> Iterator[Any]:
    """Every entry in ledger order, with what the chain's checks need."""
    c = ledger.c
    query = (
        select(c.seq, c.at, c.method, c.credits, c.total_before, c.total_after)
        .where(c.org_id == org_id)
        .order_by(c.seq)
    )
    return _stream(conn, query)


def amounts(conn: Connection, table: Any, key: Any, org_id: str) -> Iterator[Any]:
    """(key, amount) of every row of ``table`` (allocations, restorations, hold
    allocations), in no particular order."""
    return _stream(conn, select(key, table.c.amount).where(table.c.org_id == org_id))


def amounts_by_consumption(conn: Connection, table: Any, org_id: str) -> Iterator[Any]:
    """(consumption id, amount) of the allocations or restorations, by consumption id (the
    primary key's order)."""
    query = (
        select(table.c.consumption_id, table.c.amount)
        .where(table.c.org_id == org_id)
        .order_by(table.c.consumption_id, table.c.grant_id)
    )
    return _stream(conn, query)


def consumptions_in_order(conn: Connection, org_id: str) -> Iterator[Any]:
    c = consumptions.c
    query = (
        select(c.id, c.cost, c.status, c.refund_restored, c.refund_lost)
        .where(c.org_id == org_id)
        .order_by(c.id)
    )
    return _stream(conn, query)


def _entries_naming(conn: Connection, org_id: str, named: Any, what: Any) -> Iterator[Any]:
    """(``named``, ``what``, credits) of the entries whose column ``named`` is set, by
    ``named``, then in ledger order."""
    c = ledger.c
    query = (
        select(named, what, c.credits)
        .where(c.org_id == org_id, named.is_not(None))
        .order_by(named, c.seq)
    )
    return _stream(conn, query)


def consumption_entries(conn: Connection, org_id: str) -> Iterator[Any]:
    """(consumption id, method, credits) of the entries naming a consumption, by
    consumption id, then in ledger order."""
    return _entries_naming(conn, org_id, ledger.c.consumption_id, ledger.c.method)


def hold_allocations_by_hold(conn: Connection, org_id: str) -> Iterator[Any]:
    """(hold id, grant id, amount held, amount given back, hold status) of every hold's
    allocations, by hold id."""
    a, h = hold_allocations.c, holds.c
    query = (
        select(a.hold_id, a.grant_id, a.amount, a.returned, h.status)
        .join(holds, (h.org_id == a.org_id) & (h.id == a.hold_id))
        .where(a.org_id == org_id)
        .order_by(a.hold_id, a.grant_id)
    )
    return _stream(conn, query)


def hold_entries(conn: Connection, org_id: str) -> Iterator[Any]:
    """(hold id, action, credits) of the entries naming a hold, by hold id, then in ledger
    order."""
    return _entries_naming(conn, org_id, ledger.c.hold_id, ledger.c.action)


def settlements(conn: Connection, org_id: str) -> Iterator[Any]:
    """(hold id, consumption id) of the consumptions that settled a hold, by hold id."""
    c = consumptions.c
    query = (
        select(c.hold_id, c.id)
        .where(c.org_id == org_id, c.hold_id.is_not(None))
        .order_by(c.hold_id, c.id)
    )
    return _stream(conn, query)


def holds_in_order(conn: Connection, org_id: str) -> Iterator[Any]:
    h = holds.c
    query = (
        select(h.id, h.status, h.amount, h.expires_at, h.consumption_id, h.released, h.lost)
        .where(h.org_id == org_id)
        .order_by(h.id)
    )
    return _stream(conn, query)
