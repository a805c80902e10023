"""Reports: usage, balance and purchase history over days of the organization's zone.

The scenario's three reports are compared cell by cell with files written by hand from the
scenario (``expected/``), not produced by the code under test.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from creditpool import CreditPool
from creditpool.core.errors import InvalidInput, NotFound
from creditpool.reports.formats import csv_chunks, write_xlsx
from creditpool.reports.models import COLUMNS, ReportKind
from tests.support import FakeClock

EXPECTED = Path(__file__).parent / "expected"
HEADERS = {
    "usage": [
        "Usage time",
        "Feature type",
        "Feature name",
        "Usage action",
        "Integration",
        "User ID",
        "Credits used",
        "Usage breakdown",
        "# of requests",
    ],
    "balance": [
        "Action date",
        "Action",
        "Method",
        "# of credits",
        "Total credits before",
        "Total credits after",
    ],
    "purchases": [
        "Purchase time",
        "# of credits",
        "Availability start date",
        "Expiration date",
        "Remaining credits",
    ],
}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def csv_text(pool: CreditPool, kind: str, start: str, end: str) -> str:
    return b"".join(csv_chunks(pool.report("acme", kind, start, end))).decode("utf-8")


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def scenario(pool: CreditPool, clock: FakeClock) -> None:
    """Grants of every kind, consumptions, a refund, a void, an expiry, a late availability,
    and consumptions on both sides of midnight in Berlin at the end of November."""
    pool.create_org("acme", name="Acme Inc.", timezone="Europe/Berlin")
    clock.set(utc(2026, 11, 2, 9))
    pool.grant("acme", "100")  # 1: permanent
    pool.grant("acme", "20", expires_at=utc(2026, 11, 10, 9))  # 2: expires
    pool.grant("acme", "10", available_from=utc(2026, 11, 20, 9))  # 3: pending until the 20th
    pool.grant("acme", "5")  # 4: voided later
    clock.set(utc(2026, 11, 3, 10))
    pool.consume(
        "acme",
        "report",
        user_id="u-1",
        feature_name='Q4 "pipeline", EMEA',
        action="publish",
        integration="Salesforce MCP",
        breakdown={"calls": 12, "emails": 40, "web_searches": 3},
        requests=4,
    )  # 5
    clock.set(utc(2026, 11, 3, 11))
    pool.consume("acme", "action_plan", user_id="u-2", action="generate")  # 6: refunded
    clock.set(utc(2026, 11, 3, 12))
    pool.consume(
        "acme", "agent_recommendation", user_id="u-1", action="accept", breakdown={"calls": 1}
    )  # 7
    clock.set(utc(2026, 11, 4, 8))
    pool.refund("acme", 6, reason="downvoted")
    clock.set(utc(2026, 11, 5, 9))
    pool.void_grant("acme", 4, by="cs", reason="mistake")
    clock.set(utc(2026, 11, 12, 10))
    pool.consume("acme", "report", user_id="u-3")  # 8 (grant 2 expired on the 10th)
    clock.set(utc(2026, 11, 30, 22, 30))  # 23:30 on the 30th in Berlin
    pool.consume("acme", "report", user_id="u-4")  # 9
    clock.set(utc(2026, 11, 30, 23, 30))  # 00:30 on December 1st in Berlin
    pool.consume("acme", "report", user_id="u-5")  # 10
    clock.set(utc(2026, 12, 1, 12))


@pytest.mark.parametrize("kind", ["usage", "balance", "purchases"])
def test_each_report_matches_its_hand_written_file_cell_by_cell(
    pool: CreditPool, clock: FakeClock, kind: str
) -> None:
    scenario(pool, clock)
    text = csv_text(pool, kind, "2026-11-01", "2026-11-30")
    expected = (EXPECTED / f"{kind}.csv").read_bytes().decode("utf-8")
    got, want = cells(text), cells(expected)
    assert got[0] == HEADERS[kind]
    assert len(got) == len(want)
    for i, (row, wanted) in enumerate(zip(got, want, strict=True)):
        assert row == wanted, f"row {i}"
    assert text == expected  # byte for byte: CRLF line ends, quoting only where needed


@pytest.mark.parametrize("kind", ["usage", "balance", "purchases"])
def test_an_empty_range_is_the_header_row_exactly(pool: CreditPool, kind: str) -> None:
    pool.create_org("acme", timezone="Europe/Berlin")
    text = csv_text(pool, kind, "2026-01-01", "2026-01-31")
    assert text == ",".join(HEADERS[kind]) + "\r\n"
    assert [c.name for c in COLUMNS[ReportKind(kind)]] == HEADERS[kind]


def test_an_event_at_23_30_utc_belongs_to_the_next_day_in_berlin(
    pool: CreditPool, clock: FakeClock
) -> None:
    scenario(pool, clock)
    december = cells(csv_text(pool, "usage", "2026-12-01", "2026-12-01"))
    assert [row[0] for row in december[1:]] == ["2026-12-01T00:30:00+01:00"]
    assert december[1][5] == "u-5"
    last_of_november = cells(csv_text(pool, "usage", "2026-11-30", "2026-11-30"))
    assert [row[5] for row in last_of_november[1:]] == ["u-4"]


def test_a_day_across_the_spring_daylight_saving_change(pool: CreditPool, clock: FakeClock) -> None:
    pool.create_org("acme", timezone="Europe/Berlin")
    clock.set(utc(2026, 3, 1))
    pool.grant("acme", "10")
    # Berlin moves from +01:00 to +02:00 at 01:00 UTC on 2026-03-29 (a 23-hour day).
    for when, user in [
        (utc(2026, 3, 28, 22, 59), "before"),  # 23:59 on the 28th
        (utc(2026, 3, 28, 23, 0), "first"),  # 00:00 on the 29th
        (utc(2026, 3, 29, 0, 59, 59), "last-winter"),  # 01:59:59 +01:00
        (utc(2026, 3, 29, 1, 0), "first-summer"),  # 03:00 +02:00
        (utc(2026, 3, 29, 21, 59, 59), "last"),  # 23:59:59 +02:00
        (utc(2026, 3, 29, 22, 0), "after"),  # 00:00 on the 30th
    ]:
        clock.set(when)
        pool.consume("acme", "agent_recommendation", user_id=user)
    rows = cells(csv_text(pool, "usage", "2026-03-29", "2026-03-29"))[1:]
    assert [(r[0], r[5]) for r in rows] == [
        ("2026-03-29T00:00:00+01:00", "first"),
        ("2026-03-29T01:59:59+01:00", "last-winter"),
        ("2026-03-29T03:00:00+02:00", "first-summer"),
        ("2026-03-29T23:59:59+02:00", "last"),
    ]


def test_a_day_across_the_autumn_change_keeps_both_1_30s_apart(
    pool: CreditPool, clock: FakeClock
) -> None:
    pool.create_org("acme", timezone="Europe/Berlin")
    clock.set(utc(2026, 10, 1))
    pool.grant("acme", "10")
    # 2026-10-25: 02:30 happens twice in Berlin (+02:00, then +01:00).
    for when in (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)):
        clock.set(when)
        pool.consume("acme", "agent_recommendation", user_id="u")
    clock.set(utc(2026, 10, 25, 23, 0))  # 00:00 on the 26th: outside
    pool.consume("acme", "agent_recommendation", user_id="u")
    rows = cells(csv_text(pool, "usage", "2026-10-25", "2026-10-25"))[1:]
    assert [r[0] for r in rows] == ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"]


def test_the_balance_chain_re_added_equals_the_balance(pool: CreditPool, clock: FakeClock) -> None:
    scenario(pool, clock)
    rows = cells(csv_text(pool, "balance", "2026-11-01", "2026-12-31"))[1:]
    total = Decimal(0)
    for _, _, _, credits, before, after in rows:
        assert Decimal(before) == total
        total += Decimal(credits)
        assert Decimal(after) == total
    assert total == pool.balance("acme").left == Decimal("108.50")


def test_typed_rows_for_library_callers(pool: CreditPool, clock: FakeClock) -> None:
    scenario(pool, clock)
    report = pool.report("acme", "usage", date(2026, 11, 1), date(2026, 11, 30))
    first = next(iter(report.rows()))
    assert first[0] == utc(2026, 11, 3, 10)
    assert first[0].utcoffset() == timedelta(hours=1)
    assert first[6] == Decimal("0.50")
    assert first[8] == 4
    assert report.count() == 4
    assert report.filename("csv") == "acme_credit-usage_2026-11-01_2026-11-30.csv"


def test_the_xlsx_has_typed_cells(pool: CreditPool, clock: FakeClock, tmp_path: Path) -> None:
    scenario(pool, clock)
    path = tmp_path / "usage.xlsx"
    write_xlsx(pool.report("acme", "usage", "2026-11-01", "2026-11-30"), path)
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    finally:
        workbook.close()
    assert list(rows[0]) == HEADERS["usage"]
    assert rows[1] == (
        datetime(2026, 11, 3, 11, 0),  # the organization's wall time
        "Report",
        'Q4 "pipeline", EMEA',
        "publish",
        "Salesforce MCP",
        "u-1",
        0.5,
        "12 calls, 40 emails, 3 web searches",
        4,
    )
    assert rows[2][6] == 0.25
    assert rows[2][8] is None
    assert len(rows) == 5


def test_balance_and_purchases_as_xlsx(pool: CreditPool, clock: FakeClock, tmp_path: Path) -> None:
    scenario(pool, clock)
    for kind in ("balance", "purchases"):
        path = tmp_path / f"{kind}.xlsx"
        write_xlsx(pool.report("acme", kind, "2026-11-01", "2026-11-30"), path)
        workbook = openpyxl.load_workbook(path, read_only=True)
        try:
            rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
        finally:
            workbook.close()
        expected = cells((EXPECTED / f"{kind}.csv").read_text("utf-8"))
        assert len(rows) == len(expected)
        for got, want in zip(rows[1:], expected[1:], strict=True):
            assert isinstance(got[0], datetime)
            assert got[0].isoformat() == want[0][:19]
            for value, text in zip(got, want, strict=True):
                if isinstance(value, float):
                    assert Decimal(str(value)) == Decimal(text)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-30", "2026-11-01", "ends"),
        ("2026-13-01", "2026-12-31", "not a calendar date"),
        ("2026/11/01", "2026-11-30", "YYYY-MM-DD"),
        ("yesterday", "2026-11-30", "YYYY-MM-DD"),
        ("2026-11-01", "2026-11-31", "not a calendar date"),
    ],
)
def test_bad_ranges_are_refused_before_anything_is_read(
    pool: CreditPool, start: str, end: str, message: str
) -> None:
    pool.create_org("acme")
    with pytest.raises(InvalidInput, match=message) as raised:
        pool.report("acme", "usage", start, end)
    assert raised.value.status == 422


def test_any_range_is_accepted_and_a_cap_only_when_asked_for(pool: CreditPool) -> None:
    pool.create_org("acme")
    long = pool.report("acme", "usage", "1990-01-01", "2028-12-31")
    assert (long.start, long.end) == (date(1990, 1, 1), date(2028, 12, 31))
    assert list(long.rows()) == []
    with pytest.raises(InvalidInput, match="at most 7 days"):
        pool.report("acme", "usage", "2026-11-01", "2026-11-08", span_days_max=7)


def test_an_unknown_report_or_organization_is_refused(pool: CreditPool) -> None:
    pool.create_org("acme")
    with pytest.raises(InvalidInput, match="unknown report"):
        pool.report("acme", "invoices", "2026-11-01", "2026-11-02")
    with pytest.raises(NotFound):
        pool.report("nope", "usage", "2026-11-01", "2026-11-02")


def test_without_from_a_report_starts_at_the_organizations_first_entry(
    pool: CreditPool, clock: FakeClock
) -> None:
    clock.set(utc(2023, 3, 5, 22, 30))  # March 5th in UTC, already the 6th in Tokyo
    pool.create_org("acme", timezone="Asia/Tokyo")
    pool.grant("acme", "10")
    clock.set(utc(2024, 1, 1, 12))
    pool.consume("acme", "report", user_id="u-1")
    clock.set(utc(2026, 11, 30, 23, 30))
    report = pool.report("acme", "usage")  # years: more than any former cap
    assert (report.start, report.end) == (date(2023, 3, 6), date(2026, 12, 1))
    assert len(list(report.rows())) == 1
    assert pool.report("acme", "purchases", None, "2023-03-01").start == date(2023, 3, 1)


def test_without_any_entry_the_default_range_is_today(pool: CreditPool, clock: FakeClock) -> None:
    pool.create_org("acme", timezone="Europe/Berlin")
    clock.set(utc(2026, 11, 30, 23, 30))  # already December 1st in Berlin
    report = pool.report("acme", "balance")
    assert (report.start, report.end) == (date(2026, 12, 1), date(2026, 12, 1))


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("this-month", date(2026, 3, 1), date(2026, 3, 15)),
        ("last-month", date(2026, 2, 1), date(2026, 2, 28)),
        ("this-year", date(2026, 1, 1), date(2026, 3, 15)),
        ("all-time", date(2025, 12, 31), date(2026, 3, 15)),
    ],
)
def test_a_period_names_its_days_in_the_organizations_zone(
    pool: CreditPool, clock: FakeClock, period: str, start: date, end: date
) -> None:
    clock.set(utc(2025, 12, 31, 12))
    pool.create_org("acme", timezone="America/New_York")
    pool.grant("acme", "1")
    clock.set(utc(2026, 3, 16, 3))  # still March 15th in New York
    report = pool.report("acme", "purchases", period=period)
    assert (report.start, report.end) == (start, end)


def test_a_period_with_days_or_an_unknown_period_is_refused(pool: CreditPool) -> None:
    pool.create_org("acme")
    with pytest.raises(InvalidInput, match="either a period or days"):
        pool.report("acme", "usage", "2026-11-01", period="this-month")
    with pytest.raises(InvalidInput, match="unknown period"):
        pool.report("acme", "usage", period="next-week")


def test_rows_are_read_in_batches_as_they_come(pool: CreditPool, clock: FakeClock) -> None:
    pool.create_org("acme", timezone="UTC")
    pool.grant("acme", "100")
    for _ in range(7):
        clock.advance(minutes=1)
        pool.consume("acme", "agent_recommendation", user_id="u")
    report = pool.report("acme", "usage", "2026-11-01", "2026-11-30")
    small = type(report)(**{**report.__dict__, "batch_rows": 3})
    assert [len(b) for b in small.batches(text=True)] == [3, 3, 1]
    chunks = csv_chunks(small)
    assert next(chunks) == (",".join(HEADERS["usage"]) + "\r\n").encode()  # before any query
    assert len(cells(b"".join(chunks).decode())) == 7
