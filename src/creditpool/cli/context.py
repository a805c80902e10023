"""What every command shares: the database it talks to, and the parsers of option values.

Parsers raise ``typer.BadParameter``; the root group turns it into one line and exit 1.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from creditpool.cli.errors import CliError
from creditpool.validation import strict_json

if TYPE_CHECKING:  # imported when a command opens the pool: `--help` loads no database code
    from creditpool.pool import CreditPool

BREAKDOWN_EXAMPLE = "calls=12,emails=40,web_searches=3"
INSTANT_EXAMPLES = "2027-01-31 (midnight UTC) or 2027-01-31T09:00:00+01:00"


def database_url(value: str) -> str:
    """``--db``: a URL, or a plain file path meaning a SQLite file (``pool.db`` ->
    ``sqlite:///pool.db``)."""
    if "://" in value:
        return value
    return f"sqlite:///{value}"


@dataclass
class State:
    """The root context's object: ``--db`` as given, and the pool once a command opens it.

    The settings are read when a command first asks for the URL, not by the root callback:
    click runs that callback before it parses a subcommand's ``--help``, which must stay
    light (no pydantic-settings)."""

    given: str | None = None
    pool: CreditPool | None = None
    _url: str | None = None

    @property
    def database_url(self) -> str:
        if self._url is None:
            from creditpool.settings import Settings

            self._url = database_url(self.given or Settings().database_url)
        return self._url

    @property
    def shown_url(self) -> str:
        """The URL without its password, fit to print."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:
            return "<invalid URL>"

    def missing_file(self) -> Path | None:
        """The SQLite file of the URL when it does not exist yet (None: it exists, or the
        database is not a SQLite file)."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(self.database_url)
        except ArgumentError:
            return None  # CreditPool.open says what is wrong with it
        name = url.database
        if url.get_backend_name() != "sqlite" or not name or name == ":memory:":
            return None
        if name.startswith("file:"):
            return None  # a SQLite URI filename: its own rules
        path = Path(name)
        return None if path.exists() else path


def state(ctx: typer.Context) -> State:
    found = ctx.find_object(State)
    if found is None:  # only when a command is invoked without the root group
        raise CliError("no database configured")
    return found


def open_pool(ctx: typer.Context, *, create: bool = False) -> CreditPool:
    """The pool of ``--db`` (migrated to the newest schema); closed when the command ends.
    A missing SQLite file is created only by a command that ``create``s something useful
    on an empty database (migrate, demo, orgs create, ...); any other is refused, so that
    a typo in ``--db`` never leaves an empty database behind."""
    from sqlalchemy.exc import ArgumentError

    from creditpool.pool import CreditPool

    st = state(ctx)
    if st.pool is None:
        missing = None if create else st.missing_file()
        if missing is not None:
            raise CliError(
                f"no database at {missing}: check --db, or create it with "
                f"'creditpool --db {missing} migrate'"
            )
        try:
            st.pool = CreditPool.open(st.database_url)
        except (ValueError, ArgumentError, ImportError) as exc:
            raise CliError(f"database URL {st.shown_url}: {exc}") from None
        ctx.find_root().call_on_close(st.pool.close)
    return st.pool


# -- option values -------------------------------------------------------------------------


def instant(value: str) -> datetime:
    """A day (``YYYY-MM-DD``: its midnight in UTC) or an ISO 8601 date-time with an offset
    (``Z`` or ``+01:00``); a date-time without one is ambiguous and refused. Every
    suggestion in a refusal is a value this parser accepts."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a day nor an ISO 8601 date-time: write e.g. {INSTANT_EXAMPLES}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise typer.BadParameter(f"{value!r} has no UTC offset: {_with_offset(text)}")
    return parsed


def _with_offset(text: str) -> str:
    """How to write a naive date-time with an offset; examples when adding one to this
    spelling would not parse."""
    try:
        datetime.fromisoformat(f"{text}Z")
    except ValueError:
        return f"write e.g. {INSTANT_EXAMPLES}"
    return f"add one, e.g. {text}Z or {text}+01:00"


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


def local_user(unknown: str = "unknown") -> str:
    """Who runs the command, for the audit trail of a change (``--by`` says otherwise);
    ``unknown`` when this environment has no login name."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return unknown


def who(by: str | None) -> str:
    """The ``--by`` given, else the local user."""
    return by if by is not None else local_user()


# -- options shared by many commands -------------------------------------------------------

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        help="Retrying with the same key and arguments returns the first result.",
    ),
]
OrgId = Annotated[str, typer.Argument(help="The organization's id.")]
GrantId = Annotated[int, typer.Argument(help="The grant's id.")]
FeatureKey = Annotated[str, typer.Argument(help="The feature's key, e.g. report.")]
Note = Annotated[str | None, typer.Option(help="A note for the purchase history.")]


def instant_option(help: str) -> Any:
    """An option that takes an instant (see ``instant``)."""
    return typer.Option(parser=instant, metavar="YYYY-MM-DD|ISO-DATETIME", help=help)


ExpiresAt = Annotated[datetime | None, instant_option("None: permanent.")]

# Paging: a page of at most ``--limit`` items; the next one starts where it ended.
Limit = Annotated[int, typer.Option(help="At most this many (1-1000).")]
LimitOrAll = Annotated[int | None, typer.Option(help="At most this many (1-1000).")]
After = Annotated[str | None, typer.Option(help="Start after this id (paging).")]


def older_than(item: str) -> Any:
    """The ``--before-id`` (or ``--before``) option of a newest-first list of ``item``s."""
    return typer.Option(help=f"Older than this {item} id (the next page).")


class Options(Mapping[str, Any]):
    """Options several commands take together, declared once: each name and its type (an
    ``Annotated`` with its ``typer.Option``), all optional (None when not given). A command
    of ``cli/calls.py`` takes them as the default of one parameter, which stands for them
    (``details: Details = USE_DETAILS``), and gets their values in one mapping."""

    def __init__(self, **declared: Any) -> None:
        self._declared = declared

    def __getitem__(self, name: str) -> Any:
        return self._declared[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._declared)

    def __len__(self) -> int:
        return len(self._declared)

    def parameters(self) -> list[inspect.Parameter]:
        kind = inspect.Parameter.KEYWORD_ONLY
        return [
            inspect.Parameter(name, kind, default=None, annotation=hint)
            for name, hint in self._declared.items()
        ]


Details = Mapping[str, Any]  # the values of an ``Options`` group, by name

# What describes a use of a feature (the library's ``UseDetails``, and ``Counted`` for a use
# carried out): the same options on ``consume``, ``hold`` and ``settle``.
_DESCRIBED: dict[str, Any] = {
    "feature_name": Annotated[
        str | None, typer.Option(help="The instance, e.g. the tracker's name.")
    ],
    "action": Annotated[str | None, typer.Option(help="publish, generate, accept, run...")],
    "integration": Annotated[str | None, typer.Option(help="E.g. an MCP integration.")],
}
Metadata = Annotated[dict[str, Any] | None, typer.Option(parser=json_object, metavar="JSON")]
USE_DETAILS = Options(**_DESCRIBED, metadata=Metadata)
COUNTED = Options(
    **_DESCRIBED,
    breakdown=Annotated[
        dict[str, int] | None,
        typer.Option(
            "--breakdown", parser=breakdown, metavar="NAME=N,...", help="calls=12,emails=40"
        ),
    ],
    requests=Annotated[int | None, typer.Option(help="Number of API requests.")],
    metadata=Metadata,
)
By = Annotated[
    str | None,
    typer.Option(
        "--by", help="Who makes the change, for the audit trail (default: the local user)."
    ),
]
