"""All SQL about the feature catalog. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from creditpool.queries import FeaturePrices, Features
from creditpool.repositories.pages import listed
from creditpool.storage import conflicts
from creditpool.storage.tables import feature_prices, features
from creditpool.storage.types import DbRow


def get(conn: Connection, key: str) -> DbRow | None:
    return conn.execute(select(features).where(features.c.key == key)).first()


def list_all(conn: Connection, asked: Features) -> Sequence[DbRow]:
    return conn.execute(listed(select(features), features.c.key, asked)).all()


def put(conn: Connection, key: str, **values: Any) -> None:
    """Insert or update in one statement: two writers of a new key both succeed."""
    statement = conflicts.insert(conn, features).values(key=key, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=[features.c.key], set_=values))


def append_price(conn: Connection, **values: Any) -> None:
    """A row of the price history: the price set, from its instant on."""
    conn.execute(feature_prices.insert().values(**values))


def prices(conn: Connection, asked: FeaturePrices) -> Sequence[DbRow]:
    """A feature's prices, newest first (rows are appended in time order)."""
    query = select(feature_prices).where(feature_prices.c.feature == asked.key)
    return conn.execute(listed(query, feature_prices.c.id, asked)).all()
