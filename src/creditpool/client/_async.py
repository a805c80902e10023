"""``AsyncClient``: the HTTP API with the library's methods, models and exceptions.

The methods are the operations of ``_operations.py``, written once for both clients; this
class says how a request is sent (httpx's ``AsyncClient``, retried by ``Retry``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from creditpool.client._operations import Operations
from creditpool.client._retry import NO_RETRY, Retry
from creditpool.client._routes import Call, Page, Pages
from creditpool.client._settings import client_headers

T = TypeVar("T")


class AsyncClient(Operations):
    """A creditpool server, called like the ``CreditPool`` library.

    Every method returns the library's models and raises the library's exceptions (plus
    ``Unauthorized``, ``Forbidden``, ``IdempotencyInFlight`` and ``PayloadTooLarge``, also in
    ``creditpool.core.errors``); ``httpx.TransportError`` when the server stays unreachable.
    Each mutation sends an ``Idempotency-Key`` (a new uuid4 unless ``idempotency_key`` is
    given) and keeps it on every retry, so a retried consumption is charged once.

        async with AsyncClient("http://127.0.0.1:8000", api_key="cp_...") as client:
            await client.consume("acme", "report", user_id="u-1")
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=client_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        policy = self.retry if call.retry else NO_RETRY
        request = call.request(self._http)
        attempt = 1
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as error:
                wait = policy.wait_s(attempt, mutating=call.mutating, error=error)
                if wait is None:
                    raise
            else:
                wait = policy.wait_s(attempt, mutating=call.mutating, response=response)
                if wait is None:
                    return call.result(response)
            await asyncio.sleep(wait)
            attempt += 1

    async def _items(self, pages: Pages[T]) -> AsyncIterator[T]:
        call: Call[Page[T]] | None = pages.first()
        while call is not None:
            page = await self._run(call)
            for item in page.data:
                yield item
            call = pages.after(page)

    async def _list(self, pages: Pages[T]) -> list[T]:
        return [item async for item in self._items(pages)]

    def _bind(self, build: Callable[..., Any], kind: str) -> Callable[..., Any]:
        """``build``'s parameters; sends what it builds (see ``_binding.py``)."""
        senders: dict[str, Callable[[Any], Any]] = {"call": self._run, "listing": self._list}
        send = senders.get(kind, self._items)
        return functools.wraps(build)(lambda *args, **kwargs: send(build(*args, **kwargs)))
