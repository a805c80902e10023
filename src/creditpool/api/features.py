"""The feature catalog over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from creditpool.api.bodies.features import FeaturePut
from creditpool.features.models import Feature
from creditpool.http.deps import FeatureKey, Pool
from creditpool.http.paging import NameCursor, page
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import PAGE_SIZE_DEFAULT, Limit, Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1", tags=["features"], route_class=AuthorizedRoute)
Reader = Annotated[Principal, allowed(Action.FEATURES_READ)]
Writer = Annotated[Principal, allowed(Action.FEATURES_WRITE)]


@router.get("/features", response_model=Page[Feature])
def list_features(
    caller: Reader, pool: Pool, limit: Limit = PAGE_SIZE_DEFAULT, cursor: NameCursor = None
) -> Page[Feature]:
    """In key order."""
    return page(pool.features(after=cursor, limit=limit + 1), limit, lambda f: f.key)


@router.put("/features/{key}", response_model=Feature)
def put_feature(key: FeatureKey, body: FeaturePut, caller: Writer, writes: Write) -> Response:
    price = body.root.model_dump()
    return writes.directory(caller, None, body, 200, lambda: writes.pool.set_feature(key, **price))
