"""Report downloads over HTTP: CSV streamed as rows come, XLSX sent once written."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from creditpool.http.deps import Day as CalendarDay
from creditpool.http.deps import OrgId, Pool
from creditpool.http.downloads import download_response, span_days_max
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.security import Action, Principal, allowed
from creditpool.reports.models import MEDIA_TYPES, TITLES, ReportFormat, ReportKind

router = APIRouter(prefix="/v1/orgs/{org}/reports", tags=["reports"], route_class=AuthorizedRoute)
Reader = Annotated[Principal, allowed(Action.REPORTS_READ)]

Day = Annotated[
    CalendarDay | None,
    Query(description="A day (YYYY-MM-DD) in the organization's time zone, included"),
]
# The file's bytes, in either format: binary, so that a generated client hands back bytes
# (an XLSX read as text is corrupt). ``application/octet-stream`` comes first because it is
# the binary type every generator knows; the server sends the format's own type.
BINARY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "The report: a header row, then one row per item, oldest first; as `format` asks"
            " (`Content-Type` says which: CSV text in UTF-8, or an XLSX workbook)"
        ),
        "content": {
            "application/octet-stream": BINARY,
            MEDIA_TYPES[ReportFormat.CSV]: BINARY,
            MEDIA_TYPES[ReportFormat.XLSX]: BINARY,
        },
        "headers": {
            "Content-Disposition": {
                "description": "attachment; the file name says organization, report, range",
                "schema": {"type": "string"},
            }
        },
    }
}


def _route(kind: ReportKind) -> None:
    async def download(
        org: OrgId,
        caller: Reader,
        pool: Pool,
        start: Annotated[Day, Query(alias="from")] = None,
        end: Annotated[Day, Query(alias="to")] = None,
        fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.CSV,
    ) -> StreamingResponse:
        report = await run_in_threadpool(
            pool.report, org, kind, start, end, span_days_max=span_days_max()
        )
        return await download_response(report, fmt)

    router.add_api_route(
        f"/{kind.value}",
        download,
        methods=["GET"],
        name=f"report_{kind.value}",
        operation_id=f"get_{kind.value}_report",
        summary=f"{TITLES[kind]} report",
        description=(
            f"{TITLES[kind]} over the days [from, to] of the organization's time zone (default:"
            " from the organization's first entry to today: any range). Times are ISO 8601 with the"
            " zone's offset, credits exact decimals. CSV is streamed as rows are read."
        ),
        response_class=StreamingResponse,
        responses=RESPONSES,
    )


for _kind in ReportKind:
    _route(_kind)
