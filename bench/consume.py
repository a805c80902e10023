"""Consumptions per second through the library, against the minimal raw SQL.

    uv run python bench/consume.py [--sqlite-only] [--n N] [--no-holds] [--pages]

For each backend (SQLite in a temporary file; PostgreSQL in a fresh database created from
CREDITPOOL_BENCH_POSTGRES_URL, else CREDITPOOL_TEST_POSTGRES_URL, else the local default,
and dropped afterwards) and each scenario (one organization; 1,000 organizations taken
round-robin) it times ``CreditPool.consume`` with an idempotency key per call, then the
same work as the least SQL that can do it safely through the raw driver: one transaction
that locks the organization's row, updates its balance and inserts a consumption row.
The baseline runs on tables of its own in the same database, with the same settings.

Then (unless ``--no-holds``) it times hold -> settle pairs through the library on the same
organizations: ``CreditPool.hold`` of 1.00 credit, then ``CreditPool.settle`` of its real
cost (0.50: below the hold, the rest goes back), each with an idempotency key. The second
table compares a pair with two consumptions measured in the same run: ratio = pairs/s x 2
/ consumptions/s; a pair should cost no more than two consumptions (ratio >= 1).

``--pages`` instead counts what one consumption writes on SQLite: the WAL frames (b-tree
pages) each commit appends, by the b-tree they belong to (``dbstat``), for one organization
and for 1,000. On SQLite with ``synchronous = FULL`` the commit is most of a consumption's
time, and it grows with the pages it writes (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sqlite3
import struct
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from creditpool import CreditPool
from creditpool.storage.engine import SQLITE_WAL_AUTOCHECKPOINT_PAGES, sqlite_synchronous

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ORG_COUNT = 1000
FEATURE = "report"
COST_UNITS = 5000  # 0.50 credits: the catalog's price of a report, in ten-thousandths
GRANT = "1000000"
GOALS = {"sqlite": 0.3, "postgresql": 0.6}
HOLD_AMOUNT = "1"  # reserved before the job
SETTLE_COST = "0.5"  # what the job really cost
PAIR_GOAL = 1.0  # a hold and its settle cost no more than two consumptions

Consume = Callable[[int, str], None]
"""One consumption: (call number, organization id)."""


@dataclass(frozen=True, slots=True)
class Row:
    backend: str
    scenario: str
    ours: float
    raw: float
    bare: float

    @property
    def ratio(self) -> float:
        return self.ours / self.raw


@dataclass(frozen=True, slots=True)
class PairRow:
    backend: str
    scenario: str
    consumes: float  # consumptions per second, same run
    pairs: float  # hold -> settle pairs per second

    @property
    def ratio(self) -> float:
        """Above 1: a pair costs less than two consumptions."""
        return self.pairs * 2 / self.consumes


def org_ids(count: int) -> list[str]:
    return [f"org-{i:04d}" for i in range(count)]


def timed(consume: Consume, orgs: list[str], n: int, warmup: int, start: int) -> float:
    """Consumptions per second over ``n`` calls, after ``warmup`` untimed ones."""
    for i in range(start, start + warmup):
        consume(i, orgs[i % len(orgs)])
    start += warmup
    began = time.perf_counter()
    for i in range(start, start + n):
        consume(i, orgs[i % len(orgs)])
    return n / (time.perf_counter() - began)


# -- the library ---------------------------------------------------------------------------


def prepare_library(pool: CreditPool, orgs: list[str]) -> None:
    for org in orgs:
        pool.create_org(org)
        pool.grant(org, GRANT, granted_by="bench")


def library_consumer(pool: CreditPool, run_id: str) -> Consume:
    def consume(i: int, org: str) -> None:
        pool.consume(
            org,
            FEATURE,
            user_id=f"u-{i % 40}",
            feature_name="Q3 pipeline",
            action="publish",
            breakdown={"calls": 12, "emails": 40, "web_searches": 3},
            requests=2,
            idempotency_key=f"{run_id}-{i}",
        )

    return consume


def library_hold_settler(pool: CreditPool, run_id: str) -> Consume:
    """One hold -> settle pair per call: reserve, then charge the real cost (below it)."""

    def pair(i: int, org: str) -> None:
        h = pool.hold(
            org,
            FEATURE,
            user_id=f"u-{i % 40}",
            amount=HOLD_AMOUNT,
            feature_name="Q3 pipeline",
            action="publish",
            idempotency_key=f"{run_id}-h{i}",
        )
        pool.settle(
            org,
            h.id,
            cost=SETTLE_COST,
            breakdown={"calls": 12, "emails": 40, "web_searches": 3},
            requests=2,
            idempotency_key=f"{run_id}-s{i}",
        )

    return pair


# -- the raw baselines ---------------------------------------------------------------------
# "raw": an organization row with a balance, and a consumption row with the same columns and
# the same indexes as the library's ``consumptions`` table (what a hand-written service
# would store). "bare": a three-column consumption row with no secondary index, the least
# a charge can write. Each call is one transaction: lock the organization's row, lower the
# balance (refusing to go below zero), insert the consumption row, commit.

RAW_ORGS = """CREATE TABLE {p}_orgs (
    id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL, seq BIGINT NOT NULL)"""
RAW_CONSUMPTIONS = {
    "raw": [
        """CREATE TABLE raw_consumptions (
            org_id VARCHAR(64) NOT NULL REFERENCES raw_orgs (id), id BIGINT NOT NULL,
            created_at {time} NOT NULL, feature VARCHAR(64) NOT NULL,
            feature_name VARCHAR(500), action VARCHAR(64), integration VARCHAR(200),
            user_id VARCHAR(64) NOT NULL, team_id VARCHAR(64), quantity BIGINT,
            rate BIGINT NOT NULL, cost BIGINT NOT NULL, breakdown {json}, requests INTEGER,
            metadata {json}, status VARCHAR(16) NOT NULL, PRIMARY KEY (org_id, id))""",
        "CREATE INDEX raw_c_created ON raw_consumptions (org_id, created_at)",
        "CREATE INDEX raw_c_user ON raw_consumptions (org_id, user_id, created_at)",
        "CREATE INDEX raw_c_team ON raw_consumptions (org_id, team_id, created_at)",
    ],
    "bare": [
        """CREATE TABLE bare_consumptions (
            org_id VARCHAR(64) NOT NULL REFERENCES bare_orgs (id), id BIGINT NOT NULL,
            cost BIGINT NOT NULL, PRIMARY KEY (org_id, id))""",
    ],
}
RAW_INSERT = {
    "raw": (
        "INSERT INTO raw_consumptions (org_id, id, created_at, feature, feature_name, action,"
        " user_id, rate, cost, breakdown, requests, status)"
        " VALUES ({0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0}, {0})"
    ),
    "bare": "INSERT INTO bare_consumptions (org_id, id, cost) VALUES ({0}, {0}, {0})",
}
BREAKDOWN = {"calls": 12, "emails": 40, "web_searches": 3}


def raw_values(kind: str, org: str, cid: int, i: int, at: object) -> tuple[object, ...]:
    if kind == "bare":
        return (org, cid, COST_UNITS)
    breakdown = json.dumps(BREAKDOWN)
    return (org, cid, at, FEATURE, "Q3 pipeline", "publish", f"u-{i % 40}", 50_000_000,
            COST_UNITS, breakdown, 2, "paid")  # fmt: skip


def sqlite_raw(path: Path, kind: str, orgs: list[str]) -> tuple[Consume, Callable[[], None]]:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # The library's settings (engine.py): WAL, the same synchronous level (FULL unless
    # CREDITPOOL_SQLITE_SYNCHRONOUS says otherwise), foreign keys on, the same checkpoints.
    for pragma in (
        "journal_mode = WAL",
        f"synchronous = {sqlite_synchronous()}",
        "foreign_keys = ON",
        f"wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}",
    ):
        db.execute(f"PRAGMA {pragma}")
    db.execute(RAW_ORGS.format(p=kind))
    for ddl in RAW_CONSUMPTIONS[kind]:
        db.execute(ddl.format(time="VARCHAR(32)", json="JSON"))
    db.executemany(
        f"INSERT INTO {kind}_orgs (id, balance, seq) VALUES (?, ?, 0)",
        [(o, int(GRANT) * 10_000) for o in orgs],
    )
    lower = (
        f"UPDATE {kind}_orgs SET balance = balance - ?, seq = seq + 1"
        " WHERE id = ? AND balance >= ? RETURNING seq"
    )
    insert = RAW_INSERT[kind].format("?")

    def consume(i: int, org: str) -> None:
        # BEGIN IMMEDIATE is SQLite's lock; one UPDATE checks and lowers the balance.
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(lower, (COST_UNITS, org, COST_UNITS)).fetchone()
            if row is None:
                raise RuntimeError("raw baseline ran out of credits")
            db.execute(insert, raw_values(kind, org, row[0], i, now_iso()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    return consume, db.close


def postgres_raw(url: str, kind: str, orgs: list[str]) -> tuple[Consume, Callable[[], None]]:
    db = psycopg.connect(url)
    with db.transaction():
        db.execute(RAW_ORGS.format(p=kind))
        for ddl in RAW_CONSUMPTIONS[kind]:
            db.execute(ddl.format(time="TIMESTAMPTZ", json="JSON"))
        with db.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {kind}_orgs (id, balance, seq) VALUES (%s, %s, 0)",
                [(o, int(GRANT) * 10_000) for o in orgs],
            )
    lock = f"SELECT balance, seq FROM {kind}_orgs WHERE id = %s FOR UPDATE"
    lower = f"UPDATE {kind}_orgs SET balance = %s, seq = %s WHERE id = %s"
    insert = RAW_INSERT[kind].format("%s")

    def consume(i: int, org: str) -> None:
        with db.transaction():
            row = db.execute(lock, (org,)).fetchone()
            assert row is not None
            balance, seq = row
            if balance < COST_UNITS:
                raise RuntimeError("raw baseline ran out of credits")
            db.execute(lower, (balance - COST_UNITS, seq + 1, org))
            values = raw_values(kind, org, seq + 1, i, datetime.now(UTC))
            db.execute(insert, values)

    return consume, db.close


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


# -- backends ------------------------------------------------------------------------------

MakeRaw = Callable[[str, list[str]], tuple[Consume, Callable[[], None]]]
"""Builds a baseline ("raw" or "bare") over the given organizations: (consume, close)."""


@contextmanager
def sqlite_database() -> Iterator[tuple[str, MakeRaw]]:
    with tempfile.TemporaryDirectory(prefix="creditpool-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        yield f"sqlite:///{path}", lambda kind, orgs: sqlite_raw(path, kind, orgs)


@contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, MakeRaw]]:
    name = f"creditpool_bench_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url, lambda kind, orgs: postgres_raw(url, kind, orgs)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_reachable(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]


def run_backend(
    backend: str, url: str, make_raw: MakeRaw, n: int, warmup: int, holds: bool = True
) -> tuple[list[Row], list[PairRow]]:
    orgs = org_ids(ORG_COUNT)
    scenarios = [("1 org", orgs[:1]), (f"{ORG_COUNT:,} orgs", orgs)]
    rows: list[Row] = []
    pairs: list[PairRow] = []
    with CreditPool.open(url) as pool:
        prepare_library(pool, orgs)
        run_id = uuid.uuid4().hex[:8]
        ours = library_consumer(pool, run_id)
        pair = library_hold_settler(pool, run_id)
        raw, close_raw = make_raw("raw", orgs)
        bare, close_bare = make_raw("bare", orgs)
        try:
            start = 0
            for scenario, subset in scenarios:
                rates = [timed(f, subset, n, warmup, start) for f in (ours, raw, bare)]
                start += n + warmup
                rows.append(Row(backend, scenario, *rates))
                if holds:
                    # Half as many pairs as consumptions: the same number of library calls.
                    pair_rate = timed(pair, subset, n // 2, warmup // 2, start)
                    start += n // 2 + warmup // 2
                    pairs.append(PairRow(backend, scenario, rates[0], pair_rate))
                print(f"  {backend} {scenario}: done", file=sys.stderr, flush=True)
        finally:
            close_raw()
            close_bare()
        problems = pool.verify()
        if problems:
            raise SystemExit(f"verify() after the {backend} run: {problems[:3]}")
        if holds:
            left_open = sum(len(pool.holds(org, status="open", limit=1)) for org in orgs)
            if left_open:
                raise SystemExit(f"{left_open} organizations kept an open hold")
    return rows, pairs


# -- pages written per consumption (SQLite) -------------------------------------------------

WAL_HEADER, FRAME_HEADER = 32, 24


def count_pages(orgs: list[str], calls: int, warmup: int) -> tuple[float, dict[str, float]]:
    """Mean WAL frames per consumption, and per b-tree, over ``calls`` consumptions after
    ``warmup`` (checkpoints held off while counting, so the WAL only grows)."""
    with tempfile.TemporaryDirectory(prefix="creditpool-pages-") as tmp:
        path = Path(tmp) / "pages.db"
        with CreditPool.open(f"sqlite:///{path}") as pool:
            prepare_library(pool, orgs)
            consume = library_consumer(pool, uuid.uuid4().hex[:8])
            for i in range(warmup):
                consume(i, orgs[i % len(orgs)])
            db = sqlite3.connect(path)
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                frame = db.execute("PRAGMA page_size").fetchone()[0] + FRAME_HEADER
                with pool.db.engine.connect() as conn:  # the pool's one connection
                    conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
                    conn.commit()
                wal = Path(f"{path}-wal")
                pages: collections.Counter[int] = collections.Counter()
                for i in range(warmup, warmup + calls):
                    before = max(wal.stat().st_size if wal.exists() else 0, WAL_HEADER)
                    consume(i, orgs[i % len(orgs)])
                    with wal.open("rb") as f:
                        f.seek(before)
                        data = f.read()
                    pages.update(
                        struct.unpack(">I", data[j : j + 4])[0] for j in range(0, len(data), frame)
                    )
                names = dict(db.execute("SELECT pageno, name FROM dbstat").fetchall())
            finally:
                db.close()
    by_tree: collections.Counter[str] = collections.Counter()
    for page, times in pages.items():
        by_tree[names.get(page, "?")] += times
    total = sum(pages.values()) / calls
    return total, {name: n / calls for name, n in by_tree.most_common()}


def print_pages(calls: int, warmup: int) -> None:
    orgs = org_ids(ORG_COUNT)
    counted = [("1 org", count_pages(orgs[:1], calls, warmup))]
    counted.append((f"{ORG_COUNT:,} orgs", count_pages(orgs, calls, warmup)))
    trees = list(dict.fromkeys(name for _, (_, by) in counted for name in by))
    print(f"SQLite pages written per consumption ({warmup} before, mean of {calls})")
    print(f"{'b-tree':<32} " + " ".join(f"{label:>10}" for label, _ in counted))
    for name in trees:
        print(f"{name:<32} " + " ".join(f"{by.get(name, 0):>10.2f}" for _, (_, by) in counted))
    print(f"{'total':<32} " + " ".join(f"{total:>10.2f}" for _, (total, _) in counted))


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'backend':<11} {'scenario':<11} {'ours/s':>8} {'raw/s':>8} {'ratio':>6}  "
        f"{'goal':<13} {'bare/s':>8} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        goal = GOALS[r.backend]
        verdict = "ok" if r.ratio >= goal else "MISSED"
        print(
            f"{r.backend:<11} {r.scenario:<11} {r.ours:>8,.0f} {r.raw:>8,.0f} {r.ratio:>6.2f}  "
            f"{'>= ' + str(goal) + ' ' + verdict:<13} {r.bare:>8,.0f} {r.ours / r.bare:>6.2f}"
        )


def print_pairs(rows: list[PairRow]) -> None:
    header = (
        f"{'backend':<11} {'scenario':<11} {'consume/s':>9} {'pairs/s':>8} "
        f"{'ratio':>6}  {'goal':<13}"
    )
    print()
    print("hold -> settle pairs against two consumptions (ratio = pairs/s x 2 / consume/s)")
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = "ok" if r.ratio >= PAIR_GOAL else "MISSED"
        print(
            f"{r.backend:<11} {r.scenario:<11} {r.consumes:>9,.0f} {r.pairs:>8,.0f} "
            f"{r.ratio:>6.2f}  {'>= ' + str(PAIR_GOAL) + ' ' + verdict:<13}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--n", type=int, default=3000, help="timed consumptions per run")
    parser.add_argument("--warmup", type=int, default=300, help="untimed calls before each")
    parser.add_argument("--no-holds", action="store_true", help="skip the hold -> settle pairs")
    parser.add_argument(
        "--pages", action="store_true", help="count the SQLite pages a consumption writes"
    )
    args = parser.parse_args(argv)
    if args.pages:
        print_pages(min(args.n, 1000), 3000)
        return 0
    n: int = args.n
    warmup: int = args.warmup
    holds = not args.no_holds

    rows: list[Row] = []
    pairs: list[PairRow] = []
    print(f"n={n} warmup={warmup} per run", file=sys.stderr)
    with sqlite_database() as (url, make_raw):
        got = run_backend("sqlite", url, make_raw, n, warmup, holds)
        rows += got[0]
        pairs += got[1]
    if not args.sqlite_only:
        pg_url = (
            os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
            or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
            or DEFAULT_PG_URL
        )
        why = postgres_reachable(pg_url)
        if why is not None:
            print(f"PostgreSQL skipped: {pg_url} unreachable ({why})", file=sys.stderr)
        else:
            with postgres_database(pg_url) as (url, make_raw):
                got = run_backend("postgresql", url, make_raw, n, warmup, holds)
                rows += got[0]
                pairs += got[1]
    print_table(rows)
    if pairs:
        print_pairs(pairs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
