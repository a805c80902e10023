"""Operations: metrics summed over worker processes, rate limits, readiness, request ids and
JSON request logs, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine as sa_engine

from creditpool import CreditPool
from creditpool.http import metrics
from creditpool.http.ratelimit import RateLimiter
from creditpool.server.app import create_app
from creditpool.settings import Settings
from creditpool.storage import engine as engines
from creditpool.storage import migrate
from tests.e2e.conftest import STARTUP_S_MAX, free_port, start_server
from tests.e2e.receiver import receiving

STARTUP_S = 2 * STARTUP_S_MAX  # servers start slowly on a loaded machine
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FAMILIES = (
    "creditpool_http_request_duration_seconds",
    "creditpool_http_requests_in_flight",
    "creditpool_ledger_operations",
    "creditpool_credits",
    "creditpool_idempotent_replays",
    "creditpool_db_connections_in_use",
    "creditpool_db_pool_waits",
    "creditpool_db_pool_wait_seconds",
    "creditpool_event_streams_open",
    "creditpool_webhook_attempts",
    "creditpool_webhook_attempt_duration_seconds",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "python_info",
)


def parse(text: str) -> tuple[set[str], Samples]:
    families, samples = set(), {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for s in family.samples:
            families.add(s.name)
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def wait_until(check: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


# -- a 2-worker server started as an operator would ------------------------------------


def serve(db_url: str, log: Path, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "creditpool"), "--db", db_url, "serve"]
    command += ["--port", str(port), "--workers", "2"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, STARTUP_S)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return base, process


@pytest.fixture
def two_workers(db_url: str, tmp_path: Path) -> Iterator[tuple[str, CreditPool, dict[str, str]]]:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one process")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by an earlier run")
    pool = CreditPool.open(db_url, settings=Settings(webhook_allowed_networks="127.0.0.0/8"))
    pool.create_org("acme", name="Acme")
    pool.create_org("beta", name="Beta")
    keys = {
        "staff": pool.create_key("staff", name="cs")[1],
        "service": pool.create_key("service", name="backend")[1],
    }
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "CREDITPOOL_METRICS_TOKEN": "scrape-me",
        "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "CREDITPOOL_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2",
        "CREDITPOOL_SWEEP_INTERVAL_S": "0.5",
    }
    try:
        base, process = serve(db_url, tmp_path / "server.log", env)
    except BaseException:
        pool.close()
        raise
    try:
        assert not (metrics_dir / "counter_999999.db").exists()  # cleaned at start
        yield base, pool, keys
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        pool.close()


def scrape(base: str, token: str | None = "scrape-me") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base}/metrics", headers=headers, timeout=10)  # a new connection


def traffic(base: str, keys: dict[str, str]) -> None:
    staff = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['staff']}"})
    service = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys['service']}"})
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    assert staff.post("/v1/orgs/acme/grants", json={"amount": "1.6"}).status_code == 201
    assert staff.post("/v1/orgs/beta/grants", json={"amount": "1", "expires_at": soon}).is_success
    use = {"feature": "report", "user_id": "u-1"}  # 0.5 credits a use
    ids = []
    for key in ("k1", "k2", "k3", "k1"):  # the second k1 replays
        answer = service.post(
            "/v1/orgs/acme/consumptions", json=use, headers={"Idempotency-Key": key}
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    assert service.post("/v1/orgs/acme/consumptions", json=use).status_code == 402  # 0.1 left
    refund = service.post(f"/v1/orgs/acme/consumptions/{ids[0]}/refund", json={})
    assert refund.status_code in (200, 201), refund.text
    staff.close()
    service.close()


def test_a_two_worker_server_reports_every_family_summed_over_its_workers(
    two_workers: tuple[str, CreditPool, dict[str, str]],
) -> None:
    base, pool, keys = two_workers
    with receiving() as receiver:
        receiver.answer = lambda n: 500 if n == 0 else 200  # one retry, then delivered
        pool.create_webhook_endpoint(receiver.url)
        traffic(base, keys)
        receiver.wait_type("consumption.created", 3)
        headers = {"Authorization": f"Bearer {keys['staff']}"}
        with httpx.stream("GET", f"{base}/v1/orgs/acme/events", headers=headers) as stream:
            lines = stream.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines).startswith("retry:")

            def settled() -> bool:
                _, s = parse(scrape(base).text)
                pids = {
                    dict(ls).get("pid") for (n, ls) in s if n == "process_resident_memory_bytes"
                }
                return (
                    value(s, "creditpool_credits_total", movement="expired") == 1
                    and value(s, "creditpool_webhook_attempts_total", result="delivered") >= 3
                    and len(pids) == 2
                )

            wait_until(settled)
            for _ in range(4):  # whichever worker answers, the sums are the same
                families, s = parse(scrape(base).text)
                assert set(FAMILIES) <= families
                assert value(s, "creditpool_event_streams_open") == 1
                assert value(s, "creditpool_http_requests_in_flight") >= 1  # this scrape
                ok = value(
                    s, "creditpool_ledger_operations_total", operation="consume", result="ok"
                )
                assert ok == 3
                refused = {"operation": "consume", "result": "insufficient_credits"}
                assert value(s, "creditpool_ledger_operations_total", **refused) == 1
                assert value(s, "creditpool_idempotent_replays_total") == 1
                assert value(s, "creditpool_credits_total", movement="granted") == 2.6
                assert value(s, "creditpool_credits_total", movement="consumed") == 1.5
                assert value(s, "creditpool_credits_total", movement="refunded") == 0.5
                posts = {"route": "/v1/orgs/{org}/consumptions", "status": "201"}
                assert value(s, "creditpool_http_request_duration_seconds_count", **posts) == 4
                assert value(s, "creditpool_webhook_attempts_total", result="retrying") == 1
                assert 0 <= value(s, "creditpool_db_connections_in_use") <= 2 * 15
                # (pool waits: caused and counted in
                # test_requests_that_find_every_connection_in_use_are_counted_as_pool_waits)
                assert value(s, "process_resident_memory_bytes") > 10_000_000
    assert scrape(base, token=None).status_code == 401
    assert scrape(base, token="wrong").status_code == 401


# -- in one process --------------------------------------------------------------------


class InProcess:
    """Requests to an app in this process (no lifespan: no hub, no workers)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(call())

    def get_many(self, paths: list[str], headers: dict[str, str]) -> list[httpx.Response]:
        """All at once: the app answers each in its thread pool."""

        async def call() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await asyncio.gather(*(client.get(p, headers=headers) for p in paths))

        return asyncio.run(call())


def app_client(pool: CreditPool, metrics_token: str | None = None) -> InProcess:
    return InProcess(create_app(pool, Settings.model_construct(metrics_token=metrics_token)))


def test_metrics_can_ask_for_a_bearer_token(pool: CreditPool) -> None:
    client = app_client(pool, metrics_token="s3cret")
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 200
    assert "creditpool_ledger_operations" in answer.text
    assert app_client(pool).get("/metrics").status_code == 200  # no token set: open


def test_requests_that_find_every_connection_in_use_are_counted_as_pool_waits(
    db_url: str,
    keyed: tuple[CreditPool, dict[str, tuple[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("waits are counted by PostgreSQL's pool (storage/pooling.py)")
    _, keys = keyed
    monkeypatch.setattr(engines, "POSTGRES_BURST", 0)
    pool = CreditPool.open(db_url, pool_size=1)  # one connection for 16 requests at once
    stop_watching = metrics.watch(pool)  # what the server's lifespan does
    try:
        client = app_client(pool)

        def waits() -> tuple[float, float]:
            _, s = parse(client.get("/metrics").text)
            return (
                value(s, "creditpool_db_pool_waits_total"),
                value(s, "creditpool_db_pool_wait_seconds_total"),
            )

        before, waited_before = waits()
        answers = client.get_many(["/v1/orgs/acme/balance"] * 16, headers=bearer(keys["admin"][1]))
        assert [a.status_code for a in answers] == [200] * 16
        after, waited_after = waits()
        assert after > before
        assert waited_after > waited_before
    finally:
        stop_watching()
        pool.close()


def test_a_request_id_is_echoed_when_sane_and_made_otherwise(pool: CreditPool) -> None:
    client = app_client(pool)
    assert client.get("/healthz", headers={"X-Request-ID": "req-42.a"}).headers["X-Request-ID"] == (
        "req-42.a"
    )
    for bad in ("has spaces", "x" * 129, "tab\there"):
        made = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert made != bad
        assert len(made) == 32
    first, second = (client.get("/nowhere").headers["X-Request-ID"] for _ in range(2))
    assert first != second  # made for every request, errors included


def test_a_rate_limit_makes_one_moving_window_of_the_burst() -> None:
    """Burst requests in any burst / rate seconds (tests/unit/test_ratelimit.py sends)."""
    assert RateLimiter.of(None, None) is None
    limiter = RateLimiter.of("100/second", 200)
    assert limiter is not None
    assert (limiter.item.amount, limiter.item.get_expiry()) == (200, 2)
    limiter = RateLimiter.of("100/second", 10)
    assert limiter is not None
    assert (limiter.item.amount, limiter.item.get_expiry()) == (10, 0.1)
    limiter = RateLimiter.of("10/minute", None)
    assert limiter is not None
    assert (limiter.item.amount, limiter.item.get_expiry()) == (10, 60)
    with pytest.raises(ValueError, match="CREDITPOOL_RATE_LIMIT"):
        RateLimiter.of("lots", None)


def test_readyz_is_503_when_the_database_cannot_be_reached() -> None:
    engine = engines.create("postgresql://nobody@127.0.0.1:1/nothing")
    client = InProcess(create_app(CreditPool(engine)))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"


# -- real servers on both backends -----------------------------------------------------


@pytest.fixture
def keyed(db_url: str) -> Iterator[tuple[CreditPool, dict[str, tuple[str, str]]]]:
    """A pool with organization acme and keys: name -> (key id, secret)."""
    pool = CreditPool.open(db_url)
    pool.create_org("acme", name="Acme")
    made = {
        "admin": pool.create_key("admin", org_id="acme", name="a"),
        "member": pool.create_key("member", org_id="acme", user_id="u-1", name="m"),
    }
    yield pool, {name: (key.id, secret) for name, (key, secret) in made.items()}
    pool.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_over_its_rate_a_key_gets_429_with_retry_after_and_others_do_not(
    db_url: str, keyed: tuple[CreditPool, dict[str, tuple[str, str]]], tmp_path: Path
) -> None:
    _, keys = keyed
    # 2 at once, 4 a minute: 2 in any 30 s.
    env = {"CREDITPOOL_RATE_LIMIT": "4/minute", "CREDITPOOL_RATE_LIMIT_BURST": "2"}
    base, process = start_server(db_url, tmp_path / "server.log", env=env, startup_s=STARTUP_S)
    try:
        admin = bearer(keys["admin"][1])
        for _ in range(2):
            assert httpx.get(f"{base}/v1/orgs/acme/balance", headers=admin).status_code == 200
        over = httpx.get(f"{base}/v1/orgs/acme/balance", headers=admin)
        assert over.status_code == 429
        assert over.headers["content-type"] == "application/problem+json"
        assert over.json()["code"] == "rate_limited"
        assert 1 <= int(over.headers["Retry-After"]) <= 30
        member = bearer(keys["member"][1])
        assert httpx.get(f"{base}/v1/orgs/acme/balance", headers=member).status_code == 200
        assert httpx.get(f"{base}/healthz").status_code == 200  # no key: not counted
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_readyz_is_503_while_the_database_is_behind_the_newest_migration(
    db_url: str, keyed: tuple[CreditPool, dict[str, tuple[str, str]]], tmp_path: Path
) -> None:
    base, process = start_server(db_url, tmp_path / "server.log", startup_s=STARTUP_S)
    engine = sa_engine(engines.normalize_url(db_url))
    try:
        from alembic import command

        command.downgrade(migrate.alembic_config(engine), "-1")
        behind = httpx.get(f"{base}/readyz")
        assert (behind.status_code, behind.json()["status"]) == (503, "migrations pending")
        migrate.upgrade(engine)
        assert httpx.get(f"{base}/readyz").status_code == 200
    finally:
        engine.dispose()
        process.terminate()
        process.wait(timeout=30)


def test_json_logs_have_one_line_per_request_with_its_route_key_org_and_id(
    db_url: str, keyed: tuple[CreditPool, dict[str, tuple[str, str]]], tmp_path: Path
) -> None:
    _, keys = keyed
    log = tmp_path / "server.log"
    base, process = start_server(
        db_url, log, env={"CREDITPOOL_LOG_FORMAT": "json"}, startup_s=STARTUP_S
    )
    try:
        headers = {**bearer(keys["admin"][1]), "X-Request-ID": "req-1"}
        answer = httpx.get(f"{base}/v1/orgs/acme/balance", headers=headers)
        assert answer.headers["X-Request-ID"] == "req-1"
        refused = httpx.get(f"{base}/v1/orgs/acme/balance", headers={"X-Request-ID": "req-2"})
        assert refused.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = {}
    for text in log.read_text().splitlines():
        if text.startswith("{"):
            line = json.loads(text)
            lines[line.get("request_id")] = line
    ok = lines["req-1"]
    assert ok["route"] == "/v1/orgs/{org}/balance"
    assert (ok["method"], ok["status"], ok["org"]) == ("GET", 200, "acme")
    assert ok["key_id"] == keys["admin"][0]
    assert ok["duration_ms"] > 0
    assert ok["level"] == "info"
    assert ok["message"] == "request"
    assert (lines["req-2"]["status"], lines["req-2"]["key_id"]) == (401, None)


def test_stopping_finishes_requests_in_progress_and_ends_streams_with_a_retry_hint(
    db_url: str, keyed: tuple[CreditPool, dict[str, tuple[str, str]]], tmp_path: Path
) -> None:
    _, keys = keyed
    base, process = start_server(db_url, tmp_path / "server.log", startup_s=STARTUP_S)
    port = int(base.rsplit(":", 1)[1])
    admin = bearer(keys["admin"][1])
    with httpx.stream("GET", f"{base}/v1/orgs/acme/events", headers=admin, timeout=30) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        slow = socket.create_connection(("127.0.0.1", port))
        body = b"{}"
        head = (
            f"POST /v1/orgs/acme/teams HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: application/json\r\nAuthorization: {admin['Authorization']}\r\n\r\n"
        )
        slow.sendall(head.encode())  # headers sent: the request is in progress
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        rest = list(lines)  # the stream ends
        assert any(line.startswith("retry:") for line in rest)
    time.sleep(0.5)
    slow.sendall(body)
    answer = slow.recv(65536).decode()
    slow.close()
    assert answer.startswith("HTTP/1.1 ")
    assert not answer.startswith("HTTP/1.1 5")
    # uvicorn re-raises the signal once it has stopped cleanly
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
