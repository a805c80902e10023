"""A ceiling on request bodies, enforced while they stream in (not only by Content-Length)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditpool.http.middleware import HttpMiddleware

BODY_BYTES_MAX = 64 * 1024


class BodyLimitMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, limit: int = BODY_BYTES_MAX) -> None:
        super().__init__(app)
        self.limit = limit

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await _too_large(send, self.limit)


class _TooLarge(BaseException):
    """Raised from ``receive`` when a streamed body passes the limit. Not an ``Exception``:
    FastAPI turns any ``Exception`` raised while it reads a body into a 400 "error parsing
    the body", which would hide the 413; this must reach the middleware unchanged."""


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "https://creditpool.dev/problems/payload_too_large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"request bodies are limited to {limit} bytes",
            "code": "payload_too_large",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
