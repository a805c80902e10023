"""All SQL about portal tokens and shared secrets. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection

from creditpool.storage.tables import app_secrets, portal_tokens
from creditpool.storage.types import DbRow


def insert_token(conn: Connection, **values: Any) -> None:
    conn.execute(portal_tokens.insert().values(**values))


def get_token(conn: Connection, token_hash: str) -> DbRow | None:
    return conn.execute(
        select(portal_tokens).where(portal_tokens.c.token_hash == token_hash)
    ).first()


def use_token(conn: Connection, token_hash: str, at: datetime) -> bool:
    """Mark the token used if it is unused and unexpired; False when another request (or
    time) got there first. One statement, so two requests can never both succeed."""
    t = portal_tokens.c
    query = (
        update(portal_tokens)
        .where(t.token_hash == token_hash, t.used_at.is_(None), t.expires_at > at)
        .values(used_at=at)
    )
    return conn.execute(query).rowcount == 1


def delete_expired_tokens(conn: Connection, before: datetime) -> int:
    return conn.execute(delete(portal_tokens).where(portal_tokens.c.expires_at < before)).rowcount


def get_secret(conn: Connection, name: str) -> str | None:
    value = conn.execute(select(app_secrets.c.value).where(app_secrets.c.name == name)).scalar()
    return None if value is None else str(value)


def insert_secret(conn: Connection, name: str, value: str, at: datetime) -> None:
    conn.execute(app_secrets.insert().values(name=name, value=value, created_at=at))
