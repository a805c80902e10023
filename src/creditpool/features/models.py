from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from creditpool.models import Model


class Feature(Model):
    """A feature's price: a fixed ``cost`` per use, or a ``unit_rate`` per ``unit``."""

    key: str
    name: str
    cost: Decimal | None
    unit_rate: Decimal | None
    unit: str | None
    updated_at: datetime

    @property
    def variable(self) -> bool:
        return self.unit_rate is not None
