"""creditpool keys: create (secret shown once), list (no secrets), revoke."""

from __future__ import annotations

import json

from creditpool import CreditPool
from tests.integration.test_cli import run


def test_a_created_key_authenticates_until_it_is_revoked(db_url: str) -> None:
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
    created = run(db_url, "keys", "create", "--role", "admin", "--org", "acme", "--json")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    with CreditPool.open(db_url) as pool:
        assert pool.authenticate(key["secret"]) is not None
    listed = run(db_url, "keys", "list", "--json")
    assert [k["id"] for k in json.loads(listed.stdout)] == [key["id"]]
    assert key["secret"] not in listed.stdout
    assert run(db_url, "keys", "revoke", key["id"]).exit_code == 0
    with CreditPool.open(db_url) as pool:
        assert pool.authenticate(key["secret"]) is None


def test_a_member_key_without_a_user_is_refused_in_one_line(db_url: str) -> None:
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
    result = run(db_url, "keys", "create", "--role", "member", "--org", "acme")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0
    assert "give --user" in result.stderr


def test_revoking_an_unknown_key_is_not_found(db_url: str) -> None:
    result = run(db_url, "keys", "revoke", "nope")
    assert result.exit_code == 1
    assert "not_found" in result.stderr
