"""What every route that changes something shares: the request, the pool and the replayer.

A ledger change (grant, void, consume, refund, hold, settle, release) is built for the key
the replayer hands it and applied to one organization; a directory change (organizations,
teams, members, features) is one pool call whose answer the replayer records. Either way
the ``Idempotency-Key`` semantics of ``http.replay`` hold.

The dependency is async on purpose: FastAPI runs a sync dependency in the thread pool, one
hand-off per request and dependency, while this one only reads the app's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from creditpool.changes import Change
from creditpool.http.replay import Replayer, Sealer
from creditpool.http.security import Principal
from creditpool.idempotency.service import ScopedKey
from creditpool.pool import CreditPool


@dataclass(frozen=True, slots=True)
class Writes:
    request: Request
    pool: CreditPool
    replay: Replayer

    def ledger(
        self,
        caller: Principal,
        org_id: str,
        status: int,
        change: Callable[[ScopedKey | None], Change[Any]],
    ) -> Response:
        """Apply ``change(key)`` to the organization once per idempotency key."""
        return self.replay.run_ledger(
            self.request, caller, status, lambda key: self.pool.apply(org_id, change(key))
        )

    def directory(
        self,
        caller: Principal,
        org_id: str | None,
        body: Any,
        status: int,
        call: Callable[[], BaseModel],
        *,
        seal: Sealer | None = None,
    ) -> Response:
        """Make one directory change through the pool; its answer is recorded for the key
        (sealed with ``seal`` when it carries a secret)."""
        return self.replay.run(
            self.request, caller, org_id, body, status, lambda _: call(), seal=seal
        )


async def _writes(request: Request) -> Writes:
    state = request.app.state
    return Writes(request, state.pool, state.replayer)


Write = Annotated[Writes, Depends(_writes)]
