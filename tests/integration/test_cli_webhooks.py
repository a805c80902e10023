"""``creditpool webhooks|events|credit-requests``: endpoints, deliveries to a real receiver,
an organization's events, and requests for more credits."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.receiver import Receiver, receiving
from tests.integration.test_cli import as_json, fails, ok, run


@pytest.fixture(autouse=True)
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings the CLI reads: the loopback receiver allowed, a fixed server key."""
    monkeypatch.setenv("CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("CREDITPOOL_SECRET_KEY", "cli webhook test key, not a secret")
    monkeypatch.setenv("CREDITPOOL_WEBHOOK_RETRY_SCHEDULE", "3600")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def acme(db_url: str) -> str:
    ok(db_url, "orgs", "create", "acme", "--name", "Acme Inc.")
    return db_url


def add(db_url: str, receiver: Receiver, *options: str) -> dict[str, str]:
    """An endpoint for the receiver, which then verifies with its secret."""
    endpoint: dict[str, str] = as_json(db_url, "webhooks", "add", receiver.url, *options)
    receiver.secrets = [endpoint["secret"]]
    return endpoint


def test_add_prints_the_secret_once_and_list_and_show_never_do(
    db_url: str, receiver: Receiver
) -> None:
    result = run(db_url, "webhooks", "add", receiver.url, "--description", "billing sync")
    assert result.exit_code == 0, result.stderr
    endpoint_id = result.stdout.split()[1]
    [secret_line] = [s for s in result.stdout.splitlines() if s.startswith("secret: ")]
    assert secret_line.removeprefix("secret: ").startswith("whsec_")
    assert "not shown again" in result.stderr
    listed = as_json(db_url, "webhooks", "list")
    assert [e["id"] for e in listed] == [endpoint_id]
    assert "secret" not in listed[0]
    assert listed[0]["event_types"] == []
    assert listed[0]["description"] == "billing sync"
    shown = ok(db_url, "webhooks", "show", endpoint_id)
    assert receiver.url in shown
    assert "whsec_" not in shown + ok(db_url, "webhooks", "list")


def test_add_with_event_types_and_disabled_then_update_and_delete(
    db_url: str, receiver: Receiver
) -> None:
    e = add(db_url, receiver, "--event-type", "balance.low", "--event-type", "grant.created")
    assert e["event_types"] == ["balance.low", "grant.created"]
    assert e["enabled"] is True
    off = as_json(db_url, "webhooks", "add", receiver.url, "--disabled")
    assert off["enabled"] is False
    changed = as_json(db_url, "webhooks", "update", e["id"], "--all-events", "--disable")
    assert (changed["event_types"], changed["enabled"]) == ([], False)
    changed = as_json(db_url, "webhooks", "update", e["id"], "--enable", "--description", "x")
    assert (changed["enabled"], changed["description"]) == (True, "x")
    assert "deleted" in ok(db_url, "webhooks", "delete", e["id"])
    assert [x["id"] for x in as_json(db_url, "webhooks", "list")] == [off["id"]]
    assert fails(db_url, "webhooks", "show", e["id"]).startswith("error: not_found:")


def test_test_then_deliver_once_sends_a_signed_event_the_log_shows(
    db_url: str, receiver: Receiver
) -> None:
    e = add(db_url, receiver)
    queued = as_json(db_url, "webhooks", "test", e["id"])
    assert (queued["event_type"], queued["status"]) == ("webhook.test", "pending")
    assert ok(db_url, "webhooks", "deliver", "--once") == "1 deliveries attempted\n"
    [arrival] = receiver.wait_type("webhook.test")
    assert arrival.verified
    assert arrival.webhook_id == queued["event_id"]
    [delivery] = as_json(db_url, "webhooks", "deliveries", e["id"])
    assert (delivery["status"], delivery["attempt_count"]) == ("delivered", 1)
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    table = ok(db_url, "webhooks", "deliveries", e["id"])
    assert "webhook.test" in table
    assert "200" in table
    assert as_json(db_url, "webhooks", "deliveries", e["id"], "--status", "pending") == []
    assert as_json(db_url, "webhooks", "deliver", "--once") == {"attempted": 0}


def test_a_failed_attempt_shows_its_code_and_retry_sends_it_again(
    db_url: str, receiver: Receiver
) -> None:
    receiver.answer = lambda n: 500 if n == 0 else 200
    e = add(db_url, receiver)
    ok(db_url, "webhooks", "test", e["id"])
    ok(db_url, "webhooks", "deliver", "--once")
    [delivery] = as_json(db_url, "webhooks", "deliveries", e["id"])
    assert delivery["status"] == "pending"  # its next attempt is in an hour
    assert delivery["next_attempt_at"] is not None
    assert as_json(db_url, "webhooks", "deliver", "--once") == {"attempted": 0}
    assert [a["status_code"] for a in delivery["attempts"]] == [500]
    assert "receiver says no" in ok(db_url, "webhooks", "deliveries", e["id"])
    retried = as_json(db_url, "webhooks", "retry", e["id"], str(delivery["id"]))
    assert retried["status"] == "pending"
    ok(db_url, "webhooks", "deliver", "--once")
    [again] = as_json(db_url, "webhooks", "deliveries", e["id"])
    assert again["status"] == "delivered"
    assert [a["status_code"] for a in again["attempts"]] == [500, 200]
    assert len({a.webhook_id for a in receiver.arrivals}) == 1


def test_rotate_signs_with_both_secrets_and_the_receiver_verifies_the_new_one(
    db_url: str, receiver: Receiver
) -> None:
    e = add(db_url, receiver)
    rotated = as_json(db_url, "webhooks", "rotate", e["id"])
    assert rotated["secret"] != e["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    receiver.secrets = [rotated["secret"]]  # the new one alone verifies
    ok(db_url, "webhooks", "test", e["id"])
    ok(db_url, "webhooks", "deliver", "--once")
    [arrival] = receiver.wait_type("webhook.test")
    assert arrival.verified
    assert len(arrival.signature.split()) == 2
    assert "new secret" in ok(db_url, "webhooks", "rotate", e["id"])


def test_ledger_changes_are_events_the_cli_lists_and_delivers(
    acme: str, receiver: Receiver
) -> None:
    add(acme, receiver, "--event-type", "grant.created", "--event-type", "consumption.created")
    ok(acme, "grant", "acme", "10")
    ok(acme, "consume", "acme", "report", "--user", "u-1")
    types = [e["type"] for e in as_json(acme, "events", "acme")]
    assert types[:2] == ["consumption.created", "grant.created"]
    [grant] = as_json(acme, "events", "acme", "--type", "grant.created")
    assert grant["data"]["amount"] == "10.00"
    newest = as_json(acme, "events", "acme", "--limit", "1")
    assert len(newest) == 1
    older = as_json(acme, "events", "acme", "--before", newest[0]["id"])
    assert newest[0]["id"] not in [e["id"] for e in older]
    assert "grant.created" in ok(acme, "events", "acme")
    assert ok(acme, "webhooks", "deliver", "--once") == "2 deliveries attempted\n"
    receiver.wait_type("consumption.created")
    [arrived] = receiver.wait_type("grant.created")
    assert arrived.verified
    assert arrived.data["amount"] == "10.00"


def test_deliver_runs_in_the_foreground_until_ctrl_c(db_url: str, receiver: Receiver) -> None:
    e = add(db_url, receiver)
    ok(db_url, "webhooks", "test", e["id"])

    def interrupt_once_delivered() -> None:
        receiver.wait_type("webhook.test")
        os.kill(os.getpid(), signal.SIGINT)  # the command's own handler stops the worker

    threading.Thread(target=interrupt_once_delivered, daemon=True).start()
    out = ok(db_url, "webhooks", "deliver")
    assert out.splitlines() == ["delivering webhooks; Ctrl-C stops", "stopped"]
    assert receiver.wait_type("webhook.test")[0].verified


def test_credit_requests_are_asked_listed_granted_and_dismissed(acme: str) -> None:
    asked = as_json(acme, "credit-requests", "request", "acme", "500", "--message", "Q4 push")
    assert (asked["amount"], asked["status"], asked["message"]) == ("500.00", "open", "Q4 push")
    assert asked["requested_by"]  # the local user name
    by = as_json(acme, "credit-requests", "request", "acme", "50", "--by", "ana@acme")
    assert by["requested_by"] == "ana@acme"
    listed = as_json(acme, "credit-requests", "list", "acme")
    assert [r["id"] for r in listed] == [by["id"], asked["id"]]
    [event] = as_json(acme, "events", "acme", "--type", "credits.requested", "--limit", "1")
    assert event["data"]["amount"] == "50.00"
    grant = as_json(acme, "credit-requests", "grant", "acme", str(asked["id"]), "--amount", "400")
    assert grant["amount"] == "400.00"
    assert as_json(acme, "balance", "acme")["left"] == "400.00"
    dismissed = as_json(acme, "credit-requests", "dismiss", "acme", str(by["id"]), "--by", "ops")
    assert (dismissed["status"], dismissed["closed_by"]) == ("dismissed", "ops")
    statuses = {r["id"]: r["status"] for r in as_json(acme, "credit-requests", "list", "acme")}
    assert statuses == {asked["id"]: "granted", by["id"]: "dismissed"}
    opened = as_json(acme, "credit-requests", "list", "acme", "--status", "open")
    assert opened == []
    assert "granted" in ok(acme, "credit-requests", "list", "acme")
    again = fails(acme, "credit-requests", "dismiss", "acme", str(asked["id"]))
    assert again.startswith("error: ")


def test_bad_input_is_one_line(db_url: str, receiver: Receiver) -> None:
    assert fails(db_url, "webhooks", "add", "not a url").startswith("error: invalid_input:")
    refused = fails(db_url, "webhooks", "add", "http://127.0.0.1:9/x", "--event-type", "nope")
    assert refused.startswith("error: invalid_input:")
    assert fails(db_url, "webhooks", "show", "we_nothing").startswith("error: not_found:")
    assert fails(db_url, "webhooks", "deliveries", "we_x", "--status", "lost").startswith("error: ")
    e = add(db_url, receiver)
    assert "nothing to change" in fails(db_url, "webhooks", "update", e["id"])
    assert fails(db_url, "webhooks", "retry", e["id"], "999").startswith("error: not_found:")
    assert fails(db_url, "events", "acme").startswith("error: not_found:")
    assert fails(db_url, "credit-requests", "list", "acme").startswith("error: not_found:")
    ok(db_url, "orgs", "create", "acme")
    assert fails(db_url, "events", "acme", "--limit", "0").startswith("error: invalid_input:")
    assert fails(db_url, "credit-requests", "request", "acme", "-5").startswith(
        "error: invalid_amount:"
    )
    assert fails(db_url, "credit-requests", "grant", "acme", "7").startswith("error: not_found:")


def test_a_loopback_url_is_refused_without_the_allowed_networks(
    db_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS")
    assert fails(db_url, "webhooks", "add", receiver.url).startswith("error: ")
