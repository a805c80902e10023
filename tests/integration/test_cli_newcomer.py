"""What a newcomer meets in the first ten minutes: the README's commands run as shown, a
file path is a database, a read never creates one, the formats it suggests are accepted,
reports follow their file's suffix and say what they wrote, and ``./dev run`` keeps its
demo keys."""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest

from creditpool import CreditPool
from creditpool.cli.main import app
from creditpool.demo import DEMO_ORG_IDS, prepare_demo
from tests.e2e.conftest import free_port
from tests.integration.test_cli import as_json, fails, ok, runner
from tests.support import FakeClock

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def acme(db_url: str) -> str:
    ok(db_url, "orgs", "create", "acme", "--timezone", "Europe/Berlin")
    ok(db_url, "grant", "acme", "10")
    return db_url


def readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text("utf-8"), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    prefix = "uv run creditpool "
    return [shlex.split(line[len(prefix) :]) for line in lines if line.startswith(prefix)]


@pytest.mark.slow
def test_the_readmes_commands_run_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    assert len(commands) >= 10
    for argv in commands:
        if "serve" in argv:
            continue  # it serves until stopped: the e2e tests start servers
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, (argv, result.stdout, result.stderr)
    assert {"usage.csv", "nov.xlsx", "pool.db"} <= {p.name for p in tmp_path.iterdir()}


# -- the database --------------------------------------------------------------------------


def test_a_plain_file_path_is_a_sqlite_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok("pool.db", "orgs", "create", "acme")
    assert (tmp_path / "pool.db").is_file()
    assert [o["id"] for o in as_json("sqlite:///pool.db", "orgs", "list")] == ["acme"]
    assert [o["id"] for o in as_json(str(tmp_path / "pool.db"), "orgs", "list")] == ["acme"]


@pytest.mark.parametrize(
    "args",
    [
        ("balance", "acme"),
        ("grants", "acme"),
        ("history", "acme"),
        ("ledger", "acme"),
        ("holds", "acme"),
        ("report", "usage", "acme"),
        ("verify",),
        ("sweep",),
        ("orgs", "list"),
        ("features", "list"),
        ("keys", "list"),
        ("webhooks", "list"),
        ("events", "acme"),
        ("grant", "acme", "5"),
    ],
)
def test_a_command_that_reads_never_creates_a_database(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.db"
    line = fails(str(missing), *args)
    assert line.startswith(f"error: no database at {missing}")
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_migrate_creates_the_database_a_read_asked_for(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    assert "migrate" in fails(path, "orgs", "list")
    ok(path, "migrate")
    assert as_json(path, "orgs", "list") == []


# -- instants ------------------------------------------------------------------------------


def test_a_day_is_accepted_as_its_midnight_in_utc(acme: str) -> None:
    grant = as_json(acme, "grant", "acme", "5", "--expires-at", "2030-12-31")
    assert datetime.fromisoformat(grant["expires_at"]) == datetime(2030, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize("value", ["2030-12-31T09:00", "2030-12-31 09:00", "31.12.2030", "soon"])
def test_what_a_refusal_suggests_is_then_accepted(acme: str, value: str) -> None:
    line = fails(acme, "grant", "acme", "5", "--expires-at", value)
    suggested = re.search(r"e\.g\. (\S+)", line)
    assert suggested is not None, line
    grant = as_json(acme, "grant", "acme", "5", "--expires-at", suggested.group(1))
    assert grant["expires_at"].startswith("2030-12-31") or grant["expires_at"] > "2026"


# -- reports -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.pdf", "x", "x.csv.gz", "x.xls"])
def test_a_report_file_of_an_unknown_suffix_is_refused_before_anything_is_written(
    acme: str, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    line = fails(acme, "report", "usage", "acme", "-o", str(out))
    assert ".csv or .xlsx" in line
    assert not out.exists()


def test_the_suffix_is_the_format_and_a_contrary_format_is_refused(
    acme: str, tmp_path: Path
) -> None:
    sheet = tmp_path / "Purchases.XLSX"
    written = ok(acme, "report", "purchases", "acme", "-o", str(sheet))
    workbook = openpyxl.load_workbook(sheet, read_only=True)
    try:
        rows = list(workbook.active.iter_rows(values_only=True))  # type: ignore[union-attr]
    finally:
        workbook.close()
    assert len(rows) == 2  # the header and the grant
    assert re.fullmatch(
        rf"wrote 1 rows of purchase history for acme \(\S+ to \S+\) to {re.escape(str(sheet))}"
        r" as XLSX\n",
        written,
    )
    line = fails(acme, "report", "usage", "acme", "-o", str(tmp_path / "u.csv"), "--format", "xlsx")
    assert "CSV by its suffix" in line


def test_a_report_on_stdout_says_what_it_wrote_on_stderr(acme: str) -> None:
    ok(acme, "consume", "acme", "report", "--user", "u-1")
    ok(acme, "consume", "acme", "report", "--user", "u-2")
    result = runner.invoke(app, ["--db", acme, "report", "usage", "acme"])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    assert re.fullmatch(
        r"wrote 2 rows of credit usage for acme \(.*\) to stdout as CSV\n", result.stderr
    )


def test_without_from_a_report_covers_all_time(db_url: str, tmp_path: Path) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3 * 365)
    clock = FakeClock(long_ago)
    with CreditPool.open(db_url, clock=clock) as pool:
        pool.create_org("acme")
        pool.grant("acme", "10")
        pool.consume("acme", "report", user_id="u-1")
    out = tmp_path / "all.csv"
    said = ok(db_url, "report", "usage", "acme", "-o", str(out))
    assert f"({long_ago.date()} to {datetime.now(UTC).date()})" in said
    assert said.startswith("wrote 1 rows")
    assert len(out.read_text("utf-8").splitlines()) == 2


# -- ./dev run's demo keys -----------------------------------------------------------------


def _demo_org(url: str) -> None:
    """A demo organization already there: prepare_demo skips the (slow) history."""
    with CreditPool.open(url) as pool:
        pool.create_org(DEMO_ORG_IDS[0])
        pool.set_member(DEMO_ORG_IDS[0], "anna.schmidt", team_id=None)


def test_the_demo_reuses_its_stored_keys_while_they_work(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a PostgreSQL database's keys are kept here
    _demo_org(db_url)
    now = datetime.now(UTC)
    first = prepare_demo(db_url, now)
    again = prepare_demo(db_url, now)
    with CreditPool.open(db_url) as pool:
        assert (first.reused, again.reused) == (False, True)
        assert again == first.__class__(**{**first.__dict__, "reused": True})
        assert len(pool.keys()) == 4
        assert first.path is not None
        assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
        assert first.path.name.endswith(".demo-keys.json")
        pool.revoke_key(pool.authenticate(first.admin).id)  # type: ignore[union-attr]
    third = prepare_demo(db_url, now)
    assert not third.reused
    assert third.admin != first.admin
    assert prepare_demo(db_url, now).admin == third.admin


def demo_banner(db_url: str, cwd: Path) -> list[str]:
    """What ``./dev run`` (``creditpool serve --demo``) prints before it serves."""
    command = [str(Path(sys.executable).parent / "creditpool"), "--db", db_url, "serve"]
    command += ["--demo", "--port", str(free_port())]
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip().startswith("try: curl"):
                return lines
        raise AssertionError(f"serve --demo ended: {lines}")
    finally:
        process.terminate()
        process.wait(timeout=60)
        process.stdout.close()


def test_dev_run_started_again_shows_the_keys_it_kept(db_url: str, tmp_path: Path) -> None:
    _demo_org(db_url)
    first, again = demo_banner(db_url, tmp_path), demo_banner(db_url, tmp_path)
    made = [
        m for line in first if (m := re.search(r"API keys \(new; kept in (.+), mode 0600\)", line))
    ]
    assert len(made) == 1, first
    path = made[0].group(1)
    assert any(line.endswith(f"API keys (kept in {path}):") for line in again), again
    assert (tmp_path / path).is_file()  # relative: in the working directory (PostgreSQL)

    def keys(banner: list[str]) -> list[str]:
        return [
            line.split()[1]
            for line in banner
            if line.split()[:1] in (["service"], ["staff"], ["admin"], ["member"])
        ]

    assert len(keys(first)) == 4
    assert keys(again) == keys(first)
    with CreditPool.open(db_url) as pool:
        assert len(pool.keys()) == 4  # not eight
