"""uvicorn's HTTP/1.1 protocol (httptools) with the limits it lacks: slow or oversized requests.

uvicorn times out only an idle keep-alive connection (``timeout_keep_alive``); a client that
sends half a request line or half its headers, or that trickles a body one byte at a time,
holds the connection (and its memory) for ever, and httptools accepts headers of any size.
So each connection here gets, from its first byte or its acceptance:

- a **header deadline** (``request_header_timeout_s``): the request line and headers must
  be complete within it, else the connection is closed (after a 408 when part of a request
  arrived). A connection that sends nothing at all is closed at the same deadline;
- a **header size limit** (``request_header_bytes_max``): past it, 431 and close;
- a **body deadline** (``request_body_timeout_s``), from the end of the headers to the end
  of the body: 408 and close (or just close if an answer has started).

The deadlines are absolute, not idle timers, so trickling one byte at a time does not extend
them. They cover receiving the request only: a slow answer (a report, an event stream) is
never cut. ``creditpool serve`` selects this class (``HTTP_PROTOCOL``); a reverse proxy in
front should enforce its own limits too (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import asyncio
import json
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from creditpool.settings import Settings

HTTP_PROTOCOL = "creditpool.http.protocol:GuardedHttpToolsProtocol"
"""What ``uvicorn --http`` (or ``uvicorn.run(http=...)``) takes to use this class."""


@dataclass(frozen=True, slots=True)
class RequestLimits:
    header_timeout_s: float
    body_timeout_s: float
    header_bytes_max: int


@cache
def request_limits() -> RequestLimits:
    """Read once per server process (each uvicorn worker reads its own environment)."""
    settings = Settings()
    return RequestLimits(
        settings.request_header_timeout_s,
        settings.request_body_timeout_s,
        settings.request_header_bytes_max,
    )


def problem_response(status: int, code: str, title: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying an RFC 9457 problem, closing the connection."""
    body = json.dumps(
        {
            "type": f"https://creditpool.dev/problems/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    head = (
        b"content-type: application/problem+json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return STATUS_LINE[status] + head + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = request_limits()
        self._deadline: TimerHandle | None = None
        self._reading_headers = True  # between requests, or inside a request line/headers
        self._header_bytes = 0  # bytes received since the current request's headers began
        self._header_size = 0  # of the current request's line and headers, as parsed
        self._header_overflow = False

    # -- the connection ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is closed at the header deadline too.
        self._arm(self.limits.header_timeout_s, self._headers_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_headers:
            self._header_bytes += len(data)
            if self._deadline is None:  # the first bytes of a request on a kept-alive line
                self._arm(self.limits.header_timeout_s, self._headers_timed_out)
        super().data_received(data)
        # Headers still incomplete after this many bytes (say, one endless header line,
        # which httptools buffers without calling on_header) are too large already.
        if (
            self._reading_headers
            and self._header_bytes > self.limits.header_bytes_max
            and not self.transport.is_closing()
        ):
            self._refuse_too_large()

    def send_400_response(self, msg: str) -> None:
        """The parser stopped: on malformed input (400, as uvicorn answers), or because
        ``on_url``/``on_header`` found the headers too large (431)."""
        if self._header_overflow:
            self._refuse_too_large()
        else:
            super().send_400_response(msg)

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the connection is no longer an HTTP request being read
        super().handle_websocket_upgrade()

    # -- parser callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._header_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_header(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_header(self, size: int) -> None:
        """Headers that arrive in one read are parsed whole within one feed: their size is
        checked as they are parsed. Raising stops the parser (``send_400_response``)."""
        self._header_size += size
        if self._header_size > self.limits.header_bytes_max:
            self._header_overflow = True
            raise _HeaderTooLarge

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._header_bytes = 0
        self._disarm()
        super().on_headers_complete()
        # Until the body has arrived; a request without a body completes at once, in the
        # same feed, and on_message_complete takes this deadline down again.
        self._arm(self.limits.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._disarm()
        self._reading_headers = True
        self._header_bytes = 0
        super().on_message_complete()

    # -- deadlines ---------------------------------------------------------------------

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request began while the previous one is still being answered:
            # never cut an answer; the new request's clock starts again.
            self._arm(self.limits.header_timeout_s, self._headers_timed_out)
            return
        if self._header_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(
            408,
            "request_timeout",
            "Request timeout",
            f"the request line and headers did not arrive within"
            f" {self.limits.header_timeout_s:g} s",
        )

    def _body_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # too late for a status: the answer has begun
            return
        self._refuse(
            408,
            "request_timeout",
            "Request timeout",
            f"the request body did not arrive within {self.limits.body_timeout_s:g} s",
        )

    def _refuse_too_large(self) -> None:
        self._refuse(
            431,
            "request_header_too_large",
            "Request header fields too large",
            f"the request line and headers are limited to {self.limits.header_bytes_max} bytes",
        )

    def _refuse(self, status: int, code: str, title: str, detail: str) -> None:
        """Answer with a problem and close. A request being handled sees a disconnect (its
        own answer, if any, goes nowhere)."""
        self._disarm()
        # INFO, not WARNING: a flood of slow clients must not flood the log as well.
        self.logger.info("%s - %d %s: %s", self._peer(), status, code, detail)
        self.transport.write(problem_response(status, code, title, detail))
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"


class _HeaderTooLarge(Exception):
    """Raised from a parser callback: httptools stops and reports a parser error."""
