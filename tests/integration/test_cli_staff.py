"""The CLI's staff corrections that are not ledger changes: organizations' settings, an
organization's keys, portal links, refunds and feature prices, each done by someone (the
local user unless ``--by``), which the audit trail and the price history keep."""

from __future__ import annotations

import getpass
import logging
from decimal import Decimal
from typing import Any

import pytest

from creditpool import CreditPool
from creditpool.sessions import service as sessions
from tests.integration.test_cli import as_json, fails, ok


@pytest.fixture
def acme(db_url: str) -> str:
    ok(db_url, "orgs", "create", "acme", "--name", "Acme Inc.")
    ok(db_url, "grant", "acme", "10")
    return db_url


@pytest.fixture(autouse=True)
def audit_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="creditpool.audit")


def audited(caplog: pytest.LogCaptureFixture, action: str) -> list[dict[str, Any]]:
    return [
        dict(r.fields)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "creditpool.audit" and r.fields["action"] == action  # type: ignore[attr-defined]
    ]


def test_orgs_update_changes_the_settings_given_and_says_so(
    acme: str, caplog: pytest.LogCaptureFixture
) -> None:
    out = ok(acme, "orgs", "update", "acme", "--thresholds", "50, 5", "--expiry-notice-days", "3",
             "--by", "ana")  # fmt: skip
    assert out.strip() == (
        "organization acme (Acme Inc., UTC): low-balance alerts 50.00, 5.00, expiry notices 3 days ahead"
    )
    org = as_json(acme, "orgs", "update", "acme", "--name", "Acme GmbH", "--timezone", "Asia/Tokyo")
    assert (org["name"], org["timezone"], org["expiry_notice_days"]) == (
        "Acme GmbH",
        "Asia/Tokyo",
        3,
    )
    assert [Decimal(t) for t in org["low_balance_thresholds"]] == [50, 5]
    cleared = as_json(acme, "orgs", "update", "acme", "--thresholds", "none")
    assert cleared["low_balance_thresholds"] == []
    whos = [x["by"] for x in audited(caplog, "org.updated")]
    assert whos == ["ana", getpass.getuser(), getpass.getuser()]


def test_orgs_update_refuses_in_one_line_and_changes_nothing(acme: str) -> None:
    assert fails(acme, "orgs", "update", "acme").startswith("error: nothing to change")
    line = fails(acme, "orgs", "update", "acme", "--expiry-notice-days", "400")
    assert "expiry_notice_days" in line
    assert "invalid_amount" in fails(acme, "orgs", "update", "acme", "--thresholds", "-5")
    assert "not_found" in fails(acme, "orgs", "update", "nowhere", "--name", "X")
    org = as_json(acme, "orgs", "list")[0]
    assert (org["name"], org["expiry_notice_days"], org["low_balance_thresholds"]) == (
        "Acme Inc.",
        7,
        [],
    )


def test_keys_list_takes_an_organization_and_pages(
    acme: str, caplog: pytest.LogCaptureFixture
) -> None:
    ok(acme, "orgs", "create", "globex")
    first = as_json(acme, "keys", "create", "--role", "admin", "--org", "acme", "--by", "ana")
    second = as_json(acme, "keys", "create", "--role", "member", "--org", "acme", "--user", "u-1")
    as_json(acme, "keys", "create", "--role", "admin", "--org", "globex")
    listed = as_json(acme, "keys", "list", "--org", "acme")
    assert [k["id"] for k in listed] == [first["id"], second["id"]]
    assert all("secret" not in k for k in listed)
    assert [k["id"] for k in as_json(acme, "keys", "list", "--org", "acme", "--limit", "1")] == [
        first["id"]
    ]
    after = as_json(acme, "keys", "list", "--org", "acme", "--after", first["id"])
    assert [k["id"] for k in after] == [second["id"]]
    assert "not_found" in fails(acme, "keys", "list", "--org", "nowhere")
    assert [x["by"] for x in audited(caplog, "key.created")] == [
        "ana",
        getpass.getuser(),
        getpass.getuser(),
    ]


def test_keys_revoke_with_an_org_refuses_a_key_of_another(acme: str) -> None:
    ok(acme, "orgs", "create", "globex")
    theirs = as_json(acme, "keys", "create", "--role", "admin", "--org", "globex")
    assert "not_found" in fails(acme, "keys", "revoke", theirs["id"], "--org", "acme")
    with CreditPool.open(acme) as pool:
        assert pool.authenticate(theirs["secret"]) is not None
    revoked = as_json(acme, "keys", "revoke", theirs["id"], "--org", "globex", "--by", "ana")
    assert revoked["revoked_at"] is not None
    with CreditPool.open(acme) as pool:
        assert pool.authenticate(theirs["secret"]) is None


def test_portal_link_prints_a_one_time_link_that_opens_a_session(
    acme: str, caplog: pytest.LogCaptureFixture
) -> None:
    out = ok(acme, "portal-link", "acme", "u-1", "--role", "admin", "--base-url",
             "https://credits.example/")  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == "sign-in link for u-1 (admin of acme), shown once:"
    assert lines[1].startswith("https://credits.example/portal/")
    assert lines[2].startswith("open it once, before ")
    token = lines[1].rsplit("/", 1)[1]
    with CreditPool.open(acme) as pool:
        opened = sessions.use_link(pool.db, token)
    assert opened is not None
    assert (opened.org_id, opened.user_id, opened.role.value) == ("acme", "u-1", "admin")
    [line] = audited(caplog, "portal_link.created")
    assert line["by"] == getpass.getuser()
    link = as_json(acme, "portal-link", "acme", "u-2")
    assert link["url"].startswith("http://127.0.0.1:8000/portal/")
    assert "invalid_input" in fails(acme, "portal-link", "acme", "u-1", "--role", "staff")
    assert "not_found" in fails(acme, "portal-link", "nowhere", "u-1")


def test_refund_by_someone_is_audited_once(acme: str, caplog: pytest.LogCaptureFixture) -> None:
    used = as_json(acme, "consume", "acme", "report", "--user", "u-1")
    ok(acme, "refund", "acme", str(used["id"]), "--reason", "bad", "--by", "ana")
    ok(acme, "refund", "acme", str(used["id"]), "--reason", "bad", "--by", "ana")
    [line] = audited(caplog, "consumption.refunded")
    assert (line["by"], line["reason"]) == ("ana", "bad")


def test_features_set_records_who_and_features_prices_lists_the_history(db_url: str) -> None:
    ok(db_url, "features", "set", "report", "--cost", "0.75", "--by", "ana")
    ok(db_url, "features", "set", "report", "--cost", "1")
    history = as_json(db_url, "features", "prices", "report")
    assert [(Decimal(p["cost"]), p["changed_by"]) for p in history] == [
        (Decimal(1), getpass.getuser()),
        (Decimal("0.75"), "ana"),
        (Decimal("0.5"), None),
    ]
    table = ok(db_url, "features", "prices", "report")
    assert "ana" in table
    older = as_json(db_url, "features", "prices", "report", "--before-id", str(history[0]["id"]))
    assert [p["id"] for p in older] == [p["id"] for p in history[1:]]
    assert len(as_json(db_url, "features", "prices", "report", "--limit", "1")) == 1
    assert "not_found" in fails(db_url, "features", "prices", "teleport")
