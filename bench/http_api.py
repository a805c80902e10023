"""Consumptions per second over HTTP, against the raw SQL of a consumption.

    uv run python bench/http_api.py [--seconds S] [--warmup S] [--workers N]

Creates a fresh PostgreSQL database (from CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default; dropped at the end), fills 1,000
organizations, starts ``creditpool serve --workers N`` on 127.0.0.1 as a separate process
group, and drives it from this process (asyncio + one ``httpx.AsyncClient`` whose connection
pool holds one connection per client) with ``POST /v1/orgs/{org}/consumptions``, each
request with its own ``Idempotency-Key``: (a) one hot organization, (b) 1,000 organizations
taken round-robin, at 8 and 32 concurrent clients. Right after each, the baseline at the
same concurrency: the raw SQL of a consumption (BEGIN; SELECT ... FOR UPDATE of the org
row; UPDATE its balance; INSERT a consumption row with the same columns and indexes as our
``consumptions`` table, from ``bench/consume.py``; COMMIT), one psycopg connection per
client thread. Each measurement is a warm-up then a fixed time window; the rate counts the
requests that completed inside the window, the latencies are theirs.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called http.py: with its folder first on sys.path, ``import http`` (httpx,
# urllib) would import this script. Move the folder to the end: the standard library wins,
# ``import consume`` (bench/consume.py) still works.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE] + [_HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402

from consume import (  # noqa: E402
    COST_UNITS,
    DEFAULT_PG_URL,
    FEATURE,
    GRANT,
    RAW_CONSUMPTIONS,
    RAW_INSERT,
    RAW_ORGS,
    org_ids,
    raw_values,
)
from creditpool import CreditPool  # noqa: E402

ORG_COUNT = 1000
CLIENTS = (8, 32)
GOAL_MANY = 0.5  # 1,000 organizations: ours >= 0.5 x raw
GOAL_HOT = 1.0  # one organization: ours >= 1.0 x raw on one row
GOAL_SCALING = 0.9  # 32 clients >= 0.9 x 8 clients
BODY = {
    "feature": FEATURE,
    "feature_name": "Q3 pipeline",
    "action": "publish",
    "breakdown": {"calls": 12, "emails": 40, "web_searches": 3},
    "requests": 2,
}


@dataclass(frozen=True, slots=True)
class Sample:
    rate: float
    p50_ms: float
    p99_ms: float
    failures: int
    completed: int  # warm-up included
    server_cpu_ms: float = 0.0  # CPU of the server's processes per request (0 for raw)
    load_cpu_ms: float = 0.0  # CPU of this process per request


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    clients: int
    ours: Sample
    raw: Sample

    @property
    def ratio(self) -> float:
        return self.ours.rate / self.raw.rate


class Window:
    """Completions and latencies of the requests that finished inside [start, stop)."""

    def __init__(self, warmup_s: float, seconds: float) -> None:
        self.start = time.perf_counter() + warmup_s
        self.stop = self.start + seconds
        self.latencies: list[float] = []
        self.failures = 0
        self.completed = 0
        self._lock = threading.Lock()

    def running(self) -> bool:
        return time.perf_counter() < self.stop

    def record(self, began: float, ok: bool) -> None:
        ended = time.perf_counter()
        with self._lock:
            self.completed += 1
            if not self.start <= ended < self.stop:
                return
            if ok:
                self.latencies.append(ended - began)
            else:
                self.failures += 1

    def sample(self) -> Sample:
        lat = sorted(self.latencies)
        if not lat:
            return Sample(0.0, 0.0, 0.0, self.failures, self.completed)
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        rate = len(lat) / (self.stop - self.start)
        return Sample(rate, p50 * 1e3, p99 * 1e3, self.failures, self.completed)


class Picker:
    """Organizations round-robin, shared by every client (one counter)."""

    def __init__(self, orgs: list[str]) -> None:
        self.orgs = orgs
        self.n = 0
        self._lock = threading.Lock()

    def next(self) -> tuple[int, str]:
        with self._lock:
            self.n += 1
            return self.n, self.orgs[self.n % len(self.orgs)]


# -- ours: HTTP ----------------------------------------------------------------------------


async def http_run(
    base_url: str, secret: str, orgs: list[str], clients: int, warmup_s: float, seconds: float
) -> Sample:
    """``clients`` tasks, each with its own ``httpx.AsyncClient`` holding one keep-alive
    connection. (One shared client with a pool of ``clients`` connections cost this process
    ~3.5 ms of CPU per request at 32 clients against ~1.3 ms at 8: httpcore's pool scans
    every queued request on each change, so the load generator took the server's CPU.)"""
    run = uuid.uuid4().hex[:8]
    picker = Picker(orgs)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {secret}"}
    window = Window(warmup_s, seconds)
    errors: list[str] = []

    async def one_client() -> None:
        async with httpx.AsyncClient(
            base_url=base_url, limits=limits, headers=headers, timeout=60.0
        ) as client:
            while window.running():
                n, org = picker.next()
                body = dict(BODY, user_id=f"u-{n % 40}")
                began = time.perf_counter()
                response = await client.post(
                    f"/v1/orgs/{org}/consumptions",
                    json=body,
                    headers={"Idempotency-Key": f"{run}-{n}"},
                )
                ok = response.status_code == 201
                window.record(began, ok)
                if not ok and len(errors) < 3:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    await asyncio.gather(*(one_client() for _ in range(clients)))
    for error in errors:
        print(f"    failed request: {error}", file=sys.stderr)
    return window.sample()


# -- raw: psycopg, one connection per client thread ----------------------------------------

LOCK = "SELECT balance, seq FROM raw_orgs WHERE id = %s FOR UPDATE"
LOWER = "UPDATE raw_orgs SET balance = %s, seq = %s WHERE id = %s"
INSERT = RAW_INSERT["raw"].format("%s")


def prepare_raw(url: str, orgs: list[str]) -> None:
    with psycopg.connect(url) as db, db.transaction():
        db.execute(RAW_ORGS.format(p="raw"))
        for ddl in RAW_CONSUMPTIONS["raw"]:
            db.execute(ddl.format(time="TIMESTAMPTZ", json="JSON"))
        with db.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw_orgs (id, balance, seq) VALUES (%s, %s, 0)",
                [(o, int(GRANT) * 10_000) for o in orgs],
            )


def raw_run(url: str, orgs: list[str], clients: int, warmup_s: float, seconds: float) -> Sample:
    picker = Picker(orgs)
    connections = [psycopg.connect(url) for _ in range(clients)]
    window = Window(warmup_s, seconds)

    def one_client(db: psycopg.Connection[tuple[object, ...]]) -> None:
        while window.running():
            n, org = picker.next()
            began = time.perf_counter()
            with db.transaction():
                row = db.execute(LOCK, (org,)).fetchone()
                assert row is not None
                balance, seq = row
                assert isinstance(balance, int)
                assert isinstance(seq, int)
                if balance < COST_UNITS:
                    raise RuntimeError("raw baseline ran out of credits")
                db.execute(LOWER, (balance - COST_UNITS, seq + 1, org))
                db.execute(INSERT, raw_values("raw", org, seq + 1, n, datetime.now(UTC)))
            window.record(began, True)

    threads = [threading.Thread(target=one_client, args=(db,)) for db in connections]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for db in connections:
            db.close()
    return window.sample()


# -- set-up: database, server --------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"creditpool_http_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_ours(url: str, orgs: list[str]) -> str:
    """Organizations with credits, and a service key's secret."""
    with CreditPool.open(url) as pool:
        for org in orgs:
            pool.create_org(org)
            pool.grant(org, GRANT, granted_by="bench")
        return pool.create_key("service", name="bench")[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str
    pgid: int


@contextmanager
def server(url: str, workers: int, port: int) -> Iterator[Server]:
    """``creditpool serve`` in its own process group; stopped (the whole group) on exit."""
    exe = Path(sys.executable).parent / "creditpool"
    command = [str(exe), "--db", url, "serve", "--workers", str(workers), "--port", str(port)]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, proc, workers)
        yield Server(base_url, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in a process group (Linux /proc)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # After "pid (comm) ": state ppid pgrp session ... utime (14th) stime (15th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], workers: int) -> None:
    deadline = time.monotonic() + 60
    answered = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            # Several answers in a row: every worker has had time to start.
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                answered += 1
                if answered >= 4 * workers:
                    return
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready within 60 s")


def count_consumptions(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM consumptions").fetchone()
        assert row is not None
        count: int = row[0]
        return count


# -- report --------------------------------------------------------------------------------


def print_table(rows: list[Row], workers: int) -> None:
    print(
        f"PostgreSQL, server: creditpool serve --workers {workers}; load: this process "
        f"(httpx/asyncio; raw: psycopg threads). {os.cpu_count()} cores shared by load "
        "generator, server and PostgreSQL (and other work on the machine)."
    )
    header = (
        f"{'scenario':<11} {'clients':>7} {'ours/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'raw/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}  {'goal':<13} "
        f"{'srv cpu':>7} {'load cpu':>8}"
    )
    print(header)
    print("-" * (len(header) + 12))
    for r in rows:
        goal = GOAL_HOT if r.scenario == "1 org" else GOAL_MANY
        verdict = "ok" if r.ratio >= goal else "MISSED"
        failed = f"  ({r.ours.failures} failed)" if r.ours.failures else ""
        print(
            f"{r.scenario:<11} {r.clients:>7} {r.ours.rate:>8,.0f} {r.ours.p50_ms:>7.1f} "
            f"{r.ours.p99_ms:>7.1f} {r.raw.rate:>8,.0f} {r.raw.p50_ms:>7.1f} "
            f"{r.raw.p99_ms:>7.1f} {r.ratio:>6.2f}  {f'>= {goal} {verdict}':<13} "
            f"{r.ours.server_cpu_ms:>7.2f} {r.ours.load_cpu_ms:>8.2f}{failed}"
        )
    print(
        "(srv cpu: CPU ms of all server processes per request; load cpu: CPU ms of this "
        "load process per request)\n"
    )
    for scenario in dict.fromkeys(r.scenario for r in rows):
        by_clients = {r.clients: r for r in rows if r.scenario == scenario}
        if len(by_clients) < 2:
            continue
        lo, hi = by_clients[min(by_clients)], by_clients[max(by_clients)]
        scaling = hi.ours.rate / lo.ours.rate
        verdict = "ok" if scaling >= GOAL_SCALING else "MISSED"
        print(
            f"{scenario}: ours at {hi.clients} clients / at {lo.clients} = {scaling:.2f} "
            f"(>= {GOAL_SCALING} {verdict}); raw {hi.raw.rate / lo.raw.rate:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed window per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before it")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    args = parser.parse_args(argv)
    seconds: float = args.seconds
    warmup: float = args.warmup
    workers: int = args.workers

    admin_url = (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )
    orgs = org_ids(ORG_COUNT)
    scenarios = [("1 org", orgs[:1]), (f"{ORG_COUNT:,} orgs", orgs)]
    rows: list[Row] = []
    began = time.monotonic()
    with fresh_database(admin_url) as url:
        print(f"setting up {ORG_COUNT:,} organizations ...", file=sys.stderr, flush=True)
        secret = prepare_ours(url, orgs)
        prepare_raw(url, orgs)
        with server(url, workers, free_port()) as srv:
            print(f"server ready at {srv.base_url}", file=sys.stderr, flush=True)
            for scenario, subset in scenarios:
                for clients in CLIENTS:
                    cpu = (group_cpu_s(srv.pgid), time.process_time())
                    ours = asyncio.run(
                        http_run(srv.base_url, secret, subset, clients, warmup, seconds)
                    )
                    done = max(ours.completed, 1) / 1e3
                    ours = dataclasses.replace(
                        ours,
                        server_cpu_ms=(group_cpu_s(srv.pgid) - cpu[0]) / done,
                        load_cpu_ms=(time.process_time() - cpu[1]) / done,
                    )
                    cpu_load = time.process_time()
                    raw = raw_run(url, subset, clients, warmup, seconds)
                    raw = dataclasses.replace(
                        raw, load_cpu_ms=(time.process_time() - cpu_load) / raw.completed * 1e3
                    )
                    rows.append(Row(scenario, clients, ours, raw))
                    print(
                        f"  {scenario}, {clients} clients: ours {ours.rate:,.0f}/s, "
                        f"raw {raw.rate:,.0f}/s",
                        file=sys.stderr,
                        flush=True,
                    )
        stored = count_consumptions(url)
    print(f"({stored:,} consumptions stored; {time.monotonic() - began:.0f} s in all)\n")
    print_table(rows, workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
