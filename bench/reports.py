"""The usage report's rows per second through a real server, against the database's own export.

    uv run python bench/reports.py [--rows N] [--runs R] [--keep] [--no-sqlite]

PostgreSQL: creates a fresh database from CREDITPOOL_TEST_POSTGRES_URL (default: the local
test server), loads one organization (Europe/Berlin) with N (default 1,000,000) paid
consumptions in one ``INSERT ... SELECT generate_series`` (valid as far as the report reads
them: one grant covers them all; no allocation or ledger rows), starts ``uvicorn`` on it
(one worker), downloads the usage report over HTTP with httpx streaming, and reads the
server's peak resident memory (VmHWM in /proc/<pid>/status). The baseline is ``COPY (the
report's SELECT of the stored columns) TO STDOUT WITH CSV`` through psycopg, in the same run,
on the same rows. SQLite, beside it: the same rows in a temporary file (one ``INSERT ...
SELECT`` over a recursive CTE), the same download; its baseline is the same SELECT read
through the bare ``sqlite3`` module (it has no COPY). Best of ``--runs`` for each figure.
Prints rows/s, the ratio, the time to the first byte (the header, sent before the query)
and to the first row, and the peak memory, each with its goal; databases are dropped at
the end (``--keep`` keeps the PostgreSQL one).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

from creditpool import CreditPool
from creditpool.repositories.reports import USAGE_SQL
from creditpool.storage.engine import normalize_url

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
START = datetime(2026, 1, 1, tzinfo=UTC)
ORG = "bench"
GOAL_RATIO = 0.5
GOAL_PEAK_MB = 150
GOAL_FIRST_BYTE_MS = 200

PG_LOAD_SQL = """
INSERT INTO consumptions (org_id, id, created_at, feature, feature_name, action, integration,
    user_id, team_id, quantity, rate, cost, breakdown, requests, metadata, status)
SELECT %(org)s, 1000 + g, %(start)s + g * interval '1 second',
    (ARRAY['report', 'action_plan', 'agent_recommendation'])[1 + g %% 3],
    'Tracker ' || (g %% 50), (ARRAY['publish', 'duplicate', 'generate', 'accept'])[1 + g %% 4],
    CASE WHEN g %% 5 = 0 THEN 'Salesforce MCP' END, 'user-' || (g %% 200), NULL, NULL,
    50000000, 5000,
    CAST('{"calls": ' || (g %% 20) || ', "emails": ' || (g %% 7) || ', "web_searches": 1}' AS JSON),
    1 + g %% 3, NULL, 'paid'
FROM generate_series(1, %(rows)s) AS g
"""
# The same rows on SQLite (instants as the fixed-width UTC text ``UTCDateTime`` stores).
SQLITE_LOAD_SQL = """
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :rows)
INSERT INTO consumptions (org_id, id, created_at, feature, feature_name, action, integration,
    user_id, team_id, quantity, rate, cost, breakdown, requests, metadata, status)
SELECT :org, 1000 + g,
    strftime('%Y-%m-%dT%H:%M:%S', :start, '+' || g || ' seconds') || '.000000+00:00',
    CASE g % 3 WHEN 0 THEN 'report' WHEN 1 THEN 'action_plan' ELSE 'agent_recommendation' END,
    'Tracker ' || (g % 50),
    CASE g % 4 WHEN 0 THEN 'publish' WHEN 1 THEN 'duplicate' WHEN 2 THEN 'generate'
        ELSE 'accept' END,
    CASE WHEN g % 5 = 0 THEN 'Salesforce MCP' END, 'user-' || (g % 200), NULL, NULL,
    50000000, 5000,
    '{"calls": ' || (g % 20) || ', "emails": ' || (g % 7) || ', "web_searches": 1}',
    1 + g % 3, 'null', 'paid'
FROM s
"""


@dataclass(frozen=True)
class Download:
    seconds: float
    first_byte: float  # the header, sent before the query runs
    first_row: float  # the first record after it
    rows: int


@dataclass(frozen=True)
class Result:
    backend: str
    baseline: str
    baseline_s: float
    ours: Download
    idle_mb: float
    peak_mb: float


def libpq(url: str) -> str:
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def with_database(url: str, name: str) -> str:
    return f"{url.rpartition('/')[0]}/{name}"


def prepare(url: str, rows: int) -> str:
    """A migrated database with one organization, one grant for all; an admin key's token."""
    with CreditPool.open(url) as pool:
        pool.create_org(ORG, name="Bench Inc.", timezone="Europe/Berlin")
        pool.grant(ORG, str(rows), available_from=START)
        return pool.create_key("admin", org_id=ORG, name="bench")[1]


def load_postgresql(url: str, rows: int) -> str:
    token = prepare(url, rows)
    started = time.perf_counter()
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(PG_LOAD_SQL, {"org": ORG, "start": START, "rows": rows})
        conn.execute("ANALYZE consumptions")
    print(f"PostgreSQL: loaded {rows:,} consumptions in {time.perf_counter() - started:.1f} s")
    return token


def load_sqlite(path: Path, rows: int) -> str:
    token = prepare(f"sqlite:///{path}", rows)
    started = time.perf_counter()
    with sqlite3.connect(path) as conn:
        start = START.strftime("%Y-%m-%d %H:%M:%S")
        conn.execute(SQLITE_LOAD_SQL, {"org": ORG, "start": start, "rows": rows})
        conn.execute("ANALYZE")
    print(f"SQLite: loaded {rows:,} consumptions in {time.perf_counter() - started:.1f} s")
    return token


def bounds(rows: int) -> dict[str, object]:
    hi = datetime.fromtimestamp(START.timestamp() + rows + 86_400 * 2, UTC)
    return {"org_id": ORG, "lo": START, "hi": hi}


def copy_baseline(url: str, rows: int) -> float:
    """COPY of the report's SELECT (stored columns) to CSV, read through psycopg."""
    statement = f"COPY ({USAGE_SQL['postgresql']}) TO STDOUT WITH CSV"
    lines = 0
    started = time.perf_counter()
    with (
        psycopg.connect(libpq(url)) as conn,
        conn.cursor() as cur,
        cur.copy(statement, bounds(rows)) as copy,
    ):
        for block in copy:
            lines += bytes(block).count(b"\n")
    assert lines == rows, (lines, rows)
    return time.perf_counter() - started


def sqlite_baseline(path: Path, rows: int) -> float:
    """The report's SELECT read row by row through the bare sqlite3 module."""
    params = bounds(rows)
    params["lo"] = START.isoformat(timespec="microseconds")
    params["hi"] = params["hi"].isoformat(timespec="microseconds")  # type: ignore[attr-defined]
    started = time.perf_counter()
    with sqlite3.connect(path) as conn:
        count = sum(1 for _ in conn.execute(USAGE_SQL["sqlite"], params))
    assert count == rows, (count, rows)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "CREDITPOOL_DATABASE_URL": url}
    command = [
        sys.executable, "-m", "uvicorn", "creditpool.server.run:app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(log.read_text())


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def download(base: str, token: str, rows: int) -> Download:
    """The usage report over HTTP, whole range."""
    last = datetime.fromtimestamp(START.timestamp() + rows + 86_400, UTC)
    params = {"from": START.date().isoformat(), "to": last.date().isoformat()}
    headers = {"Authorization": f"Bearer {token}"}
    lines = 0
    first_byte = first_row = 0.0
    started = time.perf_counter()
    path = f"/v1/orgs/{ORG}/reports/usage"
    with (
        httpx.Client(base_url=base, headers=headers, timeout=600) as client,
        client.stream("GET", path, params=params) as answer,
    ):
        answer.raise_for_status()
        for chunk in answer.iter_raw():
            if not first_byte:
                first_byte = time.perf_counter() - started
            lines += chunk.count(b"\n")
            if not first_row and lines > 1:
                first_row = time.perf_counter() - started
    assert lines - 1 == rows, (lines - 1, rows)  # the header row
    return Download(time.perf_counter() - started, first_byte, first_row, lines - 1)


def serve_and_download(url: str, token: str, rows: int, runs: int) -> tuple[Download, float, float]:
    """Best-of-``runs`` download from a fresh server; (download, idle MB, peak MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        process, base = start_server(url, Path(tmp) / "server.log")
        try:
            idle = peak_mb(process.pid)
            runs_ = [download(base, token, rows) for _ in range(runs)]
            peak = peak_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=10)
    best = min(runs_, key=lambda d: d.seconds)
    return (
        Download(
            best.seconds,
            min(d.first_byte for d in runs_),
            min(d.first_row for d in runs_),
            best.rows,
        ),
        idle,
        peak,
    )


def bench_postgresql(admin: str, rows: int, runs: int, keep: bool) -> Result:
    name = f"cp_bench_reports_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    try:
        token = load_postgresql(url, rows)
        baseline = min(copy_baseline(url, rows) for _ in range(runs))
        ours, idle, peak = serve_and_download(url, token, rows, runs)
        return Result("PostgreSQL", "COPY ... TO STDOUT WITH CSV", baseline, ours, idle, peak)
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_sqlite(rows: int, runs: int) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        token = load_sqlite(path, rows)
        baseline = min(sqlite_baseline(path, rows) for _ in range(runs))
        ours, idle, peak = serve_and_download(f"sqlite:///{path}", token, rows, runs)
        return Result("SQLite", "SELECT via sqlite3 (no COPY)", baseline, ours, idle, peak)


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(rows: int, results: list[Result]) -> None:
    print(f"\nusage report, {rows:,} rows, best of the runs")
    print(f"| | {' | '.join(r.backend for r in results)} | goal (PostgreSQL) |")
    print(f"|---|{'---:|' * len(results)}---|")

    def line(label: str, cells: list[str], goal: str = "") -> None:
        print(f"| {label} | {' | '.join(cells)} | {goal} |")

    line("baseline", [r.baseline for r in results])
    line("baseline rows/s", [f"{rows / r.baseline_s:,.0f} ({r.baseline_s:.2f} s)" for r in results])
    line(
        "GET .../reports/usage (CSV) rows/s",
        [f"{rows / r.ours.seconds:,.0f} ({r.ours.seconds:.2f} s)" for r in results],
    )
    ratios = [r.baseline_s / r.ours.seconds for r in results]
    pg = results[0]
    line(
        "ratio to baseline",
        [f"**{x:.2f}**" for x in ratios],
        f">= {GOAL_RATIO}: {met(ratios[0] >= GOAL_RATIO)}",
    )
    line(
        "first byte (the header)",
        [f"{r.ours.first_byte * 1000:.0f} ms" for r in results],
        f"< {GOAL_FIRST_BYTE_MS} ms: {met(pg.ours.first_byte * 1000 < GOAL_FIRST_BYTE_MS)}",
    )
    line("first row", [f"{r.ours.first_row * 1000:.0f} ms" for r in results])
    line(
        "server peak memory (VmHWM)",
        [f"{r.peak_mb:.0f} MB (idle {r.idle_mb:.0f})" for r in results],
        f"< {GOAL_PEAK_MB} MB: {met(pg.peak_mb < GOAL_PEAK_MB)}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2, help="best of this many runs")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    admin = libpq(os.environ.get("CREDITPOOL_TEST_POSTGRES_URL") or DEFAULT_PG_URL)
    results = [bench_postgresql(admin, args.rows, args.runs, args.keep)]
    if not args.no_sqlite:
        results.append(bench_sqlite(args.rows, args.runs))
    table(args.rows, results)


if __name__ == "__main__":
    main()
