"""How the library's costs grow with an organization's history.

    uv run python bench/growth.py [--sizes 10000,1000000] [--backends sqlite,postgresql]
                                  [--calls 1000] [--repeat 20] [--verify-rounds 3] [--explain]

For each backend (SQLite in temporary files; PostgreSQL in fresh databases
``bench_growth_<size>`` created from CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default, and dropped afterwards) and each size
(ledger entries of one organization), it loads a consistent history straight through the
driver (PostgreSQL: COPY; SQLite: executemany, secondary indexes built after the load), then
measures, alternating between the sizes so that the machine's noise hits all of them alike:

- consume: ``CreditPool.consume`` calls per second, an idempotency key each;
- balance now, ``balance(at=)`` 30 days and a year ago (for the smallest size a year ago is
  before its first entry);
- history: the first page of ``consumptions`` and the one 10,000 consumptions deep (keyset,
  ``before_id``); the first page of ``ledger`` and the one after entry 10,000
  (``after_seq``; for the smallest size the last full page);
- the usage page: ``web.service.usage_page`` as an admin sees it (one snapshot: header,
  balance, grants, history, chart, teams, forecast), without the HTML;
- ``verify()`` in a fresh process (the fastest of VERIFY_ROUNDS runs per size): seconds,
  microseconds per entry and the peak resident memory it added (Linux: the peak ``VmHWM``, reset just before, minus ``VmRSS`` before).

The history: grants and consumptions only (no refunds, holds or corrections), 40 users in 4
teams, two features at 0.50. Whatever the size, the newest 10,000 entries span the last 40
days (the same recent activity: the month's usage, the chart's 30 days and the forecast's
window read the same rows at every size); anything older is spread over the three years
before, with a grant every 30 days that is used up exactly before the next one comes and
expires after it (so expired grants write no entry). The last grant is permanent and keeps
a reserve for the benchmark's consumptions. ``verify()`` passes on it (checked).

Each figure is measured in ROUNDS rounds, the sizes taking turns, and is the lower quartile
of all its calls' times (the machine is shared: other work only ever adds time, and a
figure's ratio should show the work done, not who else ran then); the consume rate is one
over that time, its ``--calls`` spread over the rounds. Each is shown with its ratio to the
smallest size (for the consume rate: the smaller rate's slowdown) and the goal: within 1.2x
of the 10k figure; ``verify()`` linear (time per entry within 1.2x) with flat memory (peak
added memory within 1.2x, or within 16 MB, of the 10k run's).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from creditpool import CreditPool
from creditpool.http.security import Principal
from creditpool.web import service as web

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ORG = "growth"
FEATURES = ("report", "action_plan")  # both 0.50 credit in the seeded catalog
RATE = 50_000_000  # 0.50 in rate units (1e-8 credit)
COST = 5_000  # 0.50 in units (1e-4 credit)
USERS = 40
TEAMS = 4
RECENT = 10_000  # the newest entries, over the last RECENT_SPAN
RECENT_SPAN = timedelta(days=40)
OLD_SPAN = timedelta(days=3 * 365)
GRANT_EVERY = timedelta(days=30)
RESERVE = 10_000_000_000  # 1,000,000 credits left on the last grant
DEEP = 10_000
PAGE = 50
CHUNK = 50_000
GOAL = 1.2
ROUNDS = 5  # each figure is measured this many times per size, the sizes taking turns
VERIFY_ROUNDS = 3  # verify() runs (each in a fresh process), the fastest counts
MEMORY_SLACK_MB = 16.0
US = 1_000_000


# -- the history ---------------------------------------------------------------------------


class History:
    """Entry ``i`` (0-based) is ledger seq ``i + 1`` and object id ``i + 1``: a grant or a
    consumption. Times are microseconds since the epoch (UTC)."""

    def __init__(self, size: int, end: datetime) -> None:
        self.size = size
        self.recent = min(size, RECENT)
        self.old = size - self.recent
        self.end_us = _us(end)
        self.recent_start_us = self.end_us - _td_us(RECENT_SPAN)
        self.recent_step = _td_us(RECENT_SPAN) / self.recent
        self.old_start_us = self.recent_start_us - _td_us(OLD_SPAN)
        self.old_step = _td_us(OLD_SPAN) / self.old if self.old else 0.0
        first = self.time(0)
        # The first entry at or after each 30-day boundary is a grant.
        starts: list[int] = []
        boundary = first
        while boundary <= self.end_us:
            i = self._first_at(boundary)
            if i < size and (not starts or i > starts[-1]):
                starts.append(i)
            boundary += _td_us(GRANT_EVERY)
        self.grant_starts = starts
        self._grant_set = set(starts)

    def time(self, i: int) -> int:
        if i < self.old:
            return self.old_start_us + int(i * self.old_step)
        return self.recent_start_us + int((i - self.old + 1) * self.recent_step)

    def _first_at(self, t: int) -> int:
        low, high = 0, self.size  # the first i with time(i) >= t (size: none)
        while low < high:
            middle = (low + high) // 2
            if self.time(middle) >= t:
                high = middle
            else:
                low = middle + 1
        return low

    def is_grant(self, i: int) -> bool:
        return i in self._grant_set

    def block(self, i: int) -> int:
        """The index (in ``grant_starts``) of the grant entry ``i`` draws from."""
        return bisect.bisect_right(self.grant_starts, i) - 1

    def block_amount(self, k: int) -> int:
        start = self.grant_starts[k]
        stop = self.grant_starts[k + 1] if k + 1 < len(self.grant_starts) else self.size
        return (stop - start - 1) * COST + (RESERVE if k + 1 == len(self.grant_starts) else 0)

    def consumption_ids_newest_first(self) -> Iterator[int]:
        for i in range(self.size - 1, -1, -1):
            if not self.is_grant(i):
                yield i + 1

    # -- rows (tuples in the column order of COLUMNS) ------------------------------------

    def chunks(self) -> Iterator[tuple[list[tuple[Any, ...]], ...]]:
        """(ledger, consumptions, allocations) rows, CHUNK entries at a time."""
        left = 0
        grant_id = 0
        for lo in range(0, self.size, CHUNK):
            ledger_rows: list[tuple[Any, ...]] = []
            cons_rows: list[tuple[Any, ...]] = []
            alloc_rows: list[tuple[Any, ...]] = []
            for i in range(lo, min(lo + CHUNK, self.size)):
                seq = i + 1
                at = self.time(i)
                if self.is_grant(i):
                    amount = self.block_amount(self.block(i))
                    ledger_rows.append(
                        (seq, at, "grant_added", "added", amount, left, left + amount, seq, None)
                    )
                    left += amount
                    grant_id = seq
                    continue
                user = i % USERS
                ledger_rows.append(
                    (seq, at, "consumption", "used", COST, left, left - COST, None, seq)
                )
                left -= COST
                cons_rows.append((seq, at, FEATURES[i % 2], f"u{user:02d}", f"t{user % TEAMS}"))
                alloc_rows.append((seq, grant_id))
            yield ledger_rows, cons_rows, alloc_rows

    def grant_rows(self) -> list[dict[str, Any]]:
        rows = []
        count = len(self.grant_starts)
        for k, i in enumerate(self.grant_starts):
            last = k + 1 == count
            at = self.time(i)
            expires = None if last else self.time(self.grant_starts[k + 1]) + US
            rows.append(
                {
                    "id": i + 1,
                    "amount": self.block_amount(k),
                    "remaining": RESERVE if last else 0,
                    "at": at,
                    "expires_at": expires,
                    "expired": not last,
                }
            )
        return rows

    def team_usage(self, month: str) -> dict[str, int]:
        """Paid units of each team in the calendar month ``month`` (UTC)."""
        used = {f"t{t}": 0 for t in range(TEAMS)}
        for i in range(self.old, self.size):
            if self.is_grant(i):
                continue
            if _dt(self.time(i)).strftime("%Y-%m") == month:
                used[f"t{(i % USERS) % TEAMS}"] += COST
        return used


def _us(t: datetime) -> int:
    return int(t.timestamp()) * US + t.microsecond


def _td_us(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * US + d.microseconds


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // US, UTC).replace(microsecond=us % US)


def _iso(us: int) -> str:
    """As ``storage/types.py`` writes a time on SQLite (and PostgreSQL reads it)."""
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


# -- loading ---------------------------------------------------------------------------------

LEDGER_COLS = (
    "org_id, seq, at, action, method, credits, total_before, total_after, grant_id,"
    " consumption_id, hold_id, correction_id"
)
CONS_COLS = (
    "org_id, id, created_at, feature, feature_name, action, integration, user_id, team_id,"
    " quantity, rate, cost, breakdown, requests, metadata, status, refunded_at,"
    " refund_reason, refund_restored, refund_lost, hold_id"
)
ALLOC_COLS = "org_id, consumption_id, grant_id, amount"
BULK_TABLES = ("ledger", "consumptions", "allocations")


def directory_rows(h: History) -> dict[str, list[tuple[Any, ...]]]:
    """The organization, its teams, members and grants, as (column, ...) tuples with the
    times still in microseconds."""
    last_at = h.time(h.size - 1)
    month = _dt(last_at).strftime("%Y-%m")
    usage = h.team_usage(month)
    created = h.time(0) - 86_400 * US
    org = [(ORG, "Growth bench", "UTC", "[]", created, h.size, h.size, last_at, None, 7, None)]
    teams = [(ORG, t, f"Team {t}", None, created, month, units) for t, units in usage.items()]
    members = [
        (ORG, f"u{u:02d}", f"t{u % TEAMS}", created, f"User {u:02d}" if u % 2 else None)
        for u in range(USERS)
    ]
    grants = [
        (
            ORG,
            g["id"],
            g["amount"],
            g["remaining"],
            g["at"],
            g["at"],
            g["expires_at"],
            None,
            f"PO-{g['id']}",
            "bench",
            None,
            None,
            None,
            0,
            True,
            g["expired"],
            0,
            g["expired"],
        )
        for g in h.grant_rows()
    ]
    return {"orgs": org, "teams": teams, "members": members, "grants": grants}


DIRECTORY_SQL = {
    "orgs": "INSERT INTO orgs (id, name, timezone, low_balance_thresholds, created_at,"
    " ledger_seq, object_seq, ledger_at, next_event_at, expiry_notice_days, alerts)"
    " VALUES ({})",
    "teams": "INSERT INTO teams (org_id, id, name, monthly_limit, created_at, usage_month,"
    " usage_units) VALUES ({})",
    "members": "INSERT INTO members (org_id, user_id, team_id, updated_at, display_name)"
    " VALUES ({})",
    "grants": "INSERT INTO grants (org_id, id, amount, remaining, granted_at, available_from,"
    " expires_at, note, reference, granted_by, voided_at, voided_by, void_reason,"
    " voided_credits, added_logged, expiry_logged, held, expiry_noticed) VALUES ({})",
}
# Which columns of each directory row are times.
TIME_COLUMNS = {"orgs": (4, 7, 8), "teams": (4,), "members": (3,), "grants": (4, 5, 6)}


def _times(table: str, row: tuple[Any, ...], convert: Callable[[int], Any]) -> tuple[Any, ...]:
    cols = TIME_COLUMNS[table]
    return tuple(convert(v) if i in cols and v is not None else v for i, v in enumerate(row))


def load_sqlite(path: Path, h: History) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    # A load that fails leaves a database nobody wants: no journal (in WAL mode the load
    # went through the log first, then a checkpoint copied it all again).
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    indexes = _sqlite_indexes(con)
    con.execute("BEGIN")
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    for table, rows in directory_rows(h).items():
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(DIRECTORY_SQL[table].format(marks), [_times(table, r, _iso) for r in rows])
    for ledger_rows, cons_rows, alloc_rows in h.chunks():
        con.executemany(
            f"INSERT INTO ledger ({LEDGER_COLS}) VALUES ('{ORG}', ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            " NULL, NULL)",
            [
                (s, _iso(at), a, m, c, b, af, g, cid)
                for s, at, a, m, c, b, af, g, cid in ledger_rows
            ],
        )
        con.executemany(
            f"INSERT INTO consumptions ({CONS_COLS}) VALUES ('{ORG}', ?, ?, ?, NULL, NULL,"
            f" NULL, ?, ?, NULL, {RATE}, {COST}, 'null', NULL, 'null', 'paid', NULL, NULL,"
            " NULL, NULL, NULL)",
            [(cid, _iso(at), f, u, t) for cid, at, f, u, t in cons_rows],
        )
        con.executemany(
            f"INSERT INTO allocations ({ALLOC_COLS}) VALUES ('{ORG}', ?, ?, {COST})", alloc_rows
        )
    for _, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("PRAGMA journal_mode = WAL")  # as the library runs it
    con.close()


def _sqlite_indexes(con: sqlite3.Connection) -> list[tuple[str, str]]:
    marks = ", ".join("?" * len(BULK_TABLES))
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({marks})"
    )
    return list(con.execute(query, BULK_TABLES))


def load_postgres(url: str, h: History) -> None:
    with psycopg.connect(url) as con:
        indexes = con.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
            " AND indexname NOT LIKE 'pk_%%'",
            (list(BULK_TABLES),),
        ).fetchall()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for table, rows in directory_rows(h).items():
            marks = ", ".join(["%s"] * len(rows[0]))
            with con.cursor() as cur:
                cur.executemany(
                    DIRECTORY_SQL[table].format(marks), [_times(table, r, _dt) for r in rows]
                )
        with con.cursor() as cur:
            for ledger_rows, cons_rows, alloc_rows in h.chunks():
                with cur.copy(f"COPY ledger ({LEDGER_COLS}) FROM STDIN") as copy:
                    copy.write(
                        "".join(
                            f"{ORG}\t{s}\t{_iso(at)}\t{a}\t{m}\t{c}\t{b}\t{af}\t"
                            f"{_n(g)}\t{_n(cid)}\t\\N\t\\N\n"
                            for s, at, a, m, c, b, af, g, cid in ledger_rows
                        )
                    )
                with cur.copy(f"COPY consumptions ({CONS_COLS}) FROM STDIN") as copy:
                    copy.write(
                        "".join(
                            f"{ORG}\t{cid}\t{_iso(at)}\t{f}\t\\N\t\\N\t\\N\t{u}\t{t}\t\\N\t"
                            f"{RATE}\t{COST}\tnull\t\\N\tnull\tpaid\t\\N\t\\N\t\\N\t\\N\t\\N\n"
                            for cid, at, f, u, t in cons_rows
                        )
                    )
                with cur.copy(f"COPY allocations ({ALLOC_COLS}) FROM STDIN") as copy:
                    copy.write("".join(f"{ORG}\t{c}\t{g}\t{COST}\n" for c, g in alloc_rows))
        con.commit()
        con.execute("SET maintenance_work_mem = '256MB'")
        for _, sql in indexes:
            con.execute(sql)
        con.commit()
        con.autocommit = True
        con.execute("VACUUM ANALYZE")  # what autovacuum would have done by now


def _n(value: int | None) -> str:
    return "\\N" if value is None else str(value)


# -- databases -------------------------------------------------------------------------------


@dataclass
class Target:
    backend: str
    size: int
    url: str
    drop: Callable[[], None]
    history: History | None = None
    pool: CreditPool | None = None
    admin: Principal | None = None
    deep_consumption: int = 0


def sqlite_target(size: int, workdir: Path) -> Target:
    path = workdir / f"growth-{size}.db"
    return Target("sqlite", size, f"sqlite:///{path}", lambda: None)


def postgres_target(size: int, admin_url: str) -> Target:
    name = f"bench_growth_{size}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return Target("postgresql", size, admin_url.rsplit("/", 1)[0] + f"/{name}", drop)


def prepare(t: Target) -> float:
    """Migrate, load the history, open the pool; returns the seconds the load took."""
    CreditPool.open(t.url).close()  # the schema, through the migrations
    h = History(t.size, datetime.now(UTC) - timedelta(minutes=1))
    began = time.perf_counter()
    if t.backend == "sqlite":
        load_sqlite(Path(t.url.removeprefix("sqlite:///")), h)
    else:
        load_postgres(t.url.replace("postgresql+psycopg://", "postgresql://"), h)
    seconds = time.perf_counter() - began
    t.history = h
    t.pool = CreditPool.open(t.url)
    key, _ = t.pool.create_key("admin", org_id=ORG, name="growth bench")
    t.admin = Principal(key)
    newest = list(itertools.islice(h.consumption_ids_newest_first(), DEEP))
    t.deep_consumption = newest[min(DEEP, len(newest) - PAGE) - 1]
    return seconds


# -- measuring -------------------------------------------------------------------------------


def timed_ms(call: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return times


def lower_quartile(values: list[float]) -> float:
    return statistics.quantiles(values, n=4)[0]


def consume_calls(t: Target, calls: int, run: str) -> list[float]:
    """Milliseconds of each of ``calls`` consumptions, an idempotency key each."""
    assert t.pool is not None
    pool = t.pool
    times = []
    for i in range(calls):
        began = time.perf_counter()
        pool.consume(
            ORG, FEATURES[i % 2], user_id=f"u{i % USERS:02d}", idempotency_key=f"{run}-{i}"
        )
        times.append((time.perf_counter() - began) * 1000)
    return times


def readers(t: Target) -> dict[str, Callable[[], object]]:
    assert t.pool is not None
    assert t.admin is not None
    pool, admin = t.pool, t.admin
    month_ago = datetime.now(UTC) - timedelta(days=30)
    year_ago = datetime.now(UTC) - timedelta(days=365)
    deep_seq = min(DEEP, t.size - PAGE)
    return {
        "balance()": lambda: pool.balance(ORG),
        "balance(at=30 days ago)": lambda: pool.balance(ORG, at=month_ago),
        "balance(at=a year ago)": lambda: pool.balance(ORG, at=year_ago),
        "consumptions, first page": lambda: pool.consumptions(ORG, limit=PAGE),
        "consumptions, 10k deep": lambda: pool.consumptions(
            ORG, before_id=t.deep_consumption, limit=PAGE
        ),
        "ledger, first page": lambda: pool.ledger(ORG, limit=PAGE),
        "ledger, after entry 10k": lambda: pool.ledger(ORG, after_seq=deep_seq, limit=PAGE),
        "usage page": lambda: web.usage_page(
            pool.db, admin, ORG, web.HistoryFilters(), None, web.CHART_DAYS[0]
        ),
    }


VERIFY_SCRIPT = """
import json, sys, time
from creditpool import CreditPool

def status(field):  # kB, from the kernel's view of this process
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

pool = CreditPool.open(sys.argv[1], migrate_schema=False)
pool.balance(sys.argv[2])  # connect and finish importing before the baseline
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current resident size
before = status("VmRSS")
began = time.perf_counter()
problems = pool.verify(sys.argv[2])
seconds = time.perf_counter() - began
peak = status("VmHWM")
print(json.dumps({"seconds": seconds, "added_mb": (peak - before) / 1024,
                  "peak_mb": peak / 1024, "problems": problems[:5]}))
"""


def verify_in_process(t: Target) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", VERIFY_SCRIPT, t.url, ORG],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    if result["problems"]:
        raise SystemExit(f"verify() found problems at {t.size}: {result['problems']}")
    return result


@dataclass
class Figure:
    name: str
    unit: str
    values: dict[int, float]
    higher_is_better: bool = False
    slack: float = 0.0  # an absolute allowance on top of the ratio (memory)

    def ratio(self, size: int, base: int) -> float:
        v, b = self.values[size], self.values[base]
        if self.higher_is_better:
            return b / v if v else float("inf")
        return v / b if b else float("inf")

    def met(self, size: int, base: int) -> bool:
        if self.ratio(size, base) <= GOAL:
            return True
        return self.slack > 0 and self.values[size] - self.values[base] <= self.slack


def progress(message: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def measure(
    targets: list[Target], calls: int, repeat: int, verify_rounds: int = VERIFY_ROUNDS
) -> list[Figure]:
    sizes = [t.size for t in targets]
    progress("consume")
    consumed: dict[int, list[float]] = {s: [] for s in sizes}
    for t in targets:  # warm up: first calls open connections, fill caches
        consume_calls(t, 20, "warm")
    for r in range(ROUNDS):  # alternate, so that noise hits every size alike
        for t in targets:
            consumed[t.size] += consume_calls(t, calls // ROUNDS, f"run{r}")
    rates = {s: 1000 / lower_quartile(v) for s, v in consumed.items()}
    figures = [Figure("consume", "/s", rates, True)]
    calls_by_target = {t.size: readers(t) for t in targets}
    for name in calls_by_target[sizes[0]]:
        progress(name)
        samples: dict[int, list[float]] = {s: [] for s in sizes}
        for t in targets:
            calls_by_target[t.size][name]()  # warm
        for _ in range(ROUNDS):
            for t in targets:
                samples[t.size] += timed_ms(calls_by_target[t.size][name], repeat)
        figures.append(Figure(name, "ms", {s: lower_quartile(v) for s, v in samples.items()}))
    runs: dict[int, list[dict[str, Any]]] = {t.size: [] for t in targets}
    for _ in range(verify_rounds):
        for t in targets:
            runs[t.size].append(verify_in_process(t))
            progress(f"verify() at {t.size:,}: {runs[t.size][-1]['seconds']:.1f} s")
    verified = {s: min(v, key=lambda run: run["seconds"]) for s, v in runs.items()}
    figures.append(
        Figure(
            "verify() per entry",
            "us",
            {s: v["seconds"] * US / s for s, v in verified.items()},
        )
    )
    figures.append(
        Figure(
            "verify() memory added",
            "MB",
            {s: v["added_mb"] for s, v in verified.items()},
            slack=MEMORY_SLACK_MB,
        )
    )
    figures.append(Figure("verify() total", "s", {s: v["seconds"] for s, v in verified.items()}))
    return figures


def print_table(backend: str, sizes: list[int], figures: list[Figure]) -> None:
    base = sizes[0]
    heads = [f"{s:,}" for s in sizes] + [f"ratio {s:,}" for s in sizes[1:]]
    print(f"\n{backend}: one organization, figures at each size of its ledger")
    print("| figure | " + " | ".join(heads) + " | goal |")
    print("|---" * (len(heads) + 2) + "|")
    for f in figures:
        cells = [_fmt(f.values[s], f.unit) for s in sizes]
        if f.name == "verify() total":
            cells += ["" for _ in sizes[1:]]
            goal = "(linear: see per entry)"
        else:
            cells += [f"{f.ratio(s, base):.2f}x" for s in sizes[1:]]
            verdicts = ", ".join("met" if f.met(s, base) else f"MISSED at {s:,}" for s in sizes[1:])
            limit = f"<= {GOAL}x" + (f" or +{MEMORY_SLACK_MB:.0f} MB" if f.slack else "")
            goal = f"{limit}: {verdicts}"
        print(f"| {f.name} | " + " | ".join(cells) + f" | {goal} |")
    sys.stdout.flush()


def _fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "us":
        return f"{value:.1f} us"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.1f} s"


# -- EXPLAIN ---------------------------------------------------------------------------------

EXPLAINED = {
    "balance(at=a year ago): Left then, as it was (by seq)": (
        "SELECT total_after FROM ledger WHERE org_id = :o AND at <= :y ORDER BY seq DESC LIMIT 1"
    ),
    "balance(at=a year ago): Left then, as it is (by at, seq)": (
        "SELECT total_after FROM ledger WHERE org_id = :o AND at <= :y"
        " ORDER BY at DESC, seq DESC LIMIT 1"
    ),
    "ledger page after seq": (
        "SELECT * FROM ledger WHERE org_id = :o AND seq > :s ORDER BY seq LIMIT 51"
    ),
    "consumptions page before id": (
        "SELECT * FROM consumptions WHERE org_id = :o AND id < :i ORDER BY id DESC LIMIT 51"
    ),
    "usage chart (30 days)": (
        "SELECT feature, sum(cost) FROM consumptions WHERE org_id = :o AND status = 'paid'"
        " AND created_at >= :t GROUP BY feature"
    ),
}


def explain(t: Target) -> None:
    assert t.pool is not None
    month_ago = datetime.now(UTC) - timedelta(days=30)
    year_ago = datetime.now(UTC) - timedelta(days=365)
    params = {"o": ORG, "t": month_ago, "y": year_ago, "s": DEEP, "i": t.deep_consumption}
    engine = t.pool.db.engine
    print(f"\nEXPLAIN ({t.backend}, {t.size:,} entries)")
    with engine.connect() as conn:
        from sqlalchemy import text

        for name, sql in EXPLAINED.items():
            prefix = "EXPLAIN QUERY PLAN " if t.backend == "sqlite" else "EXPLAIN ANALYZE "
            bound = dict(params)
            if t.backend == "sqlite":
                bound["t"], bound["y"] = _iso(_us(month_ago)), _iso(_us(year_ago))
            rows = conn.execute(text(prefix + sql), bound).all()
            print(f"-- {name}")
            for row in rows:
                print("   ", row[-1] if t.backend == "sqlite" else row[0])


# -- main ------------------------------------------------------------------------------------


def postgres_admin_url() -> str:
    return (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )


def run_backend(backend: str, sizes: list[int], args: argparse.Namespace) -> None:
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="growth-") as workdir:
        try:
            for size in sizes:
                if backend == "sqlite":
                    t = sqlite_target(size, Path(workdir))
                else:
                    t = postgres_target(size, postgres_admin_url())
                targets.append(t)
                seconds = prepare(t)
                print(f"{backend}: loaded {size:,} entries in {seconds:.1f} s", flush=True)
            if args.explain:
                for t in targets:
                    explain(t)
            figures = measure(targets, args.calls, args.repeat, args.verify_rounds)
            print_table(backend, sizes, figures)
        finally:
            for t in targets:
                if t.pool is not None:
                    t.pool.close()
                t.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="ledger entries per run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--calls", type=int, default=1000, help="consumptions timed per size")
    parser.add_argument("--repeat", type=int, default=20, help="calls per read figure and round")
    parser.add_argument("--explain", action="store_true", help="print the plans of key queries")
    parser.add_argument(
        "--verify-rounds", type=int, default=VERIFY_ROUNDS, help="verify() runs per size"
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(","))
    if sizes[0] < 1_000:
        parser.error("the smallest size must be at least 1,000")
    os.environ.setdefault("CREDITPOOL_SECRET_KEY", "growth bench key, not a secret")
    for backend in args.backends.split(","):
        run_backend(backend.strip(), sizes, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
