"""Requests for more credits over HTTP: an organization's admin (or the vendor's backend on
its behalf) asks, staff answer with a grant or a dismissal; both read the list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from creditpool import commands as cmd
from creditpool import queries as q
from creditpool.api.bodies.credit_requests import (
    CreditRequestCreate,
    CreditRequestDismiss,
    CreditRequestGrant,
)
from creditpool.api.lists import Listing, paged
from creditpool.credit_requests.models import CreditRequest, CreditRequestStatus
from creditpool.grants.models import Grant
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(
    prefix="/v1/orgs/{org}/credit-requests", tags=["credit requests"], route_class=AuthorizedRoute
)
Asker = Annotated[Principal, allowed(Action.CREDIT_REQUESTS_CREATE)]
Reader = Annotated[Principal, allowed(Action.CREDIT_REQUESTS_READ)]
Answerer = Annotated[Principal, allowed(Action.CREDIT_REQUESTS_ANSWER)]
NOT_OPEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "The request was already granted or dismissed"}
}


@router.post("", status_code=201, response_model=CreditRequest)
def request_credits(
    org: OrgId, body: CreditRequestCreate, caller: Asker, writes: Write
) -> Response:
    """Ask for more credits: an open request, and a `credits.requested` event (webhook) so
    that the vendor hears of it. ``requested_by`` is the caller's name."""
    by = caller.key.name or caller.key.user_id or caller.key.id
    return writes.ledger(caller, org, cmd.RequestCreditsBy, **body.model_dump(), requested_by=by)


@router.get("", response_model=Page[CreditRequest])
@paged(q.CreditRequests, status=CreditRequestStatus | None)
def list_credit_requests(org: OrgId, caller: Reader, pool: Pool) -> Listing:
    """Newest first."""
    return pool.credit_requests


@router.post("/{request_id}/grant", status_code=201, response_model=Grant, responses=NOT_OPEN)
def grant_credit_request(
    org: OrgId,
    request_id: ObjectId,
    body: CreditRequestGrant,
    caller: Answerer,
    writes: Write,
) -> Response:
    """Answer the request with a grant (of the amount asked for unless ``amount``), which
    closes it; ``granted_by`` is the staff key's name."""
    fields = body.model_dump()
    return writes.ledger(
        caller, org, cmd.GrantCreditRequestBy, request_id, **fields, by=caller.key.name
    )


@router.post("/{request_id}/dismiss", response_model=CreditRequest, responses=NOT_OPEN)
def dismiss_credit_request(
    org: OrgId,
    request_id: ObjectId,
    caller: Answerer,
    writes: Write,
    body: CreditRequestDismiss | None = None,
) -> Response:
    """Close the request without a grant."""
    return writes.ledger(caller, org, cmd.DismissCreditRequestBy, request_id, by=caller.key.name)
