"""Staff corrections over HTTP against a real server process, on both backends: a grant's
expiry moved (PATCH), part of a grant voided, manual adjustments, and the audit list; each
refusal a problem that changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.e2e.tenants import Tenant

D = Decimal


def balance(t: Tenant, at: datetime | None = None) -> dict[str, Decimal]:
    params = {} if at is None else {"at": at.isoformat()}
    data = t.client("admin").get(f"/v1/orgs/{t.org}/balance", params=params).json()
    return {k: D(data[k]) for k in ("total", "used", "left", "held")}


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def ledger(t: Tenant) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (
        t.client("admin").get(f"/v1/orgs/{t.org}/ledger", params={"limit": 500}).json()["data"]
    )
    return data


def test_a_grant_expiry_is_moved_with_a_patch_and_recorded(t: Tenant) -> None:
    now = datetime.now(UTC)
    g = t.pool.grant(t.org, "10", expires_at=now + timedelta(days=3))
    staff = t.client("staff")
    path = f"/v1/orgs/{t.org}/grants/{g.id}"
    later = now + timedelta(days=30)
    answer = staff.patch(path, json={"expires_at": later.isoformat(), "reason": "renewal"})
    assert answer.status_code == 200, answer.text
    assert datetime.fromisoformat(answer.json()["expires_at"]) == later
    entry = ledger(t)[-1]
    assert (entry["action"], entry["method"], D(entry["credits"])) == (
        "expiry_change",
        "changed",
        0,
    )
    corrections = staff.get(f"/v1/orgs/{t.org}/corrections").json()
    (record,) = corrections["data"]
    assert record["by"] == "cs@vendor.example"  # the staff key's name
    assert (record["kind"], record["reason"], record["grant_id"]) == (
        "expiry_change",
        "renewal",
        g.id,
    )
    assert datetime.fromisoformat(record["expires_before"]) == g.expires_at
    assert entry["correction_id"] == record["id"]
    # permanent
    assert staff.patch(path, json={"expires_at": None}).json()["expires_at"] is None


def test_expiry_refusals_are_problems_that_change_nothing(t: Tenant) -> None:
    now = datetime.now(UTC)
    g = t.pool.grant(t.org, "10", expires_at=now + timedelta(days=3))
    staff = t.client("staff")
    path = f"/v1/orgs/{t.org}/grants/{g.id}"
    entries = len(ledger(t))
    problem(staff.patch(path, json={}), 422, "invalid_input")  # nothing said: refused
    past = (now - timedelta(days=1)).isoformat()
    body = problem(staff.patch(path, json={"expires_at": past}), 422, "invalid_input")
    assert "future" in body["detail"]
    problem(staff.patch(path, json={"expires_at": "tomorrow"}), 422, "invalid_input")
    problem(
        staff.patch(f"/v1/orgs/{t.org}/grants/999", json={"expires_at": None}), 404, "not_found"
    )
    t.pool.void_grant(t.org, g.id, by="setup")
    problem(staff.patch(path, json={"expires_at": None}), 409, "grant_voided")
    # a forbidden role is refused before its body is looked at
    problem(t.client("service").patch(path, json={"nonsense": 1}), 403, "forbidden")
    assert len(ledger(t)) == entries + 1  # the void only


def test_part_of_a_grant_is_voided(t: Tenant) -> None:
    g = t.pool.grant(t.org, "100")
    staff = t.client("staff")
    path = f"/v1/orgs/{t.org}/grants/{g.id}/void"
    answer = staff.post(path, json={"amount": "30", "reason": "billed twice"})
    assert answer.status_code == 200, answer.text
    voided = answer.json()
    assert (D(voided["remaining"]), D(voided["voided"]), voided["state"]) == (70, 30, "active")
    assert balance(t) == {"total": 70, "used": 0, "left": 70, "held": 0}
    body = problem(staff.post(path, json={"amount": "70.0001"}), 409, "grant_credits_short")
    assert D(body["remaining"]) == D(70)
    problem(staff.post(path, json={"amount": 5}), 422, "invalid_amount")
    problem(staff.post(path, json={"amount": "0"}), 422, "invalid_amount")
    assert balance(t)["left"] == D(70)


def test_adjustments_debit_and_credit_the_pool(t: Tenant) -> None:
    t.pool.grant(t.org, "10")
    staff = t.client("staff")
    path = f"/v1/orgs/{t.org}/adjustments"
    debit = staff.post(path, json={"credits": "-2.5", "reason": "usage billed outside"})
    assert debit.status_code == 201, debit.text
    made = debit.json()
    assert (D(made["credits"]), made["reason"]) == (D("-2.5"), "usage billed outside")
    assert made["by"] == "cs@vendor.example"
    assert [D(a["amount"]) for a in made["allocations"]] == [D("-2.5")]
    assert balance(t) == {"total": 10, "used": D("2.5"), "left": D("7.5"), "held": 0}
    assert staff.get(f"{path}/{made['id']}").json() == made
    assert t.client("admin").get(f"{path}/{made['id']}").json() == made
    credit = staff.post(path, json={"credits": "1", "reason": "goodwill"})
    assert credit.status_code == 201, credit.text
    assert balance(t)["left"] == D("8.5")
    entries = ledger(t)[-2:]
    assert [(e["action"], e["method"], D(e["credits"])) for e in entries] == [
        ("adjustment", "debited", D("2.5")),
        ("adjustment", "credited", 1),
    ]
    # refusals
    short = problem(
        staff.post(path, json={"credits": "-9", "reason": "x"}), 402, "insufficient_credits"
    )
    assert D(short["left"]) == D("8.5")
    room = problem(staff.post(path, json={"credits": "2", "reason": "x"}), 409, "no_room_to_credit")
    assert D(room["room"]) == D("1.5")
    for bad in ({"credits": "0", "reason": "x"}, {"credits": -1, "reason": "x"}):
        problem(staff.post(path, json=bad), 422, "invalid_amount")
    problem(staff.post(path, json={"credits": "-1"}), 422, "invalid_input")  # no reason
    problem(staff.post(path, json={"credits": "-1", "reason": "  "}), 422, "invalid_input")
    problem(t.client("admin").post(path, json={"credits": "5", "reason": "x"}), 403, "forbidden")
    problem(staff.get(f"{path}/999"), 404, "not_found")
    assert balance(t)["left"] == D("8.5")


def test_an_adjustment_replays_with_its_idempotency_key(t: Tenant) -> None:
    t.pool.grant(t.org, "10")
    staff = t.client("staff")
    path = f"/v1/orgs/{t.org}/adjustments"
    body = {"credits": "-1", "reason": "x"}
    first = staff.post(path, json=body, headers={"Idempotency-Key": "adj"})
    again = staff.post(path, json=body, headers={"Idempotency-Key": "adj"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(t)["left"] == D(9)


def test_corrections_are_paged_newest_first_and_filtered(t: Tenant) -> None:
    g = t.pool.grant(t.org, "10")
    for n in range(3):
        t.pool.adjust(t.org, "-1", reason=f"r{n}", by="cs")
    t.pool.void_grant(t.org, g.id, amount="1", by="cs")
    staff = t.client("staff")
    path = f"/v1/orgs/{t.org}/corrections"
    first = staff.get(path, params={"limit": 2}).json()
    assert [c["kind"] for c in first["data"]] == ["partial_void", "adjustment"]
    assert first["has_more"] is True
    rest = staff.get(path, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [c["reason"] for c in rest["data"]] == ["r1", "r0"]
    assert rest["has_more"] is False
    only = staff.get(path, params={"kind": "partial_void"}).json()["data"]
    assert [c["grant_id"] for c in only] == [g.id]
    problem(staff.get(path, params={"kind": "nope"}), 422, "invalid_input")
    problem(t.client("member").get(path), 403, "forbidden")
