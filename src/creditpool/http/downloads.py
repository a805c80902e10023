"""Report downloads, shared by the API and the credits page: CSV streamed as rows come,
XLSX sent once written."""

from __future__ import annotations

from functools import cache

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from creditpool.reports import formats
from creditpool.reports.models import ReportFormat
from creditpool.reports.service import Report
from creditpool.settings import Settings


@cache
def span_days_max() -> int | None:
    return Settings().report_span_days_max


async def download_response(report: Report, fmt: ReportFormat) -> StreamingResponse:
    """A report as a download: CSV streamed as rows are read; XLSX (whose index is written
    last) built in a temporary file first, then streamed from it."""
    headers = {"Content-Disposition": f'attachment; filename="{report.filename(fmt)}"'}
    if fmt is ReportFormat.CSV:
        body = formats.csv_chunks(report)
    else:
        path = await run_in_threadpool(formats.xlsx_file, report)
        body = formats.file_chunks(path)
    return StreamingResponse(body, media_type=fmt.media_type, headers=headers)
