"""Consumptions and refunds over HTTP."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from creditpool import commands as cmd
from creditpool import queries as q
from creditpool.api.bodies.consumptions import ConsumeBody, RefundBody
from creditpool.auth.models import Role
from creditpool.consumptions.models import Consumption, Refund
from creditpool.core.errors import CreditPoolError, NotFound
from creditpool.http import metrics
from creditpool.http.batching import ConsumeBatcher
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.paging import Params
from creditpool.http.replay import Replayer
from creditpool.http.replay import json_response as _json
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write
from creditpool.pool import CreditPool

router = APIRouter(prefix="/v1/orgs/{org}", tags=["consumptions"], route_class=AuthorizedRoute)
Consumer = Annotated[Principal, allowed(Action.CONSUME)]
OwnReader = Annotated[Principal, allowed(Action.OWN_CONSUMPTIONS_READ)]
Refunder = Annotated[Principal, allowed(Action.REFUND)]


@router.post(
    "/consumptions",
    status_code=201,
    response_model=Consumption,
    responses={
        200: {"model": Consumption, "description": "A dry run: nothing was charged"},
        402: {"description": "Not enough credits left (`insufficient_credits`, with the balance)"},
    },
)
async def consume(org: OrgId, body: ConsumeBody, request: Request, caller: Consumer) -> Response:
    """Charge one use of a feature. Concurrent requests for one organization are committed
    together (one transaction, each request all-or-nothing with its own answer)."""
    # Async: FastAPI runs every sync dependency and a sync endpoint in the thread pool, one
    # hand-off each. The caller is an async dependency, checked by the route class before
    # the body is read (401, 403 or 404 first), as everywhere else. The charge waits in
    # the event loop for its organization's next group commit (http.batching), which runs
    # on a database thread: one hand-off per batch, none per waiting request.
    fields = body.model_dump()
    state = request.app.state
    try:
        if fields["dry_run"]:  # changes nothing: no key, no batch
            pool: CreditPool = state.pool
            result = await run_in_threadpool(lambda: pool.consume(org, **fields))
            return _json(200, result)
        replay: Replayer = state.replayer
        batcher: ConsumeBatcher = state.batcher
        response = await replay.run_ledger_async(
            request,
            caller,
            cmd.Consume.success,
            lambda key: batcher.consume(org, cmd.Consume(**fields, idempotency_key=key)),
        )
    except CreditPoolError as error:
        metrics.REFUSALS.labels(feature=body.feature, code=error.code).inc()
        raise
    metrics.CONSUMPTIONS.labels(feature=body.feature).inc()
    return response


class ConsumptionsParams(Params):
    __query__ = q.Consumptions
    status: Literal["paid", "refunded"] | None = None


@router.get("/consumptions", response_model=Page[Consumption])
def list_consumptions(
    org: OrgId, caller: OwnReader, pool: Pool, params: Annotated[ConsumptionsParams, Query()]
) -> Page[Consumption]:
    """Newest first. A member key sees only its own user's consumptions."""
    if not caller.may(Action.CONSUMPTIONS_READ):
        return params.read(pool.consumptions, org, user_id=caller.key.user_id)
    return params.read(pool.consumptions, org)


@router.get("/consumptions/{consumption_id}", response_model=Consumption)
def get_consumption(
    org: OrgId, consumption_id: ObjectId, caller: OwnReader, pool: Pool
) -> Consumption:
    found = pool.consumption(org, consumption_id)
    if caller.role is Role.MEMBER and found.user_id != caller.key.user_id:
        raise NotFound(f"consumption {consumption_id} not found in organization {org!r}")
    return found


@router.post(
    "/consumptions/{consumption_id}/refund",
    response_model=Refund,
    operation_id="refund_consumption",
)
def refund(
    org: OrgId, consumption_id: ObjectId, body: RefundBody, caller: Refunder, writes: Write
) -> Response:
    """Refund a paid consumption (the vendor's backend, or staff from the console); a
    second refund answers the first result."""
    fields = body.model_dump()
    return writes.ledger(caller, org, cmd.RefundBy, consumption_id, **fields, by=caller.key.name)
