"""What the HTTP stack adds to a consumption, in CPU, measured in one process.

    uv run python bench/http_overhead.py [--n 1500] [--rounds 3] [--backend sqlite|postgresql]
                                         [--profile]

``bench/http_api.py`` measures whole servers under wrk: the figure the goals are judged on,
but on 2 shared cores its CPU per request moves by a third from run to run, more than a
change to the HTTP path is worth. This benchmark takes the network, the load generator and
the other processes out: it drives the app (``server.app.create_app``, every middleware and
route as served) with ASGI messages from the same event loop, ``POST
/v1/orgs/{org}/consumptions`` one at a time, each with its own ``Idempotency-Key``, and
counts this process's CPU per request (the database thread's included). Then the same
consumption through ``CreditPool.consume`` in the same process: the difference is the HTTP
stack's CPU (routing, dependencies, body, replay bookkeeping, batching hand-off, response).
Rounds alternate the two, so that a slower moment of the machine touches both.

``--profile`` prints cProfile's 40 most expensive functions of the HTTP requests instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from consume import DEFAULT_PG_URL
from creditpool import CreditPool
from creditpool.server.app import create_app
from creditpool.settings import Settings
from http_api import fresh_database

ORG = "org-0"
BODY = (
    b'{"feature":"report","feature_name":"Q3 pipeline","action":"publish",'
    b'"breakdown":{"calls":12,"emails":40,"web_searches":3},"requests":2,"user_id":"u-1"}'
)
PATH = f"/v1/orgs/{ORG}/consumptions"


@contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/overhead.db"
        return
    with fresh_database(DEFAULT_PG_URL) as url:
        yield url


class Driver:
    """Sends ASGI requests straight to the app, on this event loop."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.auth = b"Bearer " + token.encode()

    async def consume(self, key: str) -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": PATH, "raw_path": PATH.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000), "state": {},
            "headers": [
                (b"host", b"127.0.0.1:8000"), (b"authorization", self.auth),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
                (b"idempotency-key", key.encode()),
            ],
        }  # fmt: skip
        sent = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}
            await asyncio.Event().wait()  # the client never goes away
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await self.app(scope, receive, send)
        if status != [201]:
            raise SystemExit(f"POST {PATH} answered {status}")


def library_call(pool: CreditPool, key: str) -> None:
    pool.consume(
        ORG,
        "report",
        user_id="u-1",
        feature_name="Q3 pipeline",
        action="publish",
        breakdown={"calls": 12, "emails": 40, "web_searches": 3},
        requests=2,
        idempotency_key=key,
    )


async def measure(args: argparse.Namespace, url: str) -> None:
    with CreditPool.open(url) as pool:
        pool.create_org(ORG)
        pool.grant(ORG, "100000000")
        _, token = pool.create_key("service")
        app = create_app(pool, Settings(database_url=url, webhook_worker=False))
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})
        lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        life = asyncio.create_task(app(lifespan, inbox.get, outbox.put))
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        driver = Driver(app, token)
        run = uuid.uuid4().hex[:8]
        for i in range(200):  # warm-up: caches, prepared statements
            await driver.consume(f"{run}-warm-{i}")
            library_call(pool, f"{run}-warm-lib-{i}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for i in range(args.n):
                await driver.consume(f"{run}-prof-{i}")
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        else:
            rows = []
            for r in range(args.rounds):
                began = time.process_time()
                for i in range(args.n):
                    await driver.consume(f"{run}-{r}-{i}")
                http_ms = (time.process_time() - began) / args.n * 1e3
                began = time.process_time()
                for i in range(args.n):
                    library_call(pool, f"{run}-lib-{r}-{i}")
                lib_ms = (time.process_time() - began) / args.n * 1e3
                rows.append((http_ms, lib_ms))
                print(
                    f"  round {r + 1}: HTTP {http_ms:.3f} ms, library {lib_ms:.3f} ms,"
                    f" HTTP stack {http_ms - lib_ms:.3f} ms",
                    file=sys.stderr,
                )
            report(args.backend, rows)
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await life


def report(backend: str, rows: list[tuple[float, float]]) -> None:
    http = statistics.median(h for h, _ in rows)
    lib = statistics.median(b for _, b in rows)
    stack = statistics.median(h - b for h, b in rows)
    print(f"{backend}: CPU per consumption in one process, median of {len(rows)} rounds")
    print(f"  through the HTTP app   {http:.3f} ms")
    print(f"  through the library    {lib:.3f} ms")
    print(f"  the HTTP stack adds    {stack:.3f} ms ({stack / lib:.2f}x the library's)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=1500, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--profile", action="store_true", help="cProfile the HTTP requests")
    args = parser.parse_args(argv)
    with database(args.backend) as url:
        asyncio.run(measure(args, url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
