"""RFC 9457 problem details: every error leaves through here, with a stable ``code``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from creditpool.core.errors import CreditPoolError
from creditpool.core.errors import Forbidden as Forbidden
from creditpool.core.errors import IdempotencyInFlight as IdempotencyInFlight
from creditpool.core.errors import PayloadTooLarge as PayloadTooLarge
from creditpool.core.errors import Unauthorized as Unauthorized

MEDIA_TYPE = "application/problem+json"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "options", "head", "trace"}
log = logging.getLogger("creditpool.api")


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://creditpool.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": writable(detail),
        "code": code,
    }
    body.update({k: str(v) if isinstance(v, Decimal) else v for k, v in extra.items()})
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def writable(text: str) -> str:
    """``text`` as UTF-8 can hold it: a lone surrogate echoed from a caller's input (a
    Python string can hold one) is written as its escape, never fails the answer."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# Extras named like a member every problem has (RFC 9457's ``status`` is the HTTP status)
# travel under another name; the client (``client/_errors.py``) maps them back.
RENAMED_EXTRAS: dict[str, dict[str, str]] = {"hold_not_open": {"status": "hold_status"}}


def from_error(error: CreditPoolError) -> JSONResponse:
    renamed = RENAMED_EXTRAS.get(error.code, {})
    extra = {renamed.get(name, name): value for name, value in error.extra.items()}
    return problem(error.status, error.code, error.title, error.detail, **extra)


def _allowed_methods(request: Request, default: str) -> str:
    """Every documented method at this path (RFC 9110). Starlette's own Allow names only the
    first route that matched the path, and FastAPI has a route per method."""
    paths: dict[str, Any] = request.app.openapi().get("paths", {})
    for template, item in paths.items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods = {m.upper() for m in item if m in HTTP_METHODS}
            methods |= {"HEAD"} if "GET" in methods else set()
            return ", ".join(sorted(methods))
    return default


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", ""))
    if error.get("type") == "json_invalid":  # say why: malformed, a duplicate key, ...
        reason = (error.get("ctx") or {}).get("error")
        message = f"the request body is not valid JSON: {reason or message}"
    return writable(message)


def install(app: FastAPI) -> None:
    @app.exception_handler(CreditPoolError)
    async def _expected(_: Request, error: CreditPoolError) -> JSONResponse:
        return from_error(error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        found = list(error.errors())
        errors = [
            {"loc": [writable(str(p)) for p in e.get("loc", ())], "msg": _message(e)} for e in found
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'][1:]) or 'request'}: {first['msg']}"
        if found and found[0].get("type") == "invalid_amount":  # api.schemas amounts
            return problem(422, "invalid_amount", "Invalid amount", detail, errors=errors)
        return problem(422, "invalid_input", "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:
            # FastAPI's answer to a body it cannot even decode (not UTF-8): invalid input
            # like any other malformed JSON, not a status of its own.
            detail = f"the request body is not valid JSON: {error.detail}"
            return problem(422, "invalid_input", "Invalid input", detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        return problem(error.status_code, code, str(error.detail), str(error.detail), headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=error)
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
