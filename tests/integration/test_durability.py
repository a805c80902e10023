"""Acknowledged means on disk (SQLite ``synchronous``), and consistent backups of a live
SQLite database (``creditpool backup``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from creditpool import CreditPool
from creditpool.cli.main import app
from creditpool.storage import backup as backups
from creditpool.storage import engine as engines
from creditpool.storage.tables import consumptions
from tests.support import SqliteTemplates

runner = CliRunner()
FULL, NORMAL = 2, 1  # what PRAGMA synchronous reports
GRANTED = Decimal(100_000)


def synchronous_of(url: str) -> int:
    engine = engines.create(url)
    try:
        with engine.connect() as conn:
            level: int = conn.execute(text("PRAGMA synchronous")).scalar_one()
            return level
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(sqlite_templates: SqliteTemplates) -> str:
    return sqlite_templates.fresh()


def test_sqlite_commits_are_synced_to_disk_by_default(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDITPOOL_SQLITE_SYNCHRONOUS", raising=False)
    assert synchronous_of(sqlite_url) == FULL
    with CreditPool.open(sqlite_url) as pool, pool.db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar_one() == FULL


@pytest.mark.parametrize("value", ["normal", "NORMAL", " Normal "])
def test_speed_over_durability_is_a_setting(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CREDITPOOL_SQLITE_SYNCHRONOUS", value)
    assert synchronous_of(sqlite_url) == NORMAL
    assert engines.sqlite_synchronous() == "NORMAL"


def test_an_unknown_synchronous_level_is_refused(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDITPOOL_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        engines.create(sqlite_url)


def test_the_benchmark_baseline_uses_the_same_level(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = Path(__file__).parents[2] / "bench" / "consume.py"
    source = bench.read_text()
    assert "synchronous = {sqlite_synchronous()}" in source
    assert "synchronous = NORMAL" not in source


# -- backups -------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from creditpool import CreditPool

    url, stop = sys.argv[1], Path(sys.argv[2])
    with CreditPool.open(url) as pool:
        i = 0
        while not stop.exists():
            c = pool.consume("acme", "report", user_id=f"u-{i % 7}", idempotency_key=f"w-{i}")
            if i % 5 == 4:
                pool.refund("acme", c.id, reason="downvoted")
            i += 1
            print(i, flush=True)
    """
)


def check_copy(copy: Path) -> int:
    """The copy opens, verifies clean and its balance adds up; its consumption count."""
    url = f"sqlite:///{copy}"
    with CreditPool.open(url, migrate_schema=False) as restored:
        assert restored.verify() == []
        balance = restored.balance("acme")
        with restored.db.engine.connect() as conn:
            c = consumptions.c
            count, paid = conn.execute(
                select(func.count(), func.sum(c.cost).filter(c.status == "paid"))
            ).one()
    paid = Decimal(paid or 0) / 10_000
    assert (balance.total, balance.used) == (GRANTED, paid)
    assert balance.left == GRANTED - paid
    return int(count)


def test_a_backup_taken_under_load_is_consistent(sqlite_url: str, tmp_path: Path) -> None:
    with CreditPool.open(sqlite_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", GRANTED)
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, sqlite_url, str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts: list[int] = []
    try:
        assert writer.stdout is not None
        writer.stdout.readline()  # the writer is writing
        for n in range(4):
            copy = tmp_path / f"copy-{n}.db"
            done = backups.backup(sqlite_url, copy)
            assert done.destination == copy
            assert done.bytes == copy.stat().st_size > 0
            counts.append(check_copy(copy))
            time.sleep(0.05)
    finally:
        stop.touch()
        _, errors = writer.communicate(timeout=60)
    assert writer.returncode == 0, errors
    # the copies caught the writer at different moments: the load ran during the backups
    assert counts == sorted(counts)
    assert counts[0] < counts[-1]
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    with CreditPool.open(sqlite_url) as pool:
        assert pool.verify() == []


def test_the_backup_command_copies_and_refuses_to_overwrite(
    sqlite_url: str, tmp_path: Path
) -> None:
    with CreditPool.open(sqlite_url) as pool:
        pool.create_org("acme")
        pool.grant("acme", GRANTED)
        pool.consume("acme", "report", user_id="u-1")
    copy = tmp_path / "backup.db"
    result = runner.invoke(app, ["--db", sqlite_url, "backup", str(copy), "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["path"] == str(copy)
    assert shown["bytes"] == copy.stat().st_size
    assert check_copy(copy) == 1

    again = runner.invoke(app, ["--db", sqlite_url, "backup", str(copy)])
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: {copy} exists already (overwrite it with --force)"
    forced = runner.invoke(app, ["--db", sqlite_url, "backup", str(copy), "--force"])
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.startswith(f"backed up {Path(sqlite_url[10:])} to {copy}")


def test_a_backup_of_a_missing_database_writes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.db"
    result = runner.invoke(app, ["--db", f"sqlite:///{missing}", "backup", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no SQLite database at {missing}"
    assert list(tmp_path.iterdir()) == []


def test_backup_on_postgresql_says_to_use_its_own_tools(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none"  # never connected to
    result = runner.invoke(app, ["--db", url, "backup", str(tmp_path / "b.db")])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line == f"error: {backups.POSTGRES_ADVICE}"
    assert "pg_dump" in line
    assert "pg_basebackup" in line
    assert list(tmp_path.iterdir()) == []
