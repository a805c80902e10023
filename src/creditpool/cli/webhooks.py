"""``creditpool webhooks ...`` and ``creditpool events``: the vendor's endpoints, their
delivery log, a delivery worker run alone, and an organization's recent events.

An endpoint's secret is printed when it is made (``add``) or replaced (``rotate``), and never
again: the database keeps it sealed with the server's key (``CREDITPOOL_SECRET_KEY``).
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from creditpool.cli import render
from creditpool.cli.calls import change, listing
from creditpool.cli.context import (
    After,
    JsonFlag,
    Limit,
    OrgId,
    older_than,
    open_pool,
)
from creditpool.cli.errors import group
from creditpool.core.statuses import DeliveryStatus

if TYPE_CHECKING:  # the worker loads SQLAlchemy and httpx, the models pydantic: not for `--help`
    from creditpool.webhooks.models import (
        Event,
        WebhookDelivery,
        WebhookEndpoint,
        WebhookEndpointWithSecret,
    )
    from creditpool.webhooks.worker import Deliverer


webhooks_app = group(
    "Signed webhooks: the endpoints events are delivered to, and their deliveries."
)

EndpointId = Annotated[str, typer.Argument(help="The endpoint's id.")]
EventTypes = Annotated[
    list[str] | None,
    typer.Option(
        "--event-type",
        metavar="TYPE",
        help="Deliver only this event type (repeat for several; none: every event).",
    ),
]
SECRET_WARNING = "store it now: it is not shown again"


def _types(e: WebhookEndpoint) -> str:
    return ", ".join(e.event_types) or "every event"


def _data(e: Event) -> str:
    data = {k: v for k, v in e.data.items() if k != "org_id"}
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


ENDPOINT_COLUMNS: render.Columns = {
    "ID": "id",
    "URL~": "url",
    "Events~": _types,
    "Enabled": "enabled",
    "Last success": "last_success_at",
    "Failing since": "failing_since",
    "Description~": "description",
}
EVENT_COLUMNS: render.Columns = {
    "ID": "id",
    "At": "at",
    "Type": "type",
    "Ledger seq": "ledger_seq",
    "Data~": _data,
}


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where events are POSTed (https://...).")],
    event_types: EventTypes = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it switched off.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add an endpoint; its signing secret is printed once."""
    e = open_pool(ctx, create=True).create_webhook_endpoint(
        url, event_types=event_types, description=description, enabled=not disabled
    )
    _with_secret(e, as_json, f"endpoint {e.id} added for {e.url} ({_types(e)})")


@webhooks_app.command("list")
@listing("webhook_endpoints", ENDPOINT_COLUMNS)
def list_(
    found: list[WebhookEndpoint],
    after: After = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (default: all).")] = None,
) -> str:
    """The endpoints, by id, with their health."""
    return "Webhook endpoints"


@webhooks_app.command("show")
def show(ctx: typer.Context, endpoint_id: EndpointId, as_json: JsonFlag = False) -> None:
    """One endpoint, a field per line."""
    e = open_pool(ctx).webhook_endpoint(endpoint_id)
    fields: list[tuple[str, object]] = [
        ("Endpoint", e.id),
        ("URL", e.url),
        ("Description", e.description),
        ("Events", _types(e)),
        ("Enabled", e.enabled),
        ("Disabled because", e.disabled_reason),
        ("Created", e.created_at),
        ("Updated", e.updated_at),
        ("Last success", e.last_success_at),
        ("Failing since", e.failing_since),
        ("Old secret signs until", e.previous_secret_expires_at),
    ]
    render.record(e, as_json, f"Webhook endpoint {e.id}", fields)


@webhooks_app.command("update")
def update(
    ctx: typer.Context,
    endpoint_id: EndpointId,
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    event_types: EventTypes = None,
    all_events: Annotated[
        bool, typer.Option("--all-events", help="Deliver every event type again.")
    ] = False,
    description: Annotated[str | None, typer.Option(help="A new description.")] = None,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Switch it on (afresh) or off."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an endpoint; what is not given stays as it is."""
    if all_events and event_types:
        raise typer.BadParameter("give --event-type or --all-events, not both")
    changes = {
        "url": url,
        "event_types": [] if all_events else event_types,
        "description": description,
        "enabled": enabled,
    }
    given = {name: value for name, value in changes.items() if value is not None}
    if not given:
        raise typer.BadParameter("nothing to change: give --url, --event-type, --enable...")
    e = open_pool(ctx).update_webhook_endpoint(endpoint_id, **given)
    state = "enabled" if e.enabled else "disabled"
    render.result(e, as_json, f"endpoint {e.id} updated: {e.url} ({_types(e)}), {state}")


@webhooks_app.command("delete")
def delete(ctx: typer.Context, endpoint_id: EndpointId, as_json: JsonFlag = False) -> None:
    """Delete an endpoint and its delivery log."""
    open_pool(ctx).delete_webhook_endpoint(endpoint_id)
    render.result({"id": endpoint_id, "deleted": True}, as_json, f"endpoint {endpoint_id} deleted")


@webhooks_app.command("rotate")
def rotate(ctx: typer.Context, endpoint_id: EndpointId, as_json: JsonFlag = False) -> None:
    """Replace an endpoint's secret; the old one keeps signing beside it for 24 hours."""
    e = open_pool(ctx).rotate_webhook_secret(endpoint_id)
    until = render.when(e.previous_secret_expires_at)
    _with_secret(e, as_json, f"endpoint {e.id}: new secret; the old one signs too until {until}")


@webhooks_app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    endpoint_id: EndpointId,
    status: Annotated[
        DeliveryStatus | None, typer.Option(help="Only pending, delivered or failed ones.")
    ] = None,
    before_id: Annotated[int | None, older_than("delivery")] = None,
    limit: Limit = 50,
    as_json: JsonFlag = False,
) -> None:
    """An endpoint's deliveries, newest first: each attempt's answer, duration and error."""
    found = open_pool(ctx).webhook_deliveries(
        endpoint_id,
        status=status,
        before=before_id,
        limit=limit,
    )
    rows = (row for d in found for row in _attempt_rows(d))
    title = f"Deliveries to {endpoint_id}"
    render.listing(found, as_json, title, ATTEMPT_COLUMNS, rows, render.next_page(found, limit))


@webhooks_app.command("retry")
@change("retry_webhook_delivery")
def retry(
    d: WebhookDelivery,
    endpoint_id: EndpointId,
    delivery_id: Annotated[int, typer.Argument(help="The delivery's id.")],
) -> str:
    """Send a delivery again now (the worker, or ``webhooks deliver``, sends it)."""
    return f"delivery {d.id} ({d.event_type}) is due again: {d.status}"


@webhooks_app.command("test")
@change("test_webhook_endpoint")
def send_test(d: WebhookDelivery, endpoint_id: EndpointId) -> str:
    """Queue a ``webhook.test`` event for an endpoint."""
    return f"delivery {d.id}: {d.event_type} event {d.event_id} queued"


@webhooks_app.command("deliver")
def deliver(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="One round: send what is due, then stop.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Deliver due webhooks in the foreground until Ctrl-C (``serve`` does it too)."""
    worker = open_pool(ctx).webhook_worker()
    try:
        if once:
            attempted = worker.run_once()
            render.result({"attempted": attempted}, as_json, f"{attempted} deliveries attempted")
            return
        render.line("delivering webhooks; Ctrl-C stops")
        with _stopped_by_signals(worker) as stop:
            worker.run(stop)
        render.line("stopped")
    finally:
        worker.close()


@listing("events", EVENT_COLUMNS, more="--before", type_="type")
def events(
    found: list[Event],
    org_id: OrgId,
    type_: Annotated[str | None, typer.Option("--type", help="E.g. balance.low.")] = None,
    before: Annotated[str | None, older_than("event")] = None,
    limit: Limit = 50,
) -> str:
    """An organization's events (what its webhooks deliver), newest first."""
    return f"Events of {org_id}"


# -- helpers -------------------------------------------------------------------------------


def _with_secret(e: WebhookEndpointWithSecret, as_json: bool, text: str) -> None:
    """An answer that carries the secret: it goes to stdout, the warning to stderr."""
    if as_json:
        render.emit_json(e)
    else:
        render.line(text)
        render.line(f"secret: {e.secret}")
    typer.echo(f"warning: {SECRET_WARNING}", err=True)


# A delivery's columns, then its attempt's (see ``_attempt_rows``).
ATTEMPT_COLUMNS = [
    "Delivery",
    "Event",
    "Type",
    "Status",
    "Next attempt",
    "Attempt at",
    "Code",
    "ms",
    "Error or answer~",
]


def _attempt_rows(d: WebhookDelivery) -> Iterator[tuple[object, ...]]:
    """One row per attempt (the delivery's first columns only on its first), or one row
    for a delivery not attempted yet."""
    head = (d.id, d.event_id, d.event_type, d.status, d.next_attempt_at)
    blank = ("",) * len(head)
    if not d.attempts:
        yield (*head, None, None, None, None)
    for n, a in enumerate(d.attempts):
        yield (*(blank if n else head), a.at, a.status_code, a.duration_ms, a.error or a.response)


@contextmanager
def _stopped_by_signals(worker: Deliverer) -> Iterator[threading.Event]:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets, waking the worker so it stops at
    once instead of after its poll interval; the previous handlers come back after."""
    stop = threading.Event()

    def halt(signum: int, frame: FrameType | None) -> None:
        stop.set()
        worker.wake.set()

    previous = {s: signal.signal(s, halt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
