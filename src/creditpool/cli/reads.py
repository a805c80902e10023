"""Reading a pool: balance, grants, consumption history, ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from creditpool.cli import render
from creditpool.cli.context import JsonFlag, Limit, OrgId, instant, open_pool

Since = Annotated[
    datetime | None,
    typer.Option(
        parser=instant, metavar="YYYY-MM-DD|ISO-DATETIME", help="From this instant (included)."
    ),
]
Until = Annotated[
    datetime | None,
    typer.Option(parser=instant, metavar="YYYY-MM-DD|ISO-DATETIME", help="Before this instant."),
]


def balance(
    ctx: typer.Context,
    org_id: OrgId,
    at: Annotated[
        datetime | None,
        typer.Option(
            parser=instant, metavar="YYYY-MM-DD|ISO-DATETIME", help="A past instant (default: now)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Total, used and left over the active grants; held and upcoming apart."""
    b = open_pool(ctx).balance(org_id, at=at)
    if as_json:
        render.emit_json(b)
        return
    render.line(f"Balance of {b.org_id} at {render.when(b.at)}")
    render.table(
        None,
        ["Total=", "Used=", "Left=", "Held=", "Upcoming="],
        [(b.total, b.used, b.left, b.held, b.upcoming)],
    )


def grants(ctx: typer.Context, org_id: OrgId, as_json: JsonFlag = False) -> None:
    """Every grant of an organization with its state now (the purchase history)."""
    found = open_pool(ctx).grants(org_id)
    render.listing(
        found,
        as_json,
        f"Grants of {org_id}",
        [
            "ID",
            "Amount=",
            "Remaining=",
            "State",
            "Granted",
            "Available from",
            "Expires",
            "Ref~",
            "Note~",
        ],
        (
            (
                g.id,
                g.amount,
                g.remaining,
                g.state,
                g.granted_at,
                g.available_from,
                g.expires_at,
                g.reference,
                g.note,
            )
            for g in found
        ),
    )


def history(
    ctx: typer.Context,
    org_id: OrgId,
    since: Since = None,
    until: Until = None,
    feature: Annotated[str | None, typer.Option(help="Only this feature's key.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    status: Annotated[str | None, typer.Option(help="paid or refunded.")] = None,
    limit: Limit = 50,
    before_id: Annotated[
        int | None, typer.Option(help="Older than this consumption id (the next page).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Consumptions, newest first (a settled hold's consumption names its hold)."""
    found = open_pool(ctx).consumptions(
        org_id,
        since=since,
        until=until,
        feature=feature,
        user_id=user,
        team_id=team,
        status=status,
        before_id=before_id,
        limit=limit,
    )
    render.listing(
        found,
        as_json,
        f"Usage history of {org_id}",
        ["ID", "Time", "Feature", "Name~", "Action", "User", "Team", "Credits=", "Status", "Hold"],
        (
            (
                c.id,
                c.created_at,
                c.feature,
                c.feature_name,
                c.action,
                c.user_id,
                c.team_id,
                c.cost,
                c.status,
                c.hold_id,
            )
            for c in found
        ),
        render.next_before_id(found, limit),
    )


def ledger(
    ctx: typer.Context,
    org_id: OrgId,
    since: Since = None,
    until: Until = None,
    after_seq: Annotated[int | None, typer.Option(help="After this entry (paging).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (1-1000).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every change of the balance, in order (Left before and after)."""
    entries = open_pool(ctx).ledger(
        org_id, since=since, until=until, after_seq=after_seq, limit=limit
    )
    render.listing(
        entries,
        as_json,
        f"Ledger of {org_id}",
        [
            "Seq",
            "At",
            "Action",
            "Method",
            "Credits=",
            "Before=",
            "After=",
            "Grant",
            "Consumption",
            "Hold",
        ],
        (
            (
                e.seq,
                e.at,
                e.action,
                e.method,
                e.credits,
                e.total_before,
                e.total_after,
                e.grant_id,
                e.consumption_id,
                e.hold_id,
            )
            for e in entries
        ),
    )
