"""Availability, expiry and the end of a hold take effect at their exact instants.

Before any change to an organization, the events that are due (a grant becoming
available, a grant expiring, an open hold reaching the end of its time to live) are turned
into ledger drafts stamped with their own instants, in time order, so that the ledger reads
as if something had been running at every instant. At one instant a grant's events come
before a hold's: a grant that expires when a hold does is already gone when the hold is
released, and what was held on it is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from creditpool.core.grants import GrantRow
from creditpool.core.holds import HoldRow, HoldState, apply_release, close, plan_release
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
    hold_id: int | None = None
    correction_id: int | None = None


_ADDED, _EXPIRED, _HOLD_ENDED = 0, 1, 2
Event = tuple[datetime, int, int, "GrantRow | HoldRow"]


def _due(grants: list[GrantRow], holds: list[HoldRow], upto: datetime) -> list[Event]:
    events: list[Event] = []
    for g in grants:
        if g.voided_at is not None:
            continue
        if not g.added_logged and g.starts_at <= upto:
            events.append((g.starts_at, _ADDED, g.id, g))
        if g.expires_at is not None and not g.expiry_logged and g.expires_at <= upto:
            events.append((g.expires_at, _EXPIRED, g.id, g))
    for h in holds:
        if h.status is HoldState.OPEN and h.expires_at <= upto:
            events.append((h.expires_at, _HOLD_ENDED, h.id, h))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    return events


def logged_left(grants: list[GrantRow]) -> int:
    """Left as the ledger last recorded it: grants whose start is logged and expiry is not."""
    return sum(
        g.remaining
        for g in grants
        if g.voided_at is None and g.added_logged and not g.expiry_logged
    )


def catch_up(
    grants: list[GrantRow], upto: datetime, holds: list[HoldRow] | None = None
) -> list[LedgerDraft]:
    """Ledger drafts for every event due at or before ``upto``; marks the grants logged and
    the open ``holds`` that ran out expired.

    ``grants`` must hold every grant that is neither voided nor logged as expired, and
    ``holds`` every open hold (or none, when none can be due).
    Events that move no credits (an exhausted grant expiring) are marked but not drafted:
    the ledger records changes of the balance only. A grant that expires loses what was
    held on it (``held`` becomes 0); the holds find it gone when they end.
    """
    left = logged_left(grants)
    by_id = {g.id: g for g in grants}
    drafts: list[LedgerDraft] = []
    for at, kind, _, item in _due(grants, holds or [], upto):
        before = left
        if isinstance(item, HoldRow):
            release = plan_release(item, by_id, at)
            apply_release(item, by_id, release)
            close(item, HoldState.EXPIRED, at, release, release.released)
            left += release.released
            if left != before:
                drafts.append(
                    LedgerDraft(
                        at,
                        LedgerAction.HOLD_EXPIRY,
                        LedgerMethod.RELEASED,
                        left - before,
                        before,
                        left,
                        hold_id=item.id,
                    )
                )
            continue
        g = item
        if kind == _ADDED:
            g.added_logged = True
            left += g.remaining
            action, method = ADDED, LedgerMethod.ADDED
        else:
            g.expiry_logged = True
            g.held = 0  # lost with the grant: the holds on it find it gone
            left -= g.remaining
            action, method = EXPIRY, LedgerMethod.EXPIRED
        if left != before:
            drafts.append(
                LedgerDraft(at, action, method, abs(left - before), before, left, grant_id=g.id)
            )
    return drafts


def next_event_at(grants: list[GrantRow], holds: list[HoldRow] | None = None) -> datetime | None:
    """The earliest instant at which a not yet logged event falls due."""
    instants: list[datetime] = [h.expires_at for h in holds or [] if h.status is HoldState.OPEN]
    for g in grants:
        if g.voided_at is not None:
            continue
        if not g.added_logged:
            instants.append(g.starts_at)
        if g.expires_at is not None and not g.expiry_logged:
            instants.append(g.expires_at)
    return min(instants, default=None)
