"""What the package's ASGI middlewares share: each one sees HTTP requests only."""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """An ASGI middleware of HTTP requests: any other scope (``lifespan``, ``websocket``)
    goes to the app untouched. A subclass writes ``http``, what it does with a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: it hands back the one to await (the app's or ``http``'s),
        # so a request costs no more than with the check written out in each middleware.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
