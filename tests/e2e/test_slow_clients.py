"""Slow and oversized requests against a real server process, over raw sockets: incomplete
headers and bodies are timed out (408, then closed), oversized headers refused (431), and
nothing else is disturbed. The server runs with 1 s deadlines."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from creditpool import CreditPool
from creditpool.core.money import MAX_CREDITS, MAX_POOL_CREDITS
from tests.e2e.conftest import start_server
from tests.support import SqliteTemplates

DEADLINE_S = 1.0
SLACK_S = 2.5  # the event loop's timer, the test machine being busy
SETTINGS = {
    "CREDITPOOL_REQUEST_HEADER_TIMEOUT_S": str(DEADLINE_S),
    "CREDITPOOL_REQUEST_BODY_TIMEOUT_S": str(DEADLINE_S),
    "CREDITPOOL_SSE_HEARTBEAT_S": "0.3",
}


class Running:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.host, port = base_url.rsplit("//", 1)[1].split(":")
        self.port = int(port)
        self.key = key

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=10)

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def running(
    sqlite_templates: SqliteTemplates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    db_url = sqlite_templates.fresh()
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.create_org("big")
        key = pool.create_key("staff", name="cs@vendor.example")[1]
    log: Path = tmp_path_factory.mktemp("slow") / "server.log"
    base_url, process = start_server(db_url, log, env=SETTINGS)
    try:
        yield Running(base_url, key)
    finally:
        process.terminate()
        process.wait(timeout=10)


def read_until_closed(sock: socket.socket, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed
    (seconds from now); fails if it is still open after ``within_s``."""
    started = time.monotonic()
    sock.settimeout(within_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"still open after {within_s} s; received {received[:200]!r}")
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


def read_one_answer(sock: socket.socket, within_s: float) -> bytes:
    """One whole answer on a kept-alive connection: the headers, then as many body bytes
    as Content-Length says (a server may send them in separate segments)."""
    sock.settimeout(within_s)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the headers ended: {received[:200]!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed inside the body: {received[:200]!r}"
        body += chunk
    assert len(body) == length, "more bytes than the answer declared"
    return head + b"\r\n\r\n" + body


def status_and_problem(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower()
    return status, json.loads(body)


def test_half_a_header_is_answered_408_and_closed_at_the_deadline(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slo")
        response, after = read_until_closed(sock, DEADLINE_S + SLACK_S)
    status, problem = status_and_problem(response)
    assert status == 408
    assert problem["code"] == "request_timeout"
    assert after >= DEADLINE_S * 0.8


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(running: Running) -> None:
    with running.connect() as sock:
        response, _ = read_until_closed(sock, DEADLINE_S + SLACK_S)
    assert response == b""


def test_trickling_a_header_byte_by_byte_does_not_extend_the_deadline(running: Running) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100
    with running.connect() as sock:
        started = time.monotonic()
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)  # 5 s in all, well past the deadline
        except (BrokenPipeError, ConnectionResetError):
            pass
        response, _ = read_until_closed(sock, DEADLINE_S + SLACK_S)
        assert time.monotonic() - started < DEADLINE_S + SLACK_S + 1
    assert status_and_problem(response)[0] == 408


def test_many_slow_sockets_are_all_closed(running: Running) -> None:
    sockets = [running.connect() for _ in range(300)]
    try:
        for i, sock in enumerate(sockets):
            sock.sendall(b"POST /v1/orgs/acme/grants HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"G")
        time.sleep(DEADLINE_S + SLACK_S)
        still_open = 0
        for sock in sockets:
            sock.settimeout(0.5)
            try:
                while sock.recv(65536):
                    pass
            except TimeoutError:
                still_open += 1
            except ConnectionResetError:
                pass
        assert still_open == 0
    finally:
        for sock in sockets:
            sock.close()
    assert httpx.get(f"{running.base_url}/healthz").status_code == 200


def test_a_slow_body_is_answered_408_and_closed(running: Running) -> None:
    body = json.dumps({"amount": "5"}).encode()
    head = (
        b"POST /v1/orgs/acme/grants HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + running.key.encode() + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    with running.connect() as sock:
        sock.sendall(head + body[:5])
        response, _after = read_until_closed(sock, DEADLINE_S + SLACK_S)
    status, problem = status_and_problem(response)
    assert status == 408
    assert problem["code"] == "request_timeout"
    assert "body" in str(problem["detail"])
    with running.client() as client:
        assert client.get("/v1/orgs/acme/grants").json()["data"] == []  # nothing granted


def test_a_100_kb_header_is_refused_with_431(running: Running) -> None:
    with running.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
        response, _ = read_until_closed(sock, SLACK_S)
    status, problem = status_and_problem(response)
    assert status == 431
    assert problem["code"] == "request_header_too_large"
    try:  # never accepted, whatever the client
        answer = httpx.get(f"{running.base_url}/healthz", headers={"X-Big": "a" * 100_000})
    except httpx.TransportError:
        pass  # cut off while still sending: refused all the same
    else:
        assert answer.status_code == 431


def test_prompt_requests_are_untouched(running: Running) -> None:
    """Headers in pieces within the deadline, keep-alive reuse after a pause, a body."""
    with running.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(DEADLINE_S / 2)
        sock.sendall(b"Host: x\r\n\r\n")
        assert read_one_answer(sock, 5).startswith(b"HTTP/1.1 200")
        time.sleep(DEADLINE_S * 1.5)  # idle between requests: uvicorn's keep-alive (5 s)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_one_answer(sock, 5).startswith(b"HTTP/1.1 200")
    with running.client() as client:
        granted = client.post("/v1/orgs/acme/grants", json={"amount": "1"})
        assert granted.status_code == 201, granted.text


def test_a_long_answer_is_not_cut_by_the_deadlines(running: Running) -> None:
    """An event stream outlives every deadline: only receiving the request is timed."""
    heartbeats = 0
    started = time.monotonic()
    with (
        running.client() as client,
        client.stream("GET", "/v1/orgs/acme/events") as stream,
    ):
        assert stream.status_code == 200
        for line in stream.iter_lines():
            heartbeats += line.startswith(":")
            if time.monotonic() - started > DEADLINE_S * 3:
                break
    assert heartbeats >= 3


def test_a_grant_past_the_pool_limit_is_a_422_problem(running: Running) -> None:
    with running.client() as client:
        for i in range(MAX_POOL_CREDITS // MAX_CREDITS):
            answer = client.post(
                "/v1/orgs/big/grants",
                json={"amount": str(MAX_CREDITS)},
                headers={"Idempotency-Key": f"g-{i}"},
            )
            assert answer.status_code == 201, answer.text
        refused = client.post(
            "/v1/orgs/big/grants", json={"amount": "1"}, headers={"Idempotency-Key": "more"}
        )
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["code"] == "pool_limit_exceeded"
        assert problem["granted"] == f"{MAX_POOL_CREDITS}.00"
        assert f"at most {MAX_POOL_CREDITS} credits" in problem["detail"]
        balance = client.get("/v1/orgs/big/balance").json()
        assert balance["total"] == f"{MAX_POOL_CREDITS}.00"
