"""Property tests: the core's plans, applied step by step, against a plain reference model.

The reference model below is written from SPEC.md alone (a list of dict grants and the
rules in words), not from the implementation. Random grants (expiring, permanent, pending),
consumptions, refunds, voids and holds (settled below or above what they hold, released,
or left to run out at their exact instant) are applied over a moving clock; after every
step both must agree on Left, Held, every grant's remaining and held, and every hold's
outcome; 0 <= remaining <= remaining + held <= amount, and the ledger drafts (catch-up
entries plus one entry per change) form an unbroken chain whose sum is Left.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from creditpool.core.errors import InsufficientCredits, NoActiveGrant
from creditpool.core.grants import (
    GrantRow,
    GrantState,
    apply_draws,
    left_at,
    plan_consumption,
    plan_refund,
)
from creditpool.core.holds import (
    HoldRow,
    HoldState,
    apply_hold,
    apply_release,
    close,
    plan_hold,
    plan_release,
    plan_settle,
)
from creditpool.core.ledger import LedgerAction, LedgerMethod
from creditpool.core.timeline import LedgerDraft, catch_up, logged_left
from tests.unit.builders import T0

# The reference model: the spec's rules written plainly.

Ref = dict[str, Any]
SIGN = {
    "added": +1,
    "expired": -1,
    "used": -1,
    "refunded": +1,
    "voided": -1,
    "held": -1,
    "released": +1,
}
ACTION = {
    "used": LedgerAction.CONSUMPTION,
    "refunded": LedgerAction.REFUND,
    "voided": LedgerAction.VOID,
    "held": LedgerAction.HOLD,
    "released": LedgerAction.RELEASE,
}


def ref_state(g: Ref, t: datetime) -> str | None:
    if t < g["granted_at"]:
        return None
    if g["voided_at"] is not None and t >= g["voided_at"]:
        return "voided"
    if g["expires_at"] is not None and t >= g["expires_at"]:
        return "expired"
    if t < max(g["available_from"], g["granted_at"]):  # never usable before it exists
        return "pending"
    return "active"


def ref_active(grants: list[Ref], t: datetime) -> list[Ref]:
    return [g for g in grants if ref_state(g, t) == "active"]


def ref_left(grants: list[Ref], t: datetime) -> int:
    return sum(g["remaining"] for g in ref_active(grants, t))


def ref_in_order(grants: list[Ref]) -> list[Ref]:
    """Expiring first (soonest first), permanent last; ties: start, creation, id."""
    expiring = [g for g in grants if g["expires_at"] is not None]
    permanent = [g for g in grants if g["expires_at"] is None]
    expiring.sort(key=lambda g: (g["expires_at"], g["available_from"], g["granted_at"], g["id"]))
    permanent.sort(key=lambda g: (g["available_from"], g["granted_at"], g["id"]))
    return expiring + permanent


def ref_consume(grants: list[Ref], cost: int, t: datetime) -> list[tuple[int, int]] | None:
    """Draw ``cost`` from what is Left, in consumption order; None when Left < cost."""
    if ref_left(grants, t) < cost:
        return None
    draws = []
    due = cost
    for g in ref_in_order(ref_active(grants, t)):
        take = min(due, g["remaining"])
        if take > 0:
            g["remaining"] -= take
            draws.append((g["id"], take))
            due -= take
    return draws


def ref_refund(
    grants: list[Ref], drawn: list[tuple[int, int]], t: datetime, holds: list[Ref] | None = None
) -> tuple[int, int] | None:
    """Restore the part drawn from still-active grants to the most recent ones first, each
    up to its amount (what open holds reserve on it takes room too)."""
    active = ref_active(grants, t)
    if not active:
        return None
    active_ids = {g["id"] for g in active}
    refundable = sum(amount for gid, amount in drawn if gid in active_ids)
    restored = 0
    for g in sorted(active, key=lambda g: (g["granted_at"], g["id"]), reverse=True):
        room = g["amount"] - g["remaining"] - ref_held_on(holds or [], grants, g["id"], t)
        put = min(room, refundable - restored)
        g["remaining"] += put
        restored += put
    return restored, sum(amount for _, amount in drawn) - restored


# Holds in the reference model: {"id", "amount", "expires_at", "held": [(grant id, amount)],
# "status": open|settled|released|expired, "released", "lost"}. An open hold whose time to
# live passed is closed at that instant by ``ref_expire_holds`` before anything else runs.


def ref_is_open(h: Ref, t: datetime) -> bool:
    return bool(h["status"] == "open" and t < h["expires_at"])


def ref_held_on(holds: list[Ref], grants: list[Ref], gid: int, t: datetime) -> int:
    """What open holds reserve on a grant at t: nothing once the grant is not active."""
    g = next(g for g in grants if g["id"] == gid)
    if ref_state(g, t) != "active":
        return 0
    return sum(a for h in holds if ref_is_open(h, t) for hg, a in h["held"] if hg == gid)


def ref_held(holds: list[Ref], grants: list[Ref], t: datetime) -> int:
    return sum(ref_held_on(holds, grants, g["id"], t) for g in grants)


def ref_live_held(h: Ref, grants: list[Ref], t: datetime) -> list[tuple[int, int]]:
    """The hold's part on grants still active at t."""
    active = {g["id"] for g in ref_active(grants, t)}
    return [(gid, a) for gid, a in h["held"] if gid in active]


def ref_close(h: Ref, grants: list[Ref], status: str, t: datetime, paid: dict[int, int]) -> None:
    """What did not pay goes back to the grants still active at t; the rest is lost."""
    live = dict(ref_live_held(h, grants, t))
    for g in grants:
        g["remaining"] += live.get(g["id"], 0) - paid.get(g["id"], 0)
    h["status"] = status
    h["released"] = sum(live.values()) - sum(paid.values())
    h["lost"] = h["amount"] - sum(live.values())


def ref_expire_holds(holds: list[Ref], grants: list[Ref], upto: datetime) -> None:
    """Each open hold whose time to live passed ends at its own instant, in time order; a
    grant expiring at that same instant is already gone."""
    due = [h for h in holds if h["status"] == "open" and h["expires_at"] <= upto]
    for h in sorted(due, key=lambda h: (h["expires_at"], h["id"])):
        ref_close(h, grants, "expired", h["expires_at"], {})


def ref_settle(
    h: Ref, grants: list[Ref], cost: int, t: datetime
) -> tuple[list[tuple[int, int]], dict[int, int]] | None:
    """The cost from the held credits first (grant by grant, in consumption order), the
    excess from what is Left (in consumption order). Returns the consumption's draws
    (merged per grant, in consumption order) and the part paid from the hold; None when
    Left cannot pay the excess. Changes nothing."""
    by_id = {g["id"]: g for g in grants}
    live = dict(ref_live_held(h, grants, t))
    paid: dict[int, int] = {}
    due = cost
    for g in ref_in_order([by_id[gid] for gid in live]):
        take = min(due, live[g["id"]])
        if take > 0:
            paid[g["id"]] = take
            due -= take
    others = ref_consume(copy.deepcopy(grants), due, t) if due else []
    if others is None:
        return None
    merged = dict(paid)
    for gid, a in others:
        merged[gid] = merged.get(gid, 0) + a
    ordered = ref_in_order([by_id[gid] for gid in merged])
    return [(g["id"], merged[g["id"]]) for g in ordered], paid


def refundable(drawn: list[tuple[int, int]], live: dict[int, GrantRow], t: datetime) -> int:
    return sum(a for gid, a in drawn if gid in live and live[gid].is_active(t))


@dataclass
class Consumption:
    draws: list[tuple[int, int]]  # as the core planned them
    ref_draws: list[tuple[int, int]]  # as the reference model drew them
    refunded: bool = False


class CreditPoolMachine(RuleBasedStateMachine):
    """The core driven as the ledger writer drives it: catch up, plan, apply, append."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.rows: dict[int, GrantRow] = {}
        self.ref: list[Ref] = []
        self.ledger: list[LedgerDraft] = []
        self.consumptions: list[Consumption] = []
        self.holds: dict[int, HoldRow] = {}
        self.ref_holds: list[Ref] = []

    # the system under test

    def live(self) -> dict[int, GrantRow]:
        """What the writer loads: grants neither voided nor logged as expired."""
        return {
            gid: g for gid, g in self.rows.items() if g.voided_at is None and not g.expiry_logged
        }

    def open_holds(self) -> list[HoldRow]:
        """What the writer loads: the holds still marked open."""
        return [h for h in self.holds.values() if h.status is HoldState.OPEN]

    def catch_up(self) -> None:
        self.ledger.extend(catch_up(list(self.live().values()), self.now, self.open_holds()))

    def caught_up(self) -> tuple[dict[int, GrantRow], dict[int, HoldRow], list[LedgerDraft]]:
        """A read: copies of the grants and holds caught up to now, and the drafts it made."""
        rows, holds = copy.deepcopy((self.rows, self.holds))
        live = [g for g in rows.values() if g.voided_at is None and not g.expiry_logged]
        opened = [h for h in holds.values() if h.status is HoldState.OPEN]
        return rows, holds, catch_up(live, self.now, opened)

    def append(self, method: str, credits: int, before: int) -> None:
        after = before + SIGN[method] * credits
        action = ACTION[method]
        self.ledger.append(
            LedgerDraft(self.now, action, LedgerMethod(method), credits, before, after)
        )

    # rules

    @initialize(amount=st.integers(1, 60), lifetime=st.none() | st.integers(1, 90))
    def first_grant(self, amount: int, lifetime: int | None) -> None:
        self.grant(amount, 0, lifetime)

    @rule(
        amount=st.integers(1, 60),
        delay=st.sampled_from([0, 0, 0, 1, 5, 17, 30]),
        lifetime=st.none() | st.integers(1, 90),
    )
    def grant(self, amount: int, delay: int, lifetime: int | None) -> None:
        self.catch_up()
        gid = len(self.rows) + 1
        available_from = self.now + timedelta(minutes=delay)
        expires_at = None if lifetime is None else available_from + timedelta(minutes=lifetime)
        self.rows[gid] = GrantRow(gid, amount, amount, self.now, available_from, expires_at)
        self.ref.append(
            {
                "id": gid,
                "amount": amount,
                "remaining": amount,
                "granted_at": self.now,
                "available_from": available_from,
                "expires_at": expires_at,
                "voided_at": None,
            }
        )
        self.catch_up()  # available at once: the grant_added entry is written now

    @rule(cost=st.integers(1, 80))
    def consume(self, cost: int) -> None:
        self.catch_up()
        live = self.live()
        expected = ref_consume(self.ref, cost, self.now)
        before = left_at(list(live.values()), self.now)
        if expected is None:
            event("consumption refused: insufficient credits")
            with pytest.raises(InsufficientCredits):
                plan_consumption(list(live.values()), cost, self.now)
            return
        draws = plan_consumption(list(live.values()), cost, self.now)
        assert draws == expected
        event(f"consumption drew from {min(len(draws), 3)} grant(s)")
        apply_draws(live, draws, -1)
        self.append("used", cost, before)
        self.consumptions.append(Consumption(draws, expected))

    @precondition(lambda self: any(not c.refunded for c in self.consumptions))
    @rule(pick=st.integers(0, 10**6))
    def refund(self, pick: int) -> None:
        self.catch_up()
        open_ = [c for c in self.consumptions if not c.refunded]
        consumption = open_[pick % len(open_)]
        expected = ref_refund(self.ref, consumption.ref_draws, self.now, self.ref_holds)
        live = self.live()
        if expected is None:
            event("refund refused: no active grant")
            with pytest.raises(NoActiveGrant):
                plan_refund(consumption.draws, live, self.now)
            return
        before = left_at(list(live.values()), self.now)
        plan = plan_refund(consumption.draws, live, self.now)
        assert (plan.restored, plan.lost) == expected
        event(f"refund: {'lost part' if plan.lost else 'restored all'}")
        if plan.restored < refundable(consumption.draws, live, self.now):
            event("refund: active grants had less room than the refundable part")
        assert sum(a for _, a in plan.restorations) == plan.restored
        apply_draws(live, plan.restorations, +1)
        consumption.refunded = True
        if plan.restored:
            self.append("refunded", plan.restored, before)

    @precondition(lambda self: any(g.voided_at is None for g in self.rows.values()))
    @rule(pick=st.integers(0, 10**6))
    def void(self, pick: int) -> None:
        self.catch_up()
        candidates = [g for g in self.rows.values() if g.voided_at is None]
        g = candidates[pick % len(candidates)]
        before = left_at(list(self.live().values()), self.now)
        state = g.state_at(self.now)
        was_active = state is GrantState.ACTIVE
        event(f"void of a grant {state}")
        g.voided_at = self.now
        g.held = 0  # what open holds reserved on it is lost with it
        next(r for r in self.ref if r["id"] == g.id)["voided_at"] = self.now
        if was_active and g.remaining:
            self.append("voided", g.remaining, before)

    @rule(
        amount=st.integers(1, 30),
        ttl=st.sampled_from([1, 5, 15, 60, "until a grant expires"]),
        pick=st.integers(0, 10**6),
    )
    def hold(self, amount: int, ttl: int | str, pick: int) -> None:
        self.catch_up()
        if isinstance(ttl, str):  # ends at the very instant a grant expires
            ends = sorted(
                {g.expires_at for g in self.rows.values() if g.expires_at and g.is_active(self.now)}
            )
            if not ends:
                return
            expires_at = ends[pick % len(ends)]
        else:
            expires_at = self.now + timedelta(minutes=ttl)
        live = self.live()
        expected = ref_consume(self.ref, amount, self.now)  # draws like a consumption
        if expected is None:
            event("hold refused: insufficient credits")
            with pytest.raises(InsufficientCredits):
                plan_hold(list(live.values()), amount, self.now)
            return
        before = left_at(list(live.values()), self.now)
        draws = plan_hold(list(live.values()), amount, self.now)
        assert draws == expected
        apply_hold(live, draws)
        hid = len(self.holds) + 1
        self.holds[hid] = HoldRow(hid, amount, expires_at, draws)
        self.ref_holds.append(
            {
                "id": hid,
                "amount": amount,
                "expires_at": expires_at,
                "held": expected,
                "status": "open",
                "released": 0,
                "lost": 0,
            }
        )
        self.append("held", amount, before)

    def pick_hold(self, pick: int) -> tuple[HoldRow, Ref]:
        """Mostly an open hold; one time in five any hold (a closed one is refused)."""
        opened = [r["id"] for r in self.ref_holds if ref_is_open(r, self.now)]
        ids = opened if opened and pick % 5 else sorted(self.holds)
        hid = ids[pick % len(ids)]
        return self.holds[hid], self.ref_holds[hid - 1]

    @precondition(lambda self: bool(self.holds))
    @rule(pick=st.integers(0, 10**6), factor=st.sampled_from([0.1, 0.5, 1, 1.5, 4]))
    def settle(self, pick: int, factor: float) -> None:
        self.catch_up()
        h, r = self.pick_hold(pick)
        live = self.live()
        cost = max(1, int(h.amount * factor))
        if not ref_is_open(r, self.now):
            assert h.status is not HoldState.OPEN  # the writer refuses: not open
            assert h.status.value == r["status"]
            return
        expected = ref_settle(r, self.ref, cost, self.now)
        if expected is None:
            event("settle refused: the excess cannot be paid")
            snapshot = copy.deepcopy((live, h))
            with pytest.raises(InsufficientCredits):
                plan_settle(h, live, cost, self.now)
            assert copy.deepcopy((live, h)) == snapshot  # the hold stays open, unchanged
            return
        ref_draws, paid = expected
        plan = plan_settle(h, live, cost, self.now)
        assert plan.draws == ref_draws
        event(f"settle {'within' if plan.extra == 0 else 'above'} what the hold has")
        if plan.release.lost:
            event("settle: part of the hold was lost with its grant")
        assert sum(a for _, a in plan.draws) == cost
        # as the writer does: give the live held credits back, then consume the cost
        before = left_at(list(live.values()), self.now)
        apply_release(h, live, plan.release)
        if plan.release.released:
            self.append("released", plan.release.released, before)
        before = left_at(list(live.values()), self.now)
        apply_draws(live, plan.draws, -1)
        self.append("used", cost, before)
        close(h, HoldState.SETTLED, self.now, plan.release, plan.given_back)
        for gid, a in ref_draws:  # the excess came from Left
            next(g for g in self.ref if g["id"] == gid)["remaining"] -= a - paid.get(gid, 0)
        ref_close(r, self.ref, "settled", self.now, paid)
        self.consumptions.append(Consumption(plan.draws, ref_draws))

    @precondition(lambda self: bool(self.holds))
    @rule(pick=st.integers(0, 10**6))
    def release(self, pick: int) -> None:
        self.catch_up()
        h, r = self.pick_hold(pick)
        if not ref_is_open(r, self.now):
            assert h.status is not HoldState.OPEN
            assert h.status.value == r["status"]
            return
        live = self.live()
        plan = plan_release(h, live, self.now)
        event(f"release: {'part lost' if plan.lost else 'all back'}")
        before = left_at(list(live.values()), self.now)
        apply_release(h, live, plan)
        if plan.released:
            self.append("released", plan.released, before)
        close(h, HoldState.RELEASED, self.now, plan, plan.released)
        ref_close(r, self.ref, "released", self.now, {})

    @rule(minutes=st.sampled_from([1, 1, 2, 5, 10, 30, 90]))
    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        opened = [r for r in self.ref_holds if r["status"] == "open"]
        ref_expire_holds(self.ref_holds, self.ref, self.now)
        for r in opened:
            if r["status"] == "expired":
                event(f"hold ran out: {'part lost' if r['lost'] else 'all back'}")

    # checks after every step

    @invariant()
    def left_and_every_remaining_agree_with_the_reference(self) -> None:
        rows, _, _ = self.caught_up()  # a hold that ran out is released when read
        assert left_at(list(rows.values()), self.now) == ref_left(self.ref, self.now)
        for r in self.ref:
            g = rows[r["id"]]
            assert g.remaining == r["remaining"]
            assert 0 <= g.remaining <= g.remaining + g.held <= g.amount

    @invariant()
    def held_and_every_hold_agree_with_the_reference(self) -> None:
        rows, holds, _ = self.caught_up()
        held = sum(g.held for g in rows.values() if g.is_active(self.now))
        assert held == ref_held(self.ref_holds, self.ref, self.now)
        for g in rows.values():
            if g.is_active(self.now):
                assert g.held == ref_held_on(self.ref_holds, self.ref, g.id, self.now)
        for r in self.ref_holds:
            h = holds[r["id"]]
            assert h.state_at(self.now).value == r["status"]
            assert (h.released, h.lost) == (r["released"], r["lost"])
            assert h.allocations == r["held"]
            assert sum(a for _, a in h.allocations) == h.amount

    @invariant()
    def states_agree_with_the_reference(self) -> None:
        for r in self.ref:
            state = self.rows[r["id"]].state_at(self.now)
            assert (None if state is None else GrantState(state).value) == ref_state(r, self.now)

    @invariant()
    def ledger_is_an_unbroken_chain_summing_to_left(self) -> None:
        # Read without writing: catch up a copy, as a balance read computes it.
        _, _, pending = self.caught_up()
        drafts = self.ledger + pending
        assert all(d.credits > 0 for d in drafts)
        assert all(d.total_after - d.total_before == SIGN[d.method] * d.credits for d in drafts)
        assert all(a.total_after == b.total_before for a, b in pairwise(drafts))
        assert all(a.at <= b.at for a, b in pairwise(drafts))
        assert all(d.at <= self.now for d in drafts)
        total = sum(SIGN[d.method] * d.credits for d in drafts)
        assert total == ref_left(self.ref, self.now)
        if drafts:
            assert drafts[0].total_before == 0
            assert drafts[-1].total_after == total
        if self.ledger:
            assert logged_left(list(self.live().values())) == self.ledger[-1].total_after


CreditPoolMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_core_agrees_with_the_reference_model = CreditPoolMachine.TestCase


# Single-step properties over random grant sets.

NOW = T0 + timedelta(minutes=100)


@st.composite
def grant_sets(draw: st.DrawFn) -> list[GrantRow]:
    count = draw(st.integers(0, 8))
    grants = []
    for gid in range(1, count + 1):
        amount = draw(st.integers(1, 50))
        granted = T0 + timedelta(minutes=draw(st.integers(0, 120)))
        available = granted + timedelta(minutes=draw(st.sampled_from([0, 0, 10, 50])))
        lifetime = draw(st.none() | st.integers(1, 120))
        expires = None if lifetime is None else available + timedelta(minutes=lifetime)
        voided = draw(st.none() | st.integers(0, 150))
        grants.append(
            GrantRow(
                gid,
                amount,
                draw(st.integers(0, amount)),
                granted,
                available,
                expires,
                None if voided is None else T0 + timedelta(minutes=voided),
            )
        )
    return grants


def as_ref(g: GrantRow) -> Ref:
    return {
        "id": g.id,
        "amount": g.amount,
        "remaining": g.remaining,
        "granted_at": g.granted_at,
        "available_from": g.available_from,
        "expires_at": g.expires_at,
        "voided_at": g.voided_at,
    }


@settings(deadline=None, max_examples=300)
@given(grant_sets(), st.integers(1, 200))
def test_a_consumption_is_paid_whole_from_active_grants_in_order_or_refused(
    grants: list[GrantRow], cost: int
) -> None:
    left = left_at(grants, NOW)
    by_id = {g.id: g for g in grants}
    try:
        draws = plan_consumption(grants, cost, NOW)
    except InsufficientCredits:
        assert left < cost
        return
    assert left >= cost
    assert sum(a for _, a in draws) == cost
    assert all(by_id[gid].is_active(NOW) and 0 < a <= by_id[gid].remaining for gid, a in draws)
    # every grant drawn before the last one was drained
    assert all(a == by_id[gid].remaining for gid, a in draws[:-1])
    assert draws == ref_consume([as_ref(g) for g in grants], cost, NOW)


@settings(deadline=None, max_examples=300)
@given(grant_sets(), st.lists(st.tuples(st.integers(1, 9), st.integers(1, 30)), max_size=5))
def test_a_refund_restores_only_into_active_grants_and_never_past_their_amount(
    grants: list[GrantRow], drawn: list[tuple[int, int]]
) -> None:
    by_id = {g.id: g for g in grants}
    try:
        plan = plan_refund(drawn, by_id, NOW)
    except NoActiveGrant:
        assert not any(g.is_active(NOW) for g in grants)
        return
    assert plan.restored + plan.lost == sum(a for _, a in drawn)
    refundable = sum(a for gid, a in drawn if gid in by_id and by_id[gid].is_active(NOW))
    assert 0 <= plan.restored <= refundable
    assert all(by_id[gid].is_active(NOW) for gid, _ in plan.restorations)
    room = sum(g.amount - g.remaining for g in grants if g.is_active(NOW))
    assert plan.restored == min(refundable, room)
    apply_draws(by_id, plan.restorations, +1)
    assert all(0 <= g.remaining <= g.amount for g in grants)


@settings(deadline=None, max_examples=200)
@given(grant_sets(), st.data())
def test_a_consumption_refunded_at_once_restores_left_exactly(
    grants: list[GrantRow], data: st.DataObject
) -> None:
    by_id = {g.id: g for g in grants}
    left = left_at(grants, NOW)
    assume(left > 0)
    cost = data.draw(st.integers(1, left), label="cost")
    draws = plan_consumption(grants, cost, NOW)
    apply_draws(by_id, draws, -1)
    assert left_at(grants, NOW) == left - cost
    plan = plan_refund(draws, by_id, NOW)
    assert (plan.restored, plan.lost) == (cost, 0)
    apply_draws(by_id, plan.restorations, +1)
    assert left_at(grants, NOW) == left
