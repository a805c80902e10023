"""Webhook endpoints over HTTP (the vendor backend's: the ``service`` role writes, staff
read), their delivery log, and an organization's event log (what webhooks carry).

Creating an endpoint and rotating its secret answer the secret, once: they take no
``Idempotency-Key``, since a recorded answer would keep the secret in the database in the
clear (stored secrets are sealed with the server's key). The other changes take one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from creditpool import queries as q
from creditpool.api.bodies.webhooks import EndpointCreate, EndpointUpdate, NoArguments
from creditpool.api.lists import Listing, paged
from creditpool.core.events import EventType
from creditpool.http.deps import ObjectId, OrgId, Pool
from creditpool.http.paging import CURSOR_HELP, NumberCursor, cursor
from creditpool.http.routing import AuthorizedRoute
from creditpool.http.schemas import Page
from creditpool.http.security import Action, Principal, allowed
from creditpool.http.writes import Write
from creditpool.webhooks.models import (
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)

router = APIRouter(tags=["webhooks"], route_class=AuthorizedRoute)
Writer = Annotated[Principal, allowed(Action.WEBHOOKS_WRITE)]
Reader = Annotated[Principal, allowed(Action.WEBHOOKS_READ)]
LogReader = Annotated[Principal, allowed(Action.EVENT_LOG_READ)]
ENDPOINT_ID_PATTERN = r"^we_[0-9a-f]{1,64}$"
EVENT_ID_PATTERN = r"^evt_[0-9a-f]{1,64}$"
EndpointId = Annotated[str, Path(pattern=ENDPOINT_ID_PATTERN, examples=["we_0123456789abcdef"])]
ENDPOINTS = "/v1/webhook-endpoints"
ENDPOINT = ENDPOINTS + "/{endpoint_id}"
REFUSED_URL: dict[int | str, dict[str, Any]] = {
    422: {
        "description": (
            "Not an http(s) URL, or its host is an address webhooks may not reach (loopback,"
            " private, link-local, metadata) unless the server allows it"
        )
    }
}


@router.post(
    ENDPOINTS,
    status_code=201,
    response_model=WebhookEndpointWithSecret,
    responses=REFUSED_URL,
    operation_id="create_webhook_endpoint",
)
def create_endpoint(body: EndpointCreate, caller: Writer, pool: Pool) -> WebhookEndpointWithSecret:
    """A new endpoint, with its signing secret (`whsec_...`): the only time it is shown."""
    return pool.create_webhook_endpoint(**body.model_dump())


EndpointCursor = Annotated[str | None, cursor(ENDPOINT_ID_PATTERN), Query(description=CURSOR_HELP)]


@router.get(ENDPOINTS, operation_id="list_webhook_endpoints", response_model=Page[WebhookEndpoint])
@paged(q.WebhookEndpoints, cursor=EndpointCursor)
def list_endpoints(caller: Reader, pool: Pool) -> Listing:
    """Every endpoint with its health (last success, failing since, why disabled)."""
    return pool.webhook_endpoints


@router.get(ENDPOINT, response_model=WebhookEndpoint, operation_id="get_webhook_endpoint")
def get_endpoint(endpoint_id: EndpointId, caller: Reader, pool: Pool) -> WebhookEndpoint:
    return pool.webhook_endpoint(endpoint_id)


@router.patch(
    ENDPOINT,
    response_model=WebhookEndpoint,
    responses=REFUSED_URL,
    operation_id="update_webhook_endpoint",
)
def update_endpoint(
    endpoint_id: EndpointId, body: EndpointUpdate, caller: Writer, writes: Write
) -> Response:
    """Only the fields given change. Enabling a disabled endpoint starts it afresh."""
    changes = body.model_dump(exclude_unset=True)
    return writes.directory(
        caller, None, body, 200, lambda: writes.pool.update_webhook_endpoint(endpoint_id, **changes)
    )


@router.delete(
    ENDPOINT, status_code=204, response_class=Response, operation_id="delete_webhook_endpoint"
)
def delete_endpoint(endpoint_id: EndpointId, caller: Writer, pool: Pool) -> Response:
    """The endpoint and its delivery log; nothing more is sent to it."""
    pool.delete_webhook_endpoint(endpoint_id)
    return Response(status_code=204)


@router.post(
    ENDPOINT + "/rotate-secret",
    response_model=WebhookEndpointWithSecret,
    operation_id="rotate_webhook_secret",
)
def rotate_secret(
    endpoint_id: EndpointId, caller: Writer, pool: Pool, body: NoArguments | None = None
) -> WebhookEndpointWithSecret:
    """A new secret, shown once; the old one keeps signing beside it for 24 hours (two
    signatures in `webhook-signature`), so that the receiver can switch without a gap."""
    return pool.rotate_webhook_secret(endpoint_id)


@router.get(
    ENDPOINT + "/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=Page[WebhookDelivery],
)
@paged(
    q.WebhookDeliveries,
    status=DeliveryStatus | None,
    cursor=NumberCursor,  # a delivery's number, named ``before`` in the library
)
def list_deliveries(endpoint_id: EndpointId, caller: Reader, pool: Pool) -> Listing:
    """Newest first, each with its attempts (status code, duration, the answer's first
    characters) and, while pending, when it is tried next."""
    return pool.webhook_deliveries


@router.get(
    ENDPOINT + "/deliveries/{delivery_id}",
    response_model=WebhookDelivery,
    operation_id="get_webhook_delivery",
)
def get_delivery(
    endpoint_id: EndpointId, delivery_id: ObjectId, caller: Reader, pool: Pool
) -> WebhookDelivery:
    return pool.webhook_delivery(endpoint_id, delivery_id)


@router.post(
    ENDPOINT + "/deliveries/{delivery_id}/retry",
    response_model=WebhookDelivery,
    operation_id="retry_webhook_delivery",
)
def retry_delivery(
    endpoint_id: EndpointId,
    delivery_id: ObjectId,
    caller: Writer,
    writes: Write,
    body: NoArguments | None = None,
) -> Response:
    """Send the delivery again now, whatever its status (same `webhook-id`)."""
    return writes.directory(
        caller,
        None,
        None,
        200,
        lambda: writes.pool.retry_webhook_delivery(endpoint_id, delivery_id),
    )


@router.post(
    ENDPOINT + "/test",
    status_code=201,
    response_model=WebhookDelivery,
    operation_id="send_test_webhook",
)
def send_test(
    endpoint_id: EndpointId, caller: Writer, writes: Write, body: NoArguments | None = None
) -> Response:
    """Send the endpoint a `webhook.test` event (to this endpoint only)."""
    return writes.directory(
        caller, None, None, 201, lambda: writes.pool.test_webhook_endpoint(endpoint_id)
    )


EventCursor = Annotated[str | None, cursor(EVENT_ID_PATTERN), Query(description=CURSOR_HELP)]


@router.get(
    "/v1/orgs/{org}/event-log",
    operation_id="list_events",
    response_model=Page[Event],
    tags=["real time"],
)
@paged(q.Events, type=EventType | None, cursor=EventCursor)
def event_log(org: OrgId, caller: LogReader, pool: Pool) -> Listing:
    """The organization's events, newest first: what its webhooks carry (`data`), whether
    or not an endpoint listens."""
    return pool.events
