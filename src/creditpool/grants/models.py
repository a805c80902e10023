from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from creditpool.core.grants import GrantState
from creditpool.models import Model


class Grant(Model):
    """A deposit of credits; ``state`` is as of the moment it was read."""

    org_id: str
    id: int
    amount: Decimal
    remaining: Decimal
    granted_at: datetime
    available_from: datetime
    expires_at: datetime | None
    note: str | None
    reference: str | None
    granted_by: str | None
    voided_at: datetime | None
    voided_by: str | None
    void_reason: str | None
    state: GrantState
    # Credits reserved on this grant by open holds: not in ``remaining`` (Left), not used.
    held: Decimal = Decimal(0)
    # Credits staff voided from it: in part (the grant stays, holding ``amount - voided``)
    # or all it had left when voided whole.
    voided: Decimal = Decimal(0)


class Funding(Model):
    """What one grant paid towards one consumption."""

    consumption_id: int
    amount: Decimal


class GrantDetail(Grant):
    """A grant with the consumptions it funded."""

    funded: tuple[Funding, ...]
