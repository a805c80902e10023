"""Organizations, teams, members and team usage over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from creditpool import queries as q
from creditpool.api.bodies.orgs import MemberPut, OrgCreate, OrgUpdate, TeamCreate, TeamUpdate
from creditpool.http.deps import OrgId, Pool, TeamId, UserId
from creditpool.http.paging import Params
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write
from creditpool.orgs.models import Member, Org, Team, TeamUsage

router = APIRouter(prefix="/v1", tags=["organizations"], route_class=AuthorizedRoute)
Creator = Annotated[Principal, allowed(Action.ORGS_CREATE)]
Lister = Annotated[Principal, allowed(Action.ORGS_LIST)]
OrgReader = Annotated[Principal, allowed(Action.ORGS_READ)]
OrgUpdater = Annotated[Principal, allowed(Action.THRESHOLDS_UPDATE, Action.ORGS_UPDATE)]
TeamWriter = Annotated[Principal, allowed(Action.TEAMS_WRITE)]
TeamReader = Annotated[Principal, allowed(Action.TEAMS_READ)]
TeamUpdater = Annotated[Principal, allowed(Action.TEAM_LIMIT, Action.TEAMS_WRITE)]
MemberWriter = Annotated[Principal, allowed(Action.MEMBERS_WRITE)]
MemberReader = Annotated[Principal, allowed(Action.MEMBERS_READ)]
UsageReader = Annotated[Principal, allowed(Action.USAGE_READ)]
# Who may change the rest of an organization or a team (a PATCH of only some fields needs
# only a narrower right: see ``_patch``).
BROADER = {Action.THRESHOLDS_UPDATE: Action.ORGS_UPDATE, Action.TEAM_LIMIT: Action.TEAMS_WRITE}


@router.post("/orgs", status_code=201, response_model=Org)
def create_org(body: OrgCreate, caller: Creator, writes: Write) -> Response:
    fields = body.model_dump(exclude={"id"})
    return writes.directory(
        caller,
        body.id,
        body,
        201,
        lambda: writes.pool.create_org(body.id, **fields, by=caller.key.name),
    )


class OrgsParams(Params):
    __query__ = q.Orgs


@router.get("/orgs", response_model=Page[Org])
def list_orgs(caller: Lister, pool: Pool, params: Annotated[OrgsParams, Query()]) -> Page[Org]:
    return params.read(pool.orgs)


@router.get("/orgs/{org}", response_model=Org)
def get_org(org: OrgId, caller: OrgReader, pool: Pool) -> Org:
    return pool.org(org)


@router.patch("/orgs/{org}", response_model=Org)
def update_org(org: OrgId, body: OrgUpdate, caller: OrgUpdater, writes: Write) -> Response:
    changes = _patch(
        body,
        caller,
        org,
        {"low_balance_thresholds", "expiry_notice_days"},
        Action.THRESHOLDS_UPDATE,
    )
    return writes.directory(
        caller,
        org,
        body,
        200,
        lambda: writes.pool.update_org(org, by=caller.key.name, **changes),
    )


@router.post("/orgs/{org}/teams", status_code=201, response_model=Team)
def create_team(org: OrgId, body: TeamCreate, caller: TeamWriter, writes: Write) -> Response:
    fields = body.model_dump(exclude={"id"})
    return writes.directory(
        caller, org, body, 201, lambda: writes.pool.create_team(org, body.id, **fields)
    )


class TeamsParams(Params):
    __query__ = q.Teams


@router.get("/orgs/{org}/teams", response_model=Page[Team])
def list_teams(
    org: OrgId, caller: TeamReader, pool: Pool, params: Annotated[TeamsParams, Query()]
) -> Page[Team]:
    """In id order."""
    return params.read(pool.teams, org)


@router.patch("/orgs/{org}/teams/{team}", response_model=Team)
def update_team(
    org: OrgId, team: TeamId, body: TeamUpdate, caller: TeamUpdater, writes: Write
) -> Response:
    changes = _patch(body, caller, org, {"monthly_limit"}, Action.TEAM_LIMIT)
    return writes.directory(
        caller, org, body, 200, lambda: writes.pool.update_team(org, team, **changes)
    )


@router.put("/orgs/{org}/members/{user}", response_model=Member)
def put_member(
    org: OrgId, user: UserId, body: MemberPut, caller: MemberWriter, writes: Write
) -> Response:
    return writes.directory(
        caller,
        org,
        body,
        200,
        lambda: writes.pool.set_member(
            org, user, team_id=body.team_id, display_name=body.display_name
        ),
    )


@router.get("/orgs/{org}/members/{user}", response_model=Member)
def get_member(org: OrgId, user: UserId, caller: MemberReader, pool: Pool) -> Member:
    return pool.member(org, user)


class MembersParams(Params):
    __query__ = q.Members


@router.get("/orgs/{org}/members", response_model=Page[Member])
def list_members(
    org: OrgId, caller: MemberReader, pool: Pool, params: Annotated[MembersParams, Query()]
) -> Page[Member]:
    """In user id order."""
    return params.read(pool.members, org)


class TeamUsageParams(Params):
    __query__ = q.TeamUsage


@router.get(
    "/orgs/{org}/usage/teams", operation_id="list_team_usage", response_model=Page[TeamUsage]
)
def team_usage(
    org: OrgId, caller: UsageReader, pool: Pool, params: Annotated[TeamUsageParams, Query()]
) -> Page[TeamUsage]:
    """Every team in id order, then "no team" (``team_id`` null) when it used credits."""
    return params.read(pool.team_usage, org)


def _patch(
    body: BaseModel, caller: Principal, org: str, narrow_fields: set[str], narrow: Action
) -> dict[str, Any]:
    """The fields a PATCH changes, once the caller may change them: ``narrow`` is enough
    when only ``narrow_fields`` change, else the broader right is needed."""
    changes = body.model_dump(exclude_unset=True)
    caller.require(narrow if set(changes) <= narrow_fields else BROADER[narrow], org)
    return changes
