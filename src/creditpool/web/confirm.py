"""What the console's correction forms share: a change is asked for, then confirmed.

A form posts ``step=review`` first: the input is checked as the library checks it (a
refusal shows the form again with the reason, nothing changed) and a confirmation page
shows what will happen, with the values in hidden fields. Its button posts
``step=confirm`` (or ``step=edit`` to change them): only then is the change made, once per
form (its nonce is the idempotency key, so a double submit changes nothing more). No
script is needed anywhere.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from creditpool.core.errors import CreditPoolError, NotFound
from creditpool.http.deps import Pool
from creditpool.http.replay import Replayer, Sealer
from creditpool.http.security import Action, Principal
from creditpool.idempotency.service import validate_key
from creditpool.orgs.models import Org
from creditpool.pool import CreditPool
from creditpool.web.auth import form_caller, page_caller
from creditpool.web.render import page

FormText = Annotated[str, Form(max_length=2000)]
Csrf = Annotated[str, Form()]
Nonce = Annotated[str, Form(max_length=64)]
Step = Annotated[Literal["review", "confirm", "edit"], Form()]
Checked = TypeVar("Checked")
Made = TypeVar("Made")
Again = Callable[[int, str | None], Response]  # the form again: (status, why refused)


def staff_viewer(request: Request, action: Action, org: str | None = None) -> Principal:
    """The staff member looking at a console page that offers ``action``."""
    caller = page_caller(request)
    caller.require(Action.ORGS_LIST)
    caller.require(action, org)
    return caller


def staff_submitter(
    request: Request, csrf: str, action: Action, org: str | None = None
) -> Principal:
    """The staff member posting a console form that does ``action`` (its CSRF token
    checked first)."""
    caller = form_caller(request, csrf)
    caller.require(Action.ORGS_LIST)
    caller.require(action, org)
    return caller


def form_key(kind: str, nonce: str) -> str | None:
    """A form's idempotency key: its nonce, one per form shown (none: every submit counts)."""
    return f"web-{kind}-{nonce}" if nonce else None


def once(
    request: Request,
    caller: Principal,
    org_id: str | None,
    kind: str,
    nonce: str,
    fields: dict[str, Any],
    call: Callable[[], BaseModel],
    *,
    seal: Sealer | None = None,
) -> bytes:
    """Make a directory change once per form: the form's nonce is the idempotency key of
    the caller's key (as over HTTP), so a second submit answers the first's result. The
    answer's JSON (the change's result)."""
    replayer: Replayer = request.app.state.replayer
    key = form_key(kind, nonce)
    key = validate_key(key) if key else None
    response = replayer.run(
        request, caller, org_id, fields, 200, lambda _: call(), seal=seal, key=key
    )
    return bytes(response.body)


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
    """What a page's handler is given: the request and the pool. Nothing is checked here:
    the handler asks who the caller is first (``staff``), once FastAPI has validated its
    parameters (as before: a malformed request is a 422 whoever sends it)."""

    request: Request
    pool: CreditPool

    def staff(self, action: Action, org: str | None = None) -> Principal:
        """The staff member looking at a console page that offers ``action``."""
        return staff_viewer(self.request, action, org)

    def page(self, template: str, status_code: int = 200, **context: Any) -> Response:
        return page(self.request, template, status_code=status_code, **context)

    def confirm(self, caller: Principal, confirmation: Confirmation) -> Response:
        return confirm_page(self.request, caller, confirmation)


@dataclass(frozen=True)
class Post(Visit):
    """What a form's handler is given: a ``Visit`` and the form's CSRF token and nonce
    (its idempotency key), checked when the handler asks for its caller."""

    csrf: str
    nonce: str

    def staff(self, action: Action, org: str | None = None) -> Principal:
        """The staff member posting a console form that does ``action`` (its CSRF token
        checked first)."""
        return staff_submitter(self.request, self.csrf, action, org)

    def caller(self, action: Action, org: str | None = None) -> Principal:
        """Whoever posts a form that does ``action`` (its CSRF token checked first)."""
        caller = form_caller(self.request, self.csrf)
        caller.require(action, org)
        return caller

    def key(self, kind: str) -> str | None:
        return form_key(kind, self.nonce)

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
        return once(self.request, caller, org_id, kind, self.nonce, fields, call, seal=seal)


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


def _shown(response: Response) -> Response:
    return response


def reviewed(
    step: str,
    form: Again,
    check: Callable[[], Checked],
    review: Callable[[Checked], Response],
    make: Callable[[Checked], Made],
    done: Callable[[Made], Response],
    *,
    message: Callable[[CreditPoolError], str | None] = detail,
    check_edit: bool = False,
) -> Response:
    """The steps of a correction form. ``edit``: the form again (``form(status, error)``)
    with what was sent; ``review``: the input checked (``check``), then its confirmation
    page (``review``); ``confirm``: checked again, the change made (``make``), and the
    answer to it (``done``: a redirect, or a page). A refusal shows the form again with why
    (``message``) and changes nothing, except NotFound: that is the friendly 404 page.
    ``check_edit``: ``edit`` checks the input too (and shows why it is refused)."""
    if step == "edit" and not check_edit:
        return form(200, None)
    if step == "confirm":
        return attempt(lambda: make(check()), form, done, message=message)

    def shown() -> Response:
        checked = check()
        return form(200, None) if step == "edit" else review(checked)

    return attempt(shown, form, _shown, message=message)


@dataclass(frozen=True)
class Confirmation:
    """A confirmation page: what is about to happen, and the form that makes it happen."""

    title: str
    action: str  # where the confirming form posts
    fields: dict[str, str]  # the values, sent again as hidden fields
    facts: Sequence[tuple[str, str]] = ()
    warning: str | None = None
    submit: str = "Confirm"
    danger: bool = False
    cancel: str = "/staff"
    crumbs: Sequence[tuple[str, str]] = field(default_factory=list)
    editable: bool = True  # offers "Change…" (step=edit) to go back to the form


def org_crumbs(org: Org) -> list[tuple[str, str]]:
    """The crumbs of a console page about one organization: the list, then it."""
    return [("/staff", "Organizations"), (f"/staff/orgs/{org.id}", org.name)]


def confirm_page(request: Request, caller: Principal, confirmation: Confirmation) -> Response:
    return page(
        request, "staff_confirm.html", caller=caller, c=confirmation, nonce=uuid.uuid4().hex
    )
