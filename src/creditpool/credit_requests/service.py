"""Credit requests: asked for by an organization's admin (a ``credits.requested`` event, so
the vendor hears of it by webhook), listed for staff, closed by a grant or a dismissal.
Each change runs through the change pipeline under the organization's lock."""

from __future__ import annotations

from typing import Any

from creditpool import validation as check
from creditpool.core.errors import Conflict, NotFound
from creditpool.core.events import EventType
from creditpool.core.money import UNIT, parse_credits, to_decimal
from creditpool.credit_requests.models import CreditRequest, CreditRequestStatus
from creditpool.grants import service as grants
from creditpool.grants.models import Grant
from creditpool.ledger.writer import OrgWriter
from creditpool.queries import CreditRequests
from creditpool.repositories import credit_requests as repository
from creditpool.storage.uow import Tx


def request(w: OrgWriter, amount: object, message: str | None, requested_by: str) -> CreditRequest:
    units = parse_credits(amount)
    values: dict[str, Any] = {
        "org_id": w.org_id,
        "id": w.new_id(),
        "amount": units,
        "message": check.text(message, "message", check.TEXT_LENGTH_MAX),
        "requested_by": check.required_text(requested_by, "requested_by"),
        "created_at": w.now,
        "status": CreditRequestStatus.OPEN.value,
        "closed_at": None,
        "closed_by": None,
        "grant_id": None,
    }
    repository.insert_request(w.conn, values)
    made = _model(values)
    w.emit_model(EventType.CREDITS_REQUESTED, made)
    return made


def grant(w: OrgWriter, request_id: int, amount: object, fields: dict[str, Any]) -> Grant:
    """Answer an open request with a grant of ``amount`` (None: what was asked for) and the
    grant's ``fields`` (expires_at, granted_by, note): the grant and the request's closing
    are one change."""
    asked = _open(w, request_id)
    amount = to_decimal(asked["amount"]) if amount is None else amount
    made = grants.grant(w, grants.GrantRequest.parse(amount, **fields))
    _close(w, request_id, CreditRequestStatus.GRANTED, fields.get("granted_by"), made.id)
    return made


def dismiss(w: OrgWriter, request_id: int, by: str | None) -> CreditRequest:
    _open(w, request_id)
    _close(w, request_id, CreditRequestStatus.DISMISSED, by, None)
    return get(w.tx, w.org_id, request_id)


def get(tx: Tx, org_id: str, request_id: int) -> CreditRequest:
    row = repository.get(tx.conn, org_id, request_id)
    if row is None:
        raise NotFound(f"credit request {request_id} not found in organization {org_id!r}")
    return _model(row)


def list_for_org(tx: Tx, asked: CreditRequests) -> list[CreditRequest]:
    """Newest first: older than ``before_id``, at most ``limit``."""
    return [_model(r) for r in repository.list_for_org(tx.conn, asked)]


def _open(w: OrgWriter, request_id: int) -> dict[str, Any]:
    found = get(w.tx, w.org_id, request_id)
    if found.status is not CreditRequestStatus.OPEN:
        raise Conflict(f"credit request {request_id} is {found.status.value}, not open")
    return {"amount": int(found.amount * UNIT)}


def _close(
    w: OrgWriter,
    request_id: int,
    status: CreditRequestStatus,
    by: str | None,
    grant_id: int | None,
) -> None:
    repository.close(
        w.conn,
        w.org_id,
        request_id,
        status=status.value,
        closed_at=w.now,
        closed_by=check.text(by, "by"),
        grant_id=grant_id,
    )


def _model(values: dict[str, Any]) -> CreditRequest:
    return CreditRequest(
        **{**values, "amount": to_decimal(values["amount"]), "status": values["status"]}
    )
