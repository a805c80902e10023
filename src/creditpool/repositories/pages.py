"""Keyset pages: the lists read a page at a time, each page from the key of the last row
of the page before it (the cursor), so that a deep page costs what the first one does and
rows written meanwhile are neither listed twice nor skipped. And the lists' optional
filters, each applied only when its value is given."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select

from creditpool.queries import Query


def listed(query: Select[Any], key: ColumnElement[Any], asked: Query) -> Select[Any]:
    """``query`` paged as ``asked`` says: from its cursor on, newest first when the cursor
    is a ``before`` (an item older ones follow), else oldest first; at most its limit."""
    cursor = getattr(asked, asked.cursor)
    if asked.cursor.startswith("before"):
        return newest_first(query, key, cursor, asked.limit)
    return oldest_first(query, key, cursor, asked.limit)


def oldest_first(
    query: Select[Any], key: ColumnElement[Any], after: object, limit: int | None
) -> Select[Any]:
    """``query`` in ascending ``key`` order, past the key ``after`` (None: from the first
    row), at most ``limit`` rows (None: every one)."""
    if after is not None:
        query = query.where(key > after)
    return query.order_by(key).limit(limit)


def newest_first(
    query: Select[Any], key: ColumnElement[Any], before: object, limit: int | None
) -> Select[Any]:
    """``query`` in descending ``key`` order, below the key ``before`` (None: from the
    last row), at most ``limit`` rows (None: every one)."""
    if before is not None:
        query = query.where(key < before)
    return query.order_by(key.desc()).limit(limit)


def where_given(query: Select[Any], *equal: tuple[ColumnElement[Any], object]) -> Select[Any]:
    """``query`` with ``column == value`` for each (column, value) whose value is not None."""
    for column, value in equal:
        if value is not None:
            query = query.where(column == value)
    return query
