"""Crash test: servers killed with SIGKILL at random moments under concurrent consumptions.

Several threads send consumptions over HTTP, each with its own Idempotency-Key, to the
servers (one on SQLite; two processes on one PostgreSQL database) while a killer thread
SIGKILLs them at seeded random moments and restarts them on the same port. A request that
got no 201 (the connection broke, the server was down) is unacknowledged: once the load
stops, each is retried with its key and body until it is acknowledged. Then every
acknowledged charge must exist exactly once, nothing else may have been charged, a replay of
any key answers the charge it first made, Left is exactly the grant less the acknowledged
costs, and ``verify()`` finds nothing wrong.

The kill instants are random (seed ``CREDITPOOL_TEST_CRASH_SEED``, default fixed), the
outcome is not: every assertion holds whatever moment a kill hits.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from creditpool import CreditPool
from creditpool.storage.tables import consumptions
from tests.e2e.conftest import free_port, start_server

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("CREDITPOOL_TEST_CRASH_SEED", "20261102"))
THREADS = 6
LOAD_S = 8.0  # consumptions under kills, at least; restarts and final retries on top
KILLS = 3
GRANTED = Decimal(1_000_000)
RETRY_S_MAX = 60.0
STARTUP_S_MAX = 120.0  # a busy machine: a kill must not fail the test for a slow start


@dataclass
class Node:
    """One server process that can be killed and restarted on its database and port."""

    db_url: str
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        _, self.process = start_server(
            self.db_url, self.log, port=self.port, startup_s=STARTUP_S_MAX
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown, no flush, whatever was in flight
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Book:
    """What the clients were told, under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, tuple[int, Decimal]] = field(default_factory=dict)  # key: id, cost
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # key: body
    unexpected: list[str] = field(default_factory=list)
    failures: int = 0  # attempts that got no acknowledgement

    def settle(self, key: str, body: dict[str, Any], answer: dict[str, Any] | None) -> None:
        with self.lock:
            if answer is None:
                self.pending[key] = body
                return
            self.pending.pop(key, None)
            charge = (int(answer["id"]), Decimal(answer["cost"]))
            first = self.acknowledged.setdefault(key, charge)
            if first != charge:
                self.unexpected.append(f"{key}: acknowledged as {first} and then {charge}")


def send(client: httpx.Client, key: str, body: dict[str, Any], book: Book) -> dict[str, Any] | None:
    """The charge the server acknowledged, or None when there is no acknowledgement."""
    try:
        response = client.post(
            "/v1/orgs/acme/consumptions", json=body, headers={"Idempotency-Key": key}
        )
    except httpx.TransportError:
        return None  # refused, reset, or cut mid-answer: unacknowledged
    if response.status_code == 201:
        answer: dict[str, Any] = response.json()
        return answer
    if response.status_code == 409 and response.json().get("code") == "idempotency_in_flight":
        return None  # the same key is still running in this process: ask again later
    with book.lock:
        book.unexpected.append(f"{key}: {response.status_code} {response.text[:300]}")
    return None


def body_for(worker: int, i: int) -> dict[str, Any]:
    if i % 3 == 0:  # a variable cost: 0.0123 x quantity
        return {"feature": "topic_detection", "user_id": f"u-{worker}", "quantity": str(i % 50 + 1)}
    return {"feature": "report" if i % 3 == 1 else "action_plan", "user_id": f"u-{worker}"}


def load(worker: int, nodes: list[Node], key: str, stop: threading.Event, book: Book) -> None:
    """Consumptions one after the other, each with its own key; one that is not
    acknowledged is sent again with the same key (to the next server, after a pause) until
    it is, or until the load stops, which leaves it to ``retry_until_acknowledged``."""
    headers = {"Authorization": f"Bearer {key}"}
    clients = [httpx.Client(base_url=n.base_url, headers=headers, timeout=30) for n in nodes]
    try:
        i = 0
        while not stop.is_set():
            idem, body = f"w{worker}-{i}", body_for(worker, i)
            for attempt in range(10**6):
                answer = send(clients[(worker + i + attempt) % len(clients)], idem, body, book)
                book.settle(idem, body, answer)
                if answer is not None or stop.wait(min(0.05 * 2**attempt, 0.5)):
                    break
                book.failures += 1
            i += 1
    finally:
        for client in clients:
            client.close()


def start_all(nodes: list[Node]) -> list[str]:
    """Start (or restart) servers side by side; why any of them did not come up."""
    failures: list[str] = []

    def start(node: Node) -> None:
        try:
            node.start()
        except Exception as error:
            failures.append(f"server on port {node.port}: {error}")

    starts = [threading.Thread(target=start, args=(node,)) for node in nodes]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join()
    return failures


def killer(nodes: list[Node], rng: random.Random, stop: threading.Event, errors: list[str]) -> None:
    try:
        for _ in range(KILLS):
            if stop.wait(rng.uniform(0.5, 2.0)):
                return
            victims = rng.sample(nodes, rng.randint(1, len(nodes)))
            for node in victims:
                node.kill()
            time.sleep(rng.uniform(0.0, 0.5))  # down for a while: requests fail meanwhile
            failures = start_all(victims)
            if failures:
                errors.extend(failures)
                return
    except Exception as error:  # reported by the test
        errors.append(repr(error))


def retry_until_acknowledged(nodes: list[Node], key: str, book: Book) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    clients = [httpx.Client(base_url=n.base_url, headers=headers, timeout=30) for n in nodes]
    deadline = time.monotonic() + RETRY_S_MAX
    try:
        while book.pending:
            assert time.monotonic() < deadline, f"{len(book.pending)} never acknowledged"
            for n, (idem, body) in enumerate(sorted(book.pending.items())):
                book.settle(idem, body, send(clients[n % len(clients)], idem, body, book))
            if book.pending:
                time.sleep(0.2)
    finally:
        for client in clients:
            client.close()


def test_every_acknowledged_charge_survives_kills_exactly_once(
    backend: str, db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}-{backend}")
    with CreditPool.open(db_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", GRANTED)
        key = pool.create_key("service", name="backend")[1]
    count = 2 if backend == "postgres" else 1  # SQLite: one process per database file
    nodes = [Node(db_url, tmp_path / f"server-{n}.log") for n in range(count)]
    book, stop = Book(), threading.Event()
    errors: list[str] = []
    try:
        assert start_all(nodes) == []
        workers = [
            threading.Thread(target=load, args=(w, nodes, key, stop, book)) for w in range(THREADS)
        ]
        kills = threading.Thread(target=killer, args=(nodes, rng, stop, errors))
        for thread in [*workers, kills]:
            thread.start()
        time.sleep(LOAD_S)
        kills.join()  # every killed server is back
        stop.set()
        for thread in workers:
            thread.join()
        assert errors == []
        assert sum(node.kills for node in nodes) >= KILLS
        left_over = len(book.pending)
        retry_until_acknowledged(nodes, key, book)

        # A replay of any key answers the charge it first made (and charges nothing).
        sample = random.Random(SEED).sample(sorted(book.acknowledged), 40)
        replayed = Book()
        for idem in sample:
            worker, i = (int(part) for part in idem[1:].split("-"))
            retry_book = Book(pending={idem: body_for(worker, i)})
            retry_until_acknowledged(nodes, key, retry_book)
            replayed.acknowledged.update(retry_book.acknowledged)
            replayed.unexpected += retry_book.unexpected
        assert replayed.unexpected == []
        assert replayed.acknowledged == {k: book.acknowledged[k] for k in sample}
    finally:
        stop.set()
        for node in nodes:
            node.stop()

    assert book.unexpected == [], book.unexpected[:5]
    assert book.failures > 0  # the kills did interrupt requests
    assert left_over <= THREADS
    with CreditPool.open(db_url) as pool:
        with pool.db.engine.connect() as conn:
            c = consumptions.c
            rows = conn.execute(select(c.id, c.cost, c.status).where(c.org_id == "acme")).all()
        charged = {row.id: Decimal(row.cost) / 10_000 for row in rows}
        acknowledged = dict(book.acknowledged.values())
        # exactly once: one consumption per acknowledged key, and none without a key
        assert len(acknowledged) == len(book.acknowledged) == len(rows)
        assert charged == acknowledged
        assert {row.status for row in rows} == {"paid"}
        balance = pool.balance("acme")
        spent = sum(acknowledged.values(), Decimal(0))
        assert balance.left == GRANTED - spent
        assert balance.used == spent
        assert pool.verify() == []
