"""Holds over HTTP: reserve credits before a long job, then settle its real cost or release
them. The ``service`` role changes holds; staff and organization admins read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response

from creditpool import commands as cmd
from creditpool import queries as q
from creditpool.api.bodies.holds import HoldBody, ReleaseBody, SettleBody
from creditpool.api.lists import Listing, paged
from creditpool.consumptions.models import Consumption
from creditpool.holds.models import Hold, HoldStatus
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1/orgs/{org}", tags=["holds"], route_class=AuthorizedRoute)
Writer = Annotated[Principal, allowed(Action.HOLDS_WRITE)]
Reader = Annotated[Principal, allowed(Action.HOLDS_READ)]
NOT_OPEN: dict[int | str, dict[str, Any]] = {
    409: {
        "description": (
            "The hold is not open (`hold_not_open`, with its `hold_status`: settled, "
            "released or expired), or `idempotency_conflict`"
        )
    }
}


@router.post(
    "/holds",
    status_code=201,
    response_model=Hold,
    responses={402: {"description": "Left is less than the amount (`insufficient_credits`)"}},
)
def create_hold(org: OrgId, body: HoldBody, caller: Writer, writes: Write) -> Response:
    """Reserve credits from the organization's grants in consumption order, until
    ``expires_at``: they leave ``left`` for ``held`` until the hold is settled or
    released (or expires, which releases them)."""
    return writes.ledger(caller, org, cmd.Hold, **body.model_dump())


@router.get("/holds", response_model=Page[Hold])
@paged(q.Holds, status=HoldStatus | None)
def list_holds(org: OrgId, caller: Reader, pool: Pool) -> Listing:
    """Newest first. An open hold past its time to live is listed as ``expired``."""
    return pool.holds


@router.get("/holds/{hold_id}", response_model=Hold)
def get_hold(org: OrgId, hold_id: ObjectId, caller: Reader, pool: Pool) -> Hold:
    return pool.hold_of(org, hold_id)


@router.post(
    "/holds/{hold_id}/settle",
    status_code=201,
    response_model=Consumption,
    responses={
        402: {
            "description": (
                "The cost is more than the hold and the other credits cannot pay the "
                "difference (`insufficient_credits`): the hold stays open"
            )
        },
        **NOT_OPEN,
    },
)
def settle_hold(
    org: OrgId, hold_id: ObjectId, body: SettleBody, caller: Writer, writes: Write
) -> Response:
    """Charge the job's real cost as one paid consumption (with ``hold_id``): drawn from
    the held credits first, the rest back to its grants; a cost above the hold draws the
    difference like a consumption. Fields left out come from the hold."""
    return writes.ledger(caller, org, cmd.Settle, hold_id, **body.model_dump())


@router.post("/holds/{hold_id}/release", response_model=Hold, responses=NOT_OPEN)
def release_hold(
    org: OrgId, hold_id: ObjectId, caller: Writer, writes: Write, body: ReleaseBody | None = None
) -> Response:
    """Give every held credit back to its grant (what was held on a grant that has since
    expired or been voided is ``lost`` with it)."""
    return writes.ledger(caller, org, cmd.Release, hold_id)
