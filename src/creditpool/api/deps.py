"""Request-scoped dependencies: the pool, the caller, path parameters with limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from creditpool.api.replay import Replayer
from creditpool.pool import CreditPool


def _pool(request: Request) -> CreditPool:
    pool: CreditPool = request.app.state.pool
    return pool


def _replayer(request: Request) -> Replayer:
    replayer: Replayer = request.app.state.replayer
    return replayer


Pool = Annotated[CreditPool, Depends(_pool)]
Replay = Annotated[Replayer, Depends(_replayer)]
OrgId = Annotated[str, Path(min_length=1, max_length=64, description="The organization's id")]
TeamId = Annotated[str, Path(min_length=1, max_length=64)]
UserId = Annotated[str, Path(min_length=1, max_length=64)]
FeatureKey = Annotated[str, Path(min_length=1, max_length=64)]
ObjectId = Annotated[int, Path(ge=1, le=2**62)]
