"""Request-scoped dependencies: the pool, the caller, path parameters with limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from creditpool.api.batching import ConsumeBatcher
from creditpool.api.replay import Replayer
from creditpool.pool import CreditPool
from creditpool.validation import ID_PATTERN


def _pool(request: Request) -> CreditPool:
    pool: CreditPool = request.app.state.pool
    return pool


def _replayer(request: Request) -> Replayer:
    replayer: Replayer = request.app.state.replayer
    return replayer


def _batcher(request: Request) -> ConsumeBatcher:
    batcher: ConsumeBatcher = request.app.state.batcher
    return batcher


Batcher = Annotated[ConsumeBatcher, Depends(_batcher)]
Pool = Annotated[CreditPool, Depends(_pool)]
Replay = Annotated[Replayer, Depends(_replayer)]
OrgId = Annotated[str, Path(pattern=ID_PATTERN, description="The organization's id")]
TeamId = Annotated[str, Path(pattern=ID_PATTERN)]
UserId = Annotated[str, Path(pattern=ID_PATTERN)]
FeatureKey = Annotated[str, Path(pattern=ID_PATTERN)]
IdFilter = Annotated[str | None, Query(pattern=ID_PATTERN)]
SearchText = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
ObjectId = Annotated[int, Path(ge=1, le=2**62)]
