"""The feature catalog over HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from creditpool.api.deps import FeatureKey, Pool, Replay
from creditpool.api.schemas import Items, exact
from creditpool.api.security import Action, Caller
from creditpool.features.models import Feature
from creditpool.features.schemas import FeaturePut

router = APIRouter(prefix="/v1", tags=["features"])


@router.get("/features", response_model=Items[Feature])
def list_features(caller: Caller, pool: Pool) -> Items[Feature]:
    caller.require(Action.FEATURES_READ)
    return Items(items=pool.features())


@router.put("/features/{key}", response_model=Feature)
def put_feature(
    key: FeatureKey, body: FeaturePut, request: Request, caller: Caller, pool: Pool, replay: Replay
) -> Response:
    caller.require(Action.FEATURES_WRITE)
    return replay.run(
        request,
        caller,
        None,
        body,
        200,
        lambda _: pool.set_feature(
            key,
            name=body.name,
            cost=exact(body.cost, "cost"),
            unit_rate=exact(body.unit_rate, "unit_rate"),
            unit=body.unit,
        ),
    )
