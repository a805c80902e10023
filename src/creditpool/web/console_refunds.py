"""Refunds from the console: an organization's consumptions, each paid one with a
"Refund…" button, a confirmation page that asks for the reason, and the refund (once per
form: its nonce is the idempotency key), after which the ledger shows it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from creditpool.consumptions.models import Consumption, ConsumptionStatus
from creditpool.core.errors import CreditPoolError, InvalidInput, NotFound
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.security import Action, Principal
from creditpool.orgs.models import Org
from creditpool.web import console_views as views
from creditpool.web.confirm import (
    Csrf,
    FormText,
    Nonce,
    form_key,
    refusal,
    staff_submitter,
    staff_viewer,
)
from creditpool.web.render import page

router = APIRouter(include_in_schema=False)
Status = Annotated[str | None, Query(pattern=r"^(paid|refunded)$")]


@router.get("/staff/orgs/{org}/consumptions")
def org_consumptions(
    org: OrgId,
    request: Request,
    pool: Pool,
    status: Status = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    caller = staff_viewer(request, Action.CONSUMPTIONS_READ, org)
    view = views.consumptions_page(pool.db, org, before, status, views.CONSUMPTIONS_PAGE_SIZE)
    return page(
        request, "staff_consumptions.html", caller=caller, view=view, status=status,
        before=before,
    )  # fmt: skip


def _refund_page(
    request: Request,
    caller: Principal,
    org: Org,
    consumption: Consumption,
    names: dict[str, str],
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context: dict[str, Any] = {"form_error": None, "reason": None, "first": None}
    context.update(extra)
    return page(
        request, "staff_refund.html", status_code=status_code, caller=caller, org=org,
        c=consumption, feature_name=names.get(consumption.feature, consumption.feature),
        nonce=uuid.uuid4().hex, **context,
    )  # fmt: skip


@router.get("/staff/orgs/{org}/consumptions/{consumption_id}/refund")
def refund_confirm(org: OrgId, consumption_id: ObjectId, request: Request, pool: Pool) -> Response:
    """The refund's confirmation, with its required reason; for a consumption refunded
    already, that first refund."""
    caller = staff_viewer(request, Action.REFUND, org)
    org_model, consumption = views.consumption_view(pool.db, org, consumption_id)
    names = {f.key: f.name for f in pool.features()}
    return _refund_page(request, caller, org_model, consumption, names)


@router.post("/staff/orgs/{org}/consumptions/{consumption_id}/refund")
def refund(
    org: OrgId,
    consumption_id: ObjectId,
    request: Request,
    pool: Pool,
    reason: FormText = "",
    nonce: Nonce = "",
    csrf: Csrf = "",
) -> Response:
    """Refund with the reason given (a second refund answers the first); refused: the
    confirmation again, with why (no reason, no active grant to restore to)."""
    caller = staff_submitter(request, csrf, Action.REFUND, org)
    org_model, before = views.consumption_view(pool.db, org, consumption_id)
    names = {f.key: f.name for f in pool.features()}
    try:
        if not reason.strip():
            raise InvalidInput("give the reason for the refund")
        first = pool.refund(
            org,
            consumption_id,
            reason=reason.strip(),
            idempotency_key=form_key("refund", nonce),
            by=caller.key.name,
        )
    except CreditPoolError as error:
        if isinstance(error, NotFound):
            raise
        return _refund_page(request, caller, org_model, before, names, error.status,
                            form_error=refusal(error), reason=reason)  # fmt: skip
    if before.status is ConsumptionStatus.REFUNDED:  # refunded before: its first refund
        _, now = views.consumption_view(pool.db, org, consumption_id)
        return _refund_page(request, caller, org_model, now, names, first=first)
    return RedirectResponse(f"/staff/orgs/{org}?refunded={consumption_id}#ledger", status_code=303)
