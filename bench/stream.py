"""Event streams under load: 1,000 open SSE streams across 2 server processes on PostgreSQL.

    uv run python bench/stream.py [--streams 1000] [--orgs 100] [--clients 8] [--seconds 15]

A fresh PostgreSQL database (created from CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default; dropped afterwards) is served by two
uvicorn processes on two ports of 127.0.0.1. Separate load processes play the browsers and
the vendor's backend:

1. baseline: ``--clients`` concurrent HTTP clients consume for ``--seconds`` (after a
   warm-up), round-robin over the organizations and both server processes; no stream open.
2. ``--streams`` streams open (``GET /v1/orgs/{org}/events``), spread evenly over the
   organizations and alternating between the two processes, so most changes are made on one
   process and watched on both.
3. latency: consumptions paced at ``--rate`` per second for ``--latency-seconds``; for each
   event at each stream, the time from the entry's ``at`` (read from the clock when its
   transaction began, so before its commit: an upper bound of commit -> arrival) to its
   arrival at the load process.
4. throughput again, with the streams open (and their events arriving): the ratio to 1.

Bounded: it stops by itself in about a minute and a half. Only 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http_api.py would shadow the standard library's ``http`` (httpx imports it) while this
# folder is first on sys.path: take the folder off.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager, suppress  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402

from creditpool import CreditPool  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
WARMUP_S = 3.0
STARTUP_S_MAX = 30.0
GOAL_P99_MS = 100.0
GOAL_RATIO = 0.9


# -- the load processes ---------------------------------------------------------------------


async def consume_load(
    bases: list[str], key: str, orgs: list[str], clients: int, seconds: float, rate: float
) -> dict[str, Any]:
    """``clients`` concurrent consumers (or paced at ``rate``/s when rate > 0)."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    http = [httpx.AsyncClient(base_url=b, headers=headers, limits=limits) for b in bases]
    done: list[float] = []
    failures = 0
    counter = 0
    begin = time.monotonic() + (0 if rate else WARMUP_S)
    end = begin + seconds

    async def one(client: httpx.AsyncClient, org: str) -> None:
        nonlocal failures
        body = {"feature": "report", "user_id": "u-1"}
        response = await client.post(f"/v1/orgs/{org}/consumptions", json=body, timeout=30)
        if response.status_code != 201:
            failures += 1
        elif time.monotonic() >= begin:
            done.append(time.monotonic())

    async def worker() -> None:
        nonlocal counter
        while time.monotonic() < end:
            counter += 1
            await one(http[counter % len(http)], orgs[counter % len(orgs)])

    async def paced() -> None:
        tasks = []
        for i in range(int(seconds * rate)):
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            tasks.append(asyncio.ensure_future(one(http[i % len(http)], orgs[i % len(orgs)])))
        await asyncio.gather(*tasks)

    try:
        if rate:
            await paced()
        else:
            await asyncio.gather(*(worker() for _ in range(clients)))
    finally:
        for client in http:
            await client.aclose()
    return {"per_s": len(done) / seconds, "count": len(done), "failures": failures}


async def stream_load(bases: list[str], key: str, orgs: list[str], streams: int, out: Path) -> None:
    """Open ``streams`` streams; print ``ready`` once all are open; record (entry at,
    arrival) of every event until stdin says stop; write them to ``out``."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(30.0, read=None)
    http = [
        httpx.AsyncClient(base_url=b, headers=headers, limits=limits, timeout=timeout)
        for b in bases
    ]
    arrivals: list[tuple[float, float]] = []
    opened = 0
    all_open = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal opened
        client, org = http[i % len(http)], orgs[i % len(orgs)]
        async with client.stream("GET", f"/v1/orgs/{org}/events") as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("retry"):
                    opened += 1
                    if opened == streams:
                        all_open.set()
                elif line.startswith("data: "):
                    now = time.time()
                    start = line.index('"at": "') + 7
                    at = datetime.fromisoformat(line[start : line.index('"', start)])
                    arrivals.append((at.timestamp(), now))

    tasks = [asyncio.ensure_future(one(i)) for i in range(streams)]
    await all_open.wait()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in http:
        await client.aclose()
    out.write_text(json.dumps({"arrivals": arrivals, "lost_streams": streams - opened}))


# -- the orchestra --------------------------------------------------------------------------


@dataclass
class Setup:
    bases: list[str]
    key: str
    orgs: list[str]


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
def servers(url: str, count: int, logs: Path) -> Iterator[list[str]]:
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
        yield bases
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
    return [
        sys.executable,
        __file__,
        name,
        json.dumps({"bases": setup.bases, "key": setup.key, "orgs": setup.orgs}),
        *args,
    ]


def run_consumers(setup: Setup, clients: int, seconds: float, rate: float = 0) -> dict[str, Any]:
    command = role(setup, "_consume", str(clients), str(seconds), str(rate))
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def latencies_ms(arrivals: list[list[float]], since: float, until: float) -> list[float]:
    return [(arrived - at) * 1000 for at, arrived in arrivals if since <= at < until]


def run(args: argparse.Namespace, admin_url: str, work: Path) -> dict[str, Any]:
    with fresh_database(admin_url) as url:
        key, orgs = prepare(url, args.orgs)
        with servers(url, 2, work) as bases:
            setup = Setup(bases, key, orgs)
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
            print(f"{args.streams} streams open in {time.monotonic() - began:.1f} s")
            time.sleep(1.0)
            paced_from = time.time()
            paced = run_consumers(setup, args.clients, args.latency_seconds, args.rate)
            paced_until = time.time()
            print(f"latency probe: {paced['count']} consumptions at {args.rate:.0f}/s")
            loaded_from = time.time() + WARMUP_S
            loaded = run_consumers(setup, args.clients, args.seconds)
            loaded_until = time.time()
            print(f"with streams: {loaded['per_s']:.0f} consumptions/s")
            time.sleep(1.0)
            streams.stdin.write("stop\n")
            streams.stdin.flush()
            streams.wait(timeout=60)
            recorded = json.loads(out.read_text())
    arrivals = recorded["arrivals"]
    quiet = latencies_ms(arrivals, paced_from, paced_until)
    busy = latencies_ms(arrivals, loaded_from, loaded_until)
    return {
        "streams": args.streams,
        "orgs": args.orgs,
        "clients": args.clients,
        "baseline_per_s": baseline["per_s"],
        "with_streams_per_s": loaded["per_s"],
        "ratio": loaded["per_s"] / baseline["per_s"],
        "failures": baseline["failures"] + paced["failures"] + loaded["failures"],
        "probe_events": len(quiet),
        "probe_expected": paced["count"] * args.streams // args.orgs,
        "p50_ms": percentile(quiet, 50),
        "p99_ms": percentile(quiet, 99),
        "max_ms": max(quiet),
        "busy_events": len(busy),
        "busy_p50_ms": percentile(busy, 50) if busy else None,
        "busy_p99_ms": percentile(busy, 99) if busy else None,
        "lost_streams": recorded["lost_streams"],
    }


def report(r: dict[str, Any]) -> None:
    print()
    print(f"{r['streams']} streams over {r['orgs']} organizations, 2 server processes")
    print(
        f"latency entry at -> arrival (paced probe, {r['probe_events']} of"
        f" {r['probe_expected']} events): p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms,"
        f" max {r['max_ms']:.1f} ms  (goal p99 < {GOAL_P99_MS:.0f} ms)"
    )
    if r["busy_events"]:
        print(
            f"latency during the throughput run ({r['busy_events']} events):"
            f" p50 {r['busy_p50_ms']:.1f} ms, p99 {r['busy_p99_ms']:.1f} ms"
        )
    print(
        f"consume throughput ({r['clients']} clients): {r['baseline_per_s']:.0f}/s without"
        f" streams, {r['with_streams_per_s']:.0f}/s with them: ratio {r['ratio']:.2f}"
        f" (goal >= {GOAL_RATIO})"
    )
    print(f"failed requests: {r['failures']}; streams that did not open: {r['lost_streams']}")
    print(json.dumps(r))


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        setup = json.loads(sys.argv[2])
        if sys.argv[1] == "_consume":
            clients, seconds, rate = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
            result = asyncio.run(
                consume_load(setup["bases"], setup["key"], setup["orgs"], clients, seconds, rate)
            )
            print(json.dumps(result))
        else:
            asyncio.run(
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
    args = parser.parse_args()
    admin_url = (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )
    with tempfile.TemporaryDirectory() as work:
        report(run(args, admin_url, Path(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
