"""All SQL about API keys. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from creditpool.queries import Keys
from creditpool.storage.tables import api_keys
from creditpool.storage.types import DbRow


def insert(conn: Connection, **values: Any) -> None:
    conn.execute(api_keys.insert().values(**values))


def get(conn: Connection, key_id: str) -> DbRow | None:
    return conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()


def list_keys(conn: Connection, asked: Keys) -> Sequence[DbRow]:
    """By creation, then id: after the key ``after`` (none after a key that does not
    exist), only ``org_id``'s when given."""
    after = asked.after
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id).limit(asked.limit)
    if asked.org_id is not None:
        query = query.where(api_keys.c.org_id == asked.org_id)
    if after is not None:
        made = select(api_keys.c.created_at).where(api_keys.c.id == after).scalar_subquery()
        query = query.where(
            or_(
                api_keys.c.created_at > made,
                and_(api_keys.c.created_at == made, api_keys.c.id > after),
            )
        )
    return conn.execute(query).all()


def revoke(conn: Connection, key_id: str, at: datetime) -> int:
    query = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    return conn.execute(query.values(revoked_at=at)).rowcount
