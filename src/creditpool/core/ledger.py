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


class LedgerMethod(StrEnum):
    ADDED = "added"
    USED = "used"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    VOIDED = "voided"
    HELD = "held"
    RELEASED = "released"

    @property
    def sign(self) -> int:
        """+1 when the entry adds to Left, -1 when it takes from it."""
        return 1 if self in GAINS else -1


GAINS = frozenset({LedgerMethod.ADDED, LedgerMethod.REFUNDED, LedgerMethod.RELEASED})
