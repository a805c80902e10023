"""How an operation written once becomes a method of ``Client`` and of ``AsyncClient``.

An operation (``_operations.py``) is a function that returns what to send. ``operation``,
``listing`` and ``walk`` make it a method: read from a client, the descriptor hands the
function to the client's ``_bind``, which returns a function of the same parameters that
sends what it builds: and waits (``Client``) or returns an awaitable or an async iterator
(``AsyncClient``). The overloads tell type checkers what each client's method returns.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Generic, ParamSpec, Protocol, Self, TypeVar, cast, overload

from creditpool.client._routes import Call, Pages

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
A = TypeVar("A")


class Client(Protocol):
    """``Client`` as the overloads see it (named by what only it has: no import cycle)."""

    def close(self) -> None: ...


class AsyncClient(Protocol):
    """``AsyncClient`` as the overloads see it."""

    async def aclose(self) -> None: ...


class _Bound(Generic[P, R, S, A]):
    """An operation as a method: ``build`` makes ``R`` (what to send); read from a
    ``Client`` the method answers ``S``, from an ``AsyncClient`` ``A``."""

    kind = ""

    def __init__(self, build: Callable[P, R]) -> None:
        self.build = build
        functools.update_wrapper(cast(Any, self), build)  # its name, doc and signature

    def __set_name__(self, owner: type[Any], name: str) -> None:
        # An operation made from a command (``_routes.command``) is named by its method.
        self.__name__ = self.__qualname__ = name
        self.build.__name__ = self.build.__qualname__ = name

    @overload
    def __get__(self, client: None, owner: Any = None) -> Self: ...
    @overload
    def __get__(self, client: Client, owner: Any = None) -> Callable[P, S]: ...
    @overload
    def __get__(self, client: AsyncClient, owner: Any = None) -> Callable[P, A]: ...
    def __get__(self, client: Any, owner: Any = None) -> Any:
        return self if client is None else client._bind(self.build, self.kind)


class operation(_Bound[P, Call[T], T, Coroutine[Any, Any, T]]):
    """One request: ``T`` from ``Client``, an awaitable of ``T`` from ``AsyncClient``."""

    kind = "call"


class listing(_Bound[P, Pages[T], list[T], Coroutine[Any, Any, list[T]]]):
    """A list read page by page: ``list[T]``, or an awaitable of it."""

    kind = "listing"


class walk(_Bound[P, Pages[T], Iterator[T], AsyncIterator[T]]):
    """Every item, page after page: an iterator, or an async iterator."""

    kind = "walk"
