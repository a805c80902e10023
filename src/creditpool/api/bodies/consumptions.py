from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from creditpool.http.schemas import Body, Count, Id, Metadata, Quantity, ShortText, Text
from creditpool.validation import BREAKDOWN_KEYS_MAX, TEXT_PATTERN


class ConsumeBody(Body):
    feature: Id = Field(examples=["report"])
    user_id: Id
    quantity: Quantity | None = Field(default=None, description="For variable-cost features")
    feature_name: Annotated[str, Field(max_length=500, pattern=TEXT_PATTERN)] | None = None
    action: (
        Annotated[str, Field(max_length=64, pattern=TEXT_PATTERN, examples=["publish"])] | None
    ) = None
    integration: ShortText | None = None
    breakdown: dict[Id, Count] | None = Field(
        default=None,
        max_length=BREAKDOWN_KEYS_MAX,
        examples=[{"calls": 12, "emails": 40, "web_searches": 3}],
    )
    requests: Count | None = None
    metadata: Metadata | None = None
    # Strict: 0, 1 or "yes" are not booleans (pydantic would read them as such).
    dry_run: StrictBool = False


class RefundBody(Body):
    reason: Text | None = None
