"""What every route that changes something shares: the request, the pool and the replayer.

A ledger change (grant, void, consume, refund, hold, settle, release...) is a command
(``creditpool.commands``) built for the key the replayer hands it and run in one
organization; a directory change (organizations,
teams, members, features) is one pool call whose answer the replayer records. Either way
the ``Idempotency-Key`` semantics of ``http.replay`` hold.

The dependency is async on purpose: FastAPI runs a sync dependency in the thread pool, one
hand-off per request and dependency, while this one only reads the app's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from creditpool import changes
from creditpool.changes import Outcome
from creditpool.commands import Command
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
        command: Callable[..., Command[Any]],
        *args: Any,
        **fields: Any,
    ) -> Response:
        """Run ``command(*args, **fields)`` (a class of ``creditpool.commands``) in the
        organization once per idempotency key, which the replayer hands it; the answer's
        status is the command's."""
        kind = cast(type[Command[Any]], command)

        def run(key: ScopedKey | None) -> Outcome[Any]:
            made = command(*args, idempotency_key=key, **fields)
            return self.pool.apply(org_id, changes.of(made, self.pool))

        return self.replay.run_ledger(self.request, caller, kind.success, run)

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
