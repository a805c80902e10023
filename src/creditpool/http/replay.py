"""HTTP idempotency with the semantics payment APIs use.

A mutating request may carry ``Idempotency-Key``. Scoped to the API key that sent it, across
organizations, whichever server process receives the request:
- the same key with the same request (method, path, query and body) returns the first status
  and body (and the header ``Idempotent-Replayed: true``) and changes nothing;
- the same key with another request (another body, another path: another organization
  included, another route) is refused (409 ``idempotency_conflict``);
- a duplicate that arrives while the first request is still running waits for it and then
  replays its answer (in this process on the in-flight set, up to ``IN_FLIGHT_WAIT_S``, then
  409 ``idempotency_in_flight``; in another process on the database: the organization's lock
  or the key's claim);
- errors are not remembered: a refused request changed nothing, and its retry runs anew.

Ledger mutations (consume, refund, grant, void) hand the key to the library as a
``ScopedKey`` (scope: the API key's id): the library stores the result with the change, in
its transaction, and claims the key in ``http_idempotency`` in the same transaction, so the
key takes effect in one organization only. Their status is fixed per route, so the first
status and body come back exactly, with no extra round trip on the hot path, and a change is
never applied twice even if the process dies before answering.

Other mutations (organizations, teams, members, features) are recorded here, in the change's
own transaction (``CreditPool.attach``): its first statement claims the key (a concurrent
duplicate in another process waits on that claim, then replays), its last stores the
response; a crash in between leaves neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request, Response
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from creditpool.changes import Outcome
from creditpool.core.errors import IdempotencyConflict
from creditpool.http import repository
from creditpool.http.problems import IdempotencyInFlight
from creditpool.http.security import Principal
from creditpool.idempotency.service import ScopedKey, validate_key
from creditpool.pool import CreditPool
from creditpool.repositories.idempotency import LEDGER_CLAIM_STATUS
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# How long a duplicate waits in this process for the request with its key to finish before
# it is refused with 409 idempotency_in_flight (which clients retry).
IN_FLIGHT_WAIT_S = 5.0
IN_FLIGHT_POLL_S = 0.01  # how often an awaiting duplicate looks again

Run = Callable[[str | None], BaseModel]
RunLedger = Callable[[ScopedKey | None], Outcome[Any]]
AsyncRunLedger = Callable[[ScopedKey | None], Awaitable[Outcome[Any]]]


class Sealer(Protocol):
    """Keeps a recorded answer unreadable at rest (``webhooks.secrets.SecretBox``): for an
    answer that carries a secret shown once, such as a new API key's."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class _Replay(Exception):  # not an error: the stored answer, out of the change
    def __init__(self, response: Response) -> None:
        super().__init__("replayed")
        self.response = response


@dataclass
class _Record:
    """The hook that records a directory change's response in the change's transaction."""

    scope: str
    key: str
    org_id: str | None
    fingerprint: str
    status: int
    seal: Sealer | None = None
    body: str | None = None

    def begin(self, tx: Tx) -> None:
        claimed = repository.claim(
            tx.conn,
            scope=self.scope,
            key=self.key,
            org_id=self.org_id,
            fingerprint=self.fingerprint,
            status=self.status,
            created_at=tx.now,
        )
        if not claimed:  # taken, by a request that committed: nothing is written here
            stored = repository.get_response(tx.conn, self.scope, self.key)
            raise _Replay(_stored_answer(stored, self.key, self.fingerprint, self.seal))

    def end(self, tx: Tx, result: BaseModel) -> None:
        self.body = encode(result)
        repository.finish(tx.conn, self.scope, self.key, _sealed(self.body, self.seal))


class Replayer:
    def __init__(self, pool: CreditPool, *, in_flight_wait_s: float = IN_FLIGHT_WAIT_S) -> None:
        self.pool = pool
        self.in_flight_wait_s = in_flight_wait_s
        self._cond = threading.Condition()
        self._in_flight: set[tuple[str, str]] = set()

    def run(
        self,
        request: Request,
        caller: Principal,
        org_id: str | None,
        body: Any,
        status: int,
        fn: Run,
        *,
        seal: Sealer | None = None,
        key: str | None = None,
    ) -> Response:
        """A directory change: ``fn`` gets the library key (unused there) and makes ONE
        change through the pool, whose transaction records the response (sealed with
        ``seal`` when given). ``key``: the idempotency key when it does not come in the
        header (a page's form sends its own)."""
        key = validate_key(request.headers.get(HEADER)) if key is None else key
        if key is None:
            return json_response(status, fn(None))
        scope = caller.key.id
        fingerprint = _fingerprint(request, body)
        with self._turn(scope, key):
            with self.pool.db.read() as tx:
                stored = repository.get_response(tx.conn, scope, key)
            if stored is not None:  # the common replay: no write transaction
                return _stored_answer(stored, key, fingerprint, seal)
            record = _Record(scope, key, org_id, fingerprint, status, seal)
            try:
                with self.pool.attach(record):
                    result = fn(library_key(scope, key))
            except _Replay as replay:
                return replay.response
            if record.body is None:
                # ``fn`` changed nothing through the pool's directory (nothing to join):
                # record the answer on its own.
                record.body = encode(result)
                with self.pool.db.write() as tx:
                    repository.put_response(
                        tx.conn,
                        scope=scope,
                        key=key,
                        org_id=org_id,
                        fingerprint=fingerprint,
                        status=status,
                        body=_sealed(record.body, seal),
                        created_at=tx.now,
                    )
            return Response(record.body, status, media_type="application/json")

    def run_ledger(
        self, request: Request, caller: Principal, status: int, fn: RunLedger
    ) -> Response:
        """A ledger mutation: ``fn`` gets the library key and answers its ``Outcome``."""
        key = validate_key(request.headers.get(HEADER))
        if key is None:
            return json_response(status, fn(None).unwrap())
        with self._turn(caller.key.id, key):
            try:
                outcome = fn(ScopedKey(caller.key.id, key))
                result = outcome.unwrap()
            except IdempotencyConflict:
                # Tell the caller about the key it sent, whatever the library said.
                raise IdempotencyConflict(
                    f"idempotency key {key!r} was already used for another request", key=key
                ) from None
        response = json_response(status, result)
        if outcome.replayed:
            response.headers[REPLAYED] = "true"
        return response

    async def run_ledger_async(
        self, request: Request, caller: Principal, status: int, fn: AsyncRunLedger
    ) -> Response:
        """``run_ledger`` for a change awaited in the event loop (the consume route's group
        commit): the same key semantics, without a worker thread of its own."""
        key = validate_key(request.headers.get(HEADER))
        if key is None:
            return json_response(status, (await fn(None)).unwrap())
        token = (caller.key.id, key)
        if not self._enter(token):
            # A duplicate in flight in this process (rare): wait for it without blocking
            # the loop, up to in_flight_wait_s like a thread does.
            deadline = time.monotonic() + self.in_flight_wait_s
            while not self._enter(token):
                if time.monotonic() >= deadline:
                    raise IdempotencyInFlight(
                        f"a request with idempotency key {key!r} is in flight"
                    )
                await asyncio.sleep(IN_FLIGHT_POLL_S)
        try:
            outcome = await fn(ScopedKey(caller.key.id, key))
            result = outcome.unwrap()
        except IdempotencyConflict:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for another request", key=key
            ) from None
        finally:
            self._leave(token)
        response = json_response(status, result)
        if outcome.replayed:
            response.headers[REPLAYED] = "true"
        return response

    @contextmanager
    def _turn(self, scope: str, key: str) -> Iterator[None]:
        """One request per key at a time in this process: a duplicate waits for the first
        (then replays its answer) up to ``in_flight_wait_s``, without holding a database
        connection meanwhile."""
        token = (scope, key)
        deadline = time.monotonic() + self.in_flight_wait_s
        with self._cond:
            while token in self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise IdempotencyInFlight(
                        f"a request with idempotency key {key!r} is in flight"
                    )
                self._cond.wait(remaining)
            self._in_flight.add(token)
        try:
            yield
        finally:
            self._leave(token)

    def _enter(self, token: tuple[str, str]) -> bool:
        """Take the key's turn if nobody has it (never waits)."""
        with self._cond:
            if token in self._in_flight:
                return False
            self._in_flight.add(token)
            return True

    def _leave(self, token: tuple[str, str]) -> None:
        with self._cond:
            self._in_flight.discard(token)
            self._cond.notify_all()


def _sealed(body: str, seal: Sealer | None) -> str:
    return body if seal is None else seal.seal(body)


def _stored_answer(
    stored: DbRow | None, key: str, fingerprint: str, seal: Sealer | None = None
) -> Response:
    """The stored answer for the key, if it was for the same request."""
    if stored is None:  # the claim we waited for was forgotten meanwhile (retention)
        raise IdempotencyInFlight(f"a request with idempotency key {key!r} is in flight")
    if stored.status == LEDGER_CLAIM_STATUS or stored.fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used for another request", key=key
        )
    body = stored.body if seal is None else seal.open(stored.body)
    return Response(body, stored.status, media_type="application/json", headers={REPLAYED: "true"})


def library_key(scope: str, key: str) -> str:
    """The library's key for an API key's idempotency key (keys are per API key): the key
    a ``ScopedKey(scope, key)`` is stored under in an organization."""
    return ScopedKey(scope, key).stored


def _fingerprint(request: Request, body: Any) -> str:
    encoded = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    parts = [request.method, request.url.path, sorted(request.query_params.multi_items()), encoded]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def json_response(status: int, result: BaseModel) -> Response:
    return Response(encode(result), status, media_type="application/json")


def encode(result: BaseModel) -> str:
    """The answer's JSON. Input checks keep every stored text writable (no lone surrogate);
    should one ever slip through, the answer to a change that committed is still produced,
    with the text escaped (``\\udXXX`` is valid JSON), and the slip is logged loudly."""
    try:
        return result.model_dump_json()
    except PydanticSerializationError:
        log.error("answer of %s not encodable as UTF-8; sent escaped", type(result).__name__)
        return json.dumps(result.model_dump(mode="json"), separators=(",", ":"))
