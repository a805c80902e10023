"""All SQL about staff corrections and the grants adjustments moved. Never commits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.queries import Corrections
from creditpool.repositories.pages import listed, where_given
from creditpool.storage.tables import adjustment_allocations, corrections
from creditpool.storage.types import DbRow

_C = corrections.c
PARTIAL_VOID = "partial_void"


def insert(conn: Connection, **values: Any) -> None:
    conn.execute(corrections.insert().values(**values))


def insert_allocations(
    conn: Connection, org_id: str, correction_id: int, moves: list[tuple[int, int]]
) -> None:
    """``moves``: (grant id, credits), negative drawn from the grant, positive given back."""
    rows = [
        {"org_id": org_id, "correction_id": correction_id, "grant_id": gid, "amount": amount}
        for gid, amount in moves
    ]
    if rows:
        conn.execute(adjustment_allocations.insert(), rows)


def get(conn: Connection, org_id: str, correction_id: int) -> DbRow | None:
    query = select(corrections).where(_C.org_id == org_id, _C.id == correction_id)
    return conn.execute(query).first()


def list_for_org(conn: Connection, asked: Corrections) -> Sequence[DbRow]:
    """Newest first; ``before_id`` is the cursor of the next page."""
    kind = None if asked.kind is None else str(asked.kind)  # a CorrectionKind's text
    query = select(corrections).where(_C.org_id == asked.org_id)
    query = where_given(query, (_C.grant_id, asked.grant_id), (_C.kind, kind))
    return conn.execute(listed(query, _C.id, asked)).all()


def allocations(conn: Connection, org_id: str, ids: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Each adjustment's (grant id, signed credits), in grant order."""
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    if not ids:
        return found
    a = adjustment_allocations.c
    query = (
        select(a.correction_id, a.grant_id, a.amount)
        .where(a.org_id == org_id, a.correction_id.in_(ids))
        .order_by(a.correction_id, a.grant_id)
    )
    for cid, gid, amount in conn.execute(query):
        found[cid].append((gid, amount))
    return found


def moved_by_grant(conn: Connection, org_id: str) -> dict[int, int]:
    """What adjustments moved on each grant in all (signed): for ``verify``."""
    sums: dict[int, int] = defaultdict(int)
    a = adjustment_allocations.c
    for gid, amount in conn.execute(select(a.grant_id, a.amount).where(a.org_id == org_id)):
        sums[gid] += amount
    return dict(sums)


def voided_in_part_upto(conn: Connection, org_id: str, t: datetime) -> dict[int, int]:
    """The credits voided in part from each grant at or before ``t``: what its amount was
    less then."""
    sums: dict[int, int] = defaultdict(int)
    query = select(_C.grant_id, _C.credits).where(
        _C.org_id == org_id, _C.kind == PARTIAL_VOID, _C.at <= t
    )
    for gid, credits in conn.execute(query):
        sums[gid] += credits
    return dict(sums)
