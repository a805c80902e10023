from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from creditpool.models import Model


class PortalRole(StrEnum):
    """Who a portal link signs in: an organization's admin or one of its members."""

    ADMIN = "admin"
    MEMBER = "member"


class PortalLink(Model):
    """A minted one-time sign-in link; ``token`` is shown once and stored only hashed."""

    token: str
    org_id: str
    user_id: str
    role: PortalRole
    expires_at: datetime


class SessionClaims(Model):
    """What a signed session cookie says. ``key_id`` is the staff key a staff session was
    opened with (its revocation ends the session); ``csrf`` is the session's form token."""

    role: str
    org_id: str | None
    user_id: str | None
    name: str
    key_id: str | None
    csrf: str
