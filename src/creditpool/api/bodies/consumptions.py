from __future__ import annotations

from pydantic import Field, StrictBool

from creditpool.http.schemas import (
    Body,
    Breakdown,
    Count,
    FeatureName,
    Id,
    Metadata,
    Quantity,
    ShortText,
    Text,
    UsageAction,
)


class UseDetails(Body):
    """What describes a use of a feature, beside its price: shared by a consumption, a hold
    and a settle (which takes the hold's for those it leaves out)."""

    feature_name: FeatureName | None = None
    action: UsageAction | None = None
    integration: ShortText | None = None
    metadata: Metadata | None = None


class Counted(UseDetails):
    """A use that was carried out: what it processed, beside its details."""

    breakdown: Breakdown | None = None
    requests: Count | None = None


class ConsumeBody(Counted):
    feature: Id = Field(examples=["report"])
    user_id: Id
    quantity: Quantity | None = Field(default=None, description="For variable-cost features")
    # Strict: 0, 1 or "yes" are not booleans (pydantic would read them as such).
    dry_run: StrictBool = False


class RefundBody(Body):
    reason: Text | None = None
