"""Errors on pages are pages: the same exceptions as the API, rendered as friendly HTML
for paths under the page prefixes (the API keeps its RFC 9457 problems)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from creditpool.core.errors import CreditPoolError
from creditpool.web.auth import SignInRequired
from creditpool.web.render import page

PAGE_PREFIXES = ("/app", "/staff", "/portal", "/demo")
log = logging.getLogger("creditpool.web")
Handler = Callable[[Request, Exception], Awaitable[Response] | Response]

MESSAGES = {
    400: ("Something is wrong with this request", "Go back and try again."),
    401: ("Please sign in", "Open the usage page again from your product."),
    403: ("Not allowed", "Your role does not include this page or action."),
    404: ("Page not found", "It does not exist, or it belongs to another organization."),
    405: ("Not allowed", "This address does not accept that kind of request."),
    409: ("That did not work", "The request conflicts with the current state."),
    410: ("This link has expired", "Each sign-in link works once, for a few minutes."),
    422: ("Please check what you entered", "Something in the form is not valid."),
}


def is_page(request: Request) -> bool:
    path = request.url.path
    return any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


def error_page(request: Request, status: int, detail: str | None = None) -> Response:
    title, hint = MESSAGES.get(status, ("Something went wrong", "Please try again later."))
    return page(
        request, "error.html", status_code=status, status=status, title=title, hint=hint,
        detail=detail,
    )  # fmt: skip


def install(app: FastAPI) -> None:
    """Wrap the API's handlers: page paths get a page, every other path the API's own."""
    api_handlers: dict[type[Exception], Handler] = {
        kind: app.exception_handlers[kind]
        for kind in (CreditPoolError, RequestValidationError, StarletteHTTPException, Exception)
        if kind in app.exception_handlers
    }

    def wrap(kind: type[Exception]) -> None:
        api = api_handlers.get(kind)

        async def handle(request: Request, error: Exception) -> Response:
            if is_page(request):
                return _page_error(request, error)
            assert api is not None
            response = api(request, error)
            return await response if isinstance(response, Awaitable) else response

        app.add_exception_handler(kind, handle)

    for kind in api_handlers:
        wrap(kind)


def _page_error(request: Request, error: Exception) -> Response:
    if isinstance(error, SignInRequired) and request.url.path.startswith("/staff"):
        return RedirectResponse("/staff/login", status_code=303)
    if isinstance(error, CreditPoolError):
        return error_page(request, error.status, error.detail)
    if isinstance(error, RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:])
        return error_page(request, 422, f"{where}: {first.get('msg', 'invalid')}")
    if isinstance(error, StarletteHTTPException):
        return error_page(request, error.status_code)
    log.exception("unexpected error on a page", exc_info=error)
    return error_page(request, 500)
