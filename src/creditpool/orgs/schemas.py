from __future__ import annotations

from pydantic import Field

from creditpool.api.schemas import AmountIn, Body, Id, Name


class OrgCreate(Body):
    id: Id
    name: Name | None = None
    timezone: str = Field(default="UTC", max_length=64, examples=["Europe/Berlin"])


class OrgUpdate(Body):
    name: Name | None = None
    timezone: str | None = Field(default=None, max_length=64)
    low_balance_thresholds: list[AmountIn] | None = Field(default=None, max_length=10)


class TeamCreate(Body):
    id: Id
    name: Name | None = None
    monthly_limit: AmountIn | None = None


class TeamUpdate(Body):
    name: Name | None = None
    monthly_limit: AmountIn | None = None


class MemberPut(Body):
    team_id: Id | None = None
