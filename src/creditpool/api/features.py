"""The feature catalog over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from creditpool.api.bodies.features import FeaturePut
from creditpool.features.models import Feature
from creditpool.http.deps import FeatureKey, Pool, Replay
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Items
from creditpool.http.security import Action, Principal, allowed

router = APIRouter(prefix="/v1", tags=["features"], route_class=AuthorizedRoute)


@router.get("/features", response_model=Items[Feature])
def list_features(
    caller: Annotated[Principal, allowed(Action.FEATURES_READ)], pool: Pool
) -> Items[Feature]:
    return Items(items=pool.features())


@router.put("/features/{key}", response_model=Feature)
def put_feature(
    key: FeatureKey,
    body: FeaturePut,
    request: Request,
    caller: Annotated[Principal, allowed(Action.FEATURES_WRITE)],
    pool: Pool,
    replay: Replay,
) -> Response:
    price = body.root
    return replay.run(
        request,
        caller,
        None,
        body,
        200,
        lambda _: pool.set_feature(
            key, name=price.name, cost=price.cost, unit_rate=price.unit_rate, unit=price.unit
        ),
    )
