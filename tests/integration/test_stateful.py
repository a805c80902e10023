"""The real CreditPool on a real database, driven by random operations and clock moves,
checked after every step against a small reference model written here from SPEC.md.

The model is deliberately naive (plain dicts, Decimals, a linear scan per rule) and shares
no code with ``creditpool.core``: if both agree, the rules were read the same way twice.

Holds (issue 10) are in the model too: a hold draws like a consumption; its credits are in
Held (not Left, not Used) while it is open and its grant active; a settle pays from them
first (grant by grant, in consumption order) and charges any excess from the other active
credits, or is refused and changes nothing; a release, or the end of its time to live at
its exact instant, gives back what was held on grants still active then; what was held on a
grant that expired (at the same instant counts) or was voided is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from creditpool import (
    CreditPool,
    CreditPoolError,
    GrantCreditsShort,
    GrantExpired,
    GrantVoided,
    HoldNotOpen,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    NoActiveGrant,
    NoRoomToCredit,
)
from creditpool.ledger import service as ledger_service
from creditpool.pool import IDEMPOTENCY_KEY_RETENTION
from creditpool.storage.tables import ledger, orgs
from tests.support import FakeClock, PostgresTemplates, SqliteTemplates

ORG = "acme"
CENT = Decimal("0.0001")
FIXED = {"report": Decimal("0.5"), "agent_recommendation": Decimal("0.25")}
TOPIC_RATE = Decimal("0.00125")  # per feedback item: small quantities round to 0 or half-up
HOLD_TTL_DEFAULT = timedelta(minutes=15)
HOLD_TTL_MAX_S = 24 * 3600
# What a settle's cost is, as a multiple of the hold's amount: below, exactly, above it.
SETTLE_FACTORS = [Decimal(0), Decimal("0.3"), Decimal(1), Decimal("1.2"), Decimal(3)]

Draws = list[tuple[int, Decimal]]


# -- the reference model ---------------------------------------------------------------


@dataclass
class RefGrant:
    id: int
    amount: Decimal
    remaining: Decimal  # in Left while active; what open holds reserve on it is not in it
    granted_at: datetime
    available_from: datetime
    expires_at: datetime | None
    voided_at: datetime | None = None
    voided: Decimal = Decimal(0)  # voided from it: in part, then the rest if voided whole

    @property
    def cap(self) -> Decimal:
        """What it can hold while in the pool: its amount less what was voided in part."""
        return self.amount - self.voided

    def state(self, t: datetime) -> str:
        if self.voided_at is not None and self.voided_at <= t:
            return "voided"
        if self.expires_at is not None and t >= self.expires_at:
            return "expired"
        if t < max(self.available_from, self.granted_at):
            return "pending"
        return "active"

    def order(self, t: datetime) -> tuple[bool, datetime, datetime, datetime, int]:
        """SPEC: expiring first (soonest), permanent last; ties by available_from,
        granted_at, id."""
        far = datetime.max.replace(tzinfo=t.tzinfo)
        return (
            self.expires_at is None,
            self.expires_at or far,
            self.available_from,
            self.granted_at,
            self.id,
        )


@dataclass
class RefConsumption:
    id: int
    cost: Decimal
    drawn: Draws
    refund: tuple[Decimal, Decimal, Draws] | None = None


@dataclass
class RefHold:
    id: int
    feature: str
    amount: Decimal
    expires_at: datetime
    held: Draws  # per grant, as reserved
    status: str = "open"  # as last closed; an open hold past its TTL reads "expired"
    closed_at: datetime | None = None
    released: Decimal = Decimal(0)
    lost: Decimal = Decimal(0)
    consumption_id: int | None = None

    def state(self, t: datetime) -> str:
        if self.status == "open" and t >= self.expires_at:
            return "expired"
        return self.status


@dataclass
class Model:
    grants: dict[int, RefGrant] = field(default_factory=dict)
    consumptions: dict[int, RefConsumption] = field(default_factory=dict)
    holds: dict[int, RefHold] = field(default_factory=dict)

    def active(self, t: datetime) -> list[RefGrant]:
        return [g for g in self.grants.values() if g.state(t) == "active"]

    def held_on(self, gid: int, t: datetime) -> Decimal:
        """Reserved on a grant at t by holds still open then; nothing once the grant is
        no longer active (what was held on it left the pool with it)."""
        if self.grants[gid].state(t) != "active":
            return Decimal(0)
        return sum(
            (a for h in self.holds.values() if h.state(t) == "open" for g, a in h.held if g == gid),
            Decimal(0),
        )

    def balance(self, t: datetime) -> dict[str, Decimal]:
        active = self.active(t)
        total = sum((g.cap for g in active), Decimal(0))
        left = sum((g.remaining for g in active), Decimal(0))
        held = sum((self.held_on(g.id, t) for g in active), Decimal(0))
        upcoming = sum((g.cap for g in self.grants.values() if g.state(t) == "pending"), Decimal(0))
        return {
            "total": total,
            "left": left,
            "held": held,
            "used": total - left - held,
            "upcoming": upcoming,
        }

    def plan_consumption(self, cost: Decimal, t: datetime) -> Draws | None:
        """SPEC: in consumption order from what is Left. None when Left < cost."""
        order = sorted((g for g in self.active(t) if g.remaining > 0), key=lambda g: g.order(t))
        if sum((g.remaining for g in order), Decimal(0)) < cost:
            return None
        plan, due = [], cost
        for g in order:
            if due == 0:
                break
            take = min(g.remaining, due)
            plan.append((g.id, take))
            due -= take
        return plan

    def plan_refund(self, c: RefConsumption, t: datetime) -> tuple[Decimal, Decimal, Draws] | None:
        """SPEC: what came from still-active grants goes back to the most recent active
        grants, each filled up to its amount (what is held on it takes room too); the rest
        is lost. None: no active grant."""
        active = sorted(self.active(t), key=lambda g: (g.granted_at, g.id), reverse=True)
        if not active:
            return None
        due = sum((a for gid, a in c.drawn if self.grants[gid].state(t) == "active"), Decimal(0))
        back: Draws = []
        for g in active:
            put = min(g.cap - g.remaining - self.held_on(g.id, t), due)
            if put > 0:
                back.append((g.id, put))
                due -= put
        restored = sum((a for _, a in back), Decimal(0))
        return restored, c.cost - restored, back

    def live_held(self, h: RefHold, t: datetime) -> Draws:
        """What the hold still reserves at t: its part on grants active at t."""
        return [(gid, a) for gid, a in h.held if self.grants[gid].state(t) == "active"]

    def close_hold(self, h: RefHold, status: str, t: datetime, paid: dict[int, Decimal]) -> None:
        """Give back to the grants still active at t what did not pay (``paid`` per grant);
        what was held on the others is lost."""
        live = dict(self.live_held(h, t))
        for gid, amount in live.items():
            self.grants[gid].remaining += amount - paid.get(gid, Decimal(0))
        h.status, h.closed_at = status, t
        h.released = sum(live.values(), Decimal(0)) - sum(paid.values(), Decimal(0))
        h.lost = h.amount - sum(live.values(), Decimal(0))

    def expire_holds(self, upto: datetime) -> None:
        """Each open hold whose TTL passed is released at its own instant, in time order."""
        due = [h for h in self.holds.values() if h.status == "open" and h.expires_at <= upto]
        for h in sorted(due, key=lambda h: (h.expires_at, h.id)):
            self.close_hold(h, "expired", h.expires_at, {})
            event(f"hold ran out: {'part lost' if h.lost else 'all back'}")

    def plan_settle(self, h: RefHold, cost: Decimal, t: datetime) -> tuple[Draws, Draws] | None:
        """SPEC: the cost comes from the held credits first, grant by grant in consumption
        order; an excess is charged like a consumption from the other active credits. Returns
        (the consumption's allocations per grant in consumption order, the part of them paid
        from what was held); None when the excess cannot be paid."""
        live = sorted(self.live_held(h, t), key=lambda d: self.grants[d[0]].order(t))
        from_held: Draws = []
        due = cost
        for gid, amount in live:
            if due == 0:
                break
            take = min(amount, due)
            from_held.append((gid, take))
            due -= take
        others = self.plan_consumption(due, t) if due > 0 else []
        if others is None:
            return None
        merged: dict[int, Decimal] = {}
        for gid, amount in from_held + others:
            merged[gid] = merged.get(gid, Decimal(0)) + amount
        draws = sorted(merged.items(), key=lambda d: self.grants[d[0]].order(t))
        return draws, from_held


# -- the machine -----------------------------------------------------------------------


def price(feature: str, quantity: Decimal | None) -> Decimal:
    if quantity is None:
        return FIXED[feature]
    return (TOPIC_RATE * quantity).quantize(CENT, rounding=ROUND_HALF_UP)


class PoolMachine(RuleBasedStateMachine):
    """Subclassed per backend with ``fresh_url`` and ``drop_url`` set."""

    fresh_url: Callable[[], str]
    drop_url: Callable[[str], None]

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.url = type(self).fresh_url()
        self.pool = CreditPool.open(self.url, clock=self.clock, migrate_schema=False)
        self.model = Model()
        self.replays: list[tuple[str, dict[str, Any], Any, datetime]] = []
        self.seen: dict[datetime, dict[str, Decimal]] = {}
        self.keys = 0
        self.created = False

    def teardown(self) -> None:
        try:
            assert self.pool.verify() == []
        finally:
            self.pool.close()
            type(self).drop_url(self.url)

    @initialize(tenths=st.integers(10, 120), kind=st.sampled_from(["permanent", "expiring"]))
    def create_org(self, tenths: int, kind: str) -> None:
        self.pool.create_org(ORG)
        self.pool.set_feature("topic_detection", unit_rate=str(TOPIC_RATE), unit="item")
        self.created = True
        self.grant(tenths, kind, 1, 24)  # something to hold and consume from the start

    def _key(self) -> str:
        self.keys += 1
        return f"k-{self.keys}"

    def _move_clock(self, to: datetime) -> None:
        self.model.expire_holds(to)
        self.clock.set(to)

    # -- operations --

    @rule(
        tenths=st.integers(1, 120),
        kind=st.sampled_from(["permanent", "expiring", "pending", "pending_expiring"]),
        start_h=st.sampled_from([1, 6, 24]),
        life_h=st.sampled_from([1, 5, 24, 72]),
    )
    def grant(self, tenths: int, kind: str, start_h: int, life_h: int) -> None:
        now = self.clock.now
        amount = Decimal(tenths) / 10
        start = now + timedelta(hours=start_h) if kind.startswith("pending") else None
        expires = (start or now) + timedelta(hours=life_h) if "expiring" in kind else None
        args: dict[str, Any] = {
            "expires_at": expires,
            "available_from": start,
            "idempotency_key": self._key(),
        }
        g = self.pool.grant(ORG, str(amount), **args)
        assert g.id not in self.model.grants
        self.model.grants[g.id] = RefGrant(g.id, amount, amount, now, start or now, expires)
        self.replays.append(("grant", {"amount": str(amount), **args}, g, now))

    def _consume(self, feature: str, cost: Decimal | None, quantity: str | None) -> None:
        now = self.clock.now
        args: dict[str, Any] = {
            "user_id": "u-1",
            "quantity": quantity,
            "idempotency_key": self._key(),
        }
        if cost is None:
            with pytest.raises(InvalidAmount):
                self.pool.consume(ORG, feature, **args)
            return
        plan = self.model.plan_consumption(cost, now)
        if plan is None:
            with pytest.raises(InsufficientCredits):
                self.pool.consume(ORG, feature, **args)
            return
        c = self.pool.consume(ORG, feature, **args)
        assert c.id is not None
        assert c.cost == cost
        assert [(a.grant_id, a.amount) for a in c.allocations] == plan
        for gid, amount in plan:
            self.model.grants[gid].remaining -= amount
        self.model.consumptions[c.id] = RefConsumption(c.id, cost, plan)
        self.replays.append(("consume", {"feature": feature, **args}, c, now))

    @rule(feature=st.sampled_from(sorted(FIXED)))
    def consume_fixed(self, feature: str) -> None:
        self._consume(feature, FIXED[feature], None)

    @rule(hundredths=st.integers(1, 40_000))
    def consume_variable(self, hundredths: int) -> None:
        quantity = Decimal(hundredths) / 100
        cost = price("topic_detection", quantity)
        self._consume("topic_detection", cost if cost > 0 else None, str(quantity))

    @precondition(lambda self: bool(self.model.consumptions))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        cid = data.draw(st.sampled_from(sorted(self.model.consumptions)))
        c = self.model.consumptions[cid]
        if c.refund is not None:  # a second refund returns the first result
            r = self.pool.refund(ORG, cid)
            restored, lost, back = c.refund
            assert (r.restored, r.lost) == (restored, lost)
            assert [(a.grant_id, a.amount) for a in r.restorations] == back
            return
        plan = self.model.plan_refund(c, self.clock.now)
        if plan is None:
            with pytest.raises(NoActiveGrant):
                self.pool.refund(ORG, cid)
            return
        r = self.pool.refund(ORG, cid, reason="downvoted")
        restored, lost, back = plan
        assert (r.restored, r.lost) == (restored, lost)
        assert [(a.grant_id, a.amount) for a in r.restorations] == back
        for gid, amount in back:
            self.model.grants[gid].remaining += amount
        c.refund = plan

    @precondition(lambda self: bool(self.model.grants))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        gid = data.draw(st.sampled_from(sorted(self.model.grants)))
        g = self.model.grants[gid]
        if g.voided_at is not None:
            with pytest.raises(GrantVoided):
                self.pool.void_grant(ORG, gid)
            return
        voided = self.pool.void_grant(ORG, gid, by="cs@vendor")
        assert voided.voided_at == self.clock.now
        assert voided.held == 0  # what open holds reserved on it is lost with it
        g.voided_at = self.clock.now
        g.voided += g.remaining
        g.remaining = Decimal(0)

    # -- staff corrections --

    def _gone(self, g: RefGrant, call: Callable[[], Any]) -> bool:
        """A correction of a grant voided or expired is refused; True when it was."""
        state = g.state(self.clock.now)
        if state not in ("voided", "expired"):
            return False
        with pytest.raises(GrantVoided if state == "voided" else GrantExpired):
            call()
        return True

    @precondition(lambda self: bool(self.model.grants))
    @rule(data=st.data(), share=st.sampled_from([Decimal("0.25"), Decimal(1), Decimal(2)]))
    def void_part(self, data: st.DataObject, share: Decimal) -> None:
        """Part of what a grant has left (all of it, or more than it has: refused)."""
        gid = data.draw(st.sampled_from(sorted(self.model.grants)))
        g = self.model.grants[gid]
        amount = max(CENT, (g.remaining * share).quantize(CENT))
        key = self._key()

        def call() -> Any:
            return self.pool.void_grant(ORG, gid, amount=str(amount), by="cs", idempotency_key=key)

        if self._gone(g, call):
            return
        if amount > g.remaining:
            with pytest.raises(GrantCreditsShort):
                call()
            return
        before = self._raw_ledger()
        voided = call()
        g.remaining -= amount
        g.voided += amount
        assert (voided.remaining, voided.voided) == (g.remaining, g.voided)
        active = g.state(self.clock.now) == "active"
        self._assert_change_entries(before, [("void", -amount, None)] if active else [])
        event("a grant voided in part")

    @precondition(lambda self: bool(self.model.grants))
    @rule(data=st.data(), hours=st.sampled_from([None, 1, 5, 48]))
    def change_expiry(self, data: st.DataObject, hours: int | None) -> None:
        gid = data.draw(st.sampled_from(sorted(self.model.grants)))
        g = self.model.grants[gid]
        new = None if hours is None else self.clock.now + timedelta(hours=hours)

        def call() -> Any:
            return self.pool.change_grant_expiry(
                ORG, gid, new, by="cs", idempotency_key=self._key()
            )

        if self._gone(g, call):
            return
        if new is not None and new <= g.available_from:
            with pytest.raises(InvalidInput):
                call()
            return
        before = self._raw_ledger()
        changed = call()
        assert changed.expires_at == new
        moved = g.expires_at != new
        g.expires_at = new
        self._assert_change_entries(before, [("expiry_change", Decimal(0), None)] if moved else [])
        event("an expiry moved")

    @rule(data=st.data(), hundredths=st.integers(1, 3_000), debit=st.booleans())
    def adjust(self, data: st.DataObject, hundredths: int, debit: bool) -> None:
        now = self.clock.now
        credits = Decimal(hundredths) / 100 * (-1 if debit else 1)
        args: dict[str, Any] = {"reason": "stateful", "by": "cs", "idempotency_key": self._key()}
        if debit:
            plan = self.model.plan_consumption(-credits, now)
            if plan is None:
                with pytest.raises(InsufficientCredits):
                    self.pool.adjust(ORG, str(credits), **args)
                return
            moves = [(gid, -amount) for gid, amount in plan]
        else:
            active = sorted(
                self.model.active(now), key=lambda g: (g.granted_at, g.id), reverse=True
            )
            if not active:
                with pytest.raises(NoActiveGrant):
                    self.pool.adjust(ORG, str(credits), **args)
                return
            moves, due = [], credits
            for g in active:
                put = min(g.cap - g.remaining - self.model.held_on(g.id, now), due)
                if put > 0:
                    moves.append((g.id, put))
                    due -= put
            if due > 0:
                with pytest.raises(NoRoomToCredit):
                    self.pool.adjust(ORG, str(credits), **args)
                return
        before = self._raw_ledger()
        made = self.pool.adjust(ORG, str(credits), **args)
        assert made.credits == credits
        assert [(a.grant_id, a.amount) for a in made.allocations] == sorted(moves)
        for gid, amount in moves:
            self.model.grants[gid].remaining += amount
        self._assert_change_entries(before, [("adjustment", credits, None)])
        self.replays.append(("adjust", {"credits": str(credits), **args}, made, now))
        event("an adjustment")

    # -- holds --

    def _hold(
        self, feature: str, amount: Decimal | None, quantity: Decimal | None, ttl_s: int | None
    ) -> None:
        now = self.clock.now
        args: dict[str, Any] = {
            "user_id": "u-2",
            "ttl_s": ttl_s,
            "idempotency_key": self._key(),
        }
        if amount is not None:
            args["amount"] = str(amount)
            cost = amount
        else:
            args["quantity"] = None if quantity is None else str(quantity)
            cost = price(feature, quantity)
        if ttl_s is not None and not 0 < ttl_s <= HOLD_TTL_MAX_S:
            before = self._raw_ledger()
            with pytest.raises(InvalidInput):
                self.pool.hold(ORG, feature, **args)
            self._assert_only_catch_up_since(before)
            return
        if cost == 0:
            with pytest.raises(InvalidAmount):
                self.pool.hold(ORG, feature, **args)
            return
        plan = self.model.plan_consumption(cost, now)
        before = self._raw_ledger()
        if plan is None:
            event("hold refused: insufficient credits")
            with pytest.raises(InsufficientCredits):
                self.pool.hold(ORG, feature, **args)
            self._assert_only_catch_up_since(before)
            return
        h = self.pool.hold(ORG, feature, **args)
        ttl = HOLD_TTL_DEFAULT if ttl_s is None else timedelta(seconds=ttl_s)
        assert (h.status, h.amount, h.created_at, h.expires_at) == ("open", cost, now, now + ttl)
        assert [(a.grant_id, a.amount) for a in h.allocations] == plan
        assert (h.consumption_id, h.closed_at) == (None, None)
        assert (h.released, h.lost) == (Decimal(0), Decimal(0))
        assert h.id not in self.model.holds
        for gid, taken in plan:
            self.model.grants[gid].remaining -= taken
        self.model.holds[h.id] = RefHold(h.id, feature, cost, now + ttl, plan)
        self._assert_change_entries(before, [("hold", -cost, h.id)])
        self.replays.append(("hold", {"feature": feature, **args}, h, now))

    @rule(
        hundredths=st.integers(1, 600),
        # out of range (refused): no time to live, or more than the most allowed
        ttl_s=st.sampled_from([None, 60, 3600, 5 * 3600, HOLD_TTL_MAX_S, HOLD_TTL_MAX_S + 1, 0]),
    )
    def hold_an_amount(self, hundredths: int, ttl_s: int | None) -> None:
        self._hold("topic_detection", Decimal(hundredths) / 100, None, ttl_s)

    @rule(
        feature=st.sampled_from(["topic_detection", *sorted(FIXED)]),
        hundredths=st.integers(1, 40_000),
        ttl_s=st.sampled_from([None, 60, 3600, HOLD_TTL_MAX_S]),
    )
    def hold_priced(self, feature: str, hundredths: int, ttl_s: int | None) -> None:
        """A quantity priced from the catalog, or a fixed-price feature's one use."""
        quantity = Decimal(hundredths) / 100 if feature == "topic_detection" else None
        self._hold(feature, None, quantity, ttl_s)

    @rule(data=st.data(), hundredths=st.integers(1, 600))
    def hold_until_a_grant_expires(self, data: st.DataObject, hundredths: int) -> None:
        """A hold that ends at the very instant a grant it may draw on expires: at that
        instant the grant has expired, so what was held on it is lost, not released."""
        now = self.clock.now
        ttls = sorted(
            {
                int((g.expires_at - now).total_seconds())
                for g in self.model.active(now)
                if g.expires_at is not None
                and timedelta(0) < g.expires_at - now <= timedelta(seconds=HOLD_TTL_MAX_S)
                and (g.expires_at - now) % timedelta(seconds=1) == timedelta(0)
            }
        )
        if ttls:
            ttl_s = data.draw(st.sampled_from(ttls))
            self._hold("topic_detection", Decimal(hundredths) / 100, None, ttl_s)

    def _pick_hold(self, data: st.DataObject) -> RefHold:
        now = self.clock.now
        open_ = sorted(h.id for h in self.model.holds.values() if h.state(now) == "open")
        # Mostly open holds; sometimes a closed one, which must be refused.
        any_hold = not open_ or data.draw(st.integers(0, 4)) == 0
        ids = sorted(self.model.holds) if any_hold else open_
        return self.model.holds[data.draw(st.sampled_from(ids))]

    def _refused_not_open(self, h: RefHold, call: Callable[[], Any]) -> None:
        event(f"refused: hold {h.state(self.clock.now)}")
        before = self._raw_ledger()
        with pytest.raises(HoldNotOpen) as refused:
            call()
        assert str(refused.value.extra["status"]) == h.state(self.clock.now)
        self._assert_only_catch_up_since(before)

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data(), factor=st.sampled_from(SETTLE_FACTORS), by_quantity=st.booleans())
    def settle(self, data: st.DataObject, factor: Decimal, by_quantity: bool) -> None:
        h = self._pick_hold(data)
        now = self.clock.now
        args: dict[str, Any] = {"idempotency_key": self._key()}
        if by_quantity and h.feature == "topic_detection":  # priced at settle time
            quantity = (h.amount * factor / TOPIC_RATE).quantize(Decimal("0.01"))
            cost = price(h.feature, quantity)
            args["quantity"] = str(quantity)
        else:
            cost = max(CENT, (h.amount * factor).quantize(CENT))
            args["cost"] = str(cost)
        if cost == 0:  # a quantity that prices to nothing: refused, whatever the hold
            with pytest.raises(InvalidAmount if h.state(now) == "open" else CreditPoolError):
                self.pool.settle(ORG, h.id, **args)
            return
        if h.state(now) != "open":
            self._refused_not_open(h, lambda: self.pool.settle(ORG, h.id, **args))
            return
        planned = self.model.plan_settle(h, cost, now)
        before = self._raw_ledger()
        if planned is None:
            event("settle refused: the excess cannot be paid")
            with pytest.raises(InsufficientCredits):
                self.pool.settle(ORG, h.id, **args)
            self._assert_only_catch_up_since(before)
            assert self.pool.hold_of(ORG, h.id).status == "open"  # and unchanged: invariant
            return
        draws, from_held = planned
        live = sum((a for _, a in self.model.live_held(h, now)), Decimal(0))
        event(f"settle {'within' if cost <= live else 'above'} what the hold has")
        if live < h.amount:
            event("settle: part of the hold was lost with its grant")
        c = self.pool.settle(ORG, h.id, **args)
        assert c.id is not None
        assert (c.cost, c.hold_id, c.feature, c.user_id) == (cost, h.id, h.feature, "u-2")
        assert [(a.grant_id, a.amount) for a in c.allocations] == draws
        paid: dict[int, Decimal] = dict(from_held)
        for gid, amount in draws:  # the excess over what was held, from Left
            self.model.grants[gid].remaining -= amount - paid.get(gid, Decimal(0))
        self.model.close_hold(h, "settled", now, paid)
        h.consumption_id = c.id
        self.model.consumptions[c.id] = RefConsumption(c.id, cost, draws)
        expected = [("release", live, h.id)] if live else []
        self._assert_change_entries(before, [*expected, ("consumption", -cost, None)])
        self.replays.append(("settle", {"hold_id": h.id, **args}, c, now))

    @precondition(lambda self: bool(self.model.holds))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        h = self._pick_hold(data)
        now = self.clock.now
        key = self._key()
        if h.state(now) != "open":
            self._refused_not_open(h, lambda: self.pool.release(ORG, h.id, idempotency_key=key))
            return
        before = self._raw_ledger()
        released = self.pool.release(ORG, h.id, idempotency_key=key)
        self.model.close_hold(h, "released", now, {})
        event(f"release: {'part lost' if h.lost else 'all back'}")
        assert (released.status, released.closed_at) == ("released", now)
        assert (released.released, released.lost) == (h.released, h.lost)
        expected: list[tuple[str, Decimal, int | None]] = []
        if h.released:
            expected.append(("release", h.released, h.id))
        self._assert_change_entries(before, expected)
        self.replays.append(("release", {"hold_id": h.id, "idempotency_key": key}, released, now))

    @precondition(lambda self: bool(self.replays))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """The same key and arguments return the first result and change nothing."""
        # Keys are forgotten after the retention period (by a sweep): replay younger ones.
        young = [r for r in self.replays if r[3] > self.clock.now - IDEMPOTENCY_KEY_RETENTION]
        if not young:
            return
        operation, args, first, _ = data.draw(st.sampled_from(young))
        before = self._raw_ledger()
        call: Callable[..., Any] = {  # type: ignore[assignment]
            "grant": self.pool.grant,
            "consume": self.pool.consume,
            "hold": self.pool.hold,
            "settle": self.pool.settle,
            "release": self.pool.release,
            "adjust": self.pool.adjust,
        }[operation]
        again: Any = call(ORG, **args)
        assert again == first
        self._assert_only_catch_up_since(before)

    @rule(
        delta=st.sampled_from(
            [
                timedelta(0),
                timedelta(minutes=1),
                timedelta(minutes=15),
                timedelta(hours=1),
                timedelta(hours=7),
                timedelta(days=1),
                timedelta(days=3),
            ]
        )
    )
    def advance(self, delta: timedelta) -> None:
        self._move_clock(self.clock.now + delta)

    @rule(just_before=st.booleans())
    def advance_to_the_next_event(self, just_before: bool) -> None:
        """Land exactly on (or a microsecond before) an availability or expiry instant,
        a hold's end included."""
        now = self.clock.now
        instants = [
            t
            for g in self.model.grants.values()
            for t in (g.available_from, g.expires_at)
            if t is not None and t > now
        ]
        instants += [h.expires_at for h in self.model.holds.values() if h.expires_at > now]
        if instants:
            to = min(instants) - (timedelta(microseconds=1) if just_before else timedelta(0))
            self._move_clock(max(now, to))

    @rule()
    def sweep_then_verify(self) -> None:
        self.pool.sweep()
        assert self.pool.verify() == []
        entries = self._raw_ledger()
        last_after = entries[-1][3] if entries else Decimal(0)
        assert last_after == self.model.balance(self.clock.now)["left"]
        # Every hold that ran out is written at its own instant, with what it gave back.
        expiries = {e[4]: (e[0], e[3] - e[2]) for e in entries if e[1] == "hold_expiry"}
        assert expiries == {
            h.id: (h.expires_at, h.released)
            for h in self.model.holds.values()
            if h.status == "expired" and h.released
        }
        assert self.pool.holds(ORG, status="open", limit=500) == [
            self.pool.hold_of(ORG, h.id)
            for h in sorted(self.model.holds.values(), key=lambda h: -h.id)
            if h.state(self.clock.now) == "open"
        ]

    @precondition(lambda self: bool(self.seen))
    @rule(data=st.data())
    def balance_in_the_past(self, data: st.DataObject) -> None:
        at = data.draw(st.sampled_from(sorted(self.seen)))
        b = self.pool.balance(ORG, at=at)
        got = {"total": b.total, "left": b.left, "held": b.held, "used": b.used}
        assert got | {"upcoming": b.upcoming} == self.seen[at], at

    # -- checked after every step --

    def _raw_ledger(self) -> list[tuple[datetime, str, Decimal, Decimal, int | None]]:
        """The ledger as stored (no sweep): at, action, total_before, total_after, hold."""
        query = select(
            ledger.c.at, ledger.c.action, ledger.c.total_before, ledger.c.total_after,
            ledger.c.hold_id,
        )  # fmt: skip
        with self.pool.db.engine.connect() as conn:
            rows = conn.execute(query.where(ledger.c.org_id == ORG).order_by(ledger.c.seq))
            return [
                (at, a, Decimal(b) / 10_000, Decimal(f) / 10_000, hold)
                for at, a, b, f, hold in rows
            ]

    def _new_entries(
        self, before: list[tuple[datetime, str, Decimal, Decimal, int | None]]
    ) -> list[tuple[str, Decimal, int | None]]:
        """The entries written since ``before``, past the catch-up (availability, expiry,
        hold expiry): (action, change of Left, hold)."""
        new = self._raw_ledger()[len(before) :]
        catch_up = ("grant_added", "expiry", "hold_expiry")
        while new and new[0][1] in catch_up:
            assert new[0][0] <= self.clock.now
            new = new[1:]
        return [(action, after - b, hold) for _, action, b, after, hold in new]

    def _assert_only_catch_up_since(
        self, before: list[tuple[datetime, str, Decimal, Decimal, int | None]]
    ) -> None:
        """Only availability/expiry entries that fell due may have been written."""
        assert self._new_entries(before) == []

    def _assert_change_entries(
        self,
        before: list[tuple[datetime, str, Decimal, Decimal, int | None]],
        expected: list[tuple[str, Decimal, int | None]],
    ) -> None:
        got = self._new_entries(before)
        if expected and expected[-1][0] == "consumption":  # its hold is on the consumption
            got = [(a, d, None if a == "consumption" else h) for a, d, h in got]
        assert got == expected

    @invariant()
    def balance_matches_the_model(self) -> None:
        if not self.created:
            return
        expected = self.model.balance(self.clock.now)
        b = self.pool.balance(ORG)
        got = {"total": b.total, "left": b.left, "held": b.held, "used": b.used}
        assert got | {"upcoming": b.upcoming} == expected
        self.seen[self.clock.now] = expected  # the last look at an instant is what it ended as

    @invariant()
    def grants_match_the_model(self) -> None:
        now = self.clock.now
        for g in self.pool.grants(ORG) if self.created else []:
            ref = self.model.grants[g.id]
            assert 0 <= g.remaining <= g.remaining + g.held <= g.amount - ref.voided or (
                g.state.value == "voided"
            )
            assert (g.amount, g.remaining, g.held, g.state.value, g.voided) == (
                ref.amount,
                ref.remaining,
                self.model.held_on(g.id, now),
                ref.state(now),
                ref.voided,
            )

    @precondition(lambda self: bool(self.model.holds))
    @rule()
    def holds_match_the_model(self) -> None:
        """Every hold reads as the model says, an expired one even before it was written.

        A rule, not an invariant: listing holds writes what fell due (like ``ledger``),
        and the catch-up inside the next change must stay exercised."""
        now = self.clock.now
        listed = self.pool.holds(ORG, limit=500)
        assert [h.id for h in listed] == sorted(self.model.holds, reverse=True)
        for h in listed:
            ref = self.model.holds[h.id]
            # The model closes a hold at its instant as soon as the clock passes it; the
            # pool may not have written it yet, and must read the same.
            assert (h.status, h.amount, h.expires_at, h.closed_at, h.consumption_id) == (
                ref.state(now),
                ref.amount,
                ref.expires_at,
                ref.closed_at,
                ref.consumption_id,
            )
            # Listed in the grants' consumption order as they stand now: an expiry changed
            # since the hold was made reorders them (the amounts stay as reserved).
            in_order = sorted(ref.held, key=lambda draw: self.model.grants[draw[0]].order(now))
            assert [(a.grant_id, a.amount) for a in h.allocations] == in_order
            assert (h.released, h.lost) == (ref.released, ref.lost), h.id
        for status in ("open", "settled", "released", "expired"):
            by_status = self.pool.holds(ORG, status=status, limit=500)
            assert [h.id for h in by_status] == sorted(
                (h.id for h in self.model.holds.values() if h.state(now) == status), reverse=True
            )

    @invariant()
    def ledger_chain_is_intact_and_verify_is_clean(self) -> None:
        entries = self._raw_ledger()
        previous_after, previous_at = Decimal(0), None
        for at, _, before, after, _ in entries:
            assert before == previous_after
            assert after >= 0
            assert previous_at is None or at >= previous_at
            previous_after, previous_at = after, at
        # verify without the sweep that pool.verify() does first: the catch-up inside the
        # next change stays exercised (sweep_then_verify covers the public call).
        with self.pool.db.read() as tx:
            org = tx.conn.execute(select(orgs).where(orgs.c.id == ORG)).first()
            if org is not None:
                assert ledger_service.verify_org(tx.conn, org) == []


@pytest.mark.slow
def test_the_pool_agrees_with_a_reference_model_under_random_operations(
    backend: str,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates | None,
) -> None:
    if backend == "sqlite":
        fresh, drop = sqlite_templates.fresh, lambda _url: None
    else:
        assert postgres_templates is not None
        fresh, drop = postgres_templates.fresh, postgres_templates.drop

    class Machine(PoolMachine):
        fresh_url = staticmethod(fresh)
        drop_url = staticmethod(drop)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            # A fresh database per example: PostgreSQL's CREATE DATABASE costs more.
            max_examples=40 if backend == "sqlite" else 25,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
