"""What every command shares: the database it talks to, and the parsers of option values.

Parsers raise ``typer.BadParameter``; the root group turns it into one line and exit 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from creditpool.cli.errors import CliError
from creditpool.pool import CreditPool
from creditpool.validation import strict_json

BREAKDOWN_EXAMPLE = "calls=12,emails=40,web_searches=3"


@dataclass
class State:
    """The root context's object: the database URL, and the pool once a command opens it."""

    database_url: str
    pool: CreditPool | None = None

    @property
    def shown_url(self) -> str:
        """The URL without its password, fit to print."""
        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<invalid URL>"


def state(ctx: typer.Context) -> State:
    found = ctx.find_object(State)
    if found is None:  # only when a command is invoked without the root group
        raise CliError("no database configured")
    return found


def open_pool(ctx: typer.Context) -> CreditPool:
    """The pool of ``--db`` (migrated to the newest schema); closed when the command ends."""
    st = state(ctx)
    if st.pool is None:
        try:
            st.pool = CreditPool.open(st.database_url)
        except (ValueError, ArgumentError, ImportError) as exc:
            raise CliError(f"database URL {st.shown_url}: {exc}") from None
        ctx.find_root().call_on_close(st.pool.close)
    return st.pool


# -- option values -------------------------------------------------------------------------


def instant(value: str) -> datetime:
    """An ISO 8601 instant with an offset (``Z`` or ``+01:00``): a naive time is ambiguous."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2026-11-02T09:00:00+01:00)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise typer.BadParameter(
            f"{value!r} has no UTC offset: add one, e.g. {value.strip()}Z or {value.strip()}+01:00"
        )
    return parsed


def breakdown(value: str) -> dict[str, int]:
    """``calls=12,emails=40`` or a JSON object of names to counts."""
    text = value.strip()
    if text.startswith("{"):
        try:
            data = strict_json(text.encode("utf-8", "surrogatepass"))
        except json.JSONDecodeError:
            raise typer.BadParameter(f"not a JSON object: {value!r}") from None
        if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in data.values()
        ):
            raise typer.BadParameter(f"must map names to whole numbers: {value!r}")
        return data
    result: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, number = part.partition("=")
        if not sep or not number.strip().isdigit():
            raise typer.BadParameter(f"write it as {BREAKDOWN_EXAMPLE}, not {value!r}")
        result[name.strip()] = int(number)
    return result


def json_object(value: str) -> dict[str, Any]:
    """A JSON object read as strictly as an HTTP body (no duplicate keys, no NaN)."""
    try:
        data = strict_json(value.encode("utf-8", "surrogatepass"))
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not valid JSON ({error.msg}): {value!r}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"must be a JSON object: {value!r}")
    return data


# -- options shared by many commands -------------------------------------------------------

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Retrying with the same key and arguments returns the first result.",
    ),
]
Instant = Annotated[datetime | None, typer.Option(parser=instant, metavar="ISO-DATETIME")]
OrgId = Annotated[str, typer.Argument(help="The organization's id.")]
Limit = Annotated[int, typer.Option(help="At most this many (1-1000).")]

# What describes a use of a feature: the same options on ``consume``, ``hold`` and ``settle``.
FeatureName = Annotated[str | None, typer.Option(help="The instance, e.g. the tracker's name.")]
UsageAction = Annotated[str | None, typer.Option(help="publish, generate, accept, run...")]
Integration = Annotated[str | None, typer.Option(help="E.g. an MCP integration.")]
Breakdown = Annotated[
    dict[str, int] | None,
    typer.Option("--breakdown", parser=breakdown, metavar="NAME=N,...", help="calls=12,emails=40"),
]
Requests = Annotated[int | None, typer.Option(help="Number of API requests.")]
Metadata = Annotated[dict[str, Any] | None, typer.Option(parser=json_object, metavar="JSON")]
