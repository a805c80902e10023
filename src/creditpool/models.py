"""Base of every public return type: frozen pydantic models.

Pydantic gives each type exact JSON (amounts as decimal strings, times as ISO 8601 with
offset) for free, which the idempotency store and the HTTP API both use.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
