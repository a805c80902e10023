"""The ledger's vocabulary: what an entry records (action) and which way it moved Left
(method). Stored as their text values; ``StrEnum`` members compare equal to that text."""

from __future__ import annotations

from enum import StrEnum


class LedgerAction(StrEnum):
    GRANT_ADDED = "grant_added"  # at the grant's available_from
    CONSUMPTION = "consumption"
    REFUND = "refund"
    EXPIRY = "expiry"  # at the grant's expires_at
    VOID = "void"
    HOLD = "hold"  # credits reserved by a hold leave Left
    RELEASE = "release"  # a hold released (or settled): its credits come back to Left
    HOLD_EXPIRY = "hold_expiry"  # at the hold's expires_at, like a release
    EXPIRY_CHANGE = "expiry_change"  # staff moved a grant's expiry: no credit moves
    ADJUSTMENT = "adjustment"  # staff debited or credited the pool by hand


class LedgerMethod(StrEnum):
    ADDED = "added"
    USED = "used"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    VOIDED = "voided"
    HELD = "held"
    RELEASED = "released"
    CHANGED = "changed"  # an expiry change: Left stays as it was, ``credits`` is 0
    DEBITED = "debited"
    CREDITED = "credited"

    @property
    def sign(self) -> int:
        """+1 when the entry adds to Left, -1 when it takes from it, 0 when it moves none."""
        if self is LedgerMethod.CHANGED:
            return 0
        return 1 if self in GAINS else -1


GAINS = frozenset(
    {LedgerMethod.ADDED, LedgerMethod.REFUNDED, LedgerMethod.RELEASED, LedgerMethod.CREDITED}
)
