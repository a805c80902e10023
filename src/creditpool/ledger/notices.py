"""The events a change writes beside its ledger entries (the outbox), decided at the end of
the change, under the organization's lock, from the grants' working copies:

- ``grant.expiring_soon``: a grant with credits left whose expiry is within the
  organization's notice period, once per grant (``GrantRow.expiry_noticed``);
- ``balance.low``, ``balance.depleted``, ``balance.recovered``: Left against the
  organization's thresholds (``core/alerts.py``), when the change moved Left.

The instants at which an expiry notice falls due join the organization's next event, so the
server's periodic sweep writes them when nothing else happens.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from creditpool.core.alerts import AlertKind, AlertState, evaluate
from creditpool.core.events import EventType
from creditpool.core.grants import GrantRow, GrantState
from creditpool.core.money import to_decimal

_NOTICED_STATES = (GrantState.ACTIVE, GrantState.PENDING)


def credits(units: int) -> str:
    """An amount as the API writes it: an exact decimal string."""
    return str(to_decimal(units))


def notice_at(g: GrantRow, notice: timedelta) -> datetime | None:
    """When ``grant.expiring_soon`` falls due for ``g`` (None: it never will, or it was
    sent)."""
    if g.expiry_noticed or g.expires_at is None or g.remaining <= 0:
        return None
    return max(g.expires_at - notice, g.granted_at)


Notice = tuple[EventType, dict[str, Any], datetime | None]  # type, data, instant (None: now)


def expiry_notices(grants: list[GrantRow], now: datetime, notice: timedelta) -> list[Notice]:
    """The expiry notices due by ``now``; their grants are marked as noticed."""
    found: list[Notice] = []
    for g in grants:
        due = notice_at(g, notice)
        if due is None or due > now or g.state_at(now) not in _NOTICED_STATES:
            continue
        assert g.expires_at is not None
        g.expiry_noticed = True
        data = {
            "grant_id": g.id,
            "expires_at": g.expires_at.isoformat(),
            "remaining": credits(g.remaining),
            "notice_days": notice.days,
        }
        found.append((EventType.GRANT_EXPIRING_SOON, data, due))
    return found


def next_notice(grants: list[GrantRow], now: datetime, notice: timedelta) -> datetime | None:
    """The earliest expiry notice still to come."""
    instants = (notice_at(g, notice) for g in grants)
    return min((t for t in instants if t is not None and t > now), default=None)


def balance_alerts(
    state: AlertState, thresholds: list[int], grants: list[GrantRow], now: datetime
) -> tuple[AlertState, list[Notice]]:
    left = sum(g.remaining for g in grants if g.state_at(now) is GrantState.ACTIVE)
    state, alerts = evaluate(state, thresholds, left)
    found: list[Notice] = []
    for alert in alerts:
        data: dict[str, Any] = {"left": credits(left)}
        if alert.threshold is not None:
            data["threshold"] = credits(alert.threshold)
        if alert.kind is AlertKind.RECOVERED and alert.threshold is None:
            data["after"] = "depleted"
        found.append((EventType(alert.kind.value), data, None))
    return state, found
