"""The ``creditpool`` command: every command, its JSON, and its one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from creditpool.cli.main import app
from creditpool.demo import DEMO_ORG_IDS, fill_demo
from creditpool.storage import engine as engines

runner = CliRunner()


def run(db_url: str, *args: str) -> Result:
    return runner.invoke(app, ["--db", db_url, *args])


def ok(db_url: str, *args: str) -> str:
    result = run(db_url, *args)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def as_json(db_url: str, *args: str) -> Any:
    return json.loads(ok(db_url, *args, "--json"))


def fails(db_url: str, *args: str) -> str:
    """The command fails the CLI way: exit 1, nothing on stdout, one line on stderr."""
    result = run(db_url, *args)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert isinstance(result.exception, SystemExit)  # no exception escaped
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def iso(when: datetime) -> str:
    return when.isoformat()


@pytest.fixture
def acme(db_url: str) -> str:
    """An organization with 10 credits."""
    ok(db_url, "orgs", "create", "acme", "--name", "Acme Inc.", "--timezone", "Europe/Berlin")
    ok(db_url, "grant", "acme", "10")
    return db_url


# -- organizations, teams, members, features ----------------------------------------------


def test_orgs_create_and_list_show_the_org_as_text_table_and_json(db_url: str) -> None:
    out = ok(db_url, "orgs", "create", "acme", "--name", "Acme Inc.", "--timezone", "Europe/Berlin")
    assert "acme" in out
    assert "Europe/Berlin" in ok(db_url, "orgs", "list")
    [org] = as_json(db_url, "orgs", "list")
    assert (org["id"], org["name"], org["timezone"]) == ("acme", "Acme Inc.", "Europe/Berlin")
    assert as_json(db_url, "orgs", "list", "--search", "nothing-like-it") == []


def test_creating_an_org_twice_is_one_line_already_exists(db_url: str) -> None:
    ok(db_url, "orgs", "create", "acme")
    assert fails(db_url, "orgs", "create", "acme").startswith("error: already_exists:")


def test_team_usage_counts_a_members_consumption_against_the_team_limit(acme: str) -> None:
    ok(acme, "teams", "create", "acme", "sales", "--name", "Sales", "--monthly-limit", "40")
    team = as_json(acme, "teams", "set-limit", "acme", "sales", "0.25")
    assert team["monthly_limit"] == "0.25"
    member = as_json(acme, "members", "set", "acme", "u-17", "--team", "sales")
    assert member == {"org_id": "acme", "user_id": "u-17", "team_id": "sales", "display_name": None}
    assert as_json(acme, "members", "list", "acme", "--team", "sales") == [member]
    ok(acme, "consume", "acme", "report", "--user", "u-17")
    usage = {u["team_id"]: u for u in as_json(acme, "teams", "list", "acme")}
    assert usage["sales"]["used"] == "0.50"
    assert usage["sales"]["over_limit"] is True
    assert "Sales" in ok(acme, "teams", "list", "acme")


def test_team_limit_none_removes_the_limit(acme: str) -> None:
    ok(acme, "teams", "create", "acme", "sales", "--monthly-limit", "40")
    assert as_json(acme, "teams", "set-limit", "acme", "sales", "none")["monthly_limit"] is None
    assert "no monthly limit" in ok(acme, "teams", "set-limit", "acme", "sales", "none")


def test_a_member_without_team_option_is_in_no_team(acme: str) -> None:
    ok(acme, "teams", "create", "acme", "sales")
    ok(acme, "members", "set", "acme", "u-1", "--team", "sales")
    assert as_json(acme, "members", "set", "acme", "u-1")["team_id"] is None


def test_members_set_names_a_member_and_members_list_shows_the_name(acme: str) -> None:
    ok(acme, "teams", "create", "acme", "sales")
    out = ok(acme, "members", "set", "acme", "u-1", "--team", "sales", "--display-name", "Ana L.")
    assert out.strip() == "member u-1 (Ana L.) of acme: team sales"
    listed = ok(acme, "members", "list", "acme")
    assert "Ana L." in listed
    [member] = as_json(acme, "members", "list", "acme")
    assert member == {
        "org_id": "acme",
        "user_id": "u-1",
        "team_id": "sales",
        "display_name": "Ana L.",
    }
    # Set as a whole: leaving the option out clears the name, as leaving out --team does.
    assert as_json(acme, "members", "set", "acme", "u-1")["display_name"] is None


def test_members_set_refuses_a_display_name_too_long_in_one_line(acme: str) -> None:
    ok(acme, "members", "set", "acme", "u-1", "--display-name", "Ana")
    line = fails(acme, "members", "set", "acme", "u-1", "--display-name", "x" * 201)
    assert line == "error: invalid_input: display_name is longer than 200 characters"
    assert as_json(acme, "members", "list", "acme")[0]["display_name"] == "Ana"


def test_features_set_changes_the_price_that_features_list_shows(db_url: str) -> None:
    catalog = {f["key"]: f for f in as_json(db_url, "features", "list")}
    assert set(catalog) == {"report", "action_plan", "agent_recommendation", "topic_detection"}
    assert catalog["report"]["cost"] == "0.50"
    ok(db_url, "features", "set", "report", "--cost", "0.75")
    ok(db_url, "features", "set", "topic_detection", "--unit-rate", "0.02", "--unit", "item")
    catalog = {f["key"]: f for f in as_json(db_url, "features", "list")}
    assert catalog["report"]["cost"] == "0.75"
    assert catalog["topic_detection"]["unit_rate"] == "0.02"
    assert "Topic Detection" in ok(db_url, "features", "list")


# -- grant, void, consume, refund ---------------------------------------------------------


def test_grant_consume_refund_print_exact_decimals(acme: str) -> None:
    consumption = as_json(
        acme,
        "consume",
        "acme",
        "topic_detection",
        "--user",
        "u-1",
        "--quantity",
        "33",
        "--feature-name",
        "NPS comments",
        "--action",
        "run",
        "--integration",
        "MCP: Cursor",
        "--breakdown",
        "calls=12,emails=40,web_searches=3",
        "--requests",
        "2",
        "--metadata",
        '{"ticket": "T-1"}',
    )
    assert consumption["cost"] == "0.33"
    assert consumption["breakdown"] == {"calls": 12, "emails": 40, "web_searches": 3}
    assert consumption["metadata"] == {"ticket": "T-1"}
    assert (consumption["integration"], consumption["requests"]) == ("MCP: Cursor", 2)
    assert as_json(acme, "balance", "acme")["left"] == "9.67"
    refund = as_json(acme, "refund", "acme", str(consumption["id"]), "--reason", "downvoted")
    assert (refund["restored"], refund["lost"]) == ("0.33", "0.00")
    assert as_json(acme, "balance", "acme")["left"] == "10.00"


def test_human_output_of_mutations_names_what_changed(acme: str) -> None:
    out = ok(acme, "consume", "acme", "report", "--user", "u-1")
    assert "0.50 credits" in out
    cid = out.split()[1].rstrip(":")
    assert "0.50 credits restored" in ok(acme, "refund", "acme", cid)
    assert "permanent" in ok(acme, "grant", "acme", "5")


def test_grant_with_expiry_and_later_availability_is_pending_until_then(acme: str) -> None:
    start = datetime.now(UTC) + timedelta(days=7)
    grant = as_json(
        acme,
        "grant",
        "acme",
        "12.3456",
        "--available-from",
        iso(start),
        "--expires-at",
        iso(start + timedelta(days=30)),
        "--by",
        "cs@vendor",
        "--note",
        "renewal",
        "--reference",
        "INV-7",
    )
    assert (grant["amount"], grant["state"], grant["reference"]) == ("12.3456", "pending", "INV-7")
    assert as_json(acme, "balance", "acme")["upcoming"] == "12.3456"


def test_void_removes_what_is_left_of_the_grant_from_the_pool(acme: str) -> None:
    [grant] = as_json(acme, "grants", "acme")
    voided = as_json(acme, "void", "acme", str(grant["id"]), "--by", "cs@vendor", "--reason", "dup")
    assert voided["state"] == "voided"
    assert as_json(acme, "balance", "acme")["left"] == "0.00"
    assert fails(acme, "void", "acme", str(grant["id"])).startswith("error: grant_voided:")


def test_dry_run_shows_the_cost_and_charges_nothing(acme: str) -> None:
    out = ok(acme, "consume", "acme", "action_plan", "--user", "u-1", "--dry-run")
    assert "would cost 0.50" in out
    assert as_json(acme, "balance", "acme")["left"] == "10.00"


def test_same_idempotency_key_returns_the_first_result_and_other_arguments_are_refused(
    acme: str,
) -> None:
    args = ("consume", "acme", "report", "--user", "u-1", "--idempotency-key", "k-1")
    first, again = as_json(acme, *args), as_json(acme, *args)
    assert first == again
    assert as_json(acme, "balance", "acme")["left"] == "9.50"
    line = fails(acme, "consume", "acme", "report", "--user", "u-2", "--idempotency-key", "k-1")
    assert line.startswith("error: idempotency_conflict:")


# -- reads --------------------------------------------------------------------------------


def test_balance_at_a_past_instant_is_before_the_grant(acme: str) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    before = as_json(acme, "balance", "acme", "--at", iso(past))
    assert (before["total"], before["left"]) == ("0.00", "0.00")
    now = as_json(acme, "balance", "acme")
    assert (now["total"], now["used"], now["left"], now["held"]) == (
        "10.00",
        "0.00",
        "10.00",
        "0.00",
    )
    assert "10.00" in ok(acme, "balance", "acme")


def test_user_text_that_looks_like_rich_markup_is_printed_as_is(acme: str) -> None:
    ok(acme, "grant", "acme", "1", "--note", "[bold]renewal[/bold]")
    assert "[bold]renewal[/bold]" in ok(acme, "grants", "acme")


def test_grants_lists_every_grant_with_its_state(acme: str) -> None:
    [grant] = as_json(acme, "grants", "acme")
    assert (grant["amount"], grant["remaining"], grant["state"]) == ("10.00", "10.00", "active")
    assert "active" in ok(acme, "grants", "acme")


def test_history_filters_by_feature_user_status_and_pages_by_id(acme: str) -> None:
    for feature, user in [
        ("report", "u-1"),
        ("action_plan", "u-2"),
        ("agent_recommendation", "u-1"),
    ]:
        ok(acme, "consume", "acme", feature, "--user", user)
    everything = as_json(acme, "history", "acme")
    assert [c["feature"] for c in everything] == ["agent_recommendation", "action_plan", "report"]
    assert [c["feature"] for c in as_json(acme, "history", "acme", "--user", "u-1")] == [
        "agent_recommendation",
        "report",
    ]
    assert len(as_json(acme, "history", "acme", "--feature", "action_plan")) == 1
    ok(acme, "refund", "acme", str(everything[0]["id"]))
    [refunded] = as_json(acme, "history", "acme", "--status", "refunded")
    assert refunded["id"] == everything[0]["id"]
    page = as_json(acme, "history", "acme", "--limit", "1", "--before-id", str(everything[0]["id"]))
    assert [c["id"] for c in page] == [everything[1]["id"]]
    assert "more: add --before-id" in ok(acme, "history", "acme", "--limit", "1")
    later = iso(datetime.now(UTC) + timedelta(hours=1))
    assert as_json(acme, "history", "acme", "--since", later) == []
    assert len(as_json(acme, "history", "acme", "--until", later)) == 3
    assert as_json(acme, "history", "acme", "--team", "sales") == []


def test_ledger_chains_left_before_and_after(acme: str) -> None:
    ok(acme, "consume", "acme", "report", "--user", "u-1")
    entries = as_json(acme, "ledger", "acme")
    assert [(e["method"], e["credits"]) for e in entries] == [("added", "10.00"), ("used", "0.50")]
    assert entries[0]["total_after"] == entries[1]["total_before"] == "10.00"
    assert entries[1]["total_after"] == "9.50"
    assert len(as_json(acme, "ledger", "acme", "--after-seq", str(entries[0]["seq"]))) == 1
    assert "used" in ok(acme, "ledger", "acme", "--limit", "5")


def test_verify_is_clean_on_a_sound_ledger(acme: str) -> None:
    assert "sound" in ok(acme, "verify")
    assert as_json(acme, "verify", "acme") == {"sound": True, "problems": []}


def test_verify_exits_1_and_prints_the_problems_when_a_grant_was_tampered_with(acme: str) -> None:
    engine = engines.create(acme)
    with engine.begin() as conn:
        conn.execute(text("UPDATE grants SET remaining = remaining - 1 WHERE org_id = 'acme'"))
    engine.dispose()
    result = run(acme, "verify")
    assert result.exit_code == 1
    assert "problem:" in result.stdout
    payload = json.loads(run(acme, "verify", "--json").stdout)
    assert payload["sound"] is False
    assert payload["problems"]


def test_sweep_writes_due_entries_and_says_how_many(acme: str) -> None:
    assert as_json(acme, "sweep") == {"written": 0}
    assert "ledger entries" in ok(acme, "sweep", "acme")


def test_migrate_reports_the_newest_schema(db_url: str) -> None:
    assert "newest schema" in ok(db_url, "migrate")


# -- errors: one line, exit 1 -------------------------------------------------------------


def test_consuming_more_than_is_left_is_one_line_insufficient_credits(db_url: str) -> None:
    ok(db_url, "orgs", "create", "acme")
    ok(db_url, "grant", "acme", "0.50")
    ok(db_url, "consume", "acme", "agent_recommendation", "--user", "u-1")
    line = fails(db_url, "consume", "acme", "report", "--user", "u-1")
    assert line == "error: insufficient_credits: 0.50 credits needed, 0.25 left"
    assert as_json(db_url, "balance", "acme")["left"] == "0.25"


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("1.00001", "more than 4 fractional digits"),
        ("abc", "not a number"),
        ("-1", "must be more than zero"),
        ("0", "must be more than zero"),
        ("NaN", "finite"),
    ],
)
def test_a_malformed_amount_is_one_line_invalid_amount(acme: str, amount: str, says: str) -> None:
    line = fails(acme, "grant", "acme", amount)
    assert line.startswith("error: invalid_amount:")
    assert says in line
    assert len(as_json(acme, "grants", "acme")) == 1


def test_a_malformed_quantity_is_one_line_invalid_amount(acme: str) -> None:
    args = ("consume", "acme", "topic_detection", "--user", "u-1", "--quantity")
    assert fails(acme, *args, "-3").startswith("error: invalid_amount:")
    assert fails(acme, *args, "1.00001").startswith("error: invalid_amount:")


@pytest.mark.parametrize(
    "args",
    [
        ("balance", "nope"),
        ("grants", "nope"),
        ("history", "nope"),
        ("ledger", "nope"),
        ("grant", "nope", "5"),
        ("consume", "nope", "report", "--user", "u-1"),
        ("teams", "create", "nope", "sales"),
    ],
)
def test_an_unknown_org_is_one_line_not_found(db_url: str, args: tuple[str, ...]) -> None:
    assert fails(db_url, *args).startswith("error: not_found:")


def test_a_naive_datetime_is_one_line_that_asks_for_an_offset(acme: str) -> None:
    line = fails(acme, "balance", "acme", "--at", "2026-11-02T09:00:00")
    assert "'--at'" in line
    assert "no UTC offset" in line
    assert "e.g. 2026-11-02T09:00:00Z" in line


def test_bad_option_values_are_one_line_each(acme: str) -> None:
    assert "ISO 8601" in fails(acme, "history", "acme", "--since", "yesterday")
    assert "'--limit'" in fails(acme, "history", "acme", "--limit", "many")
    assert "limit must be a whole number from 1" in fails(acme, "history", "acme", "--limit", "0")
    assert "status must be" in fails(acme, "history", "acme", "--status", "maybe")
    assert "'--breakdown'" in fails(
        acme, "consume", "acme", "report", "--user", "u", "--breakdown", "x"
    )
    assert "JSON object" in fails(
        acme, "consume", "acme", "report", "--user", "u", "--metadata", "[1]"
    )
    assert "--help" in fails(acme, "grant")
    assert "No such command" in fails(acme, "frobnicate")
    assert fails(acme, "refund", "acme", "999").startswith("error: not_found:")


def test_an_unusable_database_is_one_line(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    assert fails(missing, "orgs", "create", "acme").startswith("error: database:")
    assert "unsupported database URL" in fails("mysql://h/db", "orgs", "list")
    refused = fails("postgresql://nobody@127.0.0.1:1/none", "orgs", "list")
    assert refused.startswith("error: database:")


def test_the_database_url_comes_from_the_environment(db_url: str) -> None:
    ok(db_url, "orgs", "create", "acme")
    env = {"CREDITPOOL_DATABASE_URL": db_url}
    from_env = runner.invoke(app, ["orgs", "list", "--json"], env=env)
    assert [o["id"] for o in json.loads(from_env.stdout)] == ["acme"]


def test_without_db_option_or_environment_the_database_is_creditpool_db_in_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"CREDITPOOL_DATABASE_URL": None}
    result = runner.invoke(app, ["orgs", "create", "acme"], env=env)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "creditpool.db").exists()


# -- demo ---------------------------------------------------------------------------------


def test_demo_fills_every_grant_state_and_refunds_and_verifies_clean(db_url: str) -> None:
    out = ok(db_url, "demo")
    assert "created the demo organizations" in out
    assert "sound" in out
    orgs = {o["id"]: o for o in as_json(db_url, "orgs", "list")}
    assert {o["timezone"] for o in orgs.values()} == {"Europe/Berlin", "America/New_York", "UTC"}
    states: set[str] = set()
    members = 0
    for org_id in orgs:
        states |= {g["state"] for g in as_json(db_url, "grants", org_id)}
        assert as_json(db_url, "history", org_id, "--status", "refunded")
        members += len(as_json(db_url, "members", "list", org_id))
    assert states == {"pending", "active", "expired", "voided"}
    assert members == 40
    used = {c["feature"] for c in as_json(db_url, "history", "northwind", "--limit", "1000")}
    assert used == {"report", "action_plan", "agent_recommendation", "topic_detection"}
    low = as_json(db_url, "balance", "initech")
    assert Decimal(0) <= Decimal(low["left"]) < Decimal(25)  # one organization runs low
    assert as_json(db_url, "verify") == {"sound": True, "problems": []}
    assert "nothing changed" in ok(db_url, "demo")


def test_demo_writes_the_same_company_for_the_same_now(tmp_path: Path) -> None:
    now = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    first, second = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    assert fill_demo(first, now) == fill_demo(second, now) == list(DEMO_ORG_IDS)
    for org_id in DEMO_ORG_IDS:
        for read in (("grants", org_id), ("history", org_id, "--limit", "1000")):
            assert as_json(first, *read) == as_json(second, *read)
    assert fill_demo(first, now) == []  # already there: nothing changes


# -- the installed command, as a real process ---------------------------------------------


def test_the_installed_command_prints_one_line_errors_and_no_traceback(db_url: str) -> None:
    command = Path(sys.executable).parent / "creditpool"
    env = {**os.environ, "CREDITPOOL_DATABASE_URL": db_url}

    def creditpool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(command), *args], env=env, capture_output=True, text=True, timeout=60
        )

    assert creditpool("orgs", "create", "acme").returncode == 0
    assert creditpool("grant", "acme", "0.25").returncode == 0
    refused = creditpool("consume", "acme", "report", "--user", "u-1")
    assert refused.returncode == 1
    assert refused.stderr == "error: insufficient_credits: 0.50 credits needed, 0.25 left\n"
    shown = creditpool("balance", "acme", "--json")
    assert json.loads(shown.stdout)["left"] == "0.25"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--metadata", '{"a": 1, "a": 2}'),
        ("--metadata", '{"a": NaN}'),
        ("--breakdown", '{"calls": 1, "calls": 2}'),
    ],
)
def test_consume_refuses_json_options_an_http_body_would_refuse(
    acme: str, option: str, value: str
) -> None:
    line = fails(acme, "consume", "acme", "report", "--user", "u-1", option, value)
    assert f"Invalid value for '{option}'" in line
    assert as_json(acme, "balance", "acme")["left"] == "10.00"
