"""What a page's handler is given, and how a form's change is made.

A handler takes a ``Visited`` (the request and the pool) or, for a form, a ``Posted`` (and
the form's CSRF token and nonce) instead of declaring each, and the form's text fields
declared once by name (``text_fields``; a form that asks for one ledger change names its
command's fields). Nothing is checked when they are made: the handler asks for its caller
first thing, once FastAPI has validated every parameter, so a malformed request is a 422
whoever sends it. ``attempt`` makes the change: a refusal shows the form again with why.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from creditpool.core.errors import CreditPoolError, NotFound
from creditpool.http.deps import Pool
from creditpool.http.replay import Replayer, Sealer
from creditpool.http.security import Action, Principal
from creditpool.idempotency.service import validate_key
from creditpool.pool import CreditPool
from creditpool.web.auth import form_caller, page_caller
from creditpool.web.render import page

FormText = Annotated[str, Form(max_length=2000)]
Csrf = Annotated[str, Form()]
Nonce = Annotated[str, Form(max_length=64)]
Made = TypeVar("Made")
Again = Callable[[int, str | None], Response]  # the form again: (status, why refused)


def text_fields(*names: str, **defaults: str) -> Any:
    """A dependency: the form's text fields ``names`` (each ``FormText``; not sent: ``""``,
    or its ``defaults``), as sent, in that order (the order of a confirmation's hidden
    fields). A form that asks for one ledger change names the command's fields
    (``commands.Grant.body_fields()``)."""

    def sent(**fields: str) -> dict[str, str]:
        return {name: fields[name] for name in names}

    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=defaults.get(name, ""),
            annotation=FormText,
        )
        for name in names
    ]
    sent.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return Depends(sent)


@dataclass(frozen=True)
class Visit:
    """What a page's handler is given: the request and the pool."""

    request: Request
    pool: CreditPool

    def caller(self, action: Action, org: str | None = None) -> Principal:
        """Whoever looks at a page that shows ``action``'s data (of ``org``)."""
        caller = page_caller(self.request)
        caller.require(action, org)
        return caller

    def staff(self, action: Action, org: str | None = None) -> Principal:
        """The staff member looking at a console page that offers ``action``."""
        caller = page_caller(self.request)
        caller.require(Action.ORGS_LIST)
        caller.require(action, org)
        return caller

    def page(self, template: str, status_code: int = 200, **context: Any) -> Response:
        return page(self.request, template, status_code=status_code, **context)


@dataclass(frozen=True)
class Post(Visit):
    """What a form's handler is given: a ``Visit``, the form's CSRF token (checked when the
    handler asks for its caller) and its nonce (one per form shown: its idempotency key)."""

    csrf: str
    nonce: str

    def caller(self, action: Action, org: str | None = None) -> Principal:
        """Whoever posts a form that does ``action`` (its CSRF token checked first)."""
        caller = form_caller(self.request, self.csrf)
        caller.require(action, org)
        return caller

    def staff(self, action: Action, org: str | None = None) -> Principal:
        """The staff member posting a console form that does ``action``."""
        caller = form_caller(self.request, self.csrf)
        caller.require(Action.ORGS_LIST)
        caller.require(action, org)
        return caller

    def key(self, kind: str) -> str | None:
        """The form's idempotency key: its nonce (none: every submit counts)."""
        return f"web-{kind}-{self.nonce}" if self.nonce else None

    def once(
        self,
        caller: Principal,
        org_id: str | None,
        kind: str,
        fields: dict[str, Any],
        call: Callable[[], BaseModel],
        *,
        seal: Sealer | None = None,
    ) -> bytes:
        """Make a directory change once per form: the form's nonce is the idempotency key
        of the caller's key (as over HTTP), so a second submit answers the first's result.
        The answer's JSON (the change's result)."""
        replayer: Replayer = self.request.app.state.replayer
        key = self.key(kind)
        key = validate_key(key) if key else None
        response = replayer.run(
            self.request, caller, org_id, fields, 200, lambda _: call(), seal=seal, key=key
        )
        return bytes(response.body)


def _visit(request: Request, pool: Pool) -> Visit:
    return Visit(request, pool)


def _post(request: Request, pool: Pool, csrf: Csrf = "", nonce: Nonce = "") -> Post:
    return Post(request, pool, csrf, nonce)


Visited = Annotated[Visit, Depends(_visit)]
Posted = Annotated[Post, Depends(_post)]


def see_other(url: str) -> Response:
    """After a form that changed something: the page that shows it (a GET)."""
    return RedirectResponse(url, status_code=303)


def refusal(error: CreditPoolError) -> str:
    """A refusal as a form shows it: its title, and what was wrong when it says."""
    return f"{error.title}: {error.detail}" if error.detail else error.title


def detail(error: CreditPoolError) -> str | None:
    return error.detail


def attempt(
    make: Callable[[], Made],
    again: Again,
    done: Callable[[Made], Response],
    *,
    message: Callable[[CreditPoolError], str | None] = detail,
    refused: type[CreditPoolError] = CreditPoolError,
) -> Response:
    """Make a change (``make``) and answer it (``done``); ``refused`` (a refusal of the
    library) shows the form again with why (``again(status, message)``) and changes
    nothing, except NotFound: that is the friendly 404 page."""
    try:
        made = make()
    except NotFound:
        raise
    except refused as error:
        return again(error.status, message(error))
    return done(made)
