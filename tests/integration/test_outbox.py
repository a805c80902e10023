"""Events through the library, on SQLite and PostgreSQL: each written in the transaction of
the change that caused it (never for a refusal or a replay), with the once-only rules of
low balance, depletion and recovery, team limits and expiry notices, and time-based events
written at their instants by the sweep."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from creditpool import CreditPool, InsufficientCredits
from creditpool.webhooks.models import Event
from tests.support import FakeClock

# report costs 0.5 credit per use; topic_detection 0.01 per item (the seeded catalog).


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme", timezone="Europe/Berlin")
    return pool


def events(pool: CreditPool, type_: str | None = None) -> list[Event]:
    """Oldest first."""
    return list(reversed(pool.events("acme", type=type_, limit=1000)))


def amount(value: object) -> Decimal:
    """Amounts are exact decimal strings in an event's data."""
    assert isinstance(value, str)
    return Decimal(value)


def types(pool: CreditPool) -> list[str]:
    return [e.type for e in events(pool)]


def use(pool: CreditPool, credits: str, user: str = "u") -> None:
    pool.consume("acme", "topic_detection", user_id=user, quantity=str(int(Decimal(credits) * 100)))


def test_every_ledger_change_is_an_event_with_exact_amounts(acme: CreditPool) -> None:
    g = acme.grant("acme", "10", note="welcome")
    c = acme.consume("acme", "report", user_id="u")
    acme.refund("acme", c.id, reason="wrong answer")
    acme.void_grant("acme", g.id, by="cs", reason="test")
    assert types(acme) == [
        "grant.created",
        "consumption.created",
        "consumption.refunded",
        "grant.voided",
        "balance.depleted",
    ]
    created, consumed, refunded, voided, _ = events(acme)
    assert created.data["id"] == g.id
    assert amount(created.data["amount"]) == Decimal("10.0000")
    assert created.data["org_id"] == "acme"
    assert created.data["note"] == "welcome"
    assert consumed.data["id"] == c.id
    assert amount(consumed.data["cost"]) == Decimal("0.5000")
    assert refunded.data["consumption_id"] == c.id
    assert amount(refunded.data["restored"]) == Decimal("0.5000")
    assert amount(voided.data["credits_voided"]) == Decimal("10.0000")
    # each follows the ledger entry it describes
    seqs = [e.ledger_seq for e in events(acme)]
    assert seqs == sorted(seqs)
    assert seqs[0] is not None
    assert seqs[0] >= 1
    assert len({e.id for e in events(acme)}) == 5


def test_a_refusal_and_a_replay_write_no_event(acme: CreditPool) -> None:
    acme.grant("acme", "1")
    acme.consume("acme", "report", user_id="u", idempotency_key="k")
    before = types(acme)
    acme.consume("acme", "report", user_id="u", idempotency_key="k")  # replay
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "topic_detection", user_id="u", quantity="5000")
    assert types(acme) == before


def test_low_balance_fires_once_per_threshold_until_recovered(acme: CreditPool) -> None:
    acme.update_org("acme", low_balance_thresholds=["5", "2"])
    acme.grant("acme", "10")
    use(acme, "4")  # 6 left
    use(acme, "2")  # 4 left: below 5
    use(acme, "1")  # 3 left: still below 5, no second alert
    use(acme, "1.5")  # 1.5 left: below 2
    use(acme, "0.5")  # 1 left
    lows = [amount(e.data["threshold"]) for e in events(acme, "balance.low")]
    assert lows == [5, 2]
    low = events(acme, "balance.low")[0]
    assert amount(low.data["left"]) == Decimal("4.0000")
    acme.grant("acme", "10")  # 11 left: above every threshold
    [recovered] = events(acme, "balance.recovered")
    assert recovered.data.keys() == {"org_id", "left", "threshold"}
    assert amount(recovered.data["left"]) == 11
    assert amount(recovered.data["threshold"]) == 5
    use(acme, "7")  # 4 left: below 5 again, after a recovery
    assert [amount(e.data["threshold"]) for e in events(acme, "balance.low")] == [5, 2, 5]


def test_depleted_then_recovered_by_a_refund(acme: CreditPool) -> None:
    acme.grant("acme", "1")
    acme.consume("acme", "report", user_id="u")
    c = acme.consume("acme", "report", user_id="u")  # 0 left
    assert types(acme)[-1] == "balance.depleted"
    with pytest.raises(InsufficientCredits):
        acme.consume("acme", "report", user_id="u")
    assert len(events(acme, "balance.depleted")) == 1
    acme.refund("acme", c.id)
    assert types(acme)[-1] == "balance.recovered"
    assert amount(events(acme, "balance.recovered")[0].data["left"]) == Decimal("0.5")


def test_team_limit_crossed_once_per_month(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "100")
    acme.create_team("acme", "ml", monthly_limit="1")
    acme.set_member("acme", "ana", team_id="ml")
    use(acme, "0.6", "ana")
    assert events(acme, "team.limit_crossed") == []
    c = acme.consume("acme", "topic_detection", user_id="ana", quantity="40")  # 1.0: reached
    [crossed] = events(acme, "team.limit_crossed")
    assert crossed.data["team_id"] == "ml"
    assert amount(crossed.data["used"]) == Decimal("1.0000")
    assert amount(crossed.data["monthly_limit"]) == Decimal("1.0000")
    acme.refund("acme", c.id)  # back under: does not re-arm this month
    use(acme, "0.5", "ana")
    assert len(events(acme, "team.limit_crossed")) == 1
    use(acme, "5", "bob")  # no team
    clock.advance(days=32)  # next month
    use(acme, "1.2", "ana")
    later = events(acme, "team.limit_crossed")
    assert len(later) == 2
    assert later[1].data["month"] != crossed.data["month"]


def test_expiring_soon_once_per_grant_written_by_the_sweep(
    acme: CreditPool, clock: FakeClock
) -> None:
    start = clock.now
    acme.grant("acme", "5", expires_at=start + timedelta(days=10))
    acme.sweep()
    assert events(acme, "grant.expiring_soon") == []
    clock.advance(days=3, hours=1)  # within 7 days of the expiry
    acme.sweep()
    [soon] = events(acme, "grant.expiring_soon")
    assert soon.at == start + timedelta(days=3)  # at its instant, not when swept
    assert amount(soon.data["remaining"]) == Decimal("5.0000")
    clock.advance(days=1)
    acme.sweep()
    use(acme, "1")
    assert len(events(acme, "grant.expiring_soon")) == 1
    clock.advance(days=7)  # past the expiry
    acme.sweep()
    [expired] = events(acme, "grant.expired")
    assert expired.at == start + timedelta(days=10)
    assert amount(expired.data["credits_lost"]) == Decimal("4.0000")


def test_a_grant_inside_the_notice_period_is_noticed_at_once(acme: CreditPool) -> None:
    acme.update_org("acme", expiry_notice_days=2)
    acme.grant("acme", "5", expires_at=acme.db.now() + timedelta(days=1))
    assert types(acme)[:2] == ["grant.created", "grant.expiring_soon"]
    acme.grant("acme", "5", expires_at=acme.db.now() + timedelta(days=3))
    assert len(events(acme, "grant.expiring_soon")) == 1


def test_holds_are_events_and_a_hold_that_runs_out_too(acme: CreditPool, clock: FakeClock) -> None:
    acme.grant("acme", "10")
    h1 = acme.hold("acme", "report", user_id="u")
    acme.release("acme", h1.id)
    h2 = acme.hold("acme", "report", user_id="u")
    acme.settle("acme", h2.id, cost="0.25")
    h3 = acme.hold("acme", "report", user_id="u", ttl_s=60)
    clock.advance(seconds=61)
    acme.sweep()
    assert [t for t in types(acme) if t.startswith("hold.")] == [
        "hold.created",
        "hold.released",
        "hold.created",
        "hold.settled",
        "hold.created",
        "hold.expired",
    ]
    settled = events(acme, "hold.settled")[0]
    assert amount(settled.data["cost"]) == Decimal("0.2500")
    assert amount(settled.data["held"]) == Decimal("0.5000")
    expired = events(acme, "hold.expired")[0]
    assert expired.data["hold_id"] == h3.id
    assert amount(expired.data["released"]) == Decimal("0.5000")
    assert expired.at == h3.expires_at


def test_credit_requests_are_events_answered_by_a_grant(acme: CreditPool) -> None:
    r = acme.request_credits("acme", "250", requested_by="admin@acme", message="launch week")
    assert r.status == "open"
    [asked] = events(acme, "credits.requested")
    assert amount(asked.data["amount"]) == Decimal("250.0000")
    assert asked.data["message"] == "launch week"
    g = acme.grant_credit_request("acme", r.id, by="cs@vendor")
    assert g.amount == Decimal(250)
    assert g.granted_by == "cs@vendor"
    [closed] = acme.credit_requests("acme")
    assert closed.status == "granted"
    assert closed.grant_id == g.id
    other = acme.request_credits("acme", "5", requested_by="admin@acme")
    acme.dismiss_credit_request("acme", other.id, by="cs@vendor")
    with pytest.raises(Exception, match="not open"):
        acme.grant_credit_request("acme", other.id)
    assert acme.balance("acme").left == Decimal(250)


def test_an_endpoint_hears_the_events_after_it_was_created_only(
    acme: CreditPool, clock: FakeClock
) -> None:
    """Like a payment provider's: an endpoint added today is not sent the backlog of events
    that were written before it existed and no worker had fanned out yet."""
    acme.grant("acme", "10")  # an event before any endpoint: nobody hears it
    clock.advance(seconds=1)
    endpoint = acme.create_webhook_endpoint("https://hooks.example/x").id
    clock.advance(seconds=1)
    later = acme.grant("acme", "5")
    worker = acme.webhook_worker()
    try:
        while worker.fan_out():
            pass
    finally:
        worker.close()
    sent = acme.webhook_deliveries(endpoint)
    assert [d.event_type for d in sent] == ["grant.created"]
    (heard,) = [e for e in events(acme) if e.id == sent[0].event_id]
    assert heard.data["id"] == later.id
