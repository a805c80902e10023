"""Holds: credits reserved on grants (in consumption order), then settled or released.

A hold moves credits from a grant's ``remaining`` (Left) to its ``held``. Releasing gives
them back to the grants that are still active; what was held on a grant that expired or was
voided meanwhile left the pool with that grant and is ``lost``. Settling draws the cost from
the held credits first (grant by grant, in consumption order), gives back the rest, and
charges any excess like a consumption from the other active credits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from creditpool.core.errors import InsufficientCredits
from creditpool.core.grants import GrantRow, check_bounds, consumption_order, plan_consumption
from creditpool.core.invariant import invariant
from creditpool.core.money import to_decimal

Draws = list[tuple[int, int]]


class HoldStatus(StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


# The name the ledger, the repository and the timeline know it by; the public models
# (``creditpool.holds.models``) re-export it as ``HoldStatus``, its name in the API.
HoldState = HoldStatus


@dataclass(slots=True)
class HoldRow:
    """A hold as the rules see it. Mutable: plans are applied to working copies."""

    id: int
    amount: int
    expires_at: datetime
    allocations: Draws
    status: HoldState = HoldState.OPEN
    closed_at: datetime | None = None
    released: int = 0
    lost: int = 0
    consumption_id: int | None = None
    returned: Draws | None = None  # once closed: what went back to each grant

    def state_at(self, t: datetime) -> HoldState:
        """Its state at ``t`` (now or later): an open hold past its time to live has expired
        even before anything wrote it."""
        if self.status is HoldState.OPEN and t >= self.expires_at:
            return HoldState.EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class Release:
    """What a hold gives back (per grant) and what it lost with expired or voided grants."""

    returned: Draws
    lost: int

    @property
    def released(self) -> int:
        return sum(a for _, a in self.returned)


@dataclass(frozen=True, slots=True)
class SettlePlan:
    """The consumption's allocations (``draws``) and the hold's release around them."""

    release: Release
    draws: Draws
    extra: int  # charged from credits that were not held

    @property
    def given_back(self) -> int:
        """Held credits that did not pay for the consumption and stay in Left."""
        return self.release.released - (sum(a for _, a in self.draws) - self.extra)


def plan_hold(grants: list[GrantRow], amount: int, t: datetime) -> Draws:
    """Which grants hold ``amount`` at ``t``: the same order as a consumption. Raises
    InsufficientCredits when Left < amount."""
    return plan_consumption(grants, amount, t)


def apply_hold(grants: dict[int, GrantRow], draws: Draws) -> None:
    for gid, amount in draws:
        g = grants[gid]
        g.remaining -= amount
        g.held += amount
        check_bounds(g)


def plan_release(hold: HoldRow, grants: dict[int, GrantRow], t: datetime) -> Release:
    """Everything held goes back to its grant if that grant is still active at ``t``."""
    invariant(hold.status is HoldState.OPEN, f"hold {hold.id} is {hold.status}, not open")
    returned: Draws = []
    lost = 0
    for gid, amount in hold.allocations:
        g = grants.get(gid)
        if g is not None and g.is_active(t):
            returned.append((gid, amount))
        else:
            lost += amount
    return Release(returned=returned, lost=lost)


def plan_settle(hold: HoldRow, grants: dict[int, GrantRow], cost: int, t: datetime) -> SettlePlan:
    """Pay ``cost`` from the hold's live credits first, in consumption order; the excess
    from the other active credits (InsufficientCredits when they cannot cover it: nothing
    changes, the hold stays open)."""
    invariant(cost > 0, "a consumption costs more than zero")
    release = plan_release(hold, grants, t)
    held = release.released
    if cost <= held:
        draws: Draws = []
        due = cost
        for gid, amount in sorted(release.returned, key=lambda d: consumption_order(grants[d[0]])):
            take = min(amount, due)
            draws.append((gid, take))
            due -= take
            if due == 0:
                break
        return SettlePlan(release=release, draws=draws, extra=0)
    extra = cost - held
    try:
        others = plan_consumption(list(grants.values()), extra, t)
    except InsufficientCredits as refused:
        left = refused.extra["left"]
        raise InsufficientCredits(
            f"{to_decimal(cost)} credits needed: {to_decimal(held)} held and {left} left",
            left=left,
            held=to_decimal(held),
            required=to_decimal(cost),
        ) from None
    merged: dict[int, int] = {}
    for gid, amount in [*release.returned, *others]:
        merged[gid] = merged.get(gid, 0) + amount
    draws = sorted(merged.items(), key=lambda d: consumption_order(grants[d[0]]))
    return SettlePlan(release=release, draws=draws, extra=extra)


def apply_release(hold: HoldRow, grants: dict[int, GrantRow], release: Release) -> None:
    """Give the live held credits back to their grants (the lost ones were already taken
    off their grants when those expired or were voided)."""
    for gid, amount in release.returned:
        g = grants[gid]
        g.held -= amount
        g.remaining += amount
        check_bounds(g)


def close(
    hold: HoldRow, status: HoldState, at: datetime, release: Release, given_back: int
) -> None:
    """Mark a working copy closed: ``given_back`` went back to Left, ``release.lost`` was
    lost with its grants."""
    invariant(hold.status is HoldState.OPEN, f"hold {hold.id} is {hold.status}, not open")
    hold.status = status
    hold.closed_at = at
    hold.released = given_back
    hold.lost = release.lost
    hold.returned = release.returned
