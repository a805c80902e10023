"""The feature catalog over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from creditpool import queries as q
from creditpool.api.bodies.features import FeaturePut
from creditpool.features.models import Feature, FeaturePrice
from creditpool.http.deps import FeatureKey, Pool
from creditpool.http.paging import Params
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write

router = APIRouter(prefix="/v1", tags=["features"], route_class=AuthorizedRoute)
Reader = Annotated[Principal, allowed(Action.FEATURES_READ)]
Writer = Annotated[Principal, allowed(Action.FEATURES_WRITE)]


class FeaturesParams(Params):
    __query__ = q.Features


@router.get("/features", response_model=Page[Feature])
def list_features(
    caller: Reader, pool: Pool, params: Annotated[FeaturesParams, Query()]
) -> Page[Feature]:
    """In key order."""
    return params.read(pool.features)


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


class PricesParams(Params):
    __query__ = q.FeaturePrices


@router.get(
    "/features/{key}/prices",
    response_model=Page[FeaturePrice],
    responses={404: {"description": "Not found (`not_found`): no such feature"}},
    operation_id="list_feature_prices",
)
def list_feature_prices(
    key: FeatureKey, caller: Reader, pool: Pool, params: Annotated[PricesParams, Query()]
) -> Page[FeaturePrice]:
    """Every price the feature has had, newest first (the first is the one in force), each
    with the instant it applied from (`since`) and who set it (`changed_by`)."""
    return params.read(pool.feature_prices, key)
