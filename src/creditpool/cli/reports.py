"""``creditpool report usage|balance|purchases ORG``: a report as CSV or XLSX.

CSV goes to stdout unless ``-o FILE``; the file's suffix (``.csv``, ``.xlsx``) says its
format, and any other suffix is refused before anything is read. After writing, one line
says what was written and how many rows (on stderr when the report went to stdout). On a
terminal a progress bar (on stderr) counts the rows.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from creditpool.cli.context import open_pool
from creditpool.cli.errors import CliError
from creditpool.reports.models import ReportFormat, ReportKind

if TYPE_CHECKING:  # loaded when a report runs: `--help` loads no database code
    from creditpool.reports.formats import Progress
    from creditpool.reports.service import Report

SUFFIXES = {f".{f.value}": f for f in ReportFormat}


def report(
    ctx: typer.Context,
    kind: Annotated[ReportKind, typer.Argument(help="usage, balance or purchases.")],
    org_id: Annotated[str, typer.Argument(help="The organization's id.")],
    start: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="YYYY-MM-DD", help="First day (default: the first entry's day)."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", metavar="YYYY-MM-DD", help="Last day, included (default: today)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write here instead of stdout: a .csv or .xlsx file."),
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="csv or xlsx (default: -o's suffix, else csv)."),
    ] = None,
) -> None:
    """Download a report for a date range (days in the organization's time zone; any range:
    without dates, from the organization's first entry to today)."""
    from creditpool.settings import Settings

    fmt = choose_format(output, fmt)
    pool = open_pool(ctx)
    found = pool.report(org_id, kind, start, end, span_days_max=Settings().report_span_days_max)
    rows = _write(found, fmt, output)
    where = str(output) if output is not None else "stdout"
    typer.echo(
        f"wrote {rows:,} rows of {found.title.lower()} for {found.org_id}"
        f" ({found.start} to {found.end}) to {where} as {fmt.value.upper()}",
        err=output is None,
    )


def choose_format(output: Path | None, fmt: ReportFormat | None) -> ReportFormat:
    """The format: the file's suffix decides (and ``--format``, if given, must agree);
    without a file, ``--format`` or CSV. Refusals come before the database is opened."""
    if output is None:
        if fmt is ReportFormat.XLSX:
            raise CliError("an .xlsx report needs a file: add -o FILE.xlsx")
        return fmt or ReportFormat.CSV
    by_suffix = SUFFIXES.get(output.suffix.lower())
    if by_suffix is None:
        shown = repr(output.suffix) if output.suffix else "no suffix"
        raise CliError(
            f"{output} has {shown}: write a .csv or .xlsx file (the suffix is the format)"
        )
    if fmt is not None and fmt is not by_suffix:
        raise CliError(f"{output} is {by_suffix.value.upper()} by its suffix, not {fmt.value}")
    return by_suffix


def _write(found: Report, fmt: ReportFormat, output: Path | None) -> int:
    """Write the report; how many rows it holds (the header not counted)."""
    from creditpool.reports import formats

    written = 0
    with _progress(found, output) as advance:

        def count(rows: int) -> None:
            nonlocal written
            written += rows
            if advance is not None:
                advance(rows)

        if fmt is ReportFormat.XLSX:
            assert output is not None
            formats.write_xlsx(found, output, count)
            return written
        with _target(output) as out:
            for chunk in formats.csv_chunks(found, count):
                out.write(chunk)
    return written


@contextmanager
def _target(output: Path | None) -> Iterator[BinaryIO]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with output.open("wb") as out:
        yield out


@contextmanager
def _progress(found: Report, output: Path | None) -> Iterator[Progress | None]:
    """A bar on stderr when it is a terminal and the report does not go to that terminal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bar

    console = Console(stderr=True)
    if not console.is_terminal or (output is None and sys.stdout.isatty()):
        yield None
        return
    with Bar(
        TextColumn(f"{found.title} {found.start}..{found.end}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=found.count())
        yield lambda rows: bar.advance(task, rows)
