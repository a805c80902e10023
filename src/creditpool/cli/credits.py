"""Changes to a pool: grant, void, consume, refund. Each takes an idempotency key.

Each is declared by what it takes and the line it prints for people (see ``calls.change``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from creditpool.cli import render
from creditpool.cli.calls import change
from creditpool.cli.context import (
    COUNTED,
    By,
    Details,
    ExpiresAt,
    FeatureKey,
    GrantId,
    IdempotencyKey,
    Note,
    OrgId,
    instant_option,
)

if TYPE_CHECKING:  # models load pydantic: not for `--help`
    from creditpool.consumptions.models import Consumption, Refund
    from creditpool.corrections.models import Adjustment
    from creditpool.grants.models import Grant

# Amounts are positional; without this a negative one would be read as an unknown option
# and refused with a confusing message instead of the library's clear one.
AMOUNT_ARGS: dict[str, Any] = {"ignore_unknown_options": True}


@change("grant", by="granted_by")
def grant(
    g: Grant,
    org_id: OrgId,
    amount: Annotated[str, typer.Argument(help="Credits, e.g. 100 or 12.5 (at most 4 decimals).")],
    expires_at: ExpiresAt = None,
    available_from: Annotated[datetime | None, instant_option("Default: now.")] = None,
    by: By = None,
    note: Note = None,
    reference: Annotated[str | None, typer.Option(help="E.g. an invoice number.")] = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Deposit credits into an organization's pool."""
    expiry = f"expires {render.when(g.expires_at)}" if g.expires_at else "permanent"
    return (
        f"grant {g.id}: {g.amount} credits to {org_id}, {g.state}, "
        f"available from {render.when(g.available_from)}, {expiry}"
    )


@change("void_grant", by="by")
def void(
    g: Grant,
    org_id: OrgId,
    grant_id: GrantId,
    amount: Annotated[
        str | None,
        typer.Option(help="Void only this much of what it has left; the grant stays."),
    ] = None,
    by: By = None,
    reason: Annotated[str | None, typer.Option(help="Why, e.g. 'duplicate'.")] = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Void a mistaken grant (its remaining credits leave the pool), or part of it."""
    if amount is not None:
        return (
            f"grant {g.id} of {org_id}: {amount} credits voided, {g.remaining} left"
            f" ({g.voided} voided in all)"
        )
    return (
        f"grant {g.id} of {org_id} ({g.amount} credits) voided at"
        f" {render.when(g.voided_at)}: what was left of it has left the pool"
    )


def _one_expiry(expires_at: datetime | None, permanent: bool, **_: Any) -> None:
    if (expires_at is None) == (not permanent):
        raise typer.BadParameter("give either --expires-at or --permanent")


@change("change_grant_expiry", by="by", local=["permanent"], check=_one_expiry)
def grant_expiry(
    g: Grant,
    org_id: OrgId,
    grant_id: GrantId,
    expires_at: Annotated[
        datetime | None, instant_option("The new expiry (in the future).")
    ] = None,
    permanent: Annotated[bool, typer.Option(help="Make the grant permanent.")] = False,
    by: By = None,
    reason: Annotated[str | None, typer.Option(help="Why, e.g. 'renewal delayed'.")] = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Move a grant's expiry earlier or later, or make it permanent (a staff correction:
    a ledger expiry_change entry)."""
    expiry = f"expires {render.when(g.expires_at)}" if g.expires_at else "is permanent"
    return f"grant {g.id} of {org_id} now {expiry}"


@change("adjust", by="by")
def adjust(
    a: Adjustment,
    org_id: OrgId,
    credits: Annotated[
        str, typer.Argument(help="Signed credits: -5 debits the pool, 5 credits it back.")
    ],
    reason: Annotated[str, typer.Option(help="Why (required), e.g. 'goodwill'.")],
    by: By = None,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """A manual adjustment (goodwill, a correction that is not a use of a feature): a debit
    is drawn like a consumption, a credit goes back like a refund."""
    way = "debited from" if a.credits < 0 else "credited to"
    return (
        f"adjustment {a.id}: {abs(a.credits)} credits {way} {org_id}"
        f" ({render.allocations(a.allocations)})"
    )


@change("consume", user="user_id")
def consume(
    c: Consumption,
    org_id: OrgId,
    feature: FeatureKey,
    user: Annotated[str, typer.Option(help="The user who used the feature.")],
    quantity: Annotated[
        str | None, typer.Option(help="Units used, for variable-cost features.")
    ] = None,
    details: Details = COUNTED,
    idempotency_key: IdempotencyKey = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the cost and the grants; change nothing.")
    ] = False,
) -> str:
    """Charge an organization for one use of a feature: all or nothing."""
    from creditpool.consumptions.models import ConsumptionStatus  # not for `--help`

    drawn = render.allocations(c.allocations)
    if c.status is ConsumptionStatus.DRY_RUN:
        return f"dry run: {c.feature} would cost {c.cost} credits ({drawn}); nothing charged"
    return f"consumption {c.id}: {c.feature} by {c.user_id}, {c.cost} credits ({drawn})"


@change("refund", by="by")
def refund(
    r: Refund,
    org_id: OrgId,
    consumption_id: Annotated[int, typer.Argument(help="The consumption's id.")],
    reason: Annotated[str | None, typer.Option(help="Why, e.g. 'downvoted'.")] = None,
    idempotency_key: IdempotencyKey = None,
    by: By = None,
) -> str:
    """Refund a paid consumption; refunding it again returns the first result."""
    return (
        f"consumption {r.consumption_id} refunded: {r.restored} credits restored "
        f"({render.allocations(r.restorations)}), {r.lost} lost"
    )
