from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from creditpool.models import Model


class LedgerEntry(Model):
    """One change of an organization's balance. ``total_before``/``total_after`` are Left."""

    org_id: str
    seq: int
    at: datetime
    action: str
    method: str
    credits: Decimal
    total_before: Decimal
    total_after: Decimal
    grant_id: int | None
    consumption_id: int | None
    hold_id: int | None = None
    # The staff correction (expiry change, void, adjustment) the entry records.
    correction_id: int | None = None


class Balance(Model):
    """The pool at instant ``at``: Used = Total - Left - held (held are reserved, not used)."""

    org_id: str
    at: datetime
    total: Decimal
    used: Decimal
    left: Decimal
    held: Decimal
    upcoming: Decimal
