from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StrictInt

from creditpool.api.bodies.consumptions import Counted, UseDetails
from creditpool.http.schemas import Body, Credits, Id, Quantity, whole_number
from creditpool.settings import HOLD_TTL_S_MAX

# The document allows what any server could; a server whose ``hold_ttl_s_max`` is lower
# refuses more with 422 (the library's check).
TtlS = Annotated[
    StrictInt,
    Field(ge=1, le=HOLD_TTL_S_MAX, description="Seconds until the hold expires"),
    BeforeValidator(whole_number),
]


def _both(*names: str) -> dict[str, Any]:
    """The JSON Schema of an object that gives every one of ``names`` (not null): under
    ``not``, the document says "one of them at most", as the server checks."""
    return {"required": list(names), "properties": {name: {"type": "string"} for name in names}}


class HoldBody(UseDetails):
    """Reserve ``amount`` credits, or the price of ``quantity`` (or of one use of a
    fixed-price feature when neither is given)."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": _both("amount", "quantity"),
            "examples": [
                {"feature": "topic_detection", "user_id": "u-1", "quantity": "1200", "ttl_s": 3600}
            ],
        }
    )
    feature: Id = Field(examples=["topic_detection"])
    user_id: Id
    amount: Credits | None = Field(default=None, description="Credits to hold")
    quantity: Quantity | None = Field(default=None, description="Priced from the catalog")
    ttl_s: TtlS | None = Field(
        default=None, description="None: the server's default (15 minutes unless configured)"
    )


class SettleBody(Counted):
    """The real cost: ``cost``, or ``quantity`` priced from the catalog now (neither: one
    use of a fixed-price feature). The descriptive fields left out are the hold's."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": _both("cost", "quantity"),
            "examples": [{"quantity": "1130", "requests": 3}],
        }
    )
    cost: Credits | None = None
    quantity: Quantity | None = None
    user_id: Id | None = None


class ReleaseBody(Body):
    """Nothing to say: an empty object (a body, so that the request can carry an
    ``Idempotency-Key`` like every other mutation)."""
