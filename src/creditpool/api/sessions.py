"""Portal sessions over HTTP: the vendor's backend mints a one-time sign-in link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from creditpool.api.bodies.sessions import PortalSessionCreate, PortalSessionOut
from creditpool.http.cookies import Sessions
from creditpool.http.deps import Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.security import Action, Principal, allowed

router = APIRouter(prefix="/v1", tags=["portal"], route_class=AuthorizedRoute)


@router.post(
    "/portal-sessions",
    status_code=201,
    response_model=PortalSessionOut,
    responses={404: {"description": "Not found (`not_found`): no such organization"}},
)
def create_portal_session(
    body: PortalSessionCreate,
    request: Request,
    caller: Annotated[Principal, allowed(Action.PORTAL_CREATE)],
    pool: Pool,
) -> PortalSessionOut:
    """A one-time link to the organization's usage page for one user (the vendor's backend,
    or staff from the console). The link works
    once, within a few minutes; opening it sets an HttpOnly session cookie and redirects
    to the page. Send the user there straight away (never store the link).

    An `Idempotency-Key` is checked but never replayed: a retry mints another link (the
    unused one simply expires), so no usable link is ever stored."""
    caller.require(Action.PORTAL_CREATE, body.org_id)  # the organization is in the body
    sessions: Sessions = request.app.state.sessions
    link = pool.portal_link(
        body.org_id,
        body.user_id,
        role=body.role.value,
        ttl_s=sessions.settings.portal_link_ttl_s,
        by=caller.key.name,
    )
    url = str(request.url_for("portal_sign_in", token=link.token))
    return PortalSessionOut(url=url, expires_at=link.expires_at)
