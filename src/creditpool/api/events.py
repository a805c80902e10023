"""``GET /v1/orgs/{org}/events``: the organization's ledger changes as server-sent events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from creditpool.core.errors import NotFound
from creditpool.http import feed
from creditpool.http.deps import OrgId, Pool
from creditpool.http.hub import Hub
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.security import Action, Principal, allowed

router = APIRouter(prefix="/v1/orgs/{org}", tags=["real time"], route_class=AuthorizedRoute)

SEQ_MAX = 2**62


@router.get(
    "/events",
    operation_id="stream_events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": (
                "One `ledger` event per ledger entry, in ledger order: `id` is the entry's"
                ' seq, `data` is `{"entry": LedgerEntry, "balance": Balance}` (the balance'
                " as of the newest entry delivered in the same batch). `: heartbeat` comments"
                " while quiet; the server ends the stream after a bounded lifetime and"
                " EventSource reconnects with `Last-Event-ID`, missing nothing."
            ),
        }
    },
)
async def events(
    org: OrgId,
    request: Request,
    caller: Annotated[Principal, allowed(Action.EVENTS_READ)],
    pool: Pool,
    after: Annotated[
        int | None, Query(ge=0, le=SEQ_MAX, description="Start after this ledger seq")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(pattern=r"^[0-9]{0,18}$", description="Resume after this ledger seq"),
    ] = None,
) -> StreamingResponse:
    """Every ledger change of the organization from the resume point on: `Last-Event-ID`
    (a reconnecting EventSource), else `after`, else only changes from now on."""
    resume = _resume_point(last_event_id, after)
    hub: Hub = request.app.state.hub
    seqs = await feed.ledger_seqs_async(pool.db, org)
    if org not in seqs:
        raise NotFound(f"organization {org!r} not found")
    body = hub.stream(org, seqs[org] if resume is None else resume)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _resume_point(last_event_id: str | None, after: int | None) -> int | None:
    """``Last-Event-ID`` (digits, checked by its pattern) wins; an empty one is none."""
    return int(last_event_id) if last_event_id else after
