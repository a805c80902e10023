from __future__ import annotations

from pydantic import Field, model_validator

from creditpool.http.schemas import Body, Id, Name
from creditpool.sessions.models import PortalRole

# The roles of an organization's own users, as for portal links: one enum in the document.
OrgKeyRole = PortalRole


class KeyCreate(Body):
    name: Name | None = Field(default=None, description="None: the role and the key's id")
    role: OrgKeyRole = Field(description="admin: the whole organization; member: one user")
    user_id: Id | None = Field(default=None, description="A member key's user (members only)")

    @model_validator(mode="after")
    def _user_of_members_only(self) -> KeyCreate:
        if self.role is OrgKeyRole.MEMBER and self.user_id is None:
            raise ValueError("a member key belongs to one user: give user_id")
        if self.role is OrgKeyRole.ADMIN and self.user_id is not None:
            raise ValueError("only member keys belong to a user: leave user_id out")
        return self
