"""Consumptions per second over HTTP: creditpool against a hand-rolled endpoint, load by wrk.

    uv run python bench/http_api.py [--seconds 10] [--warmup 3] [--workers 2]
                                    [--only 1|1000] [--connections 8,32] [--profile DIR]

Creates a fresh PostgreSQL database (CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default; dropped at the end) with 1,000
organizations, and starts two servers on 127.0.0.1, each in its own process group with the
same number of uvicorn workers: ``creditpool serve --workers N`` and ``bench/handrolled.py``
(the endpoint a vendor would write: bearer key, pydantic body, one transaction that locks
the org row, lowers its balance refusing to go below zero and inserts a consumption row).
The load is wrk (C, one thread by default) with ``bench/http_consume.lua``: every request
``POST /v1/orgs/{org}/consumptions`` with its own ``Idempotency-Key``; one hot organization,
or 1,000 taken round-robin; 8 and 32 connections. For each scenario the two servers are
measured back to back: a warm-up, then a timed window. Printed per scenario: rate (2xx
answers per second), p50 and p99 (wrk's latency distribution), server CPU per request (all
processes of the server's group, from /proc), PostgreSQL CPU per request (every
``postgres`` process, so other work on the machine shows there too), the non-2xx count,
the ratio to the hand-rolled rate, and the goals beside them. At the end the balances are
checked: each organization's balance equals its grant minus the charges stored, and the
charges stored cover every 2xx answer.

wrk is the Debian package ``wrk``: installed here with apt-get when missing and running as
root, else the benchmark stops and says how to install it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg

from consume import COST_UNITS, DEFAULT_PG_URL, GRANT, RAW_CONSUMPTIONS, RAW_ORGS, org_ids
from creditpool import CreditPool

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "http_consume.lua"
ORG_COUNT = 1000
CONNECTIONS = (8, 32)
GOAL_MANY = 1.0  # 1,000 organizations: creditpool >= 1.0 x hand-rolled
GOAL_HOT = 1.5  # one organization at 32 connections: >= 1.5 x (group commit)
GOAL_CPU_MS = 1.0  # server CPU per consume
COST = Decimal(COST_UNITS) / 10_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- wrk -----------------------------------------------------------------------------------


def wrk_path() -> str:
    """wrk, installed from Debian when missing (as root), else a clear stop."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(
            "wrk is not installed: run `sudo apt-get install -y wrk` (Debian/Ubuntu), then again"
        )
    print("installing wrk (apt-get install -y wrk) ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get did not install wrk")
    return found


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def rate(self) -> float:
        return self.ok / self.seconds


def wrk(
    exe: str, base_url: str, token: str, orgs: int, connections: int, seconds: float, threads: int
) -> Load:
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_ORGS=str(orgs), BENCH_RUN=uuid.uuid4().hex[:10])
    command = [
        exe,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(SCRIPT),
        base_url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        non_2xx=figures["non_2xx"],
        socket_errors=sum(figures[k] for k in ("connect", "read", "write", "timeout")),
        p50_ms=figures["p50_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3,
    )


# -- CPU from /proc ------------------------------------------------------------------------


def _stat_fields(pid: str) -> tuple[str, list[str]] | None:
    try:
        stat = (Path("/proc") / pid / "stat").read_text()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    # After "pid (comm) ": state ppid pgrp session ... utime (14th) stime (15th).
    return comm, stat[stat.rindex(")") + 2 :].split()


def cpu_s(pgid: int | None = None, comm: str | None = None) -> float:
    """User + system CPU seconds of every live process in a process group, or of every
    process with that command name."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _stat_fields(entry.name)
        if found is None:
            continue
        name, fields = found
        if (pgid is not None and int(fields[2]) == pgid) or (comm is not None and name == comm):
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def connections_per_worker(port: int) -> str:
    """How the established connections to ``port`` are spread over the server's processes
    (e.g. ``16/16``, most first): read while the load runs."""
    listed = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", listed):
        counts[pid] = counts.get(pid, 0) + 1
    return "/".join(str(n) for n in sorted(counts.values(), reverse=True)) or "?"


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat_fields(entry.name)
            if found is not None and int(found[1][2]) == pgid:
                pids.append(int(entry.name))
    return pids


# -- servers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    base_url: str
    pgid: int
    token: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def started(
    name: str, command: list[str], env: dict[str, str], port: int, token: str, ready: str
) -> Iterator[Server]:
    """A server in its own process group; the whole group is stopped on exit."""
    proc = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, env=dict(os.environ, **env)
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url + ready, proc)
        yield Server(name, base_url, proc.pid, token)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    answered = 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                answered += 1
                if answered >= 10:  # several in a row: every worker has had time to start
                    return
                continue
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready within 60 s")


def creditpool_server(url: str, workers: int, token: str) -> Iterator[Server]:
    port = free_port()
    exe = Path(sys.executable).parent / "creditpool"
    command = [str(exe), "--db", url, "serve", "--workers", str(workers), "--port", str(port)]
    return started("creditpool", command, {}, port, token, "/readyz")


def handrolled_server(url: str, workers: int, token: str) -> Iterator[Server]:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "handrolled:app", "--app-dir", str(HERE),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    env = {
        "HANDROLLED_DATABASE_URL": url,
        "HANDROLLED_KEY_SHA256": hashlib.sha256(token.encode()).hexdigest(),
    }
    return started("hand-rolled", command, env, port, token, "/openapi.json")


# -- database ------------------------------------------------------------------------------


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


def check_balances(url: str, orgs: list[str], answered: dict[str, int]) -> list[str]:
    """Each organization's balance is its grant minus its stored charges, and the charges
    stored cover every 2xx answer (a request in flight when wrk stopped may add one)."""
    lines = []
    with psycopg.connect(url) as db:
        ours = dict(db.execute("SELECT org_id, count(*) FROM consumptions GROUP BY org_id"))
        raw = {
            org: (balance, count)
            for org, balance, count in db.execute(
                "SELECT o.id, o.balance, count(c.id) FROM raw_orgs o"
                " LEFT JOIN raw_consumptions c ON c.org_id = o.id GROUP BY o.id, o.balance"
            )
        }
    wrong = []
    with CreditPool.open(url, migrate_schema=False) as pool:
        for org in orgs:
            left = pool.balance(org).left
            if left != Decimal(GRANT) - COST * ours.get(org, 0):
                wrong.append(f"{org}: left {left}, charges {ours.get(org, 0)}")
    raw_wrong = [org for org, (b, n) in raw.items() if b != int(GRANT) * 10_000 - COST_UNITS * n]
    stored = sum(ours.values())
    lines.append(
        f"creditpool: {stored:,} charges stored for {answered['creditpool']:,} 2xx answers; "
        + ("every balance = grant - charges: ok" if not wrong else f"BALANCES WRONG: {wrong[:5]}")
    )
    raw_stored = sum(n for _, n in raw.values())
    lines.append(
        f"hand-rolled: {raw_stored:,} charges stored for {answered['hand-rolled']:,} 2xx "
        "answers; "
        + ("every balance = grant - charges: ok" if not raw_wrong else f"WRONG: {raw_wrong[:5]}")
    )
    for name, count in (("creditpool", stored), ("hand-rolled", raw_stored)):
        if count < answered[name]:
            lines.append(f"{name}: FEWER CHARGES STORED THAN 2xx ANSWERS")
    return lines


# -- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    load: Load
    server_cpu_ms: float
    pg_cpu_ms: float
    warmup_ok: int = 0  # 2xx answers of the warm-up run
    split: str = "?"  # the connections per worker process, read halfway through


@dataclass(frozen=True, slots=True)
class Row:
    orgs: int
    connections: int
    ours: Sample
    theirs: Sample | None  # None with --only-ours

    @property
    def ratio(self) -> float:
        if self.theirs is None:
            return math.nan
        return self.ours.load.rate / max(self.theirs.load.rate, 1e-9)

    @property
    def goal(self) -> float | None:
        if self.orgs > 1:
            return GOAL_MANY
        return GOAL_HOT if self.connections >= 32 else None


def measure(
    exe: str, srv: Server, orgs: int, connections: int, args: argparse.Namespace, tag: str
) -> Sample:
    warm = 0
    if args.warmup > 0:
        warm = wrk(exe, srv.base_url, srv.token, orgs, connections, args.warmup, args.threads).ok
    profiler = None
    if args.profile is not None and srv.name == "creditpool":
        profiler = py_spy(srv, Path(args.profile) / f"{tag}.txt", args.seconds)
    split: list[str] = []
    port = int(srv.base_url.rsplit(":", 1)[1])
    halfway = threading.Timer(args.seconds / 2, lambda: split.append(connections_per_worker(port)))
    before = cpu_s(pgid=srv.pgid), cpu_s(comm="postgres")
    halfway.start()
    load = wrk(exe, srv.base_url, srv.token, orgs, connections, args.seconds, args.threads)
    after = cpu_s(pgid=srv.pgid), cpu_s(comm="postgres")
    halfway.join()
    if profiler is not None:
        profiler.wait()
    per = max(load.requests, 1) / 1e3
    cpu, pg = (after[0] - before[0]) / per, (after[1] - before[1]) / per
    return Sample(load, cpu, pg, warm, split[0] if split else "?")


def py_spy(srv: Server, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """py-spy on every worker of the server (collapsed stacks, idle frames left out)."""
    exe = shutil.which("py-spy") or str(Path.home() / ".local/bin/py-spy")
    if not Path(exe).exists():
        raise SystemExit("py-spy is missing: `uv tool install py-spy` (or pip install py-spy)")
    out.parent.mkdir(parents=True, exist_ok=True)
    master = min(group_pids(srv.pgid))
    command = [
        exe, "record", "--pid", str(master), "--subprocesses", "--nonblocking", "--gil",
        "--format", "raw", "--rate", "200", "--duration", str(max(1, round(seconds))),
        "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_table(rows: list[Row], workers: int, threads: int) -> None:
    print(
        f"PostgreSQL; both servers: uvicorn, {workers} workers; load: wrk -t{threads} "
        f"(one Idempotency-Key per request); {os.cpu_count()} cores shared by wrk, the "
        "servers and PostgreSQL."
    )
    header = (
        f"{'scenario':<16} {'cp/s':>6} {'p50':>6} {'p99':>6} {'cpu ms':>6} {'pg ms':>5}"
        f" | {'hand/s':>6} {'p50':>6} {'p99':>6} {'cpu ms':>6} {'pg ms':>5}"
        f" | {'ratio':>5} {'ratio goal':<16} {'cpu goal (<= 1.0 ms)':<20}"
        f" | {'conns/worker':<12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        o, t = r.ours, r.theirs
        scenario = f"{r.orgs:,} org{'s' if r.orgs > 1 else ''}, {r.connections} c"
        if t is None:
            ratio_goal = "(not compared)"
        elif r.goal is None:
            ratio_goal = "(no goal)"
        else:
            ratio_goal = f">= {r.goal} " + ("met" if r.ratio >= r.goal else "MISSED")
        cpu_goal = "met" if o.server_cpu_ms <= GOAL_CPU_MS else "MISSED"
        print(
            f"{scenario:<16} {o.load.rate:>6,.0f} {o.load.p50_ms:>6.1f} {o.load.p99_ms:>6.1f}"
            f" {o.server_cpu_ms:>6.2f} {o.pg_cpu_ms:>5.2f}"
            f" | {_theirs(t)} | {r.ratio:>5.2f} {ratio_goal:<16} {cpu_goal:<20}"
            f" | {o.split} vs {t.split if t else '-'}"
        )
    print(
        "(rate: 2xx answers/s; p50/p99 in ms from wrk --latency; cpu ms: CPU of all the "
        "server's processes per request; pg ms: CPU of every postgres process per request;"
        " conns/worker: wrk's connections held by each worker process halfway through the"
        " run, creditpool's vs the hand-rolled's)"
    )
    bad = [
        f"{r.orgs} orgs/{r.connections} c {name}: {s.load.non_2xx} non-2xx, "
        f"{s.load.socket_errors} socket errors"
        for r in rows
        for name, s in (("creditpool", r.ours), ("hand-rolled", r.theirs))
        if s is not None and (s.load.non_2xx or s.load.socket_errors)
    ]
    print("answers: every one 2xx, no socket errors" if not bad else "answers: " + "; ".join(bad))


def _theirs(t: Sample | None) -> str:
    if t is None:
        return f"{'-':>6} {'-':>6} {'-':>6} {'-':>6} {'-':>5}"
    return (
        f"{t.load.rate:>6,.0f} {t.load.p50_ms:>6.1f} {t.load.p99_ms:>6.1f}"
        f" {t.server_cpu_ms:>6.2f} {t.pg_cpu_ms:>5.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed window per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed run before it")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", default=",".join(map(str, CONNECTIONS)))
    parser.add_argument("--only", choices=["1", "1000"], help="one scenario's organizations")
    parser.add_argument("--only-ours", action="store_true", help="skip the hand-rolled server")
    parser.add_argument("--profile", metavar="DIR", help="py-spy creditpool's timed runs")
    args = parser.parse_args(argv)
    exe = wrk_path()
    admin_url = (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )
    orgs = org_ids(ORG_COUNT)
    counts = [int(args.only)] if args.only else [1, ORG_COUNT]
    connections = [int(c) for c in args.connections.split(",")]
    rows: list[Row] = []
    answered = {"creditpool": 0, "hand-rolled": 0}
    began = time.monotonic()
    with fresh_database(admin_url) as url, ExitStack() as stack:
        print(f"setting up {ORG_COUNT:,} organizations ...", file=sys.stderr, flush=True)
        token = prepare_ours(url, orgs)
        prepare_raw(url, orgs)
        ours = stack.enter_context(creditpool_server(url, args.workers, token))
        theirs = None
        if not args.only_ours:
            theirs = stack.enter_context(handrolled_server(url, args.workers, token))
        for count in counts:
            for conns in connections:
                tag = f"{count}orgs-{conns}c"
                a = measure(exe, ours, count, conns, args, tag)
                b = measure(exe, theirs, count, conns, args, tag) if theirs else None
                answered["creditpool"] += a.load.ok + a.warmup_ok
                answered["hand-rolled"] += b.load.ok + b.warmup_ok if b else 0
                rows.append(Row(count, conns, a, b))
                print(
                    f"  {count} orgs, {conns} connections: creditpool {a.load.rate:,.0f}/s"
                    f" ({a.server_cpu_ms:.2f} ms CPU), hand-rolled "
                    + (f"{b.load.rate:,.0f}/s" if b else "not run"),
                    file=sys.stderr,
                    flush=True,
                )
        stack.close()  # servers stopped: every charge in flight has landed
        checks = check_balances(url, orgs, answered)
    print(f"({time.monotonic() - began:.0f} s in all)\n")
    print_table(rows, args.workers, args.threads)
    for line in checks:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
