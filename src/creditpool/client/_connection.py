"""What ``Client`` and ``AsyncClient`` both are: the operations, over an httpx client of
the server, with a retry policy. They differ in the httpx client (``H``, opened by
``_open``) and its transport (``TR``), and in how they send: and wait, or await."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import httpx

from creditpool.client._operations import Operations
from creditpool.client._retry import Retry
from creditpool.client._routes import Call, Pages
from creditpool.client._settings import client_headers

H = TypeVar("H", httpx.Client, httpx.AsyncClient)
TR = TypeVar("TR", httpx.BaseTransport, httpx.AsyncBaseTransport)


class Connection(Operations, Generic[H, TR]):
    """The base of both clients: their constructor and how an operation becomes a method."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: Retry | None = None,
        transport: TR | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.retry = retry or Retry()
        self._http: H = self._open(
            transport,
            base_url=base_url,
            headers=client_headers(api_key, headers),
            timeout=timeout,
        )

    def _open(self, transport: TR | None, **options: Any) -> H:
        """httpx's client of the server, with ``options`` (its base URL, headers, timeout)."""
        raise NotImplementedError

    # How each client sends: and waits for the answer (``Client``), or awaits it.
    def _run(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def _list(self, pages: Pages[Any]) -> Any:
        raise NotImplementedError

    def _items(self, pages: Pages[Any]) -> Any:
        raise NotImplementedError

    def _bind(self, build: Callable[..., Any], kind: str) -> Callable[..., Any]:
        """``build``'s parameters; sends what it builds (see ``_binding.py``): one request
        (``_run``), a whole list (``_list``) or its items as they come (``_items``)."""
        senders: dict[str, Callable[[Any], Any]] = {"call": self._run, "listing": self._list}
        send: Callable[[Any], Any] = senders.get(kind, self._items)

        def method(*args: Any, **kwargs: Any) -> Any:
            return send(build(*args, **kwargs))

        functools.update_wrapper(method, build)
        return method
