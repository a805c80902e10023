"""Low-balance alerts: when Left crosses an organization's thresholds (pure rules).

The alerts in force are part of the organization's state (``orgs.alerts``):

- ``balance.low`` fires when Left falls below a threshold, once per threshold: it fires
  again only after Left has been back at or above that threshold;
- ``balance.depleted`` fires when Left reaches 0, once until Left is above 0 again;
- ``balance.recovered`` fires when every alert in force has cleared: Left is back at or
  above the highest threshold crossed (or above 0 after a depletion), e.g. after a grant or
  a refund. A partial recovery (above a lower threshold, still below a higher one) re-arms
  the lower one silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class AlertKind(StrEnum):
    LOW = "balance.low"
    DEPLETED = "balance.depleted"
    RECOVERED = "balance.recovered"


@dataclass(frozen=True, slots=True)
class AlertState:
    """The thresholds (units) Left is below and has been told of, and depletion."""

    low: tuple[int, ...] = ()
    depleted: bool = False

    @property
    def active(self) -> bool:
        return bool(self.low) or self.depleted

    def to_json(self) -> dict[str, Any] | None:
        if not self.active:
            return None
        return {"low": list(self.low), "depleted": self.depleted}

    @classmethod
    def from_json(cls, value: object) -> AlertState:
        if not isinstance(value, dict):
            return cls()
        low = value.get("low") or []
        return cls(tuple(sorted(int(t) for t in low)), bool(value.get("depleted")))


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    # balance.low: the threshold crossed; balance.recovered: the highest one that had been
    # crossed (None when only a depletion is over)
    threshold: int | None = None


def evaluate(state: AlertState, thresholds: list[int], left: int) -> tuple[AlertState, list[Alert]]:
    """The alerts Left now fires, and the state to keep. Thresholds no longer configured are
    forgotten (they neither fire nor hold a recovery back)."""
    configured = set(thresholds)
    before = AlertState(tuple(t for t in state.low if t in configured), state.depleted)
    still_low = {t for t in before.low if left < t}
    alerts = [
        Alert(AlertKind.LOW, t)
        for t in sorted(configured, reverse=True)
        if left < t and t not in still_low
    ]
    depleted = left <= 0
    if depleted and not before.depleted:
        alerts.append(Alert(AlertKind.DEPLETED))
    after = AlertState(
        tuple(sorted(still_low | {a.threshold for a in alerts if a.threshold})), depleted
    )
    if before.active and not after.active:
        alerts.append(Alert(AlertKind.RECOVERED, max(before.low, default=None)))
    return after, alerts
