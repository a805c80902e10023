"""Reports with holds: the balance report has a row for every hold, release and hold
expiry (credits signed, the chain still adds up); the usage report lists a settled hold's
consumption like any other. Expected rows are written by hand from the scenario."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl

from creditpool import CreditPool
from tests.integration.test_reports import HEADERS, cells, csv_text
from tests.support import FakeClock


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def scenario(pool: CreditPool, clock: FakeClock) -> None:
    """A hold settled below its amount, one released, one left to expire, then a
    consumption (which writes the expiry first), in Berlin (UTC+1 in November)."""
    pool.create_org("acme", name="Acme Inc.", timezone="Europe/Berlin")
    clock.set(utc(2026, 11, 2, 9))
    pool.grant("acme", "100")  # 1: permanent
    pool.grant("acme", "20", expires_at=utc(2026, 11, 10, 9))  # 2: expires, drawn first
    clock.set(utc(2026, 11, 3, 10))
    pool.hold("acme", "topic_detection", user_id="u-1", amount="30")  # 3: 20 on #2, 10 on #1
    clock.set(utc(2026, 11, 3, 10, 5))
    pool.settle(
        "acme",
        3,
        cost="25",
        feature_name="NPS comments",
        action="run",
        breakdown={"calls": 12},
        requests=2,
    )  # 4
    clock.set(utc(2026, 11, 3, 11))
    pool.hold("acme", "report", user_id="u-2", amount="5", ttl_s=3600)  # 5
    clock.set(utc(2026, 11, 3, 11, 30))
    pool.release("acme", 5)
    clock.set(utc(2026, 11, 3, 12))
    pool.hold("acme", "report", user_id="u-3", amount="2", ttl_s=600)  # 6: expires at 12:10
    clock.set(utc(2026, 11, 3, 13))
    pool.consume("acme", "report", user_id="u-4")  # 7
    clock.set(utc(2026, 11, 4, 12))


BALANCE_ROWS = [
    ["2026-11-02T10:00:00+01:00", "Grant #1 added", "Credits added", "100.00", "0.00", "100.00"],
    ["2026-11-02T10:00:00+01:00", "Grant #2 added", "Credits added", "20.00", "100.00", "120.00"],
    ["2026-11-03T11:00:00+01:00", "Hold #3", "Credits held", "-30.00", "120.00", "90.00"],
    ["2026-11-03T11:05:00+01:00", "Hold #3 released", "Credits released", "30.00", "90.00", "120.00"],
    ["2026-11-03T11:05:00+01:00", "Consumption #4", "Credits used", "-25.00", "120.00", "95.00"],
    ["2026-11-03T12:00:00+01:00", "Hold #5", "Credits held", "-5.00", "95.00", "90.00"],
    ["2026-11-03T12:30:00+01:00", "Hold #5 released", "Credits released", "5.00", "90.00", "95.00"],
    ["2026-11-03T13:00:00+01:00", "Hold #6", "Credits held", "-2.00", "95.00", "93.00"],
    ["2026-11-03T13:10:00+01:00", "Hold #6 expired", "Credits released", "2.00", "93.00", "95.00"],
    ["2026-11-03T14:00:00+01:00", "Consumption #7", "Credits used", "-0.50", "95.00", "94.50"],
]  # fmt: skip


def balance_rows(pool: CreditPool) -> list[list[str]]:
    rows = cells(csv_text(pool, "balance", "2026-11-01", "2026-11-30"))
    assert rows[0] == HEADERS["balance"]
    return rows[1:]


def test_the_balance_report_has_a_row_for_each_hold_release_and_hold_expiry(
    pool: CreditPool, clock: FakeClock
) -> None:
    scenario(pool, clock)
    rows = balance_rows(pool)
    # A settle's consumption may name its hold: "Consumption #4 (settles hold #3)".
    assert rows[4][1] in ("Consumption #4", "Consumption #4 (settles hold #3)")
    rows[4][1] = "Consumption #4"
    assert rows == BALANCE_ROWS


def test_the_balance_chain_re_added_equals_left_with_holds_released_and_expired(
    pool: CreditPool, clock: FakeClock
) -> None:
    scenario(pool, clock)
    # A hold over two grants released while both are active gives everything back; one
    # left open past its TTL is released at that instant; a grant expires after both.
    pool.grant("acme", "10", expires_at=utc(2026, 11, 20, 9))  # 8: drawn first now
    clock.set(utc(2026, 11, 5, 9))
    held = pool.hold("acme", "report", user_id="u-1", amount="15", ttl_s=86_400)  # 10 + 5
    clock.set(utc(2026, 11, 5, 10))
    open_hold = pool.hold("acme", "report", user_id="u-2", amount="1", ttl_s=86_400)
    clock.set(utc(2026, 11, 5, 11))
    pool.release("acme", held.id)
    clock.set(utc(2026, 11, 20, 12))
    released = pool.hold_of("acme", held.id)
    assert (released.released, released.lost) == (Decimal("15.00"), Decimal("0.00"))
    rows = cells(csv_text(pool, "balance", "2026-11-01", "2026-11-30"))[1:]
    total = Decimal(0)
    for _, _, _, credits, before, after in rows:
        assert Decimal(before) == total
        total += Decimal(credits)
        assert Decimal(after) == total
    balance = pool.balance("acme")
    assert total == balance.left
    assert balance.held == Decimal("0.00")  # the open hold's TTL (a day) has passed
    assert pool.hold_of("acme", open_hold.id).status == "expired"
    assert balance.used == balance.total - balance.left - balance.held


def test_a_hold_lost_with_its_grant_keeps_the_chain(pool: CreditPool, clock: FakeClock) -> None:
    pool.create_org("acme", timezone="UTC")
    clock.set(utc(2026, 11, 2, 9))
    pool.grant("acme", "100")  # 1
    pool.grant("acme", "20", expires_at=utc(2026, 11, 2, 12))  # 2: drawn first
    held = pool.hold("acme", "topic_detection", user_id="u-1", amount="25", ttl_s=86_400)
    clock.set(utc(2026, 11, 2, 13))  # grant 2 expired with 20 held on it
    pool.release("acme", held.id)
    closed = pool.hold_of("acme", held.id)
    assert (closed.released, closed.lost) == (Decimal("5.00"), Decimal("20.00"))
    rows = cells(csv_text(pool, "balance", "2026-11-02", "2026-11-02"))[1:]
    assert [r[1:4] for r in rows] == [
        ["Grant #1 added", "Credits added", "100.00"],
        ["Grant #2 added", "Credits added", "20.00"],
        ["Hold #3", "Credits held", "-25.00"],
        ["Hold #3 released", "Credits released", "5.00"],
    ]
    total = Decimal(0)
    for _, _, _, credits, before, after in rows:
        assert Decimal(before) == total
        total += Decimal(credits)
        assert Decimal(after) == total
    assert total == pool.balance("acme").left == Decimal("100.00")


def test_the_usage_report_lists_a_settled_consumption_like_any_other(
    pool: CreditPool, clock: FakeClock
) -> None:
    scenario(pool, clock)
    rows = cells(csv_text(pool, "usage", "2026-11-01", "2026-11-30"))
    assert rows == [
        HEADERS["usage"],
        [
            "2026-11-03T11:05:00+01:00",
            "Topic Detection",
            "NPS comments",
            "run",
            "",
            "u-1",
            "25.00",
            "12 calls",
            "2",
        ],
        ["2026-11-03T14:00:00+01:00", "Report", "", "", "", "u-4", "0.50", "", ""],
    ]
    # Refunded, it is consumed no more.
    pool.refund("acme", 4)
    assert len(cells(csv_text(pool, "usage", "2026-11-01", "2026-11-30"))) == 2


def test_the_balance_xlsx_has_the_same_rows_typed(
    pool: CreditPool, clock: FakeClock, tmp_path: Path
) -> None:
    from creditpool.reports.formats import write_xlsx

    scenario(pool, clock)
    path = tmp_path / "balance.xlsx"
    write_xlsx(pool.report("acme", "balance", "2026-11-01", "2026-11-30"), path)
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    finally:
        workbook.close()
    assert len(rows) == len(BALANCE_ROWS) + 1
    for got, want in zip(rows[1:], BALANCE_ROWS, strict=True):
        assert got[0].isoformat() == want[0][:19]  # type: ignore[union-attr]
        assert got[2] == want[2]
        assert [Decimal(str(v)) for v in got[3:]] == [Decimal(t) for t in want[3:]]
