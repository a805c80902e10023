"""Portal sessions over HTTP: the vendor's backend mints a one-time sign-in link."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request

from creditpool.api.bodies.sessions import PortalSessionCreate, PortalSessionOut
from creditpool.http.cookies import Sessions
from creditpool.http.deps import Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.security import Action, Principal, allowed
from creditpool.sessions import service

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
    """A one-time link to the organization's usage page for one user. The link works
    once, within a few minutes; opening it sets an HttpOnly session cookie and redirects
    to the page. Send the user there straight away (never store the link).

    An `Idempotency-Key` is checked but never replayed: a retry mints another link (the
    unused one simply expires), so no usable link is ever stored."""
    caller.require(Action.PORTAL_CREATE, body.org_id)  # the organization is in the body
    sessions: Sessions = request.app.state.sessions
    ttl = timedelta(seconds=sessions.settings.portal_link_ttl_s)
    link = service.open_link(pool.db, body.org_id, body.user_id, body.role.value, ttl)
    url = str(request.url_for("portal_sign_in", token=link.token))
    return PortalSessionOut(url=url, expires_at=link.expires_at)
