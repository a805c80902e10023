"""Bodies of holds: the commands' fields (``http.bodies``) and what the document adds."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from creditpool import commands as cmd
from creditpool.http.bodies import CommandBody, TtlS
from creditpool.http.schemas import Credits, Id, Quantity


def _both(*names: str) -> dict[str, Any]:
    """The JSON Schema of an object that gives every one of ``names`` (not null): under
    ``not``, the document says "one of them at most", as the server checks."""
    return {"required": list(names), "properties": {name: {"type": "string"} for name in names}}


class HoldBody(CommandBody):
    """Reserve ``amount`` credits, or the price of ``quantity`` (or of one use of a
    fixed-price feature when neither is given)."""

    __command__ = cmd.Hold
    model_config = ConfigDict(
        json_schema_extra={
            "not": _both("amount", "quantity"),
            "examples": [
                {"feature": "topic_detection", "user_id": "u-1", "quantity": "1200", "ttl_s": 3600}
            ],
        }
    )
    feature: Id = Field(examples=["topic_detection"])
    amount: Credits | None = Field(default=None, description="Credits to hold")
    quantity: Quantity | None = Field(default=None, description="Priced from the catalog")
    ttl_s: TtlS | None = Field(
        default=None, description="None: the server's default (15 minutes unless configured)"
    )


class SettleBody(CommandBody):
    """The real cost: ``cost``, or ``quantity`` priced from the catalog now (neither: one
    use of a fixed-price feature). The descriptive fields left out are the hold's."""

    __command__ = cmd.Settle
    model_config = ConfigDict(
        json_schema_extra={
            "not": _both("cost", "quantity"),
            "examples": [{"quantity": "1130", "requests": 3}],
        }
    )


class ReleaseBody(CommandBody):
    """Nothing to say: an empty object (a body, so that the request can carry an
    ``Idempotency-Key`` like every other mutation)."""

    __command__ = cmd.Release
