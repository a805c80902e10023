from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool, field_validator
from pydantic.json_schema import SkipJsonSchema

from creditpool.http.schemas import Body, omittable, refuse_null
from creditpool.validation import TEXT_PATTERN
from creditpool.webhooks.service import DESCRIPTION_LENGTH_MAX, SUBSCRIBABLE, URL_LENGTH_MAX

# The document names what the server checks: http(s), a host, no control characters. Where
# the host may point (never loopback, private or metadata addresses unless the server
# allows them) only the server can tell, and refuses with 422.
Url = Annotated[
    str,
    Field(
        max_length=URL_LENGTH_MAX,
        pattern=r"^https?://(\[[0-9A-Fa-f:.]+\]|[^\x00-\x20\x7f\s/?#@\[\]:]+)(:[0-9]{1,5})?([/?#][^\x00-\x20\x7f]*)?$",
        examples=["https://billing.vendor.example/creditpool/webhooks"],
    ),
]
EventTypes = Annotated[
    list[Annotated[str, Field(json_schema_extra={"enum": SUBSCRIBABLE})]],
    Field(max_length=len(SUBSCRIBABLE), description="The event types to send; empty: every one"),
]
Description = Annotated[str, Field(max_length=DESCRIPTION_LENGTH_MAX, pattern=TEXT_PATTERN)]


class EndpointCreate(Body):
    url: Url
    event_types: EventTypes = Field(default_factory=list)
    description: Description | None = None
    enabled: StrictBool = True


class EndpointUpdate(Body):
    """Only the fields given change; a null ``description`` removes it."""

    url: Url | SkipJsonSchema[None] = omittable()
    event_types: EventTypes | SkipJsonSchema[None] = omittable()
    description: Description | None = None
    enabled: StrictBool | SkipJsonSchema[None] = omittable()

    _not_null = field_validator("url", "event_types", "enabled", mode="before")(refuse_null)


class NoArguments(Body):
    """Nothing to say: an empty object (a body, so that the request can carry an
    ``Idempotency-Key`` like every other mutation, and refuses unknown fields)."""
