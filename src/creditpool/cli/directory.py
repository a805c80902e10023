"""Who is charged and at what price: organizations, teams, members, the feature catalog."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from creditpool.cli import render
from creditpool.cli.context import (
    After,
    By,
    FeatureKey,
    JsonFlag,
    Limit,
    LimitOrAll,
    OrgId,
    open_pool,
    who,
)
from creditpool.cli.errors import CliError, HelpGroup

orgs_app = typer.Typer(
    cls=HelpGroup, help="Organizations: one credit pool each.", no_args_is_help=True
)
teams_app = typer.Typer(cls=HelpGroup, help="Teams and their monthly limits.", no_args_is_help=True)
members_app = typer.Typer(
    cls=HelpGroup, help="Members and the team they belong to.", no_args_is_help=True
)
features_app = typer.Typer(
    cls=HelpGroup, help="The feature catalog and its prices.", no_args_is_help=True
)

TeamId = Annotated[str, typer.Argument(help="The team's id within the organization.")]
DisplayName = Annotated[str | None, typer.Option(help="Display name (default: the id).")]
NO_LIMIT = "none"

ORG_COLUMNS: render.Columns = {
    "ID": "id",
    "Name~": "name",
    "Time zone": "timezone",
    "Created": "created_at",
}
TEAM_USAGE_COLUMNS: render.Columns = {
    "Team": "team_id",
    "Name~": "name",
    "Used=": "used",
    "Limit=": "monthly_limit",
    "Uses=": "consumptions",
    "Over limit": "over_limit",
}
MEMBER_COLUMNS: render.Columns = {"User": "user_id", "Name~": "display_name", "Team": "team_id"}
FEATURE_COLUMNS: render.Columns = {
    "Key": "key",
    "Name~": "name",
    "Cost=": "cost",
    "Rate=": "unit_rate",
    "Unit": "unit",
    "Updated": "updated_at",
}
PRICE_COLUMNS: render.Columns = {
    "#": "id",
    "Since": "since",
    "Name~": "name",
    "Cost=": "cost",
    "Rate=": "unit_rate",
    "Unit": "unit",
    "By": "changed_by",
}


@orgs_app.command("create")
def orgs_create(
    ctx: typer.Context,
    org_id: OrgId,
    name: DisplayName = None,
    timezone: Annotated[
        str, typer.Option(help="IANA time zone: decides calendar months and report dates.")
    ] = "UTC",
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an organization."""
    pool = open_pool(ctx, create=True)
    org = pool.create_org(org_id, name=name, timezone=timezone, by=who(by))
    render.result(org, as_json, f"created organization {org.id} ({org.name}, {org.timezone})")


@orgs_app.command("update")
def orgs_update(
    ctx: typer.Context,
    org_id: OrgId,
    name: Annotated[str | None, typer.Option(help="A new display name.")] = None,
    timezone: Annotated[str | None, typer.Option(help="A new IANA time zone.")] = None,
    thresholds: Annotated[
        str | None,
        typer.Option(
            help="Low-balance alerts: credits, comma-separated (e.g. '100,20'); 'none' for no alert."
        ),
    ] = None,
    expiry_notice_days: Annotated[
        int | None, typer.Option(help="Days before a grant expires that its notice is sent.")
    ] = None,
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an organization's settings; what is not given stays as it is."""
    changes: dict[str, Any] = {"name": name, "timezone": timezone}
    if thresholds is not None:
        text = thresholds.strip()
        none = text.lower() == NO_LIMIT
        changes["low_balance_thresholds"] = [] if none else [t.strip() for t in text.split(",")]
    changes["expiry_notice_days"] = expiry_notice_days
    given = {k: v for k, v in changes.items() if v is not None}
    if not given:
        raise CliError(
            "nothing to change: give --name, --timezone, --thresholds or --expiry-notice-days"
        )
    org = open_pool(ctx).update_org(org_id, by=who(by), **given)
    alerts = ", ".join(str(t) for t in org.low_balance_thresholds) or "none"
    render.result(
        org,
        as_json,
        f"organization {org.id} ({org.name}, {org.timezone}): low-balance alerts {alerts}, "
        f"expiry notices {org.expiry_notice_days} days ahead",
    )


@orgs_app.command("list")
def orgs_list(
    ctx: typer.Context,
    search: Annotated[str | None, typer.Option(help="Only ids or names containing this.")] = None,
    after: After = None,
    limit: Limit = 100,
    as_json: JsonFlag = False,
) -> None:
    """List organizations, by id."""
    found = open_pool(ctx).orgs(after=after, limit=limit, search=search)
    render.records(found, as_json, "Organizations", ORG_COLUMNS)


@teams_app.command("create")
def teams_create(
    ctx: typer.Context,
    org_id: OrgId,
    team_id: TeamId,
    name: DisplayName = None,
    monthly_limit: Annotated[
        str | None, typer.Option(help="Credits per calendar month (informational).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a team."""
    team = open_pool(ctx).create_team(org_id, team_id, name=name, monthly_limit=monthly_limit)
    limit = "no monthly limit" if team.monthly_limit is None else f"limit {team.monthly_limit}"
    render.result(team, as_json, f"created team {team.id} ({team.name}) in {org_id}, {limit}")


@teams_app.command("set-limit", context_settings={"ignore_unknown_options": True})
def teams_set_limit(
    ctx: typer.Context,
    org_id: OrgId,
    team_id: TeamId,
    limit: Annotated[str, typer.Argument(help=f"Credits per month, or '{NO_LIMIT}'.")],
    as_json: JsonFlag = False,
) -> None:
    """Set (or remove, with 'none') a team's monthly limit. It never blocks a consumption."""
    value = None if limit.strip().lower() == NO_LIMIT else limit
    team = open_pool(ctx).set_team_limit(org_id, team_id, value)
    shown = "no monthly limit" if team.monthly_limit is None else f"limit {team.monthly_limit}"
    render.result(team, as_json, f"team {team.id} in {org_id}: {shown}")


@teams_app.command("list")
def teams_list(
    ctx: typer.Context,
    org_id: OrgId,
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM in the organization's zone (default: now).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Each team's paid usage in a calendar month against its limit."""
    usage = open_pool(ctx).team_usage(org_id, month)
    title = f"Team usage in {usage[0].month}" if usage else "Team usage"
    render.records(usage, as_json, title, TEAM_USAGE_COLUMNS)


@members_app.command("set")
def members_set(
    ctx: typer.Context,
    org_id: OrgId,
    user_id: Annotated[str, typer.Argument(help="The vendor's user id.")],
    team: Annotated[str | None, typer.Option(help="The team (omit: no team).")] = None,
    display_name: Annotated[
        str | None,
        typer.Option(help="Shown on pages instead of the user id (omit: none, the id)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Put a member in a team, or in none, and name it. Sets the member as a whole: an
    option left out is cleared. Later consumptions are attributed to its team."""
    member = open_pool(ctx).set_member(org_id, user_id, team_id=team, display_name=display_name)
    where = f"team {member.team_id}" if member.team_id else "no team"
    named = f" ({member.display_name})" if member.display_name else ""
    render.result(member, as_json, f"member {member.user_id}{named} of {org_id}: {where}")


@members_app.command("list")
def members_list(
    ctx: typer.Context,
    org_id: OrgId,
    team: Annotated[str | None, typer.Option(help="Only this team's members.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List an organization's members."""
    members = open_pool(ctx).members(org_id, team_id=team)
    render.records(members, as_json, "Members", MEMBER_COLUMNS)


@features_app.command("list")
def features_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The catalog: what each feature costs now."""
    catalog = open_pool(ctx).features()
    render.records(catalog, as_json, "Features", FEATURE_COLUMNS)


@features_app.command("set")
def features_set(
    ctx: typer.Context,
    key: FeatureKey,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    cost: Annotated[str | None, typer.Option(help="A fixed cost per use.")] = None,
    unit_rate: Annotated[str | None, typer.Option(help="A cost per unit (variable).")] = None,
    unit: Annotated[str | None, typer.Option(help="The unit, e.g. 'feedback item'.")] = None,
    by: By = None,
    as_json: JsonFlag = False,
) -> None:
    """Price a feature from now on. Past consumptions keep the price they were charged;
    the price joins the feature's history (``features prices``)."""
    feature = open_pool(ctx, create=True).set_feature(
        key, name=name, cost=cost, unit_rate=unit_rate, unit=unit, changed_by=who(by)
    )
    price = (
        f"{feature.unit_rate} per {feature.unit or 'unit'}"
        if feature.variable
        else f"{feature.cost} per use"
    )
    render.result(feature, as_json, f"feature {feature.key} ({feature.name}): {price}")


@features_app.command("prices")
def features_prices(
    ctx: typer.Context,
    key: FeatureKey,
    before_id: Annotated[
        int | None, typer.Option(help="Only prices older than this row (paging).")
    ] = None,
    limit: LimitOrAll = None,
    as_json: JsonFlag = False,
) -> None:
    """A feature's price history, newest first: each price from the instant it applied,
    and who set it."""
    prices = open_pool(ctx).feature_prices(key, before_id=before_id, limit=limit)
    render.records(prices, as_json, f"Prices of {key}", PRICE_COLUMNS)
