"""The staff corrections that write no ledger entry, through the library: organizations
created with their settings, an organization's keys, portal links, refunds by someone.
Each is audited: one line on the ``creditpool.audit`` logger with who and when."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from creditpool import CreditPool, InvalidAmount, InvalidInput, NoActiveGrant, NotFound
from creditpool.core.errors import AlreadyExists
from creditpool.sessions import service as sessions
from tests.integration.dbstate import snapshot
from tests.support import FakeClock


def audited(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        dict(r.fields)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "creditpool.audit"
    ]


@pytest.fixture(autouse=True)
def audit_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="creditpool.audit")


# -- organizations ---------------------------------------------------------------------


def test_an_organization_is_created_with_its_alerts_and_notice_period_and_audited(
    pool: CreditPool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    org = pool.create_org(
        "acme",
        name="Acme",
        timezone="Europe/Berlin",
        low_balance_thresholds=["5", "50.5"],
        expiry_notice_days=14,
        by="cs@vendor.example",
    )
    assert (org.name, org.timezone, org.expiry_notice_days) == ("Acme", "Europe/Berlin", 14)
    assert org.low_balance_thresholds == (Decimal("50.5"), Decimal(5))
    assert pool.org("acme") == org
    [line] = audited(caplog)
    assert line["action"] == "org.created"
    assert (line["by"], line["org_id"], line["at"]) == (
        "cs@vendor.example",
        "acme",
        clock.now.isoformat(),
    )


def test_an_organization_created_without_settings_has_the_defaults(pool: CreditPool) -> None:
    org = pool.create_org("acme")
    assert (org.low_balance_thresholds, org.expiry_notice_days) == ((), 7)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"low_balance_thresholds": ["-1"]}, InvalidAmount),
        ({"low_balance_thresholds": ["1"] * 11}, InvalidInput),
        ({"expiry_notice_days": 366}, InvalidInput),
        ({"timezone": "Mars/Olympus"}, InvalidInput),
    ],
)
def test_a_refused_creation_creates_nothing_and_is_not_audited(
    pool: CreditPool,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        pool.create_org("acme", by="cs", **settings)
    assert pool.orgs() == []
    assert audited(caplog) == []


def test_a_settings_change_is_audited_with_what_changed(
    pool: CreditPool, caplog: pytest.LogCaptureFixture
) -> None:
    pool.create_org("acme", by="cs")
    org = pool.update_org("acme", by="ops", name="Acme GmbH", expiry_notice_days=3)
    assert (org.name, org.expiry_notice_days) == ("Acme GmbH", 3)
    line = audited(caplog)[-1]
    assert (line["action"], line["by"], line["name"], line["expiry_notice_days"]) == (
        "org.updated",
        "ops",
        "Acme GmbH",
        3,
    )
    with pytest.raises(AlreadyExists):
        pool.create_org("acme", by="cs")
    assert [x["action"] for x in audited(caplog)] == ["org.created", "org.updated"]


# -- an organization's keys --------------------------------------------------------------


@pytest.fixture
def orgs(pool: CreditPool) -> CreditPool:
    pool.create_org("acme")
    pool.create_org("globex")
    return pool


def test_keys_are_listed_per_organization_in_creation_order_and_never_with_a_secret(
    orgs: CreditPool, clock: FakeClock
) -> None:
    admin, secret = orgs.create_key("admin", org_id="acme", name="ana", by="cs")
    clock.advance(seconds=1)
    member, _ = orgs.create_key("member", org_id="acme", user_id="u-1", by="cs")
    orgs.create_key("admin", org_id="globex", by="cs")
    orgs.create_key("staff", name="cs@vendor.example")
    assert secret.startswith(f"cpk_{admin.id}_")
    listed = orgs.keys(org_id="acme")
    assert [k.id for k in listed] == [admin.id, member.id]
    assert all("secret" not in k.model_dump() for k in listed)
    assert len(orgs.keys()) == 4
    assert [k.id for k in orgs.keys(org_id="acme", limit=1)] == [admin.id]
    assert [k.id for k in orgs.keys(org_id="acme", after=admin.id)] == [member.id]
    assert orgs.keys(org_id="acme", after="0" * 16) == []
    with pytest.raises(NotFound):
        orgs.keys(org_id="nowhere")


def test_a_revoked_key_stops_authenticating_and_a_second_revocation_answers_the_first(
    orgs: CreditPool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    key, secret = orgs.create_key("admin", org_id="acme", by="cs")
    assert orgs.authenticate(secret) is not None
    revoked = orgs.revoke_key(key.id, org_id="acme", by="cs")
    assert revoked.revoked_at == clock.now
    assert orgs.authenticate(secret) is None
    clock.advance(minutes=1)
    again = orgs.revoke_key(key.id, org_id="acme", by="someone else")
    assert again == revoked
    lines = audited(caplog)
    assert [(x["action"], x["by"]) for x in lines] == [("key.created", "cs"), ("key.revoked", "cs")]
    assert lines[0]["key_id"] == lines[1]["key_id"] == key.id
    assert "secret" not in str(lines)
    assert secret not in caplog.text


def test_a_key_of_another_organization_is_not_found_and_stays_live(orgs: CreditPool) -> None:
    key, secret = orgs.create_key("admin", org_id="globex")
    staff, staff_secret = orgs.create_key("staff", name="cs")
    for key_id in (key.id, staff.id, "0123456789abcdef"):
        with pytest.raises(NotFound):
            orgs.revoke_key(key_id, org_id="acme", by="cs")
    assert orgs.authenticate(secret) is not None
    assert orgs.authenticate(staff_secret) is not None


@pytest.mark.parametrize(
    ("role", "user"), [("member", None), ("admin", "u-1"), ("owner", None), ("staff", None)]
)
def test_a_key_that_cannot_exist_is_refused_and_nothing_is_created(
    orgs: CreditPool, role: str, user: str | None
) -> None:
    with pytest.raises(InvalidInput):
        orgs.create_key(role, org_id="acme", user_id=user, by="cs")
    assert orgs.keys() == []


# -- portal links ------------------------------------------------------------------------


def test_a_portal_link_opens_one_session_for_its_user_and_is_audited(
    orgs: CreditPool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    link = orgs.portal_link("acme", "u-1", role="admin", ttl_s=120, by="cs")
    assert (link.expires_at - clock.now).total_seconds() == 120
    opened = sessions.use_link(orgs.db, link.token)
    assert opened is not None
    assert (opened.org_id, opened.user_id, opened.role.value) == ("acme", "u-1", "admin")
    [line] = audited(caplog)
    assert (line["action"], line["by"], line["user_id"], line["role"]) == (
        "portal_link.created",
        "cs",
        "u-1",
        "admin",
    )
    assert link.token not in caplog.text


def test_a_portal_link_lasts_the_settings_ttl_by_default(
    orgs: CreditPool, clock: FakeClock
) -> None:
    link = orgs.portal_link("acme", "u-1")
    seconds = (link.expires_at - clock.now).total_seconds()
    assert seconds == orgs.settings.portal_link_ttl_s
    assert link.role.value == "member"


@pytest.mark.parametrize(
    ("org", "user", "role", "ttl", "error"),
    [
        ("nowhere", "u-1", "member", None, NotFound),
        ("acme", "u 1", "member", None, InvalidInput),
        ("acme", "u-1", "staff", None, InvalidInput),
        ("acme", "u-1", "member", 0, InvalidInput),
    ],
)
def test_a_portal_link_that_cannot_be_minted_is_refused(
    orgs: CreditPool,
    caplog: pytest.LogCaptureFixture,
    org: str,
    user: str,
    role: str,
    ttl: int | None,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        orgs.portal_link(org, user, role=role, ttl_s=ttl, by="cs")
    assert audited(caplog) == []


# -- refunds by someone ------------------------------------------------------------------


def test_a_refund_is_audited_once_with_who_and_why(
    orgs: CreditPool, caplog: pytest.LogCaptureFixture
) -> None:
    orgs.grant("acme", "10")
    used = orgs.consume("acme", "report", user_id="u-1")
    assert used.id is not None
    first = orgs.refund("acme", used.id, reason="wrong answer", idempotency_key="r-1", by="cs")
    again = orgs.refund("acme", used.id, reason="wrong answer", idempotency_key="r-1", by="cs")
    assert again == first
    second = orgs.refund("acme", used.id, reason="other", by="ops")  # answers the first
    assert second.reason == "wrong answer"
    lines = [x for x in audited(caplog) if x["action"] == "consumption.refunded"]
    assert len(lines) == 1
    assert (lines[0]["by"], lines[0]["reason"], lines[0]["restored"]) == (
        "cs",
        "wrong answer",
        "0.50",
    )


def test_a_refund_without_an_active_grant_is_refused_and_not_audited(
    orgs: CreditPool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    orgs.grant("acme", "10", expires_at=clock.now.replace(year=clock.now.year + 1))
    used = orgs.consume("acme", "report", user_id="u-1")
    assert used.id is not None
    clock.advance(days=400)
    state = snapshot(orgs, "acme")
    with pytest.raises(NoActiveGrant):
        orgs.refund("acme", used.id, reason="late", by="cs")
    assert snapshot(orgs, "acme") == state
    assert [x for x in audited(caplog) if x["action"] == "consumption.refunded"] == []
