"""``creditpool report usage|balance|purchases ORG``: a report as CSV or XLSX.

CSV goes to stdout unless ``-o FILE``; XLSX needs ``-o``. On a terminal a progress bar
(on stderr) counts the rows; piped, nothing but the report is written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from creditpool.cli.context import open_pool
from creditpool.cli.errors import CliError
from creditpool.reports import formats
from creditpool.reports.models import ReportFormat, ReportKind
from creditpool.reports.service import Report
from creditpool.settings import Settings


def report(
    ctx: typer.Context,
    kind: Annotated[ReportKind, typer.Argument(help="usage, balance or purchases.")],
    org_id: Annotated[str, typer.Argument(help="The organization's id.")],
    start: Annotated[
        str | None,
        typer.Option("--from", metavar="YYYY-MM-DD", help="First day (default: 1st of month)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="YYYY-MM-DD", help="Last day, included (default: today)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="csv or xlsx (default: from -o's suffix, else csv)."),
    ] = None,
) -> None:
    """Download a report for a date range (days in the organization's time zone)."""
    if fmt is None:
        fmt = ReportFormat.XLSX if output and output.suffix == ".xlsx" else ReportFormat.CSV
    if fmt is ReportFormat.XLSX and output is None:
        raise CliError("an .xlsx report needs a file: add -o FILE")
    pool = open_pool(ctx)
    found = pool.report(org_id, kind, start, end, span_days_max=Settings().report_span_days_max)
    with _progress(found, output) as advance:
        if fmt is ReportFormat.XLSX:
            assert output is not None
            formats.write_xlsx(found, output, advance)
            return
        with _target(output) as out:
            for chunk in formats.csv_chunks(found, advance):
                out.write(chunk)


@contextmanager
def _target(output: Path | None) -> Iterator[BinaryIO]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as out:
        yield out


@contextmanager
def _progress(found: Report, output: Path | None) -> Iterator[formats.Progress | None]:
    """A bar on stderr when it is a terminal and the report does not go to that terminal."""
    console = Console(stderr=True)
    if not console.is_terminal or (output is None and sys.stdout.isatty()):
        yield None
        return
    with Progress(
        TextColumn(f"{found.title} {found.start}..{found.end}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=found.count())
        yield lambda rows: bar.advance(task, rows)
