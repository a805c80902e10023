"""The CLI's help is light and says the truth: no server or database code is imported to
print it, the roles' table matches the server's PERMISSIONS, and instants it suggests are
accepted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from creditpool.cli import roles
from creditpool.cli.context import database_url, instant
from creditpool.cli.main import app
from creditpool.http.security import PERMISSIONS, Action

README = Path(__file__).parents[2] / "README.md"
# What printing help must not load: the server and the database (seconds), and what made
# `creditpool --help` take a second: pydantic with the library's models (through the
# command modules' imports), pydantic-settings (the root callback, which click runs before
# a subcommand's --help), rich and Typer's rich help (markdown-it, pygments).
HEAVY = (
    "fastapi",
    "uvicorn",
    "starlette",
    "sqlalchemy",
    "creditpool.pool",
    "creditpool.server",
    "pydantic",
    "pydantic_settings",
    "creditpool.models",
    "creditpool.settings",
    "rich",
    "typer.rich_utils",
    "markdown_it",
    "pygments",
)


def loaded_by_help(*argvs: list[str]) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after printing these helps."""
    script = (
        "import json, sys\n"
        "from creditpool.cli.main import app\n"
        f"for argv in {list(argvs)!r}:\n"
        "    assert app(argv, standalone_mode=False) == 0, argv\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["keys", "create", "--help"],
        ["report", "--help"],
        ["webhooks", "--help"],
        ["webhooks", "deliveries", "--help"],
        ["credit-requests", "list", "--help"],
    ],
)
def test_help_imports_no_server_no_database_no_models_and_no_rich(argv: list[str]) -> None:
    assert loaded_by_help(argv) == []


def every_help() -> list[list[str]]:
    """``--help`` of the root, of every group and of every command."""
    root = typer.main.get_command(app)
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append([*path, "--help"])
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return found


def test_no_help_of_any_command_loads_what_help_must_not() -> None:
    helps = every_help()
    assert len(helps) > 40
    assert loaded_by_help(*helps) == []


def test_the_status_choices_are_the_models_enums() -> None:
    """--status choices are the models' enums themselves, declared in the pure core (which
    loads no pydantic: the help tests above keep it so)."""
    from creditpool.cli import credit_requests, webhooks
    from creditpool.credit_requests.models import CreditRequestStatus
    from creditpool.webhooks.models import DeliveryStatus

    assert credit_requests.CreditRequestStatus is CreditRequestStatus
    assert webhooks.DeliveryStatus is DeliveryStatus


def test_the_command_list_shows_each_first_sentence_whole() -> None:
    shown = CliRunner().invoke(app, ["--help"], terminal_width=80).stdout
    assert "..." not in shown.split("Commands:")[1]
    flat = " ".join(shown.split())
    assert "Download a report for a date range" in flat
    assert "(CREDITPOOL_PORTAL_LINK_TTL_S)." in flat


def test_the_roles_table_is_the_servers_permissions() -> None:
    assert list(roles.ACTIONS) == [a.value for a in Action]
    assert {r.value: {a.value for a in acts} for r, acts in PERMISSIONS.items()} == {
        role: set(actions) for role, actions in roles.PERMITTED.items()
    }
    assert set(roles.ROLES) == set(roles.PERMITTED) == set(roles.HOLDERS)


def test_the_readme_shows_the_roles_table() -> None:
    assert roles.markdown_table() in README.read_text("utf-8"), (
        "regenerate it: uv run python -m creditpool.cli.roles"
    )


def test_keys_create_help_says_what_each_role_may_do() -> None:
    shown = " ".join(CliRunner().invoke(app, ["keys", "create", "--help"]).stdout.split())
    for paragraph in roles.help_text().split("\n\n"):
        assert " ".join(paragraph.split()) in shown


def test_the_readme_starts_with_dev_run_and_dev_test_and_runs_the_cli_with_uv() -> None:
    text = README.read_text("utf-8")
    assert text.startswith("# creditpool\n\n```sh\n./dev run ")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    assert lines[:2] == ["./dev run", "./dev test"]
    assert lines[2:]
    assert all(line.startswith("uv run creditpool ") for line in lines[2:])
    bare = re.findall(r"`(creditpool [a-z][^`]*)`", text)
    assert bare == [], "show commands as they run from a clone: `uv run creditpool ...`"


def test_a_plain_path_is_a_sqlite_file_and_a_url_stays_as_written() -> None:
    assert database_url("pool.db") == "sqlite:///pool.db"
    assert database_url("/tmp/pool.db") == "sqlite:////tmp/pool.db"
    assert database_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_day_is_its_midnight_in_utc() -> None:
    assert instant("2027-01-31") == datetime(2027, 1, 31, tzinfo=UTC)
    assert instant("2027-01-31T09:00:00+01:00").utcoffset() is not None


@pytest.mark.parametrize(
    "value",
    ["2027-01-31T09:00", "2027-01-31 09:00:00", "20270131", "2027-1-3", "tomorrow", "2027-02-30"],
)
def test_every_suggestion_in_a_refusal_is_accepted(value: str) -> None:
    with pytest.raises(typer.BadParameter) as refused:
        instant(value)
    message = str(refused.value)
    suggested = re.findall(r"(?:e\.g\.|or) (\S+\d(?::\d\d)?Z?)", message)
    assert suggested, message
    for example in suggested:
        assert instant(example).tzinfo is not None, (message, example)
