"""``AsyncClient``: the HTTP API with the library's methods, models and exceptions.

The methods are the operations of ``_operations.py``, written once for both clients; this
class says how a request is sent (httpx's ``AsyncClient``, retried by ``Retry``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from creditpool.client._connection import Connection
from creditpool.client._retry import Attempts
from creditpool.client._routes import Call, Page, Pages

T = TypeVar("T")


class AsyncClient(Connection[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """A creditpool server, called like the ``CreditPool`` library.

    Every method returns the library's models and raises the library's exceptions (plus
    ``Unauthorized``, ``Forbidden``, ``IdempotencyInFlight`` and ``PayloadTooLarge``, also in
    ``creditpool.core.errors``); ``httpx.TransportError`` when the server stays unreachable.
    Each mutation sends an ``Idempotency-Key`` (a new uuid4 unless ``idempotency_key`` is
    given) and keeps it on every retry, so a retried consumption is charged once.

        async with AsyncClient("http://127.0.0.1:8000", api_key="cp_...") as client:
            await client.consume("acme", "report", user_id="u-1")
    """

    def _open(
        self, transport: httpx.AsyncBaseTransport | None, **options: Any
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=transport, **options)

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
        attempts = Attempts.of(self.retry, retried=call.retry, mutating=call.mutating)
        request = call.request(self._http)
        while True:
            sent = await self._send(request)
            wait = attempts.wait_s(sent)
            if wait is None:
                return call.answer(sent)
            await asyncio.sleep(wait)

    async def _send(self, request: httpx.Request) -> httpx.Response | httpx.TransportError:
        try:
            return await self._http.send(request)
        except httpx.TransportError as error:
            return error

    async def _items(self, pages: Pages[T]) -> AsyncIterator[T]:
        call: Call[Page[T]] | None = pages.first()
        while call is not None:
            page = await self._run(call)
            for item in page.data:
                yield item
            call = pages.after(page)

    async def _list(self, pages: Pages[T]) -> list[T]:
        return [item async for item in self._items(pages)]
