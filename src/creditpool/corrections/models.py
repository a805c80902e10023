"""Staff corrections: the audit of who changed an organization's credits by hand, when and
why."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from creditpool.consumptions.models import Allocation
from creditpool.models import Model


class CorrectionKind(StrEnum):
    EXPIRY_CHANGE = "expiry_change"  # a grant's expiry moved (``expires_before`` -> ``after``)
    VOID = "void"  # a grant voided whole: ``credits`` is what it had left
    PARTIAL_VOID = "partial_void"  # ``credits`` voided from a grant that stays
    ADJUSTMENT = "adjustment"  # ``credits`` signed: negative debited, positive credited


class Correction(Model):
    """One staff correction. ``expires_before``/``expires_after`` (None: permanent) are an
    expiry change's; ``credits`` a void's (voided) or an adjustment's (signed)."""

    org_id: str
    id: int
    kind: CorrectionKind
    at: datetime
    by: str | None
    reason: str | None
    grant_id: int | None
    credits: Decimal | None
    expires_before: datetime | None
    expires_after: datetime | None


class Adjustment(Model):
    """A manual adjustment of the pool: ``credits`` negative was debited from the grants in
    consumption order, positive was given back to the most recent grants as a refund is.
    ``allocations``: each grant's share, signed the same way."""

    org_id: str
    id: int
    at: datetime
    credits: Decimal
    reason: str
    by: str
    allocations: tuple[Allocation, ...]
