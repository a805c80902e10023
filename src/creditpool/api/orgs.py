"""Organizations, teams, members and team usage over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from creditpool.api.bodies.orgs import MemberPut, OrgCreate, OrgUpdate, TeamCreate, TeamUpdate
from creditpool.http.deps import IdFilter, Month, OrgId, Pool, Replay, SearchText, TeamId, UserId
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import PAGE_SIZE_DEFAULT, Items, Limit, Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.orgs.models import Member, Org, Team, TeamUsage

router = APIRouter(prefix="/v1", tags=["organizations"], route_class=AuthorizedRoute)


@router.post("/orgs", status_code=201, response_model=Org)
def create_org(
    body: OrgCreate,
    request: Request,
    caller: Annotated[Principal, allowed(Action.ORGS_CREATE)],
    pool: Pool,
    replay: Replay,
) -> Response:
    return replay.run(
        request,
        caller,
        body.id,
        body,
        201,
        lambda _: pool.create_org(body.id, name=body.name, timezone=body.timezone),
    )


@router.get("/orgs", response_model=Page[Org])
def list_orgs(
    caller: Annotated[Principal, allowed(Action.ORGS_LIST)],
    pool: Pool,
    limit: Limit = PAGE_SIZE_DEFAULT,
    cursor: IdFilter = None,
    search: SearchText = None,
) -> Page[Org]:
    found = pool.orgs(after=cursor, limit=limit + 1, search=search)
    more = len(found) > limit
    return Page(items=found[:limit], next_cursor=found[limit - 1].id if more else None)


@router.get("/orgs/{org}", response_model=Org)
def get_org(org: OrgId, caller: Annotated[Principal, allowed(Action.ORGS_READ)], pool: Pool) -> Org:
    return pool.org(org)


@router.patch("/orgs/{org}", response_model=Org)
def update_org(
    org: OrgId,
    body: OrgUpdate,
    request: Request,
    caller: Annotated[Principal, allowed(Action.THRESHOLDS_UPDATE, Action.ORGS_UPDATE)],
    pool: Pool,
    replay: Replay,
) -> Response:
    changes = body.model_dump(exclude_unset=True)
    only_thresholds = set(changes) <= {"low_balance_thresholds"}
    caller.require(Action.THRESHOLDS_UPDATE if only_thresholds else Action.ORGS_UPDATE, org)
    return replay.run(request, caller, org, body, 200, lambda _: pool.update_org(org, **changes))


@router.post("/orgs/{org}/teams", status_code=201, response_model=Team)
def create_team(
    org: OrgId,
    body: TeamCreate,
    request: Request,
    caller: Annotated[Principal, allowed(Action.TEAMS_WRITE)],
    pool: Pool,
    replay: Replay,
) -> Response:
    return replay.run(
        request,
        caller,
        org,
        body,
        201,
        lambda _: pool.create_team(org, body.id, name=body.name, monthly_limit=body.monthly_limit),
    )


@router.get("/orgs/{org}/teams", response_model=Items[Team])
def list_teams(
    org: OrgId, caller: Annotated[Principal, allowed(Action.TEAMS_READ)], pool: Pool
) -> Items[Team]:
    return Items(items=pool.teams(org))


@router.patch("/orgs/{org}/teams/{team}", response_model=Team)
def update_team(
    org: OrgId,
    team: TeamId,
    body: TeamUpdate,
    request: Request,
    caller: Annotated[Principal, allowed(Action.TEAM_LIMIT, Action.TEAMS_WRITE)],
    pool: Pool,
    replay: Replay,
) -> Response:
    changes = body.model_dump(exclude_unset=True)
    only_limit = set(changes) <= {"monthly_limit"}
    caller.require(Action.TEAM_LIMIT if only_limit else Action.TEAMS_WRITE, org)
    return replay.run(
        request, caller, org, body, 200, lambda _: pool.update_team(org, team, **changes)
    )


@router.put("/orgs/{org}/members/{user}", response_model=Member)
def put_member(
    org: OrgId,
    user: UserId,
    body: MemberPut,
    request: Request,
    caller: Annotated[Principal, allowed(Action.MEMBERS_WRITE)],
    pool: Pool,
    replay: Replay,
) -> Response:
    return replay.run(
        request, caller, org, body, 200, lambda _: pool.set_member(org, user, team_id=body.team_id)
    )


@router.get("/orgs/{org}/members/{user}", response_model=Member)
def get_member(
    org: OrgId, user: UserId, caller: Annotated[Principal, allowed(Action.MEMBERS_READ)], pool: Pool
) -> Member:
    return pool.member(org, user)


@router.get("/orgs/{org}/members", response_model=Items[Member])
def list_members(
    org: OrgId,
    caller: Annotated[Principal, allowed(Action.MEMBERS_READ)],
    pool: Pool,
    team: IdFilter = None,
) -> Items[Member]:
    return Items(items=pool.members(org, team_id=team))


@router.get("/orgs/{org}/usage/teams", response_model=Items[TeamUsage])
def team_usage(
    org: OrgId,
    caller: Annotated[Principal, allowed(Action.USAGE_READ)],
    pool: Pool,
    month: Annotated[Month | None, Query()] = None,
) -> Items[TeamUsage]:
    return Items(items=pool.team_usage(org, month))
