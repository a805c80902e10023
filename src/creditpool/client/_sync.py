"""``Client``: the HTTP API with the library's methods, models and exceptions.

The methods are the operations of ``_operations.py``, written once for both clients; this
class says how a request is sent (httpx's ``Client``, retried by ``Retry``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from creditpool.client._connection import Connection
from creditpool.client._retry import Attempts
from creditpool.client._routes import Call, Page, Pages

T = TypeVar("T")


class Client(Connection[httpx.Client, httpx.BaseTransport]):
    """A creditpool server, called like the ``CreditPool`` library (``AsyncClient`` is the
    same with awaitables).

        with Client("http://127.0.0.1:8000", api_key="cp_...") as client:
            client.consume("acme", "report", user_id="u-1")
    """

    def _open(self, transport: httpx.BaseTransport | None, **options: Any) -> httpx.Client:
        return httpx.Client(transport=transport, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        attempts = Attempts.of(self.retry, retried=call.retry, mutating=call.mutating)
        request = call.request(self._http)
        while True:
            sent = self._send(request)
            wait = attempts.wait_s(sent)
            if wait is None:
                return call.answer(sent)
            time.sleep(wait)

    def _send(self, request: httpx.Request) -> httpx.Response | httpx.TransportError:
        try:
            return self._http.send(request)
        except httpx.TransportError as error:
            return error

    def _items(self, pages: Pages[T]) -> Iterator[T]:
        call: Call[Page[T]] | None = pages.first()
        while call is not None:
            page = self._run(call)
            yield from page.data
            call = pages.after(page)

    def _list(self, pages: Pages[T]) -> list[T]:
        return list(self._items(pages))
