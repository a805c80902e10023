"""Staff corrections of the ledger from the console: a grant's expiry moved (or made
permanent), and a manual adjustment of the pool. Each is asked for, reviewed on a
confirmation page, then made once (the form's nonce is the idempotency key); a refusal
shows the form again with why, and nothing changes. (Voiding part of a grant is on the void
page, which is its own confirmation.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import Response

from creditpool.core.errors import InvalidInput
from creditpool.core.money import parse_signed_credits, to_decimal
from creditpool.corrections.models import Adjustment
from creditpool.corrections.service import parse_reason
from creditpool.http.deps import ObjectId, OrgId
from creditpool.http.security import Action, Principal
from creditpool.web import service
from creditpool.web.confirm import Confirmation, Step, confirm_page, org_crumbs, reviewed
from creditpool.web.forms import Posted, Visit, Visited, refusal, see_other, text_fields
from creditpool.web.render import credits, local_time

router = APIRouter(include_in_schema=False)


def _form(
    visit: Visit, caller: Principal, kind: str, status_code: int = 200, **context: Any
) -> Response:
    shown = {"form": {}, "form_error": None, "grant": None} | context
    return visit.page(
        "staff_correction.html", status_code, caller=caller, kind=kind, nonce=uuid.uuid4().hex,
        **shown,
    )  # fmt: skip


# -- a grant's expiry ------------------------------------------------------------------------


@router.get("/staff/orgs/{org}/grants/{grant_id}/expiry")
def expiry_form(org: OrgId, grant_id: ObjectId, visit: Visited) -> Response:
    caller = visit.staff(Action.GRANTS_WRITE, org)
    org_model, grant = service.void_view(visit.pool.db, org, grant_id)
    return _form(visit, caller, "expiry", org=org_model, grant=grant)


# A grant's new expiry (commands.ChangeGrantExpiry), or none: permanent.
ExpiryFields = Annotated[dict[str, str], text_fields("expires_at", "permanent", "reason")]


@router.post("/staff/orgs/{org}/grants/{grant_id}/expiry")
def expiry(
    org: OrgId, grant_id: ObjectId, post: Posted, form: ExpiryFields, step: Step = "review"
) -> Response:
    caller = post.staff(Action.GRANTS_WRITE, org)
    org_model, grant = service.void_view(post.pool.db, org, grant_id)

    def again(status_code: int, error: str | None) -> Response:
        return _form(post, caller, "expiry", status_code, org=org_model, grant=grant,
                     form=form, form_error=error)  # fmt: skip

    def check() -> tuple[datetime | None, str | None]:
        if form["permanent"]:
            new = None
        else:
            new = service.local_instant(form["expires_at"], org_model.timezone, "expires_at")
            if new is None:
                raise InvalidInput("give the new expiry, or make the grant permanent")
            if new <= post.pool.db.now():  # the library refuses it too; said before the review
                raise InvalidInput("the new expiry must be in the future")
        return new, parse_reason(form["reason"].strip() or None)

    def change(checked: tuple[datetime | None, str | None]) -> None:
        new, why = checked
        post.pool.change_grant_expiry(
            org, grant_id, new, by=caller.key.name, reason=why, idempotency_key=post.key("expiry")
        )

    return reviewed(
        step,
        again,
        check,
        lambda checked: confirm_page(
            post, caller, _expiry_confirmation(org_model, grant, checked[0], form)
        ),
        change,
        lambda _: see_other(f"/staff/orgs/{org}?corrected=expiry#ledger"),
        message=refusal,
        check_edit=True,
    )


def _expiry_confirmation(org: Any, grant: Any, new: Any, form: dict[str, str]) -> Confirmation:
    zone = org.timezone
    before = local_time(grant.expires_at, zone) if grant.expires_at else "never (permanent)"
    after = local_time(new, zone) if new is not None else "never (permanent)"
    return Confirmation(
        title=f"Change the expiry of grant #{grant.id}?",
        action=f"/staff/orgs/{org.id}/grants/{grant.id}/expiry",
        fields=form,
        facts=[
            (
                "Grant",
                f"#{grant.id}: {credits(grant.amount)} credits, {credits(grant.remaining)} left",
            ),
            ("Expires now", before),
            ("Will expire", after),
            ("Reason", form["reason"] or "—"),
        ],
        warning=(
            "The ledger records the change (an expiry_change entry); the balance at any past"
            " instant stays as it was."
        ),
        submit="Change the expiry",
        cancel=f"/staff/orgs/{org.id}",
        crumbs=org_crumbs(org),
    )


# -- manual adjustments ------------------------------------------------------------------------


@router.get("/staff/orgs/{org}/adjust")
def adjust_form(org: OrgId, visit: Visited) -> Response:
    caller = visit.staff(Action.GRANTS_WRITE, org)
    pool = visit.pool
    return _form(visit, caller, "adjust", org=pool.org(org), balance=pool.balance(org))


# A manual adjustment (commands.Adjust), its credits signed by its direction.
AdjustFields = Annotated[
    dict[str, str], text_fields("direction", "amount", "reason", direction="debit")
]


@router.post("/staff/orgs/{org}/adjust")
def adjust(org: OrgId, post: Posted, form: AdjustFields, step: Step = "review") -> Response:
    caller = post.staff(Action.GRANTS_WRITE, org)
    pool = post.pool
    org_model, balance = pool.org(org), pool.balance(org)
    direction, reason = form["direction"], form["reason"]
    signed = ("-" if direction == "debit" else "") + form["amount"].strip()

    def again(status_code: int, error: str | None) -> Response:
        return _form(post, caller, "adjust", status_code, org=org_model, balance=balance,
                     form=form, form_error=error)  # fmt: skip

    def check() -> int:
        if direction not in ("debit", "credit"):
            raise InvalidInput("choose whether to debit or credit the pool")
        units = parse_signed_credits(signed, field="amount")
        if parse_reason(reason.strip() or None, required=True) is None:
            raise InvalidInput("give the reason")
        return units

    def review(units: int) -> Response:
        left_after = balance.left + to_decimal(units)
        confirmation = _adjust_confirmation(org_model, balance.left, units, left_after, form)
        return confirm_page(post, caller, confirmation)

    def make(_: int) -> Adjustment:
        return pool.adjust(
            org, signed, reason=reason.strip(), by=caller.key.name,
            idempotency_key=post.key("adjust"),
        )  # fmt: skip

    return reviewed(
        step,
        again,
        check,
        review,
        make,
        lambda made: see_other(f"/staff/orgs/{org}?adjusted={made.id}#ledger"),
        message=refusal,
        check_edit=True,
    )


def _adjust_confirmation(
    org: Any, left: Decimal, units: int, left_after: Decimal, form: dict[str, str]
) -> Confirmation:
    debit = units < 0
    shown = credits(abs(to_decimal(units)))
    return Confirmation(
        title=f"{'Debit' if debit else 'Credit'} {shown} credits {'from' if debit else 'to'} {org.name}?",
        action=f"/staff/orgs/{org.id}/adjust",
        fields=form,
        facts=[
            ("Left now", credits(left)),
            ("Left after", credits(left_after)),
            ("Reason", form["reason"]),
        ],
        warning=(
            "A debit is drawn from the grants like a consumption (soonest-expiring first) and"
            " is refused when Left is short; a credit goes back to the most recent grants as a"
            " refund does. The ledger records it as an adjustment."
        ),
        submit="Debit the pool" if debit else "Credit the pool",
        danger=debit,
        cancel=f"/staff/orgs/{org.id}",
        crumbs=org_crumbs(org),
    )
