from __future__ import annotations

from pydantic import Field

from creditpool.http.schemas import Body, Credits, Instant, ShortText, Text


class GrantCreate(Body):
    amount: Credits
    expires_at: Instant | None = Field(default=None, description="None: permanent")
    available_from: Instant | None = Field(default=None, description="None: now")
    note: Text | None = None
    reference: ShortText | None = Field(default=None, examples=["INV-2026-0042"])


class VoidBody(Body):
    reason: Text | None = None
