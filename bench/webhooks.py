"""Signed webhooks under load: 2 server processes on PostgreSQL and a local receiver.

    uv run python bench/webhooks.py [--orgs 100] [--clients 8] [--seconds 8]
                                    [--rate 50] [--latency-seconds 6] [--profile DIR]
    uv run python bench/webhooks.py --worker-alone 1,4,16,32 [--worker-rounds 20]

A fresh PostgreSQL database (created from CREDITPOOL_BENCH_POSTGRES_URL, else
CREDITPOOL_TEST_POSTGRES_URL, else the local default; dropped afterwards) is served by two
uvicorn processes on two ports of 127.0.0.1. Separate processes play the vendor's backend
(the load) and the vendor's webhook receiver (uvicorn, answers 200 at once, records the
arrival time, ``webhook-id`` and body of every delivery; it verifies a sample with the
official ``standardwebhooks`` package at the end). In one run:

1. delivery off: the servers run with ``CREDITPOOL_WEBHOOK_WORKER=false``; ``--clients``
   concurrent clients consume for ``--seconds`` after a warm-up, round-robin over the
   organizations and both processes, each request with its own ``Idempotency-Key``.
   Its events stay in the outbox; they are marked dispatched (one UPDATE) before step 2, or
   the endpoint registered next would be sent them all.
2. delivery on: the servers restart with the worker on (``WEBHOOK_ALLOWED_NETWORKS``
   127.0.0.0/8 so the SSRF guard lets the receiver in); an endpoint for
   ``consumption.created`` is registered with ``POST /v1/webhook-endpoints`` (service key);
   the same load. Ratio of the rates (goal >= 0.9). Then the time the workers need, after
   the load stops, until every consumption of the run has arrived ("drain"), and the lag of
   the deliveries made during the load.
3. latency: consumptions paced at ``--rate``/s for ``--latency-seconds`` with delivery on.
   For each, receipt at the receiver minus the time the consume request was *sent* by the
   load process (an upper bound of commit -> receipt: the commit happens after the send),
   matched by organization and consumption id (``data.org_id``, ``data.id`` of the
   ``consumption.created`` event: ids are numbered per organization). Goal
   p99 < 1 s. Receipt minus the time the answer arrived is printed beside it (a lower
   figure: the commit happens before the answer).

For steps 1 and 2 it also prints, per consumption, the database's committed transactions
and the CPU time of the server processes, of their PostgreSQL backends and of the receiver
(from /proc): what delivery costs. ``BENCH_APP=module:factory`` serves another uvicorn
factory (to measure a patched worker). ``--worker-alone`` measures only the delivery worker,
in-process, per delivery for rounds of the given sizes (Python and PostgreSQL CPU). All
processes share one machine, so their
``time.time()`` agree. Bounded: about a minute. Only 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds http_api.py, consume.py...: keep this folder off sys.path so that nothing in
# it shadows a module the libraries import.
_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager, suppress  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402

from creditpool import CreditPool  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# BENCH_APP=module:factory serves another factory (e.g. one that patches the worker first).
DEFAULT_APP = "creditpool.server.run:app_from_env"
WARMUP_S = 3.0
STARTUP_S_MAX = 30.0
DRAIN_S_MAX = 30.0
GOAL_P99_MS = 1000.0
GOAL_RATIO = 0.9
VERIFY_EVERY = 25  # the receiver keeps the headers of every 25th delivery to verify
VERIFY_MAX = 200
EVENT_TYPE = "consumption.created"
# The servers' CREDITPOOL_SECRET_KEY (seals endpoint secrets); the same for every process.
SERVER_KEY = secrets.token_urlsafe(32)


# -- the load process -----------------------------------------------------------------------


async def consume_load(
    bases: list[str], key: str, orgs: list[str], clients: int, seconds: float, rate: float
) -> dict[str, Any]:
    """``clients`` concurrent consumers (or paced at ``rate``/s when rate > 0). Every
    consumption made, warm-up included, is listed as ("org/id", sent, answered) in
    wall-clock seconds (consumption ids are numbered per organization); the rate counts
    those answered inside the window."""
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    http = [httpx.AsyncClient(base_url=b, headers=headers, limits=limits) for b in bases]
    made: list[tuple[str, float, float]] = []
    in_window = 0
    failures = 0
    counter = 0
    begin = time.monotonic() + (0 if rate else WARMUP_S)
    end = begin + seconds

    async def one(client: httpx.AsyncClient, org: str) -> None:
        nonlocal failures, in_window
        body = {"feature": "report", "user_id": "u-1"}
        sent = time.time()
        response = await client.post(
            f"/v1/orgs/{org}/consumptions",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        answered = time.time()
        if response.status_code != 201:
            failures += 1
            return
        made.append((f"{org}/{response.json()['id']}", sent, answered))
        if time.monotonic() >= begin:
            in_window += 1

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
    return {
        "per_s": in_window / seconds,
        "count": in_window,
        "failures": failures,
        "ended": time.time(),
        "made": made,
    }


# -- the receiver process -------------------------------------------------------------------


def receive(port: int, out: Path) -> None:
    """Answer 200 to every POST, recording (arrival, webhook-id, body); ``GET`` answers how
    many distinct webhook-ids arrived. On ``stop <secret>`` from stdin: verify the kept
    sample with ``standardwebhooks``, write everything to ``out``, exit."""
    import uvicorn
    from standardwebhooks.webhooks import Webhook

    arrivals: list[tuple[float, str, bytes]] = []
    seen: set[str] = set()
    sample: list[tuple[bytes, dict[str, str]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if scope["method"] == "POST":
            now = time.time()
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            body = b"".join(chunks)
            webhook_id = headers.get("webhook-id", "")
            arrivals.append((now, webhook_id, body))
            seen.add(webhook_id)
            if len(arrivals) % VERIFY_EVERY == 1 and len(sample) < VERIFY_MAX:
                sample.append((body, headers))
            answer = b"ok"
        else:
            answer = json.dumps({"distinct": len(seen), "total": len(arrivals)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)

    async def main() -> str:
        serving = asyncio.ensure_future(server.serve())
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        server.should_exit = True
        await serving
        return line.split()[1] if len(line.split()) > 1 else ""

    secret = asyncio.run(main())
    verified = 0
    for body, headers in sample:
        with suppress(Exception):
            Webhook(secret).verify(body, headers)
            verified += 1
    records = []
    for at, webhook_id, body in arrivals:
        payload = json.loads(body)
        data = payload["data"]
        records.append((at, webhook_id, payload["type"], f"{data.get('org_id')}/{data.get('id')}"))
    out.write_text(json.dumps({"arrivals": records, "sampled": len(sample), "verified": verified}))


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
    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stop(processes: list[subprocess.Popen[Any]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def servers(
    env: dict[str, str], count: int, logs: Path, tag: str
) -> Iterator[tuple[list[str], list[int]]]:
    """The base URLs and process ids of ``count`` server processes."""
    processes: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for i in range(count):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", env.get("BENCH_APP", DEFAULT_APP)]
            command += ["--factory", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--log-level", "warning", "--backlog", "4096"]
            with (logs / f"server-{tag}-{i}.log").open("wb") as log:
                processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_ready(f"{base}/readyz")
        yield bases, [p.pid for p in processes]
    finally:
        stop(processes)


@dataclass
class Receiver:
    url: str
    base: str
    process: subprocess.Popen[str]
    out: Path

    def distinct(self) -> int:
        count: int = httpx.get(self.base, timeout=5).json()["distinct"]
        return count

    def wait_distinct(self, n: int, timeout_s: float) -> float | None:
        """Seconds until ``n`` distinct deliveries have arrived; None if not within
        ``timeout_s``."""
        began = time.monotonic()
        while time.monotonic() - began < timeout_s:
            if self.distinct() >= n:
                return time.monotonic() - began
            time.sleep(0.05)
        return None


@contextmanager
def receiver(logs: Path, out: Path) -> Iterator[Receiver]:
    port = free_port()
    with (logs / "receiver.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "_receive", str(port), str(out)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield Receiver(f"{base}/hooks", base, process, out)
    finally:
        if process.poll() is None and process.stdin is not None and not process.stdin.closed:
            process.stdin.write("stop\n")
            process.stdin.flush()
        stop([process])


def finish(rx: Receiver, secret: str) -> dict[str, Any]:
    """Stop the receiver, which verifies its sample with ``secret``; what it recorded."""
    assert rx.process.stdin is not None
    rx.process.stdin.write(f"stop {secret}\n")
    rx.process.stdin.close()
    rx.process.wait(timeout=60)
    recorded: dict[str, Any] = json.loads(rx.out.read_text())
    return recorded


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + STARTUP_S_MAX
    while time.monotonic() < deadline:
        with suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


def prepare(url: str, org_count: int) -> tuple[str, list[str]]:
    orgs = [f"org-{i:03d}" for i in range(org_count)]
    with CreditPool.open(url) as pool:
        for org in orgs:
            pool.create_org(org)
            pool.grant(org, "10000000")
        return pool.create_key("service", name="bench")[1], orgs


def mark_dispatched(url: str) -> int:
    """Events made with delivery off would all go to the endpoint registered next: skip
    them, so that step 2 measures its own deliveries only."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("UPDATE events SET dispatched = true WHERE NOT dispatched").rowcount


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Meter:
    """Where a phase's work went: the database's committed transactions (its statistics
    lag by up to a second: read after a pause) and the CPU time of our server processes,
    of the PostgreSQL backends serving this database, and of the receiver."""

    url: str
    servers: list[int]
    receiver: int

    def snapshot(self) -> dict[str, Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            backends = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert row is not None
        return {
            "xacts": int(row[0]),
            "servers": {pid: cpu_s(pid) for pid in self.servers},
            "backends": {pid: cpu_s(pid) for (pid,) in backends},
            "receiver": cpu_s(self.receiver),
        }

    def per_consumption(self, before: dict[str, Any], count: int) -> dict[str, float]:
        """Transactions, and CPU milliseconds, per consumption since ``before``."""
        after = self.snapshot()

        def spent(group: str) -> float:
            was: dict[int, float] = before[group]
            now: dict[int, float] = after[group]
            return sum(t - was.get(pid, 0.0) for pid, t in now.items())

        return {
            "xacts": (after["xacts"] - before["xacts"]) / count,
            "server_ms": spent("servers") * 1000 / count,
            "postgres_ms": spent("backends") * 1000 / count,
            "receiver_ms": (after["receiver"] - before["receiver"]) * 1000 / count,
        }


def register(base: str, key: str, target: str) -> str:
    """Register the receiver through the API; its secret."""
    response = httpx.post(
        f"{base}/v1/webhook-endpoints",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "url": target,
            "event_types": [EVENT_TYPE],
            "description": "bench receiver",
            "enabled": True,
        },
        timeout=10,
    )
    if response.status_code not in (200, 201):
        raise RuntimeError(
            f"could not register the endpoint: {response.status_code} {response.text}"
        )
    secret: str = response.json()["secret"]
    return secret


def run_consumers(setup: Setup, clients: int, seconds: float, rate: float = 0) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "_consume",
        json.dumps({"bases": setup.bases, "key": setup.key, "orgs": setup.orgs}),
        str(clients),
        str(seconds),
        str(rate),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextmanager
def profiled(folder: str | None, pids: list[int], seconds: float) -> Iterator[None]:
    """With ``--profile DIR``: py-spy (on PATH) samples each server process while the
    block runs, into ``DIR/server-N.txt`` (collapsed stacks, one line per stack and count,
    threads apart; only samples holding the GIL, i.e. Python's own CPU)."""
    if not folder:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--threads",
                "--gil",
                "--rate",
                "100",
                "--nonblocking",
                "--duration",
                str(int(seconds) + 1),
                "-o",
                str(Path(folder) / f"server-{i}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, pid in enumerate(pids)
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def lags_ms(made: list[list[Any]], first: dict[str, float]) -> tuple[list[float], list[float], int]:
    """(receipt - sent, receipt - answered) in ms of the consumptions that arrived; how many
    did not."""
    from_sent, from_answer = [], []
    for consumption_id, sent, answered in made:
        at = first.get(consumption_id)
        if at is not None:
            from_sent.append((at - sent) * 1000)
            from_answer.append((at - answered) * 1000)
    return from_sent, from_answer, len(made) - len(from_sent)


def server_env(url: str, worker: bool) -> dict[str, str]:
    return {
        **os.environ,
        "CREDITPOOL_DATABASE_URL": url,
        "CREDITPOOL_WEBHOOK_WORKER": "true" if worker else "false",
        "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "CREDITPOOL_SECRET_KEY": SERVER_KEY,
    }


def run(args: argparse.Namespace, admin_url: str, work: Path) -> dict[str, Any]:
    with fresh_database(admin_url) as url, receiver(work, work / "arrivals.json") as rx:
        key, orgs = prepare(url, args.orgs)
        with servers(server_env(url, worker=False), 2, work, "off") as (bases, pids):
            meter = Meter(url, pids, rx.process.pid)
            print(f"delivery off: {args.clients} clients, {args.seconds:.0f} s")
            before = meter.snapshot()
            off = run_consumers(Setup(bases, key, orgs), args.clients, args.seconds)
            time.sleep(1.5)
            off_cost = meter.per_consumption(before, len(off["made"]))
            print(f"  {off['per_s']:.0f} consumptions/s")
        skipped = mark_dispatched(url)
        with servers(server_env(url, worker=True), 2, work, "on") as (bases, pids):
            meter = Meter(url, pids, rx.process.pid)
            setup = Setup(bases, key, orgs)
            secret = register(bases[0], key, rx.url)
            print(f"delivery on: {args.clients} clients, {args.seconds:.0f} s")
            before = meter.snapshot()
            with profiled(args.profile, pids, WARMUP_S + args.seconds):
                on = run_consumers(setup, args.clients, args.seconds)
            drain_s = rx.wait_distinct(len(on["made"]), DRAIN_S_MAX)
            time.sleep(1.5)
            on_cost = meter.per_consumption(before, len(on["made"]))
            print(f"  {on['per_s']:.0f} consumptions/s; all delivered {drain_s} s after the load")
            time.sleep(0.5)
            print(f"latency: {args.rate:.0f}/s for {args.latency_seconds:.0f} s")
            paced = run_consumers(setup, args.clients, args.latency_seconds, args.rate)
            rx.wait_distinct(len(on["made"]) + len(paced["made"]), 10)
        recorded = finish(rx, secret)
    first: dict[str, float] = {}
    for at, _webhook_id, event_type, data_id in recorded["arrivals"]:
        if event_type == EVENT_TYPE and data_id not in first:
            first[data_id] = at
    sent, answered, missing = lags_ms(paced["made"], first)
    busy, _, busy_missing = lags_ms(on["made"], first)
    ids = [a[1] for a in recorded["arrivals"]]
    return {
        "orgs": args.orgs,
        "clients": args.clients,
        "off_per_s": off["per_s"],
        "on_per_s": on["per_s"],
        "ratio": on["per_s"] / off["per_s"],
        "off_cost": off_cost,
        "on_cost": on_cost,
        "failures": off["failures"] + on["failures"] + paced["failures"],
        "skipped_events": skipped,
        "drain_s": drain_s,
        "busy_deliveries": len(busy),
        "busy_missing": busy_missing,
        "busy_p50_ms": percentile(busy, 50) if busy else None,
        "busy_p99_ms": percentile(busy, 99) if busy else None,
        "rate": args.rate,
        "probe": len(paced["made"]),
        "probe_missing": missing,
        "p50_ms": percentile(sent, 50) if sent else None,
        "p99_ms": percentile(sent, 99) if sent else None,
        "max_ms": max(sent) if sent else None,
        "answer_p50_ms": percentile(answered, 50) if answered else None,
        "answer_p99_ms": percentile(answered, 99) if answered else None,
        "deliveries": len(ids),
        "duplicates": len(ids) - len(set(ids)),
        "sampled": recorded["sampled"],
        "verified": recorded["verified"],
    }


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def report(r: dict[str, Any]) -> None:
    ratio_ok = r["ratio"] >= GOAL_RATIO

    def cost(name: str, form: str) -> str:
        return f"{form.format(r['off_cost'][name])} / {form.format(r['on_cost'][name])}"

    p99_ok = r["p99_ms"] is not None and r["p99_ms"] < GOAL_P99_MS and not r["probe_missing"]
    rows = [
        ("consumes/s, delivery off", f"{r['off_per_s']:.0f}", ""),
        ("consumes/s, delivery on", f"{r['on_per_s']:.0f}", ""),
        (
            "ratio on/off",
            f"{r['ratio']:.2f}",
            f">= {GOAL_RATIO}: {'met' if ratio_ok else 'MISSED'}",
        ),
        (
            f"latency send->receipt p50 ({r['rate']:.0f}/s)",
            ms(r["p50_ms"]),
            f"{r['probe'] - r['probe_missing']} of {r['probe']} arrived",
        ),
        (
            f"latency send->receipt p99 ({r['rate']:.0f}/s)",
            ms(r["p99_ms"]),
            f"< {GOAL_P99_MS:.0f} ms: {'met' if p99_ok else 'MISSED'}",
        ),
        (
            "  (answer->receipt p50 / p99)",
            f"{ms(r['answer_p50_ms'])} / {ms(r['answer_p99_ms'])}",
            "",
        ),
        ("  max send->receipt", ms(r["max_ms"]), ""),
        (
            "lag send->receipt under full load p50/p99",
            f"{ms(r['busy_p50_ms'])} / {ms(r['busy_p99_ms'])}",
            f"{r['busy_deliveries']} delivered, {r['busy_missing']} missing",
        ),
        ("per consumption, off / on (on: until all delivered):", "", ""),
        ("  database transactions", cost("xacts", "{:.2f}"), ""),
        ("  CPU of the 2 server processes", cost("server_ms", "{:.1f} ms"), ""),
        ("  CPU of their PostgreSQL backends", cost("postgres_ms", "{:.1f} ms"), ""),
        ("  CPU of the receiver", cost("receiver_ms", "{:.1f} ms"), ""),
        ("drain after full load", "-" if r["drain_s"] is None else f"{r['drain_s']:.1f} s", ""),
    ]
    print()
    print(f"{r['orgs']} organizations, {r['clients']} clients, 2 server processes, PostgreSQL")
    for name, value, note in rows:
        print(f"{name:<44} {value:>16}  {note}")
    print(
        f"failed requests: {r['failures']}; deliveries {r['deliveries']}, duplicates"
        f" {r['duplicates']}; signatures verified {r['verified']} of {r['sampled']} sampled"
    )
    print(json.dumps(r))


def worker_alone(admin_url: str, rounds: int, sizes: list[int]) -> None:
    """The delivery worker alone, in this process: for each round size B, ``rounds`` times
    make B consumptions then run one round (``Deliverer.run_once``) to the receiver; CPU of
    this process and of the database's backends measured around the rounds only."""
    os.environ["CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.0/8"

    def backends_cpu(url: str) -> float:
        with psycopg.connect(url, autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return sum(cpu_s(pid) for (pid,) in pids)

    with (
        tempfile.TemporaryDirectory() as work,
        fresh_database(admin_url) as url,
        receiver(Path(work), Path(work) / "arrivals.json") as rx,
        CreditPool.open(url) as pool,
    ):
        pool.create_org("acme")
        pool.grant("acme", "100000000")
        pool.create_webhook_endpoint(rx.url, event_types=[EVENT_TYPE])
        worker = pool.webhook_worker()
        for _ in range(5):  # warm up
            pool.consume("acme", "report", user_id="u-1")
            worker.run_once()
        print("the worker alone: per delivery, by round size (CPU around the rounds only)")
        for size in sizes:
            python = database = wall = 0.0
            sent = 0
            for _ in range(rounds):
                for _ in range(size):
                    pool.consume("acme", "report", user_id="u-1")
                db0, cpu0, t0 = backends_cpu(url), time.process_time(), time.perf_counter()
                got = worker.run_once()
                while 0 < got < size and (more := worker.run_once()):
                    got += more
                wall += time.perf_counter() - t0
                python += time.process_time() - cpu0
                database += backends_cpu(url) - db0
                sent += got
            print(
                f"  rounds of {size:3d}: {sent} sent; python {python / sent * 1000:.2f} ms,"
                f" postgresql {database / sent * 1000:.2f} ms, wall {wall / sent * 1000:.2f} ms"
            )
        worker.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_consume":
        setup = json.loads(sys.argv[2])
        clients, seconds, rate = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
        result = asyncio.run(
            consume_load(setup["bases"], setup["key"], setup["orgs"], clients, seconds, rate)
        )
        print(json.dumps(result))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_receive":
        receive(int(sys.argv[2]), Path(sys.argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument(
        "--profile", metavar="DIR", help="py-spy both servers while delivery is on (to DIR)"
    )
    parser.add_argument(
        "--worker-alone",
        metavar="SIZES",
        help="only the worker's CPU per delivery for these round sizes (e.g. 1,4,16,32)",
    )
    parser.add_argument("--worker-rounds", type=int, default=20)
    args = parser.parse_args()
    admin_url = (
        os.environ.get("CREDITPOOL_BENCH_POSTGRES_URL")
        or os.environ.get("CREDITPOOL_TEST_POSTGRES_URL")
        or DEFAULT_PG_URL
    )
    if args.worker_alone:
        sizes = [int(size) for size in args.worker_alone.split(",")]
        worker_alone(admin_url, args.worker_rounds, sizes)
        return 0
    with tempfile.TemporaryDirectory() as work:
        report(run(args, admin_url, Path(work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
