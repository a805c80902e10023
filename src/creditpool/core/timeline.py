"""Availability and expiry take effect at their exact instants.

Before any change to an organization, the events that are due (a grant becoming
available, a grant expiring) are turned into ledger drafts stamped with their own
instants, in time order, so that the ledger reads as if something had been running at
every instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditpool.core.grants import GrantRow
from creditpool.core.ledger import LedgerAction, LedgerMethod

ADDED = LedgerAction.GRANT_ADDED
EXPIRY = LedgerAction.EXPIRY


@dataclass(frozen=True, slots=True)
class LedgerDraft:
    at: datetime
    action: LedgerAction
    method: LedgerMethod
    credits: int
    total_before: int
    total_after: int
    grant_id: int | None = None
    consumption_id: int | None = None


def _due(grants: list[GrantRow], upto: datetime) -> list[tuple[datetime, int, int, GrantRow]]:
    events: list[tuple[datetime, int, int, GrantRow]] = []
    for g in grants:
        if g.voided_at is not None:
            continue
        if not g.added_logged and g.starts_at <= upto:
            events.append((g.starts_at, 0, g.id, g))
        if g.expires_at is not None and not g.expiry_logged and g.expires_at <= upto:
            events.append((g.expires_at, 1, g.id, g))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


def logged_left(grants: list[GrantRow]) -> int:
    """Left as the ledger last recorded it: grants whose start is logged and expiry is not."""
    return sum(
        g.remaining
        for g in grants
        if g.voided_at is None and g.added_logged and not g.expiry_logged
    )


def catch_up(grants: list[GrantRow], upto: datetime) -> list[LedgerDraft]:
    """Ledger drafts for every event due at or before ``upto``; marks the grants logged.

    ``grants`` must hold every grant that is neither voided nor logged as expired.
    Events that move no credits (an exhausted grant expiring) are marked but not drafted:
    the ledger records changes of the balance only.
    """
    left = logged_left(grants)
    drafts: list[LedgerDraft] = []
    for at, kind, _, g in _due(grants, upto):
        before = left
        if kind == 0:
            g.added_logged = True
            left += g.remaining
            action, method = ADDED, LedgerMethod.ADDED
        else:
            g.expiry_logged = True
            left -= g.remaining
            action, method = EXPIRY, LedgerMethod.EXPIRED
        if left != before:
            drafts.append(
                LedgerDraft(at, action, method, abs(left - before), before, left, grant_id=g.id)
            )
    return drafts


def next_event_at(grants: list[GrantRow]) -> datetime | None:
    """The earliest instant at which a not yet logged event falls due."""
    instants: list[datetime] = []
    for g in grants:
        if g.voided_at is not None:
            continue
        if not g.added_logged:
            instants.append(g.starts_at)
        if g.expires_at is not None and not g.expiry_logged:
            instants.append(g.expires_at)
    return min(instants, default=None)
