"""Bodies of grants and corrections: the commands' fields (``http.bodies``) and what the
document adds."""

from __future__ import annotations

from pydantic import Field

from creditpool import commands as cmd
from creditpool.http.bodies import CommandBody
from creditpool.http.schemas import Credits, Instant, ShortText, Text


class GrantCreate(CommandBody):
    __command__ = cmd.Grant

    expires_at: Instant | None = Field(default=None, description="None: permanent")
    available_from: Instant | None = Field(default=None, description="None: now")
    reference: ShortText | None = Field(default=None, examples=["INV-2026-0042"])


class VoidBody(CommandBody):
    __command__ = cmd.VoidGrant

    amount: Credits | None = Field(
        default=None,
        description=(
            "Void only this much of what the grant has left (it stays, holding that much"
            " less); None: void the grant whole"
        ),
    )


class GrantUpdate(CommandBody):
    """A staff correction of a grant's expiry."""

    __command__ = cmd.ChangeGrantExpiry

    expires_at: Instant | None = Field(
        description=(
            "The new expiry, in the future and after available_from; null: permanent."
            " Required: a PATCH without it changes nothing and is refused."
        )
    )


class AdjustmentCreate(CommandBody):
    __command__ = cmd.Adjust

    reason: Text = Field(description="Why (required): goodwill, a correction, ...")
