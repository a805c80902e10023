"""Every request gets an id (``X-Request-ID``, echoed back) and, when the settings ask for
JSON logs, one log line: route template, status, duration, organization, key id, id."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from creditpool.http.metrics import route_of
from creditpool.http.middleware import HttpMiddleware
from creditpool.http.security import _PRINCIPAL, Principal

REQUEST_ID = "X-Request-ID"
# A caller's id is kept when it is short printable text that cannot break a log line or a
# header; anything else is replaced by one of ours.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:@/+=~-]{1,128}")
REQUEST_ID_SCOPE = "creditpool.request_id"
log = logging.getLogger("creditpool.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def log_as_json() -> None:
    """The ``creditpool`` loggers write JSON lines to stdout (once per process)."""
    root = logging.getLogger("creditpool")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


def request_id_of(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-request-id" and _SANE_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class AccessMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, *, log_requests: bool = False) -> None:
        super().__init__(app)
        self.log_requests = log_requests

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = scope[REQUEST_ID_SCOPE] = request_id_of(scope)
        status = 500

        async def with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID] = request_id
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            if self.log_requests:
                _log(scope, status, time.perf_counter() - started, request_id)


def _log(scope: Scope, status: int, elapsed_s: float, request_id: str) -> None:
    caller: Principal | None = scope.get(_PRINCIPAL)
    org = scope.get("path_params", {}).get("org") or (caller.key.org_id if caller else None)
    fields = {
        "method": scope["method"],
        "route": route_of(scope),
        "status": status,
        "duration_ms": round(elapsed_s * 1000, 3),
        "org": org,
        "key_id": caller.key.id if caller else None,
        "request_id": request_id,
    }
    log.info("request", extra={"fields": fields})
