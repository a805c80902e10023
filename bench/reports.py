"""The usage report's rows per second through a real server, against PostgreSQL's COPY.

    uv run python bench/reports.py [--rows N] [--runs R] [--keep]

Creates a fresh database from CREDITPOOL_TEST_POSTGRES_URL (default: the local test
server), loads one organization with N (default 1,000,000) paid consumptions in one
``INSERT ... SELECT generate_series`` (valid as far as the report reads them: one grant
covers them all; no allocation or ledger rows), starts ``uvicorn`` on it, downloads the
usage report over HTTP with httpx streaming, and reads the server's peak resident memory
(VmHWM in /proc/<pid>/status). The baseline is ``COPY (the report's own SELECT) TO STDOUT
WITH CSV`` through psycopg, in the same run, on the same rows. Prints rows/s, the ratio,
the time to the first byte and the peak memory; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
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

LOAD_SQL = """
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


def libpq(url: str) -> str:
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def with_database(url: str, name: str) -> str:
    return f"{url.rpartition('/')[0]}/{name}"


def load(url: str, rows: int) -> str:
    """A migrated database with one organization and ``rows`` paid consumptions; returns
    an admin key's token."""
    with CreditPool.open(url) as pool:
        pool.create_org(ORG, name="Bench Inc.", timezone="Europe/Berlin")
        pool.grant(ORG, str(rows), available_from=START)
        token = pool.create_key("admin", org_id=ORG, name="bench")[1]
    started = time.perf_counter()
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(LOAD_SQL, {"org": ORG, "start": START, "rows": rows})
        conn.execute("ANALYZE consumptions")
    print(f"loaded {rows:,} consumptions in {time.perf_counter() - started:.1f} s")
    return token


def report_range(rows: int) -> tuple[str, str]:
    last = datetime.fromtimestamp(START.timestamp() + rows + 86_400, UTC)
    return START.date().isoformat(), last.date().isoformat()


def copy_baseline(url: str, rows: int) -> tuple[float, int]:
    """COPY of the report's SELECT to CSV, read through psycopg: (seconds, rows)."""
    lo, hi = START, datetime.fromtimestamp(START.timestamp() + rows + 86_400 * 2, UTC)
    statement = f"COPY ({USAGE_SQL['postgresql']}) TO STDOUT WITH CSV"
    lines = 0
    started = time.perf_counter()
    params = {"org_id": ORG, "lo": lo, "hi": hi}
    with (
        psycopg.connect(libpq(url)) as conn,
        conn.cursor() as cur,
        cur.copy(statement, params) as copy,
    ):
        for block in copy:
            lines += bytes(block).count(b"\n")
    return time.perf_counter() - started, lines


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


def download(base: str, token: str, rows: int) -> tuple[float, float, int]:
    """The usage report over HTTP: (seconds, seconds to the first byte, rows)."""
    first, last = report_range(rows)
    headers = {"Authorization": f"Bearer {token}"}
    lines = 0
    first_byte = 0.0
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        params = {"from": first, "to": last}
        with client.stream("GET", f"/v1/orgs/{ORG}/reports/usage", params=params) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_raw():
                if not first_byte:
                    first_byte = time.perf_counter() - started
                lines += chunk.count(b"\n")
    return time.perf_counter() - started, first_byte, lines - 1  # the header row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2, help="best of this many runs")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    admin = libpq(os.environ.get("CREDITPOOL_TEST_POSTGRES_URL") or DEFAULT_PG_URL)
    name = f"cp_bench_reports_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin, name)
    try:
        token = load(url, args.rows)
        copies = [copy_baseline(url, args.rows) for _ in range(args.runs)]
        copy_s, copy_rows = min(copies)
        with tempfile.TemporaryDirectory() as tmp:
            process, base = start_server(url, Path(tmp) / "server.log")
            try:
                idle_mb = peak_mb(process.pid)
                runs = [download(base, token, args.rows) for _ in range(args.runs)]
                ours_s, first_byte_s, ours_rows = min(runs)
                peak = peak_mb(process.pid)
            finally:
                process.terminate()
                process.wait(timeout=10)
        report(args.rows, copy_s, copy_rows, ours_s, first_byte_s, ours_rows, idle_mb, peak)
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(
    rows: int,
    copy_s: float,
    copy_rows: int,
    ours_s: float,
    first_byte_s: float,
    ours_rows: int,
    idle_mb: float,
    peak: float,
) -> None:
    assert copy_rows == ours_rows == rows, (copy_rows, ours_rows, rows)
    copy_rate, ours_rate = rows / copy_s, rows / ours_s
    ratio = ours_rate / copy_rate
    print(f"COPY ... TO STDOUT WITH CSV  {copy_rate:>12,.0f} rows/s  ({copy_s:.2f} s)")
    print(f"GET .../reports/usage (CSV)  {ours_rate:>12,.0f} rows/s  ({ours_s:.2f} s)")
    print(f"ratio                        {ratio:>12.2f}   (goal >= {GOAL_RATIO})")
    print(f"first byte after             {first_byte_s * 1000:>12.1f} ms")
    print(f"server peak memory (VmHWM)   {peak:>12.1f} MB  (idle {idle_mb:.1f} MB;", end=" ")
    print(f"goal < {GOAL_PEAK_MB} MB)")


if __name__ == "__main__":
    main()
