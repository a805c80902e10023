"""A real webhook receiver for the tests: an HTTP server on a free port that verifies every
delivery with the official ``standardwebhooks`` package and records what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass
class Arrival:
    webhook_id: str
    timestamp: str
    signature: str
    body: dict[str, Any]
    verified: bool
    status: int  # what the receiver answered

    @property
    def type(self) -> str:
        return str(self.body["type"])

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.body["data"]
        return data


@dataclass
class Receiver:
    url: str
    secrets: list[str] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    # What to answer each delivery: called with the arrival count so far (0-based).
    answer: Callable[[int], int] = lambda n: 200
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except Exception:
                continue
        return False

    def of_type(self, event_type: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if a.type == event_type and a.status < 300]

    def wait_for(
        self, predicate: Callable[[list[Arrival]], bool], timeout_s: float = 15
    ) -> list[Arrival]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                arrived = list(self.arrivals)
            if predicate(arrived):
                return arrived
            time.sleep(0.05)
        with self.lock:
            seen = [(a.type, a.status) for a in self.arrivals]
        raise AssertionError(f"not arrived in {timeout_s} s; arrived: {seen}")

    def wait_type(self, event_type: str, n: int = 1, timeout_s: float = 15) -> list[Arrival]:
        self.wait_for(lambda _: len(self.of_type(event_type)) >= n, timeout_s)
        return self.of_type(event_type)


@contextmanager
def receiving(path: str = "/hooks") -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            with receiver.lock:
                status = receiver.answer(len(receiver.arrivals))
                receiver.arrivals.append(
                    Arrival(
                        webhook_id=headers.get("webhook-id", ""),
                        timestamp=headers.get("webhook-timestamp", ""),
                        signature=headers.get("webhook-signature", ""),
                        body=json.loads(raw),
                        verified=receiver.verify(raw, headers),
                        status=status,
                    )
                )
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver says no")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
