"""All SQL of the event stream. Never commits."""

from __future__ import annotations

from sqlalchemy import String, bindparam, func, literal_column, select
from sqlalchemy.engine import Connection

from creditpool.storage import compiled
from creditpool.storage.tables import orgs

CHANNEL = "creditpool_ledger"

# Sent inside the writing transaction: PostgreSQL delivers it on commit, and never for a
# transaction that rolled back, so only committed changes are announced.
_ANNOUNCE = compiled.Write(
    select(func.pg_notify(literal_column(f"'{CHANNEL}'"), bindparam("payload", type_=String)))
)


def announce(conn: Connection, org_id: str, last_seq: int) -> None:
    """NOTIFY listeners that ``org_id``'s ledger now reaches ``last_seq`` (PostgreSQL)."""
    compiled.run(conn, _ANNOUNCE, {"payload": f"{org_id}:{last_seq}"})


def parse_announcement(payload: str) -> tuple[str, int] | None:
    """``org_id:seq`` (ids may contain ``:``, the seq never does); None if malformed."""
    org_id, _, seq = payload.rpartition(":")
    if not org_id or not seq.isdigit():
        return None
    return org_id, int(seq)


def ledger_seqs(conn: Connection, org_ids: list[str]) -> dict[str, int]:
    """Each organization's last ledger seq (organizations that do not exist are absent)."""
    query = select(orgs.c.id, orgs.c.ledger_seq).where(orgs.c.id.in_(org_ids))
    return {org_id: int(seq) for org_id, seq in conn.execute(query)}
