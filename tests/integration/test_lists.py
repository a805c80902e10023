"""Every list of the library pages: after (or before) an item, at most ``limit``; without a
limit, the whole list as before. Each page follows on from the last with nothing skipped
or repeated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from creditpool import CreditPool, InvalidInput

Pages = Callable[[Any, int], list[Any]]


def walk(fetch: Pages, key: Callable[[Any], Any], limit: int) -> list[list[Any]]:
    """Page after page of ``limit``: each starts after the last item of the one before; a
    page short of ``limit`` is the last."""
    pages: list[list[Any]] = []
    start = None
    for _ in range(100):
        found = fetch(start, limit)
        assert len(found) <= limit
        if found:
            pages.append(found)
        if len(found) < limit:
            return pages
        start = key(found[-1])
    raise AssertionError(f"no last page after {pages}")


@pytest.fixture
def org(pool: CreditPool) -> str:
    pool.create_org("acme")
    pool.set_feature("report", cost="1")
    for team in ["ops", "eng", "sales"]:
        pool.create_team("acme", team)
    for user, team in [("u-3", "eng"), ("u-1", "ops"), ("u-2", None), ("u-4", "eng")]:
        pool.set_member("acme", user, team_id=team)
    return "acme"


def test_teams_and_members_are_paged_in_id_order(pool: CreditPool, org: str) -> None:
    teams = walk(lambda a, n: pool.teams(org, after=a, limit=n), lambda t: t.id, 2)
    assert [[t.id for t in page] for page in teams] == [["eng", "ops"], ["sales"]]
    assert [t.id for t in pool.teams(org)] == ["eng", "ops", "sales"]
    members = walk(lambda a, n: pool.members(org, after=a, limit=n), lambda m: m.user_id, 3)
    assert [[m.user_id for m in page] for page in members] == [["u-1", "u-2", "u-3"], ["u-4"]]
    in_eng = pool.members(org, team_id="eng", after="u-3", limit=5)
    assert [m.user_id for m in in_eng] == ["u-4"]


def test_team_usage_pages_the_teams_and_ends_with_no_team(pool: CreditPool, org: str) -> None:
    pool.grant(org, "10")
    pool.consume(org, "report", user_id="u-2")  # in no team
    pool.consume(org, "report", user_id="u-3")
    pages = walk(lambda a, n: pool.team_usage(org, after=a, limit=n), lambda u: u.team_id, 3)
    assert [[u.team_id for u in page] for page in pages] == [["eng", "ops", "sales"], [None]]
    assert [u.team_id for u in pool.team_usage(org, after="ops", limit=2)] == ["sales", None]
    assert pool.team_usage(org, after="sales", limit=1)[0].name == "No team"
    assert pool.team_usage(org, limit=3) == pool.team_usage(org)[:3]  # "no team" comes last
    assert [u.team_id for u in pool.team_usage(org)] == ["eng", "ops", "sales", None]


def test_features_are_paged_in_key_order(pool: CreditPool, org: str) -> None:
    pool.set_feature("alpha", cost="2")
    pool.set_feature("zeta", unit_rate="0.5", unit="page")
    pages = walk(lambda a, n: pool.features(after=a, limit=n), lambda f: f.key, 2)
    keys = [f.key for page in pages for f in page]
    assert keys == sorted(keys)
    assert {"alpha", "report", "zeta"} <= set(keys)
    assert pool.features() == [f for page in pages for f in page]
    assert [f.key for f in pool.features(after="report", limit=5)][-1] == "zeta"


def test_grants_are_paged_in_id_order_as_of_now(pool: CreditPool, org: str) -> None:
    made = [pool.grant(org, str(n)) for n in (5, 6, 7)]
    pool.consume(org, "report", user_id="u-1")
    pages = walk(lambda a, n: pool.grants(org, after_id=a, limit=n), lambda g: g.id, 2)
    assert [[g.id for g in page] for page in pages] == [[made[0].id, made[1].id], [made[2].id]]
    assert [g for page in pages for g in page] == pool.grants(org)  # remaining as of now
    assert pool.grants(org, after_id=made[2].id) == []


def test_credit_requests_are_paged_newest_first(pool: CreditPool, org: str) -> None:
    asked = [pool.request_credits(org, str(n), requested_by="admin") for n in (1, 2, 3)]
    pages = walk(
        lambda before, n: pool.credit_requests(org, before_id=before, limit=n), lambda r: r.id, 2
    )
    assert [[r.id for r in page] for page in pages] == [
        [asked[2].id, asked[1].id],
        [asked[0].id],
    ]
    assert pool.credit_requests(org) == [r for page in pages for r in page]


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.teams("acme", limit=0),
        lambda p: p.members("acme", limit=1001),
        lambda p: p.team_usage("acme", limit=-1),
        lambda p: p.features(limit=0),
        lambda p: p.grants("acme", limit=0),
        lambda p: p.grants("acme", after_id=0),
        lambda p: p.credit_requests("acme", limit=0),
        lambda p: p.credit_requests("acme", before_id=-1),
    ],
)
def test_a_page_size_or_id_outside_the_limits_is_refused(
    pool: CreditPool, org: str, call: Callable[[CreditPool], object]
) -> None:
    with pytest.raises(InvalidInput):
        call(pool)
