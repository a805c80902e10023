"""Looking after the database: migrate, sweep, verify, backup, and the demo data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from creditpool.cli import render
from creditpool.cli.context import JsonFlag, open_pool, state
from creditpool.cli.errors import CliError
from creditpool.cli.reads import BALANCE_COLUMNS

if TYPE_CHECKING:  # models load pydantic: not for `--help`
    from creditpool.ledger.models import Balance

OrgOption = Annotated[str | None, typer.Argument(help="One organization (default: all).")]


def migrate(ctx: typer.Context) -> None:
    """Bring the database to the newest schema (every command also does it)."""
    pool = open_pool(ctx, create=True)
    revision = pool.db.schema_revision()
    render.line(f"{state(ctx).shown_url} is at the newest schema (revision {revision})")


def sweep(ctx: typer.Context, org_id: OrgOption = None, as_json: JsonFlag = False) -> None:
    """Write the availability and expiry ledger entries that fell due."""
    written = open_pool(ctx).sweep(org_id)
    render.result({"written": written}, as_json, f"wrote {written} ledger entries that fell due")


def verify(ctx: typer.Context, org_id: OrgOption = None, as_json: JsonFlag = False) -> None:
    """Replay the ledger and check every invariant; exit code 1 when something is broken."""
    problems = open_pool(ctx).verify(org_id)
    if as_json:
        render.emit_json({"sound": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            render.line(f"problem: {problem}")
        render.line(f"{len(problems)} problems found")
    else:
        render.line("sound: every invariant holds")
    if problems:
        raise typer.Exit(1)


def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the copy (a new file).")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Copy a live SQLite database consistently (safe while the server runs). For
    PostgreSQL, says which of its own tools to use instead."""
    from creditpool.storage import backup as backups

    try:
        done = backups.backup(state(ctx).database_url, path, overwrite=force)
    except backups.BackupError as error:
        raise CliError(str(error)) from None
    render.result(
        {
            "source": str(done.source),
            "path": str(done.destination),
            "bytes": done.bytes,
            "seconds": round(done.seconds, 3),
        },
        as_json,
        f"backed up {done.source} to {done.destination}"
        f" ({done.bytes:,} bytes in {done.seconds:.2f} s, one consistent state)",
    )


def demo(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Fill the database with a realistic company: 3 organizations and 90 days of usage."""
    from creditpool import demo as demo_data

    url = state(ctx).database_url
    open_pool(ctx, create=True)  # migrate first, and fail early on a bad URL
    created = demo_data.fill_demo(url, datetime.now(UTC))
    pool = open_pool(ctx)
    balances = [pool.balance(org_id) for org_id in demo_data.DEMO_ORG_IDS]
    problems = pool.verify()
    if as_json:
        render.emit_json(
            {
                "created": created,
                "balances": [b.model_dump(mode="json") for b in balances],
                "problems": problems,
            }
        )
    else:
        _print_demo_summary(created, balances, problems)
    if problems:
        raise typer.Exit(1)


def _print_demo_summary(created: list[str], balances: list[Balance], problems: list[str]) -> None:
    if created:
        render.line(f"created the demo organizations: {', '.join(created)}")
    else:
        render.line("the demo organizations already exist: nothing changed")
    render.table_of("Demo balances", balances, {"Organization": "org_id", **BALANCE_COLUMNS})
    if problems:
        for problem in problems:
            render.line(f"problem: {problem}")
    else:
        render.line("verify: sound, every invariant holds")
