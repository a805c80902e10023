"""Holds: reserve credits before a long job, then settle its real cost or release them.

``hold`` reserves, ``settle`` turns an open hold into one paid consumption, ``release``
gives its credits back, ``holds`` lists them (or shows one). Each change takes an
idempotency key, like every other change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from creditpool.cli import render
from creditpool.cli.calls import change
from creditpool.cli.context import (
    COUNTED,
    USE_DETAILS,
    Details,
    IdempotencyKey,
    JsonFlag,
    Limit,
    OrgId,
    older_than,
    open_pool,
)
from creditpool.core.holds import HoldStatus

if TYPE_CHECKING:  # models load pydantic: not for `--help`
    from creditpool.consumptions.models import Consumption
    from creditpool.holds.models import Hold

HoldId = Annotated[int, typer.Argument(help="The hold's id.")]
COLUMNS: render.Columns = {
    "ID": "id",
    "Created": "created_at",
    "Expires": "expires_at",
    "Status": "status",
    "Feature": "feature",
    "User": "user_id",
    "Credits=": "amount",
    "Consumption": "consumption_id",
}


@change("hold", user="user_id")
def hold(
    h: Hold,
    org_id: OrgId,
    feature: Annotated[str, typer.Argument(help="The feature's key, e.g. topic_detection.")],
    user: Annotated[str, typer.Option(help="The user who runs the job.")],
    quantity: Annotated[
        str | None, typer.Option(help="Estimated units, priced from the catalog.")
    ] = None,
    amount: Annotated[
        str | None, typer.Option(help="Credits to hold (instead of a quantity).")
    ] = None,
    ttl_s: Annotated[
        int | None, typer.Option("--ttl-s", help="Seconds until it expires (default 900).")
    ] = None,
    details: Details = USE_DETAILS,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Reserve credits for a job whose cost is known only at its end: all or nothing."""
    return (
        f"hold {h.id}: {h.amount} credits held for {h.feature} by {h.user_id} "
        f"until {render.when(h.expires_at)} ({render.allocations(h.allocations)})"
    )


@change("settle", user="user_id")
def settle(
    c: Consumption,
    ctx: typer.Context,
    org_id: OrgId,
    hold_id: HoldId,
    cost: Annotated[str | None, typer.Option(help="The real cost in credits.")] = None,
    quantity: Annotated[
        str | None, typer.Option(help="Units used, priced from the catalog now.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Default: the hold's user.")] = None,
    details: Details = COUNTED,
    idempotency_key: IdempotencyKey = None,
) -> str:
    """Charge an open hold's real cost: one paid consumption; the rest goes back."""
    closed = open_pool(ctx).hold_of(org_id, hold_id)
    return (
        f"consumption {c.id}: {c.feature} by {c.user_id}, {c.cost} credits "
        f"({render.allocations(c.allocations)}); hold {hold_id} settled, "
        f"{closed.released} credits back, {closed.lost} lost"
    )


@change("release")
def release(h: Hold, org_id: OrgId, hold_id: HoldId, idempotency_key: IdempotencyKey = None) -> str:
    """Give an open hold's credits back (what was held on a grant now gone is lost)."""
    return f"hold {h.id} released: {h.released} credits back, {h.lost} lost"


def holds(
    ctx: typer.Context,
    org_id: OrgId,
    hold_id: Annotated[
        int | None, typer.Argument(help="Show this hold only (with its grants).")
    ] = None,
    status: Annotated[str | None, typer.Option(help="open, settled, released or expired.")] = None,
    limit: Limit = 50,
    before_id: Annotated[int | None, older_than("hold")] = None,
    as_json: JsonFlag = False,
) -> None:
    """An organization's holds, newest first; or one hold with ``HOLD_ID``."""
    pool = open_pool(ctx)
    if hold_id is not None:
        one = pool.hold_of(org_id, hold_id)
        render.record(one, as_json, f"Hold {one.id} of {one.org_id}", fields(one))
        return
    found = pool.holds(org_id, status=status, before_id=before_id, limit=limit)
    render.records(found, as_json, f"Holds of {org_id}", COLUMNS, render.next_page(found, limit))


def fields(h: Hold) -> list[tuple[str, object]]:
    """One hold's fields, and the grants its credits are (or were) held on."""
    closed = h.status is not HoldStatus.OPEN
    return [
        ("Hold", h.id),
        ("Status", h.status),
        ("Credits", h.amount),
        ("Created", h.created_at),
        ("Expires", h.expires_at),
        ("Closed", h.closed_at),
        ("Feature", h.feature),
        ("Quantity", h.quantity),
        ("Feature name", h.feature_name),
        ("Action", h.action),
        ("Integration", h.integration),
        ("User", h.user_id),
        ("Team", h.team_id),
        ("Metadata", h.metadata),
        ("Consumption", h.consumption_id),
        ("Released", h.released if closed else None),
        ("Lost", h.lost if closed else None),
        ("Held on", render.allocations(h.allocations)),
    ]
