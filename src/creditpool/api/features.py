"""The feature catalog over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from creditpool import queries as q
from creditpool.api.bodies.features import FeaturePut
from creditpool.api.lists import Listing, paged
from creditpool.features.models import Feature, FeaturePrice
from creditpool.http.deps import FeatureKey, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1", tags=["features"], route_class=AuthorizedRoute)
Reader = Annotated[Principal, allowed(Action.FEATURES_READ)]
Writer = Annotated[Principal, allowed(Action.FEATURES_WRITE)]


@router.get("/features", response_model=Page[Feature])
@paged(q.Features)
def list_features(caller: Reader, pool: Pool) -> Listing:
    """In key order."""
    return pool.features


@router.put("/features/{key}", response_model=Feature)
def put_feature(key: FeatureKey, body: FeaturePut, caller: Writer, writes: Write) -> Response:
    """The price from now on (past consumptions keep theirs); it joins the feature's price
    history with the API key's name as `changed_by`."""
    price = body.root.model_dump()
    return writes.directory(
        caller,
        None,
        body,
        200,
        lambda: writes.pool.set_feature(key, **price, changed_by=caller.key.name),
    )


@router.get(
    "/features/{key}/prices",
    response_model=Page[FeaturePrice],
    responses={404: {"description": "Not found (`not_found`): no such feature"}},
    operation_id="list_feature_prices",
)
@paged(q.FeaturePrices)
def list_feature_prices(key: FeatureKey, caller: Reader, pool: Pool) -> Listing:
    """Every price the feature has had, newest first (the first is the one in force), each
    with the instant it applied from (`since`) and who set it (`changed_by`)."""
    return pool.feature_prices
