"""Output: JSON straight from the pydantic models, or rich tables for people.

Amounts are the library's exact Decimals, printed with ``str`` (never through a float).

Light to import: every command module imports this one, so ``creditpool --help`` would pay
for whatever it imports. Rich and pydantic are imported by the functions that print (a
command that runs has loaded its models by then anyway).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table

    from creditpool.consumptions.models import Allocation

TABLE_WIDTH_MAX = 1000

# A table's columns: each name (with its mark, see ``table``) and what its cell shows, the
# item's attribute of that name or what a function makes of the item.
Columns = Mapping[str, str | Callable[[Any], object]]


def console() -> Console:
    # Made per call: the test runner swaps sys.stdout between invocations.
    from rich.console import Console

    return Console(highlight=False)


def emit_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    from pydantic import BaseModel

    if isinstance(data, BaseModel):
        payload: Any = data.model_dump(mode="json")
    elif isinstance(data, dict):
        payload = data
    else:
        payload = [item.model_dump(mode="json") for item in data]
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def line(text: str) -> None:
    typer.echo(text)


def result(data: BaseModel | dict[str, Any], as_json: bool, text: str) -> None:
    """A command's answer: its JSON with ``--json``, else one line for people."""
    if as_json:
        emit_json(data)
    else:
        line(text)


def record(
    data: BaseModel, as_json: bool, title: str, fields: Iterable[tuple[str, object]]
) -> None:
    """One item: its JSON with ``--json``, else a table of its fields, one per line."""
    if as_json:
        emit_json(data)
    else:
        table(title, ["Field", "Value~"], fields)


class _Numbered(Protocol):
    @property
    def id(self) -> object: ...


def next_page(
    found: Sequence[_Numbered], limit: int | None, option: str = "--before-id"
) -> str | None:
    """The option that asks for the next page, when this one is full (newest-first lists:
    older than the last item)."""
    return f"{option} {found[-1].id}" if found and len(found) == limit else None


def rows(items: Iterable[object], columns: Columns) -> Iterator[tuple[object, ...]]:
    """A row per item: what each column shows of it."""
    getters = [attrgetter(get) if isinstance(get, str) else get for get in columns.values()]
    for item in items:
        yield tuple(get(item) for get in getters)


def records(
    data: Sequence[BaseModel],
    as_json: bool,
    title: str | None,
    columns: Columns,
    more: str | None = None,
) -> None:
    """A list: its JSON with ``--json``, else a table of a row per item."""
    listing(data, as_json, title, list(columns), rows(data, columns), more)


def listing(
    data: Sequence[BaseModel],
    as_json: bool,
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    more: str | None = None,
) -> None:
    """A list: its JSON with ``--json``, else a table (``rows`` is only read for the table)
    and, when there is a next page (``more``: see ``next_page``), how to ask for it."""
    if as_json:
        emit_json(data)
        return
    table(title, columns, rows)
    if more is not None:
        line(f"more: add {more}")


def table_of(title: str | None, items: Iterable[object], columns: Columns) -> None:
    """A table of a row per item."""
    table(title, list(columns), rows(items, columns))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Column names carry a mark: ``Credits=`` amounts (right-aligned), ``Note~`` free text
    (wraps); the rest (ids, times, states) never wrap, so a narrow terminal squeezes the
    free text first."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        t.add_column(
            name.rstrip("=~"),
            justify="right" if name.endswith("=") else "left",
            no_wrap=not name.endswith("~"),
            overflow="fold",
        )
    for row in rows:
        # Text, not str: user data such as "[urgent]" must not be read as rich markup.
        t.add_row(*(Text(cell(value)) for value in row))
    _print_uncropped(t)


def _print_uncropped(t: Table) -> None:
    """Never crop a cell (a cropped amount is a wrong amount): into a pipe or a file, print
    at the table's natural width; in a terminal too narrow for the unwrappable columns, the
    same, and let the terminal wrap the lines."""
    from rich.console import Console

    out = console()
    natural = out.measure(t, options=out.options.update_width(TABLE_WIDTH_MAX))
    if not out.is_terminal or natural.minimum > out.width:
        out = Console(highlight=False, width=min(natural.maximum, TABLE_WIDTH_MAX))
    out.print(t)


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def when(value: datetime | None) -> str:
    """ISO 8601 in UTC (the ``Z`` offset), to the second: short enough for a table."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def credits(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def allocations(items: Sequence[Allocation]) -> str:
    return ", ".join(f"grant {a.grant_id}: {a.amount}" for a in items) or "no grant"
