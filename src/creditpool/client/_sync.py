"""``Client``: the HTTP API with the library's methods, models and exceptions.

The methods are the operations of ``_operations.py``, written once for both clients; this
class says how a request is sent (httpx's ``Client``, retried by ``Retry``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from creditpool.client._operations import Operations
from creditpool.client._retry import NO_RETRY, Retry
from creditpool.client._routes import Call, Page, Pages
from creditpool.client._settings import client_headers

T = TypeVar("T")


class Client(Operations):
    """A creditpool server, called like the ``CreditPool`` library (``AsyncClient`` is the
    same with awaitables).

        with Client("http://127.0.0.1:8000", api_key="cp_...") as client:
            client.consume("acme", "report", user_id="u-1")
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._http = httpx.Client(
            base_url=base_url,
            headers=client_headers(api_key, headers),
            timeout=timeout,
            transport=transport,
        )

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
        policy = self.retry if call.retry else NO_RETRY
        request = call.request(self._http)
        attempt = 1
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as error:
                wait = policy.wait_s(attempt, mutating=call.mutating, error=error)
                if wait is None:
                    raise
            else:
                wait = policy.wait_s(attempt, mutating=call.mutating, response=response)
                if wait is None:
                    return call.result(response)
            time.sleep(wait)
            attempt += 1

    def _items(self, pages: Pages[T]) -> Iterator[T]:
        call: Call[Page[T]] | None = pages.first()
        while call is not None:
            page = self._run(call)
            yield from page.data
            call = pages.after(page)

    def _bind(self, build: Callable[..., Any], kind: str) -> Callable[..., Any]:
        """``build``'s parameters; sends what it builds (see ``_binding.py``)."""
        senders: dict[str, Callable[[Any], Any]] = {"call": self._run, "listing": self._list}
        send = senders.get(kind, self._items)
        return functools.wraps(build)(lambda *args, **kwargs: send(build(*args, **kwargs)))

    def _list(self, pages: Pages[T]) -> list[T]:
        return list(self._items(pages))
