"""Changes to a pool: grant, void, consume, refund. Each takes an idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from creditpool.cli import render
from creditpool.cli.context import (
    Breakdown,
    By,
    ExpiresAt,
    FeatureKey,
    FeatureName,
    GrantId,
    IdempotencyKey,
    Integration,
    JsonFlag,
    Metadata,
    Note,
    OrgId,
    Requests,
    UsageAction,
    instant_option,
    open_pool,
    who,
)

# Amounts are positional; without this a negative one would be read as an unknown option
# and refused with a confusing message instead of the library's clear one.
AMOUNT_ARGS: dict[str, Any] = {"ignore_unknown_options": True}


def grant(
    ctx: typer.Context,
    org_id: OrgId,
    amount: Annotated[str, typer.Argument(help="Credits, e.g. 100 or 12.5 (at most 4 decimals).")],
    expires_at: ExpiresAt = None,
    available_from: Annotated[datetime | None, instant_option("Default: now.")] = None,
    by: By = None,
    note: Note = None,
    reference: Annotated[str | None, typer.Option(help="E.g. an invoice number.")] = None,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Deposit credits into an organization's pool."""
    g = open_pool(ctx).grant(
        org_id,
        amount,
        expires_at=expires_at,
        available_from=available_from,
        granted_by=who(by),
        note=note,
        reference=reference,
        idempotency_key=idempotency_key,
    )
    expiry = f"expires {render.when(g.expires_at)}" if g.expires_at else "permanent"
    render.result(
        g,
        as_json,
        f"grant {g.id}: {g.amount} credits to {org_id}, {g.state}, "
        f"available from {render.when(g.available_from)}, {expiry}",
    )


def void(
    ctx: typer.Context,
    org_id: OrgId,
    grant_id: GrantId,
    amount: Annotated[
        str | None,
        typer.Option(help="Void only this much of what it has left; the grant stays."),
    ] = None,
    by: By = None,
    reason: Annotated[str | None, typer.Option(help="Why, e.g. 'duplicate'.")] = None,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Void a mistaken grant (its remaining credits leave the pool), or part of it."""
    pool = open_pool(ctx)
    g = pool.void_grant(
        org_id,
        grant_id,
        amount=amount,
        by=who(by),
        reason=reason,
        idempotency_key=idempotency_key,
    )
    if amount is not None:
        text = (
            f"grant {g.id} of {org_id}: {amount} credits voided, {g.remaining} left"
            f" ({g.voided} voided in all)"
        )
    else:
        text = (
            f"grant {g.id} of {org_id} ({g.amount} credits) voided at"
            f" {render.when(g.voided_at)}: what was left of it has left the pool"
        )
    render.result(g, as_json, text)


def grant_expiry(
    ctx: typer.Context,
    org_id: OrgId,
    grant_id: GrantId,
    expires_at: Annotated[
        datetime | None, instant_option("The new expiry (in the future).")
    ] = None,
    permanent: Annotated[bool, typer.Option(help="Make the grant permanent.")] = False,
    by: By = None,
    reason: Annotated[str | None, typer.Option(help="Why, e.g. 'renewal delayed'.")] = None,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Move a grant's expiry earlier or later, or make it permanent (a staff correction:
    a ledger expiry_change entry)."""
    if (expires_at is None) == (not permanent):
        raise typer.BadParameter("give either --expires-at or --permanent")
    g = open_pool(ctx).change_grant_expiry(
        org_id,
        grant_id,
        None if permanent else expires_at,
        by=who(by),
        reason=reason,
        idempotency_key=idempotency_key,
    )
    expiry = f"expires {render.when(g.expires_at)}" if g.expires_at else "is permanent"
    render.result(g, as_json, f"grant {g.id} of {org_id} now {expiry}")


def adjust(
    ctx: typer.Context,
    org_id: OrgId,
    credits: Annotated[
        str, typer.Argument(help="Signed credits: -5 debits the pool, 5 credits it back.")
    ],
    reason: Annotated[str, typer.Option(help="Why (required), e.g. 'goodwill'.")],
    by: By = None,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """A manual adjustment (goodwill, a correction that is not a use of a feature): a debit
    is drawn like a consumption, a credit goes back like a refund."""
    a = open_pool(ctx).adjust(
        org_id, credits, reason=reason, by=who(by), idempotency_key=idempotency_key
    )
    way = "debited from" if a.credits < 0 else "credited to"
    render.result(
        a,
        as_json,
        f"adjustment {a.id}: {abs(a.credits)} credits {way} {org_id}"
        f" ({render.allocations(a.allocations)})",
    )


def consume(
    ctx: typer.Context,
    org_id: OrgId,
    feature: FeatureKey,
    user: Annotated[str, typer.Option(help="The user who used the feature.")],
    quantity: Annotated[
        str | None, typer.Option(help="Units used, for variable-cost features.")
    ] = None,
    feature_name: FeatureName = None,
    action: UsageAction = None,
    integration: Integration = None,
    breakdown_: Breakdown = None,
    requests: Requests = None,
    metadata: Metadata = None,
    idempotency_key: IdempotencyKey = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the cost and the grants; change nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Charge an organization for one use of a feature: all or nothing."""
    c = open_pool(ctx).consume(
        org_id,
        feature,
        user_id=user,
        quantity=quantity,
        feature_name=feature_name,
        action=action,
        integration=integration,
        breakdown=breakdown_,
        requests=requests,
        metadata=metadata,
        idempotency_key=idempotency_key,
        dry_run=dry_run,
    )
    from creditpool.consumptions.models import ConsumptionStatus  # not for `--help`

    drawn = render.allocations(c.allocations)
    if c.status is ConsumptionStatus.DRY_RUN:
        text = f"dry run: {c.feature} would cost {c.cost} credits ({drawn}); nothing charged"
    else:
        text = f"consumption {c.id}: {c.feature} by {c.user_id}, {c.cost} credits ({drawn})"
    render.result(c, as_json, text)


def refund(
    ctx: typer.Context,
    org_id: OrgId,
    consumption_id: Annotated[int, typer.Argument(help="The consumption's id.")],
    reason: Annotated[str | None, typer.Option(help="Why, e.g. 'downvoted'.")] = None,
    idempotency_key: IdempotencyKey = None,
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """Refund a paid consumption; refunding it again returns the first result."""
    pool = open_pool(ctx)
    r = pool.refund(
        org_id, consumption_id, reason=reason, idempotency_key=idempotency_key, by=who(by)
    )
    render.result(
        r,
        as_json,
        f"consumption {r.consumption_id} refunded: {r.restored} credits restored "
        f"({render.allocations(r.restorations)}), {r.lost} lost",
    )
