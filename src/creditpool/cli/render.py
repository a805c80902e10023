"""Output: JSON straight from the pydantic models, or rich tables for people.

Amounts are the library's exact Decimals, printed with ``str`` (never through a float).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from creditpool.consumptions.models import Allocation


def console() -> Console:
    # Made per call: the test runner swaps sys.stdout between invocations.
    return Console(highlight=False)


def emit_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    if isinstance(data, BaseModel):
        payload: Any = data.model_dump(mode="json")
    elif isinstance(data, dict):
        payload = data
    else:
        payload = [item.model_dump(mode="json") for item in data]
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def line(text: str) -> None:
    typer.echo(text)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A column named ``Credits=`` holds amounts (right-aligned), ``Time@`` instants; neither
    is ever wrapped: a narrow terminal squeezes the text columns instead."""
    t = Table(title=title, title_justify="left")
    for name in columns:
        t.add_column(
            name.rstrip("=@"),
            justify="right" if name.endswith("=") else "left",
            no_wrap=name.endswith(("=", "@")),
            overflow="fold",
        )
    for row in rows:
        # Text, not str: user data such as "[urgent]" must not be read as rich markup.
        t.add_row(*(Text(cell(value)) for value in row))
    console().print(t)


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
    """ISO 8601 with offset, to the second."""
    if value is None:
        return "-"
    return value.replace(microsecond=0).isoformat()


def credits(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


def allocations(items: Sequence[Allocation]) -> str:
    return ", ".join(f"grant {a.grant_id}: {a.amount}" for a in items) or "no grant"
