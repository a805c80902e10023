"""``creditpool credit-requests ...``: an organization's requests for more credits, and the
staff's answer (a grant, which closes the request, or a dismissal)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from creditpool.cli import render
from creditpool.cli.calls import change, listing
from creditpool.cli.context import (
    ExpiresAt,
    IdempotencyKey,
    Note,
    OrgId,
    local_user,
)
from creditpool.cli.credits import AMOUNT_ARGS
from creditpool.cli.errors import group
from creditpool.core.statuses import CreditRequestStatus

if TYPE_CHECKING:  # models load pydantic: not for `--help`
    from creditpool.credit_requests.models import CreditRequest
    from creditpool.grants.models import Grant

credit_requests_app = group("Requests for more credits, and their answers.")

RequestId = Annotated[int, typer.Argument(help="The request's id.")]
COLUMNS: render.Columns = {
    "ID": "id",
    "Created": "created_at",
    "Status": "status",
    "Credits=": "amount",
    "By": "requested_by",
    "Message~": "message",
    "Closed": "closed_at",
    "Closed by": "closed_by",
    "Grant": "grant_id",
}
By = Annotated[str | None, typer.Option(help="Who answers (default: the local user name).")]


def by_or_local_user(by: str | None) -> str:
    """Who asks or answers: ``--by``, else the local user (``cli`` when the system cannot
    tell)."""
    return by or local_user("cli")


@credit_requests_app.command("list")
@listing("credit_requests", COLUMNS)
def list_(
    found: list[CreditRequest],
    org_id: OrgId,
    status: Annotated[
        CreditRequestStatus | None, typer.Option(help="Only open, granted or dismissed ones.")
    ] = None,
) -> str:
    """An organization's credit requests, newest first."""
    return f"Credit requests of {org_id}"


@credit_requests_app.command("request", context_settings=AMOUNT_ARGS)
@change("request_credits", by="requested_by", by_default=by_or_local_user)
def request(
    r: CreditRequest,
    org_id: OrgId,
    amount: Annotated[str, typer.Argument(help="Credits asked for, e.g. 500.")],
    message: Annotated[str | None, typer.Option(help="A word for the account team.")] = None,
    by: Annotated[str | None, typer.Option(help="Who asks (default: the local user name).")] = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Ask for more credits: the staff see it, and webhooks get ``credits.requested``."""
    return f"credit request {r.id}: {r.amount} credits for {org_id} by {r.requested_by}"


@credit_requests_app.command("grant")
@change("grant_credit_request", by="by", by_default=by_or_local_user)
def grant(
    g: Grant,
    org_id: OrgId,
    request_id: RequestId,
    amount: Annotated[str | None, typer.Option(help="Default: the amount asked for.")] = None,
    expires_at: ExpiresAt = None,
    note: Note = None,
    by: By = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Answer an open request with a grant, which closes it."""
    return f"credit request {request_id} granted: grant {g.id}, {g.amount} credits"


@credit_requests_app.command("dismiss")
@change("dismiss_credit_request", by="by", by_default=by_or_local_user)
def dismiss(
    r: CreditRequest,
    org_id: OrgId,
    request_id: RequestId,
    by: By = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Close an open request without a grant."""
    return f"credit request {r.id} of {org_id} dismissed"
