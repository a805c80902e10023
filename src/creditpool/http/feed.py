"""Reading what the stream delivers: ledger entries after a seq, with the balance."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from creditpool.ledger import service as ledger
from creditpool.ledger.models import LedgerEntry
from creditpool.queries import Ledger
from creditpool.repositories import events as repository
from creditpool.repositories import ledger as ledger_repo
from creditpool.storage.uow import Database, Tx


@dataclass(frozen=True, slots=True)
class Batch:
    """Entries in seq order, each already encoded as one SSE event, as bytes (encoded once
    per process, however many streams receive it: every stream of an organization sees the
    same events, so there is one audience per organization)."""

    org_id: str
    seqs: list[int]
    frames: list[bytes]
    complete: bool  # False when cut at the page size: more entries follow
    chunk: bytes = b""  # all frames joined: what a stream that is in step sends

    @property
    def first_seq(self) -> int:
        return self.seqs[0]

    @property
    def last_seq(self) -> int:
        return self.seqs[-1]

    def frames_after(self, seq: int) -> bytes:
        """The events of entries after ``seq``, as one chunk of the stream."""
        if seq < self.seqs[0]:
            return self.chunk
        return b"".join(f for s, f in zip(self.seqs, self.frames, strict=True) if s > seq)


def read_after(db: Database, org_id: str, after_seq: int, limit: int) -> Batch | None:
    """Up to ``limit`` entries with seq > ``after_seq`` and the balance, from one snapshot:
    the balance is as of the newest entry read (when the batch is complete). None when
    there is nothing new (or the organization is gone)."""
    with db.read(snapshot=True) as tx:
        return _read(tx, org_id, after_seq, limit)


def read_many(db: Database, cursors: dict[str, int], limit: int) -> dict[str, Batch]:
    """``read_after`` for several organizations (org -> seq to read after) from ONE
    snapshot transaction: one thread hand-off and one BEGIN/COMMIT for all the
    organizations that changed while the previous round was read. Organizations with
    nothing new are absent."""
    batches = {}
    with db.read(snapshot=True) as tx:
        for org_id, after_seq in cursors.items():
            batch = _read(tx, org_id, after_seq, limit)
            if batch is not None:
                batches[org_id] = batch
    return batches


def _read(tx: Tx, org_id: str, after_seq: int, limit: int) -> Batch | None:
    asked = Ledger(org_id, after_seq=after_seq, limit=limit)
    rows = ledger_repo.list_entries(tx.conn, asked)
    if not rows:
        return None
    balance = ledger.balance(tx, org_id, None).model_dump(mode="json")
    entries = [ledger.entry_model(r) for r in rows]
    frames = [_frame(e, balance) for e in entries]
    return Batch(
        org_id=org_id,
        seqs=[e.seq for e in entries],
        frames=frames,
        complete=len(rows) < limit,
        chunk=b"".join(frames),
    )


def _frame(entry: LedgerEntry, balance: dict[str, object]) -> bytes:
    data = json.dumps({"entry": entry.model_dump(mode="json"), "balance": balance})
    return f"id: {entry.seq}\nevent: ledger\ndata: {data}\n\n".encode()


def ledger_seqs(db: Database, org_ids: list[str]) -> dict[str, int]:
    with db.read() as tx:
        return repository.ledger_seqs(tx.conn, org_ids)


async def ledger_seqs_async(db: Database, org_id: str) -> dict[str, int]:
    return await asyncio.to_thread(ledger_seqs, db, [org_id])
