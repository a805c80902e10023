"""The consume endpoint a vendor would write by hand: the baseline of ``bench/http_api.py``.

    uvicorn handrolled:app --app-dir bench --workers 2

``POST /v1/orgs/{org}/consumptions`` with ``Authorization: Bearer <key>`` and a JSON body:
the key is checked (its SHA-256 against the one given in ``HANDROLLED_KEY_SHA256``), the
body validated by pydantic, then ONE transaction on PostgreSQL (``HANDROLLED_DATABASE_URL``):
lock the organization's row, refuse (402) if the balance would go below zero, lower it,
insert the consumption row (the columns and indexes of creditpool's ``consumptions`` table,
``bench/consume.py``'s "raw" tables), commit; the answer is the consumption as JSON (201).

No idempotency, no ledger, no grants or allocations, no events, no metrics: the least a
correct charge does. A sync route (FastAPI runs it in its thread pool) over a small pool
of psycopg connections kept open, one per thread in use, as is usual.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import psycopg
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

RATE_UNITS = 50_000_000  # the catalog's price of the bench feature, per unit
COST_UNITS = 5000  # 0.50 credits, in ten-thousandths
POOL_SIZE = 16

LOCK = "SELECT balance, seq FROM raw_orgs WHERE id = %s FOR UPDATE"
LOWER = "UPDATE raw_orgs SET balance = %s, seq = %s WHERE id = %s"
INSERT = (
    "INSERT INTO raw_consumptions (org_id, id, created_at, feature, feature_name, action,"
    " user_id, rate, cost, breakdown, requests, status)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'paid')"
)


class Connections:
    """Up to ``size`` psycopg connections, opened when first needed and kept."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.idle: queue.LifoQueue[psycopg.Connection[tuple[object, ...]]] = queue.LifoQueue()
        self.slots = queue.Queue[None]()
        for _ in range(size):
            self.slots.put(None)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        self.slots.get()
        try:
            try:
                db = self.idle.get_nowait()
            except queue.Empty:
                db = psycopg.connect(self.url)
            try:
                yield db
            except BaseException:
                db.close()
                raise
            self.idle.put(db)
        finally:
            self.slots.put(None)


class ConsumeBody(BaseModel):
    feature: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    user_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    feature_name: str | None = Field(default=None, max_length=500)
    action: str | None = Field(default=None, max_length=64)
    breakdown: dict[str, int] | None = None
    requests: int | None = Field(default=None, ge=0)


class ConsumptionOut(BaseModel):
    id: int
    org_id: str
    feature: str
    user_id: str
    cost: str
    balance: str
    created_at: datetime


app = FastAPI()
pool = Connections(os.environ.get("HANDROLLED_DATABASE_URL", ""), POOL_SIZE)
KEY_SHA256 = bytes.fromhex(os.environ.get("HANDROLLED_KEY_SHA256", "00" * 32))


def credits(units: int) -> str:
    whole, part = divmod(units, 10_000)
    return f"{whole}.{part:04d}"


@app.post("/v1/orgs/{org}/consumptions", status_code=201)
def consume(
    org: str, body: ConsumeBody, authorization: Annotated[str | None, Header()] = None
) -> ConsumptionOut:
    scheme, _, token = (authorization or "").partition(" ")
    digest = hashlib.sha256(token.encode()).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(digest, KEY_SHA256):
        raise HTTPException(401, "unknown API key")
    now = datetime.now(UTC)
    with pool.connection() as db, db.transaction():
        row = db.execute(LOCK, (org,)).fetchone()
        if row is None:
            raise HTTPException(404, "no such organization")
        balance, seq = row
        assert isinstance(balance, int)
        assert isinstance(seq, int)
        if balance < COST_UNITS:
            raise HTTPException(402, "not enough credits")
        balance -= COST_UNITS
        seq += 1
        db.execute(LOWER, (balance, seq, org))
        breakdown = None if body.breakdown is None else json.dumps(body.breakdown)
        db.execute(
            INSERT,
            (org, seq, now, body.feature, body.feature_name, body.action, body.user_id,
             RATE_UNITS, COST_UNITS, breakdown, body.requests),
        )  # fmt: skip
    return ConsumptionOut(
        id=seq,
        org_id=org,
        feature=body.feature,
        user_id=body.user_id,
        cost=credits(COST_UNITS),
        balance=credits(balance),
        created_at=now,
    )
