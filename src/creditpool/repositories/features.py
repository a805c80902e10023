"""All SQL about the feature catalog. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.storage import conflicts
from creditpool.storage.tables import features
from creditpool.storage.types import DbRow


def get(conn: Connection, key: str) -> DbRow | None:
    return conn.execute(select(features).where(features.c.key == key)).first()


def list_all(
    conn: Connection, *, after: str | None = None, limit: int | None = None
) -> Sequence[DbRow]:
    query = select(features).order_by(features.c.key).limit(limit)
    if after is not None:
        query = query.where(features.c.key > after)
    return conn.execute(query).all()


def put(conn: Connection, key: str, **values: Any) -> None:
    """Insert or update in one statement: two writers of a new key both succeed."""
    statement = conflicts.insert(conn, features).values(key=key, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=[features.c.key], set_=values))
