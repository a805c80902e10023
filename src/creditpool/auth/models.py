from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from creditpool.models import Model


class Role(StrEnum):
    SERVICE = "service"  # the vendor's backend: every organization
    STAFF = "staff"  # customer success: read everything, grant and void
    ADMIN = "admin"  # one organization: read all, team limits, thresholds
    MEMBER = "member"  # one organization: its balance and one user's consumptions


class ApiKey(Model):
    """A key as listed: never its secret (only a hash of it is stored)."""

    id: str
    name: str
    role: Role
    org_id: str | None
    user_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyWithSecret(ApiKey):
    """A key just made, with its secret token (``cpk_<id>_<secret>``): the only time the
    secret is shown; only a hash of it is stored."""

    secret: str

    @property
    def key(self) -> ApiKey:
        """The key as listed, without its secret."""
        return ApiKey.model_validate(self.model_dump(exclude={"secret"}))
