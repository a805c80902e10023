"""The states a listed thing can be in, by which its list is filtered. Stored as their
text values; ``StrEnum`` members compare equal to that text. Here, below the domains, so
that a list's query (``creditpool.queries``) can name them."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class CreditRequestStatus(StrEnum):
    OPEN = "open"
    GRANTED = "granted"
    DISMISSED = "dismissed"
