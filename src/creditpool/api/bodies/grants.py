from __future__ import annotations

from pydantic import Field

from creditpool.http.schemas import Body, Credits, Instant, ShortText, SignedCredits, Text


class GrantCreate(Body):
    amount: Credits
    expires_at: Instant | None = Field(default=None, description="None: permanent")
    available_from: Instant | None = Field(default=None, description="None: now")
    note: Text | None = None
    reference: ShortText | None = Field(default=None, examples=["INV-2026-0042"])


class VoidBody(Body):
    amount: Credits | None = Field(
        default=None,
        description=(
            "Void only this much of what the grant has left (it stays, holding that much"
            " less); None: void the grant whole"
        ),
    )
    reason: Text | None = None


class GrantUpdate(Body):
    """A staff correction of a grant's expiry."""

    expires_at: Instant | None = Field(
        description=(
            "The new expiry, in the future and after available_from; null: permanent."
            " Required: a PATCH without it changes nothing and is refused."
        )
    )
    reason: Text | None = None


class AdjustmentCreate(Body):
    credits: SignedCredits
    reason: Text = Field(description="Why (required): goodwill, a correction, ...")
