from __future__ import annotations

from pydantic import Field

from creditpool.http.schemas import Body, Credits, Instant, Text


class CreditRequestCreate(Body):
    amount: Credits = Field(description="The credits asked for")
    message: Text | None = None


class CreditRequestGrant(Body):
    """The grant that answers the request; fields left out: what was asked for, permanent."""

    amount: Credits | None = Field(default=None, description="None: the amount asked for")
    expires_at: Instant | None = Field(default=None, description="None: permanent")
    note: Text | None = None


class CreditRequestDismiss(Body):
    """Nothing to say: an empty object (a body, so that the request can carry an
    ``Idempotency-Key`` like every other mutation)."""
