from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from creditpool.models import Model


class Org(Model):
    """An organization: one credit pool. ``id`` is the vendor's own identifier."""

    id: str
    name: str
    timezone: str
    low_balance_thresholds: tuple[Decimal, ...]
    created_at: datetime
    # ``grant.expiring_soon`` is sent this many days before a grant with credits left expires
    expiry_notice_days: int = 7


class Team(Model):
    org_id: str
    id: str
    name: str
    monthly_limit: Decimal | None
    created_at: datetime


class Member(Model):
    """A user of an organization: the team their use is attributed to, and the name pages
    show instead of the user id (None: the id is shown)."""

    org_id: str
    user_id: str
    team_id: str | None
    display_name: str | None = None


class TeamUsage(Model):
    """A team's paid usage in one calendar month (the org's time zone) against its limit."""

    org_id: str
    team_id: str | None
    name: str
    month: str
    used: Decimal
    consumptions: int
    monthly_limit: Decimal | None
    over_limit: bool
