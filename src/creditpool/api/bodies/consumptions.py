from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictBool

from creditpool.http.schemas import Body, Count, Id, Metadata, Quantity, ShortText, Text
from creditpool.validation import BREAKDOWN_KEYS_MAX, TEXT_PATTERN

# The descriptive fields of a use of a feature (a consumption, a hold, a settle).
FeatureName = Annotated[str, Field(max_length=500, pattern=TEXT_PATTERN)]
UsageAction = Annotated[str, Field(max_length=64, pattern=TEXT_PATTERN, examples=["publish"])]
Breakdown = Annotated[
    dict[Id, Count],
    Field(max_length=BREAKDOWN_KEYS_MAX, examples=[{"calls": 12, "emails": 40, "web_searches": 3}]),
]


class ConsumeBody(Body):
    feature: Id = Field(examples=["report"])
    user_id: Id
    quantity: Quantity | None = Field(default=None, description="For variable-cost features")
    feature_name: FeatureName | None = None
    action: UsageAction | None = None
    integration: ShortText | None = None
    breakdown: Breakdown | None = None
    requests: Count | None = None
    metadata: Metadata | None = None
    # Strict: 0, 1 or "yes" are not booleans (pydantic would read them as such).
    dry_run: StrictBool = False


class RefundBody(Body):
    reason: Text | None = None
