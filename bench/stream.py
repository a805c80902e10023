"""Event streams under load: 1,000 open SSE streams across 2 server processes on PostgreSQL.

    uv run python bench/stream.py [--streams 1000] [--orgs 100] [--clients 8] [--seconds 15]
                                  [--profile DIR]

A fresh PostgreSQL database (created from CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default; dropped afterwards) is served by two
uvicorn processes on two ports of 127.0.0.1. Separate load processes play the browsers and
the vendor's backend; both speak HTTP/1.1 over raw asyncio sockets (uvloop), so that the
load costs little of the two shared cores:

- the consumers send ``POST /v1/orgs/{org}/consumptions`` on keep-alive connections and
  read each answer's ``Content-Length`` bytes; organizations round-robin, and each
  organization's consumptions alternate between the two processes;
- the stream reader never parses an event: it timestamps each read from the socket once and
  picks the ``id:`` lines (the entry's seq) out of the raw bytes.

Phases:

1. baseline: ``--clients`` consumers for ``--seconds`` (after a warm-up), no stream open.
2. ``--streams`` streams open, spread over the organizations, each organization's streams
   split evenly between the two processes (every change is watched on both).
3. latency probe: consumptions paced at ``--rate`` per second for ``--latency-seconds``.
4. throughput again, with the streams open and their events arriving: the ratio to 1.

Latency is measured per event per stream, between two bounds of the commit instant:

- upper bound: arrival - the entry's ``at`` (the server's clock when the writing
  transaction *began*, before its commit);
- lower bound: arrival - the arrival of the consumption's answer at the consumer (sent
  after the commit). Both clocks are this machine's.

The goal is judged on the upper bound. Every stream must receive every entry of its
organization written after it opened, in seq order, none twice (checked against the ledger).

CPU seconds of each server process, the PostgreSQL backends of the bench database and each
load process are read from /proc per phase. ``--profile DIR``: py-spy records both servers
during phase 4 (``DIR/server-N.txt``, collapsed stacks) and the top of the profile is
printed. Only 127.0.0.1. Bounded: about a minute and a half with the defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http_api.py would shadow the standard library's ``http`` while this folder is first
# on sys.path: take the folder off.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager, suppress  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402

from creditpool import CreditPool  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
WARMUP_S = 3.0
STARTUP_S_MAX = 120.0
SETTLE_S = 1.5  # after the last consumption, for the last events to arrive
GOAL_P99_MS = 50.0
GOAL_RATIO = 0.9
TICKS = os.sysconf("SC_CLK_TCK")


# -- raw HTTP/1.1 over asyncio ----------------------------------------------------------------


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()


class Connection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole answer."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(head + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def consume_load(
    bases: list[str], key: str, orgs: list[str], clients: int, seconds: float, rate: float
) -> dict[str, Any]:
    """``clients`` concurrent consumers (or paced at ``rate``/s when rate > 0). Returns the
    rate and, for every consumption, (org, consumption id, answer's arrival)."""
    body = b'{"feature": "report", "user_id": "u-1"}'
    heads = [
        (
            f"POST /v1/orgs/{org}/consumptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        for org in orgs
    ]
    done: list[tuple[int, int, float]] = []
    failures = 0
    counter = 0
    begin = time.monotonic() + (0 if rate else WARMUP_S)
    end = begin + seconds
    n = len(orgs)

    async def one(conns: list[Connection], i: int) -> None:
        nonlocal failures
        # Organization i % n; its consecutive consumptions alternate between the processes.
        org, server = i % n, (i // n) % len(bases)
        status, answer = await conns[server].request(heads[org], body)
        arrived = time.time()
        if status != 201:
            failures += 1
        elif time.monotonic() >= begin:
            done.append((org, json.loads(answer)["id"], arrived))

    async def worker() -> None:
        nonlocal counter
        conns = [Connection(b) for b in bases]
        try:
            while time.monotonic() < end:
                counter += 1
                await one(conns, counter)
        finally:
            for c in conns:
                c.close()

    async def paced() -> None:
        nonlocal failures
        pool = [[Connection(b) for b in bases] for _ in range(clients)]
        free = list(range(clients))
        tasks = []

        async def paced_one(i: int) -> None:
            slot = free.pop()
            try:
                await one(pool[slot], i)
            finally:
                free.append(slot)

        for i in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            if free:
                tasks.append(asyncio.ensure_future(paced_one(i)))
            else:
                failures += 1  # every connection busy: the server is not keeping up
        await asyncio.gather(*tasks)
        for conns in pool:
            for c in conns:
                c.close()

    if rate:
        await paced()
    else:
        await asyncio.gather(*(worker() for _ in range(clients)))
    return {
        "per_s": len(done) / seconds,
        "count": len(done),
        "failures": failures,
        "done": done,
        "cpu_s": _own_cpu_s(),
    }


class StreamReader(asyncio.Protocol):
    """One stream, read as raw bytes: each read is timestamped once and the ``id:`` lines
    (ledger seqs) are picked out of it; nothing else is parsed."""

    def __init__(self, request: bytes, opened: asyncio.Future[None] | None) -> None:
        self.request = request
        self.opened = opened
        self.seqs: list[int] = []
        self.times: list[float] = []
        self.tail = b""
        self.ok = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.tail + data if self.tail else data
        if not self.ok:
            if not buf.startswith(b"HTTP/1.1 200"):
                if self.opened is not None and not self.opened.done():
                    self.opened.set_exception(RuntimeError(f"stream refused: {buf[:200]!r}"))
                return
            if b"retry:" not in buf:
                self.tail = buf
                return
            self.ok = True
            if self.opened is not None and not self.opened.done():
                self.opened.set_result(None)
        pos = 0
        while True:
            i = buf.find(b"\nid: ", pos)
            if i < 0:
                self.tail = buf[max(pos, len(buf) - 4) :]
                return
            j = buf.find(b"\n", i + 5)
            if j < 0:
                self.tail = buf[i:]
                return
            self.seqs.append(int(buf[i + 5 : j]))
            self.times.append(now)
            pos = j

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


async def stream_load(bases: list[str], key: str, orgs: list[str], streams: int, out: Path) -> None:
    """Open ``streams`` streams; print ``ready`` once all are open; record every event's
    (seq, arrival) per stream until stdin says stop; write them to ``out``."""
    loop = asyncio.get_running_loop()
    readers: list[tuple[int, StreamReader]] = []
    n = len(orgs)
    waiting = []
    for i in range(streams):
        # Organization i % n; its streams alternate between the processes.
        org, server = i % n, (i // n) % len(bases)
        parts = urlsplit(bases[server])
        request = (
            f"GET /v1/orgs/{orgs[org]}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        opened: asyncio.Future[None] = loop.create_future()
        _, reader = await loop.create_connection(
            lambda r=request, o=opened: StreamReader(r, o),  # type: ignore[misc]
            parts.hostname,
            parts.port,
        )
        readers.append((org, reader))
        waiting.append(opened)
    await asyncio.gather(*waiting)
    cpu_open = _own_cpu_s()
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    cpu_used = _own_cpu_s() - cpu_open
    result = {
        "streams": [{"org": org, "seqs": r.seqs, "times": r.times} for org, r in readers],
        "closed": sum(r.closed for _, r in readers),
        "cpu_s": cpu_used,
    }
    out.write_text(json.dumps(result))


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the orchestra --------------------------------------------------------------------------


@dataclass
class Setup:
    bases: list[str]
    key: str
    orgs: list[str]
    pids: list[int]
    url: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"bench_stream_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def servers(url: str, count: int, logs: Path) -> Iterator[tuple[list[str], list[int]]]:
    env = {**os.environ, "CREDITPOOL_DATABASE_URL": url}
    processes: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for i in range(count):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "creditpool.server.run:app_from_env"]
            command += ["--factory", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--log-level", "warning", "--backlog", "4096"]
            with (logs / f"server-{i}.log").open("wb") as log:
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_ready(base)
        yield bases, [p.pid for p in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + STARTUP_S_MAX
    while time.monotonic() < deadline:
        with suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{base} did not become ready")


def prepare(url: str, org_count: int) -> tuple[str, list[str]]:
    orgs = [f"org-{i:03d}" for i in range(org_count)]
    with CreditPool.open(url) as pool:
        for org in orgs:
            pool.create_org(org)
            pool.grant(org, "10000000")
        return pool.create_key("service", name="bench")[1], orgs


def role(setup: Setup, name: str, *args: str) -> list[str]:
    shared = {"bases": setup.bases, "key": setup.key, "orgs": setup.orgs}
    return [sys.executable, __file__, name, json.dumps(shared), *args]


def run_consumers(
    setup: Setup, clients: int, seconds: float, rate: float = 0, profile: Path | None = None
) -> dict[str, Any]:
    command = role(setup, "_consume", str(clients), str(seconds), str(rate))
    spies = []
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path.home() / ".local/bin/py-spy")
        for i, pid in enumerate(setup.pids):
            spies.append(
                subprocess.Popen(
                    [
                        *[spy, "record", "--pid", str(pid)],
                        *["--duration", str(int(seconds + WARMUP_S)), "--rate", "200"],
                        *["--format", "raw", "--nonblocking", "--gil"],
                        *["--output", str(profile / f"server-{i}.txt")],
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    before = cpu_snapshot(setup)
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=240)
    result: dict[str, Any] = json.loads(done.stdout)
    result["cpu"] = cpu_delta(before, cpu_snapshot(setup))
    for spy_process in spies:
        spy_process.wait(timeout=60)
    return result


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def cpu_snapshot(setup: Setup) -> dict[str, float]:
    name = setup.url.rsplit("/", 1)[1]
    with psycopg.connect(setup.url, autocommit=True) as conn:
        backends = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        ]
    snap = {f"server-{i}": proc_cpu_s(pid) for i, pid in enumerate(setup.pids)}
    snap.update({f"pg-{pid}": proc_cpu_s(pid) for pid in backends})
    return snap


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    servers = sum(after[k] - before.get(k, 0) for k in after if k.startswith("server-"))
    pg = sum(after[k] - before.get(k, 0.0) for k in after if k.startswith("pg-"))
    return {"servers_s": servers, "postgres_s": pg}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def ledger_rows(url: str) -> dict[tuple[int, int], tuple[float, int | None]]:
    """(org index, seq) -> (entry at, consumption id) for every entry."""
    rows: dict[tuple[int, int], tuple[float, int | None]] = {}
    with psycopg.connect(url) as conn:
        for org, seq, at, consumption in conn.execute(
            "SELECT org_id, seq, at, consumption_id FROM ledger"
        ):
            rows[(int(org.rsplit("-", 1)[1]), int(seq))] = (at.timestamp(), consumption)
    return rows


def analyse(
    recorded: dict[str, Any],
    rows: dict[tuple[int, int], tuple[float, int | None]],
    answered: dict[tuple[int, int], float],
    windows: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    last: dict[int, int] = collections.defaultdict(int)
    for org, seq in rows:
        last[org] = max(last[org], seq)
    upper: dict[str, list[float]] = {w: [] for w in windows}
    lower: dict[str, list[float]] = {w: [] for w in windows}
    events = missing = disorder = silent = 0
    for stream in recorded["streams"]:
        org, seqs, times = stream["org"], stream["seqs"], stream["times"]
        events += len(seqs)
        if not seqs:
            silent += 1
            continue
        if any(b != a + 1 for a, b in itertools.pairwise(seqs)):
            disorder += 1
        missing += last[org] - seqs[-1]  # every stream opened before the first consumption
        for seq, arrived in zip(seqs, times, strict=True):
            at, consumption = rows[(org, seq)]
            for name, (since, until) in windows.items():
                if since <= at < until:
                    upper[name].append((arrived - at) * 1000)
                    if consumption is not None and (org, consumption) in answered:
                        lower[name].append((arrived - answered[(org, consumption)]) * 1000)
    out: dict[str, Any] = {
        "events": events,
        "missing": missing,
        "out_of_order": disorder,
        "silent_streams": silent,
    }
    for name in windows:
        out[name] = {
            "events": len(upper[name]),
            "p50_ms": percentile(upper[name], 50),
            "p99_ms": percentile(upper[name], 99),
            "max_ms": max(upper[name], default=float("nan")),
            "low_p50_ms": percentile(lower[name], 50),
            "low_p99_ms": percentile(lower[name], 99),
        }
    return out


def run(args: argparse.Namespace, admin_url: str, work: Path) -> dict[str, Any]:
    profile = Path(args.profile).resolve() if args.profile else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    with fresh_database(admin_url) as url:
        key, orgs = prepare(url, args.orgs)
        with servers(url, 2, work) as (bases, pids):
            setup = Setup(bases, key, orgs, pids, url)
            print(f"baseline: {args.clients} clients, {args.seconds:.0f} s, no stream open")
            baseline = run_consumers(setup, args.clients, args.seconds)
            print(f"  {baseline['per_s']:.0f} consumptions/s")
            out = work / "arrivals.json"
            streams = subprocess.Popen(
                role(setup, "_streams", str(args.streams), str(out)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert streams.stdout is not None
            assert streams.stdin is not None
            began = time.monotonic()
            if streams.stdout.readline().strip() != "ready":
                raise RuntimeError("the streams did not open")
            opened_s = time.monotonic() - began
            print(f"{args.streams} streams open in {opened_s:.1f} s")
            time.sleep(1.0)
            idle = cpu_snapshot(setup)
            time.sleep(2.0)
            idle_cpu = cpu_delta(idle, cpu_snapshot(setup))
            paced_from = time.time()
            paced = run_consumers(setup, args.clients, args.latency_seconds, args.rate)
            paced_until = time.time()
            print(f"latency probe: {paced['count']} consumptions at {args.rate:.0f}/s")
            time.sleep(SETTLE_S)
            loaded_from = time.time() + WARMUP_S
            loaded = run_consumers(setup, args.clients, args.seconds, profile=profile)
            loaded_until = time.time()
            print(f"with streams: {loaded['per_s']:.0f} consumptions/s")
            time.sleep(SETTLE_S)
            streams.stdin.write("stop\n")
            streams.stdin.flush()
            streams.wait(timeout=120)
            recorded = json.loads(out.read_text())
            rows = ledger_rows(url)
    answered = {(org, cid): t for r in (paced, loaded) for org, cid, t in r["done"]}
    windows = {"probe": (paced_from, paced_until), "busy": (loaded_from, loaded_until)}
    result = analyse(recorded, rows, answered, windows)
    per_s = baseline["per_s"], loaded["per_s"]
    return {
        "streams": args.streams,
        "orgs": args.orgs,
        "clients": args.clients,
        "opened_s": opened_s,
        "baseline_per_s": per_s[0],
        "with_streams_per_s": per_s[1],
        "ratio": per_s[1] / per_s[0],
        "failures": baseline["failures"] + paced["failures"] + loaded["failures"],
        "probe_expected": paced["count"] * args.streams // args.orgs,
        "streams_closed": recorded["closed"],
        "cpu_ms_per_consume": {
            "baseline_servers": 1000 * baseline["cpu"]["servers_s"] / baseline["count"],
            "baseline_postgres": 1000 * baseline["cpu"]["postgres_s"] / baseline["count"],
            "streams_servers": 1000 * loaded["cpu"]["servers_s"] / loaded["count"],
            "streams_postgres": 1000 * loaded["cpu"]["postgres_s"] / loaded["count"],
        },
        "idle_servers_cpu_pct": 100 * idle_cpu["servers_s"] / 2.0,
        "consumer_cpu_pct": 100 * loaded["cpu_s"] / (args.seconds + WARMUP_S),
        "reader_cpu_s": recorded["cpu_s"],
        "reader_cpu_pct": 100 * recorded["cpu_s"] / (time.time() - paced_from),
        **result,
    }


def report(r: dict[str, Any]) -> None:
    p, b, cpu = r["probe"], r["busy"], r["cpu_ms_per_consume"]
    verdict_p99 = "met" if p["p99_ms"] < GOAL_P99_MS else "MISSED"
    verdict_ratio = "met" if r["ratio"] >= GOAL_RATIO else "MISSED"
    print()
    print(f"{r['streams']} streams over {r['orgs']} organizations, 2 server processes")
    print(f"streams opened in {r['opened_s']:.1f} s")
    print(
        f"latency commit -> arrival, paced probe ({p['events']} of {r['probe_expected']}"
        f" events): upper bound p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms,"
        f" max {p['max_ms']:.1f} ms (goal p99 < {GOAL_P99_MS:.0f} ms: {verdict_p99});"
        f" lower bound p50 {p['low_p50_ms']:.1f} ms, p99 {p['low_p99_ms']:.1f} ms"
    )
    print(
        f"latency during the throughput run ({b['events']} events): upper bound"
        f" p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms;"
        f" lower bound p50 {b['low_p50_ms']:.1f} ms, p99 {b['low_p99_ms']:.1f} ms"
    )
    print(
        f"consume throughput ({r['clients']} clients): {r['baseline_per_s']:.0f}/s without"
        f" streams, {r['with_streams_per_s']:.0f}/s with them: ratio {r['ratio']:.2f}"
        f" (goal >= {GOAL_RATIO}: {verdict_ratio})"
    )
    print(
        f"CPU ms per consumption: servers {cpu['baseline_servers']:.2f} -> "
        f"{cpu['streams_servers']:.2f}, PostgreSQL backends {cpu['baseline_postgres']:.2f} -> "
        f"{cpu['streams_postgres']:.2f}; servers idle with streams open:"
        f" {r['idle_servers_cpu_pct']:.1f}% of a core"
    )
    print(
        f"load: stream reader {r['reader_cpu_pct']:.1f}% of a core ({r['reader_cpu_s']:.1f} s"
        f" for {r['events']} events), consumers {r['consumer_cpu_pct']:.1f}%"
    )
    print(
        f"events received {r['events']}; missing {r['missing']}; streams out of order"
        f" {r['out_of_order']}; streams without events {r['silent_streams']};"
        f" streams closed early {r['streams_closed']};"
        f" failed requests {r['failures']}"
    )
    print(json.dumps(r))


def summarize_profile(directory: Path, top: int = 25) -> None:
    """The functions with the most samples (self and total) in py-spy's collapsed stacks."""
    for path in sorted(directory.glob("server-*.txt")):
        own: collections.Counter[str] = collections.Counter()
        total: collections.Counter[str] = collections.Counter()
        samples = 0
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            samples += n
            frames = stack.split(";")
            own[_short(frames[-1])] += n
            for frame in set(map(_short, frames)):
                total[frame] += n
        print(f"\n{path.name}: {samples} samples")
        print("  self:")
        for frame, n in own.most_common(top):
            print(f"    {100 * n / samples:5.1f}%  {frame}")
        print("  total:")
        for frame, n in total.most_common(top):
            print(f"    {100 * n / samples:5.1f}%  {frame}")


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where.rsplit(':', 1)[0]})"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        setup = json.loads(sys.argv[2])
        loop = _new_loop()
        if sys.argv[1] == "_consume":
            clients, seconds, rate = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
            result = loop.run_until_complete(
                consume_load(setup["bases"], setup["key"], setup["orgs"], clients, seconds, rate)
            )
            print(json.dumps(result))
        else:
            loop.run_until_complete(
                stream_load(
                    setup["bases"], setup["key"], setup["orgs"], int(sys.argv[3]), Path(sys.argv[4])
                )
            )
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--profile", help="py-spy the servers during phase 4, into this folder")
    args = parser.parse_args()
    admin_url = (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )
    with tempfile.TemporaryDirectory() as work:
        report(run(args, admin_url, Path(work)))
    if args.profile:
        summarize_profile(Path(args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
