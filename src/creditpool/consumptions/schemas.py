from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, StrictInt

from creditpool.api.schemas import AmountIn, Body, Id, Text


class ConsumeBody(Body):
    feature: Id = Field(examples=["report"])
    user_id: Id
    quantity: AmountIn | None = Field(default=None, description="For variable-cost features")
    feature_name: str | None = Field(default=None, max_length=500)
    action: str | None = Field(default=None, max_length=64, examples=["publish"])
    integration: str | None = Field(default=None, max_length=200)
    breakdown: dict[str, StrictInt] | None = Field(
        default=None, max_length=32, examples=[{"calls": 12, "emails": 40, "web_searches": 3}]
    )
    requests: StrictInt | None = Field(default=None, ge=0, le=10**12)
    metadata: dict[str, Any] | None = None
    # Strict: 0, 1 or "yes" are not booleans (pydantic would read them as such).
    dry_run: StrictBool = False


class RefundBody(Body):
    reason: Text | None = None
