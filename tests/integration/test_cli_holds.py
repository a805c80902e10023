"""``creditpool hold|settle|release|holds``: reserve, charge the real cost, give back."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_cli import as_json, fails, ok


@pytest.fixture
def acme(db_url: str) -> str:
    """An organization with 10 credits."""
    ok(db_url, "orgs", "create", "acme", "--name", "Acme Inc.")
    ok(db_url, "grant", "acme", "10")
    return db_url


def balance(db_url: str) -> tuple[str, str, str, str]:
    b = as_json(db_url, "balance", "acme")
    return b["total"], b["used"], b["left"], b["held"]


def test_a_hold_takes_its_credits_from_left_into_held(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--quantity", "300")
    assert (held["status"], held["amount"], held["feature"], held["user_id"]) == (
        "open",
        "3.00",
        "topic_detection",
        "u-1",
    )
    assert held["allocations"] == [{"grant_id": 1, "amount": "3.00"}]
    assert held["consumption_id"] is None
    assert balance(acme) == ("10.00", "0.00", "7.00", "3.00")
    assert "Held" in ok(acme, "balance", "acme")


def test_settling_below_the_hold_charges_the_cost_and_gives_the_rest_back(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--amount", "5")
    consumption = as_json(
        acme,
        "settle",
        "acme",
        str(held["id"]),
        "--quantity",
        "330",
        "--feature-name",
        "NPS comments",
        "--breakdown",
        "calls=12,emails=40",
        "--requests",
        "3",
    )
    assert (consumption["status"], consumption["cost"], consumption["hold_id"]) == (
        "paid",
        "3.30",
        held["id"],
    )
    assert (consumption["user_id"], consumption["feature"]) == ("u-1", "topic_detection")
    assert consumption["feature_name"] == "NPS comments"
    assert consumption["breakdown"] == {"calls": 12, "emails": 40}
    assert balance(acme) == ("10.00", "3.30", "6.70", "0.00")
    settled = as_json(acme, "holds", "acme", str(held["id"]))
    assert (settled["status"], settled["consumption_id"]) == ("settled", consumption["id"])
    assert (settled["released"], settled["lost"]) == ("1.70", "0.00")
    [row] = as_json(acme, "history", "acme")
    assert row["hold_id"] == held["id"]


def test_settling_above_the_hold_charges_the_difference_from_the_other_credits(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--amount", "2")
    consumption = as_json(acme, "settle", "acme", str(held["id"]), "--cost", "2.5")
    assert consumption["cost"] == "2.50"
    assert balance(acme) == ("10.00", "2.50", "7.50", "0.00")


def test_a_settle_the_pool_cannot_pay_is_one_line_and_leaves_the_hold_open(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--amount", "4")
    line = fails(acme, "settle", "acme", str(held["id"]), "--cost", "10.01")
    assert line.startswith("error: insufficient_credits:")
    assert as_json(acme, "holds", "acme", str(held["id"]))["status"] == "open"
    assert balance(acme) == ("10.00", "0.00", "6.00", "4.00")


def test_release_gives_everything_back_and_a_second_one_is_hold_not_open(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "report", "--user", "u-1")
    assert held["amount"] == "0.50"  # a fixed-price feature's one-use cost
    released = as_json(acme, "release", "acme", str(held["id"]))
    assert (released["status"], released["released"], released["lost"]) == (
        "released",
        "0.50",
        "0.00",
    )
    assert balance(acme) == ("10.00", "0.00", "10.00", "0.00")
    line = fails(acme, "release", "acme", str(held["id"]))
    assert line.startswith("error: hold_not_open:")
    assert fails(acme, "settle", "acme", str(held["id"])).startswith("error: hold_not_open:")


def test_holding_more_than_is_left_is_one_line_insufficient_credits(acme: str) -> None:
    line = fails(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--amount", "10.01")
    assert line.startswith("error: insufficient_credits:")
    assert as_json(acme, "holds", "acme") == []
    assert balance(acme) == ("10.00", "0.00", "10.00", "0.00")


def test_each_hold_change_replays_its_first_result_for_the_same_key(acme: str) -> None:
    args = ("hold", "acme", "topic_detection", "--user", "u-1", "--amount", "1")
    first = as_json(acme, *args, "--idempotency-key", "h-1")
    assert as_json(acme, *args, "--idempotency-key", "h-1") == first
    assert balance(acme)[3] == "1.00"
    other = ("hold", "acme", "topic_detection", "--user", "u-2", "--amount", "1")
    assert fails(acme, *other, "--idempotency-key", "h-1").startswith(
        "error: idempotency_conflict:"
    )
    settle = ("settle", "acme", str(first["id"]), "--cost", "0.4", "--idempotency-key", "s-1")
    paid = as_json(acme, *settle)
    assert as_json(acme, *settle) == paid
    second = as_json(acme, "hold", "acme", "report", "--user", "u-1")
    release = ("release", "acme", str(second["id"]), "--idempotency-key", "r-1")
    assert as_json(acme, *release) == as_json(acme, *release)
    assert balance(acme) == ("10.00", "0.40", "9.60", "0.00")


def test_holds_lists_newest_first_filters_by_status_and_pages(acme: str) -> None:
    ids = [as_json(acme, "hold", "acme", "report", "--user", f"u-{i}")["id"] for i in range(3)]
    ok(acme, "release", "acme", str(ids[0]))
    assert [h["id"] for h in as_json(acme, "holds", "acme")] == ids[::-1]
    assert [h["id"] for h in as_json(acme, "holds", "acme", "--status", "open")] == ids[:0:-1]
    assert [h["id"] for h in as_json(acme, "holds", "acme", "--status", "released")] == [ids[0]]
    page = as_json(acme, "holds", "acme", "--limit", "1", "--before-id", str(ids[2]))
    assert [h["id"] for h in page] == [ids[1]]
    table = ok(acme, "holds", "acme", "--limit", "2")
    assert "open" in table
    assert f"more: add --before-id {ids[1]}" in table


def test_human_output_names_the_hold_and_what_went_back(acme: str) -> None:
    out = ok(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--amount", "2")
    assert "2.00 credits held" in out
    hold_id = out.split()[1].rstrip(":")
    shown = ok(acme, "holds", "acme", hold_id)
    assert "grant 1: 2.00" in shown
    assert "topic_detection" in shown
    settled = ok(acme, "settle", "acme", hold_id, "--cost", "1.25")
    assert "1.25 credits" in settled
    assert f"hold {hold_id} settled, 0.75 credits back" in settled
    other = ok(acme, "hold", "acme", "report", "--user", "u-1").split()[1].rstrip(":")
    assert "0.50 credits back, 0.00 lost" in ok(acme, "release", "acme", other)
    assert "hold" in ok(acme, "ledger", "acme")


def test_the_ledger_records_the_hold_the_release_and_the_consumption(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "topic_detection", "--user", "u-1", "--amount", "3")
    ok(acme, "settle", "acme", str(held["id"]), "--cost", "1")
    entries = as_json(acme, "ledger", "acme")
    assert [(e["action"], e["method"], e["credits"]) for e in entries] == [
        ("grant_added", "added", "10.00"),
        ("hold", "held", "3.00"),
        ("release", "released", "3.00"),
        ("consumption", "used", "1.00"),
    ]
    assert [e["total_after"] for e in entries] == ["10.00", "7.00", "10.00", "9.00"]
    assert entries[1]["hold_id"] == entries[2]["hold_id"] == held["id"]
    assert as_json(acme, "verify", "acme") == {"sound": True, "problems": []}


def test_an_open_hold_past_its_ttl_reads_expired_and_sweep_writes_its_release(acme: str) -> None:
    held = as_json(acme, "hold", "acme", "report", "--user", "u-1", "--ttl-s", "1")
    time.sleep(1.1)
    assert as_json(acme, "holds", "acme", str(held["id"]))["status"] == "expired"
    assert balance(acme) == ("10.00", "0.00", "10.00", "0.00")
    ok(acme, "sweep", "acme")
    last = as_json(acme, "ledger", "acme")[-1]
    assert (last["action"], last["method"], last["credits"]) == ("hold_expiry", "released", "0.50")
    assert fails(acme, "release", "acme", str(held["id"])).startswith("error: hold_not_open:")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("hold", "acme", "report", "--user", "u-1", "--ttl-s", "86401"), "invalid_input"),
        (("hold", "acme", "report", "--user", "u-1", "--amount", "-1"), "invalid_amount"),
        (("hold", "acme", "report", "--user", "u-1", "--amount", "1.00001"), "invalid_amount"),
        (("hold", "acme", "no_such_feature", "--user", "u-1"), "not_found"),
        (("holds", "acme", "--status", "maybe"), "invalid_input"),
        (("holds", "acme", "999"), "not_found"),
        (("settle", "acme", "999", "--cost", "1"), "not_found"),
        (("release", "acme", "999"), "not_found"),
        (("hold", "nope", "report", "--user", "u-1"), "not_found"),
        (("holds", "nope"), "not_found"),
    ],
)
def test_refusals_are_one_line_each(acme: str, args: tuple[str, ...], code: str) -> None:
    assert fails(acme, *args).startswith(f"error: {code}:")
    assert balance(acme) == ("10.00", "0.00", "10.00", "0.00")


def test_bad_option_values_are_one_line(acme: str) -> None:
    assert "'--ttl-s'" in fails(acme, "hold", "acme", "report", "--user", "u", "--ttl-s", "soon")
    assert "JSON object" in fails(acme, "hold", "acme", "report", "--user", "u", "--metadata", "1")
    assert "--help" in fails(acme, "settle", "acme")
    assert "'hold_id'" in fails(acme, "release", "acme", "first")
