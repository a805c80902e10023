"""Who is looking at a page: the session cookie only (pages never take bearer keys), and
the CSRF token every form POST must carry."""

from __future__ import annotations

from fastapi import Request

from creditpool.core.errors import CreditPoolError
from creditpool.http.cookies import Sessions
from creditpool.http.security import Principal, csrf_matches, session_claims, session_principal
from creditpool.sessions.models import SessionClaims


class SignInRequired(CreditPoolError):
    code = "sign_in_required"
    status = 401
    title = "Please sign in"


class CsrfRefused(CreditPoolError):
    code = "csrf_refused"
    status = 403
    title = "This form has expired"


def sessions(request: Request) -> Sessions:
    """The app's browser sessions (their settings: sign-in links' lifetime, the demo)."""
    found: Sessions = request.app.state.sessions
    return found


def page_claims(request: Request) -> SessionClaims:
    claims = session_claims(request)
    if claims is None:
        raise SignInRequired(
            "your session has ended or this browser has none: open the usage page again"
            " from your product"
        )
    return claims


def page_caller(request: Request) -> Principal:
    return session_principal(page_claims(request))


def form_caller(request: Request, csrf: str | None) -> Principal:
    """The caller of a form POST, whose CSRF token must be the session's own."""
    claims = page_claims(request)
    if not csrf_matches(claims, csrf):
        raise CsrfRefused("reload the page and submit the form again")
    return session_principal(claims)
