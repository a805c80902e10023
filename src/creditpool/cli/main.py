"""The ``creditpool`` command: ``creditpool --db URL <command>``.

Commands are thin: parse the options, call one ``CreditPool`` method, render the result
(a rich table, or JSON with ``--json``). Every failure is one line on stderr and exit 1.
"""

from __future__ import annotations

from typing import Annotated

import typer

from creditpool.cli import (
    admin,
    credit_requests,
    credits,
    directory,
    holds,
    reads,
    reports,
    server,
    webhooks,
)
from creditpool.cli.context import State
from creditpool.cli.credits import AMOUNT_ARGS
from creditpool.cli.errors import CliGroup

app = typer.Typer(
    cls=CliGroup,
    name="creditpool",
    help="An exact prepaid credit pool: grants, consumptions, refunds, holds and their ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL|FILE",
            help="A SQLite file (pool.db, or sqlite:///pool.db) or postgresql://user@host/db "
            "[env CREDITPOOL_DATABASE_URL; default sqlite:///creditpool.db]",
        ),
    ] = None,
) -> None:
    """An exact prepaid credit pool: grants, consumptions, refunds, holds and their ledger."""
    ctx.obj = State(db)  # the settings are read by the first command that needs the URL


app.command("migrate")(admin.migrate)
app.add_typer(directory.orgs_app, name="orgs")
app.add_typer(directory.teams_app, name="teams")
app.add_typer(directory.members_app, name="members")
app.add_typer(directory.features_app, name="features")
app.command("grant", context_settings=AMOUNT_ARGS)(credits.grant)
app.command("void")(credits.void)
app.command("grant-expiry")(credits.grant_expiry)
app.command("adjust", context_settings=AMOUNT_ARGS)(credits.adjust)
app.command("corrections")(reads.corrections)
app.command("consume")(credits.consume)
app.command("refund")(credits.refund)
app.command("hold")(holds.hold)
app.command("settle")(holds.settle)
app.command("release")(holds.release)
app.command("holds")(holds.holds)
app.command("balance")(reads.balance)
app.command("forecast")(reads.forecast)
app.command("grants")(reads.grants)
app.command("history")(reads.history)
app.command("ledger")(reads.ledger)
app.command("verify")(admin.verify)
app.command("sweep")(admin.sweep)
app.command("backup")(admin.backup)
app.command("demo")(admin.demo)
app.command("report")(reports.report)
app.command("serve")(server.serve)
app.add_typer(server.keys_app, name="keys")
app.command("portal-link")(server.portal_link)
app.add_typer(webhooks.webhooks_app, name="webhooks")
app.command("events")(webhooks.events)
app.add_typer(credit_requests.credit_requests_app, name="credit-requests")
