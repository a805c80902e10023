"""What the console's correction forms share: a change is asked for, then confirmed.

A form posts ``step=review`` first: the input is checked as the library checks it (a
refusal shows the form again with the reason, nothing changed) and a confirmation page
shows what will happen, with the values in hidden fields. Its button posts
``step=confirm`` (or ``step=edit`` to change them): only then is the change made, once per
form (its nonce is the idempotency key, so a double submit changes nothing more). No
script is needed anywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, TypeVar

from fastapi import Form
from fastapi.responses import Response

from creditpool.core.errors import CreditPoolError
from creditpool.http.security import Principal
from creditpool.orgs.models import Org
from creditpool.web.forms import Again, Made, Visit, attempt, detail

Step = Annotated[Literal["review", "confirm", "edit"], Form()]
Checked = TypeVar("Checked")


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


def confirm_page(visit: Visit, caller: Principal, confirmation: Confirmation) -> Response:
    return visit.page("staff_confirm.html", caller=caller, c=confirmation, nonce=uuid.uuid4().hex)
