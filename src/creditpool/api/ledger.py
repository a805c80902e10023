"""The balance and the ledger over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from creditpool import queries as q
from creditpool.api.lists import Listing, paged
from creditpool.http.deps import OrgId, Pool
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Instant, Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.ledger.models import Balance, LedgerEntry

router = APIRouter(
    prefix="/v1/orgs/{org}", tags=["balance and ledger"], route_class=AuthorizedRoute
)
BalanceReader = Annotated[Principal, allowed(Action.BALANCE_READ)]
LedgerReader = Annotated[Principal, allowed(Action.LEDGER_READ)]


@router.get("/balance", response_model=Balance, operation_id="get_balance")
def balance(
    org: OrgId,
    caller: BalanceReader,
    pool: Pool,
    at: Annotated[Instant | None, Query(description="A past instant, with offset")] = None,
) -> Balance:
    return pool.balance(org, at=at)


@router.get("/ledger", operation_id="list_ledger_entries", response_model=Page[LedgerEntry])
@paged(q.Ledger)
def ledger(org: OrgId, caller: LedgerReader, pool: Pool) -> Listing:
    """Oldest first, in sequence order."""
    return pool.ledger
