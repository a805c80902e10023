"""Grants over HTTP: staff grant and void; ``granted_by`` is the staff key's name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from creditpool import commands as cmd
from creditpool import queries as q
from creditpool.api.bodies.grants import GrantCreate, GrantUpdate, VoidBody
from creditpool.api.lists import Listing, paged
from creditpool.grants.models import Grant, GrantDetail
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1/orgs/{org}", tags=["grants"], route_class=AuthorizedRoute)
Writer = Annotated[Principal, allowed(Action.GRANTS_WRITE)]
Reader = Annotated[Principal, allowed(Action.GRANTS_READ)]


@router.post("/grants", status_code=201, response_model=Grant)
def create_grant(org: OrgId, body: GrantCreate, caller: Writer, writes: Write) -> Response:
    return writes.ledger(caller, org, cmd.GrantBy, **body.model_dump(), granted_by=caller.key.name)


@router.get("/grants", response_model=Page[Grant])
@paged(q.Grants)
def list_grants(org: OrgId, caller: Reader, pool: Pool) -> Listing:
    """Oldest first (in id order), as of now."""
    return pool.grants


@router.get("/grants/{grant_id}", response_model=GrantDetail)
def get_grant(org: OrgId, grant_id: ObjectId, caller: Reader, pool: Pool) -> GrantDetail:
    grant = pool.grant_info(org, grant_id)
    return GrantDetail(**grant.model_dump(), funded=tuple(pool.funded_by(org, grant_id)))


@router.post("/grants/{grant_id}/void", response_model=Grant)
def void_grant(
    org: OrgId, grant_id: ObjectId, body: VoidBody, caller: Writer, writes: Write
) -> Response:
    """Void a grant whole, or ``amount`` of what it has left (a correction)."""
    return writes.ledger(
        caller, org, cmd.VoidGrantBy, grant_id, **body.model_dump(), by=caller.key.name
    )


@router.patch("/grants/{grant_id}", response_model=Grant, operation_id="update_grant")
def update_grant(
    org: OrgId, grant_id: ObjectId, body: GrantUpdate, caller: Writer, writes: Write
) -> Response:
    """Change a grant's expiry, earlier or later (null: permanent), never to an instant
    that has passed: a ledger ``expiry_change`` entry records it."""
    fields = body.model_dump()
    return writes.ledger(
        caller, org, cmd.ChangeGrantExpiryBy, grant_id, **fields, by=caller.key.name
    )
