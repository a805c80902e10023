"""An organization's API keys over HTTP (staff and the vendor's backend): its admins' and
members' keys, created with their secret shown once, listed without it, revoked.

Creating a key takes an ``Idempotency-Key`` like every change: its recorded answer, which
carries the secret, is sealed with the server's secret key (as webhook secrets are), so a
retry gets the same key and secret back and a dump of the database alone reveals neither.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from creditpool import queries as q
from creditpool.api.bodies.keys import KeyCreate
from creditpool.api.bodies.webhooks import NoArguments
from creditpool.api.lists import Listing, paged
from creditpool.auth.models import ApiKey, ApiKeyWithSecret
from creditpool.http.deps import OrgId, Pool
from creditpool.http.paging import CURSOR_HELP, cursor
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1/orgs/{org}/keys", tags=["keys"], route_class=AuthorizedRoute)
Reader = Annotated[Principal, allowed(Action.KEYS_READ)]
Writer = Annotated[Principal, allowed(Action.KEYS_WRITE)]
KEY_ID_PATTERN = r"^[0-9a-f]{1,32}$"
KeyId = Annotated[str, Path(pattern=KEY_ID_PATTERN, examples=["0123456789abcdef"])]
KeyCursor = Annotated[str | None, cursor(KEY_ID_PATTERN), Query(description=CURSOR_HELP)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not found (`not_found`): no such organization or key"}
}


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyWithSecret,
    responses=NOT_FOUND,
    operation_id="create_api_key",
)
def create_key(org: OrgId, body: KeyCreate, caller: Writer, writes: Write) -> Response:
    """A new admin or member key of the organization, with its secret (`cpk_...`): shown
    in this answer only (and in its idempotent replays)."""

    def create() -> ApiKeyWithSecret:
        key, secret = writes.pool.create_key(
            body.root.role, org_id=org, user_id=body.user_id, name=body.root.name,
            by=caller.key.name,
        )  # fmt: skip
        return ApiKeyWithSecret.model_validate({**key.model_dump(), "secret": secret})

    seal = writes.pool.secret_box
    return writes.directory(caller, org, body, 201, create, seal=seal)


@router.get("", response_model=Page[ApiKey], responses=NOT_FOUND, operation_id="list_api_keys")
@paged(q.Keys, cursor=KeyCursor)
def list_keys(org: OrgId, caller: Reader, pool: Pool) -> Listing:
    """The organization's keys in the order they were made, revoked ones too (with
    `revoked_at`); never a secret or its hash."""
    return pool.keys


@router.post(
    "/{key_id}/revoke", response_model=ApiKey, responses=NOT_FOUND, operation_id="revoke_api_key"
)
def revoke_key(
    org: OrgId, key_id: KeyId, caller: Writer, writes: Write, body: NoArguments | None = None
) -> Response:
    """The key stops working within seconds. Revoking it again answers the same; a key of
    another organization is a 404, as one that does not exist."""
    return writes.directory(
        caller,
        org,
        body,
        200,
        lambda: writes.pool.revoke_key(key_id, org_id=org, by=caller.key.name),
    )
