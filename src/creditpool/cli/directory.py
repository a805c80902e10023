"""Who is charged and at what price: organizations, teams, members, the feature catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from creditpool.cli import render
from creditpool.cli.calls import change, listing
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
from creditpool.cli.errors import CliError, group

if TYPE_CHECKING:  # models load pydantic: not for `--help`
    from creditpool.features.models import Feature, FeaturePrice
    from creditpool.orgs.models import Member, Org, Team, TeamUsage

orgs_app = group("Organizations: one credit pool each.")
teams_app = group("Teams and their monthly limits.")
members_app = group("Members and the team they belong to.")
features_app = group("The feature catalog and its prices.")

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
@change("create_org", by="by", create=True)
def orgs_create(
    org: Org,
    org_id: OrgId,
    name: DisplayName = None,
    timezone: Annotated[
        str, typer.Option(help="IANA time zone: decides calendar months and report dates.")
    ] = "UTC",
    by: By = None,
) -> str:
    """Create an organization."""
    return f"created organization {org.id} ({org.name}, {org.timezone})"


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
@listing("orgs", ORG_COLUMNS)
def orgs_list(
    found: list[Org],
    search: Annotated[str | None, typer.Option(help="Only ids or names containing this.")] = None,
    after: After = None,
    limit: Limit = 100,
) -> str:
    """List organizations, by id."""
    return "Organizations"


@teams_app.command("create")
@change("create_team")
def teams_create(
    team: Team,
    org_id: OrgId,
    team_id: TeamId,
    name: DisplayName = None,
    monthly_limit: Annotated[
        str | None, typer.Option(help="Credits per calendar month (informational).")
    ] = None,
) -> str:
    """Create a team."""
    return f"created team {team.id} ({team.name}) in {org_id}, {limit_words(team)}"


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
    render.result(team, as_json, f"team {team.id} in {org_id}: {limit_words(team)}")


def limit_words(team: Team) -> str:
    """A team's limit in words, for the line a change of the team prints."""
    return "no monthly limit" if team.monthly_limit is None else f"limit {team.monthly_limit}"


@teams_app.command("list")
@listing("team_usage", TEAM_USAGE_COLUMNS)
def teams_list(
    usage: list[TeamUsage],
    org_id: OrgId,
    month: Annotated[
        str | None, typer.Option(help="YYYY-MM in the organization's zone (default: now).")
    ] = None,
) -> str:
    """Each team's paid usage in a calendar month against its limit."""
    return f"Team usage in {usage[0].month}" if usage else "Team usage"


@members_app.command("set")
@change("set_member", team="team_id")
def members_set(
    member: Member,
    org_id: OrgId,
    user_id: Annotated[str, typer.Argument(help="The vendor's user id.")],
    team: Annotated[str | None, typer.Option(help="The team (omit: no team).")] = None,
    display_name: Annotated[
        str | None,
        typer.Option(help="Shown on pages instead of the user id (omit: none, the id)."),
    ] = None,
) -> str:
    """Put a member in a team, or in none, and name it. Sets the member as a whole: an
    option left out is cleared. Later consumptions are attributed to its team."""
    where = f"team {member.team_id}" if member.team_id else "no team"
    named = f" ({member.display_name})" if member.display_name else ""
    return f"member {member.user_id}{named} of {org_id}: {where}"


@members_app.command("list")
@listing("members", MEMBER_COLUMNS, team="team_id")
def members_list(
    found: list[Member],
    org_id: OrgId,
    team: Annotated[str | None, typer.Option(help="Only this team's members.")] = None,
) -> str:
    """List an organization's members."""
    return "Members"


@features_app.command("list")
@listing("features", FEATURE_COLUMNS)
def features_list(found: list[Feature]) -> str:
    """The catalog: what each feature costs now."""
    return "Features"


@features_app.command("set")
@change("set_feature", by="changed_by", create=True)
def features_set(
    feature: Feature,
    key: FeatureKey,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    cost: Annotated[str | None, typer.Option(help="A fixed cost per use.")] = None,
    unit_rate: Annotated[str | None, typer.Option(help="A cost per unit (variable).")] = None,
    unit: Annotated[str | None, typer.Option(help="The unit, e.g. 'feedback item'.")] = None,
    by: By = None,
) -> str:
    """Price a feature from now on. Past consumptions keep the price they were charged;
    the price joins the feature's history (``features prices``)."""
    price = (
        f"{feature.unit_rate} per {feature.unit or 'unit'}"
        if feature.variable
        else f"{feature.cost} per use"
    )
    return f"feature {feature.key} ({feature.name}): {price}"


@features_app.command("prices")
@listing("feature_prices", PRICE_COLUMNS)
def features_prices(
    found: list[FeaturePrice],
    key: FeatureKey,
    before_id: Annotated[
        int | None, typer.Option(help="Only prices older than this row (paging).")
    ] = None,
    limit: LimitOrAll = None,
) -> str:
    """A feature's price history, newest first: each price from the instant it applied,
    and who set it."""
    return f"Prices of {key}"
