"""Members' display names over HTTP and through the client (sync and async), against a real
server: set with the member (PUT replaces it whole), read back, refused when too long or
blank, and only by a role that may set members (authorization before validation)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from creditpool import NotFound
from creditpool.client import AsyncClient, Client
from creditpool.orgs.models import Member
from tests.e2e.conftest import Server
from tests.e2e.tenants import Tenant, new_tenant

PROBLEM = "application/problem+json"


@pytest.fixture
def t(shared: Server) -> Iterator[Tenant]:
    with new_tenant(shared) as fresh:
        fresh.pool.create_team(fresh.org, "t-1")
        yield fresh


def member_path(t: Tenant, user: str = "u-7") -> str:
    return f"/v1/orgs/{t.org}/members/{user}"


def test_put_sets_the_display_name_get_and_list_return_it_and_a_put_without_it_clears_it(
    t: Tenant,
) -> None:
    service = t.client("service")
    put = service.put(member_path(t), json={"team_id": "t-1", "display_name": "Ana López"})
    assert put.status_code == 200, put.text
    expected = {"org_id": t.org, "user_id": "u-7", "team_id": "t-1", "display_name": "Ana López"}
    assert put.json() == expected
    assert t.client("admin").get(member_path(t)).json() == expected
    listed = t.client("staff").get(f"/v1/orgs/{t.org}/members").json()
    assert listed["data"] == [expected]
    assert t.pool.member(t.org, "u-7").display_name == "Ana López"

    cleared = service.put(member_path(t), json={"team_id": "t-1"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["display_name"] is None
    assert t.pool.member(t.org, "u-7").display_name is None


@pytest.mark.parametrize(
    "display_name",
    ["x" * 201, "", "   ", "Ana\x1b[31m", 7],
    ids=["too long", "empty", "blank", "control", "number"],
)
def test_a_bad_display_name_is_a_422_problem_and_nothing_changes(
    t: Tenant, display_name: object
) -> None:
    t.pool.set_member(t.org, "u-7", display_name="Ana")
    answer = t.client("service").put(member_path(t), json={"display_name": display_name})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert t.pool.member(t.org, "u-7").display_name == "Ana"


def test_the_longest_display_name_is_accepted(t: Tenant) -> None:
    name = "é" * 200
    answer = t.client("service").put(member_path(t), json={"display_name": name})
    assert answer.status_code == 200, answer.text
    assert answer.json()["display_name"] == name


@pytest.mark.parametrize(("role", "status"), [("admin", 403), ("member", 403), (None, 401)])
def test_a_role_that_may_not_set_members_is_refused_before_its_body_is_read(
    t: Tenant, role: str | None, status: int
) -> None:
    answer = t.client(role).put(member_path(t), json={"display_name": "x" * 201})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    with pytest.raises(NotFound):
        t.pool.member(t.org, "u-7")


def test_another_organizations_admin_does_not_see_the_member(t: Tenant) -> None:
    t.pool.set_member(t.org, "u-7", display_name="Ana")
    assert t.client("other_admin").get(member_path(t)).status_code == 404


def test_the_clients_set_and_read_display_names(t: Tenant) -> None:
    base, key = t.server.base_url, t.keys["service"]
    with Client(base, key) as client:
        named = client.set_member(t.org, "u-8", team_id="t-1", display_name="Bo")
        assert named == Member(org_id=t.org, user_id="u-8", team_id="t-1", display_name="Bo")
        assert client.member(t.org, "u-8") == named
        assert client.set_member(t.org, "u-8", team_id="t-1").display_name is None

    async def scenario() -> None:
        async with AsyncClient(base, key) as client:
            named = await client.set_member(t.org, "u-9", display_name="Cy")
            assert (named.team_id, named.display_name) == (None, "Cy")
            assert (await client.member(t.org, "u-9")).display_name == "Cy"
            assert [m.display_name for m in await client.members(t.org)] == [None, "Cy"]

    asyncio.run(scenario())
    assert t.pool.member(t.org, "u-9").display_name == "Cy"


def test_a_replayed_put_answers_the_first_display_name(t: Tenant) -> None:
    service = t.client("service", **{"Idempotency-Key": "name-once"})
    first = service.put(member_path(t), json={"display_name": "Ana"})
    again = service.put(member_path(t), json={"display_name": "Ana"})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = service.put(member_path(t), json={"display_name": "Bo"})
    assert other.status_code == 409, other.text  # the same key with other arguments
    assert other.json()["code"] == "idempotency_conflict"
    assert t.pool.member(t.org, "u-7").display_name == "Ana"
