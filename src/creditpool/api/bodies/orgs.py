from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, StrictInt, field_validator
from pydantic.json_schema import SkipJsonSchema

from creditpool.http.schemas import (
    Body,
    Credits,
    CreditsOrZero,
    Id,
    Name,
    TimeZone,
    omittable,
    refuse_null,
    whole_number,
)
from creditpool.orgs.service import THRESHOLDS_MAX

Thresholds = Annotated[list[Credits], Field(max_length=THRESHOLDS_MAX)]
NoticeDays = Annotated[
    StrictInt,
    Field(
        ge=0,
        le=365,
        description="Days before a grant expires that `grant.expiring_soon` is sent",
    ),
    BeforeValidator(whole_number),  # 7.0 is 7, as JSON Schema's integer says
]


class OrgCreate(Body):
    id: Id
    name: Name | None = None
    timezone: TimeZone = "UTC"
    low_balance_thresholds: Thresholds = Field(default_factory=list)
    expiry_notice_days: NoticeDays | None = Field(default=None, description="None: 7 days")


class OrgUpdate(Body):
    """Only the fields given change; none of them may be set to null."""

    name: Name | SkipJsonSchema[None] = omittable()
    timezone: TimeZone | SkipJsonSchema[None] = omittable()
    low_balance_thresholds: Thresholds | SkipJsonSchema[None] = omittable()

    expiry_notice_days: NoticeDays | SkipJsonSchema[None] = omittable()

    _not_null = field_validator(
        "name", "timezone", "low_balance_thresholds", "expiry_notice_days", mode="before"
    )(refuse_null)


class TeamCreate(Body):
    id: Id
    name: Name | None = None
    monthly_limit: CreditsOrZero | None = None


class TeamUpdate(Body):
    """Only the fields given change; a null ``monthly_limit`` removes the limit."""

    name: Name | SkipJsonSchema[None] = omittable()
    monthly_limit: CreditsOrZero | None = Field(default=None)

    _not_null = field_validator("name", mode="before")(refuse_null)


class MemberPut(Body):
    """The member as a whole: an omitted or null field is cleared (no team, no display
    name: pages then show the user id)."""

    team_id: Id | None = None
    display_name: Name | None = None
