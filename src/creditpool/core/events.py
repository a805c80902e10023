"""The events a vendor hears of (webhooks, live pages): their types and drafts."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    BALANCE_LOW = "balance.low"
    BALANCE_DEPLETED = "balance.depleted"
    BALANCE_RECOVERED = "balance.recovered"
    TEAM_LIMIT_CROSSED = "team.limit_crossed"
    GRANT_CREATED = "grant.created"
    GRANT_VOIDED = "grant.voided"
    GRANT_EXPIRING_SOON = "grant.expiring_soon"
    GRANT_EXPIRED = "grant.expired"
    GRANT_EXPIRY_CHANGED = "grant.expiry_changed"
    ADJUSTMENT_CREATED = "adjustment.created"
    CONSUMPTION_CREATED = "consumption.created"
    CONSUMPTION_REFUNDED = "consumption.refunded"
    HOLD_CREATED = "hold.created"
    HOLD_SETTLED = "hold.settled"
    HOLD_RELEASED = "hold.released"
    HOLD_EXPIRED = "hold.expired"
    CREDITS_REQUESTED = "credits.requested"
    WEBHOOK_TEST = "webhook.test"


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event to write in the transaction of the change that caused it (the outbox).

    ``dedupe`` makes a once-only event take effect once per organization (e.g.
    ``team.limit_crossed:{team}:{month}``): a second draft with the same one is dropped.
    """

    type: EventType
    at: datetime
    data: dict[str, Any]
    ledger_seq: int | None = None
    dedupe: str | None = None
    id: str = field(default_factory=lambda: new_event_id())


_SEQUENCE = itertools.count()


def new_event_id() -> str:
    """``evt_`` + milliseconds since the epoch (12 hex digits) + a counter of this process
    (6 hex digits) + 64 random bits: unique, and in the order they were made (within a
    process exactly; across processes to the millisecond), as readers page through them."""
    count = next(_SEQUENCE) % 0x1000000
    return f"evt_{int(time.time() * 1000):012x}{count:06x}{secrets.token_hex(8)}"
