from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RootModel

from creditpool.http.schemas import Body, Id, Name

KeyName = Annotated[Name | None, Field(description="None: the role and the key's id")]


class AdminKeyCreate(Body):
    """An admin key: the whole organization."""

    role: Literal["admin"]
    name: KeyName = None


class MemberKeyCreate(Body):
    """A member key: one user of the organization (its own usage)."""

    role: Literal["member"]
    user_id: Id = Field(description="The user the key acts for")
    name: KeyName = None


class KeyCreate(
    RootModel[Annotated[AdminKeyCreate | MemberKeyCreate, Field(discriminator="role")]]
):
    """An organization's new key: an admin's, or a member's (with its user)."""

    @property
    def user_id(self) -> str | None:
        return self.root.user_id if isinstance(self.root, MemberKeyCreate) else None
