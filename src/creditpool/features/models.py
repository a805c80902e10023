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


class FeaturePrice(Model):
    """One price a feature has had, from ``since`` until the next one (the first is the
    price it had when the history began). Consumptions keep the rate they were charged at,
    so a new price applies from its instant on and changes nothing before it."""

    id: int
    feature: str
    since: datetime
    name: str
    cost: Decimal | None
    unit_rate: Decimal | None
    unit: str | None
    changed_by: str | None  # who set it (None: before the history recorded it)
