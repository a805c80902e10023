"""Organizations, teams, members, and team usage in a calendar month."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from creditpool import queries
from creditpool import validation as check
from creditpool.core.errors import AlreadyExists, InvalidInput, NotFound
from creditpool.core.money import parse_credits, to_decimal
from creditpool.orgs.models import Member, Org, Team, TeamUsage
from creditpool.queries import Members, Teams
from creditpool.repositories import orgs as repository
from creditpool.storage.types import DbRow
from creditpool.storage.uow import Tx

THRESHOLDS_MAX = 10
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_thresholds(values: object) -> list[int]:
    if not isinstance(values, list | tuple) or len(values) > THRESHOLDS_MAX:
        raise InvalidInput(
            f"low-balance thresholds must be a list of at most {THRESHOLDS_MAX} amounts"
        )
    return sorted({parse_credits(v, field="threshold") for v in values}, reverse=True)


EXPIRY_NOTICE_DAYS_MAX = 365


def parse_notice_days(value: object) -> int:
    """Days before a grant expires that ``grant.expiring_soon`` is sent (0: at expiry)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("expiry_notice_days must be a whole number of days")
    if not 0 <= value <= EXPIRY_NOTICE_DAYS_MAX:
        raise InvalidInput(f"expiry_notice_days must be from 0 to {EXPIRY_NOTICE_DAYS_MAX}")
    return value


def create_org(
    tx: Tx,
    org_id: str,
    name: str | None,
    timezone: str,
    low_balance_thresholds: object = (),
    expiry_notice_days: object = None,
) -> Org:
    """A new organization; its alerts and expiry notice period may be set at once (else
    none, and the default period)."""
    org_id = check.identifier(org_id, "organization id")
    values: dict[str, Any] = {
        "id": org_id,
        "name": check.required_text(name if name is not None else org_id, "name"),
        "timezone": check.timezone(timezone),
        "low_balance_thresholds": parse_thresholds(low_balance_thresholds),
        "created_at": tx.now,
    }
    if expiry_notice_days is not None:
        values["expiry_notice_days"] = parse_notice_days(expiry_notice_days)
    # ON CONFLICT DO NOTHING: a concurrent creation of the same id makes this wait for it,
    # then insert nothing (PostgreSQL); SQLite has one writer at a time anyway.
    if not repository.insert_org(tx.conn, **values):
        raise AlreadyExists(f"organization {org_id!r} already exists")
    return get_org(tx, org_id)


def update_org(tx: Tx, org_id: str, changes: dict[str, Any]) -> Org:
    require_org(tx, org_id)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = check.required_text(changes["name"], "name")
    if "timezone" in changes:
        values["timezone"] = check.timezone(changes["timezone"])
    if "low_balance_thresholds" in changes:
        values["low_balance_thresholds"] = parse_thresholds(changes["low_balance_thresholds"])
    if "expiry_notice_days" in changes:
        values["expiry_notice_days"] = parse_notice_days(changes["expiry_notice_days"])
    if values:
        repository.update_org(tx.conn, org_id, **values)
    return get_org(tx, org_id)


def require_org(tx: Tx, org_id: str) -> DbRow:
    row = repository.get_org(tx.conn, org_id)
    if row is None:
        raise NotFound(f"organization {org_id!r} not found")
    return row


def get_org(tx: Tx, org_id: str) -> Org:
    return org_model(require_org(tx, org_id))


def list_orgs(tx: Tx, asked: queries.Orgs) -> list[Org]:
    return [org_model(r) for r in repository.list_orgs(tx.conn, asked)]


def org_model(row: DbRow) -> Org:
    return Org(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        created_at=row.created_at,
        low_balance_thresholds=tuple(to_decimal(v) for v in row.low_balance_thresholds),
        expiry_notice_days=row.expiry_notice_days,
    )


def create_team(tx: Tx, org_id: str, team_id: str, name: str | None, monthly_limit: object) -> Team:
    require_org(tx, org_id)
    team_id = check.identifier(team_id, "team id")
    inserted = repository.insert_team(
        tx.conn,
        org_id=org_id,
        id=team_id,
        name=check.required_text(name if name is not None else team_id, "name"),
        monthly_limit=_limit(monthly_limit),
        created_at=tx.now,
    )
    if not inserted:  # it exists, or a concurrent creation of the same id committed first
        raise AlreadyExists(f"team {team_id!r} already exists in organization {org_id!r}")
    return get_team(tx, org_id, team_id)


def update_team(tx: Tx, org_id: str, team_id: str, changes: dict[str, Any]) -> Team:
    get_team(tx, org_id, team_id)
    values: dict[str, Any] = {}
    if "name" in changes:
        values["name"] = check.required_text(changes["name"], "name")
    if "monthly_limit" in changes:
        values["monthly_limit"] = _limit(changes["monthly_limit"])
    if values:
        repository.update_team(tx.conn, org_id, team_id, **values)
    return get_team(tx, org_id, team_id)


def _limit(value: object) -> int | None:
    return None if value is None else parse_credits(value, field="monthly_limit", allow_zero=True)


def _require_in_org(
    tx: Tx, org_id: str, what: str, key: str, read: Callable[[Connection, str, str], DbRow | None]
) -> DbRow:
    """The organization's ``what`` (a team, a member) ``key``, as ``read`` finds it."""
    require_org(tx, org_id)
    row = read(tx.conn, org_id, key)
    if row is None:
        raise NotFound(f"{what} {key!r} not found in organization {org_id!r}")
    return row


def get_team(tx: Tx, org_id: str, team_id: str) -> Team:
    return team_model(_require_in_org(tx, org_id, "team", team_id, repository.get_team))


def list_teams(tx: Tx, asked: Teams) -> list[Team]:
    return [team_model(r) for r in repository.list_teams(tx.conn, asked)]


def team_model(row: DbRow) -> Team:
    limit = None if row.monthly_limit is None else to_decimal(row.monthly_limit)
    return Team(
        org_id=row.org_id, id=row.id, name=row.name, monthly_limit=limit, created_at=row.created_at
    )


def set_member(
    tx: Tx, org_id: str, user_id: str, team_id: str | None, display_name: str | None = None
) -> Member:
    """Put the member as given: its team and display name replace what was set (None: no
    team, no display name)."""
    require_org(tx, org_id)
    user_id = check.identifier(user_id, "user_id")
    if display_name is not None:
        display_name = check.required_text(display_name, "display_name")
    if team_id is not None:
        get_team(tx, org_id, team_id)
    repository.put_member(tx.conn, org_id, user_id, team_id, display_name, tx.now)
    return Member(org_id=org_id, user_id=user_id, team_id=team_id, display_name=display_name)


def get_member(tx: Tx, org_id: str, user_id: str) -> Member:
    return member_model(_require_in_org(tx, org_id, "member", user_id, repository.get_member))


def member_model(row: DbRow) -> Member:
    return Member(
        org_id=row.org_id, user_id=row.user_id, team_id=row.team_id, display_name=row.display_name
    )


def list_members(tx: Tx, asked: Members) -> list[Member]:
    return [member_model(r) for r in repository.list_members(tx.conn, asked)]


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in the organization's zone, in UTC."""
    match = _MONTH.match(month) if isinstance(month, str) else None
    if match is None or not 1 <= int(match[2]) <= 12 or not 1970 <= int(match[1]) <= 9998:
        raise InvalidInput(f"month must be YYYY-MM, not {month!r}")
    year, mon = int(match[1]), int(match[2])
    zone = ZoneInfo(timezone)
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def current_month(now: datetime, timezone: str) -> str:
    return now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def team_usage(tx: Tx, asked: queries.TeamUsage) -> list[TeamUsage]:
    """Every team in id order (and last, when it used credits, "no team"), paid usage only:
    after the team ``after``, at most ``limit``."""
    org_id, limit = asked.org_id, asked.limit
    org = require_org(tx, org_id)
    month = asked.month or current_month(tx.now, org.timezone)
    start, end = month_bounds(month, org.timezone)
    usage = {
        r.team_id: (int(r.used or 0), int(r.n))
        for r in repository.paid_usage_by_team(tx.conn, org_id, start, end)
    }
    result = []
    for team in repository.list_teams(tx.conn, Teams(org_id, after=asked.after, limit=limit)):
        used, n = usage.pop(team.id, (0, 0))
        result.append(_usage(org_id, team.id, team.name, month, used, n, team.monthly_limit))
    if None in usage and (limit is None or len(result) < limit):  # the teams are all listed
        used, n = usage.pop(None)
        result.append(_usage(org_id, None, "No team", month, used, n, None))
    return result


def _usage(
    org_id: str, team_id: str | None, name: str, month: str, used: int, n: int, limit: int | None
) -> TeamUsage:
    return TeamUsage(
        org_id=org_id,
        team_id=team_id,
        name=name,
        month=month,
        used=to_decimal(used),
        consumptions=n,
        monthly_limit=None if limit is None else to_decimal(limit),
        over_limit=limit is not None and used > limit,
    )
