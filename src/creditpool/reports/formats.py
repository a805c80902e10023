"""Writing a report: CSV chunks as rows come, or an .xlsx file with typed cells.

CSV: UTF-8, RFC 4180 (the ``csv`` module: CRLF line ends, quotes only where needed; the
usage report on PostgreSQL is written by the database in the very same bytes). The
header goes out before the query starts, then a chunk whenever ``CSV_CHUNK_BYTES`` of rows
have gathered: memory holds one batch of rows and one chunk, however long the report.

XLSX is a zip whose directory comes last, so no spreadsheet library can send its first
byte before the last row. XlsxWriter's ``constant_memory`` mode writes each row to a
temporary file as it comes (one row in memory), and the finished file is then sent in
chunks: memory stays flat here too, the wait before the first byte does not.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from creditpool.core.errors import InvalidInput
from creditpool.reports.models import CellType
from creditpool.reports.service import Report

CSV_CHUNK_BYTES = 256 * 1024
FILE_CHUNK_BYTES = 256 * 1024
XLSX_ROWS_MAX = 1_048_576  # a sheet's limit, the header row included
XLSX_INSTANT_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_CREDITS_FORMAT = "#,##0.00##"

Progress = Callable[[int], None]  # told how many more rows were written


def csv_chunks(report: Report, progress: Progress | None = None) -> Iterator[bytes]:
    """The report as CSV, in chunks of about ``CSV_CHUNK_BYTES`` (the report chooses who
    writes its rows: ``Report.csv_blocks``)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(report.header)
    yield buffer.getvalue().encode()  # the first bytes leave before the query runs
    for block, rows in report.csv_blocks(CSV_CHUNK_BYTES):
        if progress is not None:
            progress(rows)
        yield block


def write_xlsx(report: Report, path: Path, progress: Progress | None = None) -> None:
    """The report as a one-sheet workbook: instants as dates (the organization's wall
    time), credits and counts as numbers, the header row frozen."""
    import xlsxwriter  # type: ignore[import-untyped]  # here: half a second, for .xlsx only

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(path.parent)})
    try:
        _fill(workbook, report, progress)
    finally:
        workbook.close()


def _fill(workbook: Any, report: Report, progress: Progress | None) -> None:
    sheet = workbook.add_worksheet(report.title)
    bold = workbook.add_format({"bold": True})
    formats = {
        CellType.INSTANT: workbook.add_format({"num_format": XLSX_INSTANT_FORMAT}),
        CellType.CREDITS: workbook.add_format({"num_format": XLSX_CREDITS_FORMAT}),
    }
    types = [c.type for c in report.columns]
    for i, column in enumerate(report.columns):
        wide = column.type in (CellType.INSTANT, CellType.TEXT)
        sheet.set_column(i, i, 22 if wide else 14)
    sheet.write_row(0, 0, report.header, bold)
    sheet.freeze_panes(1, 0)
    r = 0
    for batch in report.batches():
        if r + len(batch) >= XLSX_ROWS_MAX:
            raise InvalidInput(
                f"more than {XLSX_ROWS_MAX - 1} rows: too many for a spreadsheet;"
                " download CSV or a shorter range"
            )
        for row in batch:
            r += 1
            for c, value in enumerate(row):
                _cell(sheet, r, c, types[c], value, formats)
        if progress is not None:
            progress(len(batch))


def _cell(sheet: Any, r: int, c: int, kind: CellType, value: Any, formats: dict[Any, Any]) -> None:
    if value is None:
        return
    if kind is CellType.INSTANT:
        assert isinstance(value, datetime)
        # Spreadsheets have no time zones: the organization's wall time.
        sheet.write_datetime(r, c, value.replace(tzinfo=None), formats[kind])
    elif kind is CellType.CREDITS:
        assert isinstance(value, Decimal)
        sheet.write_number(r, c, float(value), formats[kind])
    elif kind is CellType.COUNT:
        sheet.write_number(r, c, value)
    else:
        sheet.write_string(r, c, str(value))


def xlsx_file(report: Report, progress: Progress | None = None) -> Path:
    """The report written to a temporary .xlsx file; the caller deletes it
    (``file_chunks`` does, once sent)."""
    handle, name = tempfile.mkstemp(prefix="creditpool-report-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        write_xlsx(report, path, progress)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def file_chunks(path: Path, *, delete: bool = True) -> Iterator[bytes]:
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(FILE_CHUNK_BYTES):
                yield chunk
    finally:
        if delete:
            path.unlink(missing_ok=True)
