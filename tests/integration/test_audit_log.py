"""The audit trail is stored with each change, in its transaction: organizations created and
changed, keys created and revoked, portal links minted, refunds; a refused change or an
idempotent replay records nothing."""

from __future__ import annotations

import pytest

from creditpool import CreditPool, InvalidInput, NotFound
from tests.support import FakeClock


def test_each_change_records_who_when_and_what(pool: CreditPool, clock: FakeClock) -> None:
    pool.create_org("acme", name="Acme", by="cs@vendor")
    clock.advance(minutes=1)
    pool.update_org("acme", name="Acme Inc.", by="lead@vendor")
    key, _ = pool.create_key("admin", org_id="acme", name="ops", by="cs@vendor")
    pool.revoke_key(key.id, org_id="acme", by="cs@vendor")
    pool.revoke_key(key.id, org_id="acme", by="cs@vendor")  # again: nothing changed
    pool.portal_link("acme", "u-1", role="admin", by="cs@vendor")
    pool.grant("acme", "10")
    c = pool.consume("acme", "report", user_id="u-1")
    assert c.id is not None
    pool.refund("acme", c.id, reason="wrong", by="support@vendor", idempotency_key="r1")
    pool.refund("acme", c.id, reason="wrong", by="support@vendor", idempotency_key="r1")
    pool.refund("acme", c.id, reason="again")  # a second refund answers the first
    records = pool.audit_log("acme")
    assert [(r.action, r.by) for r in records] == [
        ("consumption.refunded", "support@vendor"),
        ("portal_link.created", "cs@vendor"),
        ("key.revoked", "cs@vendor"),
        ("key.created", "cs@vendor"),
        ("org.updated", "lead@vendor"),
        ("org.created", "cs@vendor"),
    ]
    refunded, _, revoked, created, updated, _ = records
    assert refunded.details["reason"] == "wrong"
    assert refunded.details["restored"] == "0.50"
    assert (created.details["key_id"], created.details["role"]) == (key.id, "admin")
    assert revoked.details["key_id"] == key.id
    assert updated.details == {"name": "Acme Inc."}
    assert updated.at == clock.now
    # paging, newest first
    first = pool.audit_log("acme", limit=2)
    assert first + pool.audit_log("acme", before_id=first[-1].id, limit=10) == records


def test_a_refused_change_records_nothing(pool: CreditPool) -> None:
    pool.create_org("acme", by="cs")
    with pytest.raises(InvalidInput):
        pool.update_org("acme", timezone="Mars/Base", by="cs")
    with pytest.raises(NotFound):
        pool.revoke_key("nope", by="cs")
    assert [r.action for r in pool.audit_log("acme")] == ["org.created"]
    with pytest.raises(NotFound):
        pool.audit_log("nobody")
