"""A past balance reads the holds near its instant, not every hold ever made: with a long
history of settled holds, ``balance(at=)`` counts exactly what was held then, and the
database reads the holds through an index range by their end (``ix_holds_org_expires``),
bounded on both sides: ending after the instant and at most the organization's longest
time to live after it (``orgs.longest_hold_s``, migration 0010). A page of one status's
holds is read in page order from ``ix_holds_org_status_id``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from creditpool import CreditPool
from creditpool.queries import Holds
from creditpool.repositories import holds as holds_repo
from creditpool.repositories import orgs as orgs_repo
from tests.support import FakeClock


def _plan_of_last(
    conn: Connection, db_url: str, read: Callable[[], Any], postgres: tuple[str, ...]
) -> tuple[Any, str]:
    """What ``read`` returns, and the plan of the last statement it sent: SQLite's query
    plan, or PostgreSQL's after ``postgres`` (ANALYZE, planner switches: on a small table a
    scan is cheaper, so the test asks whether the index serves the read)."""
    statements: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statements.append((args[2], args[3]))

    event.listen(conn, "before_cursor_execute", capture)
    try:
        result = read()
    finally:
        event.remove(conn, "before_cursor_execute", capture)
    sql, params = statements[-1]
    if db_url.startswith("sqlite"):
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)
        return result, " | ".join(row[3] for row in rows)
    for statement in postgres:
        conn.execute(text(statement))
    return result, " | ".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))


def _history(pool: CreditPool, clock: FakeClock) -> tuple[datetime, datetime]:
    """Fifty holds settled a day apart, then one open hold; the instants to look at: while
    an old hold was open, and while the open one is."""
    pool.create_org("acme")
    pool.grant("acme", "1000")
    during_old = None
    for i in range(50):
        hold = pool.hold("acme", "report", amount="2", user_id="u-1", ttl_s=3600)
        clock.advance(minutes=5)
        if i == 20:
            during_old = clock()
        clock.advance(minutes=5)
        pool.settle("acme", hold.id, cost="0.5")
        clock.advance(days=1)
    pool.hold("acme", "report", amount="3", user_id="u-1", ttl_s=3600)
    clock.advance(minutes=5)
    assert during_old is not None
    return during_old, clock()


def test_a_past_balance_counts_what_was_held_then(pool: CreditPool, clock: FakeClock) -> None:
    during_old, during_open = _history(pool, clock)
    clock.advance(hours=2)  # the open hold has run out by now
    then = pool.balance("acme", at=during_old)
    assert then.held == Decimal("2")
    assert then.left == Decimal("1000") - Decimal("0.5") * 20 - Decimal("2")
    later = pool.balance("acme", at=during_open)
    assert later.held == Decimal("3")
    assert later.left == Decimal("1000") - Decimal("0.5") * 50 - Decimal("3")


def test_the_holds_of_a_past_instant_are_read_by_an_index_range(
    pool: CreditPool, clock: FakeClock, db_url: str
) -> None:
    during_old, _ = _history(pool, clock)
    with pool.db.engine.connect() as conn:
        longest = orgs_repo.get_org(conn, "acme").longest_hold_s
        assert longest == 3600
        held, plan = _plan_of_last(
            conn,
            db_url,
            lambda: holds_repo.held_at(conn, "acme", during_old, longest),
            ("ANALYZE holds, hold_allocations", "SET LOCAL enable_seqscan = off"),
        )
        assert sum(amount for _, amount in held) == 20000
        if db_url.startswith("sqlite"):
            # Both ends: the holds ending in (t, t + longest], not every one ending after t.
            assert (
                "SEARCH holds USING COVERING INDEX ix_holds_org_expires"
                " (org_id=? AND expires_at>? AND expires_at<?)" in plan  # no hold's row read
            )
        else:
            assert "Index Only Scan using ix_holds_org_expires" in plan  # no hold's row read
            assert "Index Cond: ((org_id = 'acme'::text) AND (expires_at >" in plan
            assert "AND (expires_at <= " in plan  # both ends of the range
        assert "hold_allocations USING PRIMARY KEY (org_id=?)" not in plan  # not every hold's


def test_a_longer_hold_widens_the_range_and_is_counted(pool: CreditPool, clock: FakeClock) -> None:
    """A hold given a longer time to live than any before raises the organization's bound:
    a past balance still counts it while it was open, long after it began."""
    pool.create_org("acme")
    pool.grant("acme", "1000")
    pool.hold("acme", "report", amount="1", user_id="u-1", ttl_s=600)
    long_one = pool.hold("acme", "report", amount="4", user_id="u-1", ttl_s=20 * 3600)
    clock.advance(hours=19)  # the short one ran out long ago
    during = clock()
    clock.advance(hours=2)  # the long one has run out by now
    with pool.db.engine.connect() as conn:
        assert orgs_repo.get_org(conn, "acme").longest_hold_s == 20 * 3600
    assert pool.balance("acme", at=during).held == Decimal("4")
    assert pool.hold_of("acme", long_one.id).status == "expired"
    assert pool.balance("acme").held == Decimal("0")


def test_a_page_of_one_status_is_read_in_page_order(
    pool: CreditPool, clock: FakeClock, db_url: str
) -> None:
    _history(pool, clock)
    with pool.db.engine.connect() as conn:
        page, plan = _plan_of_last(
            conn,
            db_url,
            lambda: holds_repo.search(conn, Holds("acme", status="settled", limit=10)),
            ("ANALYZE holds", "SET LOCAL enable_seqscan = off", "SET LOCAL enable_sort = off"),
        )
        assert [r.id for r in page] == sorted((r.id for r in page), reverse=True)
        assert len(page) == 10
        if db_url.startswith("sqlite"):
            assert (
                "SEARCH holds USING COVERING INDEX ix_holds_org_status_id (org_id=? AND status=?)"
                in plan
            )
            assert "SEARCH holds USING PRIMARY KEY (org_id=? AND id=?)" in plan  # the page's rows
            assert "SEARCH holds USING PRIMARY KEY (org_id=?)" not in plan  # not every hold
            assert "TEMP B-TREE" not in plan  # no sort: the index gives the page's order
        else:
            assert "Index Only Scan Backward using ix_holds_org_status_id" in plan
            assert "Sort" not in plan
