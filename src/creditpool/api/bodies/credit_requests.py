"""Bodies of the credit requests: the commands' fields (``http.bodies``) and what the
document adds."""

from __future__ import annotations

from pydantic import Field

from creditpool import commands as cmd
from creditpool.http.bodies import CommandBody
from creditpool.http.schemas import Credits, Instant


class CreditRequestCreate(CommandBody):
    __command__ = cmd.RequestCredits

    amount: Credits = Field(description="The credits asked for")


class CreditRequestGrant(CommandBody):
    """The grant that answers the request; fields left out: what was asked for, permanent."""

    __command__ = cmd.GrantCreditRequest

    amount: Credits | None = Field(default=None, description="None: the amount asked for")
    expires_at: Instant | None = Field(default=None, description="None: permanent")


class CreditRequestDismiss(CommandBody):
    """Nothing to say: an empty object (a body, so that the request can carry an
    ``Idempotency-Key`` like every other mutation)."""

    __command__ = cmd.DismissCreditRequest
