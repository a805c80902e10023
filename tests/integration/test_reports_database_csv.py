"""The usage report's CSV written by PostgreSQL (``COPY ... TO STDOUT``, cells formatted in
SQL) is byte for byte what the rows shaped in Python and written by the ``csv`` module
give; SQLite, a zone PostgreSQL does not know, and ranges from before 1973 take the Python
path. The reference bytes are made here with the ``csv`` module from the typed-text rows,
and the trickiest cells are also written out by hand."""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from creditpool import CreditPool
from creditpool.reports.formats import csv_chunks
from creditpool.reports.service import Report
from creditpool.repositories import reports as repository
from creditpool.repositories.reports import CopyRow
from tests.support import FakeClock


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def python_csv(report: Report) -> bytes:
    """The rows shaped in Python, written by the csv module: the reference."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(report.header)
    for batch in report.batches(text=True):
        writer.writerows(batch)
    return buffer.getvalue().encode()


def database_writes(pool: CreditPool, report: Report) -> bool:
    """Whether the database writes this report's rows (the path ``csv_blocks`` takes)."""
    lo, hi = report.bounds
    with pool.db.read() as tx:
        return repository.usage_csv(tx.conn, report.org_id, lo, hi, report.timezone, {}) is not None


def tricky(pool: CreditPool, clock: FakeClock, org: str, zone: str) -> None:
    """Quoting, empty strings, line breaks, non-ASCII, every credits precision, every
    breakdown shape, a refund, instants across the autumn change with microseconds."""
    clock.set(utc(2026, 10, 1))
    pool.create_org(org, timezone=zone)
    pool.grant(org, "1000")
    pool.set_feature("box_check", name='Boxes, "big"\nones', cost="0.0001")
    pool.set_feature("tokens", name="Tökens 日本", unit_rate="0.00012345", unit="token")
    uses: list[dict[str, object]] = [
        {"feature": "box_check", "feature_name": "", "action": "a\r\nb", "requests": 0},
        {"feature": "tokens", "quantity": "7", "integration": "Émile, “quoted”", "breakdown": {}},
        {"feature": "tokens", "quantity": "1000", "breakdown": {"calls": 1, "web_searches": 2}},
        {"feature": "report", "breakdown": {"boxes": 1, "classes": 1, "boss": 1, "s": 1}},
        {"feature": "report", "breakdown": {"matches": 1, "dishes": 1, "x_y_z": 0}},
        {"feature": "action_plan", "feature_name": 'say "hi"', "requests": 12},
        {"feature": "agent_recommendation", "breakdown": {"calls": 1}},
    ]
    # Berlin: 02:30 twice on 2026-10-25; St John's: -02:30 then -03:30 on 2026-11-01.
    times = [
        utc(2026, 10, 25, 0, 30, 59, 999_999),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 11, 1, 3, 59, 59),
        utc(2026, 11, 1, 4, 30, 0, 1),
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 2, 12),
        utc(2026, 11, 3, 12),
    ]
    ids = []
    for i, (when, use) in enumerate(zip(times, uses, strict=True)):
        clock.set(when)
        feature = str(use.pop("feature"))
        used = pool.consume(org, feature, user_id=f"u-{i}", **use)  # type: ignore[arg-type]
        assert used.id is not None
        ids.append(used.id)
    clock.set(utc(2026, 11, 4))
    pool.refund(org, ids[5], reason="downvoted")  # the action_plan use: not in the report
    clock.set(utc(2026, 11, 5))


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"])
def test_the_database_writes_the_bytes_the_csv_module_would(
    pool: CreditPool, clock: FakeClock, backend: str, zone: str
) -> None:
    tricky(pool, clock, "acme", zone)
    report = pool.report("acme", "usage", "2026-10-01", "2026-11-30")
    assert database_writes(pool, report) is (backend == "postgres")
    got = b"".join(csv_chunks(report))
    assert got == python_csv(report)
    rows = list(csv.reader(io.StringIO(got.decode("utf-8"), newline="")))
    assert len(rows) == 1 + 6  # the refunded use is left out
    assert got.count(b"\r\n") == 1 + 6 + 1  # CRLF ends every record; "a\r\nb" is a cell
    assert rows[1][1:5] == ['Boxes, "big"\nones', "", "a\r\nb", ""]
    assert rows[1][6:] == ["0.0001", "", "0"]
    assert rows[2][1] == "Tökens 日本"
    assert rows[2][4] == "Émile, “quoted”"
    assert rows[2][6:] == ["0.0009", "", ""]  # 7 x 0.00012345 -> 0.00086415 -> 0.0009
    assert rows[3][6:8] == ["0.1235", "1 call, 2 web searches"]
    assert rows[4][7] == "1 box, 1 class, 1 boss, 1 "
    assert rows[5][7] == "1 match, 1 dish, 0 x y z"
    assert rows[6][1] == "Agent Recommendation"
    assert rows[6][6:] == ["0.25", "1 call", ""]
    assert "say" not in got.decode()
    if zone == "Europe/Berlin":
        assert [r[0] for r in rows[1:3]] == [
            "2026-10-25T02:30:59+02:00",
            "2026-10-25T02:30:00+01:00",
        ]
    if zone == "America/St_Johns":
        assert [r[0] for r in rows[3:6]] == [
            "2026-11-01T01:29:59-02:30",
            "2026-11-01T01:00:00-03:30",
            "2026-11-01T01:30:00-03:30",
        ]
    if zone == "Asia/Kathmandu":
        assert rows[1][0] == "2026-10-25T06:15:59+05:45"


def test_blocks_count_their_rows_on_either_path(pool: CreditPool, clock: FakeClock) -> None:
    tricky(pool, clock, "acme", "Europe/Berlin")
    report = pool.report("acme", "usage", "2026-10-01", "2026-11-30")
    # about one record per block (the Python path writes whole batches: one row each)
    blocks = list(replace(report, batch_rows=1).csv_blocks(100))
    assert sum(rows for _, rows in blocks) == 6
    assert len(blocks) > 1
    assert b"".join(block for block, _ in blocks) == python_csv(report).partition(b"\r\n")[2]
    assert list(report.csv_blocks(1 << 20)) == [(b"".join(b for b, _ in blocks), 6)]


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_zone_postgresql_does_not_know_leaves_the_transaction_usable(
    pool: CreditPool, clock: FakeClock
) -> None:
    tricky(pool, clock, "acme", "Europe/Berlin")
    lo, hi = utc(2026, 10, 1), utc(2026, 12, 1)
    with pool.db.read() as tx:
        assert repository.usage_csv(tx.conn, "acme", lo, hi, "Nowhere/Atlantis", {}) is None
        assert repository.count(tx.conn, "usage", "acme", lo, hi) == 6


def test_before_1973_offsets_with_seconds_are_written_as_isoformat_does(
    pool: CreditPool, clock: FakeClock
) -> None:
    clock.set(utc(1971, 6, 1))
    pool.create_org("acme", timezone="Africa/Monrovia")  # -0:44:30 until 1972
    pool.grant("acme", "10")
    clock.set(utc(1971, 6, 1, 12))
    pool.consume("acme", "report", user_id="u-1")
    text = b"".join(csv_chunks(pool.report("acme", "usage", "1971-06-01", "1971-06-01")))
    assert text.decode().splitlines()[1].startswith("1971-06-01T11:15:30-00:44:30,Report,")


def test_a_download_abandoned_midway_leaves_the_pool_usable(
    pool: CreditPool, clock: FakeClock
) -> None:
    tricky(pool, clock, "acme", "Europe/Berlin")
    report = pool.report("acme", "usage", "2026-10-01", "2026-11-30")
    blocks = replace(report, batch_rows=1).csv_blocks(1)  # one record per block
    assert next(blocks)[1] == 1
    # The client went away: the COPY is cancelled and the transaction ends. (Left open,
    # the COPY made the rollback wait forever: a thread, so that this fails, not hangs.)
    closing = threading.Thread(target=blocks.close, daemon=True)
    closing.start()
    closing.join(timeout=30)
    assert not closing.is_alive()
    assert b"".join(csv_chunks(report)) == python_csv(report)
    with pool.db.read() as tx:
        assert repository.count(tx.conn, "usage", report.org_id, *report.bounds) == 6


def test_a_cell_holding_the_mark_itself_is_still_written_right(
    pool: CreditPool, clock: FakeClock
) -> None:
    """The API refuses control characters in text, but a row written by other means may
    hold the breakdown's mark: that block is then written row by row."""
    tricky(pool, clock, "acme", "Europe/Berlin")
    with pool.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE consumptions SET feature_name = 'x\x01y\x01z', action = '\x01'"
            " WHERE user_id IN ('u-2', 'u-3')"
        )
    report = pool.report("acme", "usage", "2026-10-01", "2026-11-30")
    for blocks in (1, 1 << 20):
        got = b"".join(block for block, _ in report.csv_blocks(blocks))
        assert got == python_csv(report).partition(b"\r\n")[2]
        assert got.count(b"x\x01y\x01z,\x01,") == 2


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("rows", [5, 20_000])  # the error held with the rows, or after a wait
def test_an_error_midway_through_the_copy_is_raised_and_the_pool_stays_usable(
    pool: CreditPool, rows: int
) -> None:
    import psycopg

    failing = f"COPY (SELECT 1 / ({rows} - g) FROM generate_series(1, {rows}) AS g) TO STDOUT"
    got: list[CopyRow] = []

    def read() -> None:
        with pool.db.read() as tx:
            got.extend(repository._copy_rows(tx.conn, failing, {}))

    with pytest.raises(psycopg.errors.DivisionByZero):
        read()
    assert len(got) == rows - 1
    pool.create_org("acme")
    with pool.db.read() as tx:
        assert [
            len(r) for r in repository._copy_rows(tx.conn, "COPY (SELECT 1) TO STDOUT", {})
        ] == [2]
