"""Grant states, the consumption order, and the consumption and refund plans."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from creditpool.core.errors import InsufficientCredits, NoActiveGrant, NoRoomToCredit
from creditpool.core.invariant import invariant
from creditpool.core.money import to_decimal


class GrantState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"
    VOIDED = "voided"


@dataclass(slots=True)
class GrantRow:
    """A grant as the rules see it. Mutable: plans are applied to working copies."""

    id: int
    amount: int  # what it can hold: its amount less the credits voided from it in part
    remaining: int
    granted_at: datetime
    available_from: datetime
    expires_at: datetime | None
    voided_at: datetime | None = None
    added_logged: bool = False
    expiry_logged: bool = False
    held: int = 0  # reserved by open holds: not in ``remaining``
    expiry_noticed: bool = False  # ``grant.expiring_soon`` was sent

    @property
    def starts_at(self) -> datetime:
        """When the credits can first be used: never before the grant was created."""
        return max(self.available_from, self.granted_at)

    def state_at(self, t: datetime) -> GrantState | None:
        """The grant's state at instant ``t``; None before it was created."""
        if t < self.granted_at:
            return None
        if self.voided_at is not None and self.voided_at <= t:
            return GrantState.VOIDED
        if self.expires_at is not None and t >= self.expires_at:
            return GrantState.EXPIRED
        if t < self.starts_at:
            return GrantState.PENDING
        return GrantState.ACTIVE

    def is_active(self, t: datetime) -> bool:
        return self.state_at(t) is GrantState.ACTIVE


def consumption_order(g: GrantRow) -> tuple[bool, datetime, datetime, datetime, int]:
    """Expiring grants first (soonest first), permanent last; then start, creation, id."""
    # Aware datetimes compare as instants (a naive key would compare wall-clock readings
    # across offsets). Permanent grants are all behind the first field; repeating
    # available_from in the second lets their ties fall through to it.
    expiry = g.expires_at if g.expires_at is not None else g.available_from
    return (g.expires_at is None, expiry, g.available_from, g.granted_at, g.id)


def refund_order(g: GrantRow) -> tuple[datetime, int]:
    """Most recent first is the reverse of this key."""
    return (g.granted_at, g.id)


def left_at(grants: list[GrantRow], t: datetime) -> int:
    return sum(g.remaining for g in grants if g.is_active(t))


def plan_consumption(grants: list[GrantRow], cost: int, t: datetime) -> list[tuple[int, int]]:
    """Which grants pay ``cost`` at ``t``, and how much each. All or nothing.

    Raises InsufficientCredits when the active grants hold less than ``cost``.
    """
    invariant(cost > 0, "a consumption costs more than zero")
    active = sorted(
        (g for g in grants if g.is_active(t) and g.remaining > 0), key=consumption_order
    )
    left = sum(g.remaining for g in active)
    if left < cost:
        raise InsufficientCredits(
            f"{to_decimal(cost)} credits needed, {to_decimal(left)} left",
            left=to_decimal(left),
            required=to_decimal(cost),
        )
    plan: list[tuple[int, int]] = []
    due = cost
    for g in active:
        take = min(g.remaining, due)
        plan.append((g.id, take))
        due -= take
        if due == 0:
            break
    return plan


@dataclass(frozen=True, slots=True)
class RefundPlan:
    restored: int
    lost: int
    restorations: list[tuple[int, int]]


def plan_refund(
    allocations: list[tuple[int, int]], grants: dict[int, GrantRow], t: datetime
) -> RefundPlan:
    """Restore what came from still-active grants to the most recent active grants.

    What came from grants that have expired or been voided is lost. A restoration never
    lifts a grant above its amount; in the rare case where the active grants have less
    room than the refundable part (their room was refilled by earlier refunds whose source
    grants have since expired), the part that has no room is lost too.
    Raises NoActiveGrant when no grant is active at ``t``.
    """
    active = _most_recent_first(grants.values(), t)
    if not active:
        raise NoActiveGrant("no grant is active: nothing can take the refund")
    drawn = sum(amount for _, amount in allocations)
    refundable = sum(a for gid, a in allocations if gid in grants and grants[gid].is_active(t))
    restorations, due = _fill(active, refundable)
    restored = refundable - due
    return RefundPlan(restored=restored, lost=drawn - restored, restorations=restorations)


def plan_credit(grants: list[GrantRow], credits: int, t: datetime) -> list[tuple[int, int]]:
    """Give ``credits`` back to the active grants as a refund would (the most recent first,
    each up to its amount). All or nothing.

    Raises NoActiveGrant when no grant is active at ``t``, and NoRoomToCredit when the
    active grants have used less than ``credits`` (grant new credits instead)."""
    invariant(credits > 0, "a credit gives back more than zero")
    active = _most_recent_first(grants, t)
    if not active:
        raise NoActiveGrant("no grant is active: nothing can take the credits")
    restorations, due = _fill(active, credits)
    if due:
        room = credits - due
        raise NoRoomToCredit(
            f"the active grants can take back at most {to_decimal(room)} credits (what they"
            f" have used); grant new credits for more",
            room=to_decimal(room),
        )
    return restorations


def _most_recent_first(grants: Iterable[GrantRow], t: datetime) -> list[GrantRow]:
    return sorted((g for g in grants if g.is_active(t)), key=refund_order, reverse=True)


def _fill(active: list[GrantRow], due: int) -> tuple[list[tuple[int, int]], int]:
    """Put ``due`` into the grants in this order, each up to its amount: (grant, credits)
    put, and what found no room."""
    restorations: list[tuple[int, int]] = []
    for g in active:
        if due == 0:
            break
        room = g.amount - g.remaining - g.held
        put = min(room, due)
        if put > 0:
            restorations.append((g.id, put))
            due -= put
    return restorations, due


def apply_draws(grants: dict[int, GrantRow], draws: list[tuple[int, int]], sign: int) -> None:
    """Apply a plan to working copies: sign -1 draws, +1 restores."""
    for gid, amount in draws:
        g = grants[gid]
        g.remaining += sign * amount
        check_bounds(g)


def check_bounds(g: GrantRow) -> None:
    """0 <= remaining, 0 <= held, remaining + held <= amount."""
    invariant(
        g.remaining >= 0 and g.held >= 0 and g.remaining + g.held <= g.amount,
        f"grant {g.id} out of bounds: remaining {g.remaining}, held {g.held}, amount {g.amount}",
    )
