from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from creditpool.consumptions.models import Allocation
from creditpool.core.holds import HoldStatus as HoldStatus
from creditpool.models import Model


class Hold(Model):
    """Credits reserved from an organization's pool until ``expires_at``.

    While ``open`` they are in the balance's ``held`` (not in ``left``, not ``used``).
    ``settle`` turns the hold into one paid consumption (``consumption_id``); ``release``
    (or the end of its time to live, status ``expired``) gives its credits back.
    ``allocations`` say which grants the credits were held on. Once closed, ``released`` is
    what went back to Left and ``lost`` what had been held on grants that expired or were
    voided meanwhile (their credits left the pool with the grant).
    """

    org_id: str
    id: int
    status: HoldStatus
    amount: Decimal
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    feature: str
    user_id: str
    team_id: str | None
    quantity: Decimal | None
    feature_name: str | None
    action: str | None
    integration: str | None
    metadata: dict[str, Any] | None
    allocations: tuple[Allocation, ...]
    consumption_id: int | None = None
    released: Decimal = Decimal(0)
    lost: Decimal = Decimal(0)
