from __future__ import annotations

from pydantic import Field

from creditpool.api.schemas import AmountIn, Body, Name


class FeaturePut(Body):
    """A fixed ``cost`` per use, or a ``unit_rate`` per ``unit`` (exactly one of them)."""

    name: Name | None = None
    cost: AmountIn | None = None
    unit_rate: AmountIn | None = None
    unit: str | None = Field(default=None, min_length=1, max_length=64)
