"""Reading a pool: balance, grants, consumption history, ledger."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from creditpool.cli import render
from creditpool.cli.calls import listing
from creditpool.cli.context import (
    JsonFlag,
    Limit,
    LimitOrAll,
    OrgId,
    instant_option,
    older_than,
    open_pool,
)
from creditpool.core.forecast import WINDOW_DAYS_DEFAULT, ForecastStatus

if TYPE_CHECKING:  # models load pydantic: not for `--help`
    from creditpool.consumptions.models import Consumption
    from creditpool.corrections.models import Correction
    from creditpool.forecast.models import Forecast
    from creditpool.grants.models import Grant
    from creditpool.ledger.models import LedgerEntry

Since = Annotated[datetime | None, instant_option("From this instant (included).")]
Until = Annotated[datetime | None, instant_option("Before this instant.")]


# What each list shows: a column (its name and mark, see ``render.table``) per attribute.
BALANCE_COLUMNS: render.Columns = {
    "Total=": "total",
    "Used=": "used",
    "Left=": "left",
    "Held=": "held",
    "Upcoming=": "upcoming",
}
GRANT_COLUMNS: render.Columns = {
    "ID": "id",
    "Amount=": "amount",
    "Remaining=": "remaining",
    "State": "state",
    "Granted": "granted_at",
    "Available from": "available_from",
    "Expires": "expires_at",
    "Ref~": "reference",
    "Note~": "note",
}
CONSUMPTION_COLUMNS: render.Columns = {
    "ID": "id",
    "Time": "created_at",
    "Feature": "feature",
    "Name~": "feature_name",
    "Action": "action",
    "User": "user_id",
    "Team": "team_id",
    "Credits=": "cost",
    "Status": "status",
    "Hold": "hold_id",
}
LEDGER_COLUMNS: render.Columns = {
    "Seq": "seq",
    "At": "at",
    "Action": "action",
    "Method": "method",
    "Credits=": "credits",
    "Before=": "total_before",
    "After=": "total_after",
    "Grant": "grant_id",
    "Consumption": "consumption_id",
    "Hold": "hold_id",
}
CORRECTION_COLUMNS: render.Columns = {
    "Id": "id",
    "At": "at",
    "Kind": "kind",
    "Grant": "grant_id",
    "Credits=": "credits",
    "Expiry before": "expires_before",
    "Expiry after": "expires_after",
    "By": "by",
    "Reason": "reason",
}
TEAM_FORECAST_COLUMNS: render.Columns = {
    "Team": "team_id",
    "Name~": "name",
    "Used=": "used",
    "Projected=": "projected",
    "Limit=": "monthly_limit",
    "Over limit": "projected_over",
}


def balance(
    ctx: typer.Context,
    org_id: OrgId,
    at: Annotated[datetime | None, instant_option("A past instant (default: now).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Total, used and left over the active grants; held and upcoming apart."""
    b = open_pool(ctx).balance(org_id, at=at)
    if as_json:
        render.emit_json(b)
        return
    render.line(f"Balance of {b.org_id} at {render.when(b.at)}")
    render.table_of(None, [b], BALANCE_COLUMNS)


def forecast(
    ctx: typer.Context,
    org_id: OrgId,
    window_days: Annotated[
        int,
        typer.Option(help="The pace is the paid usage of this many days ending now (1-365)."),
    ] = WINDOW_DAYS_DEFAULT,
    as_json: JsonFlag = False,
) -> None:
    """When the credits run out at the recent pace, what expires unused, and each team's
    projected month-end usage against its limit."""
    f = open_pool(ctx).forecast(org_id, window_days=window_days)
    if as_json:
        render.emit_json(f)
        return
    render.line(forecast_paragraph(f))
    if f.teams:
        title = f"Teams in {f.month}, projected to the end of the month"
        render.table_of(title, f.teams, TEAM_FORECAST_COLUMNS)


def forecast_paragraph(f: Forecast) -> str:
    """The forecast in sentences; days in the organization's zone."""
    window = "day" if f.window_days == 1 else f"{f.window_days} days"
    pace = f"At the pace of the last {window} ({f.daily_pace} credits a day)"
    if f.status is ForecastStatus.NO_USAGE:
        text = f"No credits were paid in the last {window}: credits are not being used."
    elif f.status is ForecastStatus.LASTS:
        text = f"{pace}, the {f.left} credits left last beyond {f.horizon_on}."
    elif f.runs_out_at == f.at:
        text = f"{pace}, the credits have run out: none are left."
    else:
        text = f"{pace}, the {f.left} credits left run out around {f.runs_out_on}."
    if f.expiring:
        days = ", ".join(f"{x.credits} on {x.on}" for x in f.expiring)
        text += f" {f.expiring_unused} credits expire unused ({days})."
    return f"{text} Days in {f.timezone}."


@listing("grants", GRANT_COLUMNS)
def grants(found: list[Grant], org_id: OrgId) -> str:
    """Every grant of an organization with its state now (the purchase history)."""
    return f"Grants of {org_id}"


@listing("consumptions", CONSUMPTION_COLUMNS, more="--before-id", user="user_id", team="team_id")
def history(
    found: list[Consumption],
    org_id: OrgId,
    since: Since = None,
    until: Until = None,
    feature: Annotated[str | None, typer.Option(help="Only this feature's key.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team.")] = None,
    status: Annotated[str | None, typer.Option(help="paid or refunded.")] = None,
    limit: Limit = 50,
    before_id: Annotated[int | None, older_than("consumption")] = None,
) -> str:
    """Consumptions, newest first (a settled hold's consumption names its hold)."""
    return f"Usage history of {org_id}"


@listing("ledger", LEDGER_COLUMNS)
def ledger(
    found: list[LedgerEntry],
    org_id: OrgId,
    since: Since = None,
    until: Until = None,
    after_seq: Annotated[int | None, typer.Option(help="After this entry (paging).")] = None,
    limit: LimitOrAll = None,
) -> str:
    """Every change of the balance, in order (Left before and after)."""
    return f"Ledger of {org_id}"


@listing("corrections", CORRECTION_COLUMNS, more="--before-id", grant="grant_id")
def corrections(
    found: list[Correction],
    org_id: OrgId,
    kind: Annotated[
        str | None,
        typer.Option(help="expiry_change, void, partial_void or adjustment."),
    ] = None,
    grant: Annotated[int | None, typer.Option(help="Only this grant's.")] = None,
    before_id: Annotated[int | None, typer.Option(help="Older than this one (paging).")] = None,
    limit: Limit = 100,
) -> str:
    """Staff corrections of an organization's credits: who, when, why; newest first."""
    return f"Corrections of {org_id}"
