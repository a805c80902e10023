"""Refunds from the console: an organization's consumptions, each paid one with a
"Refund…" button, a confirmation page that asks for the reason, and the refund (once per
form: its nonce is the idempotency key), after which the ledger shows it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from creditpool import commands
from creditpool.consumptions.models import Consumption, ConsumptionStatus
from creditpool.consumptions.models import Refund as RefundResult
from creditpool.core.errors import InvalidInput
from creditpool.http.deps import ObjectId, OrgId
from creditpool.http.security import Action, Principal
from creditpool.orgs.models import Org
from creditpool.web import console_views as views
from creditpool.web.forms import Posted, Visit, Visited, attempt, refusal, see_other, text_fields

router = APIRouter(include_in_schema=False)
Status = Annotated[str | None, Query(pattern=r"^(paid|refunded)$")]


@router.get("/staff/orgs/{org}/consumptions")
def org_consumptions(
    org: OrgId,
    visit: Visited,
    status: Status = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    caller = visit.staff(Action.CONSUMPTIONS_READ, org)
    size = views.CONSUMPTIONS_PAGE_SIZE
    view = views.consumptions_page(visit.pool.db, org, before, status, size)
    return visit.page(
        "staff_consumptions.html", caller=caller, view=view, status=status, before=before
    )


def _refund_page(
    visit: Visit,
    caller: Principal,
    org: Org,
    consumption: Consumption,
    names: dict[str, str],
    status_code: int = 200,
    **extra: Any,
) -> Response:
    shown = {"form_error": None, "reason": None, "first": None} | extra
    return visit.page(
        "staff_refund.html", status_code, caller=caller, org=org, c=consumption,
        feature_name=names.get(consumption.feature, consumption.feature),
        nonce=uuid.uuid4().hex, **shown,
    )  # fmt: skip


@router.get("/staff/orgs/{org}/consumptions/{consumption_id}/refund")
def refund_confirm(org: OrgId, consumption_id: ObjectId, visit: Visited) -> Response:
    """The refund's confirmation, with its required reason; for a consumption refunded
    already, that first refund."""
    caller = visit.staff(Action.REFUND, org)
    org_model, consumption = views.consumption_view(visit.pool.db, org, consumption_id)
    names = {f.key: f.name for f in visit.pool.features()}
    return _refund_page(visit, caller, org_model, consumption, names)


RefundFields = Annotated[dict[str, str], text_fields(*commands.Refund.body_fields())]


@router.post("/staff/orgs/{org}/consumptions/{consumption_id}/refund")
def refund(org: OrgId, consumption_id: ObjectId, post: Posted, form: RefundFields) -> Response:
    """Refund with the reason given (a second refund answers the first); refused: the
    confirmation again, with why (no reason, no active grant to restore to)."""
    caller = post.staff(Action.REFUND, org)
    pool, reason = post.pool, form["reason"]
    org_model, before = views.consumption_view(pool.db, org, consumption_id)
    names = {f.key: f.name for f in pool.features()}

    def make() -> RefundResult:
        if not reason.strip():
            raise InvalidInput("give the reason for the refund")
        return pool.refund(org, consumption_id, reason=reason.strip(),
                           idempotency_key=post.key("refund"), by=caller.key.name)  # fmt: skip

    def again(status_code: int, error: str | None) -> Response:
        return _refund_page(post, caller, org_model, before, names, status_code,
                            form_error=error, reason=reason)  # fmt: skip

    def done(first: RefundResult) -> Response:
        if before.status is ConsumptionStatus.REFUNDED:  # refunded before: its first refund
            _, now = views.consumption_view(pool.db, org, consumption_id)
            return _refund_page(post, caller, org_model, now, names, first=first)
        return see_other(f"/staff/orgs/{org}?refunded={consumption_id}#ledger")

    return attempt(make, again, done, message=refusal)
