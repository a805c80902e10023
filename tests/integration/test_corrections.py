"""Staff corrections through the library, on SQLite and PostgreSQL: a grant's expiry moved,
part of a grant voided, manual adjustments. Each is one ledger-visible, idempotent,
audited change; a balance at any past instant stays what it was; ``verify`` replays it."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from creditpool import (
    CreditPool,
    GrantCreditsShort,
    GrantExpired,
    GrantState,
    GrantVoided,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidInput,
    NoActiveGrant,
    NoRoomToCredit,
    NotFound,
)
from creditpool.ledger.models import Balance
from creditpool.reports.formats import csv_chunks
from tests.integration.dbstate import snapshot
from tests.support import FakeClock

D = Decimal
CS = "cs@vendor"


@pytest.fixture
def acme(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    return pool


def figures(b: Balance) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (b.total, b.used, b.left, b.held)


def last_entry(pool: CreditPool) -> dict[str, object]:
    return pool.ledger("acme")[-1].model_dump()


def balance_rows(pool: CreditPool) -> list[list[str]]:
    text = b"".join(csv_chunks(pool.report("acme", "balance", period="all-time"))).decode()
    return list(csv.reader(io.StringIO(text, newline="")))[1:]


# -- expiry changes ------------------------------------------------------------------------


def test_a_later_expiry_keeps_the_credits_past_the_old_date(
    acme: CreditPool, clock: FakeClock
) -> None:
    start = clock.now
    old = start + timedelta(days=10)
    g = acme.grant("acme", "100", expires_at=old)
    acme.consume("acme", "report", user_id="u")  # 0.5
    clock.advance(days=2)
    before_change = {t: figures(acme.balance("acme", at=t)) for t in (start, clock.now)}
    new = start + timedelta(days=40)
    changed = acme.change_grant_expiry("acme", g.id, new, by=CS, reason="renewal delayed")
    assert changed.expires_at == new
    entry = last_entry(acme)
    assert (entry["action"], entry["method"], entry["credits"]) == (
        "expiry_change",
        "changed",
        D(0),
    )
    assert entry["total_before"] == entry["total_after"] == D("99.5")
    assert entry["grant_id"] == g.id
    (record,) = acme.corrections("acme")
    assert (record.kind, record.by, record.reason) == ("expiry_change", CS, "renewal delayed")
    assert (record.expires_before, record.expires_after, record.at) == (old, new, clock.now)
    assert entry["correction_id"] == record.id
    # the past stays as it was
    assert {t: figures(acme.balance("acme", at=t)) for t in before_change} == before_change
    clock.set(old + timedelta(days=1))
    assert acme.grant_info("acme", g.id).state is GrantState.ACTIVE
    assert acme.balance("acme").left == D("99.5")
    clock.set(new)
    assert acme.balance("acme").left == D(0)
    assert last_entry(acme)["action"] == "expiry"
    assert last_entry(acme)["at"] == new
    assert acme.verify() == []


def test_an_earlier_expiry_takes_the_credits_at_its_instant(
    acme: CreditPool, clock: FakeClock
) -> None:
    g = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=30))
    clock.advance(days=1)
    then = clock.now
    earlier = clock.now + timedelta(hours=5)
    acme.change_grant_expiry("acme", g.id, earlier, by=CS)
    # the grant is now inside its notice period: the vendor hears it expires soon
    soon = acme.events("acme", type="grant.expiring_soon")
    assert [e.data["grant_id"] for e in soon] == [g.id]
    (changed,) = acme.events("acme", type="grant.expiry_changed")
    assert datetime.fromisoformat(changed.data["expires_at"]) == earlier
    assert datetime.fromisoformat(changed.data["expires_before"]) == g.expires_at
    assert (changed.data["id"], changed.data["by"]) == (g.id, CS)
    clock.set(earlier + timedelta(minutes=1))
    acme.sweep("acme")
    assert acme.balance("acme").left == D(0)
    assert acme.balance("acme", at=then).left == D(10)
    expiry = last_entry(acme)
    assert (expiry["action"], expiry["at"], expiry["credits"]) == ("expiry", earlier, D(10))
    assert acme.verify() == []


def test_a_grant_made_permanent_never_expires(acme: CreditPool, clock: FakeClock) -> None:
    g = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=3))
    made = acme.change_grant_expiry("acme", g.id, None, by=CS, reason="goodwill")
    assert made.expires_at is None
    (record,) = acme.corrections("acme")
    assert record.expires_after is None
    clock.advance(days=400)
    assert acme.balance("acme").left == D(10)
    assert acme.verify() == []


def test_the_same_expiry_again_changes_nothing(acme: CreditPool, clock: FakeClock) -> None:
    at = clock.now + timedelta(days=3)
    g = acme.grant("acme", "10", expires_at=at)
    seen = snapshot(acme, "acme")
    assert acme.change_grant_expiry("acme", g.id, at, by=CS).expires_at == at
    assert snapshot(acme, "acme") == seen


@pytest.mark.parametrize(
    ("when", "error"),
    [
        (lambda now: now - timedelta(seconds=1), InvalidInput),  # passed
        (lambda now: now, InvalidInput),
        (lambda now: datetime(2030, 1, 1), InvalidInput),  # naive
    ],
)
def test_an_expiry_that_has_passed_is_refused_and_changes_nothing(
    acme: CreditPool, clock: FakeClock, when: object, error: type[Exception]
) -> None:
    g = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=3))
    seen = snapshot(acme, "acme")
    with pytest.raises(error):
        acme.change_grant_expiry("acme", g.id, when(clock.now), by=CS)  # type: ignore[operator]
    assert snapshot(acme, "acme") == seen


def test_expiry_corrections_of_grants_gone_or_unknown_are_refused(
    acme: CreditPool, clock: FakeClock
) -> None:
    start = clock.now + timedelta(days=2)
    pending = acme.grant("acme", "5", available_from=start, expires_at=start + timedelta(days=1))
    with pytest.raises(InvalidInput, match="available_from"):
        acme.change_grant_expiry("acme", pending.id, start, by=CS)
    gone = acme.grant("acme", "5", expires_at=clock.now + timedelta(hours=1))
    voided = acme.grant("acme", "5")
    acme.void_grant("acme", voided.id, by=CS)
    clock.advance(hours=2)
    seen = snapshot(acme, "acme")
    later = clock.now + timedelta(days=9)
    with pytest.raises(GrantExpired):
        acme.change_grant_expiry("acme", gone.id, later, by=CS)
    with pytest.raises(GrantVoided):
        acme.change_grant_expiry("acme", voided.id, later, by=CS)
    with pytest.raises(NotFound):
        acme.change_grant_expiry("acme", 999, later, by=CS)
    with pytest.raises(InvalidInput, match="by"):
        acme.change_grant_expiry("acme", pending.id, later, by=" ")
    assert snapshot(acme, "acme") == seen
    # a pending grant's expiry can move, and it is recorded
    acme.change_grant_expiry("acme", pending.id, later, by=CS)
    assert acme.grant_info("acme", pending.id).expires_at == later
    assert acme.verify() == []


def test_an_expiry_change_is_idempotent(acme: CreditPool, clock: FakeClock) -> None:
    g = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=3))
    new = clock.now + timedelta(days=9)
    first = acme.change_grant_expiry("acme", g.id, new, by=CS, idempotency_key="k1")
    entries = len(acme.ledger("acme"))
    again = acme.change_grant_expiry("acme", g.id, new, by=CS, idempotency_key="k1")
    assert again == first
    assert len(acme.ledger("acme")) == entries
    with pytest.raises(IdempotencyConflict):
        acme.change_grant_expiry("acme", g.id, None, by=CS, idempotency_key="k1")


# -- partial voids ---------------------------------------------------------------------------


def test_voiding_part_of_a_grant_lowers_total_and_left_not_used(
    acme: CreditPool, clock: FakeClock
) -> None:
    g = acme.grant("acme", "100")
    acme.consume("acme", "report", user_id="u")  # 0.5 used
    clock.advance(hours=1)
    then = clock.now
    before = figures(acme.balance("acme"))
    assert before == (D(100), D("0.5"), D("99.5"), D(0))
    clock.advance(hours=1)
    voided = acme.void_grant("acme", g.id, amount="30", by=CS, reason="billed twice")
    assert (voided.amount, voided.remaining, voided.voided) == (D(100), D("69.5"), D(30))
    assert voided.state is GrantState.ACTIVE
    assert voided.voided_at is None
    assert figures(acme.balance("acme")) == (D(70), D("0.5"), D("69.5"), D(0))
    assert figures(acme.balance("acme", at=then)) == before  # the past stays
    entry = last_entry(acme)
    assert (entry["action"], entry["method"], entry["credits"]) == ("void", "voided", D(30))
    (record,) = acme.corrections("acme")
    assert (record.kind, record.credits, record.by, record.reason, record.grant_id) == (
        "partial_void",
        D(30),
        CS,
        "billed twice",
        g.id,
    )
    event = acme.events("acme", type="grant.voided")[0]
    assert (event.data["partial"], event.data["credits_voided"]) == (True, "30.00")
    assert acme.verify() == []
    # a refund fills the grant up to what it holds now, never back over the voided part
    c = acme.consume("acme", "report", user_id="u")
    refund = acme.refund("acme", c.id)
    assert refund.restored == D("0.5")
    assert figures(acme.balance("acme")) == (D(70), D("0.5"), D("69.5"), D(0))
    # and the rest can be voided whole afterwards
    acme.void_grant("acme", g.id, by=CS)
    assert figures(acme.balance("acme")) == (D(0), D(0), D(0), D(0))
    assert figures(acme.balance("acme", at=then)) == before
    assert acme.grant_info("acme", g.id).voided == D(100) - D("0.5")
    assert [r.kind for r in acme.corrections("acme")] == ["void", "partial_void"]
    assert acme.verify() == []


def test_voiding_more_than_a_grant_has_left_is_refused(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    acme.consume("acme", "report", user_id="u")
    seen = snapshot(acme, "acme")
    with pytest.raises(GrantCreditsShort) as refused:
        acme.void_grant("acme", g.id, amount="9.5001", by=CS)
    assert refused.value.extra["remaining"] == D("9.5")
    for amount in ("0", "-1", "0.00001", 1.5):
        with pytest.raises(InvalidAmount):
            acme.void_grant("acme", g.id, amount=amount, by=CS)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        acme.void_grant("acme", g.id, amount="1")  # a partial void names who made it
    assert snapshot(acme, "acme") == seen
    acme.void_grant("acme", g.id, amount="9.5", by=CS)  # exactly what is left
    assert acme.balance("acme").left == D(0)
    assert acme.verify() == []


def test_voiding_part_of_a_pending_grant_lowers_what_is_upcoming(
    acme: CreditPool, clock: FakeClock
) -> None:
    start = clock.now + timedelta(days=1)
    g = acme.grant("acme", "10", available_from=start)
    then = clock.now
    clock.advance(hours=1)
    entries = len(acme.ledger("acme"))
    acme.void_grant("acme", g.id, amount="4", by=CS)
    assert len(acme.ledger("acme")) == entries  # Left did not move: no entry
    assert acme.balance("acme").upcoming == D(6)
    assert acme.balance("acme", at=then).upcoming == D(10)
    clock.set(start)
    assert figures(acme.balance("acme")) == (D(6), D(0), D(6), D(0))
    assert last_entry(acme)["credits"] == D(6)  # added: what it holds now
    assert acme.verify() == []


def test_credits_held_cannot_be_voided(acme: CreditPool) -> None:
    g = acme.grant("acme", "10")
    acme.hold("acme", "report", user_id="u", amount="4")
    with pytest.raises(GrantCreditsShort):
        acme.void_grant("acme", g.id, amount="7", by=CS)
    acme.void_grant("acme", g.id, amount="6", by=CS)
    assert figures(acme.balance("acme")) == (D(4), D(0), D(0), D(4))
    assert acme.verify() == []


# -- adjustments ---------------------------------------------------------------------------


def test_a_debit_is_drawn_like_a_consumption_and_is_no_use_of_a_feature(
    acme: CreditPool, clock: FakeClock
) -> None:
    later = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=20))
    sooner = acme.grant("acme", "3", expires_at=clock.now + timedelta(days=10))
    permanent = acme.grant("acme", "50")
    clock.advance(hours=1)
    made = acme.adjust("acme", "-5.25", reason="manual usage not metered", by=CS)
    assert made.credits == D("-5.25")
    assert [(a.grant_id, a.amount) for a in made.allocations] == [
        (later.id, D("-2.25")),
        (sooner.id, D(-3)),
    ]
    assert permanent.id not in [a.grant_id for a in made.allocations]
    assert figures(acme.balance("acme")) == (D(63), D("5.25"), D("57.75"), D(0))
    entry = last_entry(acme)
    assert (entry["action"], entry["method"], entry["credits"]) == (
        "adjustment",
        "debited",
        D("5.25"),
    )
    assert entry["correction_id"] == made.id
    assert acme.adjustment("acme", made.id) == made
    assert acme.consumptions("acme") == []  # not a use of a feature: not in usage
    assert balance_rows(acme)[-1][1:4] == ["Manual adjustment", "Credits debited", "-5.25"]
    assert acme.events("acme", type="adjustment.created")[0].data["credits"] == "-5.25"
    assert acme.verify() == []


def test_a_debit_larger_than_left_is_refused_with_the_balance(acme: CreditPool) -> None:
    acme.grant("acme", "2")
    seen = snapshot(acme, "acme")
    with pytest.raises(InsufficientCredits) as refused:
        acme.adjust("acme", "-2.0001", reason="x", by=CS)
    assert refused.value.extra["left"] == D(2)
    assert snapshot(acme, "acme") == seen


def test_a_credit_goes_back_like_a_refund(acme: CreditPool, clock: FakeClock) -> None:
    old = acme.grant("acme", "10")
    clock.advance(hours=1)
    new = acme.grant("acme", "10")
    acme.adjust("acme", "-15", reason="usage billed outside", by=CS)
    clock.advance(hours=1)
    made = acme.adjust("acme", "12", reason="goodwill", by=CS)
    # the most recent grant first (the debit drew old's 10, then 5 of new's), each up to
    # its amount
    assert [(a.grant_id, a.amount) for a in made.allocations] == [(old.id, D(7)), (new.id, D(5))]
    assert figures(acme.balance("acme")) == (D(20), D(3), D(17), D(0))
    assert last_entry(acme)["method"] == "credited"
    seen = snapshot(acme, "acme")
    with pytest.raises(NoRoomToCredit) as refused:
        acme.adjust("acme", "3.0001", reason="too much", by=CS)
    assert refused.value.extra["room"] == D(3)
    assert snapshot(acme, "acme") == seen
    assert acme.verify() == []


def test_adjustment_refusals_change_nothing(acme: CreditPool) -> None:
    seen = snapshot(acme, "acme")
    with pytest.raises(NoActiveGrant):
        acme.adjust("acme", "1", reason="x", by=CS)
    with pytest.raises(InsufficientCredits):
        acme.adjust("acme", "-1", reason="x", by=CS)
    for credits in ("0", "-0", "1.00001", "+1", 1.5, "abc"):
        with pytest.raises(InvalidAmount):
            acme.adjust("acme", credits, reason="x", by=CS)  # type: ignore[arg-type]
    for reason in ("", "  "):
        with pytest.raises(InvalidInput, match="reason"):
            acme.adjust("acme", "-1", reason=reason, by=CS)
    with pytest.raises(InvalidInput, match="by"):
        acme.adjust("acme", "-1", reason="x", by="")
    with pytest.raises(NotFound):
        acme.adjust("nobody", "-1", reason="x", by=CS)
    assert snapshot(acme, "acme") == seen


def test_an_adjustment_is_idempotent(acme: CreditPool) -> None:
    acme.grant("acme", "10")
    first = acme.adjust("acme", "-1", reason="x", by=CS, idempotency_key="adj-1")
    assert acme.adjust("acme", "-1", reason="x", by=CS, idempotency_key="adj-1") == first
    assert acme.balance("acme").left == D(9)
    with pytest.raises(IdempotencyConflict):
        acme.adjust("acme", "-2", reason="x", by=CS, idempotency_key="adj-1")


def test_corrections_are_listed_newest_first_and_paged(acme: CreditPool, clock: FakeClock) -> None:
    g = acme.grant("acme", "100", expires_at=clock.now + timedelta(days=9))
    acme.adjust("acme", "-1", reason="a", by=CS)
    acme.void_grant("acme", g.id, amount="1", by=CS, reason="b")
    acme.change_grant_expiry("acme", g.id, None, by="other@vendor", reason="c")
    found = acme.corrections("acme")
    assert [(c.kind, c.reason) for c in found] == [
        ("expiry_change", "c"),
        ("partial_void", "b"),
        ("adjustment", "a"),
    ]
    first = acme.corrections("acme", limit=2)
    rest = acme.corrections("acme", limit=2, before_id=first[-1].id)
    assert first + rest == found
    assert [c.kind for c in acme.corrections("acme", grant_id=g.id)] == [
        "expiry_change",
        "partial_void",
    ]
    assert [c.reason for c in acme.corrections("acme", kind="adjustment")] == ["a"]
    with pytest.raises(InvalidInput):
        acme.corrections("acme", kind="nonsense")


def test_the_balance_report_chains_through_every_correction(
    acme: CreditPool, clock: FakeClock
) -> None:
    g = acme.grant("acme", "10", expires_at=clock.now + timedelta(days=9))
    acme.change_grant_expiry("acme", g.id, clock.now + timedelta(days=19), by=CS)
    acme.void_grant("acme", g.id, amount="2", by=CS)
    acme.adjust("acme", "-3", reason="x", by=CS)
    acme.adjust("acme", "1", reason="y", by=CS)
    rows = balance_rows(acme)
    assert [r[1:6] for r in rows] == [
        [f"Grant #{g.id} added", "Credits added", "10.00", "0.00", "10.00"],
        [f"Grant #{g.id} expiry changed", "Credits changed", "0.00", "10.00", "10.00"],
        [f"Grant #{g.id} voided", "Credits voided", "-2.00", "10.00", "8.00"],
        ["Manual adjustment", "Credits debited", "-3.00", "8.00", "5.00"],
        ["Manual adjustment", "Credits credited", "1.00", "5.00", "6.00"],
    ]
    assert acme.verify() == []
