from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from creditpool.models import Model


class ConsumptionStatus(StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"
    DRY_RUN = "dry_run"


class Allocation(Model):
    """How much one grant paid for (or got back from) one consumption."""

    grant_id: int
    amount: Decimal


class Consumption(Model):
    """One use of a feature by one user, charged to the organization's pool.

    A dry run has ``id`` None and status ``dry_run``: it shows the cost and the grants it
    would draw from, and nothing was written.
    """

    org_id: str
    id: int | None
    created_at: datetime
    feature: str
    feature_name: str | None
    action: str | None
    integration: str | None
    user_id: str
    team_id: str | None
    quantity: Decimal | None
    unit_rate: Decimal
    cost: Decimal
    breakdown: dict[str, int] | None
    requests: int | None
    metadata: dict[str, Any] | None
    status: ConsumptionStatus
    allocations: tuple[Allocation, ...]
    refunded_at: datetime | None = None
    refund_reason: str | None = None
    # The hold this consumption settled, if it was made by ``settle``.
    hold_id: int | None = None


class Refund(Model):
    """The result of refunding a consumption.

    ``restored`` went back to the grants in ``restorations`` (most recent first); ``lost``
    had come from grants that have since expired or been voided.
    """

    org_id: str
    consumption_id: int
    refunded_at: datetime
    reason: str | None
    restored: Decimal
    lost: Decimal
    restorations: tuple[Allocation, ...]
