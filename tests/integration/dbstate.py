"""Raw views of a pool's database, for asserting that a refused call changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from creditpool import CreditPool
from creditpool.storage.tables import (
    adjustment_allocations,
    allocations,
    consumptions,
    corrections,
    grants,
    hold_allocations,
    holds,
    idempotency_keys,
    ledger,
    orgs,
    restorations,
)


def snapshot(pool: CreditPool, org_id: str) -> dict[str, Any]:
    """Everything a change to ``org_id`` could touch: row counts, grants, the org's counters."""
    with pool.db.engine.connect() as conn:
        state: dict[str, Any] = {}
        for table in (
            consumptions,
            allocations,
            restorations,
            ledger,
            idempotency_keys,
            holds,
            hold_allocations,
            corrections,
            adjustment_allocations,
        ):
            query = select(func.count()).select_from(table).where(table.c.org_id == org_id)
            state[table.name] = conn.execute(query).scalar_one()
        state["grants"] = [
            tuple(r)
            for r in conn.execute(
                select(grants.c.id, grants.c.remaining, grants.c.held, grants.c.voided_at).where(
                    grants.c.org_id == org_id
                )
            )
        ]
        org = conn.execute(select(orgs).where(orgs.c.id == org_id)).one()
        state["org"] = (org.ledger_seq, org.object_seq)
        state["balance"] = pool.balance(org_id).model_dump(exclude={"at"})
        return state


def allocation_rows(pool: CreditPool, org_id: str) -> list[tuple[int, int, int]]:
    """(consumption id, grant id, units) of every allocation row."""
    query = select(allocations.c.consumption_id, allocations.c.grant_id, allocations.c.amount)
    with pool.db.engine.connect() as conn:
        return [
            (int(c), int(g), int(a))
            for c, g, a in conn.execute(query.where(allocations.c.org_id == org_id))
        ]
