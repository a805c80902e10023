"""All SQL about the feature catalog. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from creditpool.storage.tables import features
from creditpool.storage.types import DbRow


def get(conn: Connection, key: str) -> DbRow | None:
    return conn.execute(select(features).where(features.c.key == key)).first()


def list_all(conn: Connection) -> Sequence[DbRow]:
    return conn.execute(select(features).order_by(features.c.key)).all()


def put(conn: Connection, key: str, **values: Any) -> None:
    if get(conn, key) is None:
        conn.execute(features.insert().values(key=key, **values))
    else:
        conn.execute(update(features).where(features.c.key == key).values(**values))
