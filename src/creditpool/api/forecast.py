"""The forecast over HTTP: when the credits run out at the recent pace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from creditpool.core.forecast import WINDOW_DAYS_DEFAULT, WINDOW_DAYS_MAX
from creditpool.forecast.models import Forecast
from creditpool.http.deps import OrgId, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.security import Action, Principal, allowed

router = APIRouter(prefix="/v1/orgs/{org}", tags=["forecast"], route_class=AuthorizedRoute)
# Every role of the organization reads it, as it reads the balance; the teams' projections
# only who may read usage summaries (a member's answer has ``teams`` null).
ForecastReader = Annotated[Principal, allowed(Action.BALANCE_READ)]
WindowDays = Annotated[
    int,
    Query(
        ge=1,
        le=WINDOW_DAYS_MAX,
        description="The pace is the paid usage of this many days (of 24 hours) ending now",
    ),
]


@router.get("/forecast", response_model=Forecast, operation_id="get_forecast")
def forecast(
    org: OrgId, caller: ForecastReader, pool: Pool, window_days: WindowDays = WINDOW_DAYS_DEFAULT
) -> Forecast:
    """The day Left is projected to reach zero at the pace of the window (credits that
    expire before they are used are lost, not runway), what expires unused, and each team's
    projected month-end usage against its limit."""
    found = pool.forecast(org, window_days=window_days)
    if not caller.may(Action.USAGE_READ):
        return found.model_copy(update={"teams": None})
    return found
