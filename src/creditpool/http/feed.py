"""Reading what the stream delivers: ledger entries after a seq, with the balance."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from creditpool.ledger import service as ledger
from creditpool.ledger.models import LedgerEntry
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
    there is nothing new (or the organization is gone). ``read_many`` of one."""
    return read_many(db, {org_id: after_seq}, limit).get(org_id)


def read_many(db: Database, cursors: dict[str, int], limit: int) -> dict[str, Batch]:
    """``read_after`` for several organizations (org -> seq to read after) from ONE
    snapshot transaction: one thread hand-off and one BEGIN/COMMIT for all the
    organizations that changed while the previous round was read. Organizations with
    nothing new (or gone) are absent.

    A fixed few statements whatever the number of organizations: the new entries of all of
    them, then (for those with new entries) their rows, their live grants and, where due,
    their holds (``ledger.balances_now``)."""
    with db.read(snapshot=True) as tx:
        return _read(tx, cursors, limit)


def _read(tx: Tx, cursors: dict[str, int], limit: int) -> dict[str, Batch]:
    rows = ledger_repo.entries_after(tx.conn, cursors, limit)
    if not rows:
        return {}
    by_org: dict[str, list[LedgerEntry]] = {}
    for r in rows:
        by_org.setdefault(r.org_id, []).append(ledger.entry_model(r))
    balances = ledger.balances_now(tx, list(by_org))
    batches = {}
    for org_id, entries in by_org.items():
        found = balances.get(org_id)
        if found is None:
            continue  # the organization is gone
        balance = found.model_dump(mode="json")
        frames = [_frame(e, balance) for e in entries]
        batches[org_id] = Batch(
            org_id=org_id,
            seqs=[e.seq for e in entries],
            frames=frames,
            complete=len(entries) < limit,
            chunk=b"".join(frames),
        )
    return batches


def _frame(entry: LedgerEntry, balance: dict[str, object]) -> bytes:
    data = json.dumps({"entry": entry.model_dump(mode="json"), "balance": balance})
    return f"id: {entry.seq}\nevent: ledger\ndata: {data}\n\n".encode()


def ledger_seqs(db: Database, org_ids: list[str]) -> dict[str, int]:
    with db.read() as tx:
        return repository.ledger_seqs(tx.conn, org_ids)


async def ledger_seqs_async(db: Database, org_id: str) -> dict[str, int]:
    return await asyncio.to_thread(ledger_seqs, db, [org_id])
