"""Problem details (RFC 9457) back into the library's exceptions, by their stable ``code``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from creditpool.core import errors
from creditpool.core.errors import CreditPoolError

# Every expected failure is defined once, in core/errors.py; each code maps back to its class.
ERRORS: dict[str, type[CreditPoolError]] = {
    cls.code: cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, CreditPoolError) and cls is not CreditPoolError
}
# Members of a problem that every problem has; the rest become the exception's ``extra``.
_STANDARD = frozenset({"type", "title", "status", "detail", "code"})
_DECIMAL_EXTRAS = {
    "insufficient_credits": ("left", "required"),
    "pool_limit_exceeded": ("granted", "limit"),
}
# Extras the server sends under another name, because a problem's own member has theirs
# (``status`` is the HTTP status): back to the names the library's exception uses.
_RENAMED_EXTRAS = {"hold_not_open": {"hold_status": "status"}}
_TEXT_SHOWN_MAX = 200


def problem_code(response: httpx.Response) -> str | None:
    """The problem's ``code``, or None when the body is not a problem."""
    problem = _problem(response)
    return None if problem is None else problem["code"]


def error_from(response: httpx.Response) -> CreditPoolError:
    """The exception the library would have raised for this error response.

    A code this client does not know becomes a plain ``CreditPoolError`` whose ``extra``
    carries the ``code`` and the HTTP ``status``; so does a body that is not a problem
    (say, a proxy's HTML page).
    """
    problem = _problem(response)
    if problem is None:
        text = response.text[:_TEXT_SHOWN_MAX]
        return CreditPoolError(f"HTTP {response.status_code}: {text}", status=response.status_code)
    code: str = problem["code"]
    detail = str(problem.get("detail") or problem.get("title") or code)
    renamed = _RENAMED_EXTRAS.get(code, {})
    extra = {renamed.get(k, k): v for k, v in problem.items() if k not in _STANDARD}
    for name in _DECIMAL_EXTRAS.get(code, ()):
        extra[name] = _decimal(extra.get(name))
    cls = ERRORS.get(code)
    if cls is None:
        return CreditPoolError(detail, code=code, status=response.status_code, **extra)
    return cls(detail, **extra)


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return None
    return body


def _decimal(value: object) -> object:
    if not isinstance(value, str | int):
        return value
    try:
        return Decimal(value)
    except InvalidOperation:
        return value
