"""Staff corrections over HTTP: manual adjustments, and the audit of every correction and
of the changes that write no ledger entry. (Expiry changes and voids are on the grants'
routes.) ``by`` is the staff key's name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from creditpool import commands as cmd
from creditpool import queries as q
from creditpool.api.bodies.grants import AdjustmentCreate
from creditpool.api.lists import Listing, paged
from creditpool.audit.models import AuditRecord
from creditpool.corrections.models import Adjustment, Correction, CorrectionKind
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1/orgs/{org}", tags=["corrections"], route_class=AuthorizedRoute)
Writer = Annotated[Principal, allowed(Action.GRANTS_WRITE)]
Reader = Annotated[Principal, allowed(Action.LEDGER_READ)]


@router.post(
    "/adjustments",
    status_code=201,
    response_model=Adjustment,
    responses={
        402: {"description": "A debit larger than Left: nothing was debited."},
        409: {
            "description": (
                "A credit larger than what the active grants have used"
                " (`no_room_to_credit`: grant instead), or no grant is active."
            )
        },
    },
)
def create_adjustment(
    org: OrgId, body: AdjustmentCreate, caller: Writer, writes: Write
) -> Response:
    """A manual adjustment: negative `credits` are debited from the grants in consumption
    order (refused with 402 when Left is short); positive ones go back to the most recent
    active grants as a refund's do. A ledger `adjustment` entry records it."""
    return writes.ledger(caller, org, cmd.AdjustBy, **body.model_dump(), by=caller.key.name)


@router.get("/adjustments/{adjustment_id}", response_model=Adjustment)
def get_adjustment(org: OrgId, adjustment_id: ObjectId, caller: Reader, pool: Pool) -> Adjustment:
    return pool.adjustment(org, adjustment_id)


@router.get("/corrections", response_model=Page[Correction])
@paged(
    q.Corrections,
    kind=CorrectionKind | None,
    grant_id=Annotated[int | None, Query(ge=1, le=2**63 - 1)],
)
def list_corrections(org: OrgId, caller: Reader, pool: Pool) -> Listing:
    """Who corrected what, when and why (expiry changes, voids, adjustments), newest
    first."""
    return pool.corrections


Auditor = Annotated[Principal, allowed(Action.ORGS_LIST)]


@router.get("/audit", response_model=Page[AuditRecord], operation_id="list_audit_records")
@paged(q.AuditLog)
def list_audit_records(org: OrgId, caller: Auditor, pool: Pool) -> Listing:
    """The audit trail of the organization's changes that write no ledger entry (settings,
    API keys, portal links) and of its refunds: who, when, what; newest first."""
    return pool.audit_log
