"""The library's list methods, made from the queries (``creditpool.queries``) as its
change methods are made from the commands (``pool.py``'s ``mutation``). Here, below the
domains, so that a domain's mixin of ``CreditPool`` (``webhooks.facade``) uses it too."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, Protocol, Self, TypeVar, cast, overload

from creditpool import queries as q
from creditpool import validation as check
from creditpool.core.errors import NotFound
from creditpool.repositories import orgs
from creditpool.storage.uow import Database, Tx

P = ParamSpec("P")
Q = TypeVar("Q", bound=q.Query)
T = TypeVar("T")


class Made:
    """A method made from a declaration (a command, a query): its name, documentation and
    signature, an unbound stand-in with them (``build``, for ``inspect`` and ``help``),
    and, read from a pool, the function ``_call`` makes, kept on the pool after the first
    read. A subclass says what the function does and, in its ``__get__``'s overloads,
    what type it has."""

    def __init__(self, doc: str, signature: inspect.Signature) -> None:
        self.__doc__ = doc
        self.signature = signature
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @property
    def build(self) -> Callable[..., Any]:
        return self._method(None)

    def _get(self, pool: Any) -> Any:
        if pool is None:
            return self
        method = self._method(pool)
        vars(pool)[self.name] = method  # later reads find it first
        return method

    def _method(self, pool: Any) -> Callable[..., Any]:
        method = self._call(pool)
        method.__name__ = method.__qualname__ = self.name
        method.__doc__ = self.__doc__
        method.__signature__ = self.signature  # type: ignore[attr-defined]
        return method

    def _call(self, pool: Any) -> Callable[..., Any]:
        raise NotImplementedError


class reading(Made, Generic[P, Q, T]):
    """A ``CreditPool`` list method made from a query (``creditpool.queries``): it takes
    the query's fields, so that a parameter is declared once, in the query, for the
    library and both clients alike. Read from a pool, it is a function that builds the
    query, checks its paging (a limit from 1 to ``PAGE_SIZE_MAX``; a cursor that is an
    item's number is positive), and runs ``read`` in one read transaction, of an
    organization that must exist when the query names one."""

    def __init__(self, query: Callable[P, Q], read: Callable[[Tx, Q], list[T]]) -> None:
        kind = cast(type[q.Query], query)
        super().__init__(kind.doc(), kind.method_signature(f"list[{_item_name(read)}]"))
        self.query = query
        self.read = read

    @overload
    def __get__(self, pool: None, owner: Any = None) -> Self: ...
    @overload
    def __get__(self, pool: Reader, owner: Any = None) -> Callable[P, list[T]]: ...
    def __get__(self, pool: Reader | None, owner: Any = None) -> Any:
        return self._get(pool)

    def _call(self, pool: Reader | None) -> Callable[..., Any]:
        query, read = self.query, self.read

        def method(*args: Any, **kwargs: Any) -> Any:
            assert pool is not None
            asked = _checked(cast(q.Query, query(*args, **kwargs)))
            with pool.db.read() as tx:
                org_id = getattr(asked, "org_id", None)
                if org_id is not None:
                    _require_org(tx, org_id)
                return read(tx, cast(Q, asked))

        return method


class Reader(Protocol):
    """What a ``reading`` method needs of its pool (``CreditPool`` and its mixins)."""

    db: Database


def _checked(asked: q.Query) -> q.Query:
    """``asked`` with its limit checked (None: all, where the query's limit may be None);
    a cursor that is an item's number checked too."""
    cursor = getattr(asked, asked.cursor)
    if cursor is not None and asked.cursor.endswith("_id"):
        _id(cursor, asked.cursor)
    whole = _LIMITS.get(type(asked))
    if whole is None:
        limit_field = next(f for f in dataclasses.fields(asked) if f.name == q.LIMIT)
        whole = _LIMITS[type(asked)] = limit_field.default is None
    limit = _limit(asked.limit) if whole else check.page_limit(asked.limit)
    return dataclasses.replace(asked, limit=limit)


# Whether a query's class lists all of its items when its limit is None (its default).
_LIMITS: dict[type[q.Query], bool] = {}


def _item_name(read: Callable[..., Any]) -> str:
    """The name of what ``read`` lists (its return annotation ``list[X]``), for ``help``."""
    answer = str(getattr(read, "__annotations__", {}).get("return", "list[Any]"))
    return answer.removeprefix("list[").removesuffix("]")


def _require_org(tx: Tx, org_id: str) -> None:
    if orgs.get_org(tx.conn, org_id) is None:
        raise NotFound(f"organization {org_id!r} not found")


def _limit(limit: int | None) -> int | None:
    """A page size, or None for a whole list."""
    return None if limit is None else check.page_limit(limit)


_id = check.positive_id
