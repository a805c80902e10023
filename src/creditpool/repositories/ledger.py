"""All SQL about the ledger. Never commits."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, String, column, func, select, text
from sqlalchemy.engine import Connection

from creditpool.queries import Ledger
from creditpool.repositories.pages import listed
from creditpool.storage import compiled
from creditpool.storage.tables import ledger
from creditpool.storage.types import DbRow

# Written by every change of a balance (see storage.compiled).
_INSERT = compiled.Write(ledger.insert())


def insert_entries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """New entries, each a dict of the ledger's columns."""
    compiled.run(conn, _INSERT, rows)


def list_entries(conn: Connection, asked: Ledger) -> Sequence[DbRow]:
    query = select(ledger).where(ledger.c.org_id == asked.org_id)
    if asked.since is not None:
        query = query.where(ledger.c.at >= asked.since)
    if asked.until is not None:
        query = query.where(ledger.c.at < asked.until)
    return conn.execute(listed(query, ledger.c.seq, asked)).all()


_SEQ_MAX = 2**63 - 1


# The cursors travel as ONE parameter, a JSON list of [org, seq] pairs, so that the
# statement is the same whatever their number and SQLAlchemy compiles it once per dialect.
# (A VALUES list of the pairs was a new statement, and a new compilation, at every round of
# a stream hub: 17.7 % of a stream server's samples, bench/RESULTS.md.)
_CURSORS = {
    "postgresql": "SELECT c ->> 0 AS org_id, CAST(c ->> 1 AS BIGINT) AS after_seq"
    " FROM json_array_elements(CAST(:cursors AS JSON)) AS c",
    "sqlite": "SELECT json_extract(c.value, '$[0]') AS org_id,"
    " json_extract(c.value, '$[1]') AS after_seq FROM json_each(:cursors) AS c",
}


def entries_after(conn: Connection, cursors: dict[str, int], limit: int) -> Sequence[DbRow]:
    """The entries of several organizations in ONE statement: for each organization
    (org -> seq to read after), up to ``limit`` entries after its seq; by organization,
    then seq. Each organization's cut is the seq of its ``limit``-th new entry, found by a
    correlated subquery that reads at most ``limit`` index entries, so a cursor far behind
    costs a page, not the rest of its ledger (a ``row_number()`` filter would number them
    all)."""
    if not cursors:
        return []
    query = _entries_after(conn.dialect.name, limit)
    pairs = json.dumps([[org_id, seq] for org_id, seq in cursors.items()])
    return conn.execute(query, {"cursors": pairs}).all()


@functools.cache
def _entries_after(dialect: str, limit: int) -> Select[Any]:
    wanted = (
        text(_CURSORS[dialect])
        .columns(column("org_id", String), column("after_seq", BigInteger))
        .cte("cursors")
    )
    later = ledger.alias("later")
    cut = (
        select(later.c.seq)
        .where(later.c.org_id == wanted.c.org_id, later.c.seq > wanted.c.after_seq)
        .order_by(later.c.seq)
        .offset(limit - 1)
        .limit(1)
        .scalar_subquery()
    )
    bounds = select(wanted.c.org_id, wanted.c.after_seq, cut.label("upto")).cte("bounds")
    return (
        select(ledger)
        .join(
            bounds,
            (ledger.c.org_id == bounds.c.org_id)
            & (ledger.c.seq > bounds.c.after_seq)
            & (ledger.c.seq <= func.coalesce(bounds.c.upto, _SEQ_MAX)),
        )
        .order_by(ledger.c.org_id, ledger.c.seq)
    )


def left_at(conn: Connection, org_id: str, t: datetime) -> int:
    """Left after the last entry at or before ``t`` (0 before the first entry).

    Entries never go back in time (``at`` grows with ``seq``; ``verify`` checks it), so the
    last one is the newest ``at``, the greatest ``seq`` among equal ones: ordered so, the
    query reads one entry of ``ix_ledger_org_at`` (SQLite's index holds ``seq`` too;
    PostgreSQL sorts the few entries of that instant). Ordered by ``seq`` alone it scanned
    the primary key back from the newest entry over everything after ``t``: 0.5 s for a
    balance two years back in a ledger of a million entries (bench/growth.py)."""
    query = (
        select(ledger.c.total_after)
        .where(ledger.c.org_id == org_id, ledger.c.at <= t)
        .order_by(ledger.c.at.desc(), ledger.c.seq.desc())
        .limit(1)
    )
    value = conn.execute(query).scalar()
    return int(value) if value is not None else 0
