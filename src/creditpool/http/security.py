"""Who may do what: a bearer key's role and organization decide every request.

A browser session (the signed cookie of a portal link or a staff sign-in) stands for a key
of its role, organization and user, so pages, the event stream and the API authorize it the
same way. Bearer keys win when both are sent. A session never changes anything through the
API unless the request also carries the session's CSRF token in ``X-CSRF-Token``.

Keys of one organization (admin, member) asking about another get 404, exactly as for an
organization that does not exist, so that existence never leaks. A permitted organization
but a forbidden action gets 403.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from creditpool.auth.models import ApiKey, Role
from creditpool.core.errors import Forbidden, NotFound, Unauthorized
from creditpool.http.cookies import Sessions
from creditpool.pool import CreditPool
from creditpool.sessions.models import SessionClaims

KEY_CACHE_TTL_S = 5.0  # a revoked key stops working within this many seconds
KEY_CACHE_SIZE_MAX = 10_000
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_KEY_CREATED_AT = datetime.fromtimestamp(0, UTC)
_PRINCIPAL = "creditpool.principal"  # the request's caller, once known


class Action(StrEnum):
    ORGS_CREATE = "orgs.create"
    ORGS_LIST = "orgs.list"
    ORGS_READ = "orgs.read"
    ORGS_UPDATE = "orgs.update"
    THRESHOLDS_UPDATE = "orgs.update_thresholds"
    TEAMS_READ = "teams.read"
    TEAMS_WRITE = "teams.write"
    TEAM_LIMIT = "teams.limit"
    MEMBERS_READ = "members.read"
    MEMBERS_WRITE = "members.write"
    FEATURES_READ = "features.read"
    FEATURES_WRITE = "features.write"
    GRANTS_READ = "grants.read"
    GRANTS_WRITE = "grants.write"
    CONSUMPTIONS_READ = "consumptions.read"
    OWN_CONSUMPTIONS_READ = "consumptions.read_own"
    CONSUME = "consume"
    REFUND = "refund"
    HOLDS_WRITE = "holds.write"  # hold, settle, release
    HOLDS_READ = "holds.read"
    BALANCE_READ = "balance.read"
    USAGE_READ = "usage.read"
    LEDGER_READ = "ledger.read"
    PORTAL_CREATE = "portal.create"
    REPORTS_READ = "reports.read"
    EVENTS_READ = "events.read"
    EVENT_LOG_READ = "events.read_log"  # the outbox's events (what webhooks carry)
    WEBHOOKS_READ = "webhooks.read"
    WEBHOOKS_WRITE = "webhooks.write"  # endpoints, secrets, retries, tests
    CREDIT_REQUESTS_READ = "credit_requests.read"
    CREDIT_REQUESTS_CREATE = "credit_requests.create"
    CREDIT_REQUESTS_ANSWER = "credit_requests.answer"  # grant or dismiss
    KEYS_READ = "keys.read"  # an organization's admin and member keys (never a secret)
    KEYS_WRITE = "keys.write"  # create and revoke them


_READ_ALL = {
    Action.ORGS_READ,
    Action.TEAMS_READ,
    Action.MEMBERS_READ,
    Action.FEATURES_READ,
    Action.GRANTS_READ,
    Action.CONSUMPTIONS_READ,
    Action.OWN_CONSUMPTIONS_READ,
    # Holds are the vendor backend's jobs in flight: staff and admins see them (as they
    # see every consumption); a member sees their effect in the balance's ``held``.
    Action.HOLDS_READ,
    Action.BALANCE_READ,
    Action.USAGE_READ,
    Action.LEDGER_READ,
    Action.REPORTS_READ,
    Action.EVENTS_READ,
    Action.EVENT_LOG_READ,
    Action.CREDIT_REQUESTS_READ,
}

PERMISSIONS: dict[Role, frozenset[Action]] = {
    # Granting (a credit request's answer too) is staff's alone; webhook endpoints are the
    # vendor backend's, which staff may inspect. Staff also run the console's corrections
    # that are not ledger changes: organizations and their keys, portal links, refunds
    # and feature prices.
    Role.SERVICE: frozenset(set(Action) - {Action.GRANTS_WRITE, Action.CREDIT_REQUESTS_ANSWER}),
    Role.STAFF: frozenset(
        _READ_ALL
        | {
            Action.ORGS_LIST,
            Action.GRANTS_WRITE,
            Action.CREDIT_REQUESTS_ANSWER,
            Action.WEBHOOKS_READ,
            Action.ORGS_CREATE,
            Action.ORGS_UPDATE,
            Action.THRESHOLDS_UPDATE,
            Action.KEYS_READ,
            Action.KEYS_WRITE,
            Action.PORTAL_CREATE,
            Action.REFUND,
            Action.FEATURES_WRITE,
        }
    ),
    Role.ADMIN: frozenset(
        _READ_ALL | {Action.THRESHOLDS_UPDATE, Action.TEAM_LIMIT, Action.CREDIT_REQUESTS_CREATE}
    ),
    Role.MEMBER: frozenset(
        {
            Action.FEATURES_READ,
            Action.BALANCE_READ,
            Action.OWN_CONSUMPTIONS_READ,
            Action.EVENTS_READ,  # every user of the organization sees balance changes
        }
    ),
}


@dataclass(frozen=True, slots=True)
class Principal:
    key: ApiKey

    @property
    def role(self) -> Role:
        return self.key.role

    def may(self, action: Action) -> bool:
        return action in PERMISSIONS[self.key.role]

    def require(self, action: Action, org_id: str | None = None) -> None:
        """403 for a forbidden action; 404 for another organization than the key's own."""
        if org_id is not None and self.key.org_id is not None and org_id != self.key.org_id:
            raise NotFound(f"organization {org_id!r} not found")
        if not self.may(action):
            raise Forbidden(f"a {self.key.role.value} key may not do {action.value}")


class KeyCache:
    """Authenticated keys for a few seconds, so a request costs no extra query."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}

    def fresh(self, token: str) -> tuple[ApiKey | None] | None:
        """The cached answer for ``token`` (a 1-tuple, the key or None), if still fresh."""
        hit = self._entries.get(token)
        if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_TTL_S:
            return (hit[1],)
        return None

    def lookup(self, pool: CreditPool, token: str) -> ApiKey | None:
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and now - hit[0] < KEY_CACHE_TTL_S:
            return hit[1]
        key = pool.authenticate(token)
        if len(self._entries) >= KEY_CACHE_SIZE_MAX:
            self._entries.clear()
        self._entries[token] = (now, key)
        return key


bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cpk_...`")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who is calling: once per request (``AuthorizedRoute`` asks before the body is read,
    the routes' dependencies ask again), and without leaving the event loop when the key
    is in the cache."""
    found: Principal | None = request.scope.get(_PRINCIPAL)
    if found is None:
        cache: KeyCache = request.app.state.key_cache
        hit = None if credentials is None else cache.fresh(credentials.credentials)
        if hit is not None and credentials is not None and credentials.scheme.lower() == "bearer":
            found = _from_key(hit[0])
        else:
            found = await run_in_threadpool(_identify, request, credentials)
        request.scope[_PRINCIPAL] = found
    return found


def _from_key(key: ApiKey | None) -> Principal:
    if key is None:
        raise Unauthorized("the API key is unknown or revoked")
    return Principal(key)


def _identify(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        claims = session_claims(request)
        if claims is None:
            raise Unauthorized("send an API key as `Authorization: Bearer <key>`")
        if request.method not in SAFE_METHODS and not csrf_matches(
            claims, request.headers.get(CSRF_HEADER)
        ):
            raise Forbidden(f"a browser session must send its CSRF token in {CSRF_HEADER}")
        return session_principal(claims)
    pool: CreditPool = request.app.state.pool
    cache: KeyCache = request.app.state.key_cache
    return _from_key(cache.lookup(pool, credentials.credentials))


def session_claims(request: Request) -> SessionClaims | None:
    """The request's browser session, if it carries a valid one (read once per request)."""
    if "session_claims" not in request.scope:
        sessions: Sessions = request.app.state.sessions
        request.scope["session_claims"] = sessions.read(request)
    claims: SessionClaims | None = request.scope["session_claims"]
    return claims


def csrf_matches(claims: SessionClaims, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(claims.csrf.encode(), token.encode())


def session_principal(claims: SessionClaims) -> Principal:
    """A session acts as a key of its role: a staff session as the staff key it was opened
    with; a portal session as a key of its organization and user."""
    key_id = claims.key_id
    if key_id is None:
        who = f"{claims.role}:{claims.org_id}:{claims.user_id}"
        key_id = "s" + hashlib.sha256(who.encode()).hexdigest()[:15]
    key = ApiKey(
        id=key_id,
        name=claims.name,
        role=Role(claims.role),
        org_id=claims.org_id,
        user_id=claims.user_id,
        created_at=_SESSION_KEY_CREATED_AT,
        revoked_at=None,
    )
    return Principal(key)


Caller = Annotated[Principal, Depends(principal)]


class Allowed:
    """A route's authorization, declared with the route (``caller: Annotated[Principal,
    allowed(Action.X)]``): the caller, if its role may do one of ``actions`` in the path's
    organization. ``api.routing.AuthorizedRoute`` checks it before the request's body is
    read, so a caller without the right gets 401, 403 or 404 and never learns what is
    wrong with its input. A route whose exact action depends on its body names every
    action it may need here, and requires the exact one once the body is read."""

    def __init__(self, *actions: Action) -> None:
        if not actions:
            raise ValueError("name at least one action")
        self.actions = actions

    def check(self, caller: Principal, request: Request) -> Principal:
        org_id = request.path_params.get("org")
        key_org = caller.key.org_id
        if org_id is not None and key_org is not None and org_id != key_org:
            raise NotFound(f"organization {org_id!r} not found")
        if not any(caller.may(action) for action in self.actions):
            names = " or ".join(action.value for action in self.actions)
            raise Forbidden(f"a {caller.key.role.value} key may not do {names}")
        return caller

    async def __call__(self, request: Request, caller: Caller) -> Principal:
        return self.check(caller, request)

    def __repr__(self) -> str:
        return f"Allowed({', '.join(a.value for a in self.actions)})"


def allowed(*actions: Action) -> Any:
    """The dependency of a route that needs one of ``actions``: its caller, authorized."""
    return Depends(Allowed(*actions))
