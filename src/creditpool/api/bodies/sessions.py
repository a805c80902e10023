from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from creditpool.http.schemas import Body, Id
from creditpool.sessions.models import PortalRole


class PortalSessionCreate(Body):
    org_id: Id
    user_id: Id = Field(description="The user the page is for (a member sees only their usage)")
    role: PortalRole = Field(description="admin: the whole organization; member: one user")


class PortalSessionOut(BaseModel):
    url: str = Field(description="Open once, before expires_at: signs the browser in")
    expires_at: datetime
