from __future__ import annotations

from pydantic import Field

from creditpool.api.schemas import AmountIn, Body, Instant, Text


class GrantCreate(Body):
    amount: AmountIn
    expires_at: Instant | None = Field(default=None, description="None: permanent")
    available_from: Instant | None = Field(default=None, description="None: now")
    note: Text | None = None
    reference: str | None = Field(default=None, max_length=200, examples=["INV-2026-0042"])


class VoidBody(Body):
    reason: Text | None = None
