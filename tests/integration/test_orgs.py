"""Organizations, teams and members through the library, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from creditpool import AlreadyExists, CreditPool, InvalidInput, NotFound
from tests.support import FakeClock


def test_create_org_stores_name_timezone_and_creation_time(
    pool: CreditPool, clock: FakeClock
) -> None:
    created = pool.create_org("acme", name="Acme Inc.", timezone="Europe/Berlin")
    assert created == pool.org("acme")
    assert (created.id, created.name, created.timezone) == ("acme", "Acme Inc.", "Europe/Berlin")
    assert created.created_at == clock.now
    assert created.created_at.tzinfo is not None


def test_an_org_without_name_or_zone_is_named_by_its_id_and_in_utc(pool: CreditPool) -> None:
    org = pool.create_org("globex")
    assert (org.name, org.timezone) == ("globex", "UTC")


def test_creating_an_existing_org_raises_already_exists_and_keeps_the_first(
    pool: CreditPool,
) -> None:
    pool.create_org("acme", name="First")
    with pytest.raises(AlreadyExists):
        pool.create_org("acme", name="Second")
    assert pool.org("acme").name == "First"
    assert [o.id for o in pool.orgs()] == ["acme"]


def test_an_unknown_timezone_is_refused_and_nothing_is_created(pool: CreditPool) -> None:
    with pytest.raises(InvalidInput):
        pool.create_org("acme", timezone="Mars/Olympus_Mons")
    with pytest.raises(NotFound):
        pool.org("acme")


def test_update_org_changes_name_timezone_and_thresholds(pool: CreditPool) -> None:
    pool.create_org("acme")
    updated = pool.update_org(
        "acme", name="Acme", timezone="America/New_York", low_balance_thresholds=["10", "50.5"]
    )
    assert updated == pool.org("acme")
    assert updated.name == "Acme"
    assert updated.timezone == "America/New_York"
    assert updated.low_balance_thresholds == (Decimal("50.5"), Decimal("10"))


def test_update_org_with_a_bad_timezone_changes_nothing(pool: CreditPool) -> None:
    pool.create_org("acme", timezone="Europe/Berlin")
    with pytest.raises(InvalidInput):
        pool.update_org("acme", name="Renamed", timezone="Nowhere/Land")
    org = pool.org("acme")
    assert (org.name, org.timezone) == ("acme", "Europe/Berlin")


def test_update_org_refuses_unknown_fields_and_unknown_orgs(pool: CreditPool) -> None:
    pool.create_org("acme")
    with pytest.raises(InvalidInput):
        pool.update_org("acme", ledger_seq=5)
    with pytest.raises(NotFound):
        pool.update_org("nobody", name="x")


def test_orgs_are_listed_in_id_order_in_pages(pool: CreditPool) -> None:
    for org_id in ["delta", "alpha", "charlie", "bravo", "echo"]:
        pool.create_org(org_id)
    first = pool.orgs(limit=2)
    assert [o.id for o in first] == ["alpha", "bravo"]
    second = pool.orgs(after=first[-1].id, limit=2)
    assert [o.id for o in second] == ["charlie", "delta"]
    assert [o.id for o in pool.orgs(after="delta", limit=2)] == ["echo"]
    assert pool.orgs(after="echo") == []


def test_org_search_matches_id_or_name_case_insensitively(pool: CreditPool) -> None:
    pool.create_org("acme", name="Acme Rockets")
    pool.create_org("globex", name="Globex Corporation")
    pool.create_org("initech", name="Initech")
    assert [o.id for o in pool.orgs(search="ROCK")] == ["acme"]
    assert [o.id for o in pool.orgs(search="ex")] == ["globex"]
    assert [o.id for o in pool.orgs(search="i")] == ["globex", "initech"]
    assert pool.orgs(search="umbrella") == []


@pytest.mark.parametrize("limit", [0, 1001, -1])
def test_org_page_size_outside_the_limits_is_refused(pool: CreditPool, limit: int) -> None:
    with pytest.raises(InvalidInput):
        pool.orgs(limit=limit)


def test_teams_are_created_with_optional_limits_and_updated(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_team("acme", "sales", name="Sales", monthly_limit="40")
    pool.create_team("acme", "eng")
    assert pool.team("acme", "sales").monthly_limit == Decimal("40")
    assert pool.team("acme", "eng").monthly_limit is None
    pool.set_team_limit("acme", "sales", None)
    pool.update_team("acme", "eng", name="Engineering", monthly_limit="12.5")
    assert pool.team("acme", "sales").monthly_limit is None
    eng = pool.team("acme", "eng")
    assert (eng.name, eng.monthly_limit) == ("Engineering", Decimal("12.5"))
    assert [t.id for t in pool.teams("acme")] == ["eng", "sales"]


def test_a_duplicate_team_or_a_team_of_an_unknown_org_is_refused(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_team("acme", "sales")
    with pytest.raises(AlreadyExists):
        pool.create_team("acme", "sales")
    with pytest.raises(NotFound):
        pool.create_team("nobody", "sales")
    with pytest.raises(NotFound):
        pool.team("acme", "eng")


def test_the_same_team_id_in_two_orgs_is_two_teams(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_org("globex")
    pool.create_team("acme", "sales", monthly_limit="1")
    pool.create_team("globex", "sales", monthly_limit="2")
    assert pool.team("acme", "sales").monthly_limit == Decimal("1")
    assert pool.team("globex", "sales").monthly_limit == Decimal("2")


def test_members_move_between_teams_and_out_of_them(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.create_team("acme", "sales")
    pool.create_team("acme", "eng")
    pool.set_member("acme", "u-1", team_id="sales")
    pool.set_member("acme", "u-2", team_id="sales")
    pool.set_member("acme", "u-1", team_id="eng")
    pool.set_member("acme", "u-3")
    assert pool.member("acme", "u-1").team_id == "eng"
    assert pool.member("acme", "u-3").team_id is None
    assert [m.user_id for m in pool.members("acme", team_id="sales")] == ["u-2"]
    assert {m.user_id for m in pool.members("acme")} == {"u-1", "u-2", "u-3"}


def test_a_members_display_name_is_set_with_the_member_and_cleared_by_none(
    pool: CreditPool,
) -> None:
    pool.create_org("acme")
    pool.create_team("acme", "sales")
    named = pool.set_member("acme", "u-1", team_id="sales", display_name="Ana Lopez · Sales")
    assert named.display_name == "Ana Lopez · Sales"
    assert pool.member("acme", "u-1") == named
    assert pool.members("acme") == [named]
    pool.set_member("acme", "u-2")
    assert pool.member("acme", "u-2").display_name is None
    # The member is replaced as a whole, as its team is: None clears the name.
    moved = pool.set_member("acme", "u-1", team_id=None)
    assert (moved.team_id, moved.display_name) == (None, None)
    assert pool.member("acme", "u-1") == moved
    longest = "é" * 200
    assert pool.set_member("acme", "u-1", display_name=longest).display_name == longest


@pytest.mark.parametrize(
    ("display_name", "says"),
    [
        ("x" * 201, "longer than 200"),
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("Ana\x00", "control characters"),
        ("Ana\x1b[31m", "control characters"),
        ("Ana\ud800", "lone surrogate"),
    ],
)
def test_a_bad_display_name_is_refused_and_the_member_keeps_its_own(
    pool: CreditPool, display_name: str, says: str
) -> None:
    pool.create_org("acme")
    pool.set_member("acme", "u-1", display_name="Ana")
    with pytest.raises(InvalidInput, match=says):
        pool.set_member("acme", "u-1", display_name=display_name)
    with pytest.raises(InvalidInput, match="display_name"):
        pool.set_member("acme", "u-2", display_name=display_name)
    assert pool.member("acme", "u-1").display_name == "Ana"
    assert [m.user_id for m in pool.members("acme")] == ["u-1"]


def test_a_member_cannot_join_a_team_that_does_not_exist(pool: CreditPool) -> None:
    pool.create_org("acme")
    with pytest.raises(NotFound):
        pool.set_member("acme", "u-1", team_id="ghosts")
    with pytest.raises(NotFound):
        pool.member("acme", "u-1")


def test_team_attribution_is_the_members_team_at_the_time_of_use(
    pool: CreditPool, clock: FakeClock
) -> None:
    pool.create_org("acme")
    pool.create_team("acme", "sales")
    pool.create_team("acme", "eng")
    pool.grant("acme", "10")
    pool.set_member("acme", "u-1", team_id="sales")
    first = pool.consume("acme", "report", user_id="u-1")
    clock.advance(minutes=1)
    pool.set_member("acme", "u-1", team_id="eng")
    second = pool.consume("acme", "report", user_id="u-1")
    pool.set_member("acme", "u-1", team_id=None)
    third = pool.consume("acme", "report", user_id="u-1")
    assert first.team_id == "sales"
    assert second.team_id == "eng"
    assert third.team_id is None
    assert first.id is not None
    assert pool.consumption("acme", first.id).team_id == "sales"
    assert [c.id for c in pool.consumptions("acme", team_id="sales")] == [first.id]
    usage = {u.team_id: u.used for u in pool.team_usage("acme")}
    assert usage == {"sales": Decimal("0.5"), "eng": Decimal("0.5"), None: Decimal("0.5")}


def test_a_user_who_is_not_a_member_consumes_without_a_team(pool: CreditPool) -> None:
    pool.create_org("acme")
    pool.grant("acme", "1")
    assert pool.consume("acme", "report", user_id="stranger").team_id is None


def test_team_usage_counts_a_late_utc_evening_in_the_next_month_of_the_org_zone(
    pool: CreditPool, clock: FakeClock
) -> None:
    pool.create_org("acme", timezone="Europe/Berlin")
    pool.create_team("acme", "sales", monthly_limit="1")
    pool.set_member("acme", "u-1", team_id="sales")
    clock.set(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))
    pool.grant("acme", "100")
    clock.set(datetime(2026, 10, 31, 22, 59, tzinfo=UTC))  # 23:59 in Berlin (CET): October
    pool.consume("acme", "report", user_id="u-1")
    clock.set(datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # 00:30 on Nov 1 in Berlin
    pool.consume("acme", "report", user_id="u-1")
    pool.consume("acme", "action_plan", user_id="u-1")
    pool.consume("acme", "agent_recommendation", user_id="u-1")
    (october,) = pool.team_usage("acme", month="2026-10")
    (november,) = pool.team_usage("acme", month="2026-11")
    assert (october.used, october.consumptions, october.over_limit) == (Decimal("0.5"), 1, False)
    assert (november.used, november.consumptions) == (Decimal("1.25"), 3)
    assert november.over_limit
    assert november.monthly_limit == Decimal("1")
    # Without a month, "now" decides it in the org's zone: already November in Berlin.
    assert pool.team_usage("acme")[0].month == "2026-11"


def test_team_usage_refuses_a_malformed_month(pool: CreditPool) -> None:
    pool.create_org("acme")
    for month in ["2026-13", "2026-1", "November", "2026-00"]:
        with pytest.raises(InvalidInput):
            pool.team_usage("acme", month=month)
