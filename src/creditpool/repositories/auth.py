"""All SQL about API keys. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from creditpool.storage.tables import api_keys
from creditpool.storage.types import DbRow


def insert(conn: Connection, **values: Any) -> None:
    conn.execute(api_keys.insert().values(**values))


def get(conn: Connection, key_id: str) -> DbRow | None:
    return conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()


def list_all(conn: Connection) -> Sequence[DbRow]:
    return conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)).all()


def revoke(conn: Connection, key_id: str, at: datetime) -> int:
    query = update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    return conn.execute(query.values(revoked_at=at)).rowcount
