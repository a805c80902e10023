"""Staff corrections from the command line: an expiry moved or removed, part of a grant
voided, adjustments and the audit list; ``--by`` defaults to the local user."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.test_cli import as_json, fails, ok


@pytest.fixture
def acme(db_url: str) -> str:
    ok(db_url, "orgs", "create", "acme", "--name", "Acme Inc.")
    ok(db_url, "grant", "acme", "10", "--expires-at", "2099-01-01")
    return db_url


def test_a_grant_names_who_made_it_even_without_by(acme: str) -> None:
    [grant] = as_json(acme, "grants", "acme")
    assert grant["granted_by"] == getpass.getuser()


def test_grant_expiry_moves_it_or_makes_it_permanent(acme: str) -> None:
    later = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    out = ok(acme, "grant-expiry", "acme", "1", "--expires-at", later, "--reason", "renewal")
    assert "grant 1 of acme now expires" in out
    made = as_json(acme, "grant-expiry", "acme", "1", "--permanent", "--by", "cs@vendor")
    assert made["expires_at"] is None
    records = as_json(acme, "corrections", "acme")
    assert [(r["kind"], r["by"]) for r in records] == [
        ("expiry_change", "cs@vendor"),
        ("expiry_change", getpass.getuser()),
    ]
    assert records[1]["reason"] == "renewal"
    assert fails(acme, "grant-expiry", "acme", "1").startswith("error:")  # neither option
    past = fails(acme, "grant-expiry", "acme", "1", "--expires-at", "2020-01-01")
    assert past.startswith("error: invalid_input:")
    assert "future" in past
    assert ok(acme, "verify").strip() == "sound: every invariant holds"


def test_void_part_and_adjust(acme: str) -> None:
    out = ok(acme, "void", "acme", "1", "--amount", "4", "--reason", "billed twice")
    assert "4 credits voided, 6.00 left" in out
    assert as_json(acme, "balance", "acme")["total"] == "6.00"
    debit = as_json(acme, "adjust", "acme", "-1.5", "--reason", "outside usage")
    assert (debit["credits"], debit["by"]) == ("-1.50", getpass.getuser())
    assert "credited to acme" in ok(acme, "adjust", "acme", "0.5", "--reason", "goodwill")
    assert as_json(acme, "balance", "acme")["left"] == "5.00"
    assert fails(acme, "adjust", "acme", "-99", "--reason", "x").startswith(
        "error: insufficient_credits:"
    )
    assert fails(acme, "adjust", "acme", "9", "--reason", "x").startswith(
        "error: no_room_to_credit:"
    )
    assert fails(acme, "void", "acme", "1", "--amount", "99").startswith(
        "error: grant_credits_short:"
    )
    table = ok(acme, "corrections", "acme")
    assert "adjustment" in table
    assert "partial_void" in table
    assert [r["kind"] for r in as_json(acme, "corrections", "acme", "--kind", "adjustment")] == [
        "adjustment",
        "adjustment",
    ]
