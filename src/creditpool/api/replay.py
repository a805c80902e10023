"""HTTP idempotency with the semantics payment APIs use.

A mutating request may carry ``Idempotency-Key``. Scoped to the API key that sent it:
- the same key with the same request returns the first status and body (and the header
  ``Idempotent-Replayed: true``) and changes nothing;
- the same key with another request is refused (409 ``idempotency_conflict``);
- the same key while the first request is still running in this process is refused (409
  ``idempotency_in_flight``); in another process it waits for the organization's lock and
  then replays;
- errors are not remembered: a refused request changed nothing, and its retry runs anew.

Ledger mutations (consume, refund, grant, void) keep no HTTP record at all: the key goes
to the library, which stores the result in the same transaction as the change and replays
it from there. Their status is fixed per route, so the first status and body come back
exactly, with no extra round trip on the hot path, and a change is never applied twice even
if the process dies before answering. Other mutations (organizations, teams, members,
features) are recorded here after they succeed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from creditpool.api import repository
from creditpool.api.problems import IdempotencyInFlight
from creditpool.api.security import Principal
from creditpool.core.errors import IdempotencyConflict
from creditpool.idempotency.service import validate_key
from creditpool.pool import CreditPool
from creditpool.storage.uow import reading, writing

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"

Run = Callable[[str | None], BaseModel]
RunLedger = Callable[[str | None], tuple[BaseModel, bool]]


class Replayer:
    def __init__(self, pool: CreditPool) -> None:
        self.pool = pool
        self._lock = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()

    def run(
        self,
        request: Request,
        caller: Principal,
        org_id: str | None,
        body: Any,
        status: int,
        fn: Run,
    ) -> Response:
        key = validate_key(request.headers.get(HEADER))
        if key is None:
            return json_response(status, fn(None))
        scope = caller.key.id
        fingerprint = _fingerprint(request, body)
        token = (scope, key)
        with self._lock:
            if token in self._in_flight:
                raise IdempotencyInFlight(f"a request with idempotency key {key!r} is in flight")
            self._in_flight.add(token)
        try:
            return self._run_once(scope, key, org_id, fingerprint, status, fn)
        finally:
            with self._lock:
                self._in_flight.discard(token)

    def run_ledger(
        self, request: Request, caller: Principal, status: int, fn: RunLedger
    ) -> Response:
        """A ledger mutation: ``fn`` gets the library key and answers (result, replayed)."""
        key = validate_key(request.headers.get(HEADER))
        if key is None:
            return json_response(status, fn(None)[0])
        token = (caller.key.id, key)
        with self._lock:
            if token in self._in_flight:
                raise IdempotencyInFlight(f"a request with idempotency key {key!r} is in flight")
            self._in_flight.add(token)
        try:
            result, replayed = fn(library_key(caller.key.id, key))
        except IdempotencyConflict:
            # The library saw its derived key; tell the caller about the key it sent.
            raise IdempotencyConflict(
                f"idempotency key {key!r} was already used for another request", key=key
            ) from None
        finally:
            with self._lock:
                self._in_flight.discard(token)
        response = json_response(status, result)
        if replayed:
            response.headers[REPLAYED] = "true"
        return response

    def _run_once(
        self, scope: str, key: str, org_id: str | None, fingerprint: str, status: int, fn: Run
    ) -> Response:
        with reading(self.pool.engine, self.pool.clock) as tx:
            stored = repository.get_response(tx.conn, scope, key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    f"idempotency key {key!r} was already used for another request", key=key
                )
            return Response(
                stored.body,
                stored.status,
                media_type="application/json",
                headers={REPLAYED: "true"},
            )
        result = fn(library_key(scope, key))
        body = result.model_dump_json()
        try:
            with writing(self.pool.engine, self.pool.clock) as tx:
                repository.put_response(
                    tx.conn,
                    scope=scope,
                    key=key,
                    org_id=org_id,
                    fingerprint=fingerprint,
                    status=status,
                    body=body,
                    created_at=tx.now,
                )
        except IntegrityError:
            pass  # another process stored the same result first
        return Response(body, status, media_type="application/json")


def library_key(scope: str, key: str) -> str:
    """The library's key for an API key's idempotency key (keys are per API key)."""
    return hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()


def _fingerprint(request: Request, body: Any) -> str:
    encoded = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    parts = [request.method, request.url.path, sorted(request.query_params.multi_items()), encoded]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def json_response(status: int, result: BaseModel) -> Response:
    return Response(result.model_dump_json(), status, media_type="application/json")
