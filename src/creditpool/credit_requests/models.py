from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from creditpool.core.statuses import CreditRequestStatus as CreditRequestStatus
from creditpool.models import Model


class CreditRequest(Model):
    org_id: str
    id: int
    amount: Decimal
    message: str | None
    requested_by: str
    created_at: datetime
    status: CreditRequestStatus
    closed_at: datetime | None
    closed_by: str | None
    # the grant that answered it (status granted)
    grant_id: int | None
