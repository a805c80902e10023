"""Organizations, teams, members and team usage over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from creditpool import queries as q
from creditpool.api.bodies.orgs import MemberPut, OrgCreate, OrgUpdate, TeamCreate, TeamUpdate
from creditpool.api.lists import Listing, paged
from creditpool.http.deps import OrgId, Pool, TeamId, UserId
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


@router.get("/orgs", response_model=Page[Org])
@paged(q.Orgs)
def list_orgs(caller: Lister, pool: Pool) -> Listing:
    return pool.orgs


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


@router.get("/orgs/{org}/teams", response_model=Page[Team])
@paged(q.Teams)
def list_teams(org: OrgId, caller: TeamReader, pool: Pool) -> Listing:
    """In id order."""
    return pool.teams


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


@router.get("/orgs/{org}/members", response_model=Page[Member])
@paged(q.Members)
def list_members(org: OrgId, caller: MemberReader, pool: Pool) -> Listing:
    """In user id order."""
    return pool.members


@router.get(
    "/orgs/{org}/usage/teams", operation_id="list_team_usage", response_model=Page[TeamUsage]
)
@paged(q.TeamUsage)
def team_usage(org: OrgId, caller: UsageReader, pool: Pool) -> Listing:
    """Every team in id order, then "no team" (``team_id`` null) when it used credits."""
    return pool.team_usage


def _patch(
    body: BaseModel, caller: Principal, org: str, narrow_fields: set[str], narrow: Action
) -> dict[str, Any]:
    """The fields a PATCH changes, once the caller may change them: ``narrow`` is enough
    when only ``narrow_fields`` change, else the broader right is needed."""
    changes = body.model_dump(exclude_unset=True)
    caller.require(narrow if set(changes) <= narrow_fields else BROADER[narrow], org)
    return changes
